"""How this process's connections to search files end: closing a file that was moved,
replaced or deleted while open; databases dropped without close(); fork (a child never
uses or closes its parent's connections); and exit (a script that never calls close()
still folds its log into the file).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sqlite3
import warnings
import weakref
from pathlib import Path
from typing import Any, Protocol

from hpstore import process_limits
from hpstore.store.sqlite import files, locks, shared
from hpstore.store.sqlite.schema import PAGE_SIZE

CLOSE_CHECKPOINT_WAIT = 1.0  # seconds a closing process waits for readers to let go

# Connections inherited through fork() must never be used or closed by the child
# (SQLite forbids carrying a connection across fork); keeping a reference here stops the
# garbage collector from closing them in the child.
ORPHANS: list[Any] = []


class Closable(Protocol):
    """What the fork and exit hooks need of an open database."""

    timeout: float

    def fork_locks(self) -> list[Any]: ...

    def after_fork(self) -> None: ...

    def close(self) -> None: ...


def fold(path: Path, conn: sqlite3.Connection) -> Warning | None:
    """Fold the whole log into the file ``path`` and empty it, waiting briefly for readers.

    A fold that fails (no room on the disk to grow the file, an I/O error) loses nothing,
    as the log keeps every commit and SQLite folds it in later, but the ``.db`` alone is
    then not the whole search, where the README promises a closed search it is: a warning
    says so, as closing raises nothing. A warning made an error (``-W error``) is returned,
    for the closer to raise once the file is let go of.
    """
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(CLOSE_CHECKPOINT_WAIT * 1000)}")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except sqlite3.Error as exc:
        text = str(exc).rstrip(".")
        found = process_limits.out_of_room(path, text, PAGE_SIZE)
        cause = found[0] if found is not None else text
        try:
            warnings.warn(
                f"{path}: its write-ahead log could not be folded into it as the search "
                f"closed: {cause}. Nothing is lost: the latest commits are in "
                f"{path.name}-wal, which must stay beside the file (it is folded in as the "
                "search goes on, or closes, with room on its disk). Until then the file "
                "alone is not the whole search: copy it with `hpstore backup`, not `cp`.",
                UserWarning, stacklevel=1)
        except Warning as said:
            return said
    return None


def close_moved(path: Path, identity: files.Identity, conn: sqlite3.Connection, *,
                may_fold: bool) -> Warning | None:
    """Close a connection to the file ``identity``, which was moved, replaced or deleted
    from ``path`` while open.

    SQLite keeps the log under the old name and does not fold it in on close. Fold it in
    here when that is safe: this closer's turn (see ``Database.close``), no process uses
    the file through another log (a process that opened the new name would have been
    refused while this one was connected, see ``names.check_not_open_elsewhere``),
    and no other process uses the log under the old name (a file that took that name is
    refused while this one is connected, and opened by nobody). Then the moved file holds
    every commit, and a file that took the old name never finds this one's log beside it
    (emptied: the next to open that file would take its pages as its own).
    """
    shm = path.with_name(path.name + "-shm")
    if may_fold and (not path.exists() or files.index_in_use(shm) is False) and \
            files.used_under_another_name(identity, None, shm) is False:
        said = fold(path, conn)
        conn.close()
        return said
    conn.close()
    return None


def remove_old_name(path: Path, sidecar: Path) -> None:
    """Remove the log, index and lock folder the moved file had under its old name
    ``path``, once the log is folded in and no process uses them."""
    shm = path.with_name(path.name + "-shm")
    if path.exists() or files.index_in_use(shm) is not False:
        return  # a new file took the old name, or other processes still use the old log
    wal = path.with_name(path.name + "-wal")
    try:
        if wal.stat().st_size != 0:
            return  # not folded in: what it holds is the search's, and stays
    except FileNotFoundError:
        # Another closer folded the log in and removed it, and may have found this
        # process's liveness file still locked and left the folder: remove it here.
        pass
    except OSError:
        return
    for name in (wal, shm):
        with contextlib.suppress(OSError):
            name.unlink()
    locks.remove_idle_folder(sidecar)


# -- databases dropped unclosed ---------------------------------------------------------------
# Connections of databases collected without close(), to close at the next connect: the
# collector may run in the middle of any statement of this thread, so it only notes them.
_DROPPED: list[sqlite3.Connection] = []


def dropped(conn: sqlite3.Connection, pid: int) -> None:
    """For ``weakref.finalize``: ``conn``'s database was collected unclosed."""
    if os.getpid() == pid:  # (a forked child's copy is the parent's: see ORPHANS)
        _DROPPED.append(conn)


def close_dropped() -> None:
    """Close the connections of databases collected unclosed."""
    shared.drain(_DROPPED, _close_quietly)


def _close_quietly(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        conn.close()


# -- fork ------------------------------------------------------------------------------------
# Every open database, for the fork and exit hooks below.
_DATABASES: weakref.WeakSet[Any] = weakref.WeakSet()
_HELD_FOR_FORK: list[Any] = []


def register(db: Closable) -> None:
    """Follow ``db`` through fork and exit."""
    _DATABASES.add(db)


def open_databases() -> list[Any]:
    """This process's databases not yet collected (open or closed)."""
    return list(_DATABASES)


def _before_fork() -> None:
    # Let no thread of this process be inside create_trial or a transaction at the instant
    # of a fork: the child would inherit its locks (Python's and SQLite's own mutexes) held
    # by a thread that does not exist there. Bounded: a thread that does not let go within
    # the timeout is forked past, and the child starts its locks afresh anyway.
    for db in list(_DATABASES):
        for lock in db.fork_locks():
            if lock.acquire(timeout=db.timeout):
                _HELD_FOR_FORK.append(lock)


def _after_fork_in_parent() -> None:
    while _HELD_FOR_FORK:
        _HELD_FOR_FORK.pop().release()


def _after_fork_in_child() -> None:
    _HELD_FOR_FORK.clear()
    ORPHANS.extend(_DROPPED)  # the parent's, never to be closed here
    _DROPPED.clear()
    for db in list(_DATABASES):
        db.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)


_ENDED = False


def ended() -> bool:
    """Whether this process's searches were closed as its interpreter ends: none may be
    opened again (a daemon thread still running trials would commit after the fold)."""
    return _ENDED


@atexit.register
def _close_at_exit() -> None:
    # A script that never calls close() (KerasTuner's API has no such call) still folds
    # its log into the file as it ends, whatever reader has the file open.
    global _ENDED
    _ENDED = True
    for db in list(_DATABASES):
        with contextlib.suppress(Exception):
            db.close()
    close_dropped()  # the last connection to close folds the log, as close() does
    # and the lock files and liveness file of searches dropped unclosed are given back
    with contextlib.suppress(Exception):
        shared.leave_dropped()
