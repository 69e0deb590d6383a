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


def max_trials(db):
    return sqlite3.connect(db).execute("SELECT max_trials FROM projects").fetchone()[0]


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
    # a name it cannot read: one line saying what to do (a sqlite3 traceback before)
    proc = subprocess.run([sys.executable, str(EXAMPLES / "read_results.py"), "nope.db"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, env=ENV)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("nope.db is not a search file: run examples/basic_search.py")
    assert not (tmp_path / "nope.db").exists()
    # run again without TRIALS: resumed as it is (a default of 30 was stored over the 8,
    # and ran 22 more trials)
    run("basic_search.py", "b.db", cwd=tmp_path)
    assert completed(tmp_path / "b.db") == 8 and max_trials(tmp_path / "b.db") == 8


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
    # a terminal started without --trials keeps the search's number (a default of 40 was
    # stored over it, for every worker: one lower than the trials run ended the search)
    run("several_terminals.py", "shared.db", cwd=tmp_path)
    assert completed(tmp_path / "shared.db") == 9 and max_trials(tmp_path / "shared.db") == 9
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
    ids = {r[0] for r in conn.execute("SELECT trial_id FROM trials")}
    saved = {p.name for p in (tmp_path / "h-checkpoints").iterdir()}
    assert saved == {f"trial-{i}.json" for i in ids}  # beside the search, one per trial


# Runs the example until its first promoted trial starts, then dies as a killed process does.
DIES_AT_FIRST_PROMOTION = """
import os, runpy, signal, sys
example = runpy.run_path(sys.argv[1], run_name="example")
run_trial = example["EpochTuner"].run_trial
def dying(self, trial):
    if "tuner/trial_id" in trial.hyperparameters.values:
        os.kill(os.getpid(), signal.SIGKILL)
    return run_trial(self, trial)
example["EpochTuner"].run_trial = dying
example["main"]("h.db", 9)
"""


def test_hyperband_with_checkpoints_resumes_after_a_kill(tmp_path):
    """A search killed as a promoted trial starts resumes in a new process: that trial runs
    again from the checkpoint the killed process wrote, and nothing is left in the temp
    folder (the checkpoints live beside the search)."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**ENV, "TMPDIR": str(scratch)}
    killed = subprocess.run([sys.executable, "-c", DIES_AT_FIRST_PROMOTION,
                             str(EXAMPLES / "hyperband_checkpoints.py")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, env=env)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    conn = sqlite3.connect(tmp_path / "h.db")
    running = conn.execute("SELECT trial_id, hp_values FROM trials WHERE status = 'RUNNING'"
                           ).fetchall()
    assert len(running) == 1 and "tuner/trial_id" in running[0][1]
    resumed = subprocess.run([sys.executable, str(EXAMPLES / "hyperband_checkpoints.py"),
                              "h.db", "9"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=300, env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "best: trial" in resumed.stdout
    status, interruptions = conn.execute(
        "SELECT status, interruptions FROM trials WHERE trial_id = ?", (running[0][0],)
    ).fetchone()
    assert (status, interruptions) == ("COMPLETED", 1)
    assert list(scratch.iterdir()) == []


def test_conditional_space(tmp_path):
    out = run("conditional_space.py", "c.db", 12, cwd=tmp_path)
    assert "model (Choice)" in out and completed(tmp_path / "c.db") == 12
    run("conditional_space.py", "c.db", cwd=tmp_path)  # again, without TRIALS: as it was
    assert completed(tmp_path / "c.db") == 12 and max_trials(tmp_path / "c.db") == 12
