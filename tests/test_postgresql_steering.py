"""Steering and early stopping on a postgresql:// URL: several processes enqueueing the same
configurations at once, retire and note through the commands, a kill during retirements,
a warm start from a file, and every stopping rule deciding as it does on a file."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import sys
import threading

import psycopg
import pytest
from _postgres import fresh_url, wait_until
from _workers import (
    DEADLINE,
    STEERED,
    enqueue_then_search,
    objective_value,
    open_oracle,
    retire_and_restore_forever,
)
from test_early_stopping import (
    RULES,
    _worker,
    kill_9_right_after_a_stop,
    make,
    run_search,
    the_stopped_run_ended,
)

import hpstore
from hpstore.cli import main as cli

CTX = mp.get_context("spawn")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="signals are POSIX")


def run(oracle, tuner="w", n=None):
    """Run trials to the end (or ``n`` of them); their (id, values)."""
    ran = []
    while (n is None or len(ran) < n) and (
            trial := oracle.create_trial(tuner)).status == "RUNNING":
        ran.append((trial.trial_id, trial.hyperparameters.values))
        oracle.update_trial(trial.trial_id,
                            {"loss": objective_value(trial.hyperparameters.values)})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    return ran


def state(url):
    """Everything the project holds, for 'nothing was written' checks."""
    oracle = hpstore.Oracle.attach(url)
    doc = oracle.get_state()
    oracle.close()
    doc["settings"].pop("updated_at")
    return json.dumps(doc, sort_keys=True)


# -- enqueue ---------------------------------------------------------------------------------
def test_six_processes_enqueueing_the_same_configurations_run_each_once_first():
    url = fresh_url()
    open_oracle(url, max_trials=12).close()
    barrier, results = CTX.Barrier(6), CTX.Queue()
    procs = [CTX.Process(target=enqueue_then_search, args=(url, f"w{i}", barrier, results))
             for i in range(6)]
    for p in procs:
        p.start()
    reports = [results.get(timeout=DEADLINE * 2) for _ in procs]
    for p in procs:
        p.join(DEADLINE)
    assert [error for _, _, error in reports] == [None] * 6
    oracle = open_oracle(url)
    trials = sorted(oracle.trials.values(), key=lambda t: int(t.trial_id))
    assert len(trials) == 12
    # the three configurations, filled alike by all six, were enqueued once and ran first
    expected = [oracle.values_to_enqueue(v) for v in STEERED]
    assert [t.hyperparameters.values for t in trials[:3]] == expected
    ran = [json.dumps(v, sort_keys=True) for _, done, _ in reports for _, v in done]
    assert len(ran) == 12 and len(set(ran)) == 12
    assert [r.origin for r in oracle.project.trials()][:4] == ["enqueued"] * 3 + [None]
    log = oracle.project.transitions(trial_id=trials[0].trial_id)
    assert [(c.from_status, c.to_status) for c in log][:2] == [(None, "IDLE"),
                                                               ("IDLE", "RUNNING")]
    oracle.close()


def test_an_enqueued_configuration_held_before_is_enqueued_again_only_when_asked():
    url = fresh_url()
    oracle = open_oracle(url, max_trials=4)
    (done, values), = run(oracle, n=1)
    assert oracle.enqueue_trial(values) == done  # held: skipped
    again = oracle.enqueue_trial(values, skip_if_exists=False)  # two trials, one set of values
    assert again != done and oracle.enqueued()[0].hyperparameters.values == values
    assert oracle.create_trial("w").trial_id == again
    oracle.close()


# -- the commands on a URL ---------------------------------------------------------------------
@pytest.fixture
def search():
    url = fresh_url("steer")
    oracle = open_oracle(url, max_trials=8, seed=2)
    run(oracle, n=3)
    oracle.close()
    return url


def test_retire_restore_note_and_enqueue_commands_on_a_url(search, capsys):
    oracle = hpstore.Oracle.attach(search)
    best = oracle.get_best_trials(1)[0].trial_id
    assert cli(["retire", search, best, "--reason", "leak", "--by", "ci"]) == 0
    assert f"trial {best} retired" in capsys.readouterr().err
    assert oracle.get_best_trials(1)[0].trial_id != best
    assert cli(["retire", search, best]) == 0
    assert "retired already; nothing changed" in capsys.readouterr().err
    assert cli(["summary", search]) == 0
    assert "Steered: 1 retired" in capsys.readouterr().out
    assert cli(["restore", search, str(int(best)), "--reason", "fixed"]) == 0
    assert oracle.get_best_trials(1)[0].trial_id == best
    assert cli(["note", search, best, "seen in the paper"]) == 0
    capsys.readouterr()
    assert cli(["show", search, best]) == 0
    assert "seen in the paper" in capsys.readouterr().out
    assert cli(["history", search, "--trial", best]) == 0
    out = capsys.readouterr().out
    assert "Retired by ci: leak" in out and "Restored by " in out
    assert cli(["enqueue", search, "--values", '{"x": 0.5, "y": 1, "c": "a"}']) == 0
    assert "enqueued" in capsys.readouterr().err
    waiting, = oracle.enqueued()
    assert waiting.hyperparameters.values == {"x": 0.5, "y": 1, "c": "a"}
    code = cli(["sql", search, "SELECT trial_id, origin, note, retired FROM trial_overview "
                "WHERE origin IS NOT NULL OR note IS NOT NULL ORDER BY number",
                "--format", "json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["trial_id"], r["origin"], r["note"], r["retired"]) for r in rows] == [
        (best, None, "seen in the paper", None), (waiting.trial_id, "enqueued", None, None)]
    oracle.close()


def test_an_enqueue_command_past_max_trials_writes_nothing(search, capsys):
    before = state(search)
    values = [f'{{"x": {x}}}' for x in range(6)]
    args = [a for v in values for a in ("--values", v)]
    assert cli(["enqueue", search, *args]) == 2
    assert "has room for 5 more trials" in capsys.readouterr().err
    assert state(search) == before


def test_a_kill_during_retirements_leaves_one_state_or_the_other():
    url = fresh_url()
    oracle = open_oracle(url, max_trials=5)
    (tid, _), = run(oracle, n=1)
    oracle.close()
    started, done = CTX.Event(), CTX.Value("i", 0)
    proc = CTX.Process(target=retire_and_restore_forever, args=(url, tid, started, done))
    proc.start()
    assert started.wait(DEADLINE)
    while done.value < 20:  # well into its loop; no timing involved in what is checked
        proc.join(0.01)
        assert proc.is_alive()
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(DEADLINE)
    after = open_oracle(url)
    record = after.project.trial(tid)
    log = [c.message for c in after.project.transitions(trial_id=tid)
           if c.from_status == c.to_status]
    retired = sum(m.startswith("Retired") for m in log)
    restored = sum(m.startswith("Restored") for m in log)
    assert retired - restored == (1 if record.retired else 0)
    assert retired >= 20 and all(m.startswith(("Retired", "Restored")) for m in log)
    best = after.get_best_trials(1)
    assert (bool(best) and best[0].trial_id == tid) != record.retired
    after.close()


def test_a_warm_start_from_a_file_into_postgresql_and_back(tmp_path):
    source = open_oracle(tmp_path / "old.db", max_trials=4, seed=1)
    ran = run(source)
    source.close()
    url = fresh_url()
    oracle = open_oracle(url, max_trials=3, seed=2, warm_start_from=tmp_path / "old.db")
    assert len(oracle.warm_start.added) == len(ran)
    assert oracle.remaining_trials() == 3  # not counted towards max_trials
    origin = oracle.project.trial(oracle.warm_start.added[0]).origin
    assert origin.startswith("warm start: old.db 'untitled_project' trial ")
    again = open_oracle(url, warm_start_from=tmp_path / "old.db")  # another worker
    assert again.warm_start.added == [] and again.warm_start.already == len(ran)
    again.close()
    back = open_oracle(tmp_path / "new.db", max_trials=3, warm_start_from=url)
    assert len(back.warm_start.added) == len(ran)
    origin = back.project.trial(back.warm_start.added[0]).origin
    assert origin.startswith("warm start: postgresql://") and "(schema" not in origin
    assert "%3D" not in origin  # the URL's options are left out of what is kept
    back.close()
    oracle.close()


def test_a_warm_start_from_another_schema_of_the_same_database():
    source_url, url = fresh_url(), fresh_url()
    source = open_oracle(source_url, max_trials=2, seed=1)
    run(source)
    source.close()
    # both projects have the id 1, each in its own schema: not "this very project"
    oracle = open_oracle(url, max_trials=2, warm_start_from=source_url)
    assert len(oracle.warm_start.added) == 2
    oracle.close()


# -- early stopping ------------------------------------------------------------------------------
@pytest.mark.parametrize("rule", list(RULES))
def test_every_stopping_rule_decides_on_postgresql_as_on_a_file(tmp_path, rule):
    outcomes = []
    for where in (str(tmp_path / "s.db"), fresh_url()):
        oracle = make("random", where, RULES[rule]())
        for step in range(3):  # results better than any curve, taken out: never compared with
            leak = oracle.add_trial({"lr": step / 10, "width": 1}, {"loss": 0.01}, step=step)
            oracle.retire_trial(leak.trial_id, "a leak", by="ci")
        seen = run_search(oracle)
        outcomes.append((seen, [(t.trial_id, t.status, t.score, t.best_step, t.message)
                                for t in oracle.project.trials()]))
        oracle.close()
    assert outcomes[1] == outcomes[0]
    if rule in ("median", "percentile", "halving", "threshold"):
        assert outcomes[0][0]["stopped"], "these curves give every rule something to stop"


def test_a_retired_trial_is_not_compared_with_by_a_rule():
    oracle = make("random", fresh_url(), hpstore.MedianStopping(min_trials=2))
    ended = {}
    for loss in (10.0, 0.2, 0.1):  # each compared with those before it: none stopped
        trial = oracle.create_trial("w")
        oracle.update_trial(trial.trial_id, {"loss": loss}, step=0)
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        ended[loss] = trial.trial_id
    assert all(oracle.get_trial(t).status == "COMPLETED" for t in ended.values())
    trial = oracle.create_trial("w")  # the median of 0.1, 0.2 and 10 is 0.2: stopped
    assert oracle.update_trial(trial.trial_id, {"loss": 5.0}, step=0).status == "STOPPED"
    oracle.end_trial(trial)
    oracle.retire_trial(ended[0.1], "a bad run")
    trial = oracle.create_trial("w")  # the median of 0.2 and 10 is 5.1: it goes on
    assert oracle.update_trial(trial.trial_id, {"loss": 5.0}, step=0).status == "RUNNING"
    oracle.close()


def test_processes_reporting_at_once_stop_each_trial_once():
    url = fresh_url()
    make("random", url, RULES["median"]()).close()
    start, results = CTX.Barrier(5, timeout=DEADLINE), CTX.Queue()
    procs = [CTX.Process(target=_worker, args=(url, f"w{i}", start, results))
             for i in range(4)]
    for p in procs:
        p.start()
    start.wait()
    reports = [results.get(timeout=DEADLINE * 2) for _ in procs]
    for p in procs:
        p.join(DEADLINE)
    assert all(kind == "ok" for kind, _ in reports), reports
    with psycopg.connect(url) as conn:
        logs = conn.execute(
            "SELECT trial_id, string_agg(coalesce(from_status, '-') || '>' || to_status, ' ' "
            "ORDER BY at_unix) FROM status_log GROUP BY trial_id").fetchall()
    stops = sum(log.count(">STOPPED") for _, log in logs)
    assert stops == sum(r["stopped"] for _, r in reports) and stops
    for trial_id, log in logs:  # never stopped twice, never running again once stopped
        assert log.count("RUNNING>STOPPED") <= 1, (trial_id, log)
        assert "STOPPED>RUNNING" not in log, (trial_id, log)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_kill_9_between_a_stop_and_its_end_leaves_the_run_ended_at_the_stop():
    # as on a file: the trial stayed STOPPED under its dead worker's session, never ended
    url = fresh_url()
    trial_id = kill_9_right_after_a_stop(url)
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT t.session, t.started_at, t.ended_at, s.at_unix FROM trials AS t JOIN "
            "status_log AS s ON s.trial_id = t.trial_id AND s.to_status = 'STOPPED' "
            "WHERE t.trial_id = %s", (trial_id,)).fetchone()
    the_stopped_run_ended(url, trial_id, row)


def test_a_stop_meeting_a_status_change_of_its_trial_is_settled_not_stuck():
    """A stop waits for the status log's lock with its trial's row share-locked; another
    transaction holding that lock and changing the trial (a reap, a set_status) makes a
    deadlock: the server breaks it, and one of the two changes is kept, logged once."""
    url = fresh_url()
    oracle = make("random", url, hpstore.Threshold(upper=0.5))
    trial = oracle.create_trial("w")
    key, project = oracle.project.trial(trial.trial_id).key, oracle.project.project_id
    log_lock = oracle.store.db.keys["log"]
    outcome = {}

    def report():
        try:
            outcome["status"] = oracle.update_trial(trial.trial_id, {"loss": 3.0}).status
        except hpstore.HpStoreError as exc:
            outcome["error"] = exc

    def waiting():
        with psycopg.connect(url, autocommit=True) as conn:
            return conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                "AND NOT granted AND classid::bigint = %s",
                                (log_lock,)).fetchone()[0] == 1

    with psycopg.connect(url) as other:  # a transaction: it holds the lock until it ends
        other.execute("SELECT pg_advisory_xact_lock(%s, %s)", (log_lock, project))
        reporter = threading.Thread(target=report)
        reporter.start()
        wait_until(waiting, DEADLINE, "the stop waiting for the status log's lock")
        try:
            other.execute("UPDATE trials SET status = 'FAILED', message = 'by hand' "
                          "WHERE id = %s", (key,))
            other.commit()
        except psycopg.errors.DeadlockDetected:
            other.rollback()
        reporter.join(DEADLINE)
    assert not reporter.is_alive()
    stored = oracle.project.trial(trial.trial_id)
    if stored.status == "STOPPED":  # the change by hand was the one undone
        assert outcome == {"status": "STOPPED"}
    else:  # the stop was undone, retried, and found the trial ended
        assert stored.status == "FAILED"
        assert isinstance(outcome["error"], hpstore.TrialNotRunningError)
    changes = [(c.from_status, c.to_status) for c in oracle.project.transitions(
        trial_id=trial.trial_id)]
    assert changes == [(None, "RUNNING"), ("RUNNING", stored.status)]
    oracle.close()
