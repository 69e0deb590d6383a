"""What one more step costs as a trial reports many: Tuner.report per step, up to 100,000.

    python -m benchmarks steps [--steps 1000 10000 100000] [--rule median] [--json out.json]

One trial of a search file reports ``loss`` at steps 0, 1, 2, ... through ``Tuner.report``
(one transaction per step, and the caller's copy of the trial's metrics kept current),
and, apart, through a bare ``MetricsTracker`` (no file). For each size the table gives the
cost per step of the first and of the last 1,000 steps: reporting is linear when the two
agree, whatever the size. With ``--rule``, a stopping rule (one that never stops this lone
trial) judges every report, in the transaction that records it. The bar: the last 1,000
steps of the largest size cost at most twice the first 1,000.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from typing import Any

from benchmarks import add_json_option, at_least, check_json

WINDOW = 1_000


def _loss(step: int) -> float:
    # falls, with noise, so the best step keeps moving as in a real training curve
    return 1.0 / (1 + step) + 0.01 * math.sin(step)


def _per_step(times: list[float]) -> tuple[float, float]:
    """Microseconds per step over the first and the last WINDOW steps."""
    window = min(WINDOW, len(times) - 1)
    first = (times[window] - times[0]) / window
    last = (times[-1] - times[-1 - window]) / window
    return first * 1e6, last * 1e6


RULES = ("none", "median", "threshold", "patience")


def _rule(name: str) -> Any:
    """A stopping rule that judges every report and never stops a lone trial."""
    import hpstore

    return {"none": None, "median": hpstore.MedianStopping(),
            "threshold": hpstore.Threshold(upper=1e9),
            "patience": hpstore.Patience(patience=10**9)}[name]


def tuner_report(steps: int, folder: str, rule: str = "none") -> dict[str, Any]:
    import hpstore

    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 1)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=1, hyperparameters=hp, seed=1,
                                        database=os.path.join(folder, f"steps-{steps}.db"),
                                        early_stopping=_rule(rule))
    tuner = hpstore.Tuner(oracle, verbose=0)
    trial = oracle.create_trial("bench")
    times = [time.perf_counter()]
    for step in range(steps):
        tuner.report(trial, {"loss": _loss(step)}, step=step)
        times.append(time.perf_counter())
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    oracle.close()
    first, last = _per_step(times)
    return {"steps": steps, "total_s": times[-1] - times[0], "first_us": first, "last_us": last,
            "best_step": trial.metrics.get_best_step("loss")}


def tracker_update(steps: int) -> dict[str, Any]:
    from hpstore import MetricsTracker

    tracker = MetricsTracker()
    times = [time.perf_counter()]
    for step in range(steps):
        tracker.update("loss", _loss(step), step=step)
        times.append(time.perf_counter())
    first, last = _per_step(times)
    return {"steps": steps, "total_s": times[-1] - times[0], "first_us": first, "last_us": last}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks steps", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=at_least(2), nargs="+", default=[1_000, 10_000, 100_000],
                        help="trial lengths to measure (each at least 2)")
    parser.add_argument("--rule", choices=RULES, default="none",
                        help="a stopping rule judging every report (default: none)")
    add_json_option(parser, "also write the figures to this file")
    args = parser.parse_args(argv)
    check_json(parser, args)
    results: dict[str, Any] = {"report": [], "tracker": [], "rule": args.rule}
    print("| steps | Tuner.report total | first 1,000 µs/step | last 1,000 µs/step | last / "
          "first | MetricsTracker first µs/step | last µs/step |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="hpstore-steps-") as folder:
        for steps in sorted(args.steps):
            report, tracker = tuner_report(steps, folder, args.rule), tracker_update(steps)
            results["report"].append(report)
            results["tracker"].append(tracker)
            print(f"| {steps:,} | {report['total_s']:.2f} s | {report['first_us']:.1f} | "
                  f"{report['last_us']:.1f} | {report['last_us'] / report['first_us']:.2f} | "
                  f"{tracker['first_us']:.2f} | {tracker['last_us']:.2f} |", flush=True)
    largest = results["report"][-1]
    ratio = largest["last_us"] / largest["first_us"]
    bar = (f"[{'met' if ratio <= 2 else 'missed'}] the last {WINDOW:,} of {largest['steps']:,} "
           f"steps at {ratio:.2f}x the cost of the first {WINDOW:,} (bar: at most 2x)")
    results["bars"] = [bar]
    print(f"\n- {bar}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
