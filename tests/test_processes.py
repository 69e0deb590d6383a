"""Several real processes (spawn) on one file, and workers killed with SIGKILL."""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import signal
import sqlite3
import sys
import threading
import time

import pytest
from _store import (
    fork_children_while_a_thread_runs_trials,
    grid_oracle,
    hold_a_trial,
    reported_by,
    stall_in_create_trial,
    think_in_create_trial,
)
from _workers import (
    DEADLINE,
    close_and_go_on,
    forked_child,
    hold,
    lock_files_open,
    make_tuner,
    objective_value,
    open_new_file,
    open_oracle,
    run_worker,
    write_forever,
)

import hpstore
from hpstore.store.sqlite.schema import SCHEMA_VERSION

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX"),
]

CTX = mp.get_context("spawn")


def _collect(queue, n):
    return [queue.get(timeout=DEADLINE * 3) for _ in range(n)]


def _kill(proc):
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(DEADLINE)
    assert proc.exitcode == -signal.SIGKILL


def test_four_processes_share_400_trials(tmp_path):
    path = str(tmp_path / "shared.db")
    open_oracle(path, max_trials=400, seed=1).close()  # the project exists before they start
    # all four have opened the search before any starts, so each gets a share
    start, results = CTX.Barrier(5, timeout=DEADLINE), CTX.Queue()
    procs = [CTX.Process(target=run_worker, args=(path, f"w{i}", 400, start, results))
             for i in range(4)]
    for p in procs:
        p.start()
    start.wait()
    reports = _collect(results, 4)
    for p in procs:
        p.join(DEADLINE)
    errors = [r[2] for r in reports if r[2]]
    assert errors == []
    done = [t for r in reports for t in r[1]]
    assert len(done) == 400
    assert all(len(r[1]) > 0 for r in reports)  # every process took part
    oracle = open_oracle(path)
    ids = list(oracle.trials)
    assert len(ids) == len(set(ids)) == 400
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(DISTINCT values_key), count(*) FROM trials").fetchone() == (
        400, 400)
    assert conn.execute("SELECT count(*) FROM trials WHERE status = 'COMPLETED'").fetchone() == (
        400,)
    # every trial has exactly its two transitions, by the process that ran it
    per_trial = conn.execute(
        "SELECT group_concat(coalesce(from_status, '-') || '>' || to_status, ' ') "
        "FROM (SELECT * FROM transitions ORDER BY id) GROUP BY trial").fetchall()
    assert {p[0] for p in per_trial} == {"->RUNNING RUNNING>COMPLETED"}
    # the log's times follow its order ("newest first" reads back in time): each change's
    # time is taken holding the write lock, not before waiting for it
    times = [at for (at,) in conn.execute("SELECT at FROM transitions ORDER BY id")]
    assert times == sorted(times)
    reported = dict(done)
    for trial_id in ids[:50]:
        assert oracle.trials[trial_id].score == pytest.approx(reported[trial_id])


def test_sixteen_processes_open_one_new_file_at_once(tmp_path):
    path = str(tmp_path / "new.db")
    start, results = CTX.Event(), CTX.Queue()
    procs = [CTX.Process(target=open_new_file, args=(path, start, results)) for _ in range(16)]
    for p in procs:
        p.start()
    start.set()
    reports = _collect(results, 16)
    for p in procs:
        p.join(DEADLINE)
    assert [r for r in reports if r[0] != "ok"] == []
    assert {r[1] for r in reports} == {SCHEMA_VERSION}
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM projects").fetchone() == (1,)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'trials'").fetchone() == (
        1,)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_killed_workers_trial_is_run_again_by_another(tmp_path):
    path = str(tmp_path / "kill.db")
    oracle = open_oracle(path, max_trials=50, seed=4)
    for _ in range(3):
        t = oracle.create_trial("survivor")
        oracle.update_trial(t.trial_id, {"loss": objective_value(t.hyperparameters.values)})
        t.status = "COMPLETED"
        oracle.end_trial(t)
    proc, orphan, values = hold(path, "doomed")
    # alive: the survivor must not take the held trial, however long it has been running
    fresh = oracle.create_trial("survivor")
    assert fresh.trial_id != orphan
    fresh.status = "COMPLETED"
    oracle.update_trial(fresh.trial_id, {"loss": 1.0})
    oracle.end_trial(fresh)
    _kill(proc)
    rerun = oracle.create_trial("survivor")
    assert rerun.trial_id == orphan
    assert rerun.hyperparameters.values == values
    assert rerun.run == 2
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("SELECT count(*) FROM trials WHERE status = 'COMPLETED'").fetchone() == (
        4,)
    log = conn.execute("SELECT from_status, to_status, tuner_id, message FROM status_log "
                       "WHERE trial_id = ? ORDER BY at_unix", (orphan,)).fetchall()
    assert [(a, b) for a, b, _, _ in log] == [(None, "RUNNING"), ("RUNNING", "IDLE"),
                                             ("IDLE", "RUNNING")]
    assert "died" in log[1][3] and log[2][2] == "survivor"


def test_a_restarted_worker_gets_its_interrupted_trial_back(tmp_path):
    path = str(tmp_path / "restart.db")
    open_oracle(path, max_trials=50).close()
    proc_a, trial_a, values_a = hold(path, "w-a")
    proc_b, trial_b, values_b = hold(path, "w-b")
    _kill(proc_a)
    _kill(proc_b)
    # both trials wait in the queue; each restarted tuner gets its own back, whatever
    # the queue order
    again_b, got_b, vals_b = hold(path, "w-b")
    again_a, got_a, vals_a = hold(path, "w-a")
    try:
        assert (got_a, vals_a) == (trial_a, values_a)
        assert (got_b, vals_b) == (trial_b, values_b)
    finally:
        _kill(again_a)
        _kill(again_b)


def test_a_trial_whose_worker_dies_three_times_fails(tmp_path):
    path = str(tmp_path / "thrice.db")
    open_oracle(path, max_trials=50, max_consecutive_failed_trials=5).close()
    held = []
    for _ in range(3):
        proc, trial_id, _ = hold(path, "unlucky")
        held.append(trial_id)
        _kill(proc)
    assert len(set(held)) == 1
    oracle = open_oracle(path)
    nxt = oracle.create_trial("other")
    assert nxt.trial_id != held[0]
    dead = oracle.get_trial(held[0])
    assert dead.status == "FAILED"
    assert "died 3 times" in dead.message


def test_kill_in_the_middle_of_writes_loses_nothing_committed(tmp_path):
    path = str(tmp_path / "midwrite.db")
    open_oracle(path, max_trials=100_000).close()
    started, progress = CTX.Event(), CTX.Queue()
    proc = CTX.Process(target=write_forever, args=(path, "busy", started, progress),
                       daemon=True)
    proc.start()
    assert started.wait(DEADLINE)
    reported = [progress.get(timeout=DEADLINE) for _ in range(30)]  # it is mid-stream now
    _kill(proc)
    while not progress.empty():
        reported.append(progress.get_nowait())
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    stored = dict(conn.execute("SELECT trial_id, score FROM trials WHERE status = 'COMPLETED'"))
    for trial_id, score in reported:
        assert stored[trial_id] == score
    held = conn.execute("SELECT trial_id, hp_values FROM trials WHERE status = 'RUNNING'"
                        ).fetchall()
    assert len(held) <= 1
    rerun = open_oracle(path).create_trial("rescuer")
    if held:  # the trial it held when killed comes back with the same values
        assert rerun.trial_id == held[0][0]
        assert rerun.hyperparameters.values == json.loads(held[0][1])


def test_an_oracle_inherited_through_fork_reconnects(tmp_path):
    path = str(tmp_path / "fork.db")
    oracle = open_oracle(path, max_trials=20)
    held = oracle.create_trial("parent")  # the parent holds a trial and its liveness lock
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    child = ctx.Process(target=forked_child, args=(oracle, results))
    child.start()
    status, child_trial, child_pid = results.get(timeout=DEADLINE)
    child.join(DEADLINE)
    assert status == "ok", child_trial
    assert child_trial != held.trial_id and child_pid != os.getpid()
    # the parent's trial is still its own: the child neither took it nor reaped it
    assert oracle.create_trial("parent").trial_id == held.trial_id
    assert oracle.get_trial(held.trial_id).status == "RUNNING"
    other = open_oracle(path).create_trial("someone-else")
    assert other.trial_id not in (held.trial_id, child_trial)
    conn = sqlite3.connect(path)
    tuners = dict(conn.execute("SELECT r.trial_id, t.tuner_id FROM transitions t JOIN trials r "
                               "ON r.id = t.trial WHERE to_status = 'COMPLETED'"))
    assert tuners == {child_trial: "child"}


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_one_tuner_handed_to_three_processes_names_each_apart(tmp_path, method):
    """mp.Process(target=tuner.search) three times: each child is its own worker."""
    path = str(tmp_path / f"{method}.db")
    tuner = make_tuner(path, max_trials=30)
    ctx = mp.get_context(method)
    procs = [ctx.Process(target=tuner.search) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(DEADLINE * 2)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT status, tuner_id FROM trials").fetchall()
    assert len(rows) == 30 and {s for s, _ in rows} == {"COMPLETED"}
    workers = {t for _, t in rows}
    assert workers <= {f"worker-{p.pid}" for p in procs}
    assert tuner.tuner_id == f"worker-{os.getpid()}"  # the parent's own name is its own


# -- a worker stopped while it holds the oracle's lock -------------------------------------------
def test_a_stopped_lock_holder_makes_others_wait_only_the_timeout_and_is_named(tmp_path):
    path = str(tmp_path / "stopped.db")
    open_oracle(path, max_trials=50).close()
    waiter = open_oracle(path)
    inside = CTX.Event()
    holder = CTX.Process(target=stall_in_create_trial, args=(path, "frozen", inside), daemon=True)
    holder.start()
    try:
        assert inside.wait(DEADLINE)
        os.kill(holder.pid, signal.SIGSTOP)  # Ctrl-Z, a debugger: inside create_trial
        waiter.store.db.timeout = 1.0
        outcome: list[BaseException] = []

        def ask() -> None:
            try:
                waiter.create_trial("waiting")
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=ask, daemon=True)
        thread.start()
        thread.join(DEADLINE)  # without a bound on the wait, it never returns
        assert not thread.is_alive(), "create_trial waited for a stopped process for ever"
        [error] = outcome
        assert isinstance(error, hpstore.LockTimeoutError), repr(error)
        text = str(error)
        assert str(holder.pid) in text and "'frozen'" in text and "stopped" in text
        assert f"kill -CONT {holder.pid}" in text
        # resumed, the lock is free again for whoever asks
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        os.kill(holder.pid, signal.SIGCONT)
        holder.join(DEADLINE)
    waiter.store.db.timeout = 60.0
    assert waiter.create_trial("waiting").status == "RUNNING"
    assert sqlite3.connect(path).execute("SELECT count(*) FROM trials WHERE tuner_id = 'frozen'"
                                         ).fetchone() == (0,)


def test_a_lock_holder_thinking_longer_than_the_timeout_is_waited_for(tmp_path):
    # an oracle deciding for long (alive, working) made every worker queued behind it fail
    # with LockTimeoutError once the wait passed the timeout: with 3 workers, a decision
    # of 35 s killed one
    path = str(tmp_path / "thinking.db")
    open_oracle(path, max_trials=50).close()
    waiter = open_oracle(path)
    waiter.store.db.timeout = 0.5
    inside, release = CTX.Event(), CTX.Event()
    holder = CTX.Process(target=think_in_create_trial, args=(path, "slow", inside, release),
                         daemon=True)
    holder.start()
    outcome: list[object] = []

    def ask() -> None:
        try:
            outcome.append(waiter.create_trial("waiting"))
        except BaseException as exc:
            outcome.append(exc)

    try:
        assert inside.wait(DEADLINE)
        thread = threading.Thread(target=ask, daemon=True)
        thread.start()
        thread.join(4 * waiter.store.db.timeout)  # (the wait must outlast the timeout)
        assert thread.is_alive() and outcome == [], outcome  # still waiting, not failed
        release.set()
        thread.join(DEADLINE)
        holder.join(DEADLINE)
    finally:
        release.set()
        if holder.is_alive():
            holder.kill()
    [trial] = outcome
    assert getattr(trial, "status", trial) == "RUNNING" and holder.exitcode == 0
    waiter.close()


def query(path: str, sql: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.parametrize("kind", ["random", "grid"])  # STOPPED at max_trials; IDLE, used up
def test_a_tuner_with_nothing_left_waits_for_other_processes_trials_and_takes_a_dead_ones(
        tmp_path, capsys, kind):
    # a Tuner returned "Search finished." (and a best trial) while another process still
    # ran a trial, and nobody took that trial over when its process died
    path = str(tmp_path / "shared.db")
    (grid_oracle(path) if kind == "grid" else open_oracle(path, max_trials=4)).close()
    inside = CTX.Event()
    other = CTX.Process(target=hold_a_trial, args=(path, "other", inside, kind), daemon=True)
    other.start()
    done: list[object] = []
    try:
        assert inside.wait(DEADLINE)
        oracle = grid_oracle(path) if kind == "grid" else open_oracle(path)
        tuner = hpstore.Tuner(oracle, run_trial=lambda t: 1.0, tuner_id="mine", verbose=1)

        def search() -> None:
            try:
                tuner.search()
                done.append("returned")
            except BaseException as exc:
                done.append(exc)

        thread = threading.Thread(target=search, daemon=True)
        thread.start()
        deadline = time.monotonic() + DEADLINE
        while query(path, "SELECT count(*) FROM trials WHERE status = 'COMPLETED'") != [(3,)]:
            assert thread.is_alive() and time.monotonic() < deadline, done
            time.sleep(0.02)  # polling the file, not waiting in place of a signal
        thread.join(1.0)
        assert thread.is_alive() and done == []  # waits: the other trial still runs
        os.kill(other.pid, signal.SIGKILL)
        thread.join(DEADLINE)
    finally:
        if other.is_alive():
            other.kill()
        other.join(DEADLINE)
    assert done == ["returned"]
    rows = query(path, "SELECT status, tuner_id FROM trials ORDER BY number")
    assert rows == [("COMPLETED", "mine")] * 4  # the dead worker's trial, run here
    out = capsys.readouterr()
    [(held,)] = query(path, "SELECT trial_id FROM trials WHERE number = 0")
    assert f"waiting for trial(s) {held} (other) running in other processes" in (
        out.out + out.err)
    oracle.close()


def search_returns(oracle: hpstore.Oracle) -> bool:
    """Whether a Tuner's search() on ``oracle`` returns (run in a thread: a search that
    waits for ever fails the test at the deadline instead of hanging it)."""
    done: list[object] = []
    thread = threading.Thread(target=lambda: done.append(hpstore.Tuner(
        oracle, run_trial=lambda t: 1.0, verbose=0).search()), daemon=True)
    thread.start()
    thread.join(DEADLINE)
    return not thread.is_alive() and done == [None]


@pytest.mark.parametrize("kind", ["random", "grid"])  # STOPPED at max_trials; IDLE, used up
def test_a_trial_left_running_by_this_process_is_not_waited_for(tmp_path, kind):
    # a trial started by hand in a notebook and never ended: waiting for it would never end
    # (a used-up grid answers IDLE while a trial runs, and was waited out for ever)
    path = str(tmp_path / "mine.db")
    oracle = grid_oracle(path) if kind == "grid" else open_oracle(path, max_trials=4)
    oracle.create_trial("by-hand")
    assert search_returns(oracle)
    assert query(path, "SELECT count(*) FROM trials WHERE status = 'COMPLETED'") == [(3,)]
    oracle.close()


# -- fork while another thread is inside create_trial --------------------------------------------
@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_children_forked_while_a_thread_runs_trials_all_finish(tmp_path):
    path = str(tmp_path / "forked.db")
    open_oracle(path, max_trials=100_000).close()
    status, reports, loop_errors = reported_by(fork_children_while_a_thread_runs_trials,
                                               path, 6)
    assert status == "ok", reports
    assert loop_errors == []
    assert sorted(r[0] for r in reports) == [f"child-{i}" for i in range(6)]
    assert [r[2] for r in reports] == [None] * 6
    ids = [t for r in reports for t in r[1]]
    assert len(ids) == len(set(ids)) == 18
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("SELECT count(*) FROM trials WHERE tuner_id LIKE 'child-%' AND status ="
                        " 'COMPLETED'").fetchone() == (18,)


def _create_and_die(path: str, when: str) -> None:
    """Start making a new search file, and be killed at ``when`` in the making."""
    import sqlite3 as sq

    from hpstore.store.sqlite import database

    real_connect = sq.connect

    def dying_connect(target: str, *args, **kwargs):
        conn = real_connect(target, *args, **kwargs)

        class Dying:  # wherever the new file is made, die in the making
            def execute(self, sql, *a):
                if when in sql:
                    os.kill(os.getpid(), signal.SIGKILL)
                return conn.execute(sql, *a)

            def executescript(self, sql):
                if when in sql:
                    os.kill(os.getpid(), signal.SIGKILL)
                return conn.executescript(sql)

            def __getattr__(self, name):
                return getattr(conn, name)

        return Dying()

    database.sqlite3.connect = dying_connect  # type: ignore[attr-defined]
    open_oracle(path, max_trials=5)


@pytest.mark.parametrize("when", ["journal_mode", "CREATE TABLE"])
def test_a_process_killed_while_making_a_new_file_leaves_nothing_half_made(tmp_path, when):
    """Killed while turning the new file to WAL or creating its tables: the search file's
    name never names a half-made file, and the next process makes it whole."""
    path = str(tmp_path / "new.db")
    proc = CTX.Process(target=_create_and_die, args=(path, when))
    proc.start()
    proc.join(DEADLINE)
    assert proc.exitcode == -signal.SIGKILL
    assert not os.path.exists(path + "-journal")
    assert not os.path.exists(path) or os.path.getsize(path) == 0  # nothing half made
    oracle = open_oracle(path, max_trials=5)  # the next one makes it whole
    assert oracle.create_trial("w").status == "RUNNING"
    oracle.close()
    assert not list((tmp_path / "new.db.hpstore").glob("creating-*"))
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


class _StopsOnItsFourthTrial(hpstore.Tuner):
    """A tuner whose run_trial finds, on trial 03, that nothing more can work."""

    def run_trial(self, trial, *args, **kwargs):
        if trial.trial_id == "03":
            raise hpstore.FatalError("the data set is missing: stop the search")
        return float(trial.hyperparameters["x"])


def test_a_fatal_error_in_one_worker_stops_every_worker_and_is_raised(tmp_path, capfd):
    hp = hpstore.HyperParameters()
    hp.Int("x", 0, 100)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=40, hyperparameters=hp, seed=5,
                                        database=str(tmp_path / "fatal.db"))
    tuner = _StopsOnItsFourthTrial(oracle, verbose=0)
    with pytest.raises(hpstore.FatalError, match="the data set is missing") as raised:
        tuner.search(workers=2)
    assert any("raised in the worker process" in note for note in raised.value.__notes__)
    statuses = [t.status for t in oracle.trials.values()]
    assert statuses.count("FAILED") == 1 and "RUNNING" not in statuses  # handed back
    err = capfd.readouterr().err
    assert "Traceback" not in err and "will run again" not in err  # no worker's own output
    oracle.close()


class _Scores(hpstore.Tuner):
    def run_trial(self, trial, *args, **kwargs):
        return float(trial.hyperparameters["x"])


def test_workers_open_the_file_their_parent_opened_after_it_changed_folder(tmp_path,
                                                                             monkeypatch):
    # a relative path, then a chdir before the search: the workers opened (and made)
    # the other folder's file and the search "finished" with nothing in its own
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    hp = hpstore.HyperParameters()
    hp.Int("x", 0, 100)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=6, hyperparameters=hp, seed=5,
                                        database="rel.db")
    tuner = _Scores(oracle, verbose=0)
    monkeypatch.chdir(second)
    tuner.search(workers=2)
    assert [t.status for t in oracle.trials.values()] == ["COMPLETED"] * 6
    assert not any(second.iterdir())
    oracle.close()


_SEARCH_SCRIPT = '''
import sys, time
import hpstore

class Slow(hpstore.Tuner):
    def run_trial(self, trial, *args, **kwargs):
        time.sleep(0.2)  # the work of a trial
        return float(trial.hyperparameters["x"])

if __name__ == "__main__":
    hp = hpstore.HyperParameters()
    hp.Int("x", 0, 1000)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=400, hyperparameters=hp, seed=5,
                                        database=sys.argv[1])
    Slow(oracle, verbose=0).search(workers=2)
'''


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_workers_stop_when_the_process_that_started_them_is_gone(tmp_path, how):
    # SIGTERM (timeout, kill, a scheduler) or SIGKILL never let the parent stop its workers:
    # they ran the rest of the search alone, unseen
    import subprocess
    import time

    script, path = tmp_path / "search.py", str(tmp_path / "s.db")
    script.write_text(_SEARCH_SCRIPT, encoding="utf-8")
    parent = subprocess.Popen([sys.executable, str(script), path])
    pids: set[int] = set()
    deadline = time.monotonic() + DEADLINE
    while len(pids) < 2 and time.monotonic() < deadline:  # both workers ran a trial
        if os.path.exists(path):  # (read-only: never made here before the search makes it)
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                                    timeout=30)) as look:
                pids = {p for (p,) in look.execute("SELECT DISTINCT pid FROM trials")}
            pids.discard(None)
        assert parent.poll() is None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    assert len(pids) == 2 and parent.pid not in pids
    parent.send_signal(how)
    parent.wait(DEADLINE)
    deadline = time.monotonic() + DEADLINE
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        threading.Event().wait(0.05)  # (polling the processes' end, which nothing signals)
    assert not any(_alive(p) for p in pids)
    ended = conn.execute("SELECT count(*) FROM trials WHERE status = 'COMPLETED'").fetchone()
    assert ended[0] < 400  # they stopped, not finished the search
    running = conn.execute("SELECT count(*) FROM trials WHERE status = 'RUNNING'").fetchone()
    conn.close()
    # each handed its trial back: none is left RUNNING for a dead worker
    assert running[0] == 0


def test_a_worker_that_closed_its_search_and_goes_on_keeps_its_trial(tmp_path):
    # Oracle.close ends the liveness session, and using the oracle again opens the search
    # again: the process lives, so its trial is not handed on, also by a worker that
    # looked at it while its session lived (and kept that file open for the next look)
    path = str(tmp_path / "closed.db")
    open_oracle(path, max_trials=50, seed=7).close()
    holding, looked, closed, go = CTX.Event(), CTX.Event(), CTX.Event(), CTX.Event()
    outcome = CTX.Queue()
    proc = CTX.Process(target=close_and_go_on,
                       args=(path, "a", holding, looked, closed, go, outcome), daemon=True)
    proc.start()
    try:
        assert holding.wait(DEADLINE)
        held = outcome.get(timeout=DEADLINE)
        with open_oracle(path) as other:
            first = other.create_trial("b")  # looks at "a", alive
            assert first.trial_id != held
            other.update_trial(first.trial_id, {"loss": 2.0})
            other.end_trial(first)
            looked.set()
            assert closed.wait(DEADLINE)
            second = other.create_trial("b")  # looks again: "a" closed, and lives
            assert second.trial_id != held
            go.set()
            assert outcome.get(timeout=DEADLINE) == "ended"
    finally:
        go.set()
        proc.join(DEADLINE)
    assert proc.exitcode == 0


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="lists /proc/self/fd")
def test_a_forked_child_keeps_no_descriptor_of_its_parents_lock_files(tmp_path):
    # A child's copy of a lock file's descriptor shares its parent's lock: kept, it would
    # hold a lock the parent took for as long as the child lives, after the parent died
    # (every writer of the file then waiting out its patience at each write)
    path = str(tmp_path / "forked.db")
    oracle = open_oracle(path, max_trials=50, seed=8)
    proc, held, _ = hold(path, "held")
    try:
        trial = oracle.create_trial("parent")  # the lock files, and a look at "held"
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        oracle.end_trial(trial)
        assert oracle.create_trial("parent").trial_id not in (held, trial.trial_id)
        ctx = mp.get_context("fork")
        results = ctx.Queue()
        child = ctx.Process(target=lock_files_open,
                            args=(os.path.realpath(path + ".hpstore"), results))
        child.start()
        assert results.get(timeout=DEADLINE) == []
        child.join(DEADLINE)
        assert child.exitcode == 0
    finally:
        _kill(proc)
        oracle.close()


def test_a_lock_holder_named_from_another_pid_namespace_is_not_taken_for_a_live_one(tmp_path):
    # two containers sharing the folder each run their Python as pid 1: a waiter read the
    # other's stopped holder as its own live pid 1 and would have waited for ever
    from hpstore.store.sqlite.locks import _PID_SPACE, FileMutex

    mutex = FileMutex(tmp_path / "oracle.lock", patient=True)
    fd = os.open(tmp_path / "oracle.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{os.getpid()}{_PID_SPACE} here".encode())
        assert mutex._holder_state(fd) == "running"
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}/1 elsewhere".encode(), 0)
        assert mutex._holder_state(fd) == "unknown"  # so the wait ends at the timeout
    finally:
        os.close(fd)


@pytest.mark.parametrize("into", ["file", "memory"])
def test_a_running_trial_no_worker_stands_behind_is_not_waited_for(tmp_path, into):
    # a running trial loaded by set_state from (or into) an in-memory search has no live
    # worker behind it that could ever end it: the Tuner waited for it for ever
    source = open_oracle(None if into == "file" else str(tmp_path / "from.db"), max_trials=3)
    source.create_trial("elsewhere")
    target = open_oracle(str(tmp_path / "to.db") if into == "file" else None, max_trials=3)
    target.set_state(source.get_state())
    assert [t.status for t in target.trials.values()] == ["RUNNING"]
    assert search_returns(target)
    assert target.running_elsewhere() == []
