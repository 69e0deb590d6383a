"""examples/keras_mnist_like.py runs as a user would run it, and again to no effect."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "keras_mnist_like.py"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLE.parent.parent), *sys.path])}


def run(cwd):
    proc = subprocess.run([sys.executable, str(EXAMPLE), "runs", "3"], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_the_keras_example_searches_and_a_second_run_resumes(tmp_path):
    out = run(tmp_path)
    assert "Results summary" in out and "Best model: val_accuracy" in out
    db = tmp_path / "runs" / "digits.db"
    assert str(db) in out
    conn = sqlite3.connect(db)
    # Hyperband, max_epochs=3, factor=3: (3 trials, 1 epoch) -> (1, 3), then (2, 3)
    assert conn.execute("SELECT status, count(*) FROM trials GROUP BY status").fetchall() == [
        ("COMPLETED", 6)]
    assert conn.execute("SELECT count(DISTINCT trial_id) FROM metric_history "
                        "WHERE metric = 'val_accuracy'").fetchone() == (6,)
    conn.close()
    run(tmp_path)  # finished: nothing more runs
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM trials").fetchone() == (6,)
