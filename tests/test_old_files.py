"""Files written by an older hpstore (an earlier schema version): read as they are, with
nothing changed, by the tools and any reader, and upgraded by the first writer of today,
also while readers open them or watch them."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from _faults import complete_one
from _workers import DEADLINE, open_oracle

from hpstore.cli import main as cli
from hpstore.store.sqlite.schema import SCHEMA_VERSION, migrations

ROOT = Path(__file__).resolve().parent.parent


def _old_file(path: Path, version: int) -> None:
    """A search file as an hpstore of schema ``version`` wrote it: one project, one trial."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA page_size = 1024")
    conn.execute("PRAGMA journal_mode = WAL")
    for number, migration in migrations():
        if number <= version:
            conn.executescript(f"BEGIN;\n{migration.read_text()}\n"
                               f"PRAGMA user_version = {number};\nCOMMIT;")
    conn.execute("INSERT INTO projects (project_id, name, oracle_class, oracle_config, "
                 "objective, max_trials, seed, created_at, updated_at) VALUES (1, 'p', "
                 "'RandomTestOracle', '{}', '{\"name\": \"loss\", \"direction\": \"min\"}', 5,"
                 " 1, 0, 0)")
    conn.execute("INSERT INTO hyperparameters VALUES (1, 0, 'x', 'Float', '{\"name\": \"x\", "
                 "\"default\": -10.0, \"conditions\": [], \"min_value\": -10.0, \"max_value\": "
                 "10.0, \"step\": null, \"sampling\": \"linear\"}')")
    conn.execute("INSERT INTO trials (project_id, number, trial_id, status, hp_values, "
                 "values_key, score, run_count, created_at) VALUES (1, 0, '0', 'COMPLETED', "
                 "'{\"x\": 1.0}', 'k', 0.5, 1, 0)")
    conn.close()


def test_a_file_from_before_steering_is_read_as_it_is_and_upgraded_by_a_writer(
        tmp_path, capsys):
    path = tmp_path / "old.db"
    _old_file(path, 2)
    assert cli(["trials", str(path), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["trial_id"] == "0" and rows[0]["retired"] is None
    cli(["check", str(path)])  # the file's own version, not that of the copy it is read as
    assert (f"schema version: 2 (this hpstore: {SCHEMA_VERSION}); opening it with the library "
            "upgrades it") in capsys.readouterr().out
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2  # the reader changed nothing
    conn.close()
    oracle = open_oracle(path, project_name="p")
    oracle.retire_trial("0", "old")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
    assert cli(["show", str(path), "0"]) == 0
    assert "Retired: " in capsys.readouterr().out


def test_a_reader_opening_an_old_file_as_a_worker_upgrades_it_reads_the_file(
        tmp_path, monkeypatch):
    from hpstore.store.sqlite import readonly

    path = tmp_path / "racing.db"
    _old_file(path, 2)
    copy = readonly._upgraded_copy

    def upgraded_meanwhile(*args):
        # the reader has read the file's version; a worker of today upgrades it now
        open_oracle(path, project_name="p").close()
        return copy(*args)

    monkeypatch.setattr(readonly, "_upgraded_copy", upgraded_meanwhile)
    conn = readonly.connect_readonly(path)  # was: "cannot be read: duplicate column name"
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA database_list").fetchone()[2] == str(path)  # the file
        assert conn.execute("SELECT trial_id FROM trials").fetchall() == [("0",)]
    finally:
        conn.close()


def test_watch_follows_an_old_file_once_a_worker_upgrades_it(tmp_path):
    # watch reads a file of an older schema through a copy made at open: once a worker of
    # today upgrades and runs it, watch opens it again, sees the search end, and ends
    path = tmp_path / "watched-old.db"
    _old_file(path, 2)
    watch = subprocess.Popen([sys.executable, "-m", "hpstore", "watch", str(path),
                              "--interval", "0.1"], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert "trials done 1/5" in watch.stdout.readline()  # the first view, of the copy
        with open_oracle(path, project_name="p") as oracle:
            while complete_one(oracle, "w") is not None:
                pass
        out, _ = watch.communicate(timeout=DEADLINE)  # ends by itself: finished
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    assert watch.returncode == 0
    assert "trials done 5/5" in out


def test_a_file_of_hpstores_first_version_1_is_its_own_and_upgraded(tmp_path, capsys):
    # Version 1 lost two indexes before its release, with no new version: a file that
    # still held them was refused as "not a search file as hpstore writes it"
    from hpstore.errors import ForeignSchemaError
    from hpstore.store.sqlite.schema import EARLY_VERSION_1

    path = tmp_path / "first.db"
    _old_file(path, 1)
    conn = sqlite3.connect(path)
    for _, _, _, sql in sorted(EARLY_VERSION_1):
        conn.execute(sql)
    conn.commit()
    conn.close()
    assert cli(["trials", str(path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["trial_id"] == "0"
    assert cli(["check", str(path)]) == 0, capsys.readouterr().out
    open_oracle(path, project_name="p").close()  # a writer upgrades it
    conn = sqlite3.connect(path)
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
    assert not indexes & {"trials_by_tuner", "trials_by_end"}
    other = tmp_path / "other.db"  # any other index stays another program's
    _old_file(other, 1)
    conn = sqlite3.connect(other)
    conn.execute("CREATE INDEX trials_by_end ON trials (project_id, created_at)")
    conn.commit()
    conn.close()
    with pytest.raises(ForeignSchemaError, match="trials_by_end"):
        open_oracle(other, project_name="p")


def test_check_of_an_old_file_the_library_cannot_write_does_not_promise_an_upgrade(
        tmp_path, capsys):
    # a read-only old file was told "opening it with the library upgrades it", where the
    # library refuses it as read-only
    path = tmp_path / "old.db"
    _old_file(path, 2)
    path.chmod(0o444)
    cli(["check", str(path)])
    said = capsys.readouterr().out
    assert "opening it with the library upgrades it" not in said, said
    assert "cannot upgrade it where it is" in said and "hpstore backup" in said
