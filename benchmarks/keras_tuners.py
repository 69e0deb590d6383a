"""hpstore.keras beside KerasTuner's own tuner: the cost per trial, and several processes.

    python -m benchmarks keras [--trials 20] [--process-trials 24] [--repeats 3] [--quick]
                               [--json out.json]

1. The same RandomSearch on the same tiny Keras model (a Dense layer on 64 samples, two
   epochs), with KerasTuner's own oracle and with hpstore's, in one process, runs
   interleaved. Reported per trial: the wall time of ``search()``, and the bookkeeping:
   the time spent in the oracle's calls (create, update, end) and in saving the tuner's
   state (KerasTuner writes JSON files; hpstore has written everything by then).
   KerasTuner collects garbage before it builds each model, which with keras and torch
   loaded costs more than the training here and varies from run to run; the objects of
   the imports are frozen (``gc.freeze()``) so that the figures show the tuners' work.
2. A search of --process-trials trials run by 1 and by 2 processes of the same script on
   one search file (hpstore.keras; KerasTuner's own in 1 process for reference), timed
   from the start of the processes to the end of the last one (imports included), and
   from the first trial begun to the last trial ended.

Each figure is the median of --repeats runs. Needs keras-tuner, keras and a backend
(KERAS_BACKEND, torch by default here).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from benchmarks import add_json_option, at_least, check_json
from benchmarks.throughput import machine

KT, OURS = "KerasTuner RandomSearch (its own oracle)", "hpstore.keras RandomSearch"


def _data() -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int32")


def _build(hp: Any) -> Any:
    import keras

    model = keras.Sequential([keras.Input((8,)),
                              keras.layers.Dense(hp.Int("units", 4, 32, step=4),
                                                 activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-1, sampling="log")),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _tuner(system: str, folder: str, trials: int) -> Any:
    if system == KT:
        import keras_tuner as module
    else:
        import hpstore.keras as module
    return module.RandomSearch(_build, objective="val_accuracy", max_trials=trials, seed=1,
                               directory=folder, project_name="p")


def _timed(owner: Any, name: str, spent: list[float]) -> None:
    """Wrap ``owner.name`` so the seconds spent in it are added to ``spent``."""
    method = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start

    setattr(owner, name, wrapper)


def per_trial(system: str, trials: int) -> dict[str, float]:
    """Seconds per trial of ``search()``, and of the oracle's calls and state saving."""
    x, y = _data()
    with tempfile.TemporaryDirectory(prefix="hpstore-bench-") as folder, \
            contextlib.redirect_stdout(io.StringIO()):
        tuner = _tuner(system, folder, trials)
        spent = [0.0]
        for name in ("create_trial", "update_trial", "end_trial"):
            _timed(tuner.oracle, name, spent)
        _timed(tuner, "save", spent)
        start = time.perf_counter()
        tuner.search(x, y, epochs=2, validation_data=(x, y), verbose=0)
        wall = time.perf_counter() - start
        done = sum(t.status == "COMPLETED" for t in tuner.oracle.trials.values())
        if done != trials:
            raise RuntimeError(f"{system}: {done} of {trials} trials completed")
    return {"wall": wall / trials, "bookkeeping": spent[0] / trials}


def worker(folder: str, trials: int, system: str) -> None:
    """One process of the multi-process part: search, then print when it began and ended
    its trials (epoch seconds)."""
    x, y = _data()
    tuner = _tuner(system, folder, trials)
    first: list[float] = []

    class Clock:  # the first trial's start, as KerasTuner calls its hooks
        def __init__(self, inner: Callable[..., Any]) -> None:
            self.inner = inner

        def __call__(self, trial: Any) -> Any:
            if not first:
                first.append(time.time())
            return self.inner(trial)

    tuner.on_trial_begin = Clock(tuner.on_trial_begin)
    with contextlib.redirect_stdout(io.StringIO()):
        tuner.search(x, y, epochs=2, validation_data=(x, y), verbose=0)
    print(json.dumps({"first": first[0] if first else None, "last": time.time()}), flush=True)


def processes(system: str, count: int, trials: int) -> dict[str, float]:
    """Wall seconds for ``count`` processes to run a ``trials``-trial search together."""
    with tempfile.TemporaryDirectory(prefix="hpstore-bench-") as folder:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [os.path.dirname(os.path.dirname(os.path.abspath(__file__))), *sys.path])}
        start = time.time()
        procs = [subprocess.Popen(
            [sys.executable, "-m", "benchmarks.keras_tuners", "--worker", folder,
             "--process-trials", str(trials), "--system", system],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
            for _ in range(count)]
        outs = [p.communicate(timeout=1800)[0] for p in procs]
        end = time.time()
        if any(p.returncode for p in procs):
            raise RuntimeError(f"a worker failed: {[p.returncode for p in procs]}")
        marks = [json.loads(out.strip().splitlines()[-1]) for out in outs]
        firsts = [m["first"] for m in marks if m["first"] is not None]
        return {"wall": end - start, "search": max(m["last"] for m in marks) - min(firsts)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks keras", description=__doc__)
    parser.add_argument("--trials", type=at_least(1), default=20, help="trials per run of part 1")
    parser.add_argument("--process-trials", type=at_least(1), default=24)
    parser.add_argument("--repeats", type=at_least(1), default=3)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke: tiny sizes, 1 run, no KerasTuner in part 2")
    add_json_option(parser, "write the results here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--system", default=OURS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    check_json(parser, args)
    os.environ.setdefault("KERAS_BACKEND", "torch")
    if args.worker:
        worker(args.worker, args.process_trials, args.system)
        return 0
    if args.quick:
        args.trials, args.process_trials, args.repeats = 3, 4, 1
    try:
        import keras_tuner  # noqa: F401

        import hpstore.keras  # noqa: F401
    except ImportError as exc:
        print(f"note: the keras benchmark needs keras-tuner, keras and a backend ({exc})",
              file=sys.stderr)
        return 0
    gc.freeze()  # see the module's docstring
    per_trial(KT, 2)  # warm both up: first builds compile and cache
    per_trial(OURS, 2)
    costs: dict[str, list[dict[str, float]]] = {KT: [], OURS: []}
    for _ in range(args.repeats):
        for system in (KT, OURS):
            costs[system].append(per_trial(system, args.trials))
    gc.unfreeze()
    setups = [(KT, 1), (OURS, 1), (OURS, 2)][1 if args.quick else 0:]
    walls: dict[str, list[dict[str, float]]] = {f"{s}|{n}": [] for s, n in setups}
    for _ in range(args.repeats):
        for system, count in setups:
            walls[f"{system}|{count}"].append(processes(system, count, args.process_trials))
    results = {
        "machine": machine(), "trials": args.trials, "process_trials": args.process_trials,
        "repeats": args.repeats,
        "per_trial": {s: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                      for s, runs in costs.items()},
        "processes": {key: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                      for key, runs in walls.items()},
        "runs": {"per_trial": costs, "processes": walls},
    }
    print(markdown(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    return 0


def markdown(results: dict[str, Any]) -> str:
    """The two tables of the README's figures."""
    per, procs = results["per_trial"], results["processes"]
    lines = [f"{results['machine']}; median of {results['repeats']} interleaved runs", "",
             f"Per trial, {results['trials']} trials of a tiny model, two epochs each:", "",
             "| tuner | search() per trial | vs KerasTuner | bookkeeping per trial "
             "| vs KerasTuner |", "|---|---:|---:|---:|---:|"]
    for system in (KT, OURS):
        p = per[system]
        lines.append(f"| {system} | {p['wall'] * 1000:.1f} ms | "
                     f"{p['wall'] / per[KT]['wall']:.2f}x | {p['bookkeeping'] * 1000:.2f} ms | "
                     f"{p['bookkeeping'] / per[KT]['bookkeeping']:.2f}x |")
    base = procs[f"{OURS}|1"]
    lines += ["", f"A {results['process_trials']}-trial search, processes started together:",
              "", "| tuner | processes | wall, start to end | vs hpstore, 1 process "
              "| first trial to last | vs hpstore, 1 process |", "|---|---:|---:|---:|---:|---:|"]
    for key, p in procs.items():
        system, count = key.split("|")
        lines.append(f"| {system} | {count} | {p['wall']:.1f} s | "
                     f"{p['wall'] / base['wall']:.2f} | {p['search']:.1f} s | "
                     f"{p['search'] / base['search']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
