"""Running out of memory: SQLite's out of memory on a damaged page, on a machine short of
memory, and Python's own; each named for what it may be, the file unchanged."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from _workers import DEADLINE, open_oracle

import hpstore


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_page_damaged_so_that_sqlite_runs_out_of_memory_is_named_as_damage(
        tmp_path, capsys):
    # SQLite reports such a page as out of memory (its sizes ask for more than there is),
    # which Python raises as a bare MemoryError: every tool ended on a traceback
    from hpstore.cli import main

    path = tmp_path / "a.db"
    with open_oracle(str(path), max_trials=5) as oracle:
        trial = oracle.create_trial("t")
        for step in range(200):  # observations over several leaf pages
            oracle.update_trial(trial.trial_id, {"loss": float(step)}, step=step)
    conn = sqlite3.connect(path)
    leaves = [page for (page,) in conn.execute(
        "SELECT pageno FROM dbstat WHERE name = 'observations' AND pagetype = 'leaf' "
        "ORDER BY pageno")]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(path.read_bytes())
    start = (leaves[1] - 1) * size + 100
    data[start:start + 200] = b"\xff" * 200  # cells' sizes become enormous
    path.write_bytes(bytes(data))
    with pytest.raises(MemoryError):  # what SQLite itself makes of it
        sqlite3.connect(path).execute("SELECT * FROM observations").fetchall()
    capsys.readouterr()
    memory = "SQLite ran out of memory reading it, as a damaged page makes it"
    for command in (["summary"], ["show", "0"], ["sql", "SELECT * FROM observations"]):
        assert main([command[0], str(path), *command[1:]]) == 2, command
        out, err = capsys.readouterr()
        assert err.startswith("hpstore: error: ") and memory in err, command
        assert err.count("\n") == 1
    assert main(["check", str(path)]) == 1
    out, err = capsys.readouterr()
    assert err == "" and "integrity: DAMAGED" in out and memory in out
    assert "project 'untitled_project'" in out  # the findings go on after it
    copy = tmp_path / "copy.db"
    assert main(["backup", str(path), str(copy)]) == 2
    assert memory in capsys.readouterr().err and not copy.exists()
    with pytest.raises(hpstore.NotAnHpstoreFileError, match=memory):
        hpstore.Oracle.attach(str(path)).get_trial(trial.trial_id)
    assert digest(path) == hashlib.sha256(bytes(data)).hexdigest()


_NO_MEMORY_LEFT = """
import resource, sys, hpstore
from _workers import open_oracle
oracle = open_oracle(sys.argv[1], max_trials=5)
trial = oracle.create_trial("w")
oracle.update_trial(trial.trial_id, {"loss": 1.0}, step=0)
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
used = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (used + 2_000_000, hard))
hog = []
for size in (100_000, 10_000, 1_000, 100):  # every byte the process may have
    try:
        while True:
            hog.append(bytearray(size))
    except MemoryError:
        pass
try:
    for step in range(1, 50):
        oracle.update_trial(trial.trial_id, {"loss": float(step)}, step=step)
    said = ["no error", False, ""]
except BaseException as exc:
    hog.clear()
    said = [type(exc).__name__, isinstance(exc, hpstore.NotAnHpstoreFileError), str(exc)]
hog.clear()
resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
print(said[0], said[1])
print(said[2])
trial.status = "COMPLETED"
oracle.end_trial(trial)  # memory back: the search goes on
print(oracle.get_trial(trial.trial_id).status)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and /proc")
def test_an_open_search_on_a_machine_out_of_memory_is_not_called_no_search(tmp_path):
    # SQLite out of memory as the search ran was NotAnHpstoreFileError, the error of a
    # file that is no search (code skipping such files would skip a healthy one)
    done = subprocess.run([sys.executable, "-c", _NO_MEMORY_LEFT, str(tmp_path / "m.db")],
                          capture_output=True, text=True, timeout=DEADLINE,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    kind, said, status = done.stdout.splitlines()
    assert kind == "DatabaseError False", done.stdout
    assert "unless this machine is short of memory" in said
    assert status == "COMPLETED"


def test_running_out_of_memory_in_python_code_is_not_called_damage(tmp_path):
    # a MemoryError of the decision itself (a space too large to list), raised inside the
    # write transaction, was reported as a damaged file to restore from a backup
    class Hungry(hpstore.RandomSearchOracle):
        decides_quickly = True  # decided inside the transaction that records the trial

        def populate_space(self, trial_id):
            raise MemoryError

    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 1)
    oracle = Hungry("loss", max_trials=3, hyperparameters=hp, database=str(tmp_path / "h.db"))
    with pytest.raises(MemoryError) as raised:
        oracle.create_trial("t")
    assert not isinstance(raised.value, hpstore.HpStoreError)
    oracle.close()
