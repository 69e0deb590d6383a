"""The search file: checks before opening, connections, transactions, migrations, locks.

Every pragma is set in :meth:`Database.connect`; every write goes through
:meth:`Database.write` (``BEGIN IMMEDIATE``); schema changes and an oracle's
decide-and-record step take the cross-process file lock from :meth:`Database.lock`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from hpstore.errors import (
    DatabaseError,
    NotAnHpstoreFileError,
    ReadOnlyDatabaseError,
    SchemaVersionError,
)
from hpstore.store.locks import FileMutex, Session

APPLICATION_ID = 1213223764  # "HPST"
PAGE_SIZE = 1024  # bytes; see _migrate
DURABILITY = {"normal": "NORMAL", "full": "FULL"}
_SQLITE_MAGIC = b"SQLite format 3\x00"

# Connections inherited through fork() must never be used or closed by the child
# (SQLite forbids carrying a connection across fork); keeping a reference here stops the
# garbage collector from closing them in the child.
_ORPHANS: list[Any] = []


def schema_dir() -> Path:
    """The folder of migration files: inside the installed package, or the checkout's."""
    here = Path(__file__).resolve().parent.parent
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


# Closing any descriptor of a file releases every POSIX lock the process holds on it,
# SQLite's included (https://sqlite.org/howtocorrupt.html#_posix_advisory_locks_canceled_by_a_separate_thread_doing_close_).
# The header is therefore read through a descriptor opened once per file and never closed.
_HEADER_FDS: dict[tuple[int, int], int] = {}


def _read_header(path: Path) -> bytes:
    st = path.stat()
    fd = _HEADER_FDS.get((st.st_dev, st.st_ino))
    if fd is None:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        opened = os.fstat(fd)
        _HEADER_FDS[(opened.st_dev, opened.st_ino)] = fd  # kept open: see above
    return os.pread(fd, 100, 0)


def _file_size_limit() -> int | None:
    """This process's largest file size (``ulimit -f``) in bytes, or None when unlimited."""
    try:
        import resource  # POSIX only
    except ImportError:  # pragma: no cover - Windows
        return None
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if limit == resource.RLIM_INFINITY or limit < 0 else int(limit)


def _inspect_header(path: Path) -> bool:
    """Check an existing file without opening it through SQLite (which could change it).

    Returns False for an empty file (a new search), True for a file to look into.

    Raises:
        NotAnHpstoreFileError: not a SQLite file, a truncated one, or one whose header
            carries another application's id.
    """
    size = path.stat().st_size
    if size == 0:
        return False
    header = _read_header(path)
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise NotAnHpstoreFileError(
            f"{path} is not a SQLite database, so it is not an hpstore search file. "
            "Give the path of a search file, or a new path to start one."
        )
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    page_count = struct.unpack(">I", header[28:32])[0]
    application_id = struct.unpack(">I", header[68:72])[0]
    change_counter = struct.unpack(">I", header[24:28])[0]
    valid_for = struct.unpack(">I", header[92:96])[0]
    # The header's page count is only trustworthy when SQLite marked it valid for this
    # version of the file, and only on a quiet file: while a writer checkpoints its WAL,
    # page 1 may already carry the new count before the file has grown to it.
    quiet = not path.with_name(path.name + "-wal").exists()
    if quiet and valid_for == change_counter and page_count and size < page_count * page_size:
        raise NotAnHpstoreFileError(
            f"{path} is damaged: its header promises {page_count * page_size} bytes but the "
            f"file holds {size}. It may have been truncated by a copy; restore it from a "
            "backup."
        )
    if application_id not in (0, APPLICATION_ID):
        raise _foreign(path, application_id)
    return True


def _foreign(path: Path, application_id: int) -> NotAnHpstoreFileError:
    return NotAnHpstoreFileError(
        f"{path} is a SQLite database of another application (application_id "
        f"{application_id}, tables but no hpstore mark), not an hpstore search file. Give "
        "hpstore a file of its own."
    )


def _inspect_database(path: Path) -> None:
    """Read the file's marks through a read-only connection (which also sees the WAL).

    Raises:
        NotAnHpstoreFileError: another application's SQLite file, or unreadable.
        SchemaVersionError: an hpstore file from a newer version.
    """
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            # One statement, so one snapshot: read apart, the marks could straddle another
            # process's first migration and show its tables without its mark.
            application_id, user_version, tables = conn.execute(
                "SELECT (SELECT * FROM pragma_application_id), (SELECT * FROM "
                "pragma_user_version), (SELECT count(*) FROM sqlite_master)").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise NotAnHpstoreFileError(
            f"{path} cannot be read as SQLite ({exc}); it is damaged or not a database."
        ) from None
    if application_id == 0 and tables == 0:
        return  # an empty SQLite file: a new search
    if application_id != APPLICATION_ID:
        raise _foreign(path, application_id)
    if user_version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path} was written by a newer hpstore (schema version {user_version}; this "
            f"hpstore reads up to {SCHEMA_VERSION}). Upgrade hpstore to open it."
        )


class Database:
    """One search file (or an in-memory search), opened lazily in each process.

    Args:
        path: the file, or None / ":memory:" for a search that lives in this process only.
        durability: "normal" (WAL with synchronous=NORMAL: a killed process loses nothing
            it committed; a power cut may lose the last commits) or "full" (synchronous=FULL:
            commits also survive a power cut, at a cost in speed).
        timeout: seconds a writer waits for another before giving up.

    Raises:
        NotAnHpstoreFileError, SchemaVersionError, ReadOnlyDatabaseError: see :meth:`check`.
        ValueError: an unknown durability.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *,
                 durability: str = "normal", timeout: float = 60.0) -> None:
        if durability not in DURABILITY:
            raise ValueError(
                f"`durability` must be one of {sorted(DURABILITY)}, received {durability!r}."
            )
        self.durability = durability
        self.timeout = float(timeout)
        self.memory = path is None or str(path) == ":memory:"
        self.path: Path | None = None if self.memory else Path(path).expanduser().resolve()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._thread_lock = threading.RLock()
        self._mutex: FileMutex | None = None
        self._session: Session | None = None
        if not self.memory:
            self.check()
        self.connect()

    # -- opening ---------------------------------------------------------------------------
    @property
    def sidecar(self) -> Path:
        """The folder beside the file that holds the lock files (``<file>.hpstore``)."""
        assert self.path is not None
        return self.path.with_name(self.path.name + ".hpstore")

    def check(self) -> None:
        """Refuse, before anything is written, a file hpstore must not touch.

        Raises:
            NotAnHpstoreFileError: not SQLite, truncated, or another application's file.
            SchemaVersionError: written by a newer hpstore.
            ReadOnlyDatabaseError: the file or its folder cannot be written.
        """
        assert self.path is not None
        folder = self.path.parent
        if not folder.is_dir():
            raise DatabaseError(
                f"The folder {folder} does not exist; create it first or choose another path."
            )
        if self.path.exists():
            if self.path.is_dir():
                raise NotAnHpstoreFileError(f"{self.path} is a folder, not a search file.")
            look_inside = _inspect_header(self.path)
            self._check_writable()  # before SQLite opens it: a refused file gets no -wal/-shm
            if look_inside:
                _inspect_database(self.path)
        else:
            self._check_writable()

    def _check_writable(self) -> None:
        assert self.path is not None
        folder = self.path.parent
        if self.path.exists() and not os.access(self.path, os.W_OK):
            raise ReadOnlyDatabaseError(
                f"{self.path} is read-only. hpstore writes every trial to it: make it "
                "writable, or open it with the read-only inspection tools."
            )
        if not os.access(folder, os.W_OK):
            raise ReadOnlyDatabaseError(
                f"The folder {folder} is read-only. SQLite keeps its write-ahead log and hpstore "
                "its lock files beside the search file: make the folder writable."
            )
        for suffix in ("-wal", "-shm"):
            extra = self.path.with_name(self.path.name + suffix)
            if extra.exists() and not os.access(extra, os.W_OK):
                raise ReadOnlyDatabaseError(
                    f"{extra} is read-only (it may belong to another user). SQLite keeps the "
                    "search's write-ahead log in it: make it writable by you."
                )
        sidecar = self.sidecar
        if sidecar.exists():
            parts = [sidecar, *(p for p in sidecar.glob("*.lock"))]
            if any(not os.access(p, os.W_OK) for p in parts):
                raise ReadOnlyDatabaseError(
                    f"hpstore's lock folder {sidecar} (or a lock file in it) is read-only (it "
                    "may belong to another user): make it and its files writable by you."
                )

    def connect(self) -> sqlite3.Connection:
        """This process's connection, opened (with every pragma) on first use or after fork."""
        pid = os.getpid()
        if self._conn is not None and self._pid == pid:
            return self._conn
        if self._conn is not None:  # inherited across fork: leave it alone
            _ORPHANS.append(self._conn)
            if self._session is not None:
                self._session.forget()
                self._session = None
        target = ":memory:" if self.memory else str(self.path)
        try:
            conn = sqlite3.connect(target, timeout=self.timeout, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA synchronous = {DURABILITY[self.durability]}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        except sqlite3.Error as exc:
            raise self._explain(exc) from None
        self._conn, self._pid = conn, pid
        self._migrate(conn)
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        if self._user_version(conn) == SCHEMA_VERSION:
            return
        with self._schema_lock():
            # Another process may have migrated while we waited for the lock.
            current = self._user_version(conn)
            if current == SCHEMA_VERSION:
                return
            if current > SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"{self.path} was written by a newer hpstore (schema version {current})."
                )
            try:
                if not self.memory and current == 0:
                    # Small pages: each commit writes every page it touched (the trial row,
                    # its indexes, the status log) to the log whole, so a trial's commits
                    # cost less with 1 KiB pages than SQLite's default 4 KiB.
                    conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
                    conn.execute("PRAGMA journal_mode = WAL")
                for number, path in migrations():
                    if number <= current:
                        continue
                    script = path.read_text(encoding="utf-8")
                    try:
                        conn.executescript(
                            f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;"
                        )
                    except BaseException:
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
                        raise
            except sqlite3.Error as exc:
                raise self._explain(exc) from None

    @staticmethod
    def _user_version(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])

    # -- transactions ------------------------------------------------------------------------
    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back on error.

        Raises:
            DatabaseError: SQLite failed (disk full, locked past the timeout, damaged file),
                with the reason in words; nothing of the transaction is kept.
        """
        with self._thread_lock:
            conn = self.connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._explain(exc) from None
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._explain(exc) from None
                raise

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees one snapshot of the file."""
        with self._thread_lock:
            conn = self.connect()
            try:
                conn.execute("BEGIN")
                yield conn
            except sqlite3.Error as exc:
                raise self._explain(exc) from None
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    def query(self, sql: str, params: Any = ()) -> list[sqlite3.Row | tuple[Any, ...]]:
        """Run one read statement outside any explicit transaction."""
        with self._thread_lock:
            try:
                return self.connect().execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._explain(exc) from None

    def _explain(self, exc: sqlite3.Error) -> DatabaseError:
        text = str(exc)
        where = "the in-memory search" if self.memory else str(self.path)
        if "readonly" in text or "read-only" in text:
            return ReadOnlyDatabaseError(f"{where} cannot be written ({text}).")
        if "disk is full" in text or "disk I/O" in text:
            cause, remedy = self._what_is_full(text)
            return DatabaseError(
                f"Writing {where} failed: {cause}. Nothing of the failed step was kept; "
                f"{remedy} and run again to resume."
            )
        if "locked" in text or "busy" in text:
            return DatabaseError(
                f"{where} stayed locked by another process for more than {self.timeout:g} s "
                f"({text}). Is a program holding a long write transaction on it?"
            )
        if "not a database" in text or "malformed" in text:
            return NotAnHpstoreFileError(f"{where} is damaged or not a SQLite file ({text}).")
        return DatabaseError(f"SQLite failed on {where}: {text}.")

    def _what_is_full(self, text: str) -> tuple[str, str]:
        """(what went wrong, what to do) for a failed write. SQLite says "disk I/O error"
        whatever the operating system refused, so look at what may have run out."""
        if self.path is None:
            return text, "free some memory"
        limit = _file_size_limit()
        parts = [self.path.with_name(self.path.name + s) for s in ("", "-wal", "-shm")]
        largest = max((p.stat().st_size for p in parts if p.exists()), default=0)
        if limit is not None and largest + 2 * PAGE_SIZE > limit:
            return (f"the file reached this process's file size limit of {limit} bytes "
                    f"(ulimit -f) ({text})", "raise the limit")
        free = shutil.disk_usage(self.path.parent).free
        if "disk is full" in text or free < 16 * PAGE_SIZE:
            return (f"the disk holding {self.path.parent} is full ({free} bytes free; {text})",
                    "free some space")
        return (f"the operating system refused the write ({text}): the file may be too large "
                "for its filesystem, or the disk failing", "check the disk")

    # -- cross-process coordination -------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """The lock for an oracle's decide-and-record step (and other whole-project steps)."""
        if self.memory:
            with self._thread_lock:
                yield
            return
        if self._mutex is None:
            self.sidecar.mkdir(mode=0o755, exist_ok=True)
            self._mutex = FileMutex(self.sidecar / "oracle.lock")
        with self._mutex:
            yield

    @contextlib.contextmanager
    def _schema_lock(self) -> Iterator[None]:
        # Creating or migrating the schema is rare; filelock's timeout and portability
        # matter more there than the cost of opening the lock file each time.
        if self.memory:
            yield
            return
        self.sidecar.mkdir(mode=0o755, exist_ok=True)
        lock = FileLock(str(self.sidecar / "schema.lock"), timeout=self.timeout, mode=0o644)
        try:
            lock.acquire()
        except Timeout:
            raise DatabaseError(
                f"Another process held the schema lock of {self.path} for more than "
                f"{self.timeout:g} s while creating or upgrading the file; try again."
            ) from None
        try:
            yield
        finally:
            lock.release()

    def session(self) -> Session | None:
        """This process's liveness token (None for an in-memory search, which has no rivals)."""
        if self.memory:
            return None
        self.connect()  # drops a session inherited through fork
        if self._session is None:
            self.sidecar.mkdir(mode=0o755, exist_ok=True)
            self._session = Session.start(self.sidecar)
        return self._session

    def is_alive(self, token: str, pid: int | None = None) -> bool:
        """Whether the process behind a liveness token still runs."""
        if self.memory:
            return True
        mine = self._session
        if mine is not None and mine.token == token and mine.pid == os.getpid():
            return True
        return Session.probe(self.sidecar, token, pid=pid)

    def owns(self, token: str | None) -> bool:
        """Whether a liveness token is a session of this process (of any Database on any
        file: tokens are random)."""
        return token is not None and Session.held_here(token)

    def close(self) -> None:
        """Close this process's connection and end its liveness session."""
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None
        if self._session is not None and self._session.pid == os.getpid():
            self._session.end()
        self._session = None
