"""The store contract's steering, on every engine: the queue of enqueued trials, added
trials, retirement, notes, and steering kept through the whole-project document."""

# ruff: noqa: F811 (the fixtures imported from _contract are the tests' arguments)

from __future__ import annotations

import pytest
from _contract import end, engine, make_id, project, start, store  # noqa: F401 (fixtures)
from _stores import new_project

from hpstore.errors import TrialNotFoundError


# -- steering ---------------------------------------------------------------------------------
def test_enqueued_trials_wait_in_order_and_are_taken_before_any_decision(store, project):
    first, created = project.enqueue({"x": 3}, "x=3", skip_if_exists=True, make_id=make_id,
                                     by="alice@host")
    assert created and (first.trial_id, first.status, first.run) == ("00", "IDLE", 0)
    assert first.origin == "enqueued" and first.queued is not None
    same, created = project.enqueue({"x": 3}, "x=3", skip_if_exists=True, make_id=make_id,
                                    by="bob@host")
    assert not created and same.trial_id == "00"
    second, _ = project.enqueue({"x": 4}, "x=4", skip_if_exists=True, make_id=make_id,
                                by=None)
    assert second.trial_id == "01"
    twice, created = project.enqueue({"x": 4}, "x=4", skip_if_exists=False, make_id=make_id,
                                     by=None)
    assert created and twice.trial_id == "02"
    assert [t.trial_id for t in project.enqueued()] == ["00", "01", "02"]
    assert project.creation_facts()[:4] == (10, 3, True, 0)
    taken = start(project, store, "w")  # the queue first, whatever the decider would do
    assert (taken.trial_id, taken.status, taken.run, taken.values) == ("00", "RUNNING", 1,
                                                                        {"x": 3})
    log = project.transitions(trial_id="00")
    assert [(c.from_status, c.to_status) for c in log] == [(None, "IDLE"), ("IDLE", "RUNNING")]
    assert log[0].message == "Enqueued by alice@host."
    assert project.steering_counts() == {"enqueued": 3}


def test_enqueueing_into_a_full_project_is_refused(store):
    from hpstore.errors import SearchFullError

    project = store.create_project(new_project("full", max_trials=1))
    start(project, store)
    with pytest.raises(SearchFullError):
        project.enqueue({"x": 5}, "x=5", skip_if_exists=True, make_id=make_id, by=None)
    assert project.count() == 1


def test_added_trials_are_recorded_whole_and_counted_as_asked(store, project):
    from hpstore.store import NewTrial

    done = NewTrial({"x": 1}, "x=1", "COMPLETED", 0.5, 1,
                    [("loss", "min", 0, 0.9), ("loss", "min", 1, 0.5)], "added")
    failed = NewTrial({"x": 2}, "x=2", "FAILED", None, None, [], "added", "out of memory")
    added = project.add_trials([done, failed], counted=False, skip_existing=False,
                               make_id=make_id)
    assert [(t.trial_id, t.status, t.score, t.run, t.origin) for t in added] == [
        ("00", "COMPLETED", 0.5, 1, "added"), ("01", "FAILED", None, 1, "added")]
    assert project.record().uncounted == 2 and project.creation_facts().counted == 0
    obs = project.observations(project.trial("00"))
    assert [(o.step, o.value) for o in obs] == [(0, 0.9), (1, 0.5)]
    assert project.trial("01").message == "out of memory"
    again = project.add_trials([done, NewTrial({"x": 3}, "x=3", "COMPLETED", 0.1, 0, [],
                                               "warm start: a.db 'p' trial 7")],
                               counted=True, skip_existing=True, make_id=make_id)
    assert again[0] is None and again[1].trial_id == "02"
    assert project.record().uncounted == 2 and project.creation_facts().counted == 1
    assert project.steering_counts() == {"added": 2, "warm start": 1}
    assert [t.trial_id for t in project.best(1, "min")] == ["02"]
    log = project.transitions(trial_id="00")
    assert [(c.from_status, c.to_status) for c in log] == [(None, "COMPLETED")]


def test_a_retired_trial_leaves_every_result_and_comes_back(store, project):
    from hpstore.errors import TrialNotEndedError
    from hpstore.store import NewTrial

    for x, score in ((1, 0.5), (2, 0.1), (3, 0.3)):
        project.add_trials([NewTrial({"x": x}, f"x={x}", "COMPLETED", score, 0,
                                     [("loss", "min", 0, score)], "added")],
                           counted=True, skip_existing=False, make_id=make_id)
    before = project.retire("01", retired=True, by="alice", reason="leak")
    assert before.retired_at is None and project.trial("01").retired
    assert [t.trial_id for t in project.best(3, "min")] == ["02", "00"]
    assert [s for _, s in project.completed()] == [0.5, 0.3]
    assert project.scores(["00", "01", "02"]) == [("00", 0.5), ("02", 0.3)]
    assert [s for _, _, _, s in project.score_line()] == [0.5, None, 0.3]
    assert project.steering_counts() == {"added": 3, "retired": 1}
    assert project.retire("01", retired=True, by="bob", reason=None).retired  # no change
    project.retire("01", retired=False, by="carol", reason="fine")
    assert [t.trial_id for t in project.best(1, "min")] == ["01"]
    steps = [(c.from_status, c.to_status, c.tuner_id, c.message)
             for c in project.transitions(trial_id="01")][1:]
    assert steps == [("COMPLETED", "COMPLETED", "alice", "Retired by alice: leak"),
                     ("COMPLETED", "COMPLETED", "carol", "Restored by carol: fine")]
    assert project.recent_final_statuses(5) == ["COMPLETED"] * 3  # not ended again
    running = start(project, store, "w")
    with pytest.raises(TrialNotEndedError):
        project.retire(running.trial_id, retired=True, by="a", reason=None)
    with pytest.raises(TrialNotFoundError):
        project.retire("99", retired=True, by="a", reason=None)


@pytest.mark.parametrize("walked", [5_000, 1])
def test_the_status_log_reads_of_one_project_skip_the_rows_of_another(
        store, project, monkeypatch, walked):
    # the log is walked backwards by row id (so that its last rows cost the same at any
    # size): rows of another project, after and between, must never be taken for this one's;
    # past the rows walked (1 here), a file's project reads its own rows by index instead
    from hpstore.store.sqlite import reading

    monkeypatch.setattr(reading, "WALKED", walked)
    other = store.create_project(new_project("other"))
    mine = start(project, store)
    end(project, mine, "FAILED", score=None)
    theirs = [start(other, store, x=x) for x in range(3)]
    for trial in theirs:
        end(other, trial)
    assert project.recent_final_statuses(3) == ["FAILED"]
    assert other.recent_final_statuses(2) == ["COMPLETED", "COMPLETED"]
    log = project.transitions()
    assert [(c.trial_id, c.to_status) for c in log] == [(mine.trial_id, "RUNNING"),
                                                        (mine.trial_id, "FAILED")]
    assert project.last_transition() == log[-1].seq < other.last_transition()
    assert project.transitions(last=True, limit=5) == log
    assert project.transitions(after=log[0].seq, limit=5) == log[1:]
    assert project.transitions(tuner_id="w", last=True, limit=1) == log[1:]
    assert project.transitions(last=True, limit=1) == log[1:]
    assert store.create_project(new_project("empty")).last_transition() == 0
    # ... and so are the newest metric values
    again = start(project, store, x=9)
    project.record_metrics(again.trial_id, [("loss", "min", 0, 1.0)])
    late = start(other, store, x=9)
    other.record_metrics(late.trial_id, [("loss", "min", 0, 2.0), ("loss", "min", 1, 1.0)])
    newest = project.observations_since(0)[-1][0]
    assert project.last_observation() == newest < other.last_observation()


def test_the_document_without_metrics_leaves_only_the_reported_values_out(store, project):
    # what `hpstore watch` and the dashboard ask an oracle with: every epoch of a large
    # search read, checked and copied took minutes and GBs, and no oracle decides on them
    trial = start(project, store)
    project.record_metrics(trial.trial_id, [("loss", "min", 0, 2.0), ("loss", "min", 1, 1.0)])
    end(project, trial, score=1.0)
    whole, light = project.dump(), project.dump(metrics=False)
    assert [len(t["observations"]) for t in whole["trials"]] == [2]
    assert [t["observations"] for t in light["trials"]] == [[]]
    for name in ("trials", "log", "space", "oracle_state", "settings"):
        if name == "trials":
            assert ([{**t, "observations": []} for t in whole["trials"]] == light["trials"])
        else:
            assert whole[name] == light[name]
    bare = project.dump(metrics=False, log=False)  # the status log left out as well
    assert len(whole["log"]) == 2 and bare["log"] == []
    assert bare["trials"] == [{**t, "observations": [], "transitions": []}
                              for t in whole["trials"]]
    assert bare["space"] == whole["space"] and bare["settings"] == whole["settings"]


def test_a_note_is_set_and_removed(store, project):
    trial = start(project, store)
    assert project.set_note(trial.trial_id, "look at this").note is None  # as it was
    assert project.trial(trial.trial_id).note == "look at this"
    project.set_note(trial.trial_id, None)
    assert project.trial(trial.trial_id).note is None
    with pytest.raises(TrialNotFoundError):
        project.set_note("99", "x")


def test_steering_survives_the_whole_project_document(store, project):
    from hpstore.store import NewTrial

    project.add_trials([NewTrial({"x": 1}, "x=1", "COMPLETED", 0.5, 0, [], "added")],
                       counted=False, skip_existing=False, make_id=make_id)
    project.retire("00", retired=True, by="a", reason="r")
    project.set_note("00", "n")
    project.enqueue({"x": 2}, "x=2", skip_if_exists=True, make_id=make_id, by=None)
    doc = project.dump()
    copy = store.create_project(new_project("copy"))
    copy.load(doc)
    trial = copy.trial("00")
    assert (trial.origin, trial.note, trial.retired_at) == ("added", "n",
                                                            project.trial("00").retired_at)
    assert copy.record().uncounted == 1 and [t.trial_id for t in copy.enqueued()] == ["01"]
