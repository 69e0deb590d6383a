"""How hpstore holds up as a search grows: growth, processes, resume, queries, memory, disk.

    python -m benchmarks scale [--sizes 1000 10000 100000] [--processes 1 2 4 8]
                               [--json scale.json]

Every figure is measured in this run; Optuna's JournalFileBackend replay is measured on
the same number of trials when optuna is installed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import tempfile
import time
from typing import Any

SPACE = (("x", -10.0, 10.0), ("y", 0, 10), ("c", ("a", "b")))


def _oracle(path: str, max_trials: int | None, **kwargs: Any) -> Any:
    import hpstore

    hp = hpstore.HyperParameters()
    hp.Float("x", -10, 10)
    hp.Int("y", 0, 10)
    hp.Choice("c", ["a", "b"])
    return hpstore.RandomSearchOracle("loss", max_trials=max_trials, hyperparameters=hp,
                                      seed=1, database=path, **kwargs)


def _score(values: dict[str, Any]) -> float:
    return (values["x"] - 3) ** 2 + values["y"] + (values["c"] == "a")


def _run(oracle: Any, n: int | None = None, tuner_id: str = "bench") -> list[float]:
    """Complete trials; return the time at which each one ended."""
    ends = []
    while n is None or len(ends) < n:
        trial = oracle.create_trial(tuner_id)
        if trial.status != "RUNNING":
            break
        oracle.update_trial(trial.trial_id, {"loss": _score(trial.hyperparameters.values)})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        ends.append(time.perf_counter())
    return ends


def growth(size: int, folder: str) -> dict[str, float]:
    """Trials per second over the first and the last 1,000 trials of a ``size`` search."""
    path = os.path.join(folder, f"growth-{size}.db")
    oracle = _oracle(path, size)
    start = time.perf_counter()
    ends = _run(oracle)
    window = min(1000, size // 2)
    first = window / (ends[window - 1] - start)
    last = window / (ends[-1] - ends[-window - 1])
    oracle.close()
    return {"trials": size, "first_per_s": first, "last_per_s": last,
            "bytes_per_trial": os.path.getsize(path) / size}


def _process_worker(path: str, tuner_id: str, ready: Any, start: Any, results: Any) -> None:
    errors, done = [], 0
    try:
        oracle = _oracle(path, None)  # None: the stored max_trials
        ready.put(tuner_id)
        start.wait(60)
        done = len(_run(oracle, tuner_id=tuner_id))
    except Exception as exc:  # counted, not hidden
        errors.append(f"{type(exc).__name__}: {exc}")
    results.put((done, errors))


def processes(count: int, trials: int, folder: str) -> dict[str, Any]:
    """Aggregate trials per second with ``count`` processes on one file; errors counted."""
    import sqlite3

    path = os.path.join(folder, f"procs-{count}.db")
    _oracle(path, trials).close()
    ctx = mp.get_context("spawn")
    ready, start, results = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_process_worker, args=(path, f"w{i}", ready, start, results))
             for i in range(count)]
    for p in procs:
        p.start()
    for _ in procs:  # every process has imported and opened the file: start the clock
        ready.get(timeout=120)
    began = time.perf_counter()
    start.set()
    reports = [results.get(timeout=600) for _ in procs]
    elapsed = time.perf_counter() - began
    for p in procs:
        p.join(60)
    conn = sqlite3.connect(path)
    distinct, total = conn.execute("SELECT count(DISTINCT values_key), count(*) FROM trials"
                                   ).fetchone()
    return {"processes": count, "per_s": sum(d for d, _ in reports) / elapsed,
            "errors": sum(len(e) for _, e in reports), "duplicates": total - distinct,
            "error_messages": [m for _, e in reports for m in e][:5]}


def resume_and_queries(size: int, folder: str) -> dict[str, float]:
    """On a finished ``size``-trial file: Oracle() to the first new trial, and
    get_best_trials(10)."""
    path = os.path.join(folder, f"growth-{size}.db")
    if not os.path.exists(path):
        growth(size, folder)
    began = time.perf_counter()
    oracle = _oracle(path, size + 10)
    trial = oracle.create_trial("resumer")
    resume = time.perf_counter() - began
    oracle.update_trial(trial.trial_id, {"loss": 1.0})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        oracle.get_best_trials(10)
        times.append(time.perf_counter() - t0)
    return {"trials": size, "resume_s": resume, "best10_s": statistics.median(times)}


def _rss_child(size: int, folder: str, out: Any) -> None:
    growth(size, folder)
    out.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # KiB -> MiB on Linux


def peak_rss(size: int, folder: str) -> float:
    """Peak resident memory (MiB) of a process that runs a ``size``-trial search."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_rss_child, args=(size, os.path.join(folder, "rss"), out))
    os.makedirs(os.path.join(folder, "rss"), exist_ok=True)
    proc.start()
    value = out.get(timeout=3600)
    proc.join(60)
    return float(value)


def optuna_journal_replay(size: int, folder: str) -> float | None:
    """Seconds for Optuna to load a JournalFileBackend study of ``size`` trials."""
    try:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend
    except ImportError:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = os.path.join(folder, f"journal-{size}.log")
    storage = JournalStorage(JournalFileBackend(path))
    study = optuna.create_study(study_name="s", storage=storage)
    for _ in range(size):
        trial = study.ask()
        x = trial.suggest_float("x", -10, 10)
        y = trial.suggest_int("y", 0, 10)
        c = trial.suggest_categorical("c", ["a", "b"])
        trial.report((x - 3) ** 2, 0)
        study.tell(trial, (x - 3) ** 2 + y + (c == "a"))
    began = time.perf_counter()
    loaded = optuna.load_study(study_name="s",
                               storage=JournalStorage(JournalFileBackend(path)))
    loaded.ask()
    return time.perf_counter() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks scale", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000, 100000])
    parser.add_argument("--processes", type=int, nargs="*", default=[1, 2, 4, 8])
    parser.add_argument("--process-trials", type=int, default=4000)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"growth": [], "processes": [], "resume": []}
    with tempfile.TemporaryDirectory(prefix="hpstore-scale-") as folder:
        for size in args.sizes:
            results["growth"].append(growth(size, folder))
            print(f"growth {results['growth'][-1]}", file=sys.stderr, flush=True)
        for count in args.processes:
            results["processes"].append(processes(count, args.process_trials, folder))
            print(f"processes {results['processes'][-1]}", file=sys.stderr, flush=True)
        for size in (min(args.sizes), max(args.sizes)):
            row = resume_and_queries(size, folder)
            row["optuna_journal_replay_s"] = optuna_journal_replay(size, folder)
            row["peak_rss_mib"] = peak_rss(size, folder)
            results["resume"].append(row)
            print(f"resume {row}", file=sys.stderr, flush=True)
    print(markdown(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    return 0


def markdown(results: dict[str, Any]) -> str:
    lines = ["| search size | first 1,000 trials/s | last 1,000 trials/s | last / first | "
             "bytes per trial |", "|---:|---:|---:|---:|---:|"]
    for g in results["growth"]:
        lines.append(f"| {g['trials']:,} | {g['first_per_s']:,.0f} | {g['last_per_s']:,.0f} | "
                     f"{g['last_per_s'] / g['first_per_s']:.2f} | {g['bytes_per_trial']:,.0f} |")
    lines += ["", "| processes | trials/s (all together) | vs 1 process | errors | duplicates |",
              "|---:|---:|---:|---:|---:|"]
    one = (results["processes"][0]["per_s"] if results["processes"] else 0.0) or 1.0
    for p in results["processes"]:
        lines.append(f"| {p['processes']} | {p['per_s']:,.0f} | {p['per_s'] / one:.2f} | "
                     f"{p['errors']} | {p['duplicates']} |")
    lines += ["", "| trials in the file | resume to first new trial | Optuna journal replay | "
              "get_best_trials(10) | peak RSS |", "|---:|---:|---:|---:|---:|"]
    for r in results["resume"]:
        journal = r["optuna_journal_replay_s"]
        journal_text = "-" if journal is None else f"{journal * 1000:,.0f} ms"
        lines.append(f"| {r['trials']:,} | {r['resume_s'] * 1000:,.1f} ms | {journal_text} | "
                     f"{r['best10_s'] * 1000:,.2f} ms | {r['peak_rss_mib']:,.0f} MiB |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
