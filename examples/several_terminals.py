"""The same script in several terminals: each process takes its own trials from one file.

    python examples/several_terminals.py shared.db --trials 40 &   # sets the search's size
    python examples/several_terminals.py shared.db &   # then start it as often as you like
    python examples/several_terminals.py shared.db

Without --trials a process keeps the number the search holds (10 for a new one): a number
given is stored for every worker, so one lower than the trials already run ends the search.

Each process gets its own tuner id (worker-<pid>, or set KERASTUNER_TUNER_ID); trials are
never handed out twice, max_trials holds over all of them, and a process that dies has
its trial re-run by another. Or let one command start the workers:

    python examples/several_terminals.py shared.db --workers 3
"""

import argparse
import time

import hpstore


def run_trial(trial):
    time.sleep(0.05)  # stands for real work
    lr = trial.hyperparameters["learning_rate"]
    layers = trial.hyperparameters["layers"]
    return {"val_loss": (lr - 0.01) ** 2 * 1e4 + abs(layers - 3) * 0.1}


def main(db="shared.db", trials=None, workers=None):
    oracle = hpstore.BayesianOptimizationOracle(
        objective="val_loss", max_trials=trials, seed=7, database=db)
    hp = oracle.get_space()
    if not hp.space:
        hp.Float("learning_rate", 1e-4, 1e-1, sampling="log")
        hp.Int("layers", 1, 6)
        oracle.update_space(hp)
    tuner = hpstore.Tuner(oracle, run_trial=run_trial)
    tuner.search(workers=workers)


def positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, received {value}")
    return value


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database", nargs="?", default="shared.db",
                        help="the search file the processes share (default: shared.db)")
    parser.add_argument("--trials", type=positive, default=None,
                        help="max_trials of the whole search, over every process, stored for "
                             "all of them (default: the number the search holds; 10 for a new "
                             "one)")
    parser.add_argument("--workers", type=positive, default=None,
                        help="start this many worker processes from this one command "
                             "(default: this process is the one worker)")
    args = parser.parse_args()
    main(args.database, args.trials, workers=args.workers)
