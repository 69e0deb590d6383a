"""Early stopping on synthetic learning curves: steps used and best final value, hpstore's
rules against Optuna's pruners on the same curves, in one run.

    python -m benchmarks stopping [--trials 60] [--steps 30] [--seeds 5] [--quick]
                                  [--json out.json]

Each trial's curve falls from 1.0 towards a final value at a speed, both set by its
hyperparameters (a log learning rate, a width, an activation), plus a little noise that is
the same for the same values and step whoever asks. A search runs ``--trials`` trials
reporting one value per step until told to stop; a trial that runs to the end is scored on
its last value. "steps" is what all trials together ran; "best" the best last value of a
trial that ran to the end (what the search would pick). hpstore runs its random search and
its Bayesian oracle, Optuna its random sampler and TPE, each without stopping and with
each rule or pruner; figures are medians over the seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
from collections.abc import Callable
from typing import Any

from benchmarks import add_json_option, at_least, check_json

START = 1.0


def final_value(lr: float, width: int, act: str) -> float:
    """Where the curve of these hyperparameters ends (lower is better; best 0.0)."""
    return 0.15 * (math.log10(lr) + 2.5) ** 2 + 0.04 * abs(width - 5) + (act == "tanh") * 0.05


def speed(lr: float, width: int) -> float:
    return 0.04 + 0.5 * math.sqrt(lr) / (1 + 0.1 * width)


def value(lr: float, width: int, act: str, step: int) -> float:
    end = final_value(lr, width, act)
    noise = random.Random(f"{lr:.12g}:{width}:{act}:{step}").gauss(0.0, 0.01)
    return end + (START - end) * math.exp(-speed(lr, width) * step) + noise


def _hpstore_rule(name: str) -> Any:
    import hpstore

    return {"none": None,
            "median": hpstore.MedianStopping(),
            "percentile-25": hpstore.PercentileStopping(25.0),
            "halving": hpstore.SuccessiveHalving(),
            "patience": hpstore.Patience(patience=5, min_delta=0.005)}[name]


Result = tuple[int, float, list[dict[str, Any]]]


def run_hpstore(algorithm: str, rule: str, seed: int, trials: int, steps: int,
                given: list[dict[str, Any]] | None = None) -> Result:
    import hpstore

    hp = hpstore.HyperParameters()
    hp.Float("lr", 1e-4, 1.0, sampling="log")
    hp.Int("width", 1, 8)
    hp.Choice("act", ["relu", "tanh"])
    cls = {"random": hpstore.RandomSearchOracle,
           "bayesian": hpstore.BayesianOptimizationOracle}[algorithm]
    oracle = cls(hpstore.Objective("loss", "min"), max_trials=trials, hyperparameters=hp,
                 seed=seed, early_stopping=_hpstore_rule(rule))
    used, finals, seen = 0, [], []
    while (trial := oracle.create_trial("bench")).status == "RUNNING":
        v = trial.hyperparameters.values
        seen.append(dict(v))
        for step in range(steps):
            used += 1
            loss = value(v["lr"], v["width"], v["act"], step)
            if oracle.update_trial(trial.trial_id, {"loss": loss},
                                   step=step).status == "STOPPED":
                break
        else:
            finals.append(loss)
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    oracle.close()
    return used, min(finals, default=math.inf), seen


def run_optuna(algorithm: str, pruner: str, seed: int, trials: int, steps: int,
               given: list[dict[str, Any]] | None = None) -> Result:
    """Optuna with its own sampler, or, with ``given``, on exactly those trials in that
    order (enqueued), so its pruner and hpstore's rule judge the same curves."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler = (optuna.samplers.RandomSampler(seed=seed) if algorithm == "random"
               else optuna.samplers.TPESampler(seed=seed))
    # Own sampler: each pruner as Optuna sets it up. Replaying hpstore's trials: with
    # hpstore's settings where the defaults differ (halving: min_resource 1 and reduction
    # factor 3, against Optuna's "auto" and 4), so the same rule judges the same curves.
    halving = (optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
               if given is not None else optuna.pruners.SuccessiveHalvingPruner())
    pruners = {"none": optuna.pruners.NopPruner(), "median": optuna.pruners.MedianPruner(),
               "halving": halving}
    study = optuna.create_study(direction="minimize", sampler=sampler, pruner=pruners[pruner])
    for values in given or []:
        study.enqueue_trial(values)
    used, finals = 0, []
    for _ in range(trials):
        trial = study.ask()
        lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
        width = trial.suggest_int("width", 1, 8)
        act = trial.suggest_categorical("act", ["relu", "tanh"])
        pruned = False
        for step in range(steps):
            used += 1
            loss = value(lr, width, act, step)
            trial.report(loss, step)
            if trial.should_prune():
                pruned = True
                break
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            finals.append(loss)
            study.tell(trial, loss)
    return used, min(finals, default=math.inf), []


SAME_TRIALS = "Optuna, hpstore's trials"

SYSTEMS: list[tuple[str, str, str, Callable[..., Result]]] = [
    (f"hpstore {alg}", alg, rule, run_hpstore)
    for alg in ("random", "bayesian")
    for rule in ("none", "median", "percentile-25", "halving", "patience")
] + [
    (f"Optuna {'random' if alg == 'random' else 'TPE'}", alg, pruner, run_optuna)
    for alg in ("random", "bayesian")
    for pruner in ("none", "median", "halving")
] + [(SAME_TRIALS, "random", pruner, run_optuna) for pruner in ("median", "halving")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks stopping", description=__doc__)
    parser.add_argument("--trials", type=at_least(1), default=60)
    parser.add_argument("--steps", type=at_least(1), default=30)
    parser.add_argument("--seeds", type=at_least(1), default=5)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke: 12 trials of 10 steps, one seed")
    add_json_option(parser, "write the results here")
    args = parser.parse_args(argv)
    check_json(parser, args)
    if args.quick:
        args.trials, args.steps, args.seeds = 12, 10, 1
    systems = list(SYSTEMS)
    try:
        import optuna  # noqa: F401
    except ImportError:
        print("note: Optuna skipped (optuna is not installed)", file=sys.stderr)
        systems = [s for s in systems if s[3] is not run_optuna]
    runs: dict[str, list[tuple[int, float]]] = {}
    for seed in range(args.seeds):
        # hpstore's random trials of this seed, in order: the same whatever the rule, since
        # random search does not look at results; Optuna replays them for a rule-to-rule view.
        trials: list[dict[str, Any]] = []
        for name, algorithm, rule, run in systems:
            given = trials if name == SAME_TRIALS else None
            used, best, seen = run(algorithm, rule, seed, args.trials, args.steps, given)
            if name == "hpstore random" and rule == "none":
                trials = seen
            runs.setdefault(f"{name} | {rule}", []).append((used, best))
    full = args.trials * args.steps
    table = {key: (statistics.median(u for u, _ in r), statistics.median(b for _, b in r))
             for key, r in runs.items()}
    print(f"{args.trials} trials x {args.steps} steps ({full} steps without stopping), "
          f"median of {args.seeds} seeds\n")
    print("| system | rule | steps used | of all steps | best final value |")
    print("|---|---|---:|---:|---:|")
    for key, (used, best) in table.items():
        name, rule = key.split(" | ")
        print(f"| {name} | {rule} | {used:,.0f} | {used / full:.0%} | {best:.4f} |")
    lines = bars(table)
    print("\n" + "\n".join(lines))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"trials": args.trials, "steps": args.steps, "seeds": args.seeds,
                       "runs": runs, "median": table, "bars": lines}, f, indent=1)
    return 0


def bars(table: dict[str, tuple[float, float]]) -> list[str]:
    """The bar: the median rule saves at least as many steps as Optuna's MedianPruner at an
    equal or better best value. Judged rule against rule on the same trials (Optuna replaying
    hpstore's random trials); the comparisons where each system samples its own trials are
    reported beside it, where sampler luck moves the best value as much as the rule does."""
    out = []
    pairs = (("hpstore random | median", f"{SAME_TRIALS} | median", True),
             ("hpstore random | halving", f"{SAME_TRIALS} | halving", False),
             ("hpstore random | median", "Optuna random | median", False),
             ("hpstore bayesian | median", "Optuna TPE | median", False))
    for ours, theirs, is_bar in pairs:
        if ours not in table or theirs not in table:
            continue
        (used, best), (their_used, their_best) = table[ours], table[theirs]
        ok = used <= their_used and best <= their_best + 1e-9
        mark = ("met" if ok else "MISSED") if is_bar else ("as good" if ok else "report")
        out.append(f"- [{mark}] {ours}: {used:,.0f} steps, best {best:.4f}; "
                   f"{theirs}: {their_used:,.0f} steps, best {their_best:.4f}")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
