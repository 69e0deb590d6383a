"""KerasTuner's Oracle API for custom oracles, and the guarantees behind create, update and
end: duplicates refused, failures counted, directions honoured, stale writers refused."""

from __future__ import annotations

import copy
import multiprocessing as mp
import os
import pickle
import random
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _workers import DEADLINE, open_oracle, space

import hpstore
from hpstore.oracle import Oracle

CTX = mp.get_context("spawn")


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "search.db")


def _complete(oracle: Oracle, trial: hpstore.Trial, **metrics: float) -> None:
    oracle.update_trial(trial.trial_id, metrics or {"loss": 1.0})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)


def test_check_running_raises_once_this_processs_run_is_over(db):
    # what a callback that writes a trial's files (its checkpoint) asks first
    oracle = open_oracle(db)
    trial = oracle.create_trial("w")
    oracle.check_running(trial.trial_id)  # its run: nothing raised
    other = hpstore.Oracle.attach(db)  # another worker, which took the trial and ended it
    _complete(other, other.get_trial(trial.trial_id))
    with pytest.raises(hpstore.TrialNotRunningError, match="is COMPLETED, not running"):
        oracle.check_running(trial.trial_id)
    with pytest.raises(hpstore.TrialNotFoundError):
        oracle.check_running("99")
    # a run handed back by another (as a dead worker's is), then taken by a third worker:
    # not this process's run any more
    second = oracle.create_trial("w")
    handed = other.get_trial(second.trial_id)
    handed.status = "IDLE"
    other.end_trial(handed)
    other.close()
    again = open_oracle(db)
    assert again.create_trial("v").trial_id == second.trial_id
    with pytest.raises(hpstore.TrialNotRunningError, match="handed to another worker"):
        oracle.check_running(second.trial_id)
    again.check_running(second.trial_id)
    again.close()
    oracle.close()


# -- duplicates (a custom populate_space) -------------------------------------------------------

class Drawing(Oracle):
    """Draws x in 0..9 with ``self.rng()``, as a custom oracle may."""

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        return {"status": "RUNNING", "values": {"x": self.rng().randint(0, 9)}}


def test_rng_draws_afresh_when_populate_space_is_asked_again(db):
    # self.rng() depends on the seed and the trial number: asked again after values that
    # had run, it proposed them again each of the ten times, and the search stopped on
    # DuplicateValuesError with values never tried
    hp = hpstore.HyperParameters()
    hp.Int("x", 0, 9)
    oracle = Drawing("loss", max_trials=8, hyperparameters=hp, seed=3, database=db)
    drawn = []
    while (trial := oracle.create_trial("w")).status == "RUNNING":
        drawn.append(trial.hyperparameters["x"])
        _complete(oracle, trial)
    assert len(drawn) == len(set(drawn)) == 8
    # outside a decision, and for the first ask of one, as before: the seed and the number
    assert oracle.rng().random() == random.Random(f"3:{oracle.decision.number}").random()
    oracle.close()


class Repeating(Oracle):
    """Proposes {"n": 1} the first ``repeats`` times it is asked, then 2, 3, ..."""

    def __init__(self, *args: Any, repeats: int = 0, **kwargs: Any) -> None:
        self.repeats = repeats
        self.asked = 0
        super().__init__(*args, **kwargs)

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        self.asked += 1
        n = 1 if self.asked <= self.repeats else self.asked
        return {"status": "RUNNING", "values": {"n": n}}


def test_a_populate_space_that_keeps_repeating_gets_duplicate_values_error(db):
    oracle = Repeating("loss", max_trials=5, database=db, repeats=10**6)
    first = oracle.create_trial("w")
    assert first.hyperparameters.values == {"n": 1}
    _complete(oracle, first)
    with pytest.raises(hpstore.DuplicateValuesError, match="already run"):
        oracle.create_trial("w")
    assert len(oracle.trials) == 1  # nothing was recorded


def test_a_populate_space_that_repeats_then_offers_new_values_gets_them(db):
    oracle = Repeating("loss", max_trials=5, database=db, repeats=4)
    _complete(oracle, oracle.create_trial("w"))
    second = oracle.create_trial("w")  # asked 2, 3, 4 (all {"n": 1}), then 5
    assert second.hyperparameters.values == {"n": 5}
    assert oracle.asked == 5


def test_a_running_trials_values_are_not_handed_out_again(db):
    oracle = Repeating("loss", max_trials=5, database=db, repeats=10**6)
    oracle.create_trial("a")
    with pytest.raises(hpstore.DuplicateValuesError):
        oracle.create_trial("b")


# -- consecutive failures -------------------------------------------------------------------------

def test_a_completed_trial_resets_the_consecutive_failure_count(db):
    oracle = open_oracle(db, max_trials=10, max_consecutive_failed_trials=2)
    for status in ("FAILED", "COMPLETED", "FAILED"):
        trial = oracle.create_trial("w")
        if status == "COMPLETED":
            _complete(oracle, trial)
        else:
            trial.status = "FAILED"
            oracle.end_trial(trial)  # must not raise: the failures were not consecutive
    trial = oracle.create_trial("w")
    trial.status = "FAILED"
    with pytest.raises(RuntimeError, match="limit of 2"):
        oracle.end_trial(trial)


# -- directions -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("objective", "reports", "score", "step"), [
    (hpstore.Objective("score", "max"), [1.0, 5.0, 3.0], 5.0, 1),
    (hpstore.Objective("acc", "min"), [0.9, 0.2, 0.5], 0.2, 1),  # against the name's guess
    (hpstore.Objective("val_loss", "max"), [0.1, 0.4, 0.2], 0.4, 1),
])
def test_the_declared_direction_decides_the_score(db, objective, reports, score, step):
    oracle = open_oracle(db, max_trials=3, objective=objective)
    trial = oracle.create_trial("w")
    for i, value in enumerate(reports):
        oracle.update_trial(trial.trial_id, {objective.name: value}, step=i)
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    stored = oracle.get_trial(trial.trial_id)
    assert (stored.score, stored.best_step) == (score, step)
    assert oracle.get_best_trials(1)[0].trial_id == trial.trial_id


@pytest.mark.parametrize("where", ["subclass", "instance"])
def test_a_score_trial_of_ones_own_scores_every_trial(db, where):
    # end_trial scores from the reported values itself only for the base score_trial; an
    # override, on a subclass or set on the oracle in a notebook, is given each trial
    def last_value(oracle, trial):
        trial.score = trial.metrics.get_last_value("loss")
        trial.best_step = 2

    if where == "subclass":
        class LastValue(type(open_oracle(db + "-kind"))):
            def score_trial(self, trial):
                last_value(self, trial)
        oracle = LastValue("loss", max_trials=2, hyperparameters=space(), database=db)
    else:
        oracle = open_oracle(db, max_trials=2)
        oracle.score_trial = lambda trial: last_value(oracle, trial)
    trial = oracle.create_trial("w")
    for step, value in enumerate([3.0, 1.0, 2.0]):
        oracle.update_trial(trial.trial_id, {"loss": value}, step=step)
    oracle.end_trial(trial)
    assert (trial.score, trial.best_step) == (2.0, 2)
    assert oracle.get_trial(trial.trial_id).score == 2.0  # not the best value, 1.0


# -- seeds ----------------------------------------------------------------------------------------

def test_seed_none_follows_python_random_and_is_stored(tmp_path):
    random.seed(1234)
    a = open_oracle(str(tmp_path / "a.db"), max_trials=3)
    random.seed(1234)
    b = open_oracle(str(tmp_path / "b.db"), max_trials=3)
    assert a.seed == b.seed
    assert a.create_trial("w").hyperparameters.values == (
        b.create_trial("w").hyperparameters.values)
    a.close()
    random.seed(99)
    assert open_oracle(str(tmp_path / "a.db")).seed == b.seed  # the stored one, on resume


# -- the same file twice in one process -----------------------------------------------------------

def test_a_second_oracle_in_the_same_process_gets_the_running_trial_back(db):
    first = open_oracle(db, max_trials=4)
    held = first.create_trial("tuner0")
    second = open_oracle(db)  # the first one was never closed (a notebook cell run again)
    again = second.create_trial("tuner0")
    assert again.trial_id == held.trial_id and again.status == "RUNNING"
    _complete(second, again)
    assert second.get_trial(held.trial_id).status == "COMPLETED"
    with pytest.raises(hpstore.TrialNotRunningError):
        first.update_trial(held.trial_id, {"loss": 2.0})


# -- populate_space called directly ---------------------------------------------------------------

@pytest.mark.parametrize("cls", [hpstore.RandomSearchOracle, hpstore.GridSearchOracle,
                                 hpstore.BayesianOptimizationOracle, hpstore.HyperbandOracle])
def test_populate_space_can_be_called_directly(db, cls):
    kwargs = {"max_epochs": 9} if cls is hpstore.HyperbandOracle else {"max_trials": 6}
    oracle = cls("loss", hyperparameters=space(), database=db, seed=3, **kwargs)
    _complete(oracle, oracle.create_trial("w"))
    state_before = oracle.get_state()
    response = oracle.populate_space("x")
    assert response["status"] == "RUNNING"
    assert set(space().values) <= set(response["values"])
    assert oracle.get_state() == state_before  # a direct call records nothing
    # and it proposes what create_trial would
    assert oracle.create_trial("w").hyperparameters.values == response["values"]


def test_the_subclass_api_has_public_names_and_keeps_the_old_ones(db):
    class Counting(Oracle):
        def populate_space(self, trial_id: str) -> dict[str, Any]:
            count = self.get_state_value("count", 0) + 1
            self.set_state_value("count", count)
            assert self.decision.trial_id == trial_id
            assert self._get_state_value("count") == count  # the pending value
            values = self.random_values()
            assert values is not None and self.rng(1).random() == self._rng(1).random()
            return {"status": "RUNNING", "values": values}

    oracle = Counting("loss", max_trials=3, hyperparameters=space(), database=db)
    for _ in range(3):
        _complete(oracle, oracle.create_trial("w"))
    assert oracle.get_state()["oracle_state"] == {"count": 3}


# -- synchronized ---------------------------------------------------------------------------------

class Counter(Oracle):
    """Counts in a plain file beside the search, read-modify-write under the search's lock."""

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        return {"status": "STOPPED"}

    @hpstore.synchronized
    def bump(self, counter: str, times: int) -> None:
        for _ in range(times):
            value = int(Path(counter).read_text() or 0)
            os.sched_yield()  # invite the other processes in between read and write
            Path(counter).write_text(str(value + 1))

    @hpstore.synchronized
    def create_trial(self, tuner_id: str) -> hpstore.Trial:  # re-entrant with the base's lock
        return super().create_trial(tuner_id)


def _bump_many(path: str, counter: str, rounds: int, start: Any) -> None:
    oracle = Counter("loss", database=path)
    start.wait()
    for _ in range(rounds):
        oracle.bump(counter, 5)
    oracle.close()


def test_synchronized_methods_run_one_at_a_time_across_processes(tmp_path):
    path, counter = str(tmp_path / "s.db"), tmp_path / "counter"
    counter.write_text("0")
    Counter("loss", database=path).close()
    start = CTX.Barrier(4, timeout=DEADLINE)
    procs = [CTX.Process(target=_bump_many, args=(path, str(counter), 60, start))
             for _ in range(3)]
    for p in procs:
        p.start()
    start.wait()
    oracle = Counter("loss", database=path)
    threads = [threading.Thread(target=oracle.bump, args=(str(counter), 100)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    for p in procs:
        p.join(DEADLINE)
        assert p.exitcode == 0
    assert counter.read_text() == str(3 * 60 * 5 + 3 * 100)
    assert oracle.create_trial("w").status == "STOPPED"  # the decorated override works
    assert Counter.bump.__name__ == "bump" and "lock" in (hpstore.synchronized.__doc__ or "")


def test_a_synchronized_method_that_raises_releases_the_lock(db):
    class Failing(Counter):
        @hpstore.synchronized
        def explode(self) -> None:
            raise KeyError("boom")

    oracle = Failing("loss", database=db)
    with pytest.raises(KeyError):
        oracle.explode()
    done = threading.Event()
    threading.Thread(target=lambda: (oracle.create_trial("w"), done.set())).start()
    assert done.wait(DEADLINE)


# -- a project replaced under a running process ---------------------------------------------------

def _search_then_wait(path: str, opened: Any, go_on: Any, results: Any) -> None:
    try:
        oracle = open_oracle(path, max_trials=20, seed=1)
        trial = oracle.create_trial("old")
        oracle.update_trial(trial.trial_id, {"loss": 1.0}, step=0)
        opened.set()
        if not go_on.wait(DEADLINE):
            raise RuntimeError("never told to go on")
        outcomes = []
        for step in (
                lambda: oracle.update_trial(trial.trial_id, {"loss": 0.5}, step=1),
                lambda: oracle.end_trial(trial),
                lambda: oracle.create_trial("old")):
            try:
                step()
                outcomes.append("written")
            except hpstore.HpStoreError as exc:
                outcomes.append(type(exc).__name__)
        results.put(outcomes)
    except BaseException as exc:
        results.put(f"{type(exc).__name__}: {exc}")


def test_overwrite_in_another_process_stops_the_old_one_writing(db):
    opened, go_on, results = CTX.Event(), CTX.Event(), CTX.Queue()
    proc = CTX.Process(target=_search_then_wait, args=(db, opened, go_on, results))
    proc.start()
    assert opened.wait(DEADLINE)
    fresh = open_oracle(db, max_trials=20, seed=2, overwrite=True)
    mine = fresh.create_trial("new")  # the new project's first trial has the same id "00"
    go_on.set()
    outcomes = results.get(timeout=DEADLINE)
    proc.join(DEADLINE)
    assert outcomes == ["ProjectRemovedError"] * 3
    # the new project holds only its own work
    assert list(fresh.trials) == [mine.trial_id]
    state = fresh.get_state()
    assert [t["tuner_id"] for t in state["trials"]] == ["new"]
    assert all(o == [] for o in (t["observations"] for t in state["trials"]))
    conn = sqlite3.connect(db)
    (first_id,) = conn.execute("SELECT project_id FROM projects").fetchone()
    open_oracle(db, seed=2, overwrite=True).close()
    assert conn.execute("SELECT project_id FROM projects").fetchone()[0] > first_id
    conn.close()


def test_a_lone_surrogate_in_a_project_name_or_tuner_id_is_named(db):
    # (a raw UnicodeEncodeError from the driver before, naming neither)
    with pytest.raises(ValueError, match=r"`project_name` .*lone surrogate '\\ud800'"):
        open_oracle(db, project_name="p\ud800")
    oracle = open_oracle(db)
    with pytest.raises(ValueError, match=r"`tuner_id` .*lone surrogate '\\udfff'"):
        oracle.create_trial("w\udfff")
    assert oracle.create_trial("w").status == "RUNNING"  # nothing else was touched
    oracle.close()


def test_a_running_trial_the_store_lost_is_said_so(tmp_path):
    # a database server that crashed with durability="normal" loses its last commits: the
    # worker's trial was "No trial '0' ...; trial ids are strings such as ..."
    path = str(tmp_path / "lost.db")
    oracle = hpstore.RandomSearchOracle("loss", max_trials=5, database=path)
    trial = oracle.create_trial("w")
    with sqlite3.connect(path) as conn:  # (what the lost commits leave behind)
        conn.execute("DELETE FROM trials WHERE trial_id = ?", (trial.trial_id,))
    for step in (lambda: oracle.update_trial(trial.trial_id, {"loss": 1.0}),
                 lambda: oracle.end_trial(trial)):
        with pytest.raises(hpstore.TrialNotFoundError, match="which this process was running"):
            step()
    with pytest.raises(hpstore.TrialNotFoundError, match="trial ids are strings"):
        oracle.update_trial("77", {"loss": 1.0})  # one it never ran: as before
    oracle.close()


def _rows(path: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT trial_id, status, hp_values, message FROM trials "
                            "ORDER BY id").fetchall()


@pytest.mark.parametrize("value", [999, "zzz", 2.5])
def test_a_value_changed_by_hand_that_its_hyperparameter_cannot_take_is_refused(db, value):
    # end_trial wrote whatever hp.values held: Int y 0..10 stored 999 or 'zzz', which the
    # tools listed and the oracles went on from
    oracle = open_oracle(db)
    trial = oracle.create_trial("w")
    oracle.update_trial(trial.trial_id, {"loss": 1.0})
    before = _rows(db)
    trial.hyperparameters.values["y"] = value
    trial.status = "COMPLETED"
    with pytest.raises(hpstore.ValuesOutsideSpaceError, match=rf"y={value!r}"):
        oracle.end_trial(trial)
    assert _rows(db) == before  # still RUNNING, its values as given
    trial.hyperparameters.values["y"] = np.float64(7.0)  # one it takes: recorded as held
    oracle.end_trial(trial)
    stored = oracle.get_trial(trial.trial_id).hyperparameters["y"]
    assert stored == 7 and type(stored) is int  # (a float 7.0 was another set of values)
    oracle.close()


def test_a_trial_of_another_project_is_not_ended_by_this_oracle(db):
    # both first trials are "0": a.end_trial(b's trial) ended a's trial with b's values
    a = open_oracle(db, project_name="a")
    b = open_oracle(db, project_name="b")
    ta, tb = a.create_trial("w"), b.create_trial("w")
    assert ta.trial_id == tb.trial_id
    b.update_trial(tb.trial_id, {"loss": 1.0})
    before = _rows(db)
    tb.status = "COMPLETED"
    with pytest.raises(ValueError, match="a trial of the project 'b', not of this oracle's 'a'"):
        a.end_trial(tb)
    # a copy too: pickled, deep-copied (what a process of a pool is sent); it lost its
    # project, and a's trial was ended with b's values
    for sent in (copy.deepcopy(tb), pickle.loads(pickle.dumps(tb))):
        with pytest.raises(ValueError, match="a trial of the project 'b', not of this"):
            a.end_trial(sent)
    assert _rows(db) == before
    b.end_trial(pickle.loads(pickle.dumps(tb)))  # ended by its own oracle, a copy is
    assert b.get_trial(tb.trial_id).status == "COMPLETED"
    assert a.get_trial(ta.trial_id).status == "RUNNING"
    # a copy of a trial of a project replaced since (overwrite=True): said so, where the
    # message named the same project twice ("of the project 'a', not of ... 'a'")
    sent = pickle.dumps(a.create_trial("v"))
    again = open_oracle(db, project_name="a", overwrite=True)
    again.create_trial("w")
    with pytest.raises(ValueError, match="'a' as it was before it was replaced"):
        again.end_trial(pickle.loads(sent))
    again.close()
    a.close()
    b.close()


def test_a_message_with_a_lone_surrogate_is_stored_escaped(db):
    # a FailedTrialError naming a file from os.listdir: end_trial raised UnicodeEncodeError
    # (and through the Tuner the whole search), the trial left RUNNING
    oracle = open_oracle(db)
    trial = oracle.create_trial("w")
    trial.status, trial.message = "FAILED", "cannot read /data/\udcff.csv"
    oracle.end_trial(trial)
    stored = oracle.get_trial(trial.trial_id)
    assert stored.status == "FAILED" and stored.message == "cannot read /data/\\udcff.csv"
    oracle.close()


def test_a_lone_surrogate_in_a_trial_id_or_a_persons_text_is_named(db):
    # a raw UnicodeEncodeError from the driver, naming nothing
    oracle = open_oracle(db)
    trial = oracle.create_trial("w")
    before = _rows(db)
    for call in (lambda: oracle.get_trial("0\ud800"),
                 lambda: oracle.update_trial("0\ud800", {"loss": 1.0}),
                 lambda: oracle.retire_trial("0\ud800")):
        with pytest.raises(hpstore.TrialNotFoundError, match=r"No trial '0\\ud800'"):
            call()
    oracle.update_trial(trial.trial_id, {"loss": 1.0})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    before = _rows(db)
    for name, call in (("reason", lambda: oracle.retire_trial(trial.trial_id, "r\ud800")),
                       ("by", lambda: oracle.retire_trial(trial.trial_id, by="b\ud800")),
                       ("note", lambda: oracle.set_trial_note(trial.trial_id, "n\ud800"))):
        with pytest.raises(ValueError, match=rf"`{name}` .*lone surrogate '\\ud800'"):
            call()
    assert _rows(db) == before
    oracle.close()


def test_threads_reading_a_trials_metrics_at_once_each_get_them(tmp_path):
    # the first reader dropped the loader before the metrics were in place: a second
    # reader then got no metrics (or, built without Trial.__init__, an AttributeError)
    oracle = open_oracle(str(tmp_path / "s.db"), max_trials=3)
    trial = oracle.create_trial("w")
    for step in range(50):
        oracle.update_trial(trial.trial_id, {"loss": float(step)}, step=step)
    seen: list[Any] = []

    def read(got, start):
        start.wait(DEADLINE)
        try:
            history = got.metrics.get_history("loss")
            seen.append((len(history), got.hyperparameters.values == trial.hyperparameters.values))
        except Exception as exc:  # (what a broken read raises, to be told apart)
            seen.append(repr(exc))

    for _ in range(150):
        got = oracle.get_trial(trial.trial_id)
        start = threading.Barrier(2)
        threads = [threading.Thread(target=read, args=(got, start)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(DEADLINE)
    oracle.close()
    assert seen == [(50, True)] * 300


def scored_by_its_own(db: str, score: Any, best_step: Any) -> tuple[Any, Any]:
    """An oracle whose score_trial sets ``score`` and ``best_step``, and its trial, reported
    and ready to end COMPLETED."""
    oracle = open_oracle(db, max_trials=3)

    def own(trial):
        trial.score, trial.best_step = score, best_step

    oracle.score_trial = own
    trial = oracle.create_trial("w")
    oracle.update_trial(trial.trial_id, {"loss": 1.0})
    trial.status = "COMPLETED"
    return oracle, trial


@pytest.mark.parametrize(("score", "best_step", "kept"), [
    (np.float32(0.5), np.int64(1), (0.5, 1)),  # trial.best_step = np.argmin(losses)
    (np.float64(0.25), np.int32(2), (0.25, 2)),
    (0.5, None, (0.5, None))])
def test_a_score_trial_of_ones_own_may_set_numpy_numbers(db, score, best_step, kept):
    # stored as 8-byte BLOBs: every later read called the file damaged
    oracle, trial = scored_by_its_own(db, score, best_step)
    oracle.end_trial(trial)
    stored = oracle.get_trial(trial.trial_id)
    assert (stored.score, stored.best_step) == kept
    assert type(stored.score) is float
    assert oracle.get_best_trials(1)[0].trial_id == trial.trial_id
    assert sqlite3.connect(db).execute("SELECT typeof(score), typeof(best_step) FROM trials"
                                       ).fetchone()[0] == "real"


@pytest.mark.parametrize(("score", "best_step", "named"), [
    ("0.5", 1, "trial.score to '0.5'"), (True, 1, "trial.score to True"),
    (np.array([0.1, 0.2]), 1, "trial.score to array"), (0.5, 1.5, "trial.best_step to 1.5"),
    (0.5, "1", "trial.best_step to '1'"), (0.5, 2**64, "trial.best_step to 1844")])
def test_a_score_trial_of_ones_own_setting_no_number_is_told_so(db, score, best_step, named):
    oracle, trial = scored_by_its_own(db, score, best_step)
    with pytest.raises(hpstore.OracleContractError, match=r"score_trial set " + re.escape(named)):
        oracle.end_trial(trial)
    assert oracle.get_trial(trial.trial_id).status == "RUNNING"  # nothing was written
    del oracle.score_trial  # (the base one again: the run ends as it was reported)
    oracle.end_trial(trial)
    assert oracle.get_trial(trial.trial_id).score == 1.0


@pytest.mark.parametrize(("reported", "score"), [([], None), ([3.0, 1.0, 2.0], 1.0)])
def test_a_trial_its_worker_ends_stopped_stays_stopped(db, reported, score):
    # a worker's own early stop, before any report, was recorded FAILED (as a run that
    # could not be scored), and counted among the consecutive failures; KerasTuner keeps
    # it STOPPED, and so does hpstore, scored on what it reported
    oracle = open_oracle(db, max_trials=3, max_consecutive_failed_trials=1)
    trial = oracle.create_trial("w")
    for step, value in enumerate(reported):
        oracle.update_trial(trial.trial_id, {"loss": value}, step=step)
    trial.status = "STOPPED"
    oracle.end_trial(trial)  # no RuntimeError "consecutive failures"
    stored = oracle.get_trial(trial.trial_id)
    assert (stored.status, stored.score, trial.status) == ("STOPPED", score, "STOPPED")
    assert [c.to_status for c in oracle.project.transitions(trial_id=trial.trial_id)] == [
        "RUNNING", "STOPPED"]
    with pytest.raises(hpstore.TrialNotRunningError, match="has already ended"):
        oracle.end_trial(trial)
    assert oracle.create_trial("w").trial_id != trial.trial_id  # not run again


@pytest.mark.parametrize(("set_to", "ends", "runs"), [
    ("INVALID", "INVALID", 2), ("FAILED", "FAILED", 1), ("STOPPED", "STOPPED", 1),
    ("COMPLETED", "COMPLETED", 1)])
def test_the_status_a_score_trial_of_ones_own_sets_is_honoured(db, set_to, ends, runs):
    # KerasTuner's end_trial keeps what score_trial made of the trial (a run deemed
    # infeasible set INVALID, say); hpstore ignored it and recorded the trial COMPLETED
    oracle = open_oracle(db, max_trials=3, max_retries_per_trial=1)
    seen = []

    def own(trial):
        seen.append(trial.status)
        trial.score, trial.best_step, trial.status = 0.5, 0, set_to

    oracle.score_trial = own
    trial = oracle.create_trial("w")
    oracle.update_trial(trial.trial_id, {"loss": 1.0})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    assert seen == ["COMPLETED"]  # handed as it ends, as KerasTuner hands it
    assert oracle.get_trial(trial.trial_id).status == trial.status == ends
    del oracle.score_trial
    again = oracle.create_trial("w")  # an INVALID run is run again (one retry left)
    assert (again.trial_id == trial.trial_id) == (runs == 2)


def test_a_score_trial_of_ones_own_setting_a_status_no_run_ends_with_is_told_so(db):
    oracle, trial = scored_by_its_own(db, 0.5, 0)
    oracle.score_trial = lambda t: setattr(t, "status", "RUNNING")
    with pytest.raises(hpstore.OracleContractError, match=r"set trial\.status to 'RUNNING'"):
        oracle.end_trial(trial)
    assert oracle.get_trial(trial.trial_id).status == "RUNNING"  # nothing was written


def test_a_trial_whose_id_was_changed_does_not_end_another_workers_trial(db):
    # it ended worker B's trial FAILED with A's values, and B was told its trial had ended
    oracle = open_oracle(db, max_trials=5)
    mine, theirs = oracle.create_trial("A"), oracle.create_trial("B")
    oracle.update_trial(mine.trial_id, {"loss": 0.1})
    ours = mine.trial_id
    mine.trial_id, mine.status = theirs.trial_id, "COMPLETED"
    with pytest.raises(hpstore.TrialNotRunningError, match=r"runs for 'B'.*handed to 'A'"):
        oracle.end_trial(mine)
    stored = oracle.get_trial(theirs.trial_id)
    assert (stored.status, stored.values) == ("RUNNING", theirs.values)
    oracle.update_trial(theirs.trial_id, {"loss": 0.2})  # B goes on
    mine.trial_id = ours
    oracle.end_trial(mine)
    assert oracle.get_trial(ours).status == "COMPLETED"


@pytest.mark.parametrize("how", ["copy", "deepcopy", "pickle"])
def test_an_oracle_in_memory_says_it_cannot_be_copied(how):
    # "cannot be shared with another process" for a copy.copy, with no other process
    import copy
    import pickle

    oracle = hpstore.RandomSearchOracle("loss", max_trials=2, hyperparameters=space())
    oracle.create_trial("w")
    do = {"copy": copy.copy, "deepcopy": copy.deepcopy, "pickle": pickle.dumps}[how]
    with pytest.raises(hpstore.HpStoreError, match="cannot be copied, pickled or sent"):
        do(oracle)
    assert len(oracle.trials) == 1  # the search itself goes on
