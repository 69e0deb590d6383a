"""Several users on one search: a worker started as another user (sudo, a service account)
never stops the owner's workers, and its trial is run again once it is killed."""

from __future__ import annotations

import multiprocessing as mp
import os
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from _faults import NOBODY, OTHER_USER, become
from _workers import DEADLINE, open_oracle

pytestmark = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                                reason="acting as two users needs root")

CTX = mp.get_context("spawn")


LAB = 65530  # a group both ordinary users belong to, as a lab's members do


def join_lab(uid: int, umask: int) -> None:
    """Switch to ``uid``, a member of the group LAB only, with ``umask``."""
    import hpstore.store.postgresql.driver
    import hpstore.tooling  # noqa: F401  (see _faults.become)
    os.setgroups([LAB])
    os.setgid(LAB)
    os.setuid(uid)
    os.umask(umask)


def create_as(uid: int | tuple[int, int] | None, path: str, tuner_id: str, results: Any,
              hold: Any = None) -> None:
    """As ``uid`` (None: stay root; (uid, umask): a member of LAB), ask for a trial;
    report (status, trial_id) or the error; with ``hold``, keep the trial running until
    killed, else end it."""
    try:
        if isinstance(uid, tuple):
            join_lab(*uid)
        elif uid is not None:
            become(uid)
        oracle = open_oracle(path, max_trials=20, seed=3)
        trial = oracle.create_trial(tuner_id)
        if hold is None and trial.status == "RUNNING":  # ended: only the held one is left
            oracle.update_trial(trial.trial_id, {"loss": 1.0})
            oracle.end_trial(trial)
        results.put((trial.status, trial.trial_id))
    except Exception as exc:  # reported, for the test to show
        results.put((type(exc).__name__, str(exc)))
        return
    if hold is not None:
        hold.wait(DEADLINE)


def ask(uid: int | tuple[int, int] | None, path: str, tuner_id: str) -> tuple[str, str]:
    results = CTX.Queue()
    proc = CTX.Process(target=create_as, args=(uid, path, tuner_id, results))
    proc.start()
    answer = results.get(timeout=DEADLINE)
    proc.join(DEADLINE)
    return answer


def test_a_worker_of_another_user_neither_blocks_the_owner_nor_strands_its_trial():
    folder = Path(tempfile.mkdtemp(prefix="hpstore-users-"))
    os.chmod(folder, 0o777)
    try:
        path = str(folder / "s.db")
        assert ask(NOBODY, path, "owner")[0] == "COMPLETED"  # the owner's search
        # root joins (sudo): its liveness file is root's, 0644
        results, hold = CTX.Queue(), CTX.Event()
        intruder = CTX.Process(target=create_as, args=(None, path, "root", results, hold))
        intruder.start()
        status, taken = results.get(timeout=DEADLINE)
        assert status == "RUNNING", taken
        # the owner's next worker looks at whether root's worker lives: it did so by
        # opening that file for writing, and every create_trial raised PermissionError
        assert ask(NOBODY, path, "owner-2")[0] == "COMPLETED"
        os.kill(intruder.pid, signal.SIGKILL)
        intruder.join(DEADLINE)
        # ... and root's trial, its worker gone, runs again for the owner
        assert ask(NOBODY, path, "owner-3") == ("COMPLETED", taken)
    finally:
        shutil.rmtree(folder)


def test_a_lock_folder_another_user_keeps_to_themself_is_said_so():
    folder = Path(tempfile.mkdtemp(prefix="hpstore-users-"))
    os.chmod(folder, 0o777)
    try:
        path = str(folder / "s.db")
        assert ask(NOBODY, path, "owner")[0] == "COMPLETED"
        os.chmod(folder / "s.db", 0o666)
        os.chmod(folder / "s.db.hpstore", 0o700)  # as umask 077 makes it
        status, text = ask(OTHER_USER, path, "other")
        assert status == "ReadOnlyDatabaseError", text  # was PermissionError from scandir
        assert "s.db.hpstore" in text and "another user" in text
    finally:
        shutil.rmtree(folder)


def test_a_lock_folder_another_user_made_for_every_user_to_write_is_refused():
    # in a folder every user writes (/tmp), another user who made <file>.hpstore first,
    # mode 0777, could swap the new file hpstore builds in it for their own before it was
    # linked into place (and its lock files likewise)
    folder = Path(tempfile.mkdtemp(prefix="hpstore-users-"))
    os.chmod(folder, 0o1777)
    try:
        path = str(folder / "s.db")
        planted = folder / "s.db.hpstore"
        planted.mkdir()
        os.chown(planted, OTHER_USER, OTHER_USER)
        os.chmod(planted, 0o777)
        status, text = ask(NOBODY, path, "victim")
        assert status == "FileIdentityError", text
        assert "s.db.hpstore" in text and "every user may write" in text
        assert not (folder / "s.db").exists() and list(planted.iterdir()) == []
        assert ask(OTHER_USER, path, "owner")[0] == "COMPLETED"  # its owner's own folder
        status, text = ask(NOBODY, path, "victim")  # the search exists now: still refused
        assert status == "FileIdentityError", text
        os.chmod(planted, 0o775)  # others may not write in it: a group's, say
        assert ask(None, path, "root")[0] == "COMPLETED"
    finally:
        shutil.rmtree(folder)


def lab_folder() -> Path:
    """A folder the group LAB shares: group-writable, its new files in the group (2775)."""
    folder = Path(tempfile.mkdtemp(prefix="hpstore-lab-"))
    os.chown(folder, 0, LAB)
    os.chmod(folder, 0o2775)
    return folder


def test_a_search_made_with_umask_002_in_a_shared_folder_is_written_by_the_whole_group():
    folder = lab_folder()
    alice, bob = (NOBODY, 0o002), (OTHER_USER, 0o002)
    try:
        path = str(folder / "s.db")
        assert ask(alice, path, "alice")[0] == "COMPLETED"
        made = [folder / "s.db", folder / "s.db.hpstore",
                *(folder / "s.db.hpstore").iterdir()]
        # the modes the umask leaves: the lock folder and files were 0755 and 0644, and
        # the file SQLite's own 0644, whatever the umask
        assert {p.name: stat.filemode(p.stat().st_mode) for p in made} == {
            p.name: "drwxrwsr-x" if p.is_dir() else "-rw-rw-r--" for p in made}
        results, hold = CTX.Queue(), CTX.Event()
        running = CTX.Process(target=create_as, args=(alice, path, "alice", results, hold))
        running.start()
        status, held = results.get(timeout=DEADLINE)
        assert status == "RUNNING", held
        for part in ("s.db-wal", "s.db-shm"):
            assert stat.filemode((folder / part).stat().st_mode) == "-rw-rw-r--"
        # bob joins while alice's worker runs, and after it is gone
        assert ask(bob, path, "bob")[0] == "COMPLETED"
        os.kill(running.pid, signal.SIGKILL)
        running.join(DEADLINE)
        assert ask(alice, path, "alice") == ("COMPLETED", held)  # alice resumes her trial
        assert ask(bob, path, "bob")[0] == "COMPLETED"
    finally:
        shutil.rmtree(folder)


def test_a_search_made_with_umask_022_says_at_once_all_a_group_member_cannot_write():
    folder = lab_folder()
    alice, bob = (NOBODY, 0o022), (OTHER_USER, 0o022)
    try:
        path = str(folder / "s.db")
        results, hold = CTX.Queue(), CTX.Event()
        running = CTX.Process(target=create_as, args=(alice, path, "alice", results, hold))
        running.start()
        status, held = results.get(timeout=DEADLINE)
        assert status == "RUNNING", held
        status, text = ask(bob, path, "bob")
        assert status == "ReadOnlyDatabaseError", text
        # it named the file alone; made writable, the log; then the lock folder: three
        # tries to learn what to change
        for part in ("s.db ", "s.db-wal", "s.db-shm", "s.db.hpstore ", "write.lock"):
            assert part in text, (part, text)
        assert "-rw-r--r--" in text and "chmod -R g+w" in text and "umask 002" in text
        parts = [folder / "s.db", folder / "s.db-wal", folder / "s.db-shm",
                 folder / "s.db.hpstore"]
        # what it says to do is all there is to do
        command = text.split("`")[1]
        assert command.startswith("chmod -R g+w "), command
        subprocess.run(shlex.split(command), check=True)
        assert all(p.stat().st_mode & stat.S_IWGRP for p in parts)
        assert ask(bob, path, "bob")[0] == "COMPLETED"
        hold.set()
        running.join(DEADLINE)
        assert ask(alice, path, "alice")[0] == "COMPLETED"
    finally:
        shutil.rmtree(folder)


def test_a_search_in_a_folder_only_its_owner_writes_names_the_folder_with_the_rest():
    # the folder was left out: a group member did what the message said, and was then
    # refused again for the folder
    folder = lab_folder()
    alice, bob = (NOBODY, 0o022), (OTHER_USER, 0o022)
    try:
        os.chown(folder, NOBODY, LAB)
        os.chmod(folder, 0o2755)  # alice's folder, in the group, that only she writes
        path = str(folder / "s.db")
        assert ask(alice, path, "alice")[0] == "COMPLETED"
        status, text = ask(bob, path, "bob")
        assert status == "ReadOnlyDatabaseError", text
        assert f"{folder} (" in text and "s.db.hpstore " in text, text
        command = text.split("`")[1]
        assert command.startswith(f"chmod g+w {folder} && chmod -R g+w "), command
        subprocess.run(command, shell=True, check=True)  # (as the owner would: root here)
        assert ask(bob, path, "bob")[0] == "COMPLETED"  # all there was to do
    finally:
        shutil.rmtree(folder)


def test_a_new_search_in_a_folder_the_user_cannot_write_is_said_so_not_shared():
    # it said "these parts of the search belong to another user ... to share the search
    # with your group ... else read it with the inspection tools", of a search not there
    folder = lab_folder()
    try:
        os.chown(folder, NOBODY, LAB)
        os.chmod(folder, 0o2755)
        path = folder / "new.db"
        status, text = ask((OTHER_USER, 0o022), str(path), "bob")
        assert status == "ReadOnlyDatabaseError", text
        assert f"{path} cannot be created: its folder {folder} (" in text, text
        assert "drwxr-sr-x" in text and "a folder you can write" in text, text
        assert "share" not in text and "inspection tools" not in text, text
        assert os.listdir(folder) == []
    finally:
        shutil.rmtree(folder)


def export_as(uid: int, db: str, out: str, results: Any) -> None:
    """As ``uid``, `hpstore export DB -o OUT --force`; report the exit code and stderr."""
    import contextlib
    import io

    from hpstore.cli import main  # (loaded as root: the venv may be root's alone)

    become(uid)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["export", db, "-o", out, "--force"])
    results.put((code, err.getvalue()))


def test_a_file_of_another_user_in_a_sticky_folder_is_replaced_in_place_keeping_its_owner():
    # replaced by a rename, it failed in a sticky folder (/tmp's kind: no rename over
    # another user's file) where writing in place had worked, and elsewhere it became the
    # replacing user's file
    folder = Path(tempfile.mkdtemp(prefix="hpstore-users-"))
    try:
        os.chmod(folder, 0o1777)
        db = str(folder / "s.db")
        assert ask(None, db, "root")[0] == "COMPLETED"
        os.chmod(db, 0o644)
        out = folder / "out.csv"
        out.write_text("OLD\n" * 1000)
        os.chown(out, NOBODY, NOBODY)
        os.chmod(out, 0o666)
        results = CTX.Queue()
        proc = CTX.Process(target=export_as, args=(OTHER_USER, db, str(out), results))
        proc.start()
        code, err = results.get(timeout=DEADLINE)
        proc.join(DEADLINE)
        assert code == 0, err
        assert out.read_text().startswith("trial_id,") and "OLD" not in out.read_text()
        assert (out.stat().st_uid, stat.S_IMODE(out.stat().st_mode)) == (NOBODY, 0o666)
        assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []
    finally:
        shutil.rmtree(folder)


def open_as(uid: int, path: str, results: Any) -> None:
    """As ``uid``, open a new search at ``path``; report the error's type and words."""
    import hpstore

    hpstore.RandomSearchOracle  # noqa: B018  (loaded as root: numpy is in root's venv)
    become(uid)
    try:
        hpstore.RandomSearchOracle(objective="loss", max_trials=2, database=path).close()
        results.put(("opened", ""))
    except Exception as exc:  # reported, for the test to show
        results.put((type(exc).__name__, str(exc)))


def test_a_search_under_a_folder_the_user_cannot_enter_is_said_so_not_a_traceback():
    # os.stat's PermissionError reached the user as a traceback
    folder = Path(tempfile.mkdtemp(prefix="hpstore-users-"))
    try:
        (folder / "sub").mkdir()
        os.chmod(folder, 0o700)  # root's alone
        results = CTX.Queue()
        proc = CTX.Process(target=open_as, args=(NOBODY, str(folder / "sub" / "new.db"),
                                                 results))
        proc.start()
        kind, text = results.get(timeout=DEADLINE)
        proc.join(DEADLINE)
        assert kind == "ReadOnlyDatabaseError", (kind, text)
        assert f"a folder on its path ({folder}, drwx------) does not let you in" in text
        assert sorted(os.listdir(folder)) == ["sub"] and os.listdir(folder / "sub") == []
    finally:
        shutil.rmtree(folder)
