"""Files hpstore must refuse: each a clear error, and the file byte-for-byte unchanged."""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from _faults import NOBODY, become
from _workers import open_oracle

import hpstore

ROOT = Path(__file__).resolve().parent.parent

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


def test_check_calls_a_truncated_search_damaged_exit_1_and_not_no_search_exit_2(tmp_path):
    # its exit code said "no search at all" (2), as for another program's file: a script
    # reading it took the search cut short by a copy for a file to skip
    path = tmp_path / "search.db"
    make_search(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    done = subprocess.run([sys.executable, "-m", "hpstore", "check", str(path)],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 1, done
    assert done.stdout.startswith("integrity: DAMAGED\n") and "truncated" in done.stdout
    path.write_bytes(b"these are my notes, not a database\n" * 50)
    done = subprocess.run([sys.executable, "-m", "hpstore", "check", str(path)],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2 and "not a SQLite database" in done.stderr, done


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


@pytest.mark.parametrize(("given", "error"), [
    ("", ValueError), (123, TypeError), (b"x.db", TypeError), (["x.db"], TypeError)])
def test_a_database_argument_that_names_no_file_is_refused_naming_it(tmp_path, monkeypatch,
                                                                      given, error):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=r"`database` must be the path of a search file.*received"):
        open_oracle(given, max_trials=3)
    assert list(tmp_path.iterdir()) == []  # nothing made, not even in the current folder


def test_paths_too_long_for_the_lock_folder_or_sqlite_are_refused_making_nothing(tmp_path):
    # a valid file name whose lock folder (NAME.hpstore) is over 255 bytes raised OSError;
    # a path SQLite cannot open with its journal failed as "unable to open database file"
    # and left a lock folder behind
    name = "n" * 250 + ".db"
    with pytest.raises(hpstore.DatabaseError, match="Shorten the file name by 6 bytes"):
        open_oracle(str(tmp_path / name))
    deep = tmp_path.joinpath(*["d" * 100] * 3)
    deep.mkdir(parents=True)
    path = deep / ("f" * (512 - len(os.fsencode(deep)) - 40) + ".db")  # 475+ bytes in all
    with pytest.raises(hpstore.DatabaseError, match="too long for SQLite") as raised:
        open_oracle(str(path))
    assert "Shorten the names of its folders or its own by" in str(raised.value)
    assert sorted(os.listdir(tmp_path)) == ["d" * 100] and not any(deep.iterdir())
    with pytest.raises(hpstore.DatabaseError, match="does not exist"):  # said first
        open_oracle(str(deep / "missing" / path.name))
    shorter = deep / "short.db"  # a path that fits works as ever
    open_oracle(str(shorter), max_trials=2).close()
    assert shorter.exists()


def test_an_empty_file_becomes_a_search(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    oracle = open_oracle(str(path), max_trials=2)
    assert oracle.create_trial("t").status == "RUNNING"


def _open_as_nobody(path: str, results) -> None:
    become(NOBODY)  # root ignores file modes; test as an ordinary user
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


def test_a_file_no_one_may_write_is_refused_even_to_root(tmp_path):
    # root may write any file: the mode (chmod 444) is what says it is read-only
    path = tmp_path / "search.db"
    make_search(path)
    os.chmod(path, 0o444)
    before = digest(path)
    with pytest.raises(hpstore.ReadOnlyDatabaseError, match="is read-only"):
        open_oracle(str(path), max_trials=3)
    done = subprocess.run([sys.executable, "-m", "hpstore", "note", str(path), "0", "hi"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2 and "read-only" in done.stderr, done.stderr
    assert digest(path) == before


@pytest.mark.skipif(shutil.which("chattr") is None or not hasattr(os, "geteuid")
                    or os.geteuid() != 0, reason="chattr +i needs root and e2fsprogs")
def test_an_immutable_file_is_said_to_be_so_not_read_only(tmp_path):
    # "is read-only ... make it writable", of a file whose mode (0644) lets its owner write
    path = tmp_path / "search.db"
    make_search(path)
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("this file system keeps no immutable flag")
    try:
        with pytest.raises(hpstore.ReadOnlyDatabaseError,
                           match=r"though its mode lets you: .*chattr -i"):
            open_oracle(str(path), max_trials=3)
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    open_oracle(str(path), max_trials=3).close()


def test_a_file_being_created_by_another_process_is_not_taken_for_a_foreign_one(
        tmp_path, monkeypatch):
    # Another process's first migration commits while this one reads the file's marks.
    # Whatever statement boundary the commit falls on, the marks must come from one
    # snapshot: an empty file or a search, never "tables but no hpstore mark".
    from hpstore.store.sqlite import database

    path = tmp_path / "race.db"
    real_connect, migrated = sqlite3.connect, []

    class CommitsBetweenStatements:
        def __init__(self, conn):
            self.conn = conn

        def execute(self, *args):
            result = self.conn.execute(*args).fetchall()
            if not migrated:
                migrated.append(True)
                monkeypatch.undo()  # the other process opens with plain SQLite
                database.Database(path).close()  # and migrates, now
            return _Rows(result)

        def close(self):
            self.conn.close()

    class _Rows:
        def __init__(self, rows):
            self.rows = rows

        def fetchone(self):
            return self.rows[0] if self.rows else None

        def fetchall(self):
            return self.rows

    path.touch()
    sqlite3.connect(path).execute("PRAGMA journal_mode = WAL").fetchone()  # a new, empty file
    monkeypatch.setattr(database.sqlite3, "connect",
                        lambda *a, **k: CommitsBetweenStatements(real_connect(*a, **k)))
    database._inspect_database(path)  # raises NotAnHpstoreFileError if read apart
    assert migrated
    with open_oracle(str(path), max_trials=1) as oracle:
        assert oracle.create_trial("w").status == "RUNNING"


# -- one file, one name ---------------------------------------------------------------------------
def test_a_file_with_two_names_is_refused_under_either(tmp_path):
    # SQLite names the log after the path, hpstore its locks: workers on two names of one
    # file would each keep their own and corrupt it.
    path = tmp_path / "a.db"
    make_search(path)
    os.link(path, tmp_path / "b.db")
    for name in ("a.db", "b.db"):
        refused(tmp_path / name, hpstore.FileIdentityError, "2 names")


def test_a_file_with_two_names_is_refused_for_them_even_in_the_middle_of_a_checkpoint(
        tmp_path):
    # A worker checkpointing under one name writes page 1 (the new page count) before the
    # file has grown to it; opened under the other name, where no log lies beside it, the
    # header looks truncated. The names are what is wrong, and what is said.
    path = tmp_path / "a.db"
    make_search(path)
    data = bytearray(path.read_bytes())
    pages = int.from_bytes(data[28:32], "big")
    data[28:32] = (pages + 3).to_bytes(4, "big")  # as page 1 reads before the file grows
    path.write_bytes(bytes(data))
    os.link(path, tmp_path / "b.db")
    refused(tmp_path / "b.db", hpstore.FileIdentityError, "2 names")


def test_a_new_file_caught_while_linked_into_place_is_opened(tmp_path):
    # A new file is built in the lock folder and linked into place; until its builder
    # removes the name it was built under, it has two. A process opening it in that moment
    # (found by the stress test) must not take it for a hard link a person made.
    path = tmp_path / "a.db"
    make_search(path)
    building = tmp_path / "a.db.hpstore" / "creating-0123456789abcdef.db"
    building.parent.mkdir(exist_ok=True)
    os.link(path, building)
    assert os.stat(path).st_nlink == 2
    assert len(open_oracle(path).trials) == 3
    # a second name anywhere else is still refused, as is a third
    os.link(path, tmp_path / "b.db")
    refused(path, hpstore.FileIdentityError, "3 names")
    os.unlink(building)
    refused(path, hpstore.FileIdentityError, "2 names")


def test_the_tools_still_read_a_file_with_two_names(tmp_path, capsys):
    from hpstore.cli import main

    path = tmp_path / "a.db"
    make_search(path)
    os.link(path, tmp_path / "b.db")
    assert main(["trials", str(tmp_path / "b.db"), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert len(json.loads(out)) == 3
    # and says what it may not show: another name's log is not read under this one
    assert "b.db has 2 names" in err and "hpstore: warning:" in err
    assert main(["check", str(path)]) == 1  # and check says why the library refuses it
    assert "names: 2" in capsys.readouterr().out


@pytest.mark.parametrize(("edit", "named"), [
    ("UPDATE trials SET score = 'abc' WHERE number = 1", "'abc'"),
    # (a status hpstore never writes, in the log, whose table has no CHECK: it was
    # called clean, and `hpstore history` showed RUNNING -> BOGUS)
    ("UPDATE transitions SET to_status = 'BOGUS' WHERE id = (SELECT max(id) FROM "
     "transitions)", "'BOGUS'")])
def test_check_reports_a_value_at_fault_beside_its_other_findings(tmp_path, capsys, edit,
                                                                  named):
    # on a file no tool had looked at, check stopped at the value with one error line
    # (no integrity, schema or trials line)
    from hpstore.cli import main

    path = tmp_path / "a.db"
    make_search(path)
    conn = sqlite3.connect(path)
    conn.execute(edit)
    conn.commit()
    conn.close()
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "integrity: ok" in out and "contents:" in out and named in out
    assert "project 'untitled_project'" in out
    assert main(["history", str(path)]) == 2  # and the other tools refuse it
    assert named in capsys.readouterr().err


# -- a lock folder that is, or holds, a symbolic link ---------------------------------------------
def _link_cases(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    """(search file, link target) for each kind of planted link."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return {"folder": (tmp_path / "f.db", elsewhere),
            "schema.lock": (tmp_path / "s.db", elsewhere / "schema-target"),
            "oracle.lock": (tmp_path / "o.db", elsewhere / "oracle-target"),
            "worker file": (tmp_path / "w.db", elsewhere / "worker-target")}


@pytest.mark.parametrize("kind", ["folder", "schema.lock", "oracle.lock", "worker file"])
@pytest.mark.parametrize("existing", [False, True], ids=["new file", "existing search"])
def test_a_symbolic_link_in_the_lock_folder_is_refused_creating_nothing(tmp_path, kind,
                                                                        existing):
    path, target = _link_cases(tmp_path)[kind]
    if existing:
        make_search(path)
    sidecar = path.with_name(path.name + ".hpstore")
    if kind == "folder":
        sidecar.symlink_to(target, target_is_directory=True)
        culprit = sidecar
    else:
        sidecar.mkdir(exist_ok=True)
        name = {"worker file": "worker-0123456789abcdef.alive"}.get(kind, kind)
        culprit = sidecar / name
        culprit.symlink_to(target)
    before = {p: digest(p) for p in tmp_path.rglob("*") if p.is_file()}
    names = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(hpstore.FileIdentityError, match="symbolic link") as raised:
        open_oracle(str(path), max_trials=3)
    assert str(culprit) in str(raised.value)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == names  # no .db, no lock file
    assert {p: digest(p) for p in tmp_path.rglob("*") if p.is_file()} == before
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_a_lock_file_made_a_link_while_the_search_runs_is_not_followed(tmp_path):
    path = tmp_path / "run.db"
    oracle = open_oracle(str(path), max_trials=5)
    oracle.create_trial("w")
    oracle.close()
    lock = tmp_path / "run.db.hpstore" / "oracle.lock"
    target = tmp_path / "target"
    lock.unlink()
    lock.symlink_to(target)
    with pytest.raises(hpstore.FileIdentityError, match="symbolic link"):
        open_oracle(str(path)).create_trial("w2")
    assert not target.exists()


# -- crafted schemas: views and triggers in place of hpstore's own ---------------------------------
ENDLESS = ("WITH RECURSIVE forever(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM forever) "
           "SELECT t.* FROM forever, {table}_x AS t")  # every row of the table, endlessly
RIGGED = ("CREATE TRIGGER rig AFTER UPDATE OF status ON trials BEGIN "
          "UPDATE trials SET score = -1000 WHERE id = new.id; END")


def craft(path: Path, statements: list[str]) -> None:
    conn = sqlite3.connect(path)
    conn.executescript("PRAGMA foreign_keys = OFF; PRAGMA legacy_alter_table = ON;\n"
                       + ";\n".join(statements) + ";")
    conn.close()


CRAFTED = {
    "projects is an endless view": (["ALTER TABLE projects RENAME TO projects_x",
                                     "CREATE VIEW projects AS " + ENDLESS.format(table="projects")],
                                    "view 'projects'"),
    "trials is an endless view": (["ALTER TABLE trials RENAME TO trials_x",
                                   "CREATE VIEW trials AS " + ENDLESS.format(table="trials")],
                                  "view 'trials'"),
    "a trigger rigs scores": ([RIGGED], "trigger 'rig'"),
    "a view changed": (["DROP VIEW trial_overview",
                        "CREATE VIEW trial_overview AS SELECT 1 AS trial_id"],
                       "view 'trial_overview' was changed"),
    "an index dropped": (["DROP INDEX trials_by_values"], "index 'trials_by_values'"),
    "a table added": (["CREATE TABLE notes (x)"], "table 'notes'"),
}


def _open_library(path: str, results) -> None:
    try:
        open_oracle(path).close()
        results.put(("opened", ""))
    except Exception as exc:
        results.put((type(exc).__name__, str(exc)))


@pytest.mark.parametrize("case", list(CRAFTED))
def test_a_crafted_schema_is_refused_naming_the_object(tmp_path, case):
    statements, named = CRAFTED[case]
    path = tmp_path / "crafted.db"
    make_search(path)
    craft(path, statements)
    before = digest(path)
    # in a child with a deadline: an endless view must not hang the caller
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    proc = ctx.Process(target=_open_library, args=(str(path), results), daemon=True)
    proc.start()
    try:
        kind, message = results.get(timeout=60)
    finally:
        proc.kill()
        proc.join(60)
    assert kind == "ForeignSchemaError", message
    assert named in message and str(path) in message
    assert digest(path) == before
    # every tool refuses it too, in a bounded time, with one line; `check` names it
    for tool in (["check"], ["trials"], ["summary"], ["sql", "SELECT * FROM trials"]):
        done = subprocess.run([sys.executable, "-m", "hpstore", *tool[:1], str(path),
                               *tool[1:]], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == (1 if tool == ["check"] else 2), (tool, done.stderr)
        assert named in done.stdout + done.stderr and "Traceback" not in done.stderr, tool
    assert digest(path) == before


def test_a_file_sqlite_analysed_still_opens(tmp_path):
    # ANALYZE (run by a user in the sqlite3 shell) adds SQLite's own statistics tables
    path = tmp_path / "analysed.db"
    make_search(path)
    conn = sqlite3.connect(path)
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()
    with open_oracle(str(path)) as oracle:
        assert len(oracle.trials) == 3
    from hpstore.store.sqlite.readonly import connect_readonly

    connect_readonly(path).close()


def test_the_expected_schema_comes_from_the_migration_files(tmp_path, monkeypatch):
    # A new numbered migration changes what is expected, with no list to update.
    from hpstore.store.sqlite import schema

    folder = tmp_path / "schema"
    shutil.copytree(schema.schema_dir(), folder)
    n = schema.SCHEMA_VERSION + 1
    (folder / f"{n:04d}_notes.sql").write_text("CREATE TABLE notes (x);\n", encoding="utf-8")
    monkeypatch.setattr(schema, "schema_dir", lambda: folder)
    monkeypatch.setattr(schema, "_cache", {})
    names = {o[1] for o in schema.expected(n)}
    assert "notes" in names and "trials" in names
    assert "notes" not in {o[1] for o in schema.expected(n - 1)}


def test_a_metric_value_changed_by_hand_after_a_tool_looked_is_named_not_a_traceback(
        tmp_path, capsys):
    # rows a tool had checked are not read again (check marks); one changed by hand since
    # reached `hpstore show` as text, which raised a TypeError deep in the tool
    from hpstore.cli import main

    path = tmp_path / "a.db"
    make_search(path)
    assert main(["summary", str(path)]) == 0  # looked at: its rows are marked checked
    conn = sqlite3.connect(path)
    conn.execute("UPDATE observations SET value = 'zz' WHERE id = (SELECT min(id) FROM "
                 "observations)")
    conn.commit()
    conn.close()
    capsys.readouterr()
    assert main(["show", str(path), "0"]) == 2
    err = capsys.readouterr().err
    assert "observations.value" in err and "'zz'" in err and err.count("\n") == 1


# (table, column) of hpstore's number and time columns, changed by hand below
CHANGED_BY_HAND = [("trials", "started_at"), ("trials", "ended_at"), ("trials", "created_at"),
                   ("trials", "run_count"), ("trials", "number"), ("transitions", "at"),
                   ("transitions", "pid"), ("observations", "step"), ("observations", "at"),
                   ("observations", "run"), ("projects", "created_at"), ("trials", "score"),
                   ("transitions", "to_status")]


@pytest.mark.parametrize("looked_first", [False, True], ids=["fresh", "looked-at-first"])
@pytest.mark.parametrize("table, column", CHANGED_BY_HAND)
def test_a_number_or_time_changed_by_hand_into_text_is_named_not_a_traceback(
        tmp_path, capsys, table, column, looked_first):
    # the contents check read only text and JSON columns: `check` called such a file fine,
    # and `trials`, `history`, `show`, `export`, `report` and the dashboard ended on a
    # TypeError (arithmetic on a time, sorting steps)
    from hpstore.cli import main

    path = tmp_path / "a.db"
    make_search(path)
    if looked_first:  # its rows are marked checked: read again only where a tool reads them
        assert main(["summary", str(path)]) == 0
    conn = sqlite3.connect(path)
    conn.execute(f"UPDATE {table} SET {column} = 'abc' WHERE rowid = "  # (test constants)
                 f"(SELECT max(rowid) FROM {table})")
    conn.commit()
    conn.close()
    before = digest(path)
    named = f"{table}.{column} holds 'abc'"
    capsys.readouterr()
    if not looked_first:
        assert main(["check", str(path)]) == 1
        assert named in capsys.readouterr().out
    for tool in (["trials"], ["history"], ["show", "2"], ["export"], ["summary"], ["best"],
                 ["report", "-o", str(tmp_path / "r.html"), "--force"]):
        code = main([tool[0], str(path), *tool[1:]])
        err = capsys.readouterr().err
        assert "Traceback" not in err and code in (0, 2), (tool, code, err)
        if code == 2 or not looked_first:
            assert code == 2 and named in err and err.count("\n") == 1, (tool, err)
    assert digest(path) == before


def test_a_schema_name_damaged_into_bytes_that_are_not_utf8_is_named_as_damage(
        tmp_path, capsys):
    # SQLite's error quotes the damaged name; Python could not decode it and raised a bare
    # UnicodeDecodeError, from the library and (as its message) from every tool
    from hpstore.cli import main

    path = tmp_path / "a.db"
    make_search(path)
    data = bytearray(path.read_bytes())
    data[data.index(b"tableprojectsprojects") + 8] = 0xB1  # "pro\xb1ects"
    path.write_bytes(bytes(data))
    refused(path, hpstore.NotAnHpstoreFileError, "damaged")
    for command in (["summary"], ["trials"], ["check"], ["sql", "SELECT 1"]):
        assert main([command[0], str(path), *command[1:]]) == 2
        err = capsys.readouterr().err
        assert err == (f"hpstore: error: {path} cannot be read: damaged bytes in its schema, "
                       "which are not UTF-8 text.\n")
    assert digest(path) == hashlib.sha256(bytes(data)).hexdigest()


def test_check_reports_a_damaged_data_page_as_findings(tmp_path, capsys):
    # the contents check met the damaged page and hpstore check ended on a traceback
    # (sqlite3.DatabaseError); a page that stops integrity_check itself ended it on one
    # error line, without the findings
    from hpstore.cli import main

    path = tmp_path / "a.db"
    with open_oracle(str(path), max_trials=5) as oracle:
        trial = oracle.create_trial("t")
        for step in range(200):  # observations over several pages, under an interior one
            oracle.update_trial(trial.trial_id, {"loss": float(step)}, step=step)
    conn = sqlite3.connect(path)
    (root,) = conn.execute(
        "SELECT rootpage FROM sqlite_master WHERE name = 'observations'").fetchone()
    page = (root - 1) * conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(path.read_bytes())
    assert data[page] == 0x05  # an interior page of a table: its last child at bytes 8-11
    data[page + 8:page + 12] = (2**24 - 16).to_bytes(4, "big")  # a page past the file's end
    path.write_bytes(bytes(data))
    assert main(["check", str(path)]) == 1
    out, err = capsys.readouterr()
    assert err == ""
    assert "integrity: DAMAGED" in out and "Restore the file from a backup" in out
    assert "foreign keys: cannot be checked" in out
    assert "contents: cannot be read: database disk image is malformed" in out
    assert "project 'untitled_project'" in out
    assert digest(path) == hashlib.sha256(bytes(data)).hexdigest()


def test_the_contents_check_covers_every_number_column_of_the_schema(tmp_path):
    # a column added by a later migration is checked too, or this names it
    from hpstore.store.sqlite import readonly

    path = tmp_path / "a.db"
    make_search(path)
    conn = sqlite3.connect(path)
    keys = {"id", "project_id", "trial"}  # row ids and the keys joining them
    for table, (columns, _, query) in readonly._CONTENT_CHECKS.items():
        kinds = {name: kind for _, name, kind, *_ in conn.execute(
            "SELECT * FROM pragma_table_info(?)", (table,)) if name not in keys}
        assert set(columns) <= set(kinds), table
        whole = {n for n, k in kinds.items() if k == "INTEGER"}
        numbers = {n for n, k in kinds.items() if k == "REAL"}
        assert set(readonly._INTEGERS[table]) == whole, table
        assert set(readonly._REALS[table]) == numbers, table
        for name in whole:
            assert f"typeof({name}) NOT IN ('integer', 'null')" in query, (table, name)
        for name in numbers:
            assert f"typeof({name}) NOT IN ('real', 'integer', 'null')" in query, (table, name)
    conn.close()


class _LogSeenThenGone(type(Path())):  # type: ignore[misc]
    """A search path whose log was there when looked for, and is gone when its mode is
    asked: the last worker of a search closed and removed it in between."""

    def exists(self, *args, **kwargs):
        return self.name.endswith("-wal") or super().exists(*args, **kwargs)


def test_a_log_removed_while_a_worker_opens_the_file_is_not_called_read_only(tmp_path):
    # One of sixteen workers opening a new search at once was refused: "new.db-wal is
    # read-only (it may belong to another user)", the log having gone between the look
    # and the question whether it can be written
    from hpstore.store.sqlite.checks import check_writable

    path = tmp_path / "s.db"
    open_oracle(str(path)).close()  # closed: its log removed
    assert not path.with_name("s.db-wal").exists()
    check_writable(_LogSeenThenGone(path))  # (raised ReadOnlyDatabaseError)
