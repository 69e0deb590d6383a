"""The search file: checks before opening, connections, transactions, migrations, locks.

Every pragma is set in :meth:`Database.connect`; every write goes through
:meth:`Database.write` (``BEGIN IMMEDIATE``), which first checks that the path still names
the file that was opened; schema changes and an oracle's decide-and-record step take the
cross-process file locks from :meth:`Database.lock`. Closing folds the write-ahead log into
the file, so that after a search the ``.db`` alone holds everything.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hpstore import process_limits
from hpstore.errors import (
    DatabaseError,
    FileIdentityError,
    NotAnHpstoreFileError,
    ReadOnlyDatabaseError,
    SchemaVersionError,
)
from hpstore.store.sqlite import closing, files, locks, names, shared
from hpstore.store.sqlite.checks import (
    SQLITE_FAILURES,
    check_built,
    check_schema,
    check_writable,
    inspect_database,
    inspect_header,
    raised_by_sqlite,
    read_only_file_system,
    single_name,
    unreadable,
)
from hpstore.store.sqlite.files import (
    Identity,
    check_lock_folder,
    check_path_lengths,
    identity,
    make_lock_folder,
)
from hpstore.store.sqlite.locks import FileMutex, Session
from hpstore.store.sqlite.schema import (
    APPLICATION_ID,
    PAGE_SIZE,
    SCHEMA_VERSION,
    Refusals,
    guard,
    keep_in_wal,
    migration_script,
    migrations,
    schema_dir,
)
from hpstore.store.sqlite.transaction import WriteTransaction

__all__ = ["APPLICATION_ID", "PAGE_SIZE", "SCHEMA_VERSION", "Database", "check_schema",
           "migrations", "schema_dir"]

DURABILITY = {"normal": "NORMAL", "full": "FULL"}
# SQLite folds the log into the file once it holds this many pages, and cuts the log file
# back to this size when it starts it afresh: a log grown large beside a long reader
# shrinks again once the reader is gone. Ten times SQLite's default (fewer on a disk with
# little room: process_limits.log_pages): each fold costs two flushes to disk, and a trial
# writes about 17 pages, so folds every ~600 trials instead of every ~60.
AUTOCHECKPOINT_PAGES = 10_000
WAL_SIZE_LIMIT = 32 + AUTOCHECKPOINT_PAGES * (PAGE_SIZE + 24)  # header + frames, in bytes

# The checks before opening live in checks.py; these names are what other modules import.
_inspect_header, _inspect_database = inspect_header, inspect_database


def _open_folder(folder: Path) -> int | None:
    """A descriptor of ``folder`` (None where folders cannot be opened: Windows)."""
    try:
        return os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
                       | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None


def _deleted(fd: int | None) -> bool:
    """Whether the folder open as ``fd`` was deleted since (a folder made again under its
    name may have its inode number: only the link count of the one opened tells)."""
    if fd is None:
        return False
    try:
        return os.fstat(fd).st_nlink == 0
    except OSError:
        return False

class Database:
    """One search file (or an in-memory search), opened lazily in each process.

    Args:
        path: the file, or None / ":memory:" for a search that lives in this process only.
        durability: "normal" (WAL with synchronous=NORMAL: a killed process loses nothing
            it committed; a power cut may lose the last commits) or "full" (synchronous=FULL:
            commits also survive a power cut, at a cost in speed).
        timeout: seconds a writer waits for another (SQLite's busy timeout, and hpstore's
            own locks) before giving up.

    Raises:
        NotAnHpstoreFileError, ForeignSchemaError, SchemaVersionError,
        ReadOnlyDatabaseError, FileIdentityError: see :meth:`check`.
        DatabaseError: a path that cannot be followed (a loop of symbolic links) or is
            longer than the system allows; no room on its disk to open it.
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
        self.path: Path | None = (None if path is None or self.memory
                                  else files.resolved(path))
        # the path as text, for the stat before each write (a Path is turned into text
        # at every os.stat)
        self._path_text = None if self.path is None else str(self.path)
        self._sidecar: Path | None = None  # (made once, on first use: see sidecar)
        self._conn: sqlite3.Connection | None = None
        self._control: sqlite3.Cursor  # (the connection's, made with it: see connect)
        self._pid = -1
        self._thread_lock = threading.RLock()
        self._share: shared.FileShare | None = None  # lock files and session (shared.py)
        self._leave_share: weakref.finalize[Any, Any] | None = None
        self._share_pid = -1
        self._mutex: FileMutex | None = None
        self._session: Session | None = None
        self._identity: Identity | None = None  # the file opened: (device, inode)
        self._wrote = False  # whether this process committed a write since it connected
        self._foreign = Refusals()  # triggers and views refused since (see schema.guard)
        #: reads made (see ahead.py: a decision made ahead must have read nothing)
        self.reads = 0
        closing.register(self)
        try:
            if not self.memory:
                self.check()
            self.connect()
        except OSError as exc:
            if exc.errno != errno.EROFS or self.path is None:
                raise
            raise read_only_file_system(self.path, exc) from None
        if not self.memory:
            self._sweep_lock_folder()

    # -- opening ---------------------------------------------------------------------------
    @property
    def sidecar(self) -> Path:
        """The folder beside the file that holds the lock files (``<file>.hpstore``)."""
        if self._sidecar is None:  # made once: every liveness look asks for it
            assert self.path is not None
            self._sidecar = files.lock_folder(self.path)
        return self._sidecar

    def check(self) -> None:
        """Refuse, before anything is written, a file hpstore must not touch.

        Raises:
            NotAnHpstoreFileError: not SQLite, truncated, or another application's file; a
                folder, a device, a FIFO or a socket.
            ForeignSchemaError: a table, index, view or trigger hpstore did not write.
            SchemaVersionError: written by a newer hpstore.
            ReadOnlyDatabaseError: the file or its folder cannot be written.
            FileIdentityError: the file has several names (hard links), or the lock folder
                is, or holds, a symbolic link.
        """
        assert self.path is not None
        exists = files.is_regular(self.path)  # first: never open a FIFO, replace a device
        folder = self.path.parent
        if not folder.is_dir():
            raise DatabaseError(
                f"The folder {folder} does not exist; create it first or choose another path."
            )
        check_path_lengths(self.path)
        check_lock_folder(self.sidecar)  # before the file is created: a refusal makes nothing
        if exists:
            # The names first: the header of a file another process writes under its other
            # name may be read in the middle of a checkpoint's write of it.
            single_name(self.path, self.path.stat())
            look_inside = _inspect_header(self.path)
            check_writable(self.path)  # before SQLite opens it: a refused file gets no -wal/-shm
            names.check_not_open_elsewhere(self)
            if look_inside:
                _inspect_database(self.path)
        else:
            check_writable(self.path)
            names.check_no_log_of_another_file(self)

    def connect(self) -> sqlite3.Connection:
        """This process's connection, opened (with every pragma) on first use or after fork.

        Raises:
            FileIdentityError: reopening (after fork) a path that no longer names the file.
        """
        pid = os.getpid()
        if self._conn is not None and self._pid == pid:
            return self._conn
        closing.close_dropped()
        if self._conn is not None:  # inherited across fork: leave it alone
            closing.ORPHANS.append(self._conn)
            self._conn = None
            if self._session is not None:
                self._session.forget()
                self._session = None
        if self._identity is not None:
            self._check_identity()  # else a moved file would be made again, empty
        elif not self.memory:
            self._create_if_new()
        target = ":memory:" if self.memory else str(self.path)
        try:
            conn = sqlite3.connect(target, timeout=self.timeout, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA synchronous = {DURABILITY[self.durability]}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            pages = process_limits.log_pages(self.path, AUTOCHECKPOINT_PAGES, PAGE_SIZE)
            conn.execute(f"PRAGMA wal_autocheckpoint = {int(pages)}")
            conn.execute(f"PRAGMA journal_size_limit = {int(32 + pages * (PAGE_SIZE + 24))}")
            conn.set_authorizer(guard(self._foreign))  # (a trigger added while it is open)
        except SQLITE_FAILURES as exc:
            raise self._explain(exc) from None
        self._conn, self._pid, self._wrote = conn, pid, False
        # BEGIN and COMMIT go through a cursor of their own, kept (three of each a trial):
        # Connection.execute makes a cursor at every call. Never iterated, so never shared.
        self._control = conn.cursor()
        # Python's sqlite3 connections sit in reference cycles (with their statement cache),
        # so one dropped unclosed keeps its three descriptors until the collector's next
        # full pass: close it as soon as this database is collected.
        weakref.finalize(self, closing.dropped, conn, pid).atexit = False
        # The first read takes SQLite's locks: under the schema lock (see
        # names.check_not_open_elsewhere) and with no descriptor of the file closing meanwhile.
        with self._schema_lock(), files.opening():
            self._migrate(conn)
            if not self.memory:
                try:
                    keep_in_wal(conn, str(self.path))
                except BaseException:
                    self._conn = None
                    conn.close()
                    raise
        if not self.memory and self._identity is None:
            assert self.path is not None
            self._identity = identity(self.path)
        return conn

    def _create_if_new(self) -> None:
        """Make a new search file whole, then give it its name.

        A file made in place passes through states no other process must see: empty, in
        SQLite's rollback-journal mode while it turns to WAL (a process killed then leaves
        a hot journal that a reader cannot roll back), without its tables. So the file is
        built under another name in the lock folder, closed, and linked into place: the
        search file's name only ever names a complete hpstore file (or an empty file a
        person made, which the complete one replaces).
        """
        assert self.path is not None
        if self.path.exists() and self.path.stat().st_size > 0:
            return
        with self._schema_lock():
            for _ in range(10):
                if self.path.exists() and self.path.stat().st_size > 0:
                    return  # another process made it while this one waited for the lock
                try:
                    built = self._build_new()
                except OSError as exc:  # (the lock folder, the file built in it)
                    if exc.errno in (errno.EMFILE, errno.ENFILE) and (
                            said := process_limits.out_of_files(str(self.path), str(exc))):
                        raise DatabaseError(said) from None
                    if said := process_limits.no_room_for_file(
                            Path(exc.filename or self.path), exc):
                        raise DatabaseError(said) from None
                    raise
                if built:
                    self._wrote = True
                    return
        raise DatabaseError(
            f"{self.path} could not be created: its lock folder {self.sidecar} was deleted "
            "again and again while the new file was built in it. Leave that folder alone "
            "while hpstore runs (it holds the locks of every worker), and run again.")

    def _build_new(self) -> bool:
        """Build the new file in the lock folder and link it into place (see
        :meth:`_create_if_new`); False when the lock folder was deleted under the build
        (by hand, or a clean-up script), which then starts again."""
        assert self.path is not None
        make_lock_folder(self.sidecar)
        folder = _open_folder(self.sidecar)  # tells, once the build failed, if it was deleted
        for stale in self.sidecar.glob("creating-*.db*"):  # left by a killed creator
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        building = self.sidecar / f"creating-{secrets.token_hex(8)}.db"
        made = False
        try:
            # SQLite makes a new file 0644 whatever the umask (and its log and index with
            # the file's mode): made here first, the file takes what the umask leaves of
            # 0664, so a lab's umask 002 lets the group write the search (others never)
            os.close(os.open(building, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
                             | getattr(os, "O_NOFOLLOW", 0), 0o664))
            conn = sqlite3.connect(str(building), isolation_level=None)
            made = True
            try:
                self._migrate(conn, new=True)
                # Folded here, its outcome read: the fold as the connection closes says
                # nothing when it fails (a disk with no room for the file's pages), and the
                # file without its log would be linked into place damaged.
                busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                pages = conn.execute("PRAGMA page_count").fetchone()[0]
            finally:
                conn.close()  # the only connection: what is left of the log is removed
            check_built(building, busy, pages)
            if self.path.exists():  # an empty file a person made: the new one replaces it
                os.replace(building, self.path)
            else:
                os.link(building, self.path)
        except FileExistsError:
            # another process linked its own new file meanwhile (it could build beside this
            # one only because the folder holding the schema lock was deleted): that one,
            # complete, is the search file
            return True
        except (*SQLITE_FAILURES, DatabaseError, FileNotFoundError) as exc:
            if _deleted(folder) or (made and not building.exists()):
                # the folder, or the file in it (swept by another creator that could run
                # beside this one only because the folder holding the schema lock was
                # deleted), went away: build again
                return False
            if isinstance(exc, FileNotFoundError):
                raise
            raise (exc if isinstance(exc, DatabaseError) else self._explain(exc)) from None
        finally:
            for part in (building, *(building.with_name(building.name + s)
                                     for s in ("-wal", "-shm", "-journal"))):
                with contextlib.suppress(FileNotFoundError):
                    part.unlink()
            if folder is not None:
                os.close(folder)
        return True

    def _migrate(self, conn: sqlite3.Connection, new: bool = False) -> None:
        # Called holding the schema lock; another process may have migrated meanwhile.
        current = self._user_version(conn)
        if current == SCHEMA_VERSION:
            return
        if current > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{self.path} was written by a newer hpstore (schema version {current})."
            )
        try:
            if new or (not self.memory and current == 0):  # (an empty SQLite file given)
                # Small pages: each commit writes every page it touched (the trial row,
                # its indexes, the status log) to the log whole, so a trial's commits
                # cost less with 1 KiB pages than SQLite's default 4 KiB.
                conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
                conn.execute("PRAGMA journal_mode = WAL")
            for number, path in migrations():
                if number <= current:
                    continue
                script = migration_script(path)
                try:
                    conn.executescript(
                        f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;"
                    )
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                self._wrote = True
        except SQLITE_FAILURES as exc:
            raise self._explain(exc) from None

    @staticmethod
    def _user_version(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])

    # -- which file ------------------------------------------------------------------------------
    def _check_identity(self) -> None:
        """Raise unless the path still names the file this process opened.

        SQLite keeps the write-ahead log under the name the file had when it was opened. If
        the file is moved (or replaced), writers on the old name and processes opening the
        new one keep two logs of one file and corrupt it; a new process on the old name
        starts another search. So a write stops here, before anything is written.
        """
        if self.memory or self._identity is None:
            return
        assert self._path_text is not None
        try:  # (files.identity, inline: this runs at every write)
            found = os.stat(self._path_text)
        except FileNotFoundError:
            pass
        else:
            if (found.st_dev, found.st_ino) == self._identity:
                return
        raise FileIdentityError(
            f"{self.path} no longer names the search file this process opened: the file was "
            "moved, replaced or deleted while the search ran. Stopped before writing, so the "
            "file stays whole. Run the search again on the file's new name, if it was moved "
            "(and never move a search file while workers use it)."
        )

    def _moved(self) -> bool:
        return (not self.memory and self._identity is not None and self.path is not None
                and identity(self.path) != self._identity)

    # -- transactions ------------------------------------------------------------------------
    def write(self) -> WriteTransaction:
        """A ``BEGIN IMMEDIATE`` transaction (``with db.write() as conn``): committed on
        success, rolled back on error; inside this thread's own write, it joins that one.

        Raises:
            DatabaseError: SQLite failed (disk full, locked past the timeout, damaged file),
                with the reason in words; nothing of the transaction is kept. Or the
                interpreter is ending and its searches were closed.
            FileIdentityError: the path no longer names the file (moved or replaced).
        """
        return WriteTransaction(self)

    def contended(self, within: float = 1.0) -> bool:
        """Whether a writer of this process found another one writing to the file in the
        last ``within`` seconds."""
        return not self.memory and time.monotonic() - self._shared().turnstile.waited < within

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees one snapshot of the file (inside
        this thread's write transaction, that transaction's)."""
        self.reads += 1
        with self._thread_lock:
            conn = self.connect()
            if conn.in_transaction:
                yield conn
                return
            try:
                conn.execute("BEGIN")
                yield conn
            except SQLITE_FAILURES as exc:
                if not raised_by_sqlite(exc):
                    raise
                raise self._explain(exc) from None
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    def query(self, sql: str, params: Any = ()) -> list[sqlite3.Row | tuple[Any, ...]]:
        """Run one read statement outside any explicit transaction."""
        self.reads += 1
        with self._thread_lock:
            try:
                return self.connect().execute(sql, params).fetchall()
            except SQLITE_FAILURES as exc:
                raise self._explain(exc) from None

    def _explain(self, exc: sqlite3.Error | MemoryError) -> BaseException:
        where = "the in-memory search" if self.memory else str(self.path)
        if isinstance(exc, MemoryError):  # (not called damaged: it may be the machine)
            return DatabaseError(
                f"{where} cannot be read: {unreadable(exc)}. `hpstore check {where}` "
                "says whether it is damaged; if so, restore it from a backup.")
        text = str(exc)
        if (refused := self._foreign.explain(where, text)) is not None:
            return refused
        if "readonly" in text or "read-only" in text:
            return ReadOnlyDatabaseError(f"{where} cannot be written ({text}).")
        if "unable to open" in text and (said := process_limits.out_of_files(where, text)):
            return DatabaseError(said)
        if ("unable to open" in text and self.path is not None
                and (inodes := process_limits.no_free_inodes(self.path.parent, text))):
            return DatabaseError(f"Opening {where} failed: {inodes[0]}. Nothing of the failed "
                                 f"step was kept; {inodes[1]} and run again to resume.")
        if "disk is full" in text or "disk I/O" in text:
            cause, remedy = self._what_is_full(text)
            return DatabaseError(
                f"Writing {where} failed: {cause}. Nothing of the failed step was kept; "
                f"{remedy} and run again to resume."
            )
        if "locked" in text or "busy" in text:
            return DatabaseError(
                f"{where} stayed locked by another process for more than {self.timeout:g} s "
                f"({text}). Is a program holding a long write transaction on it (or are "
                "other workers writing without pause: `hpstore check` names them)?"
            )
        if "not a database" in text or "malformed" in text:
            return NotAnHpstoreFileError(f"{where} is damaged or not a SQLite file ({text}).")
        return DatabaseError(f"SQLite failed on {where}: {text}.")

    def _what_is_full(self, text: str) -> tuple[str, str]:
        """(what went wrong, what to do) for a failed write. SQLite says "disk I/O error"
        whatever the operating system refused, so look at what may have run out."""
        if self.path is None:
            return text, "free some memory"
        return process_limits.out_of_room(self.path, text, PAGE_SIZE) or (
            f"the operating system refused the write ({text}): the file may be too large "
            "for its filesystem, or the disk failing", "check the disk")

    # -- cross-process coordination -------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, holder: str | None = None) -> Iterator[None]:
        """The lock for an oracle's decide-and-record step (and other whole-project steps).

        ``holder`` (a tuner id) is written into the lock file with this process's id, so
        that a process that waits too long can say who holds it.

        Raises:
            LockTimeoutError: another process held it for more than ``timeout`` seconds
                (the message names it: a stopped process, a stuck one).
            FileIdentityError: the lock folder or file is a symbolic link.
        """
        if self.memory:
            with self._thread_lock:
                yield
            return
        with self._oracle_mutex().hold(self.timeout, holder):
            yield

    def _oracle_mutex(self) -> FileMutex:
        if self._mutex is None or self._share_pid != os.getpid():
            make_lock_folder(self.sidecar)
            self._mutex = self._shared().mutex
        return self._mutex

    def _shared(self, pid: int | None = None) -> shared.FileShare:
        """What this process's databases of this file share (joined on first use, and
        again in a forked child); ``pid``: this process's id, when just asked."""
        if pid is None:
            pid = os.getpid()
        if self._share is None or self._share_pid != pid:
            self._share = shared.join(self.sidecar, str(self.path))
            self._share_pid = pid
            # An oracle dropped without close() must not keep the file's lock files (and
            # its liveness session, once no other user is left) open for the rest of the
            # process: a loop over many searches would run out of file descriptors.
            self._leave_share = weakref.finalize(self, shared.drop, self._share,
                                                 self._share_pid)
            self._leave_share.atexit = False  # at exit, _close_at_exit closes it
        return self._share

    @contextlib.contextmanager
    def _schema_lock(self) -> Iterator[None]:
        # Creating or migrating the schema is rare: the lock file is opened each time.
        if self.memory:
            yield
            return
        make_lock_folder(self.sidecar)
        mutex = FileMutex(self.sidecar / "schema.lock",
                          what=f"the schema lock of {self.path} (held while creating or "
                               "upgrading the file)")
        try:
            with mutex.hold(self.timeout):
                yield
        finally:
            mutex.close()

    def session(self) -> Session | None:
        """This process's liveness token (None for an in-memory search, which has no rivals)."""
        if self.memory:
            return None
        self.connect()  # drops a session inherited through fork
        if self._session is None:
            self._session = self._shared().session()
        return self._session

    def started_here(self, key: int) -> None:
        """The trial with row id ``key`` now runs in this process, under its liveness
        session: the session lives on while it may run, even when every search of the
        file in this process was dropped without ``close()`` (see :mod:`shared`)."""
        if self._share is not None and self._share_pid == os.getpid():
            self._share.running.add(key)

    def ended_here(self, key: int) -> None:
        """The run this process had of the trial with row id ``key`` ended."""
        if self._share is not None and self._share_pid == os.getpid():
            self._share.running.discard(key)

    def is_alive(self, token: str, pid: int | None = None, *, tidy: bool = True) -> bool:
        """Whether the process behind a liveness token still runs; a dead one's liveness
        file is removed unless ``tidy`` is False."""
        if self.memory:
            return True
        mine = self._session
        if mine is not None and mine.token == token and mine.pid == os.getpid():
            return True
        return Session.probe(self.sidecar, token, tidy=tidy, pid=pid)

    def owns(self, token: str | None) -> bool:
        """Whether a liveness token is a session of this process (of any Database on any
        file: tokens are random)."""
        return token is not None and Session.held_here(token)

    # -- fork --------------------------------------------------------------------------------------
    def fork_locks(self) -> list[Any]:
        """The locks a thread holds inside create_trial or a transaction: held by the fork
        hooks across a fork (see closing.py), so that no child inherits one held."""
        return ([self._mutex._threads] if self._mutex is not None else []) + [self._thread_lock]

    def after_fork(self) -> None:
        """In a forked child: this thread lock afresh (a parent's thread may have held it)."""
        self._thread_lock = threading.RLock()

    # -- closing ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Fold the log into the file, close this process's connection and lock file, and end
        its liveness session, unless a trial this process started may still run (the last
        closer then ends it, or the process's end). Errors here are not raised: what was
        committed is in the file or its log either way."""
        mine = self._conn is not None and self._pid == os.getpid()
        moved = mine and self._moved()
        # The closers of a moved file take turns under its oracle lock (taken before the
        # thread lock, in the order create_trial takes them), so the last one folds the log.
        turn = False
        if moved:
            with contextlib.suppress(DatabaseError):  # a stopped peer holds it: no fold
                self._oracle_mutex().acquire(self.timeout)
                turn = True
        # A fold's warning made an error (-W error) is raised once the close is done: else
        # it skipped giving up the share, the lock folder's watch and the descriptors.
        deferred: Warning | None = None
        try:
            with self._thread_lock:
                if mine and not moved:
                    self._sweep_lock_folder()
                    # forgotten first: a Ctrl-C as the close returned left a closed
                    # connection here, and every later call failed on it
                    conn, self._conn = self._conn, None
                    assert conn is not None
                    try:
                        deferred = self._checkpoint(conn)
                    finally:
                        conn.close()
                elif mine:
                    assert self._conn is not None
                    assert self.path is not None and self._identity is not None
                    deferred = closing.close_moved(self.path, self._identity, self._conn,
                                                   may_fold=turn)
                elif self._conn is not None:
                    closing.ORPHANS.append(self._conn)  # inherited through fork: never closed here
                self._conn = None
                self._session = None  # ended with the file's share, by its last user
        finally:
            if turn:
                assert self._mutex is not None
                self._mutex.release()
        # Outside the thread lock: closing the lock file waits for a thread inside
        # create_trial, which takes the thread lock after the file lock.
        self._mutex = None
        if self._leave_share is not None:
            self._leave_share.detach()  # closed: nothing more to do when it is collected
        if self._share is not None and self._share_pid == os.getpid():
            # (kept while a trial this process started may still run, as for a database
            # dropped unclosed: the process lives, and may yet end that trial; the next
            # oracle of the file in it hands the trial back rather than find it interrupted.
            # Not for a moved file, whose trials no write reaches, nor as the process ends.)
            shared.leave(self._share, keep_running=not moved and not closing.ended())
        self._share = None
        if self.path is not None:
            locks.stop_watching(self.sidecar)
        files.release_descriptors()
        if moved:
            assert self.path is not None
            closing.remove_old_name(self.path, self.sidecar)
        if deferred is not None:
            raise deferred

    def _checkpoint(self, conn: sqlite3.Connection) -> Warning | None:
        """Fold the whole log into the file and empty it, waiting briefly for readers; see
        :func:`closing.fold` for what is returned.

        SQLite does this itself when the last connection closes, but not while any reader
        (``hpstore watch``, a notebook) has the file open: the latest commits would then stay
        in the ``-wal``, and a copy of the ``.db`` alone would miss them.
        """
        if self.memory or conn.in_transaction or not self._wrote:
            return None  # a process that only read leaves the file as it found it
        assert self.path is not None
        return closing.fold(self.path, conn)

    def _sweep_lock_folder(self) -> None:
        """Remove the liveness files of processes that ended without a trial running."""
        if not self.memory:
            locks.sweep_ended(self.sidecar, None if self._session is None
                              else self._session.token,
                              lambda: {r[0] for r in self.query(_RUNNING_SESSIONS)})


# The sessions of RUNNING trials, through the status index of each project.
_RUNNING_SESSIONS = ("SELECT t.session FROM projects AS p JOIN trials AS t ON t.project_id = "
                     "p.project_id AND t.status = 'RUNNING' WHERE t.session IS NOT NULL")
