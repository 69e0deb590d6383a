"""The store contract's reads, on every engine: trials, the whole-project document, the
status log, pages by score, steps reported."""

# ruff: noqa: F811 (the fixtures imported from _contract are the tests' arguments)

from __future__ import annotations

import math

import pytest
from _contract import end, engine, make_id, project, start, store  # noqa: F401 (fixtures)
from _stores import location, new_project

from hpstore.errors import HpStoreError
from hpstore.store import open_store

# -- reads ---------------------------------------------------------------------------------------

def test_reads(store, project):
    trials = [start(project, store, f"w{i}") for i in range(4)]
    for trial, score in zip(trials[:3], (3.0, 1.0, 2.0)):
        project.record_metrics(trial.trial_id, [("loss", "min", 0, score)])
        end(project, trial, score=score)
    assert project.count() == 4 and project.trial_ids() == ["00", "01", "02", "03"]
    assert project.counts_by_status() == {"COMPLETED": 3, "RUNNING": 1}
    assert [t.trial_id for t in project.best(2, "min")] == ["01", "02"]
    assert [t.trial_id for t in project.best(5, "max")] == ["00", "02", "01", "03"]
    assert [t.trial_id for t in project.trials(order="score")] == ["01", "02", "00", "03"]
    # a retired trial is ranked by no tool: by score it comes after every other trial
    project.retire("01", retired=True, by="ci", reason=None)
    assert [t.trial_id for t in project.trials(order="score")] == ["02", "00", "03", "01"]
    assert [t.trial_id for t in project.trials(order="score", descending=True)
            ] == ["00", "02", "03", "01"]
    project.retire("01", retired=False, by="ci", reason=None)
    assert [t.trial_id for t in project.trials(statuses=["RUNNING"])] == ["03"]
    assert [t.trial_id for t in project.trials(limit=2, offset=1)] == ["01", "02"]
    assert set(project.trials_by_id(["02", "00", "nope"])) == {"00", "02"}
    assert set(project.trials_by_number([3, 1])) == {1, 3}
    assert project.trial_by_number(2).trial_id == "02" and project.has_trial("02")
    assert project.has_values("x=1") and not project.has_values("x=9")
    assert project.values_keys() == {"x=0", "x=1", "x=2", "x=3"}
    assert [s for _, s in project.completed()] == [3.0, 1.0, 2.0]
    assert project.scores(["02", "00", "03"]) == [("00", 3.0), ("02", 2.0)]
    assert project.score_line()[1] == (1, "01", "COMPLETED", 1.0)
    assert project.observations_of(trials[:2], "loss") == {"00": [(0, 3.0)], "01": [(0, 1.0)]}
    assert project.recent_final_statuses(2) == ["COMPLETED", "COMPLETED"]
    changes = project.transitions()
    assert [(c.trial_id, c.to_status) for c in changes][:2] == [("00", "RUNNING"),
                                                                  ("01", "RUNNING")]
    assert project.last_transition() == changes[-1].seq
    assert [c.to_status for c in project.transitions(trial_id="00")] == ["RUNNING",
                                                                         "COMPLETED"]
    assert len(project.transitions(after=changes[-2].seq)) == 1
    assert project.transitions(last=True, limit=1) == changes[-1:]
    assert [c.tuner_id for c in project.transitions(tuner_id="w1")] == ["w1", "w1"]
    assert project.last_activity() >= changes[-1].at


def test_the_whole_project_as_one_document(store, project, engine, tmp_path):
    trial = start(project, store)
    project.record_metrics(trial.trial_id, [("loss", "min", 0, math.inf)])
    end(project, trial, score=math.inf)
    state = project.dump()
    other = open_store(location(engine, tmp_path / "copy") if engine != "sqlite-file"
                       else str(tmp_path / "copy.db"))
    copy = other.import_project(new_project("copy"), state)
    again = copy.dump()
    assert again["trials"] == state["trials"] and again["space"] == state["space"]
    assert again["oracle_state"] == state["oracle_state"]
    before = copy.dump()
    with pytest.raises(HpStoreError, match="malformed"):
        copy.load({**state, "trials": [{"number": 1}]})
    assert copy.dump() == before  # nothing changed
    # numbers of the wrong type or size: a file kept them (SQLite stores 'abc' in a REAL
    # column) or failed with OverflowError, where a server refused them
    for field, bad in (("score", "abc"), ("created_at", "yesterday"), ("number", 2**70),
                       ("interruptions", 2**40), ("best_step", 1.5)):
        damaged = {**state, "trials": [{**state["trials"][0], field: bad}]}
        with pytest.raises(HpStoreError, match=f"malformed.*{field}"):
            copy.load(damaged)
        assert copy.dump() == before
    observation = [*state["trials"][0]["observations"][0]]
    observation[4] = "x"
    with pytest.raises(HpStoreError, match=r"malformed.*observation's value"):
        copy.load({**state, "trials": [{**state["trials"][0], "observations": [observation]}]})
    with pytest.raises(HpStoreError, match=r"malformed.*settings\.seed"):
        copy.load({**state, "settings": {**state["settings"], "seed": 2**70}})
    assert copy.dump() == before
    other.close()



def test_steps_reported_of_one_status_and_the_most_of_a_status(store):
    """What `hpstore summary` counts the steps early stopping saved from: the stopped
    trials' steps, and the most steps of a completed trial, each of one project and one
    metric, distinct steps only, retired trials included."""
    from hpstore.store import NewTrial

    def reported(steps, metric="loss"):
        return [(metric, "min", s, 0.1) for s in steps]

    project = store.create_project(new_project("a"))
    other = store.create_project(new_project("b"))
    project.add_trials([
        NewTrial({"x": 1}, "x=1", "COMPLETED", 0.5, 1,
                 reported([0, 1, 1, 2]) + reported(range(9), "acc"), "added"),
        NewTrial({"x": 2}, "x=2", "COMPLETED", 0.4, 0, reported([0]), "added"),
        NewTrial({"x": 3}, "x=3", "STOPPED", 0.6, 0, reported([0, 3]), "added",
                 "Stopped early at step 3 by R: worse"),
        NewTrial({"x": 4}, "x=4", "STOPPED", None, None, [], "added"),
        NewTrial({"x": 5}, "x=5", "FAILED", None, None, reported(range(7)), "added"),
    ], counted=True, skip_existing=False, make_id=make_id)
    other.add_trials([NewTrial({"x": 1}, "x=1", "COMPLETED", 0.5, 1, reported(range(20)),
                               "added")], counted=True, skip_existing=False, make_id=make_id)
    assert project.steps_reported("loss") == {"00": (3, 2), "01": (1, 0), "02": (2, 3),
                                              "04": (7, 6)}
    assert project.steps_reported("loss", status="STOPPED") == {"02": (2, 3)}
    assert project.steps_reported("acc", status="COMPLETED") == {"00": (9, 8)}
    assert project.most_steps_reported("loss", "COMPLETED") == 3
    assert project.most_steps_reported("loss", "FAILED") == 7
    assert project.most_steps_reported("loss", "RUNNING") == 0
    assert project.most_steps_reported("acc", "STOPPED") == 0
    assert other.most_steps_reported("loss", "COMPLETED") == 20
    project.retire("00", retired=True, by="alice", reason=None)
    assert project.most_steps_reported("loss", "COMPLETED") == 3


def test_trials_by_score_page_by_page_ties_by_number_unscored_then_retired_last(store):
    from hpstore.store import NewTrial

    project = store.create_project(new_project("ranked", max_trials=None))
    made = [("COMPLETED", 0.5), ("STOPPED", 0.5), ("COMPLETED", 0.2), ("FAILED", None),
            ("COMPLETED", 0.5), ("STOPPED", 0.1), ("COMPLETED", None), ("COMPLETED", 0.9),
            ("FAILED", None), ("STOPPED", 0.2)]
    project.add_trials([NewTrial({"x": i}, f"x={i}", status, score, None, [], "added")
                        for i, (status, score) in enumerate(made)],
                       counted=True, skip_existing=False, make_id=make_id)
    for trial_id in ("04", "07", "08"):
        project.retire(trial_id, retired=True, by="alice", reason=None)
    expected = {  # scored by score then number, unscored by number, the retired last
        (None, False): ["05", "02", "09", "00", "01", "03", "06", "04", "07", "08"],
        (None, True): ["00", "01", "02", "09", "05", "03", "06", "07", "04", "08"],
        (("STOPPED", "FAILED"), False): ["05", "09", "01", "03", "08"],
        (("STOPPED", "FAILED"), True): ["01", "09", "05", "03", "08"],
    }
    for (statuses, descending), ranked in expected.items():
        every = [t.trial_id for t in project.trials(statuses=statuses, order="score",
                                                    descending=descending)]
        assert every == ranked, (statuses, descending)
        for limit in (1, 2, 3, 4, 7, 20):
            for offset in range(len(ranked) + 1):
                page = project.trials(statuses=statuses, order="score",
                                      descending=descending, limit=limit, offset=offset)
                assert [t.trial_id for t in page] == ranked[offset:offset + limit], (
                    statuses, descending, limit, offset)


def test_a_workers_whole_log_newest_last_in_a_file_of_two_projects(store):
    """`hpstore history --worker W` without --limit, of the project that holds most of the
    file's trials and of the one that holds few: the same rows in the same order."""
    big = store.create_project(new_project("big", max_trials=None))
    small = store.create_project(new_project("small", max_trials=None))
    for tuner in ("w1", "w2", "w1", "w2", "w1"):
        end(big, start(big, store, tuner))
        if tuner == "w2":
            end(small, start(small, store, tuner), "FAILED", None)
    end(small, start(small, store, "w1"))
    logs = {}
    for each in (big, small):
        for tuner in (None, "w1", "w2", "nobody"):
            changes = each.transitions(tuner_id=tuner, last=True)
            logs[each.name, tuner] = [(c.trial_id, c.to_status, c.tuner_id) for c in changes]
            assert [c.seq for c in changes] == sorted(c.seq for c in changes)
            assert changes == [c for c in each.transitions() if tuner in (None, c.tuner_id)]
    done = [("RUNNING", "w"), ("COMPLETED", "w")]
    assert logs["big", "w1"] == [(t, s, "w1") for t in ("00", "02", "04") for s, _ in done]
    assert logs["big", "w2"] == [(t, s, "w2") for t in ("01", "03") for s, _ in done]
    assert logs["small", "w2"] == [(t, s, "w2") for t in ("00", "01")
                                   for s in ("RUNNING", "FAILED")]
    assert logs["small", "w1"] == [("02", "RUNNING", "w1"), ("02", "COMPLETED", "w1")]
    assert len(logs["big", None]) == 10 and logs["big", "nobody"] == []
