"""A worker whose trial was lost is told so, even when another trial took its id since.

A trial's creating commit can be lost: a PostgreSQL failover with asynchronous replication,
``durability="normal"`` and a server crash, a search restored from an earlier copy. The
next worker to ask then creates a trial under the same id (on a SQLite file, even in the
same row). The worker that ran the lost trial must get TrialLostError, with nothing of its
run written into the other worker's trial. Here a DELETE of the trial's row stands in for
the lost commit.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from _stores import SHARED_ENGINES, location

from hpstore import (
    HyperParameters,
    MedianStopping,
    RandomSearchOracle,
    TrialLostError,
    TrialNotRunningError,
)


def _oracle(where: str, **options: Any) -> RandomSearchOracle:
    hp = HyperParameters()
    hp.Float("x", 0.0, 10.0)
    return RandomSearchOracle("loss", max_trials=5, hyperparameters=hp, seed=1,
                              database=where, project_name="lost", **options)


def _lose(where: str, trial_id: str) -> None:
    """The trial's row gone, as if the commit that created it had never happened."""
    if where.startswith("postgresql"):
        import psycopg

        with psycopg.connect(where) as conn:
            conn.execute("DELETE FROM trials WHERE trial_id = %s", (trial_id,))
        return
    conn = sqlite3.connect(where)
    conn.execute("PRAGMA foreign_keys = ON")  # its metric values and status log go too
    with conn:
        conn.execute("DELETE FROM trials WHERE trial_id = ?", (trial_id,))
    conn.close()


def _another_takes_its_id(where: str, **options: Any) -> tuple[RandomSearchOracle, Any]:
    """B, and the trial B creates next: its queued values under the lost trial's id."""
    b = _oracle(where, **options)
    b.enqueue_trial({"x": 9.0})
    return b, b.create_trial("B")


def _its_end_is_lost(a: RandomSearchOracle, trial: Any, b: RandomSearchOracle, u: Any
                     ) -> None:
    """A's end of ``trial`` is refused as lost, and B's trial of the same id is untouched."""
    trial.status = "COMPLETED"
    with pytest.raises(TrialLostError):
        a.end_trial(trial)
    _check_b_untouched_then_completes(b, u)


def _reported(where: str) -> tuple[RandomSearchOracle, Any]:
    """A, and its trial with one value reported."""
    a = _oracle(where)
    t = a.create_trial("A")
    a.update_trial(t.trial_id, {"loss": 3.0})
    return a, t


def _check_b_untouched_then_completes(b: RandomSearchOracle, u: Any) -> None:
    """B's trial holds only what B gave it, and B ends it as usual."""
    record = b.project.trial(u.trial_id)
    assert (record.status, record.tuner_id, record.values["x"]) == ("RUNNING", "B", 9.0)
    assert b.project.observations(record) == []
    b.update_trial(u.trial_id, {"loss": 2.0})
    u.status = "COMPLETED"
    b.end_trial(u)
    done = b.get_trial(u.trial_id)
    assert (done.status, done.score, done.hyperparameters.values["x"]) == (
        "COMPLETED", 2.0, 9.0)
    assert b.project.trial(u.trial_id).tuner_id == "B"
    assert [o.value for o in b.project.observations(b.project.trial(u.trial_id))] == [2.0]


@pytest.mark.parametrize("stopping", [False, True], ids=["plain", "early-stopping"])
@pytest.mark.parametrize("engine", SHARED_ENGINES)
def test_lost_trial_whose_id_was_taken_again_is_lost(engine, tmp_path, stopping):
    where = location(engine, tmp_path)
    options = {"early_stopping": MedianStopping(min_trials=1)} if stopping else {}
    a = _oracle(where, **options)
    t = a.create_trial("A")
    a.update_trial(t.trial_id, {"loss": 3.0}, step=0)
    key = a.project.trial(t.trial_id).key
    _lose(where, t.trial_id)
    b, u = _another_takes_its_id(where, **options)
    assert u.trial_id == t.trial_id  # the same id, another trial
    if engine == "sqlite-file":
        assert b.project.trial(u.trial_id).key == key  # even the same row id
    with pytest.raises(TrialLostError, match="no longer in the store"):
        a.update_trial(t.trial_id, {"loss": 1.0}, step=1)
    with pytest.raises(TrialLostError):
        a.record_result(t.trial_id, {"loss": 1.0}, step=1)
    t.status = "COMPLETED"
    with pytest.raises(TrialLostError):
        a.end_trial(t)
    _check_b_untouched_then_completes(b, u)


@pytest.mark.parametrize("engine", SHARED_ENGINES)
def test_lost_trial_ended_without_a_report_since(engine, tmp_path):
    """The end alone (the values the worker kept are checked as they are written)."""
    where = location(engine, tmp_path)
    a, t = _reported(where)
    _lose(where, t.trial_id)
    _its_end_is_lost(a, t, *_another_takes_its_id(where))


@pytest.mark.parametrize("engine", SHARED_ENGINES)
def test_lost_trial_handed_back_to_its_worker(engine, tmp_path):
    """A running trial handed back to its worker (create_trial again) keeps the identity of
    its run: its end is read from the store and checked there."""
    where = location(engine, tmp_path)
    a = _oracle(where)
    t = a.create_trial("A")
    again = a.create_trial("A")  # its own running trial, handed back
    assert again.trial_id == t.trial_id
    _lose(where, t.trial_id)
    _its_end_is_lost(a, again, *_another_takes_its_id(where))
    # and a worker's own trial handed back, not lost, still ends as usual
    v = a.create_trial("A")
    w = a.create_trial("A")
    assert w.trial_id == v.trial_id
    a.update_trial(w.trial_id, {"loss": 5.0})
    w.status = "COMPLETED"
    a.end_trial(w)
    assert a.get_trial(v.trial_id).status == "COMPLETED"


@pytest.mark.parametrize("engine", SHARED_ENGINES)
def test_a_trial_ended_stopped_then_lost_runs_anew_in_the_same_worker(engine, tmp_path):
    # The STOPPED end and the creation of a trial lost with a server's last commits: the
    # worker's next create_trial made a new trial under the same id, and every report and
    # end of it was refused in the worker ("is STOPPED and its worker has ended it"), the
    # trial left RUNNING; its Tuner took it again and again, the other workers waited on it.
    where = location(engine, tmp_path)
    a, t = _reported(where)
    t.status = "STOPPED"
    a.end_trial(t)
    with pytest.raises(TrialNotRunningError, match="its worker has ended it"):
        a.update_trial(t.trial_id, {"loss": 1.0}, step=1)  # (ended here: refused)
    _lose(where, t.trial_id)
    again = a.create_trial("A")
    assert again.trial_id == t.trial_id  # another trial, under the same id
    a.update_trial(again.trial_id, {"loss": 2.0})
    again.status = "COMPLETED"
    a.end_trial(again)
    assert (a.get_trial(again.trial_id).status, a.get_trial(again.trial_id).score) == (
        "COMPLETED", 2.0)
