"""Faults around the search file: the log and the lock files lost or left over from a crash,
a long reader beside four writers, descriptors and locks while files open and close. Real
processes, real SIGKILL. Liveness files of ended workers: test_liveness_files.py; a full
disk and read-only parts of a search: test_faults_disk.py; the log folded in as a script
ends: test_script_end.py.
"""

from __future__ import annotations

import gc
import json
import os
import select
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _faults import (
    CTX,
    assert_finished,
    complete_one,
    complete_some,
    complete_until_killed,
    die_holding_every_lock,
    digest,
    finish,
    hold_a_snapshot,
    integrity,
    kill,
    look_then_write,
    query,
    run_child,
    run_trials_tool,
    size,
)
from _workers import DEADLINE, hold, open_new_file, open_oracle, run_together, run_worker

from hpstore.cli import main as hpstore_main
from hpstore.store.sqlite.database import AUTOCHECKPOINT_PAGES, SCHEMA_VERSION

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX: SIGKILL, flock"),
]

FRAME = 1024 + 24  # one page in the write-ahead log: hpstore's page size and a frame header
AUTOCHECKPOINT = AUTOCHECKPOINT_PAGES  # pages in the log before a commit checkpoints


# -- helpers --------------------------------------------------------------------------------------
def status_log(path: str, trial_id: str) -> list[tuple[Any, ...]]:
    return query(path, "SELECT from_status, to_status, tuner_id FROM status_log "
                       "WHERE trial_id = ? ORDER BY at_unix", (trial_id,))


# -- 1. the log and the lock files, deleted or left over ------------------------------------------
@pytest.mark.parametrize("deleted", [("-wal",), ("-wal", "-shm")])
def test_deleting_the_log_after_kill_9_keeps_the_file_as_last_checkpointed(tmp_path, deleted):
    """Deleting the log throws away the commits it held (SQLite's design); what hpstore can
    keep is a file that opens, is whole, holds everything checkpointed, and resumes."""
    path = str(tmp_path / "lost.db")
    with open_oracle(path, max_trials=10_000, seed=5) as oracle:
        kept = [complete_one(oracle, "early") for _ in range(5)]
    assert not os.path.exists(path + "-wal")  # the last close checkpointed everything
    started, progress = CTX.Event(), CTX.Queue()
    # The doomed worker never checkpoints: one killed half-way through a checkpoint leaves
    # the main file half-updated, and without its log that is a damaged file by design.
    proc = CTX.Process(target=complete_until_killed, args=(path, "doomed", 0, started, progress),
                       daemon=True)
    proc.start()
    assert started.wait(DEADLINE)
    for _ in range(10):  # it is writing now
        progress.get(timeout=DEADLINE)
    kill(proc)
    assert size(path + "-wal") > 0
    for suffix in deleted:
        os.remove(path + suffix)
    with open_oracle(path, max_trials=30) as oracle:  # hpstore is the first to open it
        assert list(oracle.trials) == [trial_id for trial_id, _ in kept]
        for trial_id, score in kept:
            assert oracle.get_trial(trial_id).score == score
    assert integrity(path) == [("ok",)]
    finish(path, 30)
    assert_finished(path, 30)


def test_a_log_left_by_kill_9_gives_back_every_commit(tmp_path, capsys):
    path = str(tmp_path / "hot.db")
    open_oracle(path, max_trials=10_000, seed=6).close()
    progress = CTX.Queue()
    started = [CTX.Event(), CTX.Event()]
    # checkpoints every 20 pages, so a kill often lands in the middle of one
    procs = [CTX.Process(target=complete_until_killed,
                         args=(path, f"w{i}", 20, started[i], progress), daemon=True)
             for i in range(2)]
    for proc in procs:
        proc.start()
    assert all(event.wait(DEADLINE) for event in started)
    reported = [progress.get(timeout=DEADLINE) for _ in range(40)]
    for proc in procs:
        kill(proc)
    while not progress.empty():
        reported.append(progress.get_nowait())
    assert size(path + "-wal") > 0  # a hot log: nobody has opened the file since
    before = (digest(path), digest(path + "-wal"))
    # the read-only tool reads through the hot log and folds nothing into the file
    assert hpstore_main(["trials", path, "--format", "json"]) == 0
    listed = {row["trial_id"]: row for row in json.loads(capsys.readouterr().out)}
    for trial_id, score in reported:
        assert (listed[trial_id]["status"], listed[trial_id]["score"]) == ("COMPLETED", score)
    assert (digest(path), digest(path + "-wal")) == before
    running = [t for t, row in listed.items() if row["status"] == "RUNNING"]
    assert len(running) <= 2  # at most one per killed worker
    total = len(listed) + 5
    with open_oracle(path, max_trials=total) as oracle:
        for trial_id, score in reported:
            trial = oracle.get_trial(trial_id)
            assert (trial.status, trial.score) == ("COMPLETED", score)
        while complete_one(oracle, "rescuer") is not None:
            pass
    assert_finished(path, total)
    for trial_id in running:  # handed back as interrupted, then run again
        # (once, or twice: the worker killed a moment after the first may have handed
        # back and taken the first one's trial in between)
        log = [(a, b) for a, b, _ in status_log(path, trial_id)]
        handed = (len(log) - 2) // 2
        assert handed in (1, 2) and log == [
            (None, "RUNNING"), *[("RUNNING", "IDLE"), ("IDLE", "RUNNING")] * handed,
            ("RUNNING", "COMPLETED")]


def test_a_sidecar_folder_deleted_while_nobody_runs_is_made_again(tmp_path):
    path = str(tmp_path / "side.db")
    open_oracle(path, max_trials=50, seed=7).close()
    proc, held, values = hold(path, "doomed")
    kill(proc)
    sidecar = Path(path + ".hpstore")
    shutil.rmtree(sidecar)
    with open_oracle(path, max_trials=12) as oracle:
        again = oracle.create_trial("rescuer")  # the dead worker's trial, found without its files
        assert (again.trial_id, again.hyperparameters.values) == (held, values)
        oracle.update_trial(held, {"loss": 1.0})
        again.status = "COMPLETED"
        oracle.end_trial(again)
        assert (sidecar / "oracle.lock").exists()
    finish(path, 12)
    assert_finished(path, 12)


def test_a_sidecar_folder_deleted_under_a_live_worker_keeps_its_trial(tmp_path):
    path = str(tmp_path / "side.db")
    open_oracle(path, max_trials=50, seed=7).close()
    proc, held, _ = hold(path, "alive")
    try:
        shutil.rmtree(path + ".hpstore")
        with open_oracle(path) as oracle:
            other = oracle.create_trial("other")
            assert other.trial_id != held
            assert oracle.get_trial(held).status == "RUNNING"
    finally:
        kill(proc)


def test_locks_left_by_a_killed_process_hold_nobody_up(tmp_path):
    path, fresh = str(tmp_path / "stale.db"), str(tmp_path / "fresh.db")
    open_oracle(path, max_trials=20, seed=8).close()
    holding, info = CTX.Event(), CTX.Queue()
    proc = CTX.Process(target=die_holding_every_lock, args=(path, fresh, holding, info),
                       daemon=True)
    proc.start()
    assert holding.wait(DEADLINE)
    held, token, _ = info.get(timeout=DEADLINE)
    kill(proc)
    alive = Path(path + ".hpstore") / f"worker-{token}.alive"
    assert alive.exists() and Path(path + ".hpstore/oracle.lock").exists()
    assert Path(fresh + ".hpstore/schema.lock").exists()
    # a new worker on the search and a new process creating the other file: neither waits
    start, worked, opened = CTX.Event(), CTX.Queue(), CTX.Queue()
    procs = [CTX.Process(target=run_worker, args=(path, "rescuer", 20, start, worked)),
             CTX.Process(target=open_new_file, args=(fresh, start, opened))]
    for p in procs:
        p.start()
    start.set()
    _, done, error = worked.get(timeout=DEADLINE)
    assert error is None
    assert opened.get(timeout=DEADLINE) == ("ok", SCHEMA_VERSION)
    for p in procs:
        p.join(DEADLINE)
        assert p.exitcode == 0
    assert held in [trial_id for trial_id, _ in done]  # the dead worker's trial, run again
    assert status_log(path, held) == [(None, "RUNNING", "doomed"), ("RUNNING", "IDLE", "doomed"),
                                      ("IDLE", "RUNNING", "rescuer"),
                                      ("RUNNING", "COMPLETED", "rescuer")]
    assert not alive.exists()  # the dead worker's liveness file was tidied away
    assert_finished(path, 20)


# -- 2. a long reader beside four writers ---------------------------------------------------------
SEARCH = AUTOCHECKPOINT // 12  # trials: enough pages (about 17 a trial) to pass a checkpoint


class ModuleReader:
    """Python's sqlite3 holding ``BEGIN; SELECT ...`` open."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("BEGIN")

    def count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM trials").fetchone()[0]

    def release(self) -> int:
        self.conn.execute("COMMIT")
        count = self.count()
        self.conn.close()
        return count


class ShellReader:
    """The sqlite3 shell holding ``BEGIN; SELECT count(*) FROM trials;`` open on stdin."""

    def __init__(self, path: str) -> None:
        self.proc = subprocess.Popen(["sqlite3", path], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)
        self._send("BEGIN;")

    def _send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def count(self) -> int:
        assert self.proc.stdout is not None
        self._send("SELECT count(*) FROM trials;")
        ready, _, _ = select.select([self.proc.stdout], [], [], DEADLINE)
        assert ready, "the sqlite3 shell did not answer"
        return int(self.proc.stdout.readline())

    def release(self) -> int:
        self._send("COMMIT;")
        count = self.count()
        self._send(".quit")
        _, err = self.proc.communicate(timeout=DEADLINE)
        assert (self.proc.returncode, err) == (0, "")
        return count


def _search(path: str) -> tuple[list[str], list[Any]]:
    """Four writer processes run the search to SEARCH trials: (errors, trials done)."""
    reports = run_together(run_worker, [(path, f"w{i}", SEARCH) for i in range(4)])
    return [r[2] for r in reports if r[2]], [t for r in reports for t in r[1]]


@pytest.mark.parametrize("reader", ["sqlite3 module", "hpstore inspection", "sqlite3 shell"])
def test_writers_finish_beside_a_reader_holding_a_snapshot(tmp_path, reader):
    if reader == "sqlite3 shell" and shutil.which("sqlite3") is None:
        pytest.skip("no sqlite3 shell installed")
    path = str(tmp_path / "read.db")
    open_oracle(path, max_trials=SEARCH, seed=9).close()
    if reader == "hpstore inspection":
        # one process holds a snapshot through hpstore.inspection, another runs
        # `hpstore trials` again and again while the search writes
        stop = CTX.Event()
        ready = [CTX.Event(), CTX.Event()]
        held_out, tool_out = CTX.Queue(), CTX.Queue()
        children = [CTX.Process(target=hold_a_snapshot, args=(path, ready[0], stop, held_out)),
                    CTX.Process(target=run_trials_tool, args=(path, ready[1], stop, tool_out))]
        for child in children:
            child.start()
        assert all(event.wait(DEADLINE) for event in ready)
    else:
        held = ModuleReader(path) if reader == "sqlite3 module" else ShellReader(path)
        at_start = held.count()
    errors, done = _search(path)
    log_while_held = size(path + "-wal")
    if reader == "hpstore inspection":
        stop.set()
        report = held_out.get(timeout=DEADLINE)
        runs, problems = tool_out.get(timeout=DEADLINE)
        for child in children:
            child.join(DEADLINE)
        assert "crash" not in report, report["crash"]
        assert problems == []
        # each run of the tool saw one consistent snapshot, the last one every trial
        assert runs == sorted(runs) and runs[-1] == SEARCH
        at_start, during, after = report["at_start"], report["held"], report["after"]
    else:
        during = held.count()
        after = held.release()
    assert errors == []
    assert len(done) == SEARCH
    # the reader kept its snapshot to the end, then saw every trial
    assert (at_start, during, after) == (0, 0, SEARCH)
    # the log could not be recycled under the snapshot, so it grew past the checkpoint size
    assert log_while_held > AUTOCHECKPOINT * FRAME
    # once the reader lets go, hpstore's own commits fold the log in and start it afresh
    with open_oracle(path, max_trials=SEARCH + 2) as oracle:
        for _ in range(2):
            complete_one(oracle, "after")
        busy, frames, _ = query(path, "PRAGMA wal_checkpoint(PASSIVE)")[0]
        assert busy == 0 and frames < AUTOCHECKPOINT
    assert not os.path.exists(path + "-wal")  # and the last to close removed it
    assert_finished(path, SEARCH + 2)


@pytest.mark.parametrize("look", ["connect_readonly", "second Oracle"])
def test_a_worker_looking_at_its_own_file_loses_nothing(tmp_path, look):
    path = str(tmp_path / "look.db")
    open_oracle(path, max_trials=100, seed=12).close()
    looked, go, close, results = CTX.Event(), CTX.Event(), CTX.Event(), CTX.Queue()
    looker = CTX.Process(target=look_then_write, args=(path, look, looked, go, close, results))
    looker.start()
    try:
        assert looked.wait(DEADLINE)
        finished = run_child(complete_some, path, "finisher", 1)  # closes while the looker runs
        log_kept = os.path.exists(path + "-wal")  # the looker is still connected
        go.set()
        looking = results.get(timeout=DEADLINE)
        newcomer = run_child(complete_some, path, "newcomer", 3)
    finally:
        go.set()
        close.set()
        looker.join(DEADLINE)
    reports = [finished, looking, newcomer]
    assert [error for _, _, error in reports] == [None, None, None]
    assert integrity(path) == [("ok",)]
    stored = {t: (tuner, score) for t, tuner, score in query(
        path, "SELECT trial_id, tuner_id, score FROM trials WHERE status = 'COMPLETED'")}
    reported = [(t, tuner, score) for tuner, done, _ in reports for t, score in done]
    # no two workers were handed the same trial, and each trial is in the file as its
    # worker completed it
    assert sorted(t for t, _, _ in reported) == sorted({t for t, _, _ in reported})
    assert stored == {t: (tuner, score) for t, tuner, score in reported}
    assert log_kept


def test_the_oracle_mutex_follows_its_file_when_the_file_is_deleted(tmp_path):
    from hpstore.store.sqlite.locks import FileMutex, _try_lock

    path = tmp_path / "side.db.hpstore" / "oracle.lock"
    path.parent.mkdir()
    mutex = FileMutex(path)
    with mutex:
        pass
    shutil.rmtree(path.parent)  # deleted between two create_trial calls
    with mutex:
        assert path.exists()  # made again, and it is the file that is locked
        fd = os.open(path, os.O_RDWR)
        try:
            assert not _try_lock(fd)  # another opener (another process) is kept out
        finally:
            os.close(fd)
    fd = os.open(path, os.O_RDWR)
    try:
        assert _try_lock(fd)  # and let in once the mutex is released
    finally:
        os.close(fd)
        mutex.close()


def test_a_lock_folder_deleted_while_a_worker_decides_never_gives_one_number_twice(tmp_path):
    # A worker decides under the decision lock; the lock folder is deleted by hand; another
    # worker then locks a new file and records a trial meanwhile. The first must decide
    # again on the facts as they now are, not stop on SQLite's UNIQUE constraint with the
    # number the other took.
    from _workers import PausedOracle, decide_paused, space

    path = str(tmp_path / "side.db")
    PausedOracle(objective="loss", hyperparameters=space(), database=path,
                 max_trials=50, seed=7).close()
    deciding, go, results = CTX.Event(), CTX.Event(), CTX.Queue()
    proc = CTX.Process(target=decide_paused, args=(path, deciding, go, results), daemon=True)
    proc.start()
    try:
        assert deciding.wait(DEADLINE)
        shutil.rmtree(path + ".hpstore")
        with PausedOracle(objective="loss", hyperparameters=space(), database=path) as other:
            done = complete_one(other, "other")
        assert done is not None
        go.set()
        outcome = results.get(timeout=DEADLINE)
    finally:
        go.set()
        proc.join(DEADLINE)
    assert outcome[0] == "ok", outcome
    assert outcome[1] != done[0]
    assert integrity(path) == [("ok",)]
    assert query(path, "SELECT count(*), count(DISTINCT number), count(DISTINCT values_key), "
                 "sum(status = 'COMPLETED') FROM trials") == [(2, 2, 2, 2)]


def test_a_lock_folder_deleted_as_a_lock_or_liveness_file_is_made_is_made_again(
        tmp_path, monkeypatch):
    # the folder deleted by hand in the instant between making it and opening a file in it
    from hpstore.store.sqlite import files, locks

    folder = tmp_path / "side.db.hpstore"
    opened = files.open_lock_file
    deleted = []

    def delete_first(path: Path, **kwargs: Any) -> int:
        kind = path.name.split("-")[0]  # (oracle.lock, or worker-<token>.alive)
        if kind not in deleted:  # once for each kind of file
            deleted.append(kind)
            shutil.rmtree(folder)
        return opened(path, **kwargs)

    monkeypatch.setattr(locks, "open_lock_file", delete_first)
    folder.mkdir()
    mutex = locks.FileMutex(folder / "oracle.lock")
    with mutex:
        assert (folder / "oracle.lock").exists()
    mutex.close()
    session = locks.Session.start(folder)
    try:
        assert locks.Session.probe(folder, session.token, tidy=False)
        assert (folder / f"worker-{session.token}.alive").exists()
    finally:
        session.end()
    assert deleted == ["oracle.lock", "worker"]


def test_a_lock_folder_deleted_while_a_new_file_is_built_in_it_is_made_again(
        tmp_path, monkeypatch):
    # a new file is built in the lock folder, then linked into place: the folder deleted
    # by hand as the first build goes on (a clean-up script) means building it again, not
    # a "disk I/O error" that blames the disk
    from hpstore.store.sqlite.database import Database

    path = tmp_path / "new.db"
    migrate = Database._migrate
    deleted = []

    def delete_first(self: Database, conn: Any, new: bool = False) -> None:
        if new and not deleted:
            deleted.append(True)
            shutil.rmtree(path.with_name("new.db.hpstore"))
        migrate(self, conn, new)

    monkeypatch.setattr(Database, "_migrate", delete_first)
    with open_oracle(str(path), max_trials=3, seed=1) as oracle:
        assert complete_one(oracle, "w") is not None
    assert deleted == [True]
    assert integrity(str(path)) == [("ok",)]
    assert query(str(path), "SELECT count(*) FROM trials WHERE status = 'COMPLETED'") == [(1,)]
    assert not list(path.with_name("new.db.hpstore").glob("creating-*"))


def test_a_project_created_by_another_process_since_the_look_is_resumed(tmp_path,
                                                                          monkeypatch):
    # Two processes open one new project as the lock folder is deleted: each holds a lock
    # on its own file, both find no project, and the second to insert it stopped with
    # "UNIQUE constraint failed: projects.name". It resumes the other's instead.
    from hpstore.store.sqlite.store import SQLiteStore

    path = str(tmp_path / "p.db")
    with open_oracle(path, max_trials=7, seed=11) as first:  # the other process's project
        assert complete_one(first, "first") is not None
    looks = []
    find = SQLiteStore.find_project

    def missed_once(self: SQLiteStore, name: str) -> Any:
        looks.append(name)
        return None if len(looks) == 1 else find(self, name)  # its look came too early

    monkeypatch.setattr(SQLiteStore, "find_project", missed_once)
    with open_oracle(path) as second:  # seed and max_trials left to the stored ones
        assert (second.seed, second.max_trials) == (11, 7)
        assert complete_one(second, "second") is not None
    assert len(looks) == 2
    assert query(path, "SELECT count(*) FROM projects") == [(1,)]
    assert query(path, "SELECT count(*) FROM trials WHERE status = 'COMPLETED'") == [(2,)]


def test_the_log_shrinks_back_once_a_long_reader_lets_go(tmp_path):
    from _store import run_n

    from hpstore.store.sqlite.database import AUTOCHECKPOINT_PAGES, WAL_SIZE_LIMIT

    # enough trials (a trial writes at least 14 pages) to grow the log past twice its limit
    trials = AUTOCHECKPOINT_PAGES * 3 // 14
    path = str(tmp_path / "grown.db")
    open_oracle(path, max_trials=trials, seed=5).close()
    with open_oracle(path, max_trials=trials) as oracle:  # a worker that stays, as in a search
        held = ModuleReader(path)
        assert held.count() == 0  # its snapshot starts here
        _, done, error, message = run_child(run_n, path, "w", trials)
        assert (len(done), error) == (trials, None), message
        # the log could not be recycled under the snapshot
        assert size(path + "-wal") > 2 * WAL_SIZE_LIMIT
        held.conn.execute("COMMIT")  # the reader lets go, and stays connected
        oracle.store.db.query("SELECT 1")  # (the worker's own view moves on too)
        with open_oracle(path, max_trials=trials + 5) as more:
            for _ in range(5):
                complete_one(more, "after")
            # the next checkpoints folded the log in, and it was cut back
            assert 0 < size(path + "-wal") <= WAL_SIZE_LIMIT
        held.conn.close()
    assert_finished(path, trials + 5)


def test_check_says_when_a_long_reader_keeps_the_log_growing(tmp_path):
    from _store import run_n

    from hpstore.store.sqlite.database import WAL_SIZE_LIMIT

    trials = AUTOCHECKPOINT_PAGES * 3 // 14  # (as above: the log grows past twice its limit)
    path = str(tmp_path / "held.db")
    open_oracle(path, max_trials=trials, seed=5).close()

    def check() -> str:
        done = subprocess.run([sys.executable, "-m", "hpstore", "check", path],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr  # no damage: a warning
        return done.stdout

    with open_oracle(path, max_trials=trials) as oracle:  # a worker that stays
        assert "log:" not in check()
        held = ModuleReader(path)  # a DB browser with a transaction left open
        assert held.count() == 0
        _, done, error, message = run_child(run_n, path, "w", trials)
        assert (len(done), error) == (trials, None), message
        assert size(path + "-wal") > 2 * WAL_SIZE_LIMIT
        said = check()
        assert "log: " in said and "a reader has held one snapshot" in said, said
        held.conn.execute("COMMIT")
        held.conn.close()
        oracle.store.db.query("SELECT 1")
        with open_oracle(path, max_trials=trials + 5) as more:
            for _ in range(5):
                complete_one(more, "after")
            assert "log:" not in check()  # cut back once the reader let go


# -- 3. descriptors: none kept after close, and no lock of this process dropped -------------------
def open_descriptors() -> int:
    # searches other tests dropped unclosed close when collected, and the header
    # descriptors of their files go at the next sweep: do both first, so only what the
    # test itself leaves open is counted
    from hpstore.store.sqlite import files

    gc.collect()
    files.release_descriptors()
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_opening_and_closing_searches_leaks_no_descriptor(tmp_path):
    from hpstore.store.sqlite.readonly import connect_readonly

    path = str(tmp_path / "fds.db")
    with open_oracle(path, max_trials=10_000, seed=1) as oracle:
        complete_one(oracle, "w")
    before = open_descriptors()
    for _ in range(300):
        with open_oracle(path) as oracle:
            oracle.create_trial("w")  # the oracle's lock, the liveness file
        connect_readonly(path).close()
    # the trial left running is still the process's own (its liveness file kept open)
    # until the process's next oracle ends it
    assert open_descriptors() - before == 1
    with open_oracle(path) as oracle:
        assert complete_one(oracle, "w") is not None
    assert open_descriptors() == before
    for i in range(30):  # a file deleted and made again: a new file each time
        for name in os.listdir(tmp_path):
            shutil.rmtree(tmp_path / name) if os.path.isdir(tmp_path / name) else os.remove(
                tmp_path / name)
        with open_oracle(path, max_trials=5, seed=i) as oracle:
            complete_one(oracle, "w")
        connect_readonly(path).close()
    assert open_descriptors() == before


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_a_search_that_looked_at_a_live_worker_keeps_no_descriptor_once_closed(tmp_path):
    # a look at another worker's liveness file keeps its descriptor open for the next look;
    # closing the search closes it, and the worker is still seen alive until it dies
    path = str(tmp_path / "watched.db")
    open_oracle(path, max_trials=50, seed=3).close()
    proc, held, _ = hold(path, "held")
    before = open_descriptors()  # (with the pipes to the worker)
    try:
        oracle = open_oracle(path)
        for _ in range(2):  # the second look goes through the kept descriptor
            assert complete_one(oracle, "w") is not None
        assert status_log(path, held) == [(None, "RUNNING", "held")]
        oracle.close()
        assert open_descriptors() == before
        kill(proc)
        with open_oracle(path) as oracle:
            assert oracle.create_trial("w").trial_id == held  # dead: its trial runs again
    finally:
        if proc.is_alive():
            kill(proc)


def test_a_descriptor_kept_for_a_look_is_never_written_over():
    # two threads looking at the same live worker for the first time at once each open its
    # file; the second to keep one must close its own, or it stays open for good
    from hpstore.store.sqlite.locks import _Watched

    watched = _Watched(limit=4)
    first, second = os.open(os.devnull, os.O_RDONLY), os.open(os.devnull, os.O_RDONLY)
    with watched.lock:
        watched.keep((Path("x"), "t"), first)
        watched.keep((Path("x"), "t"), second)
    with pytest.raises(OSError):
        os.fstat(second)  # closed
    os.fstat(first)  # the one kept
    watched.close()
    with pytest.raises(OSError):
        os.fstat(first)


def _lock_holder(path: str) -> int:
    """The pid another process sees holding SQLite's shared lock on ``path`` (0: none)."""
    code = ("import fcntl, os, struct, sys\n"
            "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
            "q = struct.pack('hhqqi', fcntl.F_WRLCK, 0, 0x40000000, 512, 0)\n"
            "t, _, _, _, pid = struct.unpack('hhqqi', fcntl.fcntl(fd, fcntl.F_GETLK, q))\n"
            "print(0 if t == fcntl.F_UNLCK else pid)\n")
    done = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True,
                          timeout=DEADLINE, check=True)
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="F_GETLK's Linux layout")
def test_reading_the_header_while_connected_drops_no_lock(tmp_path):
    # Closing any descriptor of a file drops every POSIX lock the process holds on it; the
    # header reads of the read-only tools and of a second Oracle must not.
    from hpstore.store.sqlite.database import _inspect_header
    from hpstore.store.sqlite.readonly import connect_readonly

    path = str(tmp_path / "held.db")
    oracle = open_oracle(path, max_trials=50, seed=2)
    complete_one(oracle, "w")
    assert _lock_holder(path) == os.getpid()
    connect_readonly(path).close()
    _inspect_header(Path(path))
    open_oracle(path, project_name="another", max_trials=2).close()
    assert _lock_holder(path) == os.getpid()  # SQLite's shared lock is still held
    complete_one(oracle, "w")
    oracle.close()
    assert _lock_holder(path) == 0
