"""Several users on one search: a worker started as another user (sudo, a service account)
never stops the owner's workers, and its trial is run again once it is killed."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

import pytest
from _faults import NOBODY, OTHER_USER, become
from _workers import DEADLINE, open_oracle

pytestmark = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                                reason="acting as two users needs root")

CTX = mp.get_context("spawn")


def create_as(uid: int | None, path: str, tuner_id: str, results: Any, hold: Any = None) -> None:
    """As ``uid`` (None: stay root), ask for a trial; report (status, trial_id) or the
    error; with ``hold``, keep the trial running until killed, else end it."""
    try:
        if uid is not None:
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


def ask(uid: int | None, path: str, tuner_id: str) -> tuple[str, str]:
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
