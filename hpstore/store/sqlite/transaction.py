"""One write transaction on a search file: the writers' turn, SQLite's write lock, the
file's identity checked under it, then commit, or roll back on any error.

A class with ``__enter__`` and ``__exit__`` rather than a generator made into a context
manager: a trial takes three of these, and contextlib's machinery costs more than the
``BEGIN IMMEDIATE`` itself.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from types import TracebackType
from typing import TYPE_CHECKING

from hpstore.errors import DatabaseError
from hpstore.store.sqlite import closing
from hpstore.store.sqlite.checks import SQLITE_FAILURES, raised_by_sqlite
from hpstore.store.sqlite.locks import held_count, release_to

if TYPE_CHECKING:
    from hpstore.store.sqlite.database import Database
    from hpstore.store.sqlite.locks import Turnstile


#: seconds a write transaction may hold the lock before its writer pauses after it (see
#: WriteTransaction.__exit__): the turnstile's patience
LONG_WRITE = 0.05


class WriteTransaction:
    """``with db.write() as conn``: a ``BEGIN IMMEDIATE`` transaction, committed when the
    block ends and rolled back when it raises; inside this thread's own write, the block
    joins it. See :meth:`Database.write` for what is raised."""

    __slots__ = ("began", "conn", "db", "joined", "turnstile")

    def __init__(self, db: Database) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        db = self.db
        held = held_count(db._thread_lock)
        turnstile: Turnstile | None = None
        passed = True  # (the turnstile let this writer through)
        conn: sqlite3.Connection | None = None
        try:
            db._thread_lock.acquire()  # (in the try: a Ctrl-C as it returns gives it back)
            if closing.ended() and not db.memory:
                # Nothing is committed after the log was folded into the file as the script
                # ended: the file alone must hold every commit (reads stay possible).
                # Looked at holding the thread lock, which the fold at exit takes: a write
                # that waited for it while the search was closed is refused too.
                raise DatabaseError(
                    f"{db.path} was closed as this script ended, and a thread of it (a "
                    "daemon thread running trials, say) still writes: nothing more is "
                    "written, so the file alone holds every commit. A trial that thread "
                    "was running is run again by the next worker. To finish such trials, "
                    "join the threads before the script ends.")
            # The process id asked once for the connection, the share and the turn's
            # taking (a system call each time).
            pid = os.getpid()
            conn = db._conn
            if conn is None or db._pid != pid:
                conn = db.connect()
            self.conn = conn
            self.joined = conn.in_transaction
            if self.joined:  # inside this thread's write (a quick decision's step)
                return conn
            # hpstore's writers on this file take turns here before SQLite's write lock,
            # which hands over far more slowly (see :class:`locks.Turnstile`). From the
            # turn on, any failure gives it back (a Ctrl-C that lands just as it is taken,
            # too: else every other process's writes wait out their patience until this
            # one writes again); giving back a turn not held changes nothing.
            if not db.memory:
                share = db._share  # (Database._shared's own check, without its call)
                if share is None or db._share_pid != pid:
                    share = db._shared(pid)
                turnstile = share.turnstile
                passed = turnstile.enter(pid)
            self.turnstile = turnstile
            if turnstile is None or passed:
                db._control.execute("BEGIN IMMEDIATE")
            else:
                _begin_past_a_busy_turnstile(db, turnstile)
            # Checked holding the write lock: one stat, and no commit reaches a file that
            # was moved while this process waited.
            db._check_identity()
            self.began = time.monotonic()
            return conn
        except BaseException as exc:
            try:
                _roll_back(conn)
                if not passed:  # (a second signal in the busy path's own restoring)
                    with contextlib.suppress(sqlite3.Error):
                        restore_wait(db)
            finally:
                if turnstile is not None:
                    turnstile.leave()
                release_to(db._thread_lock, held)
            if isinstance(exc, SQLITE_FAILURES) and raised_by_sqlite(exc):
                raise db._explain(exc) from None
            raise

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        db = self.db
        if self.joined:
            db._thread_lock.release()
            return
        try:
            if exc is None:
                try:
                    db._control.execute("COMMIT")
                except BaseException as failed:
                    _roll_back(self.conn)
                    if isinstance(failed, SQLITE_FAILURES) and raised_by_sqlite(failed):
                        raise db._explain(failed) from None
                    raise
                db._wrote = True
                return
            _roll_back(self.conn)
            if isinstance(exc, SQLITE_FAILURES) and raised_by_sqlite(exc):
                raise db._explain(exc) from None
        finally:
            if self.turnstile is not None:
                # (the process id asked again: a child forked inside the write, by code a
                # quick decision runs, must not give back its parent's turn)
                self.turnstile.leave()
            db._thread_lock.release()
            if self.turnstile is not None and time.monotonic() - self.began > LONG_WRITE:
                # A long write that another would follow at once (the next report of a
                # run) leaves a waiting writer no gap to take the lock in: a pause of a
                # millisecond, a fiftieth of the write at most, gives it one.
                time.sleep(0.001)


def _roll_back(conn: sqlite3.Connection | None) -> None:
    """Roll back what ``conn`` has open."""
    if conn is not None and conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):  # (gone with the connection)
            conn.execute("ROLLBACK")


def _begin_past_a_busy_turnstile(db: Database, turnstile: Turnstile) -> None:
    """``BEGIN IMMEDIATE`` for a writer the turnstile did not pass within its patience:
    it looks in turn at the turnstile and at SQLite's own write lock, every millisecond at
    most, until either is free, for as long as ``db.timeout``.

    SQLite's own wait sleeps up to 100 ms between looks: beside another worker whose write
    transactions were long and followed one another a fraction of a millisecond apart (a
    stopping rule reading thousands of trials at each report), it never found the lock
    free, and the worker died after 60 s. Looking at SQLite's lock too keeps a turnstile
    held by a stopped process (Ctrl-Z) from stopping the writes.

    Raises:
        sqlite3.OperationalError: the file stayed locked for ``db.timeout`` (the caller
            explains it), or SQLite failed otherwise.
    """
    control = db._control
    deadline = time.monotonic() + db.timeout
    delay = 0.0002
    try:  # (the PRAGMA inside: a Ctrl-C as it returns must not leave the wait at 0)
        control.execute("PRAGMA busy_timeout = 0")
        while True:
            if turnstile.take_now():
                # its turn: SQLite's lock waited for, for what is left of the time
                left = max(deadline - time.monotonic(), 0.0)
                control.execute(f"PRAGMA busy_timeout = {int(left * 1000)}")
                control.execute("BEGIN IMMEDIATE")
                return
            try:
                control.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.001)
    finally:
        restore_wait(db)


def restore_wait(db: Database) -> None:
    """Set the connection's wait for SQLite's lock back to ``db.timeout``."""
    db._control.execute(f"PRAGMA busy_timeout = {int(db.timeout * 1000)}")


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text
