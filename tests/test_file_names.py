"""One search file and its names: two names (hard links), a file moved, deleted or replaced
while processes use it, a log left beside a name whose file is gone."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from _faults import complete_one
from _store import (
    complete_until_stopped,
    run_n,
    run_one,
)
from _workers import (
    DEADLINE,
    end_trials,
    hold,
    hold_until_released,
    open_oracle,
)

import hpstore
from hpstore.store.sqlite import closing

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX"),
]

CTX = mp.get_context("spawn")


def _kill(proc):
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(DEADLINE)
    assert proc.exitcode == -signal.SIGKILL


# -- one file under two names ---------------------------------------------------------------------
def test_workers_on_two_names_of_one_file_never_share_it(tmp_path):
    # A worker runs on a.db; a hard link b.db is made; a second worker is started on b.db.
    # It must be refused (it would keep its own log and locks), and the first worker's
    # search stays whole, every trial run once.
    path, link = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    open_oracle(path, max_trials=100_000, seed=3).close()
    start, progress, results, second = CTX.Event(), CTX.Queue(), CTX.Queue(), CTX.Queue()
    first = CTX.Process(target=complete_until_stopped,
                        args=(path, "on-a", start, progress, results), daemon=True)
    other = CTX.Process(target=run_n, args=(link, "on-b", 100_000, second), daemon=True)
    try:
        first.start()
        start.set()
        progress.get(timeout=DEADLINE)  # it is writing
        os.link(path, link)
        other.start()
        _, done, error, message = second.get(timeout=DEADLINE)
        assert (done, error) == ([], "FileIdentityError") and "2 names" in message, message
    finally:
        for proc in (first, other):
            if proc.pid is not None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.join(DEADLINE)
    os.remove(link)  # one name again: the search resumes and finishes
    conn = sqlite3.connect(path)
    total = conn.execute("SELECT count(*) FROM trials").fetchone()[0] + 5
    finisher = CTX.Queue()
    proc = CTX.Process(target=run_n, args=(path, "finisher", total, finisher))
    proc.start()
    _, _, error, message = finisher.get(timeout=DEADLINE)
    proc.join(DEADLINE)
    assert error is None, message
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # every trial ran once, but the one the killed worker held, which ran again
    assert conn.execute("SELECT count(*), count(DISTINCT values_key), sum(status = 'COMPLETED')"
                        " FROM trials").fetchone() == (total, total, total)
    assert conn.execute("SELECT count(*) FROM trials WHERE run_count > 1").fetchone()[0] <= 1


# -- a file moved while workers write -------------------------------------------------------------
def test_workers_stop_when_their_file_is_moved_and_the_file_stays_whole(tmp_path):
    path, moved = tmp_path / "search.db", tmp_path / "other.db"
    open_oracle(str(path), max_trials=100_000, seed=4).close()
    start, progress, results, early = CTX.Event(), CTX.Queue(), CTX.Queue(), CTX.Queue()
    procs = [CTX.Process(target=complete_until_stopped, daemon=True,
                         args=(str(path), f"w{i}", start, progress, results)) for i in range(3)]
    # a process opening the new name while the old one's writers live is refused: their
    # latest commits are still in the log beside the old name
    opener = CTX.Process(target=run_one, args=(str(moved), "too-early", early), daemon=True)
    try:
        for proc in procs:
            proc.start()
        start.set()
        reported, seen = [], set()
        while seen != {"w0", "w1", "w2"}:  # every worker is writing
            reported.append(progress.get(timeout=DEADLINE))
            seen.add(reported[-1][0])
        os.rename(path, moved)
        opener.start()
        stops = [results.get(timeout=DEADLINE) for _ in procs]
        for proc in procs:
            proc.join(DEADLINE)
        while not progress.empty():
            reported.append(progress.get_nowait())
        _, _, early_error, early_message = early.get(timeout=DEADLINE)
        opener.join(DEADLINE)
    finally:
        for proc in [*procs, opener]:
            if proc.pid is not None and proc.exitcode is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.join(DEADLINE)
    # each worker stopped with a clear error before writing to the moved file again
    assert [(t, kind) for t, kind, _ in sorted(stops)] == [
        ("w0", "FileIdentityError"), ("w1", "FileIdentityError"), ("w2", "FileIdentityError")]
    assert all(str(path) in message and "moved" in message for _, _, message in stops)
    # the opener either came after the last writer closed (then it ran), or was refused
    assert early_error in (None, "FileIdentityError"), early_message
    # the moved file is whole and holds every trial a worker saw completed; nothing was
    # made again under the old name, and the old name's log and lock folder are gone
    conn = sqlite3.connect(moved)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    stored = dict(conn.execute("SELECT trial_id, score FROM trials WHERE status = 'COMPLETED'"))
    assert {t: s for _, t, s in reported} == {t: s for t, s in stored.items()
                                               if t in {t for _, t, _ in reported}}
    assert len({t for _, t, _ in reported}) == len(reported)
    assert conn.execute("SELECT count(*) = count(DISTINCT values_key) FROM trials"
                        ).fetchone() == (1,)
    conn.close()
    assert sorted(p.name for p in tmp_path.iterdir()
                  if not p.name.startswith("other.db")) == []
    # and the search goes on under its new name
    finish = CTX.Queue()
    proc = CTX.Process(target=run_n, args=(str(moved), "after", len(stored) + 5, finish))
    proc.start()
    _, done, error, message = finish.get(timeout=DEADLINE)
    proc.join(DEADLINE)
    assert error is None, message
    assert len(done) >= 5


def test_the_last_closer_of_a_moved_file_removes_the_old_lock_folder_if_its_log_is_gone(
        tmp_path):
    # Workers closing a moved file together: the one that folds and removes the old log
    # may find a peer's liveness file still locked and leave the folder; the peer, closing
    # just after, finds the log already gone and must still remove the folder.
    path, moved = tmp_path / "search.db", tmp_path / "other.db"
    with open_oracle(str(path), max_trials=5, seed=6) as oracle:
        trial = oracle.create_trial("t")
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        oracle.end_trial(trial)
    sidecar = tmp_path / "search.db.hpstore"
    assert sidecar.is_dir() and any(sidecar.iterdir())
    os.rename(path, moved)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db", "search.db.hpstore"]
    closing.remove_old_name(path, sidecar)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def test_a_moved_file_is_refused_under_its_new_name_while_the_old_one_is_open(tmp_path):
    path, moved = tmp_path / "search.db", tmp_path / "other.db"
    open_oracle(str(path), max_trials=50, seed=5).close()
    proc, _, _ = hold(str(path), "old-name")  # connected under the old name, idle
    try:
        os.rename(path, moved)
        with pytest.raises(hpstore.FileIdentityError, match="under another name"):
            open_oracle(str(moved))
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "other.db", "search.db-shm", "search.db-wal", "search.db.hpstore"]
    finally:
        _kill(proc)
    with open_oracle(str(moved)) as oracle:  # nobody has the old name open any more
        assert oracle.create_trial("new-name").status == "RUNNING"
    assert sqlite3.connect(moved).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_file_mounted_under_another_name_while_open_is_refused_saying_so(tmp_path):
    # one file, two names that no hard link explains: a bind mount of the file alone
    path, other = tmp_path / "search.db", tmp_path / "mounted.db"
    open_oracle(str(path), max_trials=50, seed=7).close()
    other.touch()
    mounted = subprocess.run(["mount", "--bind", str(path), str(other)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {mounted.stderr.strip()}")
    proc = None
    try:
        proc, _, _ = hold(str(path), "first-name")  # connected under the first name
        with pytest.raises(hpstore.FileIdentityError, match="mount --bind"):
            open_oracle(str(other))
    finally:
        if proc is not None:
            _kill(proc)
        subprocess.run(["umount", str(other)], check=True)
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def _holder(path: Path):
    """A live process holding a trial of ``path`` until released: (process, release, outcome)."""
    holding, release, outcome = CTX.Event(), CTX.Event(), CTX.Queue()
    proc = CTX.Process(target=hold_until_released,
                       args=(str(path), "old-name", holding, release, outcome), daemon=True)
    proc.start()
    assert holding.wait(DEADLINE)
    return proc, release, outcome


def _ended(proc, release, outcome) -> str:
    release.set()
    said = outcome.get(timeout=DEADLINE)
    proc.join(DEADLINE)
    return said


@pytest.mark.parametrize("how", ["deleted", "moved"])
def test_no_new_file_takes_a_name_whose_log_a_running_process_still_has(tmp_path, how):
    # A new file made there took the log beside the name as its own: the deleted search's
    # trials appeared in it (or it was malformed), and a moved file lost its latest commits
    path, moved = tmp_path / "search.db", tmp_path / "moved.db"
    open_oracle(str(path), max_trials=50, seed=5).close()
    holder = _holder(path)
    if how == "deleted":
        os.remove(path)
    else:
        os.rename(path, moved)
    with pytest.raises(hpstore.FileIdentityError,
                       match="running processes still use a search file under this name"):
        open_oracle(str(path), seed=9)
    assert not path.exists()  # nothing made
    assert _ended(*holder) == "FileIdentityError"  # it stopped at its next write
    # its last close folded the log into the file it had open, and removed it
    assert not Path(f"{path}-wal").exists()
    with open_oracle(str(path), max_trials=3, seed=9) as fresh:
        assert list(fresh.trials) == []
        assert fresh.create_trial("new").status == "RUNNING"
    if how == "moved":  # the moved file keeps the running trial and its value
        conn = sqlite3.connect(moved)
        assert conn.execute("SELECT t.status, o.value FROM trials AS t JOIN observations AS o "
                            "ON o.trial = t.id").fetchall() == [("RUNNING", 1.0)]


@pytest.mark.parametrize("how", ["deleted", "moved"])
def test_a_log_left_by_a_killed_process_is_never_taken_by_a_new_file(tmp_path, how):
    path, moved = tmp_path / "search.db", tmp_path / "moved.db"
    open_oracle(str(path), max_trials=50, seed=5).close()
    proc, trial_id, _ = hold(str(path), "doomed")
    _kill(proc)  # its commits are in the log beside the name
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    assert wal.stat().st_size > 32
    if how == "deleted":
        os.remove(path)
    else:
        os.rename(path, moved)
    with pytest.raises(hpstore.FileIdentityError, match="a log with commits is left beside it"):
        open_oracle(str(path), seed=9)
    assert not path.exists() and wal.stat().st_size > 32  # nothing made, the log kept
    if how == "moved":  # moved back, as the message says: its commits fold in
        os.rename(moved, path)
        with open_oracle(str(path)) as oracle:
            assert list(oracle.trials) == [trial_id]
    else:  # deleted with the file, as the message says: a new search starts afresh
        wal.unlink()
        shm.unlink()
        with open_oracle(str(path), max_trials=3, seed=9) as fresh:
            assert list(fresh.trials) == []
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_file_put_in_the_place_of_one_in_use_is_refused_and_stays_its_own(tmp_path):
    # mv other.db search.db under a running worker: the next to open search.db took the
    # worker's log beside the name as its own, and other.db's project was lost
    path, other = tmp_path / "search.db", tmp_path / "other.db"
    open_oracle(str(path), max_trials=50, seed=5).close()
    holder = _holder(path)
    with open_oracle(str(other), max_trials=5, seed=7) as oracle:
        mine = complete_one(oracle, "other")
    os.replace(other, path)
    with pytest.raises(hpstore.FileIdentityError,
                       match="took the name of a search file that running processes still use"):
        open_oracle(str(path))
    assert _ended(*holder) == "FileIdentityError"
    with open_oracle(str(path)) as oracle:  # the file that took the name, as it was
        assert [(t, oracle.get_trial(t).score) for t in oracle.trials] == [mine]
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_an_index_deleted_under_running_workers_is_named_with_the_move(tmp_path):
    # `rm search.db-shm` while a worker ran: a new worker was told only that the file was
    # moved or renamed, which nothing was
    path = tmp_path / "search.db"
    open_oracle(str(path), max_trials=50, seed=5).close()
    proc, _, _ = hold(str(path), "running")
    try:
        os.remove(f"{path}-shm")
        with pytest.raises(hpstore.FileIdentityError,
                           match=r"its index search\.db-shm was deleted while processes used"):
            open_oracle(str(path))
    finally:
        _kill(proc)


def test_within_one_process_a_file_never_takes_the_log_of_one_still_open(tmp_path):
    # the checks look at other processes' locks, which never show this process's own: a
    # file put at the name of one this process still had open took its log (the replacing
    # search's project was lost, the moved one's trials went with the log), and a moved
    # file opened under its new name was "disk I/O error"
    path, moved, other = tmp_path / "search.db", tmp_path / "moved.db", tmp_path / "other.db"
    with open_oracle(str(other), max_trials=5, seed=7) as oracle:
        theirs = [complete_one(oracle, "other") for _ in range(2)]
    mine = open_oracle(str(path), max_trials=50, seed=5)
    ours = [complete_one(mine, "mine") for _ in range(5)]
    os.rename(path, moved)
    with pytest.raises(hpstore.FileIdentityError, match="under another name"):
        open_oracle(str(moved))
    os.replace(other, path)
    with pytest.raises(hpstore.FileIdentityError, match="took the name of a search file"):
        open_oracle(str(path))
    mine.close()  # its log folds into the moved file: nothing of it is left at the name
    for where, expected in ((path, theirs), (moved, ours)):
        with open_oracle(str(where)) as oracle:
            assert [(t, oracle.get_trial(t).score) for t in oracle.trials] == expected
        assert sqlite3.connect(where).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_file_deleted_while_this_process_has_it_open_says_to_close_it(tmp_path):
    # a notebook: the file deleted between two cells (rm s.db*) while the first cell's
    # oracle lived. The refusal told the user to wait for "running processes" (this very
    # kernel: waiting never helped) and named a log that was deleted with the file
    path = tmp_path / "s.db"
    first = end_trials(open_oracle(str(path), max_trials=5), ["COMPLETED"])
    for name in ("s.db", "s.db-wal", "s.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    with pytest.raises(hpstore.FileIdentityError, match="this process still has") as said:
        open_oracle(str(path), max_trials=5)
    assert "Wait for" not in str(said.value) and "s.db-wal" not in str(said.value)
    assert "oracle.close()" in str(said.value)
    first.close()  # as the message says
    again = open_oracle(str(path), max_trials=5)  # made afresh
    assert again.trials == {}
    again.close()
