"""The store contract's runs of the status log (what the report's timeline draws), on every
engine: each kind of run found as the log read in order finds it, in the same order, and
past the limit the same even sample of each worker's runs."""

# ruff: noqa: F811 (the fixtures imported from _contract are the tests' arguments)

from __future__ import annotations

import sqlite3

import pytest
from _contract import end, engine, make_id, project, start, store  # noqa: F401 (fixtures)
from _stores import new_project

from hpstore.store import RunRecord
from hpstore.store.contract import StopCheck, StopVerdict


def read_in_order(project) -> list[RunRecord]:
    """The runs of the whole log read in order, by the rules of the contract: the reference
    the engines' statement is held to."""
    started: dict[str, tuple[float, str]] = {}
    stopped: dict[str, int] = {}
    runs: list[RunRecord] = []
    for c in project.transitions():
        if c.to_status == "RUNNING":
            if c.trial_id in started:  # started again without an end: that run was lost
                begin, who = started[c.trial_id]
                runs.append(RunRecord(c.trial_id, who, begin, c.at, "IDLE"))
            started[c.trial_id] = (c.at, c.tuner_id or "(unknown)")
        elif c.from_status == c.to_status:  # retired or restored
            continue
        elif c.trial_id in started:
            begin, who = started.pop(c.trial_id)
            if c.to_status == "STOPPED":
                stopped[c.trial_id] = len(runs)
            runs.append(RunRecord(c.trial_id, who, begin, c.at, c.to_status))
        elif c.from_status == "STOPPED" and c.trial_id in stopped:
            i = stopped.pop(c.trial_id)
            runs[i] = runs[i]._replace(end=c.at, status=c.to_status)
    return runs + [RunRecord(t, who, begin, None, "RUNNING")
                   for t, (begin, who) in started.items()]


def even_sample(runs: list[RunRecord], limit: int) -> list[RunRecord]:
    """Of each worker's runs in order of start, the run i * n // share for i below share =
    max(1, n * limit // total); by start."""
    by_worker: dict[str, list[RunRecord]] = {}
    for run in sorted(runs, key=lambda r: r.start):
        by_worker.setdefault(run.tuner_id, []).append(run)
    kept = []
    for own in by_worker.values():
        share = max(1, len(own) * limit // len(runs))
        kept += [own[i * len(own) // share] for i in range(share)]
    return sorted(kept, key=lambda r: r.start)


def stop_at_once(metric="loss"):
    return StopCheck(metric, lambda *a: StopVerdict("Stopped early by a test", 9.0, 0),
                     lambda *a: None)


def every_kind_of_run(project, store):
    """Trials whose runs end each way the log knows; the ids of the trials."""
    done = start(project, store, "w1")  # COMPLETED, then retired and restored
    end(project, done)
    project.retire(done.trial_id, retired=True, by="ci", reason="a leak")
    project.retire(done.trial_id, retired=False, by="ci", reason=None)
    lost = start(project, store, "w2")  # its worker died: IDLE, run again by w1, FAILED
    project.adopt(lost, "dead-session")
    assert project.reap(["dead-session"], 3) == [lost.trial_id]
    again = project.take_queued("w1", store.session())
    end(project, again, "FAILED", None)
    halted = start(project, store, "w2")  # stopped early, then its worker failed
    project.record_metrics(halted.trial_id, [("loss", "min", 0, 9.0)], stop=stop_at_once())
    stopped = project.trial(halted.trial_id)
    assert stopped.status == "STOPPED"
    end(project, stopped, "FAILED", None)
    kept = start(project, store, "w2")  # stopped early, and stays so
    project.record_metrics(kept.trial_id, [("loss", "min", 0, 9.0)], stop=stop_at_once())
    open_run = start(project, store, "w3")  # still running
    return {"done": done.trial_id, "lost": lost.trial_id, "halted": halted.trial_id,
            "kept": kept.trial_id, "open": open_run.trial_id}


def test_every_run_in_the_order_the_log_ends_them(store, project):
    ids = every_kind_of_run(project, store)
    runs, total = project.runs(100)
    assert runs == read_in_order(project) and total == len(runs) == 6
    assert [(r.trial_id, r.tuner_id, r.status) for r in runs] == [
        (ids["done"], "w1", "COMPLETED"), (ids["lost"], "w2", "IDLE"),
        (ids["lost"], "w1", "FAILED"), (ids["halted"], "w2", "FAILED"),
        (ids["kept"], "w2", "STOPPED"), (ids["open"], "w3", "RUNNING")]
    assert runs[-1].end is None and all(r.end is not None for r in runs[:-1])
    assert project.runs(6) == (runs, 6)  # up to the limit: every one


def test_a_run_started_again_without_an_end_was_lost(tmp_path):
    # (a row hpstore writes when a running trial's run count grows: written here by hand,
    # as the engines share the statement that reads it)
    from hpstore.store import open_store

    path = str(tmp_path / "s.db")
    store = open_store(path)
    project = store.create_project(new_project())
    first = start(project, store, "w1")
    second = start(project, store, "w2")
    store.close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE trials SET run_count = run_count + 1, tuner_id = NULL, "
                     "changed_at = changed_at + 1 WHERE trial_id = ?", (first.trial_id,))
    conn.close()
    store = open_store(path)
    project = store.open_project(store.find_project("p"))
    runs, total = project.runs(100)
    assert runs == read_in_order(project) and total == 3
    # the lost run ended where the trial started again (by a worker the log does not name);
    # the open ones keep the order in which their trials first started
    assert [(r.trial_id, r.tuner_id, r.status) for r in runs] == [
        (first.trial_id, "w1", "IDLE"), (first.trial_id, "(unknown)", "RUNNING"),
        (second.trial_id, "w2", "RUNNING")]
    store.close()


@pytest.fixture
def many(store):
    """A project of 40 runs by three workers that ran 24, 12 and 4 of them."""
    project = store.create_project(new_project(max_trials=None))
    workers = ["w0"] * 24 + ["w1"] * 12 + ["w2"] * 4
    for i, worker in enumerate(workers):
        end(project, start(project, store, worker, x=i))
    return project


@pytest.mark.parametrize("limit", [10, 3, 39])
def test_past_the_limit_an_even_sample_of_each_workers_runs(many, limit):
    every = read_in_order(many)
    runs, total = many.runs(limit)
    assert total == 40
    assert runs == even_sample(every, limit)
    shares = {w: sum(r.tuner_id == w for r in runs) for w in ("w0", "w1", "w2")}
    assert shares == {10: {"w0": 6, "w1": 3, "w2": 1}, 3: {"w0": 1, "w1": 1, "w2": 1},
                      39: {"w0": 23, "w1": 11, "w2": 3}}[limit]


def test_more_workers_than_the_limit_are_thinned_to_it(store):
    project = store.create_project(new_project(max_trials=None))
    for i in range(30):
        end(project, start(project, store, f"w{i:02d}", x=i))
    runs, total = project.runs(10)
    assert total == 30 and len(runs) == 10
    assert [r.tuner_id for r in runs] == [f"w{i:02d}" for i in range(0, 30, 3)]
    assert project.runs(0) == ([], 30)


def test_a_project_with_no_run(store, project):
    assert project.runs(10) == ([], 0)
