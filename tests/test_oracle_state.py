"""get_state / set_state: a project read as one document and loaded back, here or elsewhere."""

from __future__ import annotations

import json
import os
import re
import sqlite3

import pytest
from _workers import DEADLINE, hold, open_oracle
from _workers import run_trials as run

import hpstore


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "search.db")


def test_an_oracle_open_on_a_project_follows_a_set_state_made_through_another(tmp_path):
    # it kept its own seed (proposing the old search's values) and no stopping rule, and
    # wrote on into the loaded search
    hp = hpstore.HyperParameters()
    hp.Int("k", 0, 10**9)

    def make(path, **kwargs):
        return hpstore.RandomSearchOracle("loss", max_trials=10, hyperparameters=hp,
                                          database=tmp_path / path, project_name="p",
                                          **kwargs)

    stale = make("a.db", seed=3)
    loaded = make("b.db", seed=9, early_stopping=hpstore.Threshold(upper=1.0))
    make("a.db").set_state(loaded.get_state())
    trial = stale.create_trial("w")
    assert stale.seed == 9 and stale.early_stopping == hpstore.Threshold(upper=1.0)
    twin = loaded.create_trial("w")
    assert trial.hyperparameters.values == twin.hyperparameters.values
    assert stale.update_trial(trial.trial_id, {"loss": 5.0}).status == "STOPPED"


def test_state_round_trips_through_json(db, tmp_path):
    oracle = open_oracle(db, max_trials=6, seed=11)
    run(oracle, n=3)
    held = oracle.create_trial("held")
    oracle.update_trial(held.trial_id, {"loss": 5.0})
    state = oracle.get_state()
    text = json.dumps(state, allow_nan=False)
    copy = open_oracle(str(tmp_path / "copy.db"))
    copy.set_state(json.loads(text))
    copied = copy.get_state()["trials"]
    # the running trial's worker is in the original: in the copy it has none (runs again)
    assert (copied[3]["pid"], state["trials"][3]["pid"]) == (None, os.getpid())
    assert copied[3]["session"] != state["trials"][3]["session"]
    for trial in (copied[3], state["trials"][3]):
        del trial["pid"], trial["session"]
    assert copied == state["trials"]
    assert copy.get_state()["space"] == state["space"]


def test_set_state_rejects_garbage_and_changes_nothing(db):
    oracle = open_oracle(db, max_trials=5)
    run(oracle, n=2)
    before = oracle.get_state()
    for bad in [{}, {"format": "hpstore.project", "version": 1}, [1, 2]]:
        with pytest.raises(hpstore.HpStoreError):
            oracle.set_state(bad)  # type: ignore[arg-type]
    broken = json.loads(json.dumps(before))
    broken["trials"][1]["status"] = "EXPLODED"
    with pytest.raises(hpstore.HpStoreError, match="nothing was changed"):
        oracle.set_state(broken)
    assert oracle.get_state()["trials"] == before["trials"]


def _changed(state, where, value):
    """A copy of ``state`` with the entry at the path ``where`` set to ``value``."""
    state = json.loads(json.dumps(state))
    *path, last = where
    node = state
    for key in path:
        node = node[key]
    node[last] = value
    return state


@pytest.mark.parametrize(("where", "value", "says"), [
    (("settings", "oracle_config"), "x", "settings.oracle_config must be an object"),
    (("trials", 0, "hp_values"), "x", "hp_values must be an object"),
    (("trials", 0, "hp_values", "y"), 99, "y=99 (99 is not a value of y (Int)"),
    (("trials", 0, "trial_id"), None, "trial_id must be a string"),
    (("settings", "max_trials"), -1, "settings.max_trials must be at least 1"),
    (("settings", "queue_counter"), -3, "settings.queue_counter must be 0 or more"),
    (("settings", "oracle_config", "options", "max_retries_per_trial"), -5,
     "max_retries_per_trial"),
    (("oracle_state",), "x", "oracle_state must be an object")])
def test_set_state_refuses_what_would_leave_the_project_unusable(db, where, value, says):
    # each was stored: the project then could not be opened by the library or the tools
    # ("changed by another program"), or ran with what the constructor refuses; a
    # non-object oracle_state was a raw AttributeError
    oracle = open_oracle(db, max_trials=5)
    run(oracle, n=2)
    before = oracle.get_state()
    with pytest.raises(hpstore.HpStoreError, match=re.escape(says)):
        oracle.set_state(_changed(before, where, value))
    assert oracle.get_state()["trials"] == before["trials"]
    oracle.close()
    assert hpstore.Oracle.attach(db, "untitled_project").get_state()["settings"] == (
        before["settings"])


def test_a_copy_made_with_set_state_resumes_like_the_original(tmp_path):
    a, b = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    original = open_oracle(a, max_trials=8, seed=21, max_retries_per_trial=1)
    run(original, n=3)
    bad = original.create_trial("t")
    held = original.create_trial("held")
    original.update_trial(held.trial_id, {"loss": 2.0})
    bad.status = "INVALID"
    original.end_trial(bad)  # waits in the retry queue
    copy = open_oracle(b)
    copy.set_state(original.get_state())
    original.close()
    copy.close()
    from hpstore.store.sqlite import shared

    shared.leave_dropped()  # the holder is gone in both files now (as its process ends)

    def next_trials(path):
        oracle = open_oracle(path)
        return [(t.trial_id, t.hyperparameters.values, t.run) for t in run(oracle, "resumer")]

    resumed_a, resumed_b = next_trials(a), next_trials(b)
    assert resumed_a == resumed_b
    assert len(resumed_a) == 5
    # the retry and the interrupted trial come first, then new trials
    assert {resumed_a[0][0], resumed_a[1][0]} == {bad.trial_id, held.trial_id}


def test_a_copy_made_with_set_state_runs_again_a_trial_still_running_in_the_original(
        tmp_path):
    # the copy kept the original worker's liveness token and process id: with that
    # worker alive (a long training), the copy waited for it, maybe for ever
    a, b = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    open_oracle(a, max_trials=50).close()
    proc, held, values = hold(a, "original")
    try:
        copy = open_oracle(b)
        copy.set_state(hpstore.Oracle.attach(a).get_state())
        trial = copy.create_trial("copy")
        assert (trial.trial_id, trial.hyperparameters.values) == (held, values)
        assert trial.run == 2  # its second run: the first ended with its worker, elsewhere
        copy.close()
        with sqlite3.connect(a) as conn:  # the original goes on with its worker
            assert conn.execute("SELECT status FROM trials WHERE trial_id = ?", (held,)
                                ).fetchone() == ("RUNNING",)
    finally:
        proc.kill()
        proc.join(DEADLINE)


def _fail_three_after_one_completes(oracle):
    """Four trials started at once; the last one completes, then the first three fail:
    the log's last three rows are failures of trials created before the completed one."""
    started = [oracle.create_trial(f"w{i}") for i in range(4)]
    oracle.update_trial(started[3].trial_id, {"loss": 1.0})
    started[3].status = "COMPLETED"
    oracle.end_trial(started[3])
    for trial in started[:2]:
        trial.status = "FAILED"
        oracle.end_trial(trial)


def _rows(path, sql):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _log_order(path):
    return _rows(path, "SELECT t.number, s.to_status FROM transitions s JOIN trials t ON "
                       "t.id = s.trial ORDER BY s.id")


def test_a_copy_keeps_the_status_log_in_the_order_it_was_written(tmp_path):
    a, b = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    original = open_oracle(a, max_trials=8, seed=3, max_consecutive_failed_trials=3)
    _fail_three_after_one_completes(original)
    state = original.get_state()
    assert state["log"] == [n for n, _ in _log_order(a)]
    copy = open_oracle(b, max_trials=8, seed=3, max_consecutive_failed_trials=3)
    copy.set_state(state)
    assert _log_order(b) == _log_order(a)  # not trial by trial
    # so the copy counts the same last failures: a third one in a row stops both
    for oracle in (original, copy):
        trial = oracle.create_trial("next")
        trial.status = "FAILED"
        with pytest.raises(RuntimeError, match="consecutive failures"):
            oracle.end_trial(trial)
        oracle.close()


def test_a_state_without_its_log_order_loads_in_the_order_of_time(tmp_path):
    a, b = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    original = open_oracle(a, max_trials=8, seed=3)
    _fail_three_after_one_completes(original)
    state = original.get_state()
    original.close()
    older = json.loads(json.dumps(state))
    del older["log"]  # as an earlier hpstore wrote it
    copy = open_oracle(b, max_trials=8, seed=3)
    copy.set_state(older)
    assert _log_order(b) == _log_order(a)
    for bad in ([0, 0, 0, 0, 0], state["log"][:-1], [*state["log"][:-1], 99], "0123"):
        broken = dict(state, log=bad)
        with pytest.raises(hpstore.HpStoreError, match="nothing was changed"):
            copy.set_state(broken)
        assert _log_order(b) == _log_order(a)
    copy.close()


def _values_order(path):
    return _rows(path, "SELECT t.number, o.step FROM observations o JOIN trials t ON "
                       "t.id = o.trial ORDER BY o.id")


def _report_in_turn(oracle):
    """Two trials reporting their steps in turn, as two workers do."""
    trials = [oracle.create_trial(f"w{i}") for i in range(2)]
    for step in range(3):
        for trial in trials:
            oracle.update_trial(trial.trial_id, {"loss": 1.0 + step}, step=step)
    return trials


def test_a_copy_keeps_the_values_in_the_order_they_were_written(tmp_path):
    # the metric_history view's seq is the order the values were written in: a copy gave
    # them trial by trial (0@0 0@1 1@0 1@1, of 0@0 1@0 0@1 1@1)
    a, b = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    original = open_oracle(a, max_trials=8, seed=3)
    _report_in_turn(original)
    state = original.get_state()
    written = _values_order(a)
    assert [n for n, _ in written] == [0, 1] * 3
    assert state["values_log"] == [n for n, _ in written]
    copy = open_oracle(b, max_trials=8, seed=3)
    copy.set_state(state)
    assert _values_order(b) == written
    # a document without it (by hand, an earlier hpstore) loads trial by trial
    older = json.loads(json.dumps(state))
    del older["values_log"]
    copy.set_state(older)
    assert _values_order(b) == sorted(written)
    for bad in ([0, 0, 0, 1, 1, 1, 1], [0, 1] * 2, "01"):
        with pytest.raises(hpstore.HpStoreError, match="nothing was changed"):
            copy.set_state(dict(state, values_log=bad))
        assert _values_order(b) == sorted(written)
    original.close()
    copy.close()


def test_set_state_hands_the_loaded_searchs_arguments_to_the_oracle_it_loads_into(tmp_path):
    hp = hpstore.HyperParameters()
    hp.Int("x", 0, 100)
    source = hpstore.HyperbandOracle("loss", max_epochs=9, hyperparameters=hp, seed=1,
                                     max_retries_per_trial=2, database=str(tmp_path / "a.db"),
                                     early_stopping=hpstore.Threshold(upper=5.0))
    target = hpstore.HyperbandOracle("loss", max_epochs=81, hyperparameters=hp, seed=1,
                                     max_retries_per_trial=5, database=str(tmp_path / "b.db"),
                                     early_stopping=hpstore.MedianStopping(min_trials=1))
    target.set_state(source.get_state())
    assert (target.max_epochs, target.max_retries_per_trial) == (9, 2)
    assert target.early_stopping == hpstore.Threshold(upper=5.0)
    # it decides as the source would: the same next trial, the same stop
    assert (target.create_trial("w").hyperparameters.values
            == source.create_trial("w").hyperparameters.values)
    trial = target.create_trial("v")
    assert "Threshold" in (target.update_trial(trial.trial_id, {"loss": 50.0}).message or "")
    source.close()
    target.close()


def test_a_state_loaded_back_into_its_own_project_leaves_a_running_trial_to_its_worker(
        tmp_path):
    # set_state(get_state()) on the same project took the trial from its live worker: the
    # next create_trial of another process got it, and the worker's report was refused
    path = str(tmp_path / "self.db")
    open_oracle(path, max_trials=50).close()
    proc, held, _ = hold(path, "worker")
    try:
        notebook = hpstore.Oracle.attach(path)
        notebook.set_state(notebook.get_state())
        notebook.close()
        other = open_oracle(path)
        assert other.create_trial("other").trial_id != held
        assert other.get_trial(held).status == "RUNNING" and proc.is_alive()
        other.close()
    finally:
        proc.kill()
        proc.join(DEADLINE)
