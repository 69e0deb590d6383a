"""The store contract, operation by operation, on every engine (one suite, every engine
passes it: an engine is what passes it)."""

# ruff: noqa: F811 (the fixtures imported from _contract are the tests' arguments)

from __future__ import annotations

import dataclasses
import math
import multiprocessing as mp
import os
import signal
import sys
import time

import pytest
from _contract import end, engine, make_id, project, start, store  # noqa: F401 (fixtures)
from _stores import (
    DEADLINE,
    SHARED_ENGINES,
    decide_many,
    first_free,
    hold_then_die,
    location,
    new_project,
)

from hpstore.errors import (
    ProjectRemovedError,
    TrialLostError,
    TrialNotFoundError,
    TrialNotRunningError,
    TunerIdInUseError,
)
from hpstore.store import Decision, TrialRecord, open_store
from hpstore.store.contract import StopCheck

CTX = mp.get_context("spawn")



# -- projects ------------------------------------------------------------------------------------

def test_projects_are_created_found_and_listed(store):
    assert store.projects() == [] and store.find_project("p") is None
    a = store.create_project(new_project("a"))
    store.create_project(new_project("b", max_trials=None))
    assert [p.name for p in store.projects()] == ["a", "b"]
    found = store.find_project("b")
    assert found is not None and found.max_trials is None and found.seed == 7
    assert found.objective == {"name": "loss", "direction": "min"}
    assert store.open_project(store.find_project("a")).project_id == a.project_id


def test_a_replaced_project_gets_an_id_never_given_before(store):
    first = store.create_project(new_project("a"))
    second = store.create_project(new_project("a"), replace=True)
    third = store.create_project(new_project("a"), replace=True)
    assert first.project_id < second.project_id < third.project_id
    assert [p.name for p in store.projects()] == ["a"]
    with pytest.raises(ProjectRemovedError):
        first.record()
    with pytest.raises(ProjectRemovedError):
        start(first, store)


def test_settings_change_only_as_asked(project):
    project.update_settings(oracle_config={"search": {"k": 1}, "options": {}})
    assert project.record().max_trials == 10  # not asked to change
    project.update_settings(max_trials=None, set_max_trials=True)
    record = project.record()
    assert record.max_trials is None and record.oracle_config["search"] == {"k": 1}


def test_the_space_grows_once_per_new_entry(project):
    version, items = project.space()
    assert [i["config"]["name"] for i in items] == ["x"] and version == 0
    y = {"class_name": "Boolean", "config": {"name": "y", "default": False, "conditions": []}}
    assert project.extend_space([items[0], y]) == 1
    assert project.extend_space([y]) == 1  # already there
    assert project.space_version() == 1
    assert [i["config"]["name"] for i in project.space()[1]] == ["x", "y"]


# -- deciding ------------------------------------------------------------------------------------

def test_a_decision_is_recorded_with_its_state(store, project):
    trial = start(project, store)
    assert (trial.number, trial.trial_id, trial.status, trial.run) == (0, "00", "RUNNING", 1)
    assert trial.values == {"x": 0} and project.get_value("last") == {"number": 0, "x": 0}
    assert project.trial("00").values_key == "x=0"
    assert [t.trial_id for t in project.running()] == ["00"]


def test_a_quick_decision_is_made_and_recorded_in_one_step(store, project):
    # A quick decider reads through the project while deciding and sees what it records
    # against; a decider that fails leaves nothing behind, its state included.
    seen = []

    def decide(facts):
        seen.append((facts.number, project.has_values("x=0"), project.get_value("last")))
        return first_free(project, range(10))(facts)

    first = project.decide(decide, tuner_id="a", session=store.session(), quick=True)
    second = project.decide(decide, tuner_id="b", session=store.session(), quick=True)
    assert (first.values, second.values) == ({"x": 0}, {"x": 1})
    # (an engine may answer a quick decider's look-up of values without reading, and check
    # at the insert: values that had run are then not recorded, and the decider is asked
    # again, its look-ups read; PostgreSQL does, saving a round trip under its lock)
    assert seen[0] == (0, False, None) and seen[-1] == (1, True, {"number": 0, "x": 0})
    assert seen[1:-1] in ([], [(1, False, {"number": 0, "x": 0})])

    def fail(facts):
        first_free(project, range(10))(facts)
        raise RuntimeError("the algorithm broke")

    with pytest.raises(RuntimeError, match="broke"):
        project.decide(fail, tuner_id="c", session=store.session(), quick=True)
    assert project.count() == 2 and project.get_value("last") == {"number": 1, "x": 1}
    with pytest.raises(TunerIdInUseError):
        project.decide(first_free(project, range(10)), tuner_id="a", session="other",
                       quick=True)
    assert project.count() == 2


def test_a_quick_decider_chooses_as_its_look_ups_say(store, project):
    # Whatever an engine does with a quick decider's look-ups (PostgreSQL checks them as it
    # records), the decision is the one their true answers give: here the answer about
    # x=0 decides which other value is taken, or whether a trial starts at all.
    start(project, store, x=0)

    def elsewhere(facts):
        x = 4 if project.has_values("x=0") else 1
        return Decision("RUNNING", f"{facts.number:02d}", {"x": x}, f"x={x}")

    def waiting(facts):
        if project.has_values("x=0"):
            return Decision("RUNNING", f"{facts.number:02d}", {"x": 3}, "x=3")
        return Decision("IDLE", f"{facts.number:02d}", state={"waited": True})

    assert project.decide(elsewhere, tuner_id="a", session=store.session(),
                          quick=True).values == {"x": 4}
    assert project.decide(waiting, tuner_id="b", session=store.session(),
                          quick=True).values == {"x": 3}
    assert project.get_value("waited") is None  # the IDLE answer was never the decision
    assert sorted(t.values["x"] for t in project.trials()) == [0, 3, 4]


def test_the_creation_facts_carry_the_space_version(project):
    # (an engine may leave it None: the oracle then asks space_version)
    assert project.creation_facts().space_version in (None, 0)
    y = {"class_name": "Boolean", "config": {"name": "y", "default": False, "conditions": []}}
    project.extend_space([y])
    version = project.creation_facts().space_version
    assert version is None or version == project.space_version() == 1


def test_idle_and_stopped_decisions_store_only_their_state(store, project):
    outcome = project.decide(lambda f: Decision("IDLE", str(f.number),
                                                state={"waited": f.number}),
                             tuner_id="w", session=store.session())
    assert isinstance(outcome, Decision) and outcome.status == "IDLE"
    assert project.get_value("waited") == 0 and project.count() == 0
    seen = []
    project.update_settings(max_trials=0, set_max_trials=True)
    outcome = project.decide(lambda f: seen.append((f.number, f.max_trials))
                             or Decision("STOPPED"),
                             tuner_id="w", session=store.session())
    assert seen == [(0, 0)] and outcome.status == "STOPPED"


@pytest.mark.parametrize("quick", [False, True], ids=["locked", "quick"])
def test_one_tuner_id_runs_in_one_session_at_a_time(store, project, quick):
    start(project, store, "w")
    with pytest.raises(TunerIdInUseError):
        project.decide(first_free(project, range(10)), tuner_id="w", session="another",
                       quick=quick)
    assert project.count() == 1  # nothing recorded
    same = project.decide(first_free(project, range(10)), tuner_id="w",
                          session=store.session(), quick=quick)
    assert isinstance(same, TrialRecord)  # its own session: the Oracle's to decide


def test_the_retry_queue_is_first_in_first_out_with_a_tuners_own_trial_first(store, project):
    a, b, c = (start(project, store, t) for t in ("a", "b", "c"))
    end(project, a, "IDLE", None, requeue=True)
    end(project, b, "INVALID", None, invalid=True, requeue=True)
    end(project, c, "IDLE", None, requeue=True)
    taken = project.take_queued("c", store.session())
    assert taken.trial_id == c.trial_id and taken.run == 2 and taken.status == "RUNNING"
    assert project.take_queued("z", None).trial_id == a.trial_id
    assert project.take_queued("z2", None).trial_id == b.trial_id
    assert project.take_queued("z3", None) is None
    assert project.creation_facts()[:4] == (10, 3, False, 0)


def test_dead_sessions_trials_are_handed_back_then_failed(store, project):
    trial = start(project, store, "w")
    project.adopt(trial, "dead-session")
    assert project.reap(["dead-session"], 3) == [trial.trial_id]
    again = project.trial(trial.trial_id)
    assert (again.status, again.interruptions, again.queued is not None) == ("IDLE", 1, True)
    for _ in range(2):
        assert project.take_queued("w", "dead-session") is not None
        project.reap(["dead-session"], 3)
    final = project.trial(trial.trial_id)
    assert (final.status, final.interruptions) == ("FAILED", 3)
    assert "died 3 times" in final.message


def test_dead_sessions_trials_are_handed_back_in_trial_order_whatever_the_tokens_order(
        store, project):
    # the oracle passes a set of tokens, whose order moves with PYTHONHASHSEED: a resumed
    # search (or its copy) ran its interrupted trials again in another order each time
    trials = [start(project, store, f"w{i}") for i in range(4)]
    tokens = [f"dead-{i}" for i in range(4)]
    for trial, token in zip(trials, tokens):
        project.adopt(trial, token)
    ids = [t.trial_id for t in trials]
    assert project.reap([tokens[2], tokens[0], tokens[3], tokens[1]], 3) == ids
    assert [project.take_queued(f"z{i}", None).trial_id for i in range(4)] == ids


# -- metrics and ends ----------------------------------------------------------------------------

def test_negative_zero_is_stored_as_zero_by_every_engine(store, project):
    # SQLite keeps no -0.0; a server would, and a search copied between them would differ
    trial = start(project, store)
    project.record_metrics(trial.trial_id, [("loss", "min", 0, -0.0)], run=1)
    project.finish(project.trial(trial.trial_id), "COMPLETED", None, trial.values,
                   trial.values_key, -0.0, 0, invalid=False, requeue=False)
    [value] = [o.value for o in project.observations(trial)]
    score = project.trial(trial.trial_id).score
    assert math.copysign(1.0, value) == math.copysign(1.0, score) == 1.0


def test_metrics_are_recorded_only_for_the_run_that_reports(store, project):
    trial = start(project, store)
    project.record_metrics(trial.trial_id, [("loss", "min", 0, 2.0), ("loss", "min", 0, 4.0),
                                            ("acc", "max", 1, math.nan)], run=1)
    obs = project.observations(trial)
    assert [(o.metric, o.step, o.value) for o in obs][:2] == [("loss", 0, 2.0), ("loss", 0, 4.0)]
    assert math.isnan(obs[2].value)
    with pytest.raises(TrialNotRunningError, match="another worker"):
        project.record_metrics(trial.trial_id, [("loss", "min", 1, 1.0)], run=2)
    end(project, trial)
    with pytest.raises(TrialNotRunningError, match="COMPLETED"):
        project.record_metrics(trial.trial_id, [("loss", "min", 1, 1.0)])
    with pytest.raises(TrialNotFoundError):
        project.record_metrics("99", [("loss", "min", 1, 1.0)])


def test_a_trial_is_read_with_its_current_runs_metrics(store, project):
    trial = start(project, store)
    assert project.trial_with_observations(trial.trial_id) == (project.trial(trial.trial_id), [])
    project.record_metrics(trial.trial_id, [("loss", "min", 0, 2.0), ("acc", "max", 0, math.inf),
                                            ("loss", "min", 1, math.nan)], run=1)
    end(project, trial, status="IDLE", requeue=True)  # handed back: a second run begins
    again = project.take_queued("w", store.session())
    project.record_metrics(trial.trial_id, [("loss", "min", 0, -1.5), ("acc", "max", 0, math.inf),
                                            ("loss", "min", 1, math.nan)], run=2)
    record, observations = project.trial_with_observations(trial.trial_id)
    assert record == project.trial(trial.trial_id) and record.run == again.run == 2
    # this run's only, in order (compared as text: NaN equals nothing, and Python 3.13's
    # dataclasses compare field by field, so an Observation holding NaN equals no other)
    assert repr(observations) == repr(project.observations(record))
    assert [(o.run, o.metric, o.step, o.value) for o in observations][:2] == [
        (2, "loss", 0, -1.5), (2, "acc", 0, math.inf)]
    assert math.isnan(observations[2].value) and observations[2].step == 1
    first_run = [o for o in project.observations(record, every_run=True) if o.run == 1]
    assert [(o.metric, o.value) for o in first_run][:2] == [("loss", 2.0), ("acc", math.inf)]
    assert math.isnan(first_run[2].value)
    with pytest.raises(TrialNotFoundError):
        project.trial_with_observations("99")


def test_an_end_is_written_only_over_what_was_read(store, project):
    trial = start(project, store)
    end(project, trial, score=0.5)
    with pytest.raises(TrialNotRunningError):
        end(project, trial)  # the same end again, from a stale read
    stored = project.trial(trial.trial_id)
    assert (stored.status, stored.score, stored.ended_at is not None) == ("COMPLETED", 0.5, True)


@pytest.mark.parametrize("requeue", [False, True], ids=["ends", "requeued"])
def test_a_run_that_started_at_another_time_is_not_written_to(store, project, requeue):
    # A trial created under the id of one that was lost (with the server's last commits,
    # or a restore) has its own run 1: the lost run's worker, which knows its run by its
    # number and start, writes nothing to it (nor to an earlier run, when the start of its
    # run was what was lost).
    trial = start(project, store)
    lost = dataclasses.replace(trial, started_at=trial.started_at - 1.0)
    for known in (None, lost):
        for stop in (None, StopCheck("loss", lambda *a: None, lambda *a: None)):
            with pytest.raises(TrialLostError):
                project.record_metrics(trial.trial_id, [("loss", "min", 0, 2.0)], run=1,
                                       known=known, stop=stop, started=lost.started_at)
    status = "IDLE" if requeue else "COMPLETED"
    with pytest.raises(TrialLostError):
        project.finish(lost, status, None, lost.values_json, lost.values_key, 2.0, 0,
                       invalid=False, requeue=requeue)
    assert project.finish(lost, status, None, lost.values_json, lost.values_key, 2.0, 0,
                          invalid=False, requeue=requeue, seen=0) is False
    # a run whose start was lost: the store holds an earlier run of the trial
    later = dataclasses.replace(trial, run=2)
    with pytest.raises(TrialLostError):
        project.record_metrics(trial.trial_id, [("loss", "min", 0, 2.0)], run=2,
                               started=trial.started_at)
    with pytest.raises(TrialLostError):
        project.finish(later, status, None, later.values_json, later.values_key, 2.0, 0,
                       invalid=False, requeue=requeue)
    stored = project.trial(trial.trial_id)
    assert (stored.status, stored.run, stored.started_at) == ("RUNNING", 1, trial.started_at)
    assert project.observations(stored) == []
    # its own run, known by the same number and start, goes on as usual
    kept = project.record_metrics(trial.trial_id, [("loss", "min", 0, 2.0)], run=1,
                                  known=trial, started=trial.started_at)
    assert project.finish(kept, status, None, kept.values_json, kept.values_key, 2.0, 0,
                          invalid=False, requeue=requeue, seen=1) is True
    assert project.trial(trial.trial_id).status == status


@pytest.mark.parametrize("change", ["value added", "stopped", "stopped again", "none"])
@pytest.mark.parametrize("requeue", [False, True], ids=["ends", "requeued"])
def test_an_end_from_kept_values_is_written_only_if_nothing_else_changed(store, project,
                                                                         change, requeue):
    # A worker keeps the decision's record and record_metrics' answers, and ends the run
    # from them with `seen`: the store writes it only if they are still all there is.
    trial = start(project, store)
    kept = project.record_metrics(trial.trial_id, [("loss", "min", 0, 2.0)], run=1)
    if change == "stopped again":
        project.set_status(trial.trial_id, "STOPPED", "by a person")
        kept = project.trial(trial.trial_id)
    before = project.last_transition()
    if change == "value added":  # by another writer, e.g. another oracle on the same search
        project.record_metrics(trial.trial_id, [("loss", "min", 1, 0.5)])
    elif change.startswith("stopped"):
        project.set_status(trial.trial_id, "STOPPED", "by a rule")
        before = project.last_transition()
    status = "IDLE" if requeue else "COMPLETED"
    written = project.finish(kept, status, None, kept.values_json, kept.values_key,
                             None if requeue else 2.0, None if requeue else 0, invalid=False,
                             requeue=requeue, seen=1)
    stored = project.trial(trial.trial_id)
    assert written is (change == "none")
    if written:
        assert (stored.status, stored.queued is not None) == (status, requeue)
        assert project.last_transition() > before
    else:  # nothing of the end is written
        assert stored.status == ("RUNNING" if change == "value added" else "STOPPED")
        assert (stored.score, stored.queued, project.last_transition()) == (None, None, before)
        assert stored.message == (None if change == "value added" else "by a rule")


def test_an_end_grows_the_space_in_the_same_step(store, project):
    trial = start(project, store)
    y = {"class_name": "Fixed", "config": {"name": "y", "value": 1, "conditions": []}}
    end(project, trial, space=[y])
    assert [i["config"]["name"] for i in project.space()[1]] == ["x", "y"]


def test_status_set_from_outside(store, project):
    trial = start(project, store)
    assert project.set_status(trial.trial_id, "STOPPED", "enough") == "RUNNING"
    assert project.trial(trial.trial_id).status == "STOPPED"
    project.record_metrics(trial.trial_id, [("loss", "min", 3, 1.0)])  # it may still report


# -- identity ------------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", SHARED_ENGINES)
def test_identity_is_the_data_not_the_name_it_was_reached_by(engine, tmp_path):
    where = location(engine, tmp_path)
    store = open_store(where)
    if engine == "postgresql":  # another spelling of the same server, database and schema
        another = where.replace("127.0.0.1", "localhost").replace("postgresql:", "postgres:")
    else:  # a symbolic link to the file
        another = str(tmp_path / "link.db")
        os.symlink(where, another)
    assert another != where
    (tmp_path / "other").mkdir()
    same, other = open_store(another), open_store(location(engine, tmp_path / "other"))
    assert store.identity() == same.identity() != other.identity()
    for opened in (store, same, other):
        opened.close()
    memory, memory_too = open_store(None), open_store(None)
    assert memory.identity() != memory_too.identity()  # (two searches, each its own)
    memory.close()
    memory_too.close()


# -- liveness and mutual exclusion ----------------------------------------------------------------

def test_liveness_and_the_mutex(store):
    token = store.session()
    if store.memory:
        assert token is None and store.is_alive("anything")
        return
    assert store.owns(token) and store.is_alive(token)
    assert not store.owns("0123456789abcdef") and not store.is_alive("0123456789abcdef")
    with store.mutex(), store.mutex():  # re-entrant
        pass


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
@pytest.mark.parametrize("engine", SHARED_ENGINES)
def test_a_killed_holders_trial_is_reaped_by_another_process(engine, tmp_path):
    where = location(engine, tmp_path)
    store = open_store(where)
    store.create_project(new_project())
    ready, info = CTX.Event(), CTX.Queue()
    proc = CTX.Process(target=hold_then_die, args=(where, ready, info))
    proc.start()
    assert ready.wait(DEADLINE)
    trial_id, token, pid = info.get(timeout=DEADLINE)
    assert store.is_alive(token, pid)
    # asked together: the other process's token, this one's, one nobody ever held
    mine, never = store.session(), "0123456789abcdef"
    assert store.alive({token: pid, mine: os.getpid(), never: None}) == {token, mine}
    os.kill(pid, signal.SIGKILL)
    proc.join(DEADLINE)
    if engine == "postgresql":
        # the server ends the dead client's backend as soon as it reads the closed socket:
        # no heartbeat, no timeout, but not within the instant of the kill either
        from _postgres import wait_until

        wait_until(lambda: not store.is_alive(token, pid), DEADLINE, "the lock's release")
    assert not store.is_alive(token, pid)  # at once on a file: no heartbeat, no waiting
    assert store.alive({token: pid, mine: os.getpid()}) == {mine}
    project = store.open_project(store.find_project("p"))
    assert project.reap([token], 3) == [trial_id]
    store.close()


@pytest.mark.parametrize("quick", [False, True], ids=["locked", "quick"])
@pytest.mark.parametrize("engine", SHARED_ENGINES)
def test_decisions_from_several_processes_are_serialised(engine, tmp_path, quick):
    where = location(engine, tmp_path)
    store = open_store(where)
    store.create_project(new_project(max_trials=None))
    store.close()
    begin, results = CTX.Barrier(5, timeout=DEADLINE), CTX.Queue()
    procs = [CTX.Process(target=decide_many, args=(where, f"p{i}", 40, begin, results, quick))
             for i in range(4)]
    for p in procs:
        p.start()
    begin.wait()
    reports = [results.get(timeout=DEADLINE * 2) for _ in procs]
    for p in procs:
        p.join(DEADLINE)
    assert all(kind == "ok" for kind, _ in reports), reports
    made = [m for _, ms in reports for m in ms]
    assert len(made) == 160
    numbers, ids, keys = zip(*made)
    assert sorted(numbers) == list(range(160))  # every number once
    assert len(set(ids)) == len(set(keys)) == 160  # no trial id or set of values twice
    store = open_store(where)
    project = store.open_project(store.find_project("p"))
    assert project.count() == 160 and len(project.values_keys()) == 160
    store.close()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
@pytest.mark.parametrize("quick", [False, True], ids=["locked", "quick"])
@pytest.mark.parametrize("engine", SHARED_ENGINES)
def test_a_decision_reads_the_running_trials_with_its_facts_when_asked(engine, tmp_path,
                                                                       quick):
    where = location(engine, tmp_path)
    store = open_store(where)
    project = store.create_project(new_project())
    ready, info = CTX.Event(), CTX.Queue()
    proc = CTX.Process(target=hold_then_die, args=(where, ready, info))
    proc.start()
    try:
        assert ready.wait(DEADLINE)
        held, token, pid = info.get(timeout=DEADLINE)
        seen = []

        def decider(facts):
            seen.append(facts.running)
            return first_free(project, range(10))(facts)

        def decide(tuner):
            return project.decide(decider, tuner_id=tuner, session=store.session(), quick=quick,
                                  running=True)

        # another live process's trial runs: the decision is made, and sees it
        mine = decide("a")
        assert isinstance(mine, TrialRecord) and mine.values == {"x": 1}
        # (a quick decider may be asked twice on a server: see test_a_quick_decider_...)
        assert seen and all(s == (project.trial(held),) for s in seen)
        asked = len(seen)
        # this tuner's own trial runs: nothing is decided or written, to hand it back first
        assert decide("a") is None and len(seen) == asked and project.count() == 2
        # the other process dies: nothing is decided while its trial is to be reaped
        os.kill(pid, signal.SIGKILL)
        proc.join(DEADLINE)
        if engine == "postgresql":
            from _postgres import wait_until

            wait_until(lambda: not store.is_alive(token, pid), DEADLINE, "the lock's release")
        assert decide("b") is None and len(seen) == asked and project.count() == 2
        assert project.reap([token], 3) == [held]
        # reaped, its trial waits in the queue and is taken before anything is decided
        again = decide("b")
        assert (again.trial_id, again.run, len(seen)) == (held, 2, asked)
        assert project.decide(decider, tuner_id="c", session=store.session(), quick=quick
                              ).values == {"x": 2} and seen[-1] is None  # not asked: not read
        store.close()
    finally:  # a failed check must not leave the holder waiting forever
        if proc.is_alive():
            proc.kill()
        proc.join(DEADLINE)


def test_time_moves_forward_in_the_log(store, project):
    before = time.time()
    trial = start(project, store)
    assert project.transitions(trial_id=trial.trial_id)[0].at >= before - 1
