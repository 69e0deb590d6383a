"""A notebook builds oracle after oracle on one file (a cell run again and again): each
dropped oracle must not keep file descriptors of its own until the process ends."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = r"""
import gc, os, resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[2]), int(sys.argv[2])))
import hpstore
hp = hpstore.HyperParameters()
hp.Float("x", -1, 1)
for i in range(int(sys.argv[3])):
    oracle = hpstore.RandomSearchOracle("loss", max_trials=10_000, hyperparameters=hp,
                                        seed=1, database=sys.argv[1])
    trial = oracle.create_trial(f"cell-{i % 3}")
    oracle.update_trial(trial.trial_id, {"loss": 1.0})
    if i % 5:  # now and then a trial is left running, as an interrupted cell leaves it
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    del oracle, trial
    if i % 50 == 0:
        gc.collect()
print(len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_NOFILE is POSIX")
def test_a_thousand_oracles_built_and_dropped_in_one_process(tmp_path):
    path = tmp_path / "notebook.db"
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(path), "128", "1000"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) < 64  # descriptors do not grow with the oracles
    import sqlite3

    conn = sqlite3.connect(path)
    statuses = dict(conn.execute("SELECT status, count(*) FROM trials GROUP BY status"))
    conn.close()
    # a trial a dropped oracle left running went on with the next oracle of the same cell
    # (the process's own, not a dead worker's): nothing was interrupted or lost
    assert sum(statuses.values()) <= 1000 and statuses.get("FAILED", 0) == 0
    interrupted = sqlite3.connect(path).execute(
        "SELECT count(*) FROM trials WHERE interruptions > 0").fetchone()[0]
    assert interrupted == 0
