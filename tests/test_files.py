"""Files hpstore must refuse: each a clear error, and the file byte-for-byte unchanged."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from _workers import open_oracle

import hpstore


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def refused(path: Path, error: type[Exception], text: str) -> None:
    """Opening ``path`` raises ``error`` mentioning ``text``, and nothing is written."""
    before = digest(path)
    siblings = set(path.parent.iterdir())
    with pytest.raises(error, match=text):
        open_oracle(str(path), max_trials=3)
    assert digest(path) == before
    assert set(path.parent.iterdir()) == siblings  # no -wal, -shm or lock files either


def make_search(path: Path) -> None:
    oracle = open_oracle(str(path), max_trials=5)
    for _ in range(3):
        t = oracle.create_trial("t")
        oracle.update_trial(t.trial_id, {"loss": 1.0})
        t.status = "COMPLETED"
        oracle.end_trial(t)
    oracle.close()
    # fold the WAL into the main file so the copy below is the whole search
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    shutil.rmtree(path.with_name(path.name + ".hpstore"), ignore_errors=True)


def test_not_sqlite(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 50)
    refused(path, hpstore.NotAnHpstoreFileError, "not a SQLite database")


def test_short_garbage(tmp_path):
    path = tmp_path / "tiny.db"
    path.write_bytes(b"SQLite")
    refused(path, hpstore.NotAnHpstoreFileError, "not a SQLite database")


def test_truncated_search_file(tmp_path):
    path = tmp_path / "search.db"
    make_search(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    refused(path, hpstore.NotAnHpstoreFileError, "truncated")


def test_another_applications_sqlite_file(tmp_path):
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.execute("INSERT INTO invoices (total) VALUES (12.5)")
    conn.commit()
    conn.close()
    refused(path, hpstore.NotAnHpstoreFileError, "another application")


def test_another_applications_marked_file(tmp_path):
    path = tmp_path / "marked.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 42")
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    refused(path, hpstore.NotAnHpstoreFileError, "application_id 42")


def test_newer_schema_version(tmp_path):
    path = tmp_path / "future.db"
    make_search(path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    refused(path, hpstore.SchemaVersionError, r"newer hpstore.*99")


def test_a_folder_and_a_missing_folder(tmp_path):
    with pytest.raises(hpstore.NotAnHpstoreFileError, match="folder"):
        open_oracle(str(tmp_path), max_trials=3)
    with pytest.raises(hpstore.DatabaseError, match="does not exist"):
        open_oracle(str(tmp_path / "no" / "such" / "x.db"), max_trials=3)
    assert not (tmp_path / "no").exists()


def test_an_empty_file_becomes_a_search(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    oracle = open_oracle(str(path), max_trials=2)
    assert oracle.create_trial("t").status == "RUNNING"


def _open_as_nobody(path: str, results) -> None:
    if os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)  # root ignores file modes; test as an ordinary user
    try:
        open_oracle(path, max_trials=3)
        results.put(("opened", ""))
    except Exception as exc:
        results.put((type(exc).__name__, str(exc)))


@pytest.mark.parametrize("what", ["file", "folder"])
def test_read_only_file_or_folder(what):
    folder = Path(tempfile.mkdtemp(prefix="hpstore-ro-"))
    try:
        path = folder / "search.db"
        make_search(path)
        os.chmod(folder, 0o755)
        os.chmod(path, 0o444 if what == "file" else 0o666)
        if what == "folder":
            os.chmod(folder, 0o555)
        before = digest(path)
        ctx = mp.get_context("spawn")
        results = ctx.Queue()
        proc = ctx.Process(target=_open_as_nobody, args=(str(path), results))
        proc.start()
        kind, message = results.get(timeout=60)
        proc.join(60)
        assert kind == "ReadOnlyDatabaseError", message
        assert "read-only" in message and str(path.parent) in message
        assert digest(path) == before
    finally:
        os.chmod(folder, 0o755)
        shutil.rmtree(folder)


def test_a_file_being_created_by_another_process_is_not_taken_for_a_foreign_one(
        tmp_path, monkeypatch):
    # Another process's first migration commits while this one reads the file's marks.
    # Whatever statement boundary the commit falls on, the marks must come from one
    # snapshot: an empty file or a search, never "tables but no hpstore mark".
    from hpstore.store import database

    path = tmp_path / "race.db"
    real_connect, migrated = sqlite3.connect, []

    class CommitsBetweenStatements:
        def __init__(self, conn):
            self.conn = conn

        def execute(self, *args):
            result = self.conn.execute(*args).fetchone()
            if not migrated:
                migrated.append(True)
                monkeypatch.undo()  # the other process opens with plain SQLite
                database.Database(path).close()  # and migrates, now
            return _Rows(result)

        def close(self):
            self.conn.close()

    class _Rows:
        def __init__(self, row):
            self.row = row

        def fetchone(self):
            return self.row

    path.touch()
    sqlite3.connect(path).execute("PRAGMA journal_mode = WAL").fetchone()  # a new, empty file
    monkeypatch.setattr(database.sqlite3, "connect",
                        lambda *a, **k: CommitsBetweenStatements(real_connect(*a, **k)))
    database._inspect_database(path)  # raises NotAnHpstoreFileError if read apart
    assert migrated
    with open_oracle(str(path), max_trials=1) as oracle:
        assert oracle.create_trial("w").status == "RUNNING"
