"""The Oracle contract on the store, in one process (multi-process tests live elsewhere)."""

from __future__ import annotations

import fcntl
import json
import math
import os
import pickle
import shutil
import sqlite3

import numpy as np
import pytest
from _workers import RandomTestOracle, objective_value, open_oracle, space
from _workers import run_trials as run

import hpstore
from hpstore.oracle import Oracle


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "search.db")


def test_base_populate_space_is_abstract(db):
    oracle = Oracle(objective="loss", max_trials=3, database=db)
    with pytest.raises(NotImplementedError, match="populate_space"):
        oracle.create_trial("tuner0")


def test_trials_are_created_scored_and_stored(db):
    oracle = open_oracle(db, max_trials=5, seed=3)
    ended = run(oracle)
    assert len(ended) == 5
    assert oracle.create_trial("tuner0").status == "STOPPED"
    # a second oracle on the file sees the same trials, read from the file
    other = open_oracle(db)
    assert sorted(other.trials) == sorted(t.trial_id for t in ended)
    for t in ended:
        stored = other.trials[t.trial_id]
        assert stored.status == "COMPLETED"
        assert stored.score == pytest.approx(objective_value(t.hyperparameters.values))
        assert stored.hyperparameters.values == t.hyperparameters.values
    assert other.remaining_trials() == 0


def test_trial_ids_are_padded_like_kerastuner(db):
    oracle = open_oracle(db, max_trials=12)
    ids = [t.trial_id for t in run(oracle)]
    assert ids[:3] == ["00", "01", "02"] and ids[-1] == "11"


def test_ongoing_trial_is_returned_to_its_tuner(db):
    oracle = open_oracle(db, max_trials=5)
    first = oracle.create_trial("a")
    again = oracle.create_trial("a")
    other = oracle.create_trial("b")
    assert again.trial_id == first.trial_id
    assert again.hyperparameters.values == first.hyperparameters.values
    assert other.trial_id != first.trial_id
    assert set(oracle.ongoing_trials) == {"a", "b"}


def test_update_trial_requires_every_objective_metric(db):
    oracle = open_oracle(db, max_trials=5, objective=["loss", "val_accuracy"])
    trial = oracle.create_trial("t")
    with pytest.raises(ValueError, match="val_accuracy"):
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
    returned = oracle.update_trial(trial.trial_id, {"loss": 1.0, "val_accuracy": 0.25})
    assert returned.status == "RUNNING"
    # the combined objective is computed from the reported metrics (KerasTuner needs Keras)
    assert returned.metrics.get_best_value("multi_objective") == pytest.approx(0.75)


def test_update_trial_rejects_bad_metrics_and_unknown_trials(db):
    oracle = open_oracle(db, max_trials=5)
    trial = oracle.create_trial("t")
    with pytest.raises(hpstore.InvalidMetricError, match="'nope'"):
        oracle.update_trial(trial.trial_id, {"loss": "nope"})
    with pytest.raises(hpstore.InvalidMetricError, match="3"):
        oracle.update_trial(trial.trial_id, {"loss": 1.0, 3: 1.0})
    with pytest.raises(KeyError, match="'zz'"):
        oracle.update_trial("zz", {"loss": 1.0})
    assert oracle.get_trial(trial.trial_id).metrics.metrics == {}


def test_metric_history_per_step_and_best_step(db):
    oracle = open_oracle(db, max_trials=5)
    trial = oracle.create_trial("t")
    for step, loss in enumerate([3.0, 1.0, 2.0]):
        oracle.update_trial(trial.trial_id, {"loss": loss, "accuracy": 1 - loss / 4}, step=step)
    oracle.update_trial(trial.trial_id, {"loss": 3.0}, step=1)  # averaged with 1.0 -> 2.0
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    stored = oracle.get_trial(trial.trial_id)
    assert [o.mean() for o in stored.metrics.get_history("loss")] == [3.0, 2.0, 2.0]
    assert stored.score == 2.0 and stored.best_step == 1
    assert stored.metrics.get_direction("accuracy") == "max"


def test_a_trial_stopped_elsewhere_tells_its_worker(db):
    oracle = open_oracle(db, max_trials=5)
    trial = oracle.create_trial("t")
    open_oracle(db).project.set_status(trial.trial_id, "STOPPED", "enough")
    assert oracle.update_trial(trial.trial_id, {"loss": 1.0}).status == "STOPPED"
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    ended = oracle.get_trial(trial.trial_id)
    # told to stop, it ends STOPPED whatever its worker made of it, scored on what it reached
    assert (ended.status, ended.message, ended.score) == ("STOPPED", "enough", 1.0)


def test_a_trial_stopped_elsewhere_after_its_last_report_ends_stopped(db):
    oracle = open_oracle(db, max_trials=5)
    trial = oracle.create_trial("t")
    oracle.update_trial(trial.trial_id, {"loss": 1.0})
    open_oracle(db).project.set_status(trial.trial_id, "STOPPED", "enough")
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    assert (trial.status, trial.message, trial.score) == ("STOPPED", "enough", 1.0)
    ended = oracle.get_trial(trial.trial_id)
    assert (ended.status, ended.message, ended.score) == ("STOPPED", "enough", 1.0)


def test_values_reported_through_another_oracle_are_scored(db):
    # the worker ends the run from the values it reported itself; one more, reported
    # meanwhile through another oracle on the file, makes it read them all back
    oracle = open_oracle(db, max_trials=5)
    trial = oracle.create_trial("t")
    oracle.update_trial(trial.trial_id, {"loss": 3.0}, step=0)
    open_oracle(db).update_trial(trial.trial_id, {"loss": 0.5}, step=1)
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    assert (trial.score, trial.best_step) == (0.5, 1)
    assert oracle.get_trial(trial.trial_id).score == 0.5


def test_the_end_of_a_run_this_oracle_reported_reads_nothing_back(db):
    oracle = open_oracle(db, max_trials=5)
    trial = oracle.create_trial("t")
    for step, loss in enumerate([3.0, 1.0, 2.0]):
        oracle.update_trial(trial.trial_id, {"loss": loss}, step=step)
    sent = []
    oracle.store.db.connect().set_trace_callback(sent.append)
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    oracle.store.db.connect().set_trace_callback(None)
    verbs = [s.split()[0] for s in sent]  # (the status-log trigger repeats the UPDATE)
    assert [v for i, v in enumerate(verbs) if i == 0 or v != verbs[i - 1]] == [
        "BEGIN", "UPDATE", "COMMIT"]
    assert (trial.score, trial.best_step) == (1.0, 1)


def test_a_report_on_a_run_this_oracle_started_reads_nothing_back(db):
    oracle = open_oracle(db, max_trials=5)
    trial = oracle.create_trial("t")
    sent = []
    oracle.store.db.connect().set_trace_callback(sent.append)
    for step in range(2):
        reported = oracle.update_trial(trial.trial_id, {"loss": 3.0 - step, "acc": 0.5},
                                       step=step)
        assert reported.status == "RUNNING"
    oracle.store.db.connect().set_trace_callback(None)
    # the trial's row is checked by the statement that adds the first value, not read
    assert [s.split()[0] for s in sent] == ["BEGIN", "INSERT", "INSERT", "COMMIT"] * 2
    history = oracle.get_trial(trial.trial_id).metrics
    assert [o.mean() for o in history.get_history("loss")] == [3.0, 2.0]
    assert [o.mean() for o in history.get_history("acc")] == [0.5, 0.5]


def test_a_report_after_the_run_ended_elsewhere_is_refused_and_adds_nothing(db):
    oracle = open_oracle(db, max_trials=5)
    trial = oracle.create_trial("t")
    oracle.update_trial(trial.trial_id, {"loss": 3.0})
    other = open_oracle(db)
    elsewhere = other.get_trial(trial.trial_id)
    elsewhere.status = "COMPLETED"
    other.end_trial(elsewhere)
    with pytest.raises(hpstore.TrialNotRunningError):
        oracle.update_trial(trial.trial_id, {"loss": 1.0}, step=1)
    history = oracle.get_trial(trial.trial_id).metrics.get_history("loss")
    assert [(o.step, o.mean()) for o in history] == [(0, 3.0)]


def test_a_decision_is_drawn_ahead_of_the_write_lock_only_while_other_writers_queue(db):
    oracle = hpstore.RandomSearchOracle(objective="loss", max_trials=10, seed=1,
                                        hyperparameters=space(), database=db)
    conn = oracle.store.db.connect()

    def verbs_of_a_trial():
        sent = []
        conn.set_trace_callback(sent.append)
        trial = oracle.create_trial("t")
        conn.set_trace_callback(None)
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        oracle.end_trial(trial)
        return [s.split()[0] for s in sent]

    alone = verbs_of_a_trial()
    # no read before the lock: the decision is made in the transaction that records it,
    # whose statement of the facts says whether any trial runs
    assert alone[:2] == ["BEGIN", "SELECT"]
    # another writer holds the writers' turnstile (a lock file beside the search) while
    # this process writes: it waits for it, then goes on to SQLite's own lock
    fd = os.open(f"{db}.hpstore/write.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        verbs_of_a_trial()
    finally:
        os.close(fd)
    shared = verbs_of_a_trial()
    # now drawn first (the running trials and the facts read; the values are looked up
    # only under the lock, where they are checked anyway), then checked under the lock
    assert shared[:3] == ["SELECT", "SELECT", "BEGIN"]
    assert shared.count("SELECT") == alone.count("SELECT") + 2


def test_nan_score_makes_the_trial_invalid_and_retries_run_fresh(db):
    oracle = open_oracle(db, max_trials=5, max_retries_per_trial=1)
    trial = oracle.create_trial("t")
    oracle.update_trial(trial.trial_id, {"loss": math.nan})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    assert trial.status == "INVALID"
    assert oracle.get_trial(trial.trial_id).status == "INVALID"
    retry = oracle.create_trial("other")
    assert retry.trial_id == trial.trial_id and retry.run == 2
    assert retry.hyperparameters.values == trial.hyperparameters.values
    assert retry.metrics.metrics == {}  # fresh metrics; run 1 stays in the history
    oracle.update_trial(retry.trial_id, {"loss": 4.0})
    retry.status = "COMPLETED"
    oracle.end_trial(retry)
    assert oracle.get_trial(trial.trial_id).score == 4.0
    runs = oracle.store.db.query("SELECT run, value FROM observations ORDER BY id")
    assert runs == [(1, None), (2, 4.0)]


def test_a_step_with_a_nan_among_its_values_is_left_out_of_the_score_and_said_so(db):
    """A step's score is the mean of its values, NaN with a NaN among them (KerasTuner's
    mean): the step is left out of the score, and a trial whose every step holds one is
    told why it is not scored, not that nothing valid was reported."""
    oracle = open_oracle(db, max_trials=5)
    kept = oracle.create_trial("t")
    for step, values in ((0, [3.0]), (1, [math.nan, 1.0])):
        for value in values:
            oracle.update_trial(kept.trial_id, {"loss": value}, step=step)
    kept.status = "COMPLETED"
    oracle.end_trial(kept)
    assert (kept.status, kept.score, kept.best_step) == ("COMPLETED", 3.0, 0)

    unscored = oracle.create_trial("t")
    oracle.update_trial(unscored.trial_id, {"loss": math.nan}, step=0)
    oracle.update_trial(unscored.trial_id, {"loss": 2.0}, step=0)
    unscored.status = "COMPLETED"
    oracle.end_trial(unscored)
    assert unscored.status == "FAILED"
    assert oracle.get_trial(unscored.trial_id).score is None
    assert "a NaN among its values" in unscored.message
    assert "No valid value" not in unscored.message
    oracle.close()


def test_a_trial_of_several_objectives_unscored_for_a_nan_names_the_metric(db):
    # "No valid value of the objective 'multi_objective' was reported": val_accuracy,
    # reported as NaN, was never named
    oracle = open_oracle(db, objective=["loss", hpstore.Objective("acc", "max")], max_trials=5)
    trial = oracle.create_trial("t")
    oracle.update_trial(trial.trial_id, {"loss": 1.0, "acc": math.nan})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    assert trial.status == "FAILED"
    assert "'multi_objective' was reported ('acc' reported as NaN)" in trial.message
    oracle.close()


def test_a_trial_of_several_objectives_whose_infinities_cancel_says_so(db):
    # "No valid value of the objective 'multi_objective' was reported" though both values
    # were: a loss of inf and an accuracy of inf make inf - inf
    oracle = open_oracle(db, objective=["loss", hpstore.Objective("acc", "max")], max_trials=5)
    trial = oracle.create_trial("t")
    oracle.update_trial(trial.trial_id, {"loss": math.inf, "acc": math.inf})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    assert trial.status == "FAILED"
    assert "'loss', 'acc' were reported as infinite" in trial.message
    assert "No valid value" not in trial.message
    oracle.close()


def test_invalid_trials_fail_after_their_retries(db):
    oracle = open_oracle(db, max_trials=5, max_retries_per_trial=2,
                         max_consecutive_failed_trials=10)
    trial = oracle.create_trial("t")
    runs = 0
    while True:
        current = oracle.create_trial("t")
        assert current.trial_id == trial.trial_id
        runs += 1
        current.status = "INVALID"
        current.message = f"boom {runs}"
        oracle.end_trial(current)
        if current.status == "FAILED":
            break
    assert runs == 3  # the first run and two retries
    stored = oracle.get_trial(trial.trial_id)
    assert stored.status == "FAILED" and stored.message == "boom 3"


def test_consecutive_failures_raise_runtime_error(db):
    oracle = open_oracle(db, max_trials=10, max_consecutive_failed_trials=2)
    first = oracle.create_trial("t")
    first.status = "FAILED"
    first.message = "first"
    oracle.end_trial(first)
    second = oracle.create_trial("t")
    second.status = "FAILED"
    second.message = "Traceback: second"
    with pytest.raises(RuntimeError) as info:
        oracle.end_trial(second)
    assert str(info.value) == (
        "Number of consecutive failures exceeded the limit of 2.\nTraceback: second")
    assert oracle.get_trial(second.trial_id).status == "FAILED"  # written before raising


def test_end_trial_writes_back_status_message_and_values(db):
    oracle = open_oracle(db, max_trials=5)
    trial = oracle.create_trial("t")
    oracle.update_trial(trial.trial_id, {"loss": 2.0})
    trial.hyperparameters.values["note"] = "written by the worker"
    trial.status = "COMPLETED"
    trial.message = "all good"
    oracle.end_trial(trial)
    stored = oracle.get_trial(trial.trial_id)
    assert stored.message == "all good"
    assert stored.hyperparameters.values["note"] == "written by the worker"
    with pytest.raises(hpstore.TrialNotRunningError, match="already ended"):
        oracle.end_trial(trial)
    # KerasTuner takes a trial ended while still RUNNING as completed
    running = oracle.create_trial("t")
    oracle.update_trial(running.trial_id, {"loss": 1.5})
    assert running.status == "RUNNING"
    oracle.end_trial(running)
    assert running.status == "COMPLETED"
    assert oracle.get_trial(running.trial_id).score == 1.5


def test_best_trials_order_and_padding(db):
    oracle = open_oracle(db, max_trials=6, objective=hpstore.Objective("score", "max"))
    scores = {}
    for i, s in enumerate([0.5, 0.9, 0.1, 0.9]):
        t = oracle.create_trial("t")
        oracle.update_trial(t.trial_id, {"score": s})
        t.status = "COMPLETED"
        oracle.end_trial(t)
        scores[t.trial_id] = s
        assert i == int(t.trial_id)
    running = oracle.create_trial("t")
    best = oracle.get_best_trials(6)
    # ties keep creation order; then the non-completed trials pad the list
    assert [t.trial_id for t in best] == ["1", "3", "0", "2", running.trial_id]
    low = open_oracle(db, objective=hpstore.Objective("score", "max"))
    assert [t.score for t in low.get_best_trials(2)] == [0.9, 0.9]


def test_best_trials_min_direction(db):
    oracle = open_oracle(db, max_trials=20, seed=5)
    ended = run(oracle)
    best = oracle.get_best_trials(3)
    expected = sorted(ended, key=lambda t: t.score)[:3]
    assert [t.trial_id for t in best] == [t.trial_id for t in expected]


def test_finite_space_is_exhausted_exactly(db):
    hp = hpstore.HyperParameters()
    hp.Choice("a", [1, 2, 3])
    hp.Boolean("b")
    oracle = RandomTestOracle(objective="loss", max_trials=100, hyperparameters=hp, database=db,
                              seed=0)
    seen = []
    while (t := oracle.create_trial("t")).status == "RUNNING":
        seen.append(tuple(sorted(t.hyperparameters.values.items())))
        oracle.update_trial(t.trial_id, {"loss": 1.0})
        t.status = "COMPLETED"
        oracle.end_trial(t)
    assert len(seen) == 6 and len(set(seen)) == 6


def test_max_trials_can_be_raised_to_extend_a_finished_search(db):
    oracle = open_oracle(db, max_trials=3)
    assert len(run(oracle)) == 3
    assert open_oracle(db).create_trial("t").status == "STOPPED"
    bigger = open_oracle(db, max_trials=5)
    assert len(run(bigger)) == 2
    assert len(bigger.trials) == 5


def test_max_trials_lowered_below_the_trials_run_warns_that_nothing_more_starts(db):
    # KerasTuner's rule, the given value wins, held without a word: a command run again
    # with a smaller max_trials ended the search for every worker ("40 of 10 trials")
    import warnings

    run(open_oracle(db, max_trials=4))
    with warnings.catch_warnings():  # made an error (-W error): refused, nothing changed
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="is below the 4 trials"):
            RandomTestOracle(objective="loss", max_trials=2, hyperparameters=space(),
                             database=db)
    assert hpstore.RandomSearchOracle.attach(db).max_trials == 4
    with pytest.warns(UserWarning) as said:
        lowered = RandomTestOracle(objective="loss", max_trials=2, hyperparameters=space(),
                                   database=db)
    (warning,) = said
    assert warning.filename == __file__  # the line that made the oracle
    assert ("max_trials=2 is below the 4 trials" in str(warning.message)
            and "its max_trials was 4" in str(warning.message)), warning.message
    assert lowered.max_trials == 2 and lowered.create_trial("t").status == "STOPPED"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # kept, raised, or set on the oracle: no warning
        open_oracle(db, max_trials=2)
        open_oracle(db)
        open_oracle(db, max_trials=6).max_trials = 3


def test_seed_zero_is_a_real_seed_and_seeds_are_deterministic(tmp_path):
    def values(name, seed):
        oracle = open_oracle(str(tmp_path / name), max_trials=4, seed=seed)
        return [t.hyperparameters.values for t in run(oracle)]

    assert values("a.db", 0) == values("b.db", 0)
    assert values("c.db", 0) != values("d.db", 1)


def test_resume_checks_arguments_against_the_file(db):
    run(open_oracle(db, max_trials=2, seed=7))
    with pytest.raises(hpstore.ProjectMismatchError, match="RandomTestOracle") as info:
        Oracle(objective="loss", database=db)
    assert "Oracle" in str(info.value)
    with pytest.raises(hpstore.ProjectMismatchError, match="val_accuracy"):
        open_oracle(db, objective="val_accuracy")
    with pytest.raises(hpstore.ProjectMismatchError, match=r"seed 7.*seed=8"):
        open_oracle(db, seed=8)
    conflicting = hpstore.HyperParameters()
    conflicting.Int("y", 0, 99)
    with pytest.raises(hpstore.ProjectMismatchError, match="'y'"):
        open_oracle(db, hyperparameters=conflicting)
    # arguments left out take the stored values
    resumed = RandomTestOracle(database=db)
    assert resumed.objective == hpstore.Objective("loss", "min")
    assert resumed.seed == 7 and resumed.max_trials == 2


def test_a_search_argument_left_at_none_takes_the_stored_value(tmp_path):
    # a second worker's script that leaves num_initial_points out resumes the search as it
    # was made (it was a mismatch with None); a different value is still refused
    path = str(tmp_path / "b.db")
    hp = hpstore.HyperParameters()
    hp.Int("x", 0, 100)
    made = hpstore.BayesianOptimizationOracle("loss", max_trials=6, num_initial_points=4,
                                              hyperparameters=hp, seed=3, database=path)
    made.close()
    resumed = hpstore.BayesianOptimizationOracle("loss", database=path)
    assert resumed.num_initial_points == 4
    resumed.close()
    with pytest.raises(hpstore.ProjectMismatchError, match=r"num_initial_points=4, where "
                       r"num_initial_points=5 was given"):
        hpstore.BayesianOptimizationOracle("loss", num_initial_points=5, database=path)


def test_overwrite_starts_one_project_afresh_and_keeps_the_others(db):
    run(open_oracle(db, max_trials=3, project_name="a"))
    run(open_oracle(db, max_trials=2, project_name="b"))
    fresh = open_oracle(db, max_trials=4, project_name="a", overwrite=True)
    assert len(fresh.trials) == 0
    assert len(open_oracle(db, project_name="b").trials) == 2


def test_update_space_rules(db):
    hp = hpstore.HyperParameters()
    hp.Int("units", 1, 4)
    strict = RandomTestOracle(objective="loss", hyperparameters=hp, allow_new_entries=False,
                              database=db, project_name="strict")
    grown = hpstore.HyperParameters()
    grown.Int("units", 1, 4)
    grown.Float("lr", 1e-4, 1e-1, sampling="log")
    with pytest.raises(RuntimeError, match="allow_new_entries"):
        strict.update_space(grown)
    fixed = RandomTestOracle(objective="loss", hyperparameters=hp, tune_new_entries=False,
                             database=db, project_name="fixed")
    fixed.update_space(grown)
    lr = next(h for h in fixed.get_space().space if h.name == "lr")
    assert isinstance(lr, hpstore.Fixed) and lr.value == pytest.approx(1e-4)
    tuned = RandomTestOracle(objective="loss", database=db, project_name="tuned")
    tuned.update_space(grown)
    reopened = RandomTestOracle(database=db, project_name="tuned")
    assert [h.name for h in reopened.get_space().space] == ["units", "lr"]
    with pytest.raises(ValueError, match="tune_new_entries"):
        RandomTestOracle(objective="loss", tune_new_entries=False, database=db)


def test_bad_arguments_are_clear_errors(db):
    for kwargs, text in [({"max_trials": 0}, "max_trials"), ({"max_trials": "10"}, "'10'"),
                         ({"seed": 1.5}, "1.5"), ({"project_name": ""}, "project_name"),
                         ({"durability": "sometimes"}, "sometimes")]:
        with pytest.raises(ValueError, match=text):
            open_oracle(db, **kwargs)
    with pytest.raises(ValueError, match=r"Objective\("):
        open_oracle(db, objective="no_such_metric_name")


def test_a_flag_given_as_a_string_is_refused_and_the_project_kept(db):
    oracle = open_oracle(db, max_trials=5)
    run(oracle)
    oracle.close()
    for name in ("overwrite", "allow_new_entries", "tune_new_entries"):
        with pytest.raises(TypeError, match=f"`{name}` must be True or False, received 'false'"):
            open_oracle(db, **{name: "false"})  # a truthy string: overwrite would delete
    again = open_oracle(db, overwrite=np.bool_(False))
    assert len(again.trials) == 5


def test_end_trial_given_a_trial_id_says_it_takes_the_trial(db):
    oracle = open_oracle(db, max_trials=5)
    trial = oracle.create_trial("w")
    for wrong in (trial.trial_id, None):
        with pytest.raises(TypeError, match="end_trial takes the Trial create_trial returned"):
            oracle.end_trial(wrong)
    assert oracle.trials[trial.trial_id].status == "RUNNING"
    trial.status = "FAILED"
    oracle.end_trial(trial)


def test_in_memory_search(db):
    oracle = open_oracle(None, max_trials=4)
    assert len(run(oracle)) == 4
    assert len(open_oracle(":memory:", max_trials=4).trials) == 0  # each one its own search
    with pytest.raises(hpstore.HpStoreError, match="in-memory"):
        pickle.dumps(oracle)


def test_oracle_pickles_as_its_arguments(db):
    oracle = open_oracle(db, max_trials=3, seed=2)
    run(oracle, n=1)
    copy = pickle.loads(pickle.dumps(open_oracle(db, max_trials=3, overwrite=True)))
    assert len(copy.trials) == 0
    with pytest.raises(hpstore.ProjectRemovedError):  # its project was replaced
        run(oracle, n=1)
    run(copy, n=1)
    again = pickle.loads(pickle.dumps(open_oracle(db, max_trials=3, overwrite=False)))
    assert len(again.trials) == 1  # the unpickled copy did not wipe the file


def test_a_copy_of_an_oracle_whose_search_is_gone_makes_none(tmp_path):
    # unpickled after its file was deleted (or its project removed), a copy made a new,
    # empty search there, and a process of a pool ran a fresh search into it
    path = tmp_path / "gone.db"
    oracle = open_oracle(str(path), max_trials=3, project_name="p")
    run(oracle, n=1)
    sent = pickle.dumps(oracle)
    other = open_oracle(str(path), max_trials=3, project_name="q")  # keeps the file
    oracle.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("DELETE FROM projects WHERE name = 'p'")
    conn.close()
    with pytest.raises(hpstore.ProjectRemovedError, match="no longer holds the project 'p'"):
        pickle.loads(sent)
    other.close()
    assert sorted(p.name for p in hpstore.Oracle.attach(path, "q").store.projects()) == ["q"]
    for made in tmp_path.iterdir():
        if made.is_dir():
            shutil.rmtree(made)
        else:
            made.unlink()
    with pytest.raises(hpstore.ProjectRemovedError, match=r"gone\.db no longer exists"):
        pickle.loads(sent)
    assert list(tmp_path.iterdir()) == []


def test_a_copy_runs_with_the_options_set_on_the_oracle_since_it_was_made(db):
    # the workers of search(workers=N) are rebuilt from the constructor's arguments:
    # `oracle.max_retries_per_trial = 2` set before the search did not reach them
    oracle = open_oracle(db, max_trials=3)
    oracle.max_retries_per_trial = 2
    oracle.max_consecutive_failed_trials = 7
    oracle.allow_new_entries = False
    copy = pickle.loads(pickle.dumps(oracle))
    assert (copy.max_retries_per_trial, copy.max_consecutive_failed_trials,
            copy.allow_new_entries, copy.tune_new_entries) == (2, 7, False, True)
    oracle.close()
    copy.close()


@pytest.mark.parametrize("how", ["pickle", "copy", "deepcopy", "positional"])
def test_a_copy_keeps_max_trials_as_it_was_changed_since(db, how):
    # a copy reopened the search with the max_trials the oracle was made with, undoing
    # `oracle.max_trials = 10` for every process: spawned workers then ran nothing
    import copy as copying

    if how == "positional":
        oracle = hpstore.RandomSearchOracle("loss", 3, database=db, hyperparameters=space())
    else:
        oracle = open_oracle(db, max_trials=3)
    run(oracle, n=3)
    oracle.max_trials = 10
    twin = {"pickle": lambda o: pickle.loads(pickle.dumps(o)), "copy": copying.copy,
            "deepcopy": copying.deepcopy, "positional": copying.copy}[how](oracle)
    assert twin.max_trials == 10 and oracle.max_trials == 10
    assert oracle.create_trial("w").status == "RUNNING"


def test_views_give_people_one_row_per_trial(db):
    oracle = open_oracle(db, max_trials=4, seed=1)
    run(oracle)
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT trial_id, status, score, hp_values FROM trial_overview "
                        "ORDER BY number").fetchall()
    assert [r[0] for r in rows] == ["0", "1", "2", "3"]
    for _trial_id, status, score, values in rows:
        assert status == "COMPLETED"
        assert score == pytest.approx(objective_value(json.loads(values)))
    names = conn.execute("SELECT DISTINCT name FROM trial_values ORDER BY name").fetchall()
    assert names == [("c",), ("x",), ("y",)]
    log = conn.execute("SELECT trial_id, from_status, to_status FROM status_log "
                       "WHERE trial_id = '0' ORDER BY at_unix").fetchall()
    assert log == [("0", None, "RUNNING"), ("0", "RUNNING", "COMPLETED")]
    hist = conn.execute("SELECT metric, step FROM metric_history WHERE trial_id = '2'").fetchall()
    assert hist == [("loss", 0)]


def test_space_is_the_stored_one(db):
    oracle = open_oracle(db, max_trials=3)
    assert [h.name for h in oracle.get_space().space] == [h.name for h in space().space]
    assert oracle.get_space().get_config()["space"] == space().get_config()["space"]


@pytest.mark.parametrize("cls, extra", [
    (hpstore.RandomSearchOracle, {}),
    (hpstore.BayesianOptimizationOracle,
     {"num_initial_points": np.int32(2), "alpha": np.float32(1e-3), "beta": np.float64(2)}),
    (hpstore.HyperbandOracle,
     {"max_epochs": np.int64(9), "factor": np.int64(3), "hyperband_iterations": np.int8(1)}),
])
def test_numpy_numbers_as_oracle_arguments_are_stored_as_plain_numbers(db, cls, extra):
    # a seed drawn with numpy (rng.integers(1000)) is a numpy integer
    oracle = cls("loss", max_trials=np.int64(5), seed=np.int64(7),
                 max_retries_per_trial=np.int64(1), max_consecutive_failed_trials=np.uint8(4),
                 hyperparameters=space(), database=db, **extra)
    trial = oracle.create_trial("t")
    oracle.update_trial(trial.trial_id, {"loss": 1.0}, step=np.int64(2))
    oracle.end_trial(trial)
    values = {hp.name: hp.default for hp in space().space}
    oracle.add_trial(values, {"loss": 0.5}, step=np.int64(3))
    oracle.close()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT typeof(seed), typeof(max_trials), oracle_config FROM projects"
                        ).fetchone()[:2] == ("integer", "integer")
    conn.close()
    again = cls("loss", hyperparameters=space(), database=db, **extra)  # resumes
    assert (again.seed, again.max_trials) == (7, 5) and type(again.seed) is int
    assert again.create_trial("t").status == "RUNNING"
    again.close()


def test_a_step_given_as_a_tensor_or_a_0_d_array_is_its_number(db):
    # np.int64 was taken and torch.tensor(3), a training loop's global step, a TypeError
    import torch

    oracle = open_oracle(db, max_trials=3)
    trial = oracle.create_trial("t")
    oracle.update_trial(trial.trial_id, {"loss": 2.0}, step=torch.tensor(3))
    oracle.update_trial(trial.trial_id, {"loss": 1.0}, step=np.array(4))
    with pytest.raises(TypeError, match="must be an int"):  # (a float step: still refused)
        oracle.update_trial(trial.trial_id, {"loss": 1.0}, step=torch.tensor(4.5))
    oracle.end_trial(trial)
    assert oracle.get_trial(trial.trial_id).best_step == 4
    assert [o.step for o in oracle.project.observations(oracle.project.trial(trial.trial_id))
            ] == [3, 4]
    oracle.close()


@pytest.mark.parametrize("seed, message", [
    (2**70, "must be between -2\\*\\*63 and 2\\*\\*63 - 1, received 1180591620717411303424"),
    (1.5, "must be an int, received 1.5"), (np.float64(3), "must be an int")])
def test_a_seed_the_file_cannot_hold_is_refused_before_anything_is_made(db, seed, message):
    with pytest.raises(ValueError, match=f"`seed` {message}"):
        open_oracle(db, seed=seed)
    assert not os.path.exists(db)
