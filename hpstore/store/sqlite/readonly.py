"""Reading a SQLite search file without ever writing it: the tools, notebooks, dashboard.

Every connection here is opened with ``mode=ro`` and ``PRAGMA query_only``, so it cannot
write, never creates a file that is not there, and (the file being in WAL mode) never
blocks the processes that are writing the search. Before anything is read, the schema is
compared with hpstore's own (a crafted view or trigger runs nothing) and, for the tools
that interpret the contents, every row is checked to hold what hpstore writes.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hpstore.errors import (
    DatabaseError,
    HpStoreError,
    NotAnHpstoreFileError,
    QueryTimeoutError,
    ReadOnlyDatabaseError,
)
from hpstore.store.decode import ANY_JSON, check_row, damaged, from_json
from hpstore.store.sqlite import checkmarks, files
from hpstore.store.sqlite.checks import (
    READ_LOCK_WAIT,
    SQLITE_FAILURES,
    UNREADABLE,
    check_schema,
    held_locked,
    inspect_header,
    no_room_to_open,
    raised_by_sqlite,
    switched_read_only,
    unreadable,
)
from hpstore.store.sqlite.database import Database
from hpstore.store.sqlite.limits import guard_queries, is_interruption, restrict_user_sql
from hpstore.store.sqlite.locks import Session, stop_watching
from hpstore.store.sqlite.schema import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    migration_script,
    migrations,
)
from hpstore.store.statements import first_words, holds_nothing
from hpstore.trial import TrialStatus


def connect_readonly(path: str | os.PathLike[str], *, check: bool = True
                     ) -> sqlite3.Connection:
    """A read-only sqlite3 connection to a search file.

    With ``check`` (the tools that interpret the contents), every text and JSON column is
    first checked to hold what hpstore writes (see :func:`check_contents`); ``hpstore sql``
    and notebooks read the file as it is.

    Raises:
        DatabaseError: the file does not exist (it is not created); the path cannot be
            followed (a loop of symbolic links, longer than the system allows) or is too
            long for SQLite; no room
            on its disk for SQLite's log (said so, the file never called damaged).
        NotAnHpstoreFileError: not SQLite, damaged, not written by hpstore, or (with
            ``check``) holding a value hpstore never writes; a folder, a device, a FIFO or
            a socket.
    """
    path = files.expanded(path)
    files.resolved(path)  # a loop of links, a path too long: said before anything else
    if not files.is_regular(path, "; give the path of the search file itself (such as "
                                  "search.db)"):
        raise DatabaseError(f"{path} does not exist; give the path of a search file.")
    if not inspect_header(path):
        raise NotAnHpstoreFileError(f"{path} is empty: no search has been written to it yet.")
    files.check_sqlite_path(path.resolve(), "read")  # (a file moved deep into a tree)
    uri = f"{path.resolve().as_uri()}?mode=ro"
    if not path.with_name(path.name + "-wal").exists() and not (
            os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        # SQLite would create -wal and -shm for a WAL file even read-only: impossible in a
        # read-only folder, and files of ours would stop the file's owner. With no log there
        # is nothing but the file to read.
        uri += "&immutable=1"
    conn = sqlite3.connect(uri, uri=True, timeout=READ_LOCK_WAIT)
    try:
        guard_queries(conn)  # Ctrl-C stops a long query (the contents check too)
        conn.execute("PRAGMA query_only = ON")
        _forbid_attach(conn)
        if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            raise NotAnHpstoreFileError(f"{path} is a SQLite file, but not an hpstore search.")
        check_schema(conn, path)  # before any query: a crafted view or trigger runs nothing
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version < SCHEMA_VERSION:
            copy = _upgraded_copy(conn)
            if copy is None:  # a worker upgraded the file meanwhile: read the file itself
                check_schema(conn, path)
            else:
                conn = copy
        if check:
            check_contents(conn, path.resolve())
    except UNREADABLE as exc:
        conn.close()
        if is_interruption(exc):
            raise KeyboardInterrupt from None
        raise held_locked(path, exc) or no_room_to_open(path, exc) or \
            switched_read_only(path, exc) or \
            NotAnHpstoreFileError(f"{path} cannot be read: {unreadable(exc)}.") from None
    except BaseException:
        conn.close()
        raise
    return conn


class _Upgraded(sqlite3.Connection):
    """An old file's copy in memory, which remembers the schema version of the file."""

    file_version = 0


def _upgraded_copy(conn: sqlite3.Connection) -> sqlite3.Connection | None:
    """A file written by an older hpstore, read as this one's schema: copied into memory
    and migrated there, so every query sees today's tables and the file is not touched.

    The copy is a snapshot: a reader of an old file does not follow later writes (a
    process of this hpstore that writes the file migrates it first, and a new reader sees
    that). None when the file was upgraded by then: read it, not a copy."""
    memory = sqlite3.connect(":memory:", factory=_Upgraded)
    try:
        conn.backup(memory)
        # The copy's own version, read from it: a worker of today may have upgraded the
        # file since its version was read (None then: the file itself is read)
        version = memory.file_version = memory.execute("PRAGMA user_version").fetchone()[0]
        if version >= SCHEMA_VERSION:
            memory.close()
            return None
        for number, migration in migrations():
            if number > version:
                memory.executescript(f"BEGIN;\n{migration_script(migration)}\n"
                                     f"PRAGMA user_version = {number};\nCOMMIT;")
        guard_queries(memory)
        memory.execute("PRAGMA query_only = ON")
        _forbid_attach(memory)
    except BaseException:
        memory.close()
        raise
    conn.close()
    return memory


def _forbid_attach(conn: sqlite3.Connection) -> None:
    """Refuse ATTACH (and VACUUM INTO, which attaches its target) on a read-only connection.

    ``mode=ro`` and ``query_only`` cover the search file only: a database attached later is
    opened read-write, so ``ATTACH 'x.db'`` or ``VACUUM INTO 'copy.db'`` would create files
    wherever the user can write.
    """
    if hasattr(conn, "setlimit"):  # Python 3.11+: "too many attached databases - max 0"
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        return
    attach = (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH)
    conn.set_authorizer(
        lambda action, *_: sqlite3.SQLITE_DENY if action in attach else sqlite3.SQLITE_OK)


def open_database(path: str | os.PathLike[str]) -> Any:
    """The search file as a read-only ``sqlite_utils.Database``, for notebooks:
    ``open_database("search.db")["trial_overview"].rows_where("status = ?", ["COMPLETED"])``.

    Raises:
        TypeError: ``path`` is not a path (None, a number).
        ValueError: an empty or blank path, one holding a NUL, or a URL of another kind
            (SQLAlchemy's ``sqlite:///search.db``: give the path itself).
        HpStoreError: a PostgreSQL URL (read it with ``hpstore.trials_dataframe`` or
            ``hpstore sql``), or ``:memory:``.
        DatabaseError, NotAnHpstoreFileError: as :func:`connect_readonly`.
    """
    import sqlite_utils

    from hpstore.store import check_database

    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"open_database takes the path of a search file, received {path!r}.")
    text = os.fspath(path)
    if not text:
        raise ValueError("open_database received an empty path; give the path of a search "
                         "file, such as 'search.db'.")
    if text.startswith(("postgresql://", "postgres://")):
        raise HpStoreError("open_database reads a search file (SQLite); read a search on "
                           "PostgreSQL with hpstore.trials_dataframe(URL), `hpstore sql URL`, "
                           "or any PostgreSQL client.")
    if text == ":memory:":
        raise HpStoreError("An in-memory search lives in the process that made it; there is "
                           "no file to open. Give the Oracle a database= path to read it "
                           "from elsewhere.")
    # (a NUL, a blank path, SQLAlchemy's sqlite:///: refused as every store refuses them;
    # "sqlite:///x.db" was "sqlite:/x.db does not exist")
    check_database(text)
    try:
        os.fsencode(text)
    except UnicodeEncodeError as exc:  # (bytes a file name may hold come as \udc80-\udcff)
        raise ValueError(f"open_database: the path {text!r} cannot name a file: it holds "
                         f"the lone surrogate {text[exc.start]!r}.") from None
    return sqlite_utils.Database(connect_readonly(path, check=False))


# For each table of hpstore's own schema, the columns checked and the query for the first
# row holding what hpstore never writes: a BLOB (hpstore writes text, numbers and NULL); in a
# JSON column, anything but a JSON object; in a number column (below), anything but a
# number (the growing tables' from a row number on). Written out in full: no name is read
# from the file (tests/test_files.py checks they name every number column of the schema).
_CONTENT_CHECKS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "projects": (
        ("name", "oracle_class", "oracle_config", "objective", "max_trials", "seed",
         "space_version", "queue_counter", "uncounted", "created_at", "updated_at"),
        ("oracle_config", "objective"),
        "SELECT name, oracle_class, oracle_config, objective, max_trials, seed, "
        "space_version, queue_counter, uncounted, created_at, updated_at FROM projects "
        "WHERE (typeof(name) = 'blob' OR typeof(oracle_class) = 'blob' OR CASE WHEN "
        "typeof(oracle_config) <> 'text' OR NOT json_valid(oracle_config) THEN 1 ELSE "
        "json_type(oracle_config) <> 'object' END OR CASE WHEN typeof(objective) <> "
        "'text' OR NOT json_valid(objective) THEN 1 ELSE json_type(objective) <> "
        "'object' END OR typeof(max_trials) NOT IN ('integer', 'null') OR typeof(seed) "
        "NOT IN ('integer', 'null') OR typeof(space_version) NOT IN ('integer', 'null') "
        "OR typeof(queue_counter) NOT IN ('integer', 'null') OR typeof(uncounted) NOT "
        "IN ('integer', 'null') OR typeof(created_at) NOT IN ('real', 'integer', "
        "'null') OR typeof(updated_at) NOT IN ('real', 'integer', 'null')) LIMIT 1",
    ),
    "hyperparameters": (
        ("name", "class_name", "config", "position"),
        ("config",),
        "SELECT name, class_name, config, position FROM hyperparameters WHERE "
        "(typeof(name) = 'blob' OR typeof(class_name) = 'blob' OR CASE WHEN "
        "typeof(config) <> 'text' OR NOT json_valid(config) THEN 1 ELSE "
        "json_type(config) <> 'object' END OR typeof(position) NOT IN ('integer', "
        "'null')) LIMIT 1",
    ),
    "trials": (
        ("trial_id", "status", "hp_values", "values_key", "tuner_id", "session",
         "message", "origin", "note", "number", "best_step", "run_count",
         "invalid_runs", "interruptions", "queued", "pid", "score", "changed_at",
         "created_at", "started_at", "ended_at", "retired_at"),
        ("hp_values",),
        "SELECT trial_id, status, hp_values, values_key, tuner_id, session, message, "
        "origin, note, number, best_step, run_count, invalid_runs, interruptions, "
        "queued, pid, score, changed_at, created_at, started_at, ended_at, retired_at "
        "FROM trials WHERE rowid > ? AND (typeof(trial_id) = 'blob' OR typeof(status) = "
        "'blob' OR typeof(values_key) = 'blob' OR typeof(tuner_id) = 'blob' OR "
        "typeof(session) = 'blob' OR typeof(message) = 'blob' OR typeof(origin) = "
        "'blob' OR typeof(note) = 'blob' OR CASE WHEN typeof(hp_values) <> 'text' OR "
        "NOT json_valid(hp_values) THEN 1 ELSE json_type(hp_values) <> 'object' END OR "
        "typeof(number) NOT IN ('integer', 'null') OR typeof(best_step) NOT IN "
        "('integer', 'null') OR typeof(run_count) NOT IN ('integer', 'null') OR "
        "typeof(invalid_runs) NOT IN ('integer', 'null') OR typeof(interruptions) NOT "
        "IN ('integer', 'null') OR typeof(queued) NOT IN ('integer', 'null') OR "
        "typeof(pid) NOT IN ('integer', 'null') OR typeof(score) NOT IN ('real', "
        "'integer', 'null') OR typeof(changed_at) NOT IN ('real', 'integer', 'null') OR "
        "typeof(created_at) NOT IN ('real', 'integer', 'null') OR typeof(started_at) "
        "NOT IN ('real', 'integer', 'null') OR typeof(ended_at) NOT IN ('real', "
        "'integer', 'null') OR typeof(retired_at) NOT IN ('real', 'integer', 'null')) "
        "LIMIT 1",
    ),
    "observations": (
        ("metric", "direction", "run", "step", "value", "at"),
        (),
        "SELECT metric, direction, run, step, value, at FROM observations WHERE rowid > "
        "? AND (typeof(metric) = 'blob' OR typeof(direction) = 'blob' OR typeof(run) "
        "NOT IN ('integer', 'null') OR typeof(step) NOT IN ('integer', 'null') OR "
        "typeof(value) NOT IN ('real', 'integer', 'null') OR typeof(at) NOT IN ('real', "
        "'integer', 'null')) LIMIT 1",
    ),
    "transitions": (
        ("from_status", "to_status", "tuner_id", "message", "pid", "at"),
        (),
        "SELECT from_status, to_status, tuner_id, message, pid, at FROM transitions "
        "WHERE rowid > ? AND (typeof(from_status) = 'blob' OR typeof(to_status) = "
        "'blob' OR typeof(tuner_id) = 'blob' OR typeof(message) = 'blob' OR to_status "
        "NOT IN ('RUNNING', 'IDLE', 'INVALID', 'STOPPED', 'COMPLETED', 'FAILED') OR "
        "from_status NOT IN ('RUNNING', 'IDLE', 'INVALID', 'STOPPED', 'COMPLETED', "
        "'FAILED') OR typeof(pid) NOT IN ('integer', 'null') OR typeof(at) NOT IN "
        "('real', 'integer', 'null')) LIMIT 1",
    ),
    "oracle_state": (
        ("key", "value"),
        ("value",),
        "SELECT key, value FROM oracle_state WHERE (typeof(key) = 'blob' OR "
        "typeof(value) <> 'text' OR NOT json_valid(value)) LIMIT 1",
    ),
}

# The columns hpstore writes only whole numbers (or NULL) in, and those it writes only
# numbers (or NULL) in: times, scores, metric values. A string there (a row changed by
# hand) made the tools fail on arithmetic or sorting.
_INTEGERS: dict[str, tuple[str, ...]] = {
    "projects": ("max_trials", "seed", "space_version", "queue_counter", "uncounted"),
    "hyperparameters": ("position",),
    "trials": ("number", "best_step", "run_count", "invalid_runs", "interruptions", "queued",
               "pid"),
    "observations": ("run", "step"),
    "transitions": ("pid",),
    "oracle_state": (),
}
_REALS: dict[str, tuple[str, ...]] = {
    "projects": ("created_at", "updated_at"),
    "hyperparameters": (),
    "trials": ("score", "changed_at", "created_at", "started_at", "ended_at", "retired_at"),
    "observations": ("value", "at"),
    "transitions": ("at",),
    "oracle_state": (),
}


def check_contents(conn: sqlite3.Connection, path: Path | None = None) -> None:
    """Check that every text column holds text and every JSON column a JSON object, as
    hpstore writes them, so a damaged or crafted file is refused before a tool reads it.

    With ``path``, the rows of the growing tables that an earlier check of this very file
    passed are not read again (see :mod:`checkmarks`): a tool opens a large search in
    the time its new rows take to check.

    Raises:
        NotAnHpstoreFileError: naming the first table and column at fault.
    """
    key = checkmarks.file_key(path, conn) if path is not None else None
    marks = checkmarks.load(key)
    reached: dict[str, int] = {}
    starts: dict[str, int] = {}
    for table in checkmarks.GROWING:
        # the table's last row now, read before the check: rows added while it runs are
        # checked again next time, never skipped
        (top,) = conn.execute(_LAST_ROW[table]).fetchone()
        after = marks.get(table, 0)
        if top is None or top < after:
            after = 0  # rows were removed since: check them all
        reached[table], starts[table] = int(top or 0), after
    told = checkmarks.on_long_check
    if told is not None and sum(reached[t] - starts[t] for t in starts) > checkmarks.LONG_CHECK:
        told("Checking every row of the file, as at a first look here (later looks check "
             "only what is new)")
    for table in _CONTENT_CHECKS:
        columns, objects, query = _CONTENT_CHECKS[table]
        params: tuple[int, ...] = ()
        if table in checkmarks.GROWING:
            params = (starts[table],)  # the growing tables' checks start after a row
        row = conn.execute(query, params).fetchone()
        if row is None:
            continue
        for column, value in zip(columns, row):
            if column in _INTEGERS[table]:
                if value is not None and not isinstance(value, int):
                    raise damaged(f"{table}.{column}", value)
            elif column in _REALS[table]:
                if value is not None and not isinstance(value, (int, float)):
                    raise damaged(f"{table}.{column}", value)
            elif column in objects:
                shape = ANY_JSON if table == "oracle_state" else dict
                from_json(value, f"{table}.{column}", shape)
            elif column in ("from_status", "to_status") and value is not None and (
                    value not in TrialStatus.ALL):  # (the log's table has no CHECK)
                raise damaged(f"{table}.{column}", value)
            else:
                check_row((value,), (column,), table)
    if {t: m for t, m in reached.items() if m} != marks:  # else nothing new to remember
        checkmarks.save(key, reached)


_LAST_ROW = {"trials": "SELECT max(rowid) FROM trials",
             "observations": "SELECT max(rowid) FROM observations",
             "transitions": "SELECT max(rowid) FROM transitions"}
assert set(_LAST_ROW) == set(checkmarks.GROWING)


class ReadOnlyDatabase:
    """A search file opened read-only, with the reading half of
    :class:`hpstore.store.sqlite.database.Database`'s interface.

    Raises:
        DatabaseError, NotAnHpstoreFileError: as :func:`connect_readonly`.
    """

    memory = False
    read_only = True

    def __init__(self, path: str | os.PathLike[str], *, check: bool = True) -> None:
        self.path = files.resolved(path)
        self._conn = connect_readonly(path, check=check)
        #: whether this reads a copy in memory (a file of an older schema, upgraded there):
        #: what is written to the file after it was opened is not seen
        #: (compared in SQL: the path, as text, need not be UTF-8, and Python's sqlite3
        #: cannot hand back a column that is not)
        self.snapshot = bool(self._conn.execute(
            "SELECT file = '' FROM pragma_database_list WHERE name = 'main'").fetchone()[0])
        #: the schema version of the file itself (a snapshot reads it upgraded)
        self.file_version = (self._conn.file_version if isinstance(self._conn, _Upgraded)
                             else int(self._conn.execute("PRAGMA user_version").fetchone()[0]))

    @property
    def sidecar(self) -> Path:
        return files.lock_folder(self.path)

    def connect(self) -> sqlite3.Connection:
        return self._conn

    reads = 0  # (decisions are made on a Database: see ahead.py)

    def query(self, sql: str, params: Any = ()) -> list[Any]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except SQLITE_FAILURES as exc:
            raise self._explain(exc) from None

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees one snapshot of the file."""
        try:
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                if self._conn.in_transaction:
                    self._conn.execute("COMMIT")
        except SQLITE_FAILURES as exc:
            if not raised_by_sqlite(exc):
                raise
            raise self._explain(exc) from None

    def _explain(self, exc: sqlite3.Error | MemoryError) -> BaseException:
        if isinstance(exc, sqlite3.Error) and is_interruption(exc):
            return KeyboardInterrupt()  # Ctrl-C reached SQLite through the progress handler
        return held_locked(self.path, exc) or NotAnHpstoreFileError(
            f"{self.path} cannot be read: {unreadable(exc)}.")

    def write(self) -> Any:
        raise ReadOnlyDatabaseError(f"{self.path} is open read-only here: nothing is written.")

    @contextlib.contextmanager
    def lock(self, holder: str | None = None) -> Iterator[None]:
        yield  # a reader decides nothing

    def started_here(self, key: int) -> None:
        """Nothing: no trial runs through a read-only connection."""

    def ended_here(self, key: int) -> None:
        """Nothing: no trial runs through a read-only connection."""

    def session(self) -> None:
        return None

    def is_alive(self, token: str, pid: int | None = None, *, tidy: bool = False) -> bool:
        # looked at, never tidied: a reader changes nothing, not even the lock folder
        return Session.probe(self.sidecar, token, tidy=False, pid=pid)

    def alive(self, tokens: Mapping[str, int | None]) -> set[str]:
        return {token for token, pid in tokens.items() if self.is_alive(token, pid)}

    def owns(self, token: str | None) -> bool:
        return False

    def close(self) -> None:
        self._conn.close()
        stop_watching(self.sidecar)


@contextlib.contextmanager
def run_user_sql(conn: sqlite3.Connection, query: str, timeout: float | None
                 ) -> Iterator[tuple[list[str], Iterator[Any]]]:
    """One statement a person wrote, on a read-only connection: its columns, and its rows
    read as they are iterated (a few hundred in memory at a time). The statement holds its
    snapshot of the file until the block ends; ``timeout`` counts until then too.

    Raises (also from iterating the rows):
        HpStoreError: a write, ATTACH, a PRAGMA that changes a setting, a function that
            exposes memory, several statements, or anything SQLite refuses; said in words.
        QueryTimeoutError: it ran past ``timeout`` seconds.
        KeyboardInterrupt: Ctrl-C stopped it.
    """
    guard = guard_queries(conn, timeout or None)
    refusals = restrict_user_sql(conn)
    guard.start()
    cursor = None
    try:
        cursor = conn.execute(query)
        if cursor.description is None:  # (every statement hpstore sql lets through reads)
            if holds_nothing(query):
                raise HpStoreError("The query holds no statement (only comments?): give one "
                                   "SQL statement, such as \"SELECT * FROM trial_overview\".")
            raise HpStoreError(
                f"hpstore sql runs one query that reads, such as \"SELECT * FROM "
                f"trial_overview\"; {first_words(query)!r} returns no rows. Nothing was "
                "changed.")
        columns = [d[0] for d in cursor.description]
        yield columns, _fetched(cursor)
    except sqlite3.Warning as exc:
        raise HpStoreError(f"{exc} (give one statement).") from None
    except sqlite3.Error as exc:
        if is_interruption(exc) and guard.timed_out():
            raise QueryTimeoutError(
                f"The query ran longer than {timeout:g} s and was stopped. Give "
                "--timeout SECONDS for a longer limit (0: none).") from None
        if is_interruption(exc):
            raise KeyboardInterrupt from None
        if refusals.refused:
            raise HpStoreError(f"hpstore sql refuses {refusals.refused[-1]}: it only reads, "
                               "and never changes the file or its settings.") from None
        text = str(exc)
        if "readonly" in text or "read-only" in text or "query_only" in text:
            raise HpStoreError("hpstore sql is read-only: it runs SELECT queries and never "
                               "changes the file. To change a search: hpstore enqueue, "
                               "retire, restore or note, or the library.") from None
        if "one statement at a time" in text:
            raise HpStoreError("hpstore sql runs one statement at a time; give one.") from None
        if "disk I/O error" in text and (room := _no_temporary_folder()) is not None:
            raise HpStoreError(f"SQLite could not run the query: {room}") from None
        raise HpStoreError(f"SQLite could not run the query: {text.rstrip('.')}.") from None
    except MemoryError as exc:
        raise HpStoreError(f"SQLite could not run the query: {unreadable(exc)}. `hpstore "
                           "check` says whether the file is damaged.") from None
    finally:
        if cursor is not None:  # ends the statement, and with it the snapshot it holds
            with contextlib.suppress(sqlite3.Error):
                cursor.close()


def _fetched(cursor: sqlite3.Cursor) -> Iterator[Any]:
    """The rows of ``cursor``, fetched a few hundred at a time."""
    while rows := cursor.fetchmany(500):
        yield from rows


def holds_search(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a search yet: not missing, not empty, and not a new SQLite
    file whose first project another process has not committed yet."""
    path = files.expanded(path)
    if not path.exists():
        return False
    if path.is_file() and path.stat().st_size == 0:
        return False
    if not path.is_file():
        return True  # a folder: opening it says what is wrong
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return True
    try:
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        projects = conn.execute("SELECT count(*) FROM projects").fetchone()[0] if tables else 0
        return bool(tables and projects)
    except (sqlite3.Error, UnicodeDecodeError):
        return True  # not a search file: opening it says so
    finally:
        conn.close()


#: either kind of database a SQLite project reads through
AnyDatabase = Database | ReadOnlyDatabase


def _no_temporary_folder() -> str | None:
    """Why SQLite has nowhere to write the temporary file a large sort or grouping needs
    (every folder it tries missing or read-only: a container's read-only root), said so
    that a disk I/O error is not taken for a damaged search; None when it has one."""
    tried = [os.environ[v] for v in ("SQLITE_TMPDIR", "TMPDIR") if os.environ.get(v)]
    tried += ["/var/tmp", "/usr/tmp", "/tmp", "."]
    if any(os.path.isdir(f) and os.access(f, os.W_OK | os.X_OK) for f in tried):
        return None
    return (f"it needs a temporary file for this query (a large sort or grouping), and none "
            f"of the folders it tries ({', '.join(dict.fromkeys(tried))}) can be written. "
            "The search is not damaged: set SQLITE_TMPDIR to a writable folder (a tmpfs "
            "will do) and run it again.")
