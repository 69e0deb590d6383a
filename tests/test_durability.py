"""The durability setting is what every process's connection runs with.

Power loss cannot be simulated here: what survives it rests on SQLite's WAL guarantees
(synchronous=FULL: a commit is on disk when it returns; NORMAL: the file stays consistent,
the last commits may be lost). These tests prove every connection hpstore opens, in any
process, runs with the setting the search asked for.
"""

from __future__ import annotations

import multiprocessing as mp

import pytest
from _durability import report_pragmas
from _workers import DEADLINE, open_oracle

SYNCHRONOUS = {"normal": 1, "full": 2}


@pytest.mark.parametrize("durability", ["normal", "full"])
def test_durability_reaches_every_connection(tmp_path, durability):
    path = str(tmp_path / "d.db")
    oracle = open_oracle(path, max_trials=5, durability=durability)
    oracle.create_trial("parent")
    conn = oracle.store.db.connect()
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == SYNCHRONOUS[durability]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    child = ctx.Process(target=report_pragmas, args=(path, durability, results))
    child.start()
    synchronous, journal, status = results.get(timeout=DEADLINE)
    child.join(DEADLINE)
    assert (synchronous, journal, status) == (SYNCHRONOUS[durability], "wal", "RUNNING")


def test_default_durability_is_normal(tmp_path):
    oracle = open_oracle(str(tmp_path / "d.db"), max_trials=5)
    assert oracle.store.db.connect().execute("PRAGMA synchronous").fetchone()[0] == 1
