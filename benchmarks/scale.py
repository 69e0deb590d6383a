"""How hpstore holds up as a search grows: growth, processes, resume, queries, memory, disk.

    python -m benchmarks scale [--sizes 1000 10000 100000] [--processes 1 2 4 8]
                               [--parts growth processes resume] [--json scale.json]

Every figure is measured in this run; Optuna's JournalFileBackend replay is measured on
the same number of trials when optuna is installed. Growth and processes are also measured
for hpstore's schema written by hand with no library code (benchmarks/by_hand.py): the
floor under hpstore's own figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import resource
import statistics
import sys
import tempfile
import time
from typing import Any

from benchmarks import add_json_option, at_least, by_hand, check_json, lock_time
from benchmarks.throughput import keras_tuner_oracle, machine

SPACE = (("x", -10.0, 10.0), ("y", 0, 10), ("c", ("a", "b")))
PARTS = ("growth", "processes", "resume")


def _oracle(path: str, max_trials: int | None) -> Any:
    return by_hand.space_oracle(path, max_trials)


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


def _process_worker(path: str, tuner_id: str, ready: Any, start: Any, results: Any,
                    timed: bool = False) -> None:
    errors, done, timing = [], 0, None
    try:
        oracle = _oracle(path, None)  # None: the stored max_trials
        ready.put(tuner_id)
        start.wait(60)
        timing = lock_time.follow() if timed else None
        done = len(_run(oracle, tuner_id=tuner_id))
    except Exception as exc:  # counted, not hidden
        errors.append(f"{type(exc).__name__}: {exc}")
    results.put((done, errors, None if timing is None else timing.figures()))


def processes(count: int, trials: int, folder: str, timed: bool = False) -> dict[str, Any]:
    """Aggregate trials per second with ``count`` processes on one new file; errors counted;
    ``timed``: the workers time their turns (``lock``: where a trial's processor time went,
    see :mod:`benchmarks.lock_time`)."""
    import sqlite3

    path = os.path.join(tempfile.mkdtemp(dir=folder), f"procs-{count}.db")
    _oracle(path, trials).close()
    ctx = mp.get_context("spawn")
    ready, start, results = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_process_worker,
                         args=(path, f"w{i}", ready, start, results, timed))
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
    done = sum(d for d, _, _ in reports)
    return {"processes": count, "per_s": done / elapsed,
            "errors": sum(len(e) for _, e, _ in reports), "duplicates": total - distinct,
            "error_messages": [m for _, e, _ in reports for m in e][:5],
            "lock": lock_time.per_trial([f for _, _, f in reports if f is not None], done)}


def resume_and_queries(size: int, folder: str, repeats: int = 5) -> dict[str, float]:
    """On a finished ``size``-trial file: Oracle() to the first new trial (the median of
    ``repeats`` fresh opens), and get_best_trials(10)."""
    path = os.path.join(folder, f"growth-{size}.db")
    if not os.path.exists(path):
        os.makedirs(folder, exist_ok=True)  # (made by the growth part when it ran first)
        growth(size, folder)
    resumes = []
    for i in range(repeats):
        began = time.perf_counter()
        oracle = _oracle(path, size + repeats)
        trial = oracle.create_trial(f"resumer-{i}")
        resumes.append(time.perf_counter() - began)
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        oracle.close()
    resume = statistics.median(resumes)
    oracle = _oracle(path, size + repeats)
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        oracle.get_best_trials(10)
        times.append(time.perf_counter() - t0)
    oracle.close()
    first_open, opens = tool_opens(path, repeats)
    return {"trials": size, "resume_s": resume, "best10_s": statistics.median(times),
            "open_first_s": first_open, "open_s": opens}


def tool_opens(path: str, repeats: int) -> tuple[float, float]:
    """What opening the file costs a tool (read-only, its contents checked): the first open
    (every row checked) and the median of the next ``repeats`` (only new rows checked)."""
    from hpstore.tooling import open_search

    saved = os.environ.get("XDG_CACHE_HOME")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["XDG_CACHE_HOME"] = cache  # no marks from an earlier run
        try:
            times = []
            for _ in range(repeats + 1):
                began = time.perf_counter()
                open_search(path).close()
                times.append(time.perf_counter() - began)
        finally:
            if saved is None:
                os.environ.pop("XDG_CACHE_HOME", None)
            else:
                os.environ["XDG_CACHE_HOME"] = saved
    return times[0], statistics.median(times[1:])


def _peak_rss_mib() -> float:
    """This process's peak resident memory in MiB. Linux's VmHWM belongs to this program
    alone; ru_maxrss also counts the parent's memory copied by fork before exec (a parent
    that has loaded KerasTuner and torch would add hundreds of MiB)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _rss_child(size: int, folder: str, out: Any) -> None:
    growth(size, folder)
    out.put(_peak_rss_mib())


def peak_rss(size: int, folder: str) -> float:
    """Peak resident memory (MiB) of a process that runs a ``size``-trial search."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    # a folder of its own: each run must fill a new file
    proc = ctx.Process(target=_rss_child, args=(size, tempfile.mkdtemp(dir=folder), out))
    proc.start()
    while True:  # a child that dies must fail the run, not leave it waiting
        try:
            value = out.get(timeout=1.0)
            break
        except queue.Empty:
            if not proc.is_alive():
                raise RuntimeError(f"the memory probe for {size} trials died "
                                   f"(exit code {proc.exitcode})") from None
    proc.join(60)
    return float(value)


def optuna_reload(size: int, folder: str, kind: str, repeats: int = 3) -> float | None:
    """Seconds for Optuna to load a ``size``-trial study and ask for a new trial (median of
    ``repeats``): ``kind`` "journal" (JournalFileBackend replay) or "rdb" (RDBStorage on
    SQLite). None when optuna is not installed."""
    try:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend
    except ImportError:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = os.path.join(folder, f"optuna-{kind}-{size}")

    def storage() -> Any:
        if kind == "journal":
            return JournalStorage(JournalFileBackend(path + ".log"))
        return f"sqlite:///{path}.db"

    study = optuna.create_study(study_name="s", storage=storage(),
                                sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(size):
        trial = study.ask()
        values = {"x": trial.suggest_float("x", -10, 10), "y": trial.suggest_int("y", 0, 10),
                  "c": trial.suggest_categorical("c", ["a", "b"])}
        trial.report(_score(values), 0)
        study.tell(trial, _score(values))
    del study
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        loaded = optuna.load_study(study_name="s", storage=storage(),
                                   sampler=optuna.samplers.RandomSampler(seed=1))
        loaded.ask()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def keras_tuner_reload(size: int, folder: str, repeats: int = 3) -> float | None:
    """Seconds for KerasTuner to reload a ``size``-trial project directory and create a new
    trial (median of ``repeats``). None when keras_tuner cannot be imported."""
    import contextlib
    import io

    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras_tuner  # noqa: F401  (only: is it there, with a usable backend?)
    except Exception:
        return None

    def oracle(max_trials: int) -> Any:
        return keras_tuner_oracle(max_trials, os.path.join(folder, f"kt-{size}"))

    times = []
    with contextlib.redirect_stdout(io.StringIO()):  # it prints a table per trial
        first = oracle(size)
        _run(first)
        for i in range(repeats):
            began = time.perf_counter()
            again = oracle(size + repeats)
            again.reload()
            again.create_trial(f"resumer-{i}")
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def _median_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each numeric figure's median over repeated runs (other entries from the first)."""
    out = dict(rows[0])
    for key, value in rows[0].items():
        if isinstance(value, float):
            out[key] = statistics.median(r[key] for r in rows)
    out["runs"] = len(rows)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks scale", description=__doc__)
    parser.add_argument("--sizes", type=at_least(2), nargs="*", default=[1000, 10000, 100000])
    parser.add_argument("--processes", type=at_least(1), nargs="*", default=[1, 2, 4, 8])
    parser.add_argument("--process-trials", type=at_least(1), default=4000)
    parser.add_argument("--repeats", type=at_least(1), default=3,
                        help="runs per figure; each figure is their median")
    parser.add_argument("--peer-sizes", type=at_least(2), nargs="*", default=None,
                        help="sizes at which to time Optuna's RDBStorage and KerasTuner "
                             "reloads (default: the smallest size; they are slow to fill)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                        help="what to measure (default: all; resume fills Optuna's journal "
                             "to the largest size, most of a full run's hour)")
    add_json_option(parser, "write the results here")
    args = parser.parse_args(argv)
    check_json(parser, args)
    peer_sizes = args.peer_sizes if args.peer_sizes is not None else [min(args.sizes)]
    results: dict[str, Any] = {"machine": machine(), "growth": [], "processes": [],
                               "resume": []}

    def say(what: str, row: Any) -> None:
        print(f"{what}: {row}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="hpstore-scale-") as folder:
        for size in args.sizes if "growth" in args.parts else ():
            runs = []
            for i in range(args.repeats):
                sub = os.path.join(folder, f"g{i}")
                os.makedirs(sub, exist_ok=True)
                runs.append(growth(size, sub))
                runs[-1].update({f"hand_{k}": v for k, v in by_hand.growth(size, sub).items()})
            results["growth"].append(_median_of(runs))
            say("growth", results["growth"][-1])
        counts = args.processes if "processes" in args.parts else []
        # interleaved (1, 2, 4, 8, then again), as the throughput benchmark interleaves its
        # systems: a change in the machine's pace touches every count alike, and a ratio to
        # one process compares runs of the same moments
        by_count: dict[int, list[dict[str, Any]]] = {count: [] for count in counts}
        for _ in range(args.repeats):
            for count in counts:
                run = processes(count, args.process_trials, folder)
                hand = by_hand.processes(count, args.process_trials, folder)
                run["hand_per_s"] = hand["per_s"]
                run["errors"] += hand["errors"]
                run["duplicates"] += hand["duplicates"]
                run["error_messages"] += hand["error_messages"]
                by_count[count].append(run)
        for count in counts:
            runs = by_count[count]
            row = _median_of(runs)
            row["errors"] = sum(r["errors"] for r in runs)
            row["duplicates"] = sum(r["duplicates"] for r in runs)
            row["error_messages"] = [m for r in runs for m in r["error_messages"]][:5]
            results["processes"].append(row)
            say("processes", row)
        for size in (sorted({min(args.sizes), max(args.sizes)}) if "resume" in args.parts
                     else ()):
            row = resume_and_queries(size, os.path.join(folder, "g0"))
            row["optuna_journal_s"] = optuna_reload(size, folder, "journal")
            row["optuna_rdb_s"] = (optuna_reload(size, folder, "rdb")
                                   if size in peer_sizes else None)
            row["keras_tuner_s"] = (keras_tuner_reload(size, folder)
                                    if size in peer_sizes else None)
            row["peak_rss_mib"] = statistics.median(peak_rss(size, folder)
                                                    for _ in range(args.repeats))
            results["resume"].append(row)
            say("resume", row)
    results["bars"] = bars(results)
    print(f"{machine()}; each figure the median of {args.repeats} runs\n")
    print(markdown(results))
    print("\n" + "\n".join(results["bars"]))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    return 0


def markdown(results: dict[str, Any]) -> str:
    """The tables of the parts measured (see ``--parts``)."""
    tables = [_growth_table(results), _processes_table(results), _resume_table(results)]
    return "\n\n".join(t for t in tables if t)


def _growth_table(results: dict[str, Any]) -> str:
    if not results["growth"]:
        return ""
    lines = ["| search size | first 1,000 trials/s | last 1,000 trials/s | last / first | "
             "bytes per trial | schema by hand: last / first |",
             "|---:|---:|---:|---:|---:|---:|"]
    for g in results["growth"]:
        lines.append(f"| {g['trials']:,} | {g['first_per_s']:,.0f} | {g['last_per_s']:,.0f} | "
                     f"{g['last_per_s'] / g['first_per_s']:.2f} | {g['bytes_per_trial']:,.0f} | "
                     f"{g['hand_last_per_s'] / g['hand_first_per_s']:.2f} |")
    return "\n".join(lines)


def _processes_table(results: dict[str, Any]) -> str:
    if not results["processes"]:
        return ""
    lines = ["| processes | trials/s (all together) | vs 1 process | errors | duplicates | "
             "schema by hand: trials/s | by hand: vs 1 process |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    one = results["processes"][0]["per_s"] or 1.0
    hand_one = results["processes"][0]["hand_per_s"] or 1.0
    for p in results["processes"]:
        lines.append(f"| {p['processes']} | {p['per_s']:,.0f} | {p['per_s'] / one:.2f} | "
                     f"{p['errors']} | {p['duplicates']} | {p['hand_per_s']:,.0f} | "
                     f"{p['hand_per_s'] / hand_one:.2f} |")
    return "\n".join(lines)


def _resume_table(results: dict[str, Any]) -> str:
    if not results["resume"]:
        return ""

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value * 1000:,.1f} ms"

    lines = ["| trials in the file | hpstore resume to first new trial | Optuna journal "
             "replay | Optuna RDB load | KerasTuner reload | get_best_trials(10) | peak RSS | "
             "tool open, first | tool open, again |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results["resume"]:
        lines.append(f"| {r['trials']:,} | {ms(r['resume_s'])} | {ms(r['optuna_journal_s'])} | "
                     f"{ms(r['optuna_rdb_s'])} | {ms(r['keras_tuner_s'])} | "
                     f"{r['best10_s'] * 1000:,.2f} ms | {r['peak_rss_mib']:,.0f} MiB | "
                     f"{ms(r.get('open_first_s'))} | {ms(r.get('open_s'))} |")
    return "\n".join(lines)


def bars(results: dict[str, Any]) -> list[str]:
    """The issue's bars for scale, each marked met or missed (skipped when not measured)."""
    out: list[str] = []

    def line(text: str, ok: bool) -> None:
        out.append(f"- [{'met' if ok else 'MISSED'}] {text}")

    growth_rows = results["growth"]
    if growth_rows:
        big = max(growth_rows, key=lambda g: g["trials"])
        ratio = big["last_per_s"] / big["first_per_s"]
        line(f"last 1,000 trials of {big['trials']:,} run at {ratio:.2f} of the first 1,000's "
             "speed (bar: at least 0.90)", ratio >= 0.9)
        out.append(f"- [floor] hpstore's schema by hand, no library code: "
                   f"{big['hand_last_per_s'] / big['hand_first_per_s']:.2f}")
    by_count = {p["processes"]: p for p in results["processes"]}
    for count, bar in ((2, 1.2), (4, 1.0)):
        if 1 in by_count and count in by_count:
            many, one = by_count[count], by_count[1]
            ratio = many["per_s"] / one["per_s"]
            line(f"{count} processes: {ratio:.2f}x one process, {many['errors']} errors, "
                 f"{many['duplicates']} duplicates (bar: at least {bar}x, none, none)",
                 ratio >= bar and many["errors"] == 0 and many["duplicates"] == 0)
            out.append(f"- [floor] hpstore's schema by hand, no library code: "
                       f"{many['hand_per_s'] / one['hand_per_s']:.2f}x one process")
    rows = sorted(results["resume"], key=lambda r: r["trials"])
    if rows:
        big, small = rows[-1], rows[0]
        if big["optuna_journal_s"]:
            ratio = big["resume_s"] / big["optuna_journal_s"]
            line(f"resume of {big['trials']:,} trials takes {ratio:.2g} of Optuna's journal "
                 "replay (bar: under 0.10)", ratio < 0.1)
        if len(rows) > 1:
            ratio = big["best10_s"] / small["best10_s"]
            line(f"get_best_trials(10) at {big['trials']:,} trials is {ratio:.2f}x its time at "
                 f"{small['trials']:,} (bar: within 2x)", ratio <= 2.0)
        if big.get("open_s") is not None:
            line(f"a tool opens {big['trials']:,} trials in {big['open_s'] * 1000:.1f} ms, "
                 f"{big['open_first_s'] * 1000:.0f} ms the first time (bar: under 100 ms)",
                 big["open_s"] < 0.1)
        if len(rows) > 1:
            grown = big["peak_rss_mib"] - small["peak_rss_mib"]
            line(f"peak RSS at {big['trials']:,} trials is {grown:+.1f} MiB from "
                 f"{small['trials']:,} (bar: within 20 MB)", grown <= 20 / 1.048576)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
