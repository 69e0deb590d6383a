"""The same script in several terminals: each process takes its own trials from one file.

    python examples/several_terminals.py shared.db &   # start it as often as you like
    python examples/several_terminals.py shared.db &
    python examples/several_terminals.py shared.db

Each process gets its own tuner id (worker-<pid>, or set KERASTUNER_TUNER_ID); trials are
never handed out twice, max_trials holds over all of them, and a process that dies has
its trial re-run by another. Or let one command start the workers: add --workers 3.
"""

import sys
import time

import hpstore


def run_trial(trial):
    time.sleep(0.05)  # stands for real work
    lr = trial.hyperparameters["learning_rate"]
    layers = trial.hyperparameters["layers"]
    return {"val_loss": (lr - 0.01) ** 2 * 1e4 + abs(layers - 3) * 0.1}


def main(db="shared.db", trials=40, workers=None):
    oracle = hpstore.BayesianOptimizationOracle(
        objective="val_loss", max_trials=trials, seed=7, database=db)
    hp = oracle.get_space()
    if not hp.space:
        hp.Float("learning_rate", 1e-4, 1e-1, sampling="log")
        hp.Int("layers", 1, 6)
        oracle.update_space(hp)
    tuner = hpstore.Tuner(oracle, run_trial=run_trial)
    tuner.search(workers=workers)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n_workers = int(sys.argv[sys.argv.index("--workers") + 1]) if "--workers" in sys.argv else None
    main(args[0] if args else "shared.db", int(args[1]) if len(args) > 1 else 40,
         workers=n_workers)
