"""The search file the tool tests share (written by three real processes) and a way to
run a command in this process; used by test_tools.py and test_tool_sql.py."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from _workers import DEADLINE, open_oracle, run_together, run_worker

from hpstore.cli import main

ROOT = Path(__file__).resolve().parent.parent
TOOL_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}


@pytest.fixture(scope="module")
def shared_db(tmp_path_factory):
    """A search written by three real processes, with a failed and a retried trial."""
    path = str(tmp_path_factory.mktemp("tools") / "shared.db")
    open_oracle(path, max_trials=30, seed=2, max_retries_per_trial=1).close()
    reports = run_together(run_worker, [(path, f"w{i}", 30) for i in range(3)], DEADLINE)
    assert [r[2] for r in reports] == [None, None, None]
    oracle = open_oracle(path, max_trials=32, max_retries_per_trial=1)
    bad = oracle.create_trial("w-extra")
    bad.status, bad.message = "FAILED", "Traceback (most recent call last):\nValueError: nope"
    oracle.end_trial(bad)
    flaky = oracle.create_trial("w-extra")
    oracle.update_trial(flaky.trial_id, {"loss": 5.0}, step=0)
    oracle.update_trial(flaky.trial_id, {"loss": 4.0}, step=1)
    flaky.status = "INVALID"
    oracle.end_trial(flaky)  # queued for a retry
    oracle.close()
    # fold the WAL in so the hash below covers everything
    sqlite3.connect(path).execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def read_terminal(main_fd: int) -> str:
    """Everything written to the terminal whose main side is ``main_fd`` until its other
    end closes (the fd is closed here), as text."""
    shown = b""
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # (EIO: the terminal's other end closed)
            break
        if not chunk:
            break
        shown += chunk
    os.close(main_fd)
    return shown.decode("utf-8", "replace")
