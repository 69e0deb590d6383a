"""Search quality: best value after 30, 60 and 100 trials, hpstore against its peers.

Every system runs the same problems with the same seeds in this one run. KerasTuner,
Optuna and scikit-learn are optional: a system whose package is missing is skipped with a
note, and so are the real-model problems without scikit-learn.

    python -m benchmarks quality [--suite core|full|quick] [--seeds 5] [--budget 100]
                                 [--checkpoints N ...] [--problems NAME ...]
                                 [--systems NAME ...] [--baseline REV]
                                 [--keras-tuner-suite core|full|quick|none] [--json FILE]
    python -m benchmarks quality --quick      # the CI smoke: a few problems, 1 seed, 12 trials

``--baseline REV`` adds the Bayesian oracle of an earlier commit as one more system
(``benchmarks.baseline``). KerasTuner's Bayesian oracle takes about 40 s per 100-trial search
here (its create_trial grows with the trials): ``--keras-tuner-suite`` (default: core) runs
it only on that suite's problems; its cell of the other rows is "-".

The "best value" of a noisy problem is the noise-free value of the trial whose observed
(noisy) value was best: what a user who picks the best-looking trial gets.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import os
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from typing import Any

# The models here are small: BLAS threads cost more than they give, and on a shared machine
# they turn timings into noise. One thread for every system (set before numpy loads).
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

from benchmarks import add_json_option, at_least, check_json  # noqa: E402
from benchmarks.compare import bars, outcome_tables, tie_tolerances  # noqa: E402
from benchmarks.problems import Param, Problem  # noqa: E402
from benchmarks.suite import SUITES  # noqa: E402
from benchmarks.suite import problem as find_problem  # noqa: E402

CHECKPOINTS = (30, 60, 100)
Evaluate = Callable[[dict[str, Any]], float]


class Evaluation:
    """The objective of one (problem, seed) run: returns what the system sees and records
    both the observed and the noise-free value of every trial."""

    def __init__(self, problem: Problem, seed: int) -> None:
        self.problem = problem
        # the same noise for every system on this seed, whatever order they ask in
        self._rng = np.random.default_rng([seed, zlib.crc32(problem.name.encode())])
        self.observed: list[float] = []
        self.true: list[float] = []

    def __call__(self, values: dict[str, Any]) -> float:
        value = float(self.problem.function(values))
        self.true.append(value)
        if self.problem.noise:
            value += self.problem.noise * float(self._rng.normal())
        self.observed.append(value)
        return value

    def best(self, n: int) -> float:
        """The noise-free value of the best-looking of the first ``n`` trials."""
        seen = self.observed[:n]
        return self.true[int(np.argmin(seen))] if seen else float("nan")


def _active(param: Param, values: dict[str, Any]) -> bool:
    return param.parent is None or values.get(param.parent[0]) in param.parent[1]


# -- hpstore ------------------------------------------------------------------------------------
def hpstore_space(problem: Problem) -> Any:
    import hpstore

    hp = hpstore.HyperParameters()
    for p in problem.space:
        kwargs: dict[str, Any] = {} if p.parent is None else {
            "parent_name": p.parent[0], "parent_values": list(p.parent[1])}
        if p.kind == "float":
            hp.Float(p.name, *p.args, **kwargs)
        elif p.kind == "log":
            hp.Float(p.name, *p.args, sampling="log", **kwargs)
        elif p.kind == "int":
            hp.Int(p.name, *p.args, **kwargs)
        elif p.kind == "logint":
            hp.Int(p.name, *p.args, sampling="log", **kwargs)
        else:
            hp.Choice(p.name, list(p.args), **kwargs)
    return hp


def run_hpstore(kind: str) -> Callable[[Problem, int, int, Evaluate], None]:
    def run(problem: Problem, seed: int, budget: int, evaluate: Evaluate) -> None:
        import hpstore

        cls = {"random": hpstore.RandomSearchOracle,
               "bayesian": hpstore.BayesianOptimizationOracle}[kind]
        oracle = cls(hpstore.Objective("value", "min"), max_trials=budget,
                     hyperparameters=hpstore_space(problem), seed=seed)
        drive(oracle, evaluate)
    return run


def drive(oracle: Any, evaluate: Evaluate) -> None:
    """Run an oracle (hpstore's or KerasTuner's: the same contract) until it stops."""
    while (trial := oracle.create_trial("bench")).status == "RUNNING":
        oracle.update_trial(trial.trial_id, {"value": evaluate(trial.hyperparameters.values)})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)


# -- KerasTuner ---------------------------------------------------------------------------------
def keras_tuner_oracle(problem: Problem, seed: int, budget: int, folder: str,
                       initial: int | None = None) -> Any:
    """KerasTuner's Bayesian oracle on ``problem``, keeping its project under ``folder``."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras_tuner as kt

    hp = kt.HyperParameters()
    for p in problem.space:
        kwargs: dict[str, Any] = {} if p.parent is None else {
            "parent_name": p.parent[0], "parent_values": list(p.parent[1])}
        if p.kind in ("float", "log"):
            hp.Float(p.name, *p.args, sampling="log" if p.kind == "log" else "linear", **kwargs)
        elif p.kind in ("int", "logint"):
            hp.Int(p.name, *p.args, sampling="log" if p.kind == "logint" else "linear",
                   **kwargs)
        else:
            hp.Choice(p.name, list(p.args), **kwargs)
    oracle = kt.oracles.BayesianOptimizationOracle(
        objective=kt.Objective("value", "min"), max_trials=budget, seed=seed,
        hyperparameters=hp, num_initial_points=initial)
    oracle._set_project_dir(folder, "p")
    return oracle


def run_keras_tuner(problem: Problem, seed: int, budget: int, evaluate: Evaluate) -> None:
    # KerasTuner's oracle prints a table per trial; keep the report readable.
    with contextlib.redirect_stdout(io.StringIO()), \
            tempfile.TemporaryDirectory(prefix="kt-bench-") as folder:
        drive(keras_tuner_oracle(problem, seed, budget, folder), evaluate)


# -- Optuna ----------------------------------------------------------------------------------------
def run_optuna_tpe(problem: Problem, seed: int, budget: int, evaluate: Evaluate) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    for _ in range(budget):
        trial = study.ask()
        values: dict[str, Any] = {}
        for p in problem.space:
            if not _active(p, values):
                continue
            if p.kind in ("float", "log"):
                values[p.name] = trial.suggest_float(p.name, *p.args, log=p.kind == "log")
            elif p.kind in ("int", "logint"):
                low, high, *step = p.args
                values[p.name] = trial.suggest_int(p.name, low, high, step=step[0] if step else 1,
                                                   log=p.kind == "logint")
            else:
                values[p.name] = trial.suggest_categorical(p.name, list(p.args))
        study.tell(trial, evaluate(values))


SYSTEMS: dict[str, tuple[Callable[[Problem, int, int, Evaluate], None], str | None]] = {
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
    except Exception as exc:  # not installed, or installed without what it needs (torch)
        print(f"note: {module} cannot be imported: {exc}", file=sys.stderr)
        return False
    return True


# -- create_trial latency of the Bayesian oracles -------------------------------------------------
def bayesian_latency(completed: int, repeats: int = 5, keras_tuner: bool = True,
                     problems: tuple[str, ...] = ("mixed",)
                     ) -> dict[str, dict[str, float]]:
    """Seconds per create_trial once ``completed`` trials have finished (the first call
    and the median of ``repeats`` calls), on each of ``problems`` (KerasTuner's on the
    first only). Each result is named "SYSTEM" on the first problem, "SYSTEM, PROBLEM"
    on the others."""
    import hpstore

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="kt-bench-") as scratch:
        for i, name in enumerate(problems):
            chosen = find_problem(name)
            suffix = "" if i == 0 else f", {name}"
            makers: dict[str, Callable[[], Any]] = {
                "hpstore bayesian": functools.partial(
                    hpstore.BayesianOptimizationOracle, hpstore.Objective("value", "min"),
                    max_trials=completed + repeats + 1, hyperparameters=hpstore_space(chosen),
                    seed=1, num_initial_points=completed),
            }
            if i == 0 and keras_tuner and available("keras_tuner"):
                makers["KerasTuner bayesian"] = functools.partial(
                    keras_tuner_oracle, chosen, 1, completed + repeats + 1, scratch,
                    initial=completed)
            for system, make in makers.items():
                with contextlib.redirect_stdout(io.StringIO()):
                    results[system + suffix] = _time_creates(make(), chosen, completed, repeats)
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


# -- the run ---------------------------------------------------------------------------------------
def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks quality", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=sorted(SUITES), default="core",
                        help="which problems: core (the original four), full, quick")
    parser.add_argument("--quick", action="store_true",
                        help="the CI smoke: the quick suite, 1 seed, 12 trials")
    parser.add_argument("--seeds", type=at_least(1), default=None, help="seeds 1..N (default 5)")
    parser.add_argument("--budget", type=at_least(1), default=None, help="trials (default 100)")
    parser.add_argument("--checkpoints", type=at_least(1), nargs="*", default=list(CHECKPOINTS),
                        help="trial counts at which the best value is read (default 30 60 100)")
    parser.add_argument("--problems", nargs="*", help="only these problems of the suite")
    parser.add_argument("--systems", nargs="*", help=f"only these of {list(SYSTEMS)}")
    parser.add_argument("--baseline", metavar="REV",
                        help="also run the Bayesian oracle of this git revision")
    parser.add_argument("--keras-tuner-suite", choices=[*sorted(SUITES), "none"],
                        help="run KerasTuner's oracle only on the problems of this suite "
                        "(default: core, quick with --quick; it is slow)")
    parser.add_argument("--latency", type=at_least(1), nargs="*", default=None,
                        help="completed-trial counts at which to time create_trial "
                             "(default 100 300 1000; KerasTuner at 300 at most)")
    parser.add_argument("--latency-problems", nargs="+", default=["mixed"], metavar="NAME",
                        help="problems of the full suite create_trial is timed on "
                        "(default: mixed; KerasTuner on the first only)")
    add_json_option(parser, "write the results here")
    args = parser.parse_args(argv)
    check_json(parser, args)
    if args.quick:
        args.suite = "quick"
    quick = args.quick
    args.keras_tuner_suite = args.keras_tuner_suite or ("quick" if quick else "core")
    args.seeds = args.seeds or (1 if quick else 5)
    args.budget = args.budget or (12 if quick else 100)
    if args.latency is None:
        args.latency = [30] if quick else [100, 300, 1000]
    for name in args.systems or []:
        if name not in SYSTEMS:
            parser.error(f"unknown system {name!r}; choose among {list(SYSTEMS)}")
    if args.baseline is not None:
        from benchmarks import baseline

        try:
            args.baseline_run = baseline.runner(args.baseline)
        except baseline.BaselineError as e:
            parser.error(str(e))
    everything = {p.name for p in SUITES["full"]}
    for name in args.latency_problems:
        if name not in everything:
            parser.error(f"--latency-problems: {name!r} is not a problem; choose among "
                         f"{sorted(everything)}")
    known = {p.name for p in SUITES[args.suite]}
    for name in args.problems or []:
        if name not in known:
            parser.error(f"{name!r} is not in the {args.suite} suite; choose among "
                         f"{sorted(known)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    checkpoints = sorted({c for c in args.checkpoints if 0 < c <= args.budget}) or [args.budget]
    systems = {n: s for n, s in SYSTEMS.items() if not args.systems or n in args.systems}
    if args.baseline is not None:  # beside today's oracle
        names = list(systems)
        at = names.index("hpstore bayesian") + 1 if "hpstore bayesian" in names else len(names)
        names.insert(at, f"hpstore bayesian at {args.baseline}")
        systems[names[at]] = (args.baseline_run, None)
        systems = {n: systems[n] for n in names}
    slow = ({p.name for p in SUITES[args.keras_tuner_suite]}
            if args.keras_tuner_suite != "none" else set())
    for name, (_, module) in list(systems.items()):
        if not available(module):
            print(f"note: {name} skipped ({module} cannot be imported)", file=sys.stderr)
            del systems[name]
    problems = [p for p in SUITES[args.suite] if not args.problems or p.name in args.problems]
    if any(p.kind == "model" for p in problems) and not available("sklearn"):
        print("note: the real-model problems skipped (scikit-learn is not installed)",
              file=sys.stderr)
        problems = [p for p in problems if p.kind != "model"]
    results: dict[str, Any] = {
        "suite": args.suite, "checkpoints": checkpoints, "seeds": args.seeds, "best": {},
        "problems": {p.name: {"optimum": p.optimum, "kind": p.kind, "noise": p.noise}
                     for p in problems}}
    for problem in problems:
        for name, (run, _) in systems.items():
            if name == "KerasTuner bayesian" and problem.name not in slow:
                continue
            per_seed, seconds = [], []
            for seed in range(1, args.seeds + 1):
                evaluation = Evaluation(problem, seed)
                started = time.perf_counter()
                run(problem, seed, args.budget, evaluation)
                seconds.append(time.perf_counter() - started)
                per_seed.append([evaluation.best(c) for c in checkpoints])
            medians = [statistics.median(s[i] for s in per_seed) for i in range(len(checkpoints))]
            results["best"].setdefault(problem.name, {})[name] = {
                "median": medians, "per_seed": per_seed, "seconds": seconds}
            print(f"{problem.name:16} {name:20} " + " ".join(f"{m:11.5g}" for m in medians)
                  + f"   ({sum(seconds):.1f} s)", file=sys.stderr, flush=True)
    # KerasTuner's create_trial takes seconds past 300 trials (and in the smoke, longer
    # than everything else together): it is timed at 300 completed trials at most.
    timed_kt = "KerasTuner bayesian" in systems and not args.quick
    results["latency"] = {n: bayesian_latency(n, keras_tuner=timed_kt and n <= 300,
                                              problems=tuple(args.latency_problems))
                          for n in args.latency}
    results["tolerance"] = tie_tolerances(results)
    results["bars"] = bars(results)
    print(markdown(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    return 0


def markdown(results: dict[str, Any]) -> str:
    lines = [f"Median over {results['seeds']} seeds of the best value found (lower is better; "
             "the optimum in brackets where it is known). W/T/L: hpstore bayesian against "
             "Optuna TPE and against hpstore random on that row.", ""]
    lines += outcome_tables(results)
    lines += ["", "| create_trial of the Bayesian oracle | first call | median of 5 |",
              "|---|---:|---:|"]
    for n, systems in results["latency"].items():
        for name, t in systems.items():
            system, _, problem = name.partition(", ")
            label = f"{system}, {n} completed trials" + (f", {problem}" if problem else "")
            lines.append(f"| {label} | {t['first'] * 1000:.0f} ms | "
                         f"{t['median'] * 1000:.0f} ms |")
    if results["bars"]:
        lines += [""] + [f"- {bar}" for bar in results["bars"]]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
