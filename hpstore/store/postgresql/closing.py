"""How a process's connections to a server end: closed by their Database, closed as a
Database dropped unclosed is collected, or never closed by a process that inherited them
through fork (closing one would end its parent's session on the server), and each
Database's lock made afresh in a forked child.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from typing import Any

# Connections inherited through fork() must never be used or closed by the child: closing
# would end the parent's session on the server. Keeping a reference stops the garbage
# collector from closing them.
ORPHANS: list[Any] = []

# Every Database of this process, for the fork hook below.
_DATABASES: weakref.WeakSet[Any] = weakref.WeakSet()


def end(conn: Any, pid: int) -> None:
    """Close ``conn``, opened by process ``pid``: one a parent opened is kept, unused."""
    if pid != os.getpid():  # a parent's, inherited through fork: its socket is the parent's
        ORPHANS.append(conn)
        return
    with contextlib.suppress(Exception):
        conn.close()


def close_dropped(opened: list[Any]) -> None:
    """What a Database collected unclosed leaves: ``opened`` is its [connection, pid]."""
    conn, pid = opened
    opened[:] = [None, -1]
    if conn is not None:
        end(conn, pid)


def track(db: Any) -> None:
    """Follow ``db`` (a Database): a forked child gives it a lock of its own."""
    _DATABASES.add(db)


_HELD_FOR_FORK: list[Any] = []


def _before_fork() -> None:
    # No thread of this process inside a transaction at the instant of a fork: the child
    # would inherit the connection mid-transaction, and the lock of a thread it does not
    # have. Bounded: a thread that holds on past the timeout is forked past, and the child
    # starts afresh anyway.
    for db in list(_DATABASES):
        if db._lock.acquire(timeout=db.timeout):
            _HELD_FOR_FORK.append(db._lock)


def _after_fork_in_parent() -> None:
    while _HELD_FOR_FORK:
        _HELD_FOR_FORK.pop().release()


def _after_fork_in_child() -> None:
    # A parent's thread may have held a lock at the fork: the child starts afresh (and its
    # first statement opens a connection of its own).
    _HELD_FOR_FORK.clear()
    for db in list(_DATABASES):
        db.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
