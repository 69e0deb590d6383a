"""Tuner in real processes: workers sharing a file, kill -9, Ctrl-C at each moment, and a
store that fails under a running trial."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys

import pytest
from _tuners import DEADLINE, SCRIPT, Squares, oracle

import hpstore


def start(db, trials, *extra):
    return subprocess.Popen([sys.executable, SCRIPT, db, str(trials), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def wait_for(proc, prefix):
    """Read the process's output until a line starts with ``prefix``; return its words."""
    for line in proc.stdout:
        if line.startswith(prefix):
            return line.split()
    raise AssertionError(f"{prefix!r} never appeared; exit code {proc.wait(DEADLINE)}")


def completed(db):
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT hp_values FROM trials WHERE status = 'COMPLETED'").fetchall()
    return [json.loads(r[0]) for r in rows]


@pytest.mark.slow
def test_two_scripts_share_one_file(tmp_path):
    db = str(tmp_path / "shared.db")
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [start(db, 30, "--tuner-id", name, "--barrier", str(barrier), "2")
             for name in ("left", "right")]
    outputs = [p.communicate(timeout=DEADLINE)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    done = completed(db)
    assert len(done) == 30
    assert len({json.dumps(v, sort_keys=True) for v in done}) == 30
    tuners = {r[0] for r in sqlite3.connect(db).execute("SELECT tuner_id FROM trials")}
    assert tuners == {"left", "right"}


def test_kerastuners_hooks_run_in_each_worker_around_its_trials(tmp_path):
    # as each worker of a KerasTuner search runs search() of its own
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    db = str(tmp_path / "hooks.db")
    proc = start(db, 6, "--workers", "2", "--hooks", str(hooks))
    out = proc.communicate(timeout=DEADLINE)[0]
    assert proc.returncode == 0, out
    called = [name.split("-") for name in os.listdir(hooks)]
    workers = {pid for *_, pid in called}
    assert len(workers) == 2 and str(proc.pid) not in workers, called
    for hook in ("search_begin", "search_end"):
        assert sorted(pid for name, pid in (c for c in called if len(c) == 2)
                      if name == hook) == sorted(workers), called
    ends = {trial: (status, pid) for name, trial, status, pid in
            (c for c in called if c[0] == "trial_end")}
    begins = {trial: pid for name, trial, pid in (c for c in called if c[0] == "trial_begin")}
    assert sorted(ends) == sorted(begins) == [str(n) for n in range(6)], called
    assert all(ends[t] == ("COMPLETED", begins[t]) for t in ends), called


@pytest.mark.slow
def test_workers_complete_a_search_even_when_one_is_killed(tmp_path):
    db = str(tmp_path / "workers.db")
    proc = start(db, 24, "--workers", "3", "--hold-first")
    _, held, pid = wait_for(proc, "HOLD")
    os.kill(int(pid), signal.SIGKILL)
    out = proc.communicate(timeout=DEADLINE)[0]
    assert proc.returncode == 0, out
    assert "exited with code -9" in out
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM trials WHERE status = 'COMPLETED'").fetchone() == (
        24,)
    runs, status = conn.execute("SELECT run_count, status FROM trials WHERE trial_id = ?",
                                (held,)).fetchone()
    assert (runs, status) == (2, "COMPLETED")
    # the killed worker and the one that re-ran its trial are both in the status log
    log = conn.execute("SELECT tuner_id, to_status FROM status_log WHERE trial_id = ? "
                       "ORDER BY at_unix", (held,)).fetchall()
    assert [s for _, s in log] == ["RUNNING", "IDLE", "RUNNING", "COMPLETED"]
    assert log[0][0] != log[2][0]


@pytest.mark.slow
def test_ctrl_c_hands_the_trial_back_and_a_second_run_finishes(tmp_path):
    db = str(tmp_path / "sigint.db")
    proc = start(db, 8, "--block")
    _, held, _ = wait_for(proc, "HOLD")
    os.kill(proc.pid, signal.SIGINT)
    out = proc.communicate(timeout=DEADLINE)[0]
    assert proc.returncode == 130, out
    assert "run again" in out.lower() and "resume" in out.lower()
    conn = sqlite3.connect(db)
    status, message, queued = conn.execute(
        "SELECT status, message, queued FROM trials WHERE trial_id = ?", (held,)).fetchone()
    assert status == "IDLE" and "Ctrl-C" in message and queued is not None
    again = start(db, 8)
    out = again.communicate(timeout=DEADLINE)[0]
    assert again.returncode == 0, out
    assert len(completed(db)) == 8
    assert conn.execute("SELECT run_count FROM trials WHERE trial_id = ?", (held,)).fetchone() == (
        2,)


def test_ctrl_c_while_a_trial_is_being_ended_waits_for_its_end(tmp_path):
    # Ctrl-C landing inside end_trial, before its write: the end is recorded first, then
    # the search stops; the trial never stays RUNNING with its result lost.
    class Interrupting(hpstore.RandomSearchOracle):
        def end_trial(self, trial):
            if trial.trial_id == "02":
                os.kill(os.getpid(), signal.SIGINT)
            super().end_trial(trial)

    db = str(tmp_path / "e.db")
    with pytest.raises(KeyboardInterrupt):
        Squares(oracle(db, Interrupting, max_trials=10), verbose=0).search()
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT number, status FROM trials ORDER BY number").fetchall()
    assert rows == [(0, "COMPLETED"), (1, "COMPLETED"), (2, "COMPLETED")]


def test_ctrl_c_between_a_trials_commit_and_its_return_hands_it_back(tmp_path, monkeypatch):
    # Ctrl-C can land inside create_trial after the new trial is committed, before the
    # Tuner holds it: the trial must go back to run again, not stay RUNNING.
    import hpstore.oracle.deciding as deciding

    made = deciding.trial_from
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # the third trial: committed, then Ctrl-C
            raise KeyboardInterrupt
        return made(*args, **kwargs)

    db = str(tmp_path / "c.db")
    search = oracle(db, max_trials=10)
    monkeypatch.setattr(deciding, "trial_from", interrupted)
    with pytest.raises(KeyboardInterrupt):
        Squares(search, verbose=0).search()
    monkeypatch.undo()
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT number, status, message FROM trials ORDER BY number").fetchall()
    assert [(n, s) for n, s, _ in rows] == [(0, "COMPLETED"), (1, "COMPLETED"), (2, "IDLE")]
    assert "Ctrl-C" in rows[2][2]
    Squares(search, verbose=0).search()  # run again: it finishes, trial 2 on its second run
    assert conn.execute("SELECT count(*), max(run_count) FROM trials WHERE status = "
                        "'COMPLETED'").fetchone() == (10, 2)
    search.close()


def test_demo_runs_small_and_leaves_a_readable_file(tmp_path, capsys):
    from hpstore.demo import main

    db = tmp_path / "demo.db"
    assert main(["--database", str(db), "--trials", "6", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "Best trial:" in out and f"sqlite3 {db} " in out
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    assert conn.execute("SELECT count(*) FROM trial_overview WHERE status = 'COMPLETED'"
                        ).fetchone() == (6,)
    curves = conn.execute("SELECT count(*) FROM metric_history WHERE metric = 'val_loss'"
                          ).fetchone()[0]
    assert curves >= 6 * 10  # at least ten epochs reported per trial
    assert not math.isnan(float(conn.execute("SELECT min(score) FROM trials").fetchone()[0]))


def test_two_searches_in_threads_of_one_process_are_two_workers(tmp_path):
    # under one default tuner id both took trial 00, ran it, and one search then died with
    # TrialNotRunningError
    import threading

    path = tmp_path / "s.db"
    hpstore.RandomSearchOracle("loss", max_trials=40, seed=1, database=path).close()
    ran: list[str] = []
    errors: list[BaseException] = []
    both = threading.Barrier(2)

    def build(hp):
        hp.Float("x", 0, 1)

    def run_trial(trial):
        ran.append(trial.trial_id)
        return trial.hyperparameters.values["x"]

    def search():
        oracle = hpstore.RandomSearchOracle(database=path)
        try:
            both.wait(60)  # (both searches start together)
            hpstore.Tuner(oracle, hypermodel=build, run_trial=run_trial, verbose=0).search()
        except BaseException as exc:  # (reported by the assertion below)
            errors.append(exc)
        finally:
            oracle.close()

    threads = [threading.Thread(target=search) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert sorted(ran) == sorted(set(ran)) and len(ran) == 40
    tuners = {t.tuner_id for t in hpstore.Oracle.attach(str(path)).trials.values()}
    assert all(t.startswith(f"worker-{os.getpid()}-t") for t in tuners)


def test_a_trial_whose_end_raised_runs_afresh_when_the_search_runs_again(tmp_path):
    # a score_trial of the user's raised once: the trial stayed RUNNING in the same run, and
    # the search run again scored it on both runs' reports at step 0 (7.0 from 9.0 and 5.0)
    path = str(tmp_path / "hook.db")
    fails = [True]

    class Scoring(hpstore.RandomSearchOracle):
        def score_trial(self, trial):
            if fails and fails.pop():
                raise RuntimeError("a mistake in score_trial")
            super().score_trial(trial)

    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 1)
    oracle = Scoring("loss", max_trials=1, hyperparameters=hp, database=path, seed=1)
    results = [9.0, 5.0]
    tuner = hpstore.Tuner(oracle, run_trial=lambda t: results.pop(0), verbose=0)
    with pytest.raises(RuntimeError, match="a mistake in score_trial"):
        tuner.search()
    tuner.search()  # the mistake mended: the search is run again
    [trial] = oracle.trials.values()
    assert (trial.status, trial.score) == ("COMPLETED", 5.0)
    assert trial.metrics.get_history("loss")[0].value == [5.0]


def test_a_store_failure_under_a_trial_hands_it_back_and_stops_the_search(tmp_path):
    # a writer stopped (Ctrl-Z) inside a write for longer than the lock timeout: the
    # report of a healthy trial of another worker failed, the trial was marked FAILED
    # for good, and the search went on one trial short
    path = tmp_path / "held.db"

    class HeldOnce(hpstore.Tuner):
        held = False

        def run_trial(self, trial):
            if not HeldOnce.held:
                HeldOnce.held = True
                other = sqlite3.connect(path, isolation_level=None)
                other.execute("BEGIN IMMEDIATE")  # another process's write, stopped
                try:
                    self.report(trial, {"loss": 1.0})
                finally:
                    other.execute("ROLLBACK")
                    other.close()
            return trial.hyperparameters["x"] ** 2

    search = oracle(str(path), max_trials=3)
    search.store.db.timeout = 0.2
    search.store.db.connect().execute("PRAGMA busy_timeout = 200")  # (the open connection)
    with pytest.raises(hpstore.DatabaseError, match="stayed locked"):
        HeldOnce(search, verbose=0).search()
    [held] = search.trials.values()
    assert held.status == "IDLE" and "store failed during this run" in held.message
    search.store.db.timeout = 60.0
    HeldOnce(search, verbose=0).search()  # run again: it runs afresh with the others
    assert [t.status for t in search.trials.values()] == ["COMPLETED"] * 3
    search.close()


def test_a_store_still_failing_is_asked_once_to_take_the_trial_back(tmp_path):
    # with the writer still stopped, the trial's end waited a lock timeout, then the end
    # of the error path another: three timeouts before the search stopped
    path = tmp_path / "still.db"
    search = oracle(str(path), max_trials=2)
    other = sqlite3.connect(path, isolation_level=None)

    class HeldOn(hpstore.Tuner):
        def run_trial(self, trial):
            other.execute("BEGIN IMMEDIATE")  # a writer stopped, and not resumed
            self.report(trial, {"loss": 1.0})

    search.store.db.timeout = 0.2
    search.store.db.connect().execute("PRAGMA busy_timeout = 200")
    ends = []
    search.end_trial = lambda trial: (ends.append(trial.status),
                                      type(search).end_trial(search, trial))[1]
    with pytest.raises(hpstore.DatabaseError, match="stayed locked"):
        HeldOn(search, verbose=0).search()
    assert ends == ["IDLE"]
    other.execute("ROLLBACK")
    other.close()
    search.close()


def test_a_database_error_of_the_users_own_code_fails_the_run_as_any_error(tmp_path):
    # reading another file that is not a search raises hpstore's own DatabaseError: that
    # is the trial's error (INVALID, then FAILED), not a failure of the search's store
    notes = tmp_path / "notes.txt"
    notes.write_text("not a search")

    class ReadsNotes(hpstore.Tuner):
        def run_trial(self, trial):
            if trial.trial_id == "0":
                hpstore.open_database(str(notes))
            return trial.hyperparameters["x"] ** 2

    search = oracle(str(tmp_path / "own.db"), max_trials=3)
    ReadsNotes(search, verbose=0).search()
    statuses = {t.trial_id: t.status for t in search.trials.values()}
    assert statuses == {"0": "FAILED", "1": "COMPLETED", "2": "COMPLETED"}
    assert "NotAnHpstoreFileError" in search.get_trial("0").message
    search.close()


