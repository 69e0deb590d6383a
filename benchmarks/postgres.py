"""hpstore on PostgreSQL beside Optuna's RDBStorage on the same server, in the same run.

    python -m benchmarks postgres [--url postgresql://...] [--trials 1000] [--repeats 3]
                                  [--processes 1 4 8] [--per-process 400] [--quick]
                                  [--json out.json]

Without --url a throwaway server is started (initdb + pg_ctl in a temporary folder, the
server's own defaults: fsync on, synchronous_commit on) and stopped at the end. Every run
gets a schema (hpstore) or a database (Optuna) of its own. The work is the throughput
benchmark's: random search over x (float), y (int), c (choice); one metric report and the
end of each trial. Optuna runs through SQLAlchemy's psycopg 3 driver
(``postgresql+psycopg://``), with the server's durability (each commit flushed) and, for a
like-for-like line, with synchronous_commit off, the setting of hpstore's default
durability. Every figure is the median of interleaved repeats; the processes share one
search and start together at a barrier (aggregate trials/s, start to last finish).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks import add_json_option, at_least, by_hand, check_json
from benchmarks.throughput import _objective, machine
from hpstore.tooling import terminated_as_interrupted

CTX = mp.get_context("spawn")
DEADLINE = 600.0


def hpstore_oracle(url: str, max_trials: int, durability: str) -> Any:
    return by_hand.space_oracle(url, max_trials, durability)


def hpstore_work(url: str, max_trials: int, tuner: str, durability: str,
                 oracle: Any = None) -> int:
    oracle = oracle or hpstore_oracle(url, max_trials, durability)
    done = 0
    while (trial := oracle.create_trial(tuner)).status != "STOPPED":
        if trial.status == "IDLE":
            continue
        v = trial.hyperparameters.values
        oracle.update_trial(trial.trial_id, {"loss": _objective(v["x"], v["y"], v["c"])})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        done += 1
    oracle.close()
    return done


def optuna_storage(url: str, synchronous: bool) -> Any:
    import optuna

    options = {} if synchronous else {"connect_args": {"options": "-c synchronous_commit=off"}}
    return optuna.storages.RDBStorage(url.replace("postgresql://", "postgresql+psycopg://", 1),
                                      engine_kwargs=options)


def optuna_work(url: str, trials: int, synchronous: bool) -> Callable[[], int]:
    """Optuna's study loaded (outside the clock); the returned function runs the trials."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna_storage(url, synchronous)
    study = optuna.load_study(study_name="bench", storage=storage,
                              sampler=optuna.samplers.RandomSampler(seed=os.getpid()))

    def run() -> int:
        for _ in range(trials):
            trial = study.ask()
            value = _objective(trial.suggest_float("x", -10, 10), trial.suggest_int("y", 0, 10),
                               trial.suggest_categorical("c", ["a", "b"]))
            trial.report(value, 0)
            study.tell(trial, value)
        storage.engine.dispose()
        return trials

    return run


def hpstore_prepared(url: str, total: int, tuner: str, durability: str) -> Callable[[], int]:
    """hpstore's search opened (outside the clock); the returned function runs trials
    until the search is done."""
    oracle = hpstore_oracle(url, total, durability)
    return lambda: hpstore_work(url, total, tuner, durability, oracle)


HPSTORE_NORMAL = "hpstore, durability=normal (synchronous_commit off)"
HPSTORE_FULL = "hpstore, durability=full (synchronous_commit on)"
OPTUNA = "Optuna RDBStorage (server's default: synchronous_commit on)"
OPTUNA_ASYNC = "Optuna RDBStorage, synchronous_commit off"


def _removed(what: str, drop: Callable[[], None]) -> None:
    """Drop a store the benchmark made; if that fails, say what is left, never hiding the
    error that ended the run."""
    try:
        drop()
    except Exception as exc:
        print(f"could not remove the benchmark's {what} ({exc}): drop it by hand",
              file=sys.stderr)


class Systems:
    """Fresh stores on one server, and how each system runs on one."""

    def __init__(self, url: str) -> None:
        self.url = url

    @contextlib.contextmanager
    def store(self, kind: str) -> Iterator[str]:
        from hpstore.store.postgresql import admin

        name = f"bench_{secrets.token_hex(5)}"
        if kind == "hpstore":
            url = admin.create_schema(self.url, name)
            try:
                yield url
            finally:  # a run that failed or was stopped leaves nothing on a server of yours
                _removed(f"schema {name}", lambda: admin.drop_schema(self.url, name))
            return
        url = admin.create_database(self.url, name)
        try:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            storage = optuna_storage(url, True)
            optuna.create_study(study_name="bench", storage=storage)
            storage.engine.dispose()
            yield url
        finally:
            _removed(f"database {name}", lambda: admin.drop_database(self.url, name))

    def runners(self) -> dict[str, tuple[str, Callable[[str, int, int, str],
                                                       Callable[[], int]]]]:
        """name -> (store kind, prepare(url, trials of this process, trials in all, tuner)
        returning the timed work)."""
        return {
            HPSTORE_NORMAL: ("hpstore", lambda url, each, total, tuner: hpstore_prepared(
                url, total, tuner, "normal")),
            HPSTORE_FULL: ("hpstore", lambda url, each, total, tuner: hpstore_prepared(
                url, total, tuner, "full")),
            OPTUNA: ("optuna", lambda url, each, total, tuner: optuna_work(url, each, True)),
            OPTUNA_ASYNC: ("optuna", lambda url, each, total, tuner: optuna_work(
                url, each, False)),
        }


def _worker(name: str, url: str, trials: int, total: int, tuner: str, start: Any,
            results: Any) -> None:
    try:
        work = Systems(url).runners()[name][1](url, trials, total, tuner)
        start.wait()
        done = work()
        results.put(("ok", done, time.perf_counter()))
    except BaseException as exc:  # reported to the parent
        results.put(("error", f"{type(exc).__name__}: {exc}", time.perf_counter()))


def aggregate(systems: Systems, name: str, processes: int, per_process: int) -> float:
    """Trials per second of ``processes`` processes sharing one search of
    ``processes * per_process`` trials, from their common start to the last finish."""
    kind = systems.runners()[name][0]
    total = processes * per_process
    with systems.store(kind) as url:
        start, results = CTX.Barrier(processes + 1, timeout=DEADLINE), CTX.Queue()
        procs = [CTX.Process(target=_worker, args=(name, url, per_process, total, f"w{i}",
                                                   start, results))
                 for i in range(processes)]
        for p in procs:
            p.start()
        start.wait()
        began = time.perf_counter()
        reports = [results.get(timeout=DEADLINE) for _ in procs]
        for p in procs:
            p.join(DEADLINE)
    errors = [r[1] for r in reports if r[0] != "ok"]
    if errors:
        raise RuntimeError(f"{name}: {errors[0]}")
    done = sum(r[1] for r in reports)
    return done / (max(r[2] for r in reports) - began)


def single(systems: Systems, name: str, trials: int) -> float:
    kind, prepare = systems.runners()[name]
    with systems.store(kind) as url:
        work = prepare(url, trials, trials, "bench")  # opened before the clock starts
        began = time.perf_counter()
        done = work()
        return done / (time.perf_counter() - began)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks postgres", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a PostgreSQL server of your own (a database the role "
                        "may create schemas and databases in); default: a throwaway one")
    parser.add_argument("--trials", type=at_least(1), default=1000,
                        help="single-process trials (the throughput benchmark's 1,000)")
    parser.add_argument("--repeats", type=at_least(1), default=3)
    parser.add_argument("--processes", type=at_least(1), nargs="+", default=[1, 4, 8])
    parser.add_argument("--per-process", type=at_least(1), default=400,
                        help="trials per process in the multi-process runs")
    parser.add_argument("--quick", action="store_true", help="a smoke: few trials, 1 repeat")
    add_json_option(parser, "write the results here")
    args = parser.parse_args(argv)
    check_json(parser, args)
    if args.quick:
        args.trials, args.repeats, args.processes, args.per_process = 40, 1, [1, 2], 20
    try:
        import optuna  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError as exc:
        print(f"python -m benchmarks postgres needs the bench extra ({exc}): "
              'pip install -e ".[bench]"', file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        # stopped by kill or a scheduler, the run still removes its schemas and databases
        stack.enter_context(terminated_as_interrupted())
        url = args.url
        if url is None:
            from hpstore.store.postgresql.throwaway import Server

            url = stack.enter_context(Server()).url()
        results = run_all(Systems(url), args)
    report(results, args)
    return 0


def run_all(systems: Systems, args: argparse.Namespace) -> dict[str, Any]:
    names = list(systems.runners())
    singles: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.repeats):
        for name in names:
            singles[name].append(single(systems, name, args.trials))
    # several processes: interleaved repeats too (from run to run this machine drifts by
    # more than some of the differences measured)
    runs: dict[str, dict[int, list[float]]] = {n: {p: [] for p in args.processes}
                                               for n in names}
    for _ in range(args.repeats):
        for processes in args.processes:
            for name in names:
                runs[name][processes].append(
                    aggregate(systems, name, processes, args.per_process))
    multi = {n: {p: statistics.median(r) for p, r in by.items()} for n, by in runs.items()}
    with contextlib.closing(__import__("psycopg").connect(systems.url)) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
    return {"machine": machine(), "server": f"PostgreSQL {version}", "trials": args.trials,
            "repeats": args.repeats, "per_process": args.per_process, "singles": singles,
            "single": {n: statistics.median(r) for n, r in singles.items()}, "multi": multi,
            "multi_runs": runs}


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    single_rates, multi = results["single"], results["multi"]
    print(f"{results['machine']}; {results['server']} on the same machine, over TCP "
          f"(127.0.0.1); {results['trials']} trials per run, median of "
          f"{results['repeats']} interleaved runs\n")
    base = single_rates[OPTUNA]
    print("| system | one process, trials/s | vs Optuna RDBStorage |")
    print("|---|---:|---:|")
    for name, rate in single_rates.items():
        print(f"| {name} | {rate:,.0f} | {rate / base:,.1f}x |")
    counts = sorted({p for rates in multi.values() for p in rates})
    print(f"\nProcesses sharing one search ({results['per_process']} trials each), aggregate "
          f"trials/s, median of {results['repeats']} interleaved runs:\n")
    print("| system | " + " | ".join(f"{p} process{'es' if p > 1 else ''}" for p in counts)
          + " |")
    print("|---|" + "---:|" * len(counts))
    for name, rates in multi.items():
        print(f"| {name} | " + " | ".join(f"{rates[p]:,.0f}" for p in counts) + " |")
    lines = bars(results)
    print("\n" + "\n".join(lines))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({**results, "bars": lines}, f, indent=1)


def bars(results: dict[str, Any]) -> list[str]:
    """The bars for PostgreSQL, each marked met or missed."""
    single_rates, multi, out = results["single"], results["multi"], []

    def line(text: str, ok: bool) -> None:
        out.append(f"- [{'met' if ok else 'MISSED'}] {text}")

    ratio = single_rates[HPSTORE_NORMAL] / single_rates[OPTUNA]
    line(f"hpstore (default durability) in one process is {ratio:,.1f}x Optuna's RDBStorage "
         "(its default) on the same server (bar: at least 20x)", ratio >= 20)
    like = single_rates[HPSTORE_NORMAL] / single_rates[OPTUNA_ASYNC]
    same = single_rates[HPSTORE_FULL] / single_rates[OPTUNA]
    out.append(f"- like for like: {like:,.1f}x with synchronous_commit off on both, "
               f"{same:,.1f}x with it on for both")
    rates = multi[HPSTORE_NORMAL]
    if 1 in rates and 4 in rates:
        line(f"hpstore: 4 processes {rates[4]:,.0f} trials/s against 1 process {rates[1]:,.0f} "
             "(bar: more with 4 than with 1)", rates[4] > rates[1])
    return out


if __name__ == "__main__":
    raise SystemExit(main())
