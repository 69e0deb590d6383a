"""Full trials per second in one process: create + one metric update + end, per system.

    python -m benchmarks throughput [--trials 1000] [--repeats 3] [--quick] [--json out.json]

Random search over x (float), y (int), c (choice) with a trivial objective, the same work
for every system, measured in this run. Repeats are interleaved (A B C, A B C, ...) so a
change in machine load touches every system alike; each figure is the median. Optuna and
KerasTuner are optional (`pip install -e ".[bench]"`; KerasTuner runs on KERAS_BACKEND=torch
unless another is set): skipped with a note when they are not installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from benchmarks import add_json_option, at_least, by_hand, check_json
from hpstore.store.sqlite.database import PAGE_SIZE

_objective = by_hand.objective


def hpstore_run(durability: str) -> Callable[[int, str], float]:
    def run(n: int, folder: str) -> float:
        oracle = by_hand.space_oracle(os.path.join(folder, f"hpstore-{durability}.db"), n,
                                      durability)
        start = time.perf_counter()
        while (trial := oracle.create_trial("bench")).status == "RUNNING":
            v = trial.hyperparameters.values
            oracle.update_trial(trial.trial_id, {"loss": _objective(v["x"], v["y"], v["c"])})
            trial.status = "COMPLETED"
            oracle.end_trial(trial)
        elapsed = time.perf_counter() - start
        oracle.close()
        return n / elapsed
    return run


def raw_sqlite(n: int, folder: str) -> float:
    """The practical limit: the same transactions written by hand with the same pragmas
    (page size, WAL, synchronous=NORMAL) and no indexes: one transaction per call a worker
    makes, as each must survive a crash on its own (create the trial with its values; record
    its metric; end it with its score)."""
    conn = sqlite3.connect(os.path.join(folder, "raw.db"), isolation_level=None)
    conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE trials (id INTEGER PRIMARY KEY, status TEXT, hp_values TEXT, "
                 "score REAL)")
    conn.execute("CREATE TABLE observations (trial INTEGER, metric TEXT, step INTEGER, "
                 "value REAL)")
    rng = random.Random(1)
    start = time.perf_counter()
    for _ in range(n):
        x, y, c = rng.uniform(-10, 10), rng.randint(0, 10), rng.choice("ab")
        conn.execute("BEGIN IMMEDIATE")
        trial = conn.execute("INSERT INTO trials (status, hp_values) VALUES ('RUNNING', ?)",
                             (json.dumps({"x": x, "y": y, "c": c}),)).lastrowid
        conn.execute("COMMIT")
        value = _objective(x, y, c)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO observations VALUES (?, 'loss', 0, ?)", (trial, value))
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE trials SET status = 'COMPLETED', score = ? WHERE id = ?",
                     (value, trial))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


def optuna_run(kind: str) -> Callable[[int, str], float]:
    def run(n: int, folder: str) -> float:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if kind == "rdb":
            storage: object = f"sqlite:///{os.path.join(folder, 'optuna.db')}"
        elif kind == "journal":
            from optuna.storages import JournalStorage
            from optuna.storages.journal import JournalFileBackend

            storage = JournalStorage(JournalFileBackend(os.path.join(folder, "journal.log")))
        else:
            storage = None
        study = optuna.create_study(storage=storage,
                                    sampler=optuna.samplers.RandomSampler(seed=1))
        start = time.perf_counter()
        for _ in range(n):
            trial = study.ask()
            value = _objective(trial.suggest_float("x", -10, 10), trial.suggest_int("y", 0, 10),
                               trial.suggest_categorical("c", ["a", "b"]))
            trial.report(value, 0)
            study.tell(trial, value)
        return n / (time.perf_counter() - start)
    return run


def keras_tuner_oracle(max_trials: int, directory: str) -> Any:
    """KerasTuner's RandomSearchOracle over the benchmark's space, writing its project
    directory (``directory``/bench) as a tuner would."""
    import keras_tuner as kt

    hp = kt.HyperParameters()
    hp.Float("x", -10, 10)
    hp.Int("y", 0, 10)
    hp.Choice("c", ["a", "b"])
    oracle = kt.oracles.RandomSearchOracle(objective=kt.Objective("loss", "min"),
                                           max_trials=max_trials, seed=1, hyperparameters=hp)
    oracle._set_project_dir(directory, "bench")
    return oracle


def keras_tuner_run(n: int, folder: str) -> float:
    """KerasTuner's RandomSearchOracle with a project directory: it writes the trial's
    file and the oracle's state file at the end of every trial."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import io


    oracle = keras_tuner_oracle(n, os.path.join(folder, "kt"))
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # it prints a table per trial
        while (trial := oracle.create_trial("bench")).status == "RUNNING":
            v = trial.hyperparameters.values
            oracle.update_trial(trial.trial_id, {"loss": _objective(v["x"], v["y"], v["c"])})
            trial.status = "COMPLETED"
            oracle.end_trial(trial)
    return n / (time.perf_counter() - start)


# (name, function, module it needs); every system runs the same number of trials
SYSTEMS: list[tuple[str, Callable[[int, str], float], str | None]] = [
    ("raw sqlite3 (same pragmas, 3 transactions/trial)", raw_sqlite, None),
    ("hpstore (durability=normal)", hpstore_run("normal"), None),
    ("hpstore's schema by hand (its 3 transactions, no library code)", by_hand.throughput,
     None),
    ("hpstore (durability=full)", hpstore_run("full"), None),
    ("Optuna in-memory", optuna_run("memory"), "optuna"),
    ("Optuna JournalFileBackend", optuna_run("journal"), "optuna"),
    ("Optuna RDBStorage on SQLite", optuna_run("rdb"), "optuna"),
    ("KerasTuner RandomSearchOracle (project directory)", keras_tuner_run, "keras_tuner"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks throughput", description=__doc__)
    parser.add_argument("--trials", type=at_least(1), default=1000)
    parser.add_argument("--repeats", type=at_least(1), default=3)
    parser.add_argument("--quick", action="store_true", help="a CI smoke: 200 trials, 1 repeat")
    add_json_option(parser, "write the results here")
    args = parser.parse_args(argv)
    check_json(parser, args)
    if args.quick:
        args.trials, args.repeats = 200, 1
    systems = []
    for name, run, module in SYSTEMS:
        try:
            if module == "keras_tuner":
                os.environ.setdefault("KERAS_BACKEND", "torch")
            if module:
                __import__(module)
        except Exception as exc:  # not installed, or installed without a usable backend
            print(f"note: {name} skipped ({module} cannot be imported: {exc})",
                  file=sys.stderr)
            continue
        systems.append((name, run, args.trials))
    rates: dict[str, list[float]] = {name: [] for name, _, _ in systems}
    alone: list[dict[str, float]] = []  # the API's and the checks' costs, once a round
    for _ in range(args.repeats):
        for name, run, n in systems:
            with tempfile.TemporaryDirectory(prefix="hpstore-bench-") as folder:
                rates[name].append(run(n, folder))
        # timed in each round, beside the runs: a machine slower for a while is slower
        # for both, and the budget compares like with like
        with tempfile.TemporaryDirectory(prefix="hpstore-bench-") as folder:
            alone.append({**by_hand.api_work(number=2000, repeats=3),
                          **by_hand.check_work(folder, number=2000, repeats=3)})
    medians = {name: statistics.median(r) for name, r in rates.items()}
    middle = {key: statistics.median(a[key] for a in alone) for key in alone[0]}
    api = {k: middle[k] for k in ("draw", "encode", "trial", "score", "returned")}
    checks = {k: v for k, v in middle.items() if k not in api}
    print(f"{machine()}; {args.trials} trials per system, median of {args.repeats} "
          "interleaved runs\n")
    print(markdown(medians))
    found = bars(medians, api, checks)
    print("\n" + "\n".join(found))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"machine": machine(), "trials": args.trials, "repeats": args.repeats,
                       "runs": rates, "median": medians, "api_work_us": api,
                       "check_work_us": checks, "bars": found}, f, indent=1)
    return 0


RAW, OURS, BY_HAND = SYSTEMS[0][0], SYSTEMS[1][0], SYSTEMS[2][0]


def markdown(medians: dict[str, float]) -> str:
    ours = medians[OURS]
    lines = ["| system | trials/s | hpstore (normal) is |", "|---|---:|---:|"]
    for name, rate in medians.items():
        lines.append(f"| {name} | {rate:,.0f} | {ours / rate:,.2f}x |")
    return "\n".join(lines)


def bars(medians: dict[str, float], api: dict[str, float] | None = None,
         checks: dict[str, float] | None = None) -> list[str]:
    """The issue's bars for throughput, each marked met or missed; with ``api`` and
    ``checks`` (the microseconds of by_hand.api_work and by_hand.check_work), what each
    missed bar leaves hpstore's code beside what those alone cost."""
    ours, out = medians[OURS], []

    def line(text: str, ok: bool) -> None:
        out.append(f"- [{'met' if ok else 'MISSED'}] {text}")

    raw = ours / medians[RAW]
    line(f"hpstore is {raw:.2f} of raw sqlite3 (bar: at least 0.33)", raw >= 1 / 3)
    if BY_HAND in medians:
        out.append(f"- [floor] hpstore's schema with no library code runs at "
                   f"{medians[BY_HAND] / medians[RAW]:.2f} of raw sqlite3; hpstore is "
                   f"{ours / medians[BY_HAND]:.2f} of it")
    if BY_HAND in medians and api is not None and checks is not None:
        out.append(budget("a third of raw sqlite3", medians[RAW] / 3, medians[BY_HAND],
                          api, checks))
    for peer, bar in (("Optuna RDBStorage on SQLite", 50.0), ("Optuna in-memory", 1.0)):
        if peer in medians:
            ratio = ours / medians[peer]
            line(f"hpstore is {ratio:,.2f}x {peer} (bar: at least {bar:g}x)", ratio >= bar)
            if bar == 1.0 and BY_HAND in medians and api is not None and checks is not None:
                out.append(budget(peer, medians[peer], medians[BY_HAND], api, checks))
    return out


def budget(target: str, rate: float, floor: float, api: dict[str, float],
           checks: dict[str, float]) -> str:
    """What reaching ``rate`` trials/s leaves hpstore's code above the schema's statements
    (``floor`` trials/s by hand), beside what the API's unskippable work and the
    Guarantees' checks cost alone; "[out of reach]" when those alone cost more."""
    per_trial, statements = 1e6 / rate, 1e6 / floor
    # (the running trials are read only while some run: one process creating its trials
    # one after another never pays that read)
    paid = [v for k, v in checks.items() if k != "running"]
    left, least = per_trial - statements, sum(api.values()) + sum(paid)
    verdict = ("out of reach: what the API and its Guarantees cannot skip costs more than "
               "the bar leaves" if least > left else
               f"{left - least:.0f} µs would be left for the rest of three calls")
    leaves = (f"leaving {left:.0f} µs for all of hpstore's code" if left >= 0 else
              f"{-left:.0f} µs more than the whole trial may take, before any of "
              "hpstore's code")
    return (f"- [budget] {target}: {per_trial:.0f} µs a trial, of which the statements by "
            f"hand take {statements:.0f}, {leaves}. "
            f"Alone, the draw from the seed takes {api['draw']:.1f}, the values' JSON and "
            f"digest {api['encode']:.1f}, the Trial handed back {api['trial']:.1f}, its "
            f"scoring {api['score']:.1f}, its values compared at its end "
            f"{api['returned']:.1f}; the "
            f"file's identity before each write {checks['identity']:.1f}, the writers' "
            f"turnstile {checks['turnstile']:.1f}, the decision's facts "
            f"{checks['facts']:.1f}, the never-twice look-up {checks['lookup']:.1f}: "
            f"{least:.0f} µs (the running trials, {checks['running']:.1f}, are read only "
            f"while some run); {verdict}")


def machine() -> str:
    """What the figures were measured on."""
    import platform

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}")


if __name__ == "__main__":
    raise SystemExit(main())
