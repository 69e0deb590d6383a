"""hpstore backup: one consistent file, even while workers write; never over another file."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from _faults import in_a_mount, integrity
from _store import complete_until_stopped
from _workers import DEADLINE, end_trials, open_oracle

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX: SIGKILL")

ROOT = Path(__file__).resolve().parent.parent
CTX = mp.get_context("spawn")


def hpstore(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hpstore", *argv], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def small_search(path: Path, n: int = 4) -> None:
    with open_oracle(str(path), max_trials=20, seed=1) as oracle:
        for _ in range(n):
            trial = oracle.create_trial("w")
            oracle.update_trial(trial.trial_id, {"loss": 1.0})
            trial.status = "COMPLETED"
            oracle.end_trial(trial)


def test_a_backup_taken_while_workers_write_is_one_whole_search(tmp_path):
    path = tmp_path / "live.db"
    open_oracle(str(path), max_trials=100_000, seed=2).close()
    start, progress, results = CTX.Event(), CTX.Queue(), CTX.Queue()
    procs = [CTX.Process(target=complete_until_stopped,
                         args=(str(path), f"w{i}", start, progress, results), daemon=True)
             for i in range(3)]
    for proc in procs:
        proc.start()
    start.set()
    try:
        for _ in range(60):  # all of them are writing now
            progress.get(timeout=DEADLINE)
        out_dir = tmp_path / "copies"
        out_dir.mkdir()
        done = hpstore("backup", str(path), str(out_dir / "copy.db"))
        assert done.returncode == 0, done.stderr
    finally:
        for proc in procs:
            proc.kill()
            proc.join(DEADLINE)
    assert sorted(os.listdir(out_dir)) == ["copy.db"]  # one file: no log, no leftovers
    copy = out_dir / "copy.db"
    conn = sqlite3.connect(copy)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    trials = conn.execute("SELECT count(*) FROM trials").fetchone()[0]
    assert trials >= 60
    # one snapshot: every trial's status log replays to its status, every COMPLETED trial
    # has its score and its metric
    assert conn.execute(
        "SELECT count(*) FROM trials AS t WHERE t.status IS NOT (SELECT to_status FROM "
        "transitions WHERE trial = t.id ORDER BY id DESC LIMIT 1)").fetchone() == (0,)
    assert conn.execute(
        "SELECT count(*) FROM trials WHERE status = 'COMPLETED' AND (score IS NULL OR NOT EXISTS"
        " (SELECT 1 FROM observations WHERE trial = trials.id))").fetchone() == (0,)
    conn.close()
    # the copy is a search: it resumes (the killed workers' trials are run again)
    with open_oracle(str(copy)) as oracle:
        assert oracle.create_trial("resumer").status == "RUNNING"
    assert f"{trials} trial(s)" in done.stderr


def test_a_backup_never_writes_over_a_file(tmp_path):
    path = tmp_path / "s.db"
    small_search(path)
    other = tmp_path / "other.txt"
    other.write_text("keep me")
    before = digest(path)
    for target, says in [(other, "never writes over"), (path, "the search file itself"),
                         (tmp_path / "." / "s.db", "the search file itself"),
                         (tmp_path / "x.db-wal", "log files"),
                         (tmp_path / "s.db.hpstore" / "copy.db", "lock folder"),
                         (tmp_path / "missing" / "copy.db", "does not exist"),
                         (tmp_path, "is a folder: give the copy a file name"),
                         ("postgresql://me@127.0.0.1:1/db", "hpstore copy")]:
        done = hpstore("backup", str(path), str(target))
        assert done.returncode == 2, (target, done.stderr)
        assert done.stderr.startswith("hpstore: error:") and says in done.stderr, done.stderr
    assert other.read_text() == "keep me"
    assert digest(path) == before
    assert not (tmp_path / "x.db-wal").exists() and not (tmp_path / "missing").exists()
    assert not Path("postgresql:").exists()


def test_a_backup_refuses_a_name_beside_another_databases_log(tmp_path):
    # a stale new.db-wal was replayed over the fresh copy when it opened: "wrote new.db",
    # then new.db was another database
    path = tmp_path / "s.db"
    small_search(path)
    stale = tmp_path / "new.db-wal"
    stale.write_bytes(b"a log left by another database")
    done = hpstore("backup", str(path), str(tmp_path / "new.db"))
    assert done.returncode == 2 and "new.db-wal already beside new.db" in done.stderr
    assert not (tmp_path / "new.db").exists() and stale.read_bytes().startswith(b"a log")


def test_a_backup_of_what_is_not_a_search_writes_nothing(tmp_path):
    notes = tmp_path / "notes.db"
    notes.write_bytes(b"not a database" * 100)
    done = hpstore("backup", str(notes), str(tmp_path / "copy.db"))
    assert done.returncode == 2 and "not a SQLite database" in done.stderr
    crafted = tmp_path / "crafted.db"
    small_search(crafted)
    conn = sqlite3.connect(crafted)
    conn.execute("CREATE TRIGGER rig AFTER INSERT ON trials BEGIN SELECT 1; END")
    conn.commit()
    conn.close()
    done = hpstore("backup", str(crafted), str(tmp_path / "copy.db"))
    assert done.returncode == 2 and "trigger 'rig'" in done.stderr
    assert not any(p.name.startswith(("copy", ".copy")) for p in tmp_path.iterdir())


def test_a_backup_of_a_quiet_search_equals_the_search(tmp_path):
    path = tmp_path / "s.db"
    small_search(path, 6)
    assert hpstore("backup", str(path), str(tmp_path / "c.db")).returncode == 0
    rows = "SELECT trial_id, status, score, hp_values FROM trials ORDER BY number"
    with sqlite3.connect(path) as a, sqlite3.connect(tmp_path / "c.db") as b:
        assert a.execute(rows).fetchall() == b.execute(rows).fetchall()


def hold_a_trial(path: str, started: object, release: object) -> None:
    """A worker of the source file that takes a trial and keeps running it until told."""
    with open_oracle(path) as oracle:
        oracle.create_trial("holder")
        started.set()  # type: ignore[attr-defined]
        release.wait(DEADLINE)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", ["backup", "copy"])
def test_a_trial_running_in_the_source_runs_again_in_the_copy(tmp_path, command):
    # The source's worker still runs, but not on the copy: the copy's trial must not wait
    # for it (it would never end there).
    path = tmp_path / "live.db"
    open_oracle(str(path), max_trials=2, seed=3).close()
    started, release = CTX.Event(), CTX.Event()
    holder = CTX.Process(target=hold_a_trial, args=(str(path), started, release), daemon=True)
    holder.start()
    try:
        assert started.wait(DEADLINE)
        copy = tmp_path / "copy.db"
        done = hpstore(command, str(path), str(copy))
        assert done.returncode == 0, done.stderr
        assert "1 trial(s) running in" in done.stderr and "run again" in done.stderr
        with sqlite3.connect(path) as conn:
            (held,) = conn.execute("SELECT trial_id FROM trials WHERE status = 'RUNNING'"
                                   ).fetchone()
        with open_oracle(str(path)) as source:  # the source's trial still runs there
            assert source.create_trial("other").trial_id != held
        with open_oracle(str(copy)) as oracle:  # in the copy, it is the next to run
            again = oracle.create_trial("resumer")
            assert (again.status, again.trial_id) == ("RUNNING", held)
    finally:
        release.set()
        holder.join(DEADLINE)
    assert holder.exitcode == 0
    with sqlite3.connect(path) as conn:  # the source was not changed by the copy
        assert conn.execute("SELECT count(*) FROM trials WHERE pid IS NULL").fetchone() == (0,)


def test_copy_takes_a_project_named_twice_once_and_refuses_a_target_in_memory(tmp_path):
    path = tmp_path / "src.db"
    end_trials(open_oracle(str(path), max_trials=3, seed=4, project_name="p"),
               ["COMPLETED"] * 3).close()
    copy = tmp_path / "copy.db"
    done = hpstore("copy", str(path), str(copy), "--project", "p", "--project", "p")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("copied project 'p': 3 trial(s)") == 1
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT name FROM projects").fetchall() == [("p",)]
    done = hpstore("copy", str(path), ":memory:")
    assert done.returncode == 2
    assert done.stderr.startswith("hpstore: error: DST :memory: is a search in this command's")


def _start_a_partial_copy(out: str, then: str, ready) -> None:
    """A backup's first step, in its own process: claim a partial copy beside ``out`` and
    write into it; then be killed (-9) or keep it until killed."""
    import signal

    from hpstore.store.sqlite import backup

    temporary, _ = backup._partial(Path(out))
    with sqlite3.connect(temporary) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (zeroblob(100000))")
    for suffix in ("-wal", "-journal"):
        Path(f"{temporary}{suffix}").write_bytes(b"left")
    ready.send(temporary.name)
    if then == "killed":
        os.kill(os.getpid(), signal.SIGKILL)
    signal.pause()


def test_a_backup_removes_the_partial_copies_of_killed_backups_and_no_running_ones(tmp_path):
    # each backup killed (kill -9, or a SIGTERM from timeout) left a hidden copy the size
    # of the search, and the next backup left it too: a nearly full disk filled up
    path = tmp_path / "s.db"
    small_search(path)
    out = tmp_path / "bk.db"
    ready, tell = CTX.Pipe(duplex=False)  # (written at once: a child kills itself after)
    killed = CTX.Process(target=_start_a_partial_copy, args=(str(out), "killed", tell))
    killed.start()
    assert ready.poll(DEADLINE)
    dead = ready.recv()
    killed.join(DEADLINE)
    assert killed.exitcode == -9
    running = CTX.Process(target=_start_a_partial_copy, args=(str(out), "running", tell))
    running.start()
    try:
        assert ready.poll(DEADLINE)
        alive = ready.recv()
        done = hpstore("backup", str(path), str(out))
        assert done.returncode == 0, done.stderr
        left = sorted(p.name for p in tmp_path.iterdir() if ".partial" in p.name)
        assert left == sorted([alive, f"{alive}-journal", f"{alive}-wal"]), left
        assert dead != alive
    finally:
        running.kill()
        running.join(DEADLINE)
    assert integrity(out) == [("ok",)]


def test_a_backup_onto_a_full_disk_names_that_disk_not_the_search(tmp_path):
    # "Copying s.db to ... failed: database or disk is full ... Check the search with
    # `hpstore check`": the search was fine, the copy's disk full
    path = tmp_path / "s.db"
    small_search(path, n=20)
    target = tmp_path / "small"
    target.mkdir()
    done = in_a_mount(target, 'mount -t tmpfs -o size=16k tmpfs "$1"', sys.executable, "-m",
                       "hpstore", "backup", str(path), str(target / "bk.db"))
    assert done.returncode == 2, done.stderr
    assert f"the disk holding {target} is full" in done.stderr, done.stderr
    assert "free some space" in done.stderr and "hpstore check" not in done.stderr


def test_a_copy_into_a_new_file_that_is_interrupted_leaves_no_file(tmp_path):
    # Ctrl-C while the project was written left an empty search file: "This file holds
    # no project yet" ever after
    from hpstore.cli import load_tool

    copy = load_tool("copy").copy
    path = tmp_path / "s.db"
    small_search(path)

    def interrupt(text: str) -> None:
        if text.startswith("writing"):
            raise KeyboardInterrupt

    target = tmp_path / "new.db"
    with pytest.raises(KeyboardInterrupt):
        copy(str(path), str(target), status=interrupt)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("new.db")]
    # a file that was there before is left, whatever it holds
    small_search(target, n=1)
    with pytest.raises(KeyboardInterrupt):
        copy(str(path), str(target), overwrite=True, status=interrupt)
    assert target.exists()


def test_a_copy_name_too_long_for_the_hidden_partial_file_is_named_before_any_work(tmp_path):
    small_search(tmp_path / "s.db")
    longest = "c" * 226 + ".db"  # .NAME.XXXXXXXX.partial-journal: 255 bytes, the most
    done = hpstore("backup", str(tmp_path / "s.db"), str(tmp_path / longest))
    assert done.returncode == 0, done.stderr
    with open_oracle(str(tmp_path / longest)) as oracle:  # and it opens as a search
        assert len(oracle.get_state()["trials"]) == 4
    before = sorted(os.listdir(tmp_path))
    done = hpstore("backup", str(tmp_path / "s.db"), str(tmp_path / ("d" + longest)))
    # was "hpstore: error: .../.dccc...ccc.db.5082e25f.partial-wal: File name too long."
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "d" + longest[:20] in done.stderr and "File name too long" not in done.stderr
    assert "1 byte" in done.stderr and "Shorten" in done.stderr, done.stderr
    assert sorted(os.listdir(tmp_path)) == before


def test_a_copy_path_too_long_for_sqlite_is_named_not_blamed_on_the_search(tmp_path):
    small_search(tmp_path / "s.db")
    deep = tmp_path.joinpath(*["d" * 100] * 4)
    deep.mkdir(parents=True)
    # its hidden file, .NAME.XXXXXXXX.partial, with "-journal": 513 bytes of path
    name = "c" * (513 - len(os.fsencode(deep)) - 1 - 26 - 3) + ".db"
    done = hpstore("backup", str(tmp_path / "s.db"), str(deep / name))
    # was "Copying ... failed: unable to open database file. ... Check the search with
    # `hpstore check`."
    assert done.returncode == 2 and "too long for a copy" in done.stderr, done.stderr
    assert "hpstore check" not in done.stderr and "1 byte(s) over" in done.stderr
    assert os.listdir(deep) == []
    done = hpstore("backup", str(tmp_path / "s.db"), str(deep / name[1:]))
    assert done.returncode == 0, done.stderr
    with open_oracle(str(deep / name[1:])) as oracle:  # the copy opens as a search
        assert len(oracle.get_state()["trials"]) == 4


def _backup_as_nobody(source: str, out: str, results) -> None:
    from _faults import NOBODY, become

    from hpstore.store.sqlite.backup import backup
    become(NOBODY)
    try:
        backup(Path(source), Path(out))
        results.put("written")
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="acting as another user")
def test_a_copy_into_a_folder_the_user_cannot_write_names_that_folder():
    folder = Path(tempfile.mkdtemp(prefix="hpstore-backup-"))  # (one others may enter)
    try:
        os.chmod(folder, 0o755)
        small_search(folder / "s.db")
        results = CTX.Queue()
        child = CTX.Process(target=_backup_as_nobody,
                            args=(str(folder / "s.db"), str(folder / "copy.db"), results))
        child.start()
        said = results.get(timeout=DEADLINE)
        child.join(DEADLINE)
        # was "PermissionError: [Errno 13] Permission denied: '.../.copy.db.1f2e3d4c.claim'"
        assert said.startswith("HpStoreError: ") and ".claim" not in said, said
        assert f"folder {folder} is not writable" in said and "Permission denied" in said
        assert sorted(os.listdir(folder)) == ["s.db", "s.db.hpstore"]
    finally:
        shutil.rmtree(folder)


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_NOFILE is POSIX")
def test_a_backup_at_the_limit_of_open_files_names_the_limit_not_the_search(tmp_path):
    # Under a low `ulimit -n` the backup said "unable to open database file ... Check the
    # search with `hpstore check`": the search was fine, the process out of descriptors
    import resource

    source = tmp_path / "source.db"
    small_search(source)
    said = []
    for limit in range(5, 16):
        def low(limit: int = limit) -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        done = subprocess.run([sys.executable, "-m", "hpstore", "backup", str(source),
                               str(tmp_path / f"copy{limit}.db")], capture_output=True,
                              text=True, timeout=DEADLINE, preexec_fn=low)
        if done.returncode == 0:
            break
        said.append(done.stderr)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert "hpstore check" not in done.stderr, done.stderr
    else:
        raise AssertionError("no limit let the backup through")
    assert any("ulimit -n" in err for err in said), said  # (some limit stops it at an open)


def test_a_backup_in_steps_copies_the_search_as_it_was_when_it_began(tmp_path, monkeypatch):
    # The copy goes in steps (a progress line between them): trials written meanwhile, by
    # another connection, are not in it, and the copy never starts over
    from hpstore.store.sqlite import backup as copying

    path = tmp_path / "s.db"
    end_trials(open_oracle(str(path), max_trials=1000, seed=1), ["COMPLETED"] * 60).close()
    monkeypatch.setattr(copying, "STEP_PAGES", 8)
    seen: list[tuple[int, int]] = []
    with open_oracle(str(path), max_trials=1000, seed=1) as writer:
        def progress(done: int, total: int) -> None:
            seen.append((done, total))
            end_trials(writer, ["COMPLETED"])  # a worker's commit between two steps

        trials, _, _ = copying.backup(path, tmp_path / "copy.db", progress)
    assert trials == 60
    assert len(seen) > 3 and seen[-1][0] == seen[-1][1]  # in steps, to its end
    assert [done for done, _ in seen] == sorted({done for done, _ in seen})  # never again
    assert len({total for _, total in seen}) == 1
    conn = sqlite3.connect(tmp_path / "copy.db")
    assert conn.execute("SELECT count(*) FROM trials").fetchone() == (60,)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    assert sqlite3.connect(path).execute("SELECT count(*) FROM trials").fetchone()[0] > 60


def test_a_backup_says_how_far_it_is_on_a_terminal(tmp_path, monkeypatch, capsys):
    import fcntl
    import pty
    import struct
    import termios

    from _tools import read_terminal

    from hpstore.store.sqlite import backup as copying
    from tools.backup import main

    path = tmp_path / "s.db"
    small_search(path, n=20)
    monkeypatch.setattr(copying, "STEP_PAGES", 8)
    monkeypatch.setenv("TERM", "xterm")
    leader, follower = pty.openpty()
    # wide enough for the whole line (a narrower terminal gets its end)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 400, 0, 0))
    with open(follower, "w", encoding="utf-8", closefd=True) as screen:
        monkeypatch.setattr(sys, "stderr", screen)
        assert main([str(path), str(tmp_path / "copy.db")]) == 0
    shown = read_terminal(leader)
    assert f"Copying {path}: 100% of" in shown, shown
    assert "wrote " in shown and shown.count("\r\x1b[2K") >= 3
    assert "Copying" not in capsys.readouterr().out  # (stdout stays the command's)


def test_a_copy_interrupted_between_projects_says_which_it_copied(tmp_path, monkeypatch,
                                                                   capsys):
    # each project is copied whole in a transaction of its own: stopped (Ctrl-C, SIGTERM)
    # after the first, the target kept it, and nothing said so
    from hpstore.cli import load_tool
    from hpstore.tooling import run_tool

    copy_search = load_tool("copy")  # (loaded afresh at each command: run its main here)
    path = tmp_path / "src.db"
    for name in ("a", "b"):
        end_trials(open_oracle(str(path), max_trials=2, seed=4, project_name=name),
                   ["COMPLETED"]).close()
    written = copy_search._import

    def stop_at_the_second(dst, name, state, replace):
        if name == "b":
            raise KeyboardInterrupt
        return written(dst, name, state, replace)

    monkeypatch.setattr(copy_search, "_import", stop_at_the_second)
    target = tmp_path / "copy.db"
    assert run_tool(copy_search.main, [str(path), str(target)]) == 130
    err = capsys.readouterr().err
    assert "interrupted after copying 1 project(s) whole" in err and "'a'" in err, err
    assert "the rest were not copied" in err
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT name FROM projects").fetchall() == [("a",)]
