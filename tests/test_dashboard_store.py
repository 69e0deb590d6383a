"""The reads the dashboard's live view adds to the store contract, on every engine: metric
values after a position, and the newest position."""

from __future__ import annotations

import math
import multiprocessing as mp

import pytest
from _dashboard import report_values
from _stores import DEADLINE, ENGINES, SHARED_ENGINES, first_free, location, new_project

from hpstore.store import TrialRecord, open_store

CTX = mp.get_context("spawn")


@pytest.fixture(params=ENGINES)
def store(request, tmp_path):
    opened = open_store(location(request.param, tmp_path))
    yield opened
    opened.close()


def comparable(seen):
    """Observations as tuples with NaN spelled out: NaN equals nothing, and Python 3.13's
    dataclasses compare field by field, without the identity shortcut of tuples."""
    return [(position, trial, tuple("nan" if isinstance(v, float) and math.isnan(v) else v
                                    for v in vars(o).values()))
            for position, trial, o in seen]


def start(project, store, tuner="w"):
    outcome = project.decide(first_free(project, range(10)), tuner_id=tuner,
                             session=store.session())
    assert isinstance(outcome, TrialRecord)
    return outcome


def test_an_empty_project_has_no_observation_and_position_zero(store):
    project = store.create_project(new_project())
    assert project.last_observation() == 0
    assert project.observations_since(0) == []
    start(project, store)
    assert project.last_observation() == 0


def test_observations_since_a_position_are_the_newer_ones_of_this_project_only(store):
    project = store.create_project(new_project())
    other = store.create_project(new_project("other"))
    a, b = start(project, store, "a"), start(project, store, "b")
    foreign = start(other, store, "c")
    project.record_metrics(a.trial_id, [("loss", "min", 0, 3.0), ("acc", "max", 0, 0.5)])
    other.record_metrics(foreign.trial_id, [("loss", "min", 0, 99.0)])
    project.record_metrics(b.trial_id, [("loss", "min", 0, math.nan)])
    project.record_metrics(a.trial_id, [("loss", "min", 1, math.inf)])

    seen = project.observations_since(0)
    positions = [p for p, _, _ in seen]
    assert positions == sorted(positions) and len(set(positions)) == 4
    assert [(t, o.metric, o.step) for _, t, o in seen] == [
        (a.trial_id, "loss", 0), (a.trial_id, "acc", 0), (b.trial_id, "loss", 0),
        (a.trial_id, "loss", 1)]
    assert math.isnan(seen[2][2].value) and seen[3][2].value == math.inf
    assert seen[1][2].direction == "max" and seen[0][2].run == 1
    assert project.last_observation() == positions[-1]
    # from a position on: only what is newer, at most ``limit``
    assert comparable(project.observations_since(positions[1])) == comparable(seen[2:])
    assert comparable(project.observations_since(positions[0], limit=2)) == comparable(seen[1:3])
    assert project.observations_since(positions[-1]) == []
    # the other project sees its own value only
    assert [o.value for _, _, o in other.observations_since(0)] == [99.0]
    assert other.last_observation() not in positions


@pytest.mark.slow
@pytest.mark.parametrize("engine", SHARED_ENGINES)
def test_a_reader_following_positions_sees_each_value_of_two_writers_once(engine, tmp_path):
    where = location(engine, tmp_path)
    store = open_store(where)
    store.create_project(new_project())
    reader = open_store(where, read_only=True) if where else store
    record = reader.find_project("p")
    assert record is not None
    project = reader.open_project(record)
    begin, results = CTX.Barrier(3, timeout=DEADLINE), CTX.Queue()
    procs = [CTX.Process(target=report_values, args=(where, f"w{i}", 300, begin, results))
             for i in range(2)]
    for p in procs:
        p.start()
    begin.wait()
    seen, position, reads = [], 0, 0
    running = {p.pid for p in procs}
    while running:  # follow the writers as the dashboard does, in small batches
        batch = project.observations_since(position, limit=25)
        reads += 1
        if batch:
            seen += batch
            position = batch[-1][0]
        running = {p.pid for p in procs if p.is_alive()}
    for p in procs:
        p.join(DEADLINE)
    outcomes = [results.get(timeout=DEADLINE) for _ in procs]
    assert all(kind == "ok" for kind, _ in outcomes), outcomes
    seen += project.observations_since(position)
    positions = [p for p, _, _ in seen]
    assert positions == sorted(set(positions))  # in order, none twice
    per_trial = {t: sorted(o.step for _, tt, o in seen if tt == t) for _, t in outcomes}
    assert per_trial == {t: list(range(300)) for _, t in outcomes}  # none missed
    assert reads > 1
    if reader is not store:
        reader.close()
    store.close()


def test_a_position_asked_again_after_other_projects_wrote_still_sees_its_own_next(store):
    # a walk that found nothing of this project's is remembered (the next one from the
    # same position starts past it): what the project writes next must still be seen
    project = store.create_project(new_project())
    other = store.create_project(new_project("other"))
    mine, theirs = start(project, store, "a"), start(other, store, "b")
    project.record_metrics(mine.trial_id, [("loss", "min", 0, 1.0)])
    position = project.last_observation()
    for step in range(3):
        other.record_metrics(theirs.trial_id, [("loss", "min", step, 9.0)])
        assert project.observations_since(position) == []
    project.record_metrics(mine.trial_id, [("loss", "min", 1, 2.0)])
    other.record_metrics(theirs.trial_id, [("loss", "min", 3, 9.0)])
    assert [o.value for _, _, o in project.observations_since(position)] == [2.0]
    assert [c.to_status for c in project.transitions(after=0)] == ["RUNNING"]


def test_a_position_asked_again_after_another_project_was_replaced_sees_its_own_next(store):
    # the other project's rows deleted, their ids are given again, here to this project's
    # next values: a reader that had found nothing up to them must not skip them
    project = store.create_project(new_project())
    other = store.create_project(new_project("other"))
    mine, theirs = start(project, store, "a"), start(other, store, "b")
    project.record_metrics(mine.trial_id, [("loss", "min", 0, 1.0)])
    for step in range(5):
        other.record_metrics(theirs.trial_id, [("loss", "min", step, 9.0)])
    position, logged = project.last_observation(), project.last_transition()
    assert project.observations_since(position) == []
    assert project.transitions(after=logged) == []
    store.create_project(new_project("other"), replace=True)
    for step in range(1, 6):
        project.record_metrics(mine.trial_id, [("loss", "min", step, float(step))])
    later = start(project, store, "c")
    assert [o.value for _, _, o in project.observations_since(position)] == [1.0, 2.0, 3.0,
                                                                            4.0, 5.0]
    assert [c.trial_id for c in project.transitions(after=logged)] == [later.trial_id]
