"""The schema hpstore writes, and the check that a file holds exactly that.

SQLite runs whatever a file's schema says: a table replaced by a view runs the view's query
(an endless recursive one hangs every reader), and a trigger runs on every write (one added
to ``trials`` can rewrite scores as they are recorded). So before anything reads a file's
tables, its ``sqlite_master`` is compared with the one hpstore's own migrations produce for
the file's schema version: every table, index, view and trigger, by name and SQL text.

The expected schema is derived from the migration files (applied once per process to an
in-memory database), so a new numbered migration needs no change here. (A migration that
renames with ALTER TABLE makes SQLite rewrite stored SQL text, which other SQLite versions
may word differently: prefer creating and dropping objects.)
"""

from __future__ import annotations

import errno
import functools
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from hpstore import process_limits
from hpstore.errors import DatabaseError, ForeignSchemaError

APPLICATION_ID = 1213223764  # "HPST", set by the first migration
PAGE_SIZE = 1024  # bytes, set when a file is made; see database.Database._migrate


def schema_dir() -> Path:
    """The folder of migration files: inside the installed package, or the checkout's."""
    here = Path(__file__).resolve().parents[2]  # the hpstore package
    for candidate in (here / "_schema", here.parent / "schema"):
        if candidate.is_dir():
            return candidate
    raise DatabaseError(f"hpstore's schema files are missing (looked in {here / '_schema'}).")


def migrations() -> list[tuple[int, Path]]:
    """The numbered migration files, in order: ``[(1, .../0001_initial.sql), ...]``."""
    found = []
    for path in schema_dir().glob("[0-9][0-9][0-9][0-9]_*.sql"):
        found.append((int(path.name[:4]), path))
    found.sort()
    if [n for n, _ in found] != list(range(1, len(found) + 1)):
        raise DatabaseError(f"Migration files are not numbered 1..N: {[p.name for _, p in found]}")
    return found


SCHEMA_VERSION = len(migrations())


@functools.cache
def migration_script(path: Path) -> str:
    """A migration file's statements, read once a process (opening many searches then
    costs no open file per migration).

    Raises:
        DatabaseError: the process is out of open files (said with its limit).
    """
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        if exc.errno == errno.EMFILE and (said := process_limits.out_of_files(
                str(path), exc.strerror or "too many open files")):
            raise DatabaseError(said) from None
        raise

SchemaObject = tuple[str, str, str, str | None]  # (type, name, tbl_name, sql)

# Tables SQLite itself may add to any file (ANALYZE's statistics, AUTOINCREMENT's counters):
# they steer query plans or number rows, and run nothing.
_SQLITE_OWN = {
    ("table", "sqlite_stat1", "sqlite_stat1", "CREATE TABLE sqlite_stat1(tbl,idx,stat)"),
    ("table", "sqlite_stat4", "sqlite_stat4",
     "CREATE TABLE sqlite_stat4(tbl,idx,neq,nlt,ndlt,sample)"),
    ("table", "sqlite_sequence", "sqlite_sequence", "CREATE TABLE sqlite_sequence(name,seq)"),
}

# Two indexes of version 1 as hpstore's first development versions wrote it, dropped from
# 0001_initial.sql before its release without a new version: a file that still holds them
# is hpstore's, and the migration to version 2 drops them.
EARLY_VERSION_1 = {
    ("index", "trials_by_tuner", "trials",
     "CREATE INDEX trials_by_tuner ON trials (project_id, tuner_id) WHERE status = 'RUNNING'"),
    ("index", "trials_by_end", "trials",
     "CREATE INDEX trials_by_end ON trials (project_id, ended_at) WHERE ended_at IS NOT NULL"),
}

_cache: dict[int, frozenset[SchemaObject]] = {}
_cache_lock = threading.Lock()


def expected(version: int) -> frozenset[SchemaObject]:
    """The objects a file at ``version`` holds when hpstore wrote it: the migrations up to
    that version applied to an in-memory database (once per process)."""
    with _cache_lock:
        if version not in _cache:
            conn = sqlite3.connect(":memory:")
            try:
                for number, path in migrations():
                    if number > version:
                        break
                    conn.executescript(migration_script(path))
                    _cache[number] = frozenset(
                        conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
            finally:
                conn.close()
            if version not in _cache:
                raise DatabaseError(f"hpstore has no migration for schema version {version}.")
        return _cache[version]


def check(rows: Iterable[tuple[int, str, str, str, str | None]], where: str) -> None:
    """Compare a file's objects, ``(version, type, name, tbl_name, sql)`` rows of its
    ``sqlite_master``, with the schema hpstore writes for that version.

    A file at version 0 (not yet migrated) must be empty. Versions newer than hpstore's
    are the caller's to refuse before this.

    Raises:
        ForeignSchemaError: naming the first object hpstore did not write (or the first it
            wrote that is missing or changed).
    """
    rows = list(rows)
    if not rows:
        return
    version = int(rows[0][0])
    found = {(t, n, tbl, sql) for _, t, n, tbl, sql in rows}
    if version == 0:
        want: frozenset[SchemaObject] = frozenset()
    else:
        want = expected(version)
    extra = sorted(found - want - _SQLITE_OWN - (EARLY_VERSION_1 if version == 1 else set()),
                   key=_first_named)
    missing = sorted(want - found, key=_first_named)
    if not extra and not missing:
        return
    changed = {o[:2] for o in extra} & {o[:2] for o in missing}
    problems = [f"the {kind} {name!r} " + ("was changed by another program"
                                           if (kind, name) in changed
                                           else "was not written by hpstore")
                for kind, name, _, _ in extra]
    problems += [f"the {kind} {name!r} that hpstore writes is missing"
                 for kind, name, _, _ in missing if (kind, name) not in changed]
    shown = "; ".join(problems[:_NAMED])
    if len(problems) > _NAMED:
        shown += f"; and {len(problems) - _NAMED} more"
    # objects of one's own added beside hpstore's (a view, an index, a trigger): dropping
    # them gives hpstore's file back, which a backup would not do better
    added = [o for o in extra if o[:2] not in changed and o[0] != "table"]
    if added and len(added) == len(extra) and not missing:
        advice = ("If they are your own, keep them out of the file (a view as a TEMP VIEW "
                  "of your session, an index on a copy of the rows in a file of yours) and "
                  "drop them here: " + " ".join(f"DROP {kind.upper()} {_quoted(name)};"
                                            for kind, name, _, _ in added)
                  + " Else use the original file, or a backup of it.")
    else:
        advice = "Use the original file, or a backup of it."
    raise ForeignSchemaError(
        f"{where} is not a search file as hpstore writes it (schema version {version}): "
        f"{shown}. hpstore reads nothing from such a file, since SQLite would run the "
        f"definitions it holds. {advice}"
    )


_NAMED = 5  # differences a refusal names


_WRITES = (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE)


@functools.cache
def _own_names() -> frozenset[str]:
    """The views and triggers hpstore writes, at any schema version."""
    return frozenset(name for version in range(1, SCHEMA_VERSION + 1)
                     for kind, name, _, _ in expected(version) if kind in ("view", "trigger"))


class Refusals:
    """What :func:`guard` refused on one connection: the names of triggers and views not
    hpstore's (``found``), and exceptions raised inside it (``raised``)."""

    def __init__(self) -> None:
        self.found: list[str] = []
        self.raised: list[BaseException] = []

    def explain(self, where: str, text: str) -> BaseException | None:
        """What a statement SQLite refused as "not authorized" (or "access ... is
        prohibited") raises: a trigger's refusal, or what interrupted the authorizer. A
        signal's handler runs wherever Python is, in the authorizer too, and SQLite's
        module turns an exception there into a refusal: Ctrl-C then came out as "not
        authorized". One raised before the authorizer's first line is not seen there, and
        only a signal raises one: it is taken for Ctrl-C. None for any other failure."""
        if "not authorized" not in text and "prohibited" not in text:
            return None
        if self.raised:
            return self.raised.pop()
        if self.found:
            return added_while_open(where, self.found[-1])
        return KeyboardInterrupt()


def guard(refusals: Refusals) -> Callable[[int, str | None, str | None, str | None,
                                           str | None], int]:
    """An authorizer for a writer's connection: a statement that would run a trigger
    hpstore did not write, one that writes (inserts, updates or deletes rows), is refused
    as SQLite prepares it, its name put in ``refusals.found``. The schema is compared with
    hpstore's as a file opens; this keeps such a trigger added afterwards, while workers
    have it open, from writing through them (SQLite prepares every statement again once
    the schema changed), at no cost to a statement prepared before. (SQLite names the
    common table expressions of hpstore's own reads as it names views, so reads are let
    through; a trigger redefined under one of hpstore's own names is found at the file's
    next opening.)"""
    own = _own_names()
    found, raised = refusals.found, refusals.raised

    def authorize(action: int, first: str | None, second: str | None, database: str | None,
                  source: str | None) -> int:
        try:
            if source is None or source in own or action not in _WRITES:
                return sqlite3.SQLITE_OK
            found.append(source)
        except BaseException as exc:  # (Ctrl-C: see Refusals.explain)
            raised.append(exc)
        return sqlite3.SQLITE_DENY

    return authorize


def added_while_open(where: str, name: str) -> ForeignSchemaError:
    """The refusal of a statement that would have run ``name``, which :func:`guard`
    found."""
    return ForeignSchemaError(
        f"{where} was changed by another program while this process had it open: the "
        f"trigger or view {name!r} was not written by hpstore, and a write would have run "
        "it. Nothing of this step was written, nor is any step that would run it. "
        f"Drop it (DROP TRIGGER {_quoted(name)};) and run again, or use a backup of the file.")


def keep_in_wal(conn: sqlite3.Connection, where: str) -> None:
    """Put a file in SQLite's rollback-journal mode back in WAL mode, as hpstore makes every
    file: a copy made with ``VACUUM INTO``, or ``sqlite-utils disable-wal``, comes out so,
    and there a reader blocks every writer (one ``BEGIN; SELECT`` stopped the workers) and
    each commit costs more. Called as a writer opens the file, holding the schema lock.

    Raises:
        DatabaseError: the mode cannot change now (another program has the file open).
    """
    if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    try:
        mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
    except sqlite3.OperationalError as exc:
        mode = str(exc)
    if mode != "wal":
        raise DatabaseError(
            f"{where} is in SQLite's rollback-journal mode (a copy made with VACUUM INTO, or "
            "sqlite-utils disable-wal), where one reader stops every writer. hpstore puts it "
            f"back in WAL mode as it opens it, which needs a moment with no other program "
            f"using the file ({mode}): close the others (sqlite3, Datasette) and run again.")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _first_named(obj: SchemaObject) -> tuple[int, str]:
    # What runs code first (views, triggers), then what holds data, then indexes.
    order = {"view": 0, "trigger": 1, "table": 2, "index": 3}
    return order.get(obj[0], 4), obj[1]


def _after_fork_in_child() -> None:
    global _cache_lock
    _cache_lock = threading.Lock()  # a parent's thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
