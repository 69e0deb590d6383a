"""Search quality: best value after 30, 60 and 100 trials, hpstore against its peers.

Every system runs the same problems with the same seeds in this one run. KerasTuner and
Optuna are optional: a system whose package is missing is skipped with a note.

    python -m benchmarks quality [--seeds 5] [--budget 100] [--json quality.json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from benchmarks.problems import PROBLEMS, Param, Problem

CHECKPOINTS = (30, 60, 100)


def _active(param: Param, values: dict[str, Any]) -> bool:
    return param.parent is None or values.get(param.parent[0]) in param.parent[1]


# -- hpstore ------------------------------------------------------------------------------------
def hpstore_space(problem: Problem) -> Any:
    import hpstore

    hp = hpstore.HyperParameters()
    for p in problem.space:
        kwargs = {} if p.parent is None else {"parent_name": p.parent[0],
                                             "parent_values": list(p.parent[1])}
        if p.kind == "float":
            hp.Float(p.name, *p.args, **kwargs)
        elif p.kind == "log":
            hp.Float(p.name, *p.args, sampling="log", **kwargs)
        elif p.kind == "int":
            hp.Int(p.name, *p.args, **kwargs)
        else:
            hp.Choice(p.name, list(p.args), **kwargs)
    return hp


def run_hpstore(kind: str) -> Callable[[Problem, int, int], list[float]]:
    def run(problem: Problem, seed: int, budget: int) -> list[float]:
        import hpstore

        cls = {"random": hpstore.RandomSearchOracle,
               "bayesian": hpstore.BayesianOptimizationOracle}[kind]
        oracle = cls(hpstore.Objective("value", "min"), max_trials=budget,
                     hyperparameters=hpstore_space(problem), seed=seed)
        return drive(oracle, problem)
    return run


def drive(oracle: Any, problem: Problem) -> list[float]:
    """Run an oracle (hpstore's or KerasTuner's: the same contract) until it stops."""
    scores = []
    while (trial := oracle.create_trial("bench")).status == "RUNNING":
        value = problem.function(trial.hyperparameters.values)
        oracle.update_trial(trial.trial_id, {"value": value})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        scores.append(value)
    return scores


# -- KerasTuner ---------------------------------------------------------------------------------
def keras_tuner_oracle(problem: Problem, seed: int, budget: int, initial: int | None = None
                       ) -> Any:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras_tuner as kt

    hp = kt.HyperParameters()
    for p in problem.space:
        kwargs = {} if p.parent is None else {"parent_name": p.parent[0],
                                             "parent_values": list(p.parent[1])}
        if p.kind in ("float", "log"):
            hp.Float(p.name, *p.args, sampling="log" if p.kind == "log" else "linear", **kwargs)
        elif p.kind == "int":
            hp.Int(p.name, *p.args, **kwargs)
        else:
            hp.Choice(p.name, list(p.args), **kwargs)
    oracle = kt.oracles.BayesianOptimizationOracle(
        objective=kt.Objective("value", "min"), max_trials=budget, seed=seed,
        hyperparameters=hp, num_initial_points=initial)
    oracle._set_project_dir(tempfile.mkdtemp(prefix="kt-bench-"), "p")
    return oracle


def run_keras_tuner(problem: Problem, seed: int, budget: int) -> list[float]:
    # KerasTuner's oracle prints a table per trial; keep the report readable.
    with contextlib.redirect_stdout(io.StringIO()):
        return drive(keras_tuner_oracle(problem, seed, budget), problem)


# -- Optuna ----------------------------------------------------------------------------------------
def run_optuna_tpe(problem: Problem, seed: int, budget: int) -> list[float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    scores = []
    for _ in range(budget):
        trial = study.ask()
        values: dict[str, Any] = {}
        for p in problem.space:
            if not _active(p, values):
                continue
            if p.kind in ("float", "log"):
                values[p.name] = trial.suggest_float(p.name, *p.args, log=p.kind == "log")
            elif p.kind == "int":
                values[p.name] = trial.suggest_int(p.name, *p.args)
            else:
                values[p.name] = trial.suggest_categorical(p.name, list(p.args))
        value = problem.function(values)
        study.tell(trial, value)
        scores.append(value)
    return scores


SYSTEMS: dict[str, tuple[Callable[..., list[float]], str | None]] = {
    "hpstore random": (run_hpstore("random"), None),
    "hpstore bayesian": (run_hpstore("bayesian"), None),
    "KerasTuner bayesian": (run_keras_tuner, "keras_tuner"),
    "Optuna TPE": (run_optuna_tpe, "optuna"),
}


def available(module: str | None) -> bool:
    if module is None:
        return True
    if module == "keras_tuner":
        os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        __import__(module)
    except Exception:
        return False
    return True


# -- create_trial latency of the Bayesian oracles -------------------------------------------------
def bayesian_latency(completed: int, repeats: int = 5) -> dict[str, dict[str, float]]:
    """Seconds per create_trial once ``completed`` trials have finished (the first call
    and the median of ``repeats`` calls), on the mixed problem."""
    import hpstore

    problem = PROBLEMS[0]
    results: dict[str, dict[str, float]] = {}
    makers: dict[str, Callable[[], Any]] = {
        "hpstore bayesian": lambda: hpstore.BayesianOptimizationOracle(
            hpstore.Objective("value", "min"), max_trials=completed + repeats + 1,
            hyperparameters=hpstore_space(problem), seed=1, num_initial_points=completed),
    }
    if available("keras_tuner"):
        makers["KerasTuner bayesian"] = lambda: keras_tuner_oracle(
            problem, 1, completed + repeats + 1, initial=completed)
    for name, make in makers.items():
        with contextlib.redirect_stdout(io.StringIO()):
            results[name] = _time_creates(make(), problem, completed, repeats)
    return results


def _time_creates(oracle: Any, problem: Problem, completed: int, repeats: int
                  ) -> dict[str, float]:
    times = []
    for i in range(completed + repeats):
        start = time.perf_counter()
        trial = oracle.create_trial("bench")
        if i >= completed:
            times.append(time.perf_counter() - start)
        oracle.update_trial(trial.trial_id,
                            {"value": problem.function(trial.hyperparameters.values)})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    return {"first": times[0], "median": statistics.median(times)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks quality", description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--problems", nargs="*", default=[p.name for p in PROBLEMS])
    parser.add_argument("--latency", type=int, nargs="*", default=[100, 300],
                        help="completed-trial counts at which to time create_trial")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    checkpoints = [c for c in CHECKPOINTS if c <= args.budget] or [args.budget]
    results: dict[str, Any] = {"checkpoints": checkpoints, "seeds": args.seeds, "best": {}}
    for name, (_, module) in SYSTEMS.items():
        if not available(module):
            print(f"note: {name} skipped ({module} is not installed)", file=sys.stderr)
    for problem in (p for p in PROBLEMS if p.name in args.problems):
        for name, (run, module) in SYSTEMS.items():
            if not available(module):
                continue
            per_seed = []
            started = time.perf_counter()
            for seed in range(1, args.seeds + 1):
                scores = run(problem, seed, args.budget)
                per_seed.append([min(scores[:c]) for c in checkpoints])
            medians = [statistics.median(s[i] for s in per_seed) for i in range(len(checkpoints))]
            results["best"].setdefault(problem.name, {})[name] = {
                "median": medians, "per_seed": per_seed}
            print(f"{problem.name:12} {name:20} " + " ".join(f"{m:10.4f}" for m in medians)
                  + f"   ({time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)
    results["latency"] = {n: bayesian_latency(n) for n in args.latency}
    print(markdown(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    return 0


def markdown(results: dict[str, Any]) -> str:
    cps = results["checkpoints"]
    lines = [f"Median over {results['seeds']} seeds of the best value found "
             "(lower is better; the optimum in brackets).", "",
             "| problem | system | " + " | ".join(f"after {c}" for c in cps) + " |",
             "|---|---|" + "---:|" * len(cps)]
    optimum = {p.name: p.optimum for p in PROBLEMS}
    for problem, systems in results["best"].items():
        for name, r in systems.items():
            cells = " | ".join(f"{m:.4f}" for m in r["median"])
            lines.append(f"| {problem} ({optimum[problem]:g}) | {name} | {cells} |")
    lines += ["", "| create_trial of the Bayesian oracle | first call | median of 5 |",
              "|---|---:|---:|"]
    for n, systems in results["latency"].items():
        for name, t in systems.items():
            lines.append(f"| {name}, {n} completed trials | {t['first'] * 1000:.0f} ms | "
                         f"{t['median'] * 1000:.0f} ms |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
