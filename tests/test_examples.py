"""Every script in examples/ runs (at a small size) as a user would run it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLES.parent), *sys.path])}


def run(name, *args, cwd):
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=ENV)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def completed(db):
    return sqlite3.connect(db).execute(
        "SELECT count(*) FROM trials WHERE status = 'COMPLETED'").fetchone()[0]


def test_every_example_has_a_test():
    tested = {"basic_search.py", "several_terminals.py", "hyperband_checkpoints.py",
              "conditional_space.py", "read_results.py",
              "keras_mnist_like.py"}  # tested in test_keras_example.py
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_basic_search_and_reading_its_results(tmp_path):
    out = run("basic_search.py", "b.db", 8, cwd=tmp_path)
    assert "Results summary" in out and completed(tmp_path / "b.db") == 8
    out = run("read_results.py", "b.db", cwd=tmp_path)
    assert "best five trials:" in out and "'COMPLETED': 8" in out


@pytest.mark.slow
def test_several_terminals(tmp_path):
    procs = [subprocess.Popen([sys.executable, str(EXAMPLES / "several_terminals.py"), "s.db",
                               "--trials", "12"], cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert completed(tmp_path / "s.db") == 12


@pytest.mark.slow
def test_several_terminals_starts_workers_from_one_command(tmp_path):
    run("several_terminals.py", "--workers", "3", "--trials", "9", cwd=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("shared.db")) == []
    assert completed(tmp_path / "shared.db") == 9
    workers = sqlite3.connect(tmp_path / "shared.db").execute(
        "SELECT count(DISTINCT tuner_id) FROM trials").fetchone()[0]
    assert 1 <= workers <= 3
    run("several_terminals.py", "mine.db", "--trials", "2", cwd=tmp_path)
    assert completed(tmp_path / "mine.db") == 2
    for bad in (["--workers", "0"], ["--workers", "x"], ["a.db", "b.db"]):
        proc = subprocess.run([sys.executable, str(EXAMPLES / "several_terminals.py"), *bad],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300, env=ENV)
        assert proc.returncode == 2 and "usage:" in proc.stderr
    assert not (tmp_path / "0").exists() and not (tmp_path / "x").exists()


def test_hyperband_with_checkpoints(tmp_path):
    out = run("hyperband_checkpoints.py", "h.db", 9, cwd=tmp_path)
    assert "best: trial" in out
    conn = sqlite3.connect(tmp_path / "h.db")
    promoted = conn.execute("SELECT count(*) FROM trials WHERE json_extract(hp_values, "
                            "'$.\"tuner/trial_id\"') IS NOT NULL").fetchone()[0]
    assert promoted > 0


def test_conditional_space(tmp_path):
    out = run("conditional_space.py", "c.db", 12, cwd=tmp_path)
    assert "model (Choice)" in out and completed(tmp_path / "c.db") == 12
