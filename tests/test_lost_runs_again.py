"""A worker whose trial was lost is told so even after the trial that took its id was
handed on in turn: a third worker runs it in a later run than the lost one had.

Worker A runs trial T; T's creating commit is lost (a DELETE of its row stands in for it,
as in test_lost_runs.py); worker B, a real process, creates a trial under the same id and
is killed with ``kill -9``; worker C takes that trial over, in run 2. A's run 1 was never a
run of C's trial, so A must get TrialLostError (not "handed to another worker"), with
nothing of its run written into C's. A run that really was handed on twice (its worker
taken for dead, then the next one killed) is still refused as handed on.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from typing import Any

import pytest
from _postgres import wait_until
from _stores import (
    DEADLINE,
    SHARED_ENGINES,
    enqueue_take_and_hold,
    first_free,
    location,
    lost_runs_oracle,
    new_project,
)
from test_lost_runs import _lose

import hpstore
from hpstore import MedianStopping, TrialLostError, TrialNotRunningError
from hpstore.store import TrialRecord, open_store


def _b_takes_its_id_and_is_killed(where: str) -> tuple[str, str]:
    """B, a process of its own, takes the lost trial's id (its enqueued values), reports
    7.0 and is killed with kill -9; returns the id B took and B's liveness token."""
    ctx = mp.get_context("spawn")
    info = ctx.Queue()
    proc = ctx.Process(target=enqueue_take_and_hold, args=(where, {"x": 9.0}, 7.0, info),
                       daemon=True)
    proc.start()
    trial_id, token, pid = info.get(timeout=DEADLINE)
    assert pid == proc.pid
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(DEADLINE)
    return str(trial_id), token


def _c_takes_it_over(where: str, trial_id: str, token: str, **options: Any
                     ) -> tuple[Any, Any]:
    """C, and the trial C is handed: B's, in run 2."""
    c = lost_runs_oracle(where, **options)
    # (a server drops a killed worker's lock a moment after its process is gone)
    wait_until(lambda: not c.store.is_alive(token), DEADLINE, "B's death being seen")
    u = c.create_trial("C")
    assert u.trial_id == trial_id
    record = c.project.trial(trial_id)
    assert (record.run, record.tuner_id, u.hyperparameters.values["x"]) == (2, "C", 9.0)
    return c, u


def _values(oracle: Any, trial_id: str) -> list[tuple[int, float]]:
    record = oracle.project.trial(trial_id)
    return [(o.run, o.value) for o in oracle.project.observations(record, every_run=True)]


@pytest.mark.parametrize("stopping", [False, True], ids=["plain", "early-stopping"])
@pytest.mark.parametrize("engine", SHARED_ENGINES)
def test_a_lost_run_is_lost_after_its_ids_trial_was_handed_to_a_third_worker(
        engine, tmp_path, stopping):
    where = location(engine, tmp_path)
    options = {"early_stopping": MedianStopping(min_trials=1)} if stopping else {}
    a = lost_runs_oracle(where, **options)
    t = a.create_trial("A")
    a.update_trial(t.trial_id, {"loss": 3.0}, step=0)
    _lose(where, t.trial_id)
    taken, token = _b_takes_its_id_and_is_killed(where)
    assert taken == t.trial_id
    c, u = _c_takes_it_over(where, t.trial_id, token, **options)
    with pytest.raises(TrialLostError, match="no longer in the store"):
        a.update_trial(t.trial_id, {"loss": 1.0}, step=1)
    with pytest.raises(TrialLostError):
        a.record_result(t.trial_id, {"loss": 1.0}, step=1)
    t.status = "COMPLETED"
    with pytest.raises(TrialLostError):
        a.end_trial(t)
    record = c.project.trial(u.trial_id)
    assert (record.status, record.run, record.tuner_id) == ("RUNNING", 2, "C")
    assert _values(c, u.trial_id) == [(1, 7.0)]  # B's only: nothing of A's run
    c.update_trial(u.trial_id, {"loss": 2.0})
    u.status = "COMPLETED"
    c.end_trial(u)
    done = c.get_trial(u.trial_id)
    assert (done.status, done.score) == ("COMPLETED", 2.0)
    with pytest.raises(TrialLostError):  # and once C's run has ended
        a.end_trial(t)
    assert _values(c, u.trial_id) == [(1, 7.0), (2, 2.0)]
    assert c.get_trial(u.trial_id).score == 2.0
    a.close()
    c.close()


@pytest.mark.parametrize("reports", [False, True], ids=["returns", "reports"])
@pytest.mark.parametrize("engine", SHARED_ENGINES)
def test_a_tuner_whose_lost_trial_a_third_worker_took_goes_on(engine, tmp_path, capsys,
                                                              reports):
    where = location(engine, tmp_path)
    lost: list[str] = []

    def run_trial(trial: Any) -> float:
        if not lost:
            lost.append(trial.trial_id)
            tuner.report(trial, {"loss": 5.0}, step=0)
            _lose(where, trial.trial_id)
            _, token = _b_takes_its_id_and_is_killed(where)
            c, u = _c_takes_it_over(where, trial.trial_id, token)
            c.update_trial(u.trial_id, {"loss": 2.0})
            u.status = "COMPLETED"
            c.end_trial(u)
            c.close()
            if reports:
                tuner.report(trial, {"loss": 4.0}, step=1)
        return 1.0

    tuner = hpstore.Tuner(lost_runs_oracle(where), run_trial=run_trial, verbose=1)
    tuner.search()
    said = capsys.readouterr()
    assert "which this process was running" in said.out + said.err
    assert "handed to another worker" not in said.out + said.err
    assert "Going on with the next trial" in said.out + said.err
    oracle = lost_runs_oracle(where)
    trials = oracle.trials
    assert len(trials) == 5 and {t.status for t in trials.values()} == {"COMPLETED"}
    assert trials[lost[0]].score == 2.0  # C's, untouched by the lost run's end
    assert _values(oracle, lost[0]) == [(1, 7.0), (2, 2.0)]
    oracle.close()
    tuner.oracle.close()


@pytest.mark.parametrize("engine", SHARED_ENGINES)
def test_a_run_handed_on_twice_is_still_refused_as_handed_on(engine, tmp_path):
    """The run really was handed on (its worker taken for dead, and the next one's too):
    the store's status log holds its start, and its worker is told the trial went on
    without it, not that it was lost."""
    store = open_store(location(engine, tmp_path))
    project = store.create_project(new_project())
    first = project.decide(first_free(project, range(10)), tuner_id="A",
                           session=store.session())
    assert isinstance(first, TrialRecord)
    for dead, taker in (("a-gone", "B"), ("b-gone", "C")):
        project.adopt(project.trial(first.trial_id), dead)
        assert project.reap([dead], 3) == [first.trial_id]
        assert project.take_queued(taker, store.session()) is not None
    now = project.trial(first.trial_id)
    assert (now.run, now.tuner_id) == (3, "C")
    with pytest.raises(TrialNotRunningError, match="another worker"):
        project.record_metrics(first.trial_id, [("loss", "min", 0, 1.0)], run=1,
                               started=first.started_at)
    with pytest.raises(TrialNotRunningError, match="another worker"):
        project.finish(first, "COMPLETED", None, first.values_json, first.values_key, 1.0,
                       0, invalid=False, requeue=False)
    assert project.observations(now, every_run=True) == []
    store.close()
