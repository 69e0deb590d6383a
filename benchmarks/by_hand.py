"""hpstore's schema with no library code: the floor under hpstore's figures.

An hpstore file, written by the statements hpstore sends to record a trial (the trial with
its values and digest, its metric value, its end with its score; the status log's triggers
fire as always), sent by hand in the same 3 transactions per trial. Everything else hpstore
does (the decision's reads, the never-twice look-up, liveness, the file checks, the
turnstile, building trials) is left out, so no code on this schema could do better. The
throughput and scale benchmarks measure it beside hpstore in the same run.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import random
import sqlite3
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

from benchmarks import lock_time
from hpstore.store.sqlite import files, locks
from hpstore.store.sqlite.database import AUTOCHECKPOINT_PAGES
from hpstore.store.sqlite.project import _DECISION_FACTS, TRIAL_COLUMNS

# The trial's number is chosen inside its transaction (as hpstore's decision does), so that
# several processes can share a file.
_CREATE = (
    "INSERT INTO trials (project_id, number, trial_id, status, hp_values, values_key, "
    "tuner_id, session, run_count, created_at, started_at, pid, changed_at) "
    "SELECT :project, n, CAST(n AS TEXT), 'RUNNING', :text, :key, 'bench', 'by-hand', 1, :now, "
    ":now, :pid, :now FROM (SELECT coalesce((SELECT number + 1 FROM trials "
    "WHERE project_id = :project "
    "ORDER BY number DESC LIMIT 1), 0) AS n)")
_OBSERVE = ("INSERT INTO observations (trial, run, metric, direction, step, value, at) "
            "VALUES (?, 1, 'loss', 'min', 0, ?, ?)")
# The reads hpstore makes holding the write lock (see check_work and _Turns).
_RUNNING = f"SELECT {TRIAL_COLUMNS} FROM trials WHERE project_id = ? AND status = 'RUNNING'"
_LOOKUP = "SELECT 1 FROM trials WHERE project_id = ? AND values_key = ? LIMIT 1"
_END = ("UPDATE trials SET status = 'COMPLETED', score = ?, best_step = 0, session = NULL, "
        "ended_at = ?, pid = ?, changed_at = ? WHERE id = ?")


def objective(x: float, y: int, c: str) -> float:
    return (x - 3) ** 2 + y + (c == "a")


def space_oracle(database: str, max_trials: int | None, durability: str = "normal") -> Any:
    """hpstore's random search over the benchmarks' space (x, y, c), seed 1, in
    ``database`` (a file or a PostgreSQL URL)."""
    import hpstore

    hp = hpstore.HyperParameters()
    hp.Float("x", -10, 10)
    hp.Int("y", 0, 10)
    hp.Choice("c", ["a", "b"])
    return hpstore.RandomSearchOracle("loss", max_trials=max_trials, hyperparameters=hp,
                                      seed=1, durability=durability, database=database)


def new_file(path: str, max_trials: int | None) -> None:
    """A new hpstore search file over the benchmarks' space, made by hpstore."""
    space_oracle(path, max_trials).close()


def connect(path: str) -> tuple[sqlite3.Connection, int]:
    """A connection with the pragmas hpstore sets for durability="normal", and the
    project's id."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=60)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}")
    (project,) = conn.execute("SELECT project_id FROM projects").fetchone()
    return conn, int(project)


def trial(conn: sqlite3.Connection, project: int, rng: random.Random, pid: int) -> None:
    """One trial: created with its values, one metric value, ended with its score."""
    x, y, c = rng.uniform(-10, 10), rng.randint(0, 10), rng.choice("ab")
    text = json.dumps({"x": x, "y": y, "c": c}, separators=(",", ":"))
    key = hashlib.blake2b(json.dumps({"c": c, "x": x, "y": y}, separators=(",", ":"))
                          .encode(), digest_size=16).hexdigest()  # names sorted, as hpstore
    now = time.time()
    conn.execute("BEGIN IMMEDIATE")
    row = conn.execute(_CREATE, {"project": project, "text": text, "key": key, "now": now,
                                 "pid": pid}).lastrowid
    conn.execute("COMMIT")
    value = objective(x, y, c)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(_OBSERVE, (row, value, time.time()))
    conn.execute("COMMIT")
    now = time.time()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(_END, (value, now, pid, now, row))
    conn.execute("COMMIT")


def throughput(n: int, folder: str) -> float:
    """Trials per second in one process."""
    path = os.path.join(folder, "by-hand.db")
    new_file(path, n)
    conn, project = connect(path)
    rng, pid = random.Random(1), os.getpid()
    start = time.perf_counter()
    for _ in range(n):
        trial(conn, project, rng, pid)
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


# hpstore's schema, and the same without the indexes whose keys fall at random places
# (a values digest, a score): the cause of the schema's slowdown as a search grows.
_SCORE_ORDER_DROPPED = ("DROP INDEX trials_by_status",
                        "CREATE INDEX trials_by_status ON trials (project_id, status, number)")
_DIGEST_INDEX_DROPPED = ("DROP INDEX trials_by_values",)
INDEX_VARIANTS: dict[str, tuple[str, ...]] = {
    "hpstore's schema": (),
    "without the score order": _SCORE_ORDER_DROPPED,
    "without the digest index": _DIGEST_INDEX_DROPPED,
    "without either": _SCORE_ORDER_DROPPED + _DIGEST_INDEX_DROPPED,
}


def growth(size: int, folder: str, variant: str = "hpstore's schema", window: int = 1000
           ) -> dict[str, float]:
    """Trials per second over the first and the last ``window`` trials of a ``size``
    search, on hpstore's schema or one of the ``INDEX_VARIANTS``."""
    path = os.path.join(tempfile.mkdtemp(dir=folder), "by-hand.db")
    new_file(path, size)
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in INDEX_VARIANTS[variant]:
        conn.execute(statement)
    conn.close()
    conn, project = connect(path)
    rng, pid = random.Random(1), os.getpid()
    start, ends = time.perf_counter(), []
    for _ in range(size):
        trial(conn, project, rng, pid)
        ends.append(time.perf_counter())
    conn.close()
    window = max(1, min(window, size // 2))
    return {"first_per_s": window / (ends[window - 1] - start),
            "last_per_s": window / (ends[-1] - ends[-window - 1])}



def api_work(number: int = 5000, repeats: int = 5) -> dict[str, float]:
    """Microseconds a trial costs in five things hpstore's API cannot skip, each timed
    alone with hpstore's own code (best of ``repeats``): the values drawn from the seed and
    the trial number (so that every process and every resume draws the same), their JSON
    and never-twice digest, the Trial handed back, its hyperparameters read, the trial
    scored from the value it reported, and the values the trial ends with compared with
    those stored."""
    import hpstore
    from hpstore.oracle.draws import SeededDraws
    from hpstore.oracle.trials import best_of
    from hpstore.oracle.values import stored_json, values_key
    from hpstore.store.records import dumps

    oracle = space_oracle(":memory:", None)
    space = oracle.get_space()
    entries = list(space.space)
    oracle.close()
    values = {"x": 0.25, "y": 3, "c": "a"}

    def draw() -> dict[str, Any]:
        rng = SeededDraws("1:123:0")  # seed, trial number, attempt: as random search draws
        return {hp.name: hp.prob_to_value(rng.random()) for hp in entries}

    def encode() -> str:
        return dumps(values) + values_key(values)

    def hand_over() -> dict[str, Any]:
        trial = hpstore.Trial(space.with_values(values), trial_id="7", status="RUNNING")
        return trial.hyperparameters.values

    scored = hpstore.Trial(space.with_values(values), trial_id="7", status="RUNNING")

    def score() -> float | None:
        # the trial scored from the value it reported, as end_trial scores it (score_trial's
        # way, where the oracle has no score_trial of its own)
        return best_of([("loss", "min", 0, 0.5)], "loss")[0]

    text = dumps(values)

    def handed_back() -> bool:
        # the values the worker ends the trial with, compared with those stored: one it
        # declared while running (the branch it took) is written back and joins the space
        return stored_json(scored.hyperparameters.values) == text

    return {name: min(timeit.repeat(work, number=number, repeat=repeats)) / number * 1e6
            for name, work in (("draw", draw), ("encode", encode), ("trial", hand_over),
                               ("score", score), ("returned", handed_back))}

def check_work(folder: str, trials: int = 1000, number: int = 5000, repeats: int = 5
               ) -> dict[str, float]:
    """Microseconds a trial costs in the checks that keep hpstore's Guarantees, each timed
    alone on a search of ``trials`` trials made by hand (best of ``repeats``), with the
    statements and functions hpstore uses, reads inside one open transaction as hpstore
    makes them inside its write: the file's identity looked at before each of the 3
    writes (a moved file is never written), the writers' turnstile taken and left for
    each (several processes go faster, not slower), the decision's facts (the next
    number, max_trials, queued trials, the tuner id in use elsewhere), the running
    trials (an interrupted or already running trial comes first) and the never-twice
    look-up of the values drawn."""
    path = os.path.join(folder, "checks.db")
    new_file(path, None)
    conn, project_id = connect(path)
    rng, pid = random.Random(1), os.getpid()
    for _ in range(trials):
        trial(conn, project_id, rng, pid)
    turnstile = locks.Turnstile(Path(folder) / "turn.lock")
    key = "0" * 32  # values never tried: the look-up a new trial makes

    def identity() -> None:
        for _ in range(3):
            files.identity(path)

    def turns() -> None:
        for _ in range(3):
            turnstile.enter()
            turnstile.leave()

    def facts() -> None:
        conn.execute(_DECISION_FACTS, ("bench", "by-hand", project_id)).fetchall()

    def running() -> None:
        conn.execute(_RUNNING, (project_id,)).fetchall()

    def lookup() -> None:
        conn.execute(_LOOKUP, (project_id, key)).fetchall()

    conn.execute("BEGIN")
    try:
        return {name: min(timeit.repeat(work, number=number, repeat=repeats)) / number * 1e6
                for name, work in (("identity", identity), ("turnstile", turns),
                                   ("facts", facts), ("running", running),
                                   ("lookup", lookup))}
    finally:
        conn.execute("COMMIT")
        turnstile.close()
        conn.close()


def _busy(seconds: float) -> None:
    """Work on the processor for ``seconds`` of its time (what a trial does besides its
    statements). Counted on this thread's own clock, not the wall's: with more processes
    than cores, a worker waits for a core in the middle of its work, and wall-clock work
    would get done while it waits, as no real work does."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


class _Turns:
    """A connection whose write transactions take hpstore's turnstile first, each after
    ``outside`` seconds of other work and holding the write lock ``inside`` seconds longer,
    as hpstore's writers do (see locks.Turnstile). With ``reads`` (the file and the
    project), a trial also makes the reads hpstore's random search makes for it: the
    running trials before its first transaction, and holding the write lock the file's
    identity each time, the decision's facts and the never-twice look-up before its
    insert, its run before its value, and its run's values before its end."""

    def __init__(self, conn: sqlite3.Connection, turnstile: Any, outside: float,
                 inside: float, reads: tuple[str, int] | None = None) -> None:
        self.conn, self.turnstile = conn, turnstile
        self.outside, self.inside, self.reads = outside, inside, reads
        self.held = False

    def execute(self, sql: str, params: Any = ()) -> Any:
        if sql == "BEGIN IMMEDIATE":
            _busy(self.outside)
            self.held = self.turnstile.enter()
        try:
            if self.reads is not None:
                self._read_before(sql, params, *self.reads)
            done = self.conn.execute(sql, params)
            if sql == "BEGIN IMMEDIATE":
                if self.reads is not None:
                    files.identity(self.reads[0])
                _busy(self.inside)
            return done
        finally:
            if sql == "COMMIT" and self.held:
                self.turnstile.leave()
                self.held = False

    def _read_before(self, sql: str, params: Any, path: str, project_id: int) -> None:
        conn = self.conn
        if sql == _CREATE:
            conn.execute(_DECISION_FACTS, ("bench", "by-hand", project_id)).fetchall()
            conn.execute(_LOOKUP, (project_id, params["key"])).fetchall()
        elif sql == _OBSERVE:
            conn.execute("SELECT status, run_count FROM trials WHERE id = ?",
                         (params[0],)).fetchall()
        elif sql == _END:
            conn.execute("SELECT count(*) FROM observations WHERE trial = ? AND run = 1",
                         (params[4],)).fetchall()


def _worker(path: str, n: int, seed: int, ready: Any, start: Any, results: Any,
            work_us: tuple[float, float] | None = None, reads: bool = False,
            timed: bool = False) -> None:
    error, timing = None, None
    try:
        conn, project = connect(path)
        rng, pid = random.Random(seed), os.getpid()
        writer: Any = conn
        if work_us is not None:  # a third of each in or before each of the 3 transactions
            writer = _Turns(conn, locks.Turnstile(Path(path + ".turn")), work_us[0] / 3e6,
                            work_us[1] / 3e6, (path, project) if reads else None)
        ready.put(seed)
        start.wait(60)
        timing = lock_time.follow() if timed and work_us is not None else None
        for _ in range(n):
            if reads:  # read outside any write lock, as hpstore does before deciding
                conn.execute(_RUNNING, (project,)).fetchall()
            trial(writer, project, rng, pid)
        conn.close()
    except Exception as exc:  # counted, not hidden
        error = f"{type(exc).__name__}: {exc}"
    results.put((error, None if timing is None else timing.figures()))


def processes(count: int, trials: int, folder: str,
              work_us: tuple[float, float] | None = None, reads: bool = False,
              timed: bool = False) -> dict[str, Any]:
    """Aggregate trials per second with ``count`` processes sharing one file, each running
    its share of ``trials``; errors and repeated trial numbers counted. With ``work_us``
    (outside, inside), each trial also works that many microseconds outside its
    transactions and inside them, and its writers take hpstore's turnstile, as hpstore's
    do; with ``reads`` as well, each transaction makes the reads hpstore makes holding the
    write lock (see ``_Turns``). ``timed``: the workers time their turns (``lock``: where
    a trial's processor time went, see :mod:`benchmarks.lock_time`; the timing slows them
    a little, so a timed run is not one of the runs whose speed is reported)."""
    path = os.path.join(tempfile.mkdtemp(dir=folder), "by-hand.db")
    new_file(path, None)
    ctx = mp.get_context("spawn")
    ready, start, results = ctx.Queue(), ctx.Event(), ctx.Queue()
    share = trials // count
    procs = [ctx.Process(target=_worker,
                         args=(path, share, seed, ready, start, results, work_us, reads,
                               timed))
             for seed in range(count)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    began = time.perf_counter()
    start.set()
    reports = [results.get(timeout=600) for _ in procs]
    elapsed = time.perf_counter() - began
    errors = [e for e, _ in reports if e is not None]
    for p in procs:
        p.join(60)
    conn = sqlite3.connect(path)
    distinct, total = conn.execute("SELECT count(DISTINCT number), count(*) FROM trials"
                                   ).fetchone()
    conn.close()
    return {"processes": count, "per_s": total / elapsed, "errors": len(errors),
            "duplicates": total - distinct, "error_messages": errors[:5],
            "lock": lock_time.per_trial([f for _, f in reports if f is not None], total)}
