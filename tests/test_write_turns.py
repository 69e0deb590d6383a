"""Writers of one file take turns: one whose write transactions are long and follow one
another at once leaves another worker its turn, where SQLite's own wait (asleep up to
100 ms between looks) never found the lock free and the worker died after 60 s."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import time

import hpstore
from hpstore.store.sqlite.database import Database

CTX = mp.get_context("spawn")
LONG_WRITES = 60


def _log(conn: sqlite3.Connection, who: str) -> None:
    conn.execute("INSERT INTO transitions (trial, to_status, at, tuner_id) "
                 "VALUES (1, 'RUNNING', 0, ?)", (who,))


def _long_writer(path: str, started) -> None:
    db = Database(path)
    started.set()
    for _ in range(LONG_WRITES):
        with db.write() as conn:  # (60 ms of the processor in each, holding the lock)
            began = time.process_time()
            while time.process_time() - began < 0.06:
                pass
            _log(conn, "long")
    db.close()


def _short_writer(path: str) -> None:
    db = Database(path, timeout=60)
    for _ in range(5):
        with db.write() as conn:
            _log(conn, "short")
    db.close()


def test_a_writer_beside_long_writes_one_after_another_gets_its_turns(tmp_path):
    path = str(tmp_path / "turns.db")
    oracle = hpstore.RandomSearchOracle("loss", max_trials=3, database=path)
    oracle.create_trial("w")  # (the trial the rows below are logged against)
    oracle.close()
    started = CTX.Event()
    long = CTX.Process(target=_long_writer, args=(path, started))
    long.start()
    assert started.wait(60)
    short = CTX.Process(target=_short_writer, args=(path,))
    short.start()
    short.join(120)
    long.join(120)
    assert short.exitcode == 0 and long.exitcode == 0
    conn = sqlite3.connect(path)
    order = [who for (who,) in conn.execute(
        "SELECT tuner_id FROM transitions WHERE tuner_id IN ('long', 'short') ORDER BY id")]
    conn.close()
    assert order.count("short") == 5 and order.count("long") == LONG_WRITES
    # every short write went in between long ones, not once they were all done
    last_short = max(i for i, who in enumerate(order) if who == "short")
    assert last_short < LONG_WRITES // 2, order


class _InterruptedAfter:
    """The connection's control cursor, with a Ctrl-C landing as one statement returns."""

    def __init__(self, cursor, statement: str) -> None:
        self.cursor, self.statement = cursor, statement

    def execute(self, sql: str, *args):
        done = self.cursor.execute(sql, *args)
        if sql == self.statement:
            raise KeyboardInterrupt
        return done


def test_a_ctrl_c_in_the_wait_beside_long_writes_leaves_the_wait_as_it_was(tmp_path):
    # the wait for SQLite's lock is set to 0 while a writer looks in turn at the turnstile
    # and at the lock: a Ctrl-C as that returned left it at 0 for good, and the process's
    # next write (handing its trial back) failed at once as "locked for more than 60 s"
    path = str(tmp_path / "turns.db")
    oracle = hpstore.RandomSearchOracle("loss", max_trials=3, database=path)
    oracle.create_trial("w")
    oracle.close()
    started = CTX.Event()
    long = CTX.Process(target=_long_writer, args=(path, started))
    long.start()
    assert started.wait(60)
    db = Database(path)
    conn = db.connect()
    try:
        db._control = _InterruptedAfter(db._control, "PRAGMA busy_timeout = 0")
        caught = False
        while not caught and long.is_alive():  # (until a write takes the slow path)
            try:
                with db.write() as c:
                    _log(c, "short")
            except KeyboardInterrupt:
                caught = True
        assert caught
        db._control = db._control.cursor
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == int(db.timeout * 1000)
    finally:
        long.join(120)
        db.close()
