"""What every open search of one file shares within one process: its lock files and its
proof of life.

A notebook may build a thousand oracles on one file (a cell run again and again), each
with a database of its own. Were each to open the decide-and-record lock, the writers'
lock and a liveness file of its own, a process would run out of file descriptors long
before a thousand. So the lock files are opened once per process and file, and one
liveness session serves every database of the file: it ends when the last of them closes,
or is dropped and collected (or with the process), but not while a trial this process
started may still run, so a trial one oracle left running (dropped, or closed as the trial
ran) is still this live process's own, and its next oracle of the file hands it back
instead of finding it interrupted.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hpstore.store.sqlite import machines
from hpstore.store.sqlite.files import make_lock_folder
from hpstore.store.sqlite.locks import FileMutex, Session, Turnstile

_T = TypeVar("_T")


class FileShare:
    """The lock files and the session of one search file, in this process."""

    def __init__(self, sidecar: Path, what: str) -> None:
        self.sidecar = sidecar
        self.what = what
        self.mutex = FileMutex(sidecar / "oracle.lock",
                               what=f"the decide-and-record lock of {what}", patient=True)
        self.turnstile = Turnstile(sidecar / "write.lock")
        self._session: Session | None = None
        self.users = 0  # open databases of the file (one dropped unclosed leaves when collected)
        #: row ids of the trials this process started under the session and has not ended
        self.running: set[int] = set()

    def session(self) -> Session:
        """The file's liveness session in this process, started on first use.

        Raises:
            FileIdentityError: the lock folder or a file in it is a symbolic link.
            DatabaseError: a live worker of the search runs on another machine.
        """
        with _LOCK:
            if self._session is None:
                make_lock_folder(self.sidecar)
                session = Session.start(self.sidecar, machines.MACHINE)
                try:
                    machines.refuse_another(self.sidecar, session.token, self.what)
                except BaseException:
                    session.end()
                    raise
                self._session = session
            return self._session


_LOCK = threading.Lock()
_SHARES: dict[tuple[int, Path], FileShare] = {}
_DROPPED: list[FileShare] = []  # left by databases collected unclosed, to leave (see drop)


def join(sidecar: Path, what: str) -> FileShare:
    """The share of the file whose lock folder is ``sidecar``, counting one more user."""
    _leave_dropped()
    with _LOCK:
        key = (os.getpid(), sidecar)  # a forked child starts its own
        share = _SHARES.get(key)
        if share is None:
            share = _SHARES[key] = FileShare(sidecar, what)
        share.users += 1
        return share


def leave(share: FileShare, keep_running: bool = False) -> None:
    """One user of ``share`` closed: the last one ends the session and closes the lock
    files (the session only in the process that started it). With ``keep_running`` (a
    user dropped without closing), a session under which a trial this process started
    may still run is kept, with the share, for the next user: that trial is this live
    process's own, not a dead worker's."""
    with _LOCK:
        share.users -= 1
        if share.users > 0:
            return
        session = None
        if not (keep_running and share.running):
            key = (os.getpid(), share.sidecar)
            if _SHARES.get(key) is share:
                del _SHARES[key]
            session, share._session = share._session, None
            share.running.clear()
    if session is not None and session.pid == os.getpid():
        session.end()
    share.mutex.close()  # (opened again by the next user)
    share.turnstile.close()


def drop(share: FileShare, pid: int) -> None:
    """A database of process ``pid`` was collected without being closed: it leaves
    ``share`` when the next database joins (a forked child's copy of a parent's database
    leaves nothing: the share is the parent's).

    Called by the garbage collector, which may run in the middle of :func:`join` or
    :func:`leave` on this very thread: so it only notes the share (appending to a list
    needs no lock), and the leaving is done later, outside any lock.
    """
    if os.getpid() == pid:
        _DROPPED.append(share)


def _leave_dropped() -> None:
    drain(_DROPPED, lambda share: leave(share, keep_running=True))


def leave_dropped() -> None:
    """As this process ends: leave the shares of databases dropped unclosed, and end the
    sessions kept for a trial still running after their last user left (see
    :func:`leave`): a trial one still runs is handed on, as its process is going."""
    drain(_DROPPED, leave)
    with _LOCK:
        kept = [share for key, share in _SHARES.items()
                if not share.users and key[0] == os.getpid()]
        for share in kept:
            share.users += 1  # (each left below, as by its last user)
    for share in kept:
        leave(share)


def drain(noted: list[_T], action: Callable[[_T], object]) -> None:
    """``action`` on each item a finalizer noted, taking each out first (pop is atomic: a
    collection in the middle of this may note more, and they are taken too)."""
    while True:
        try:
            item = noted.pop()
        except IndexError:
            return
        action(item)


def after_fork_in_child() -> None:
    global _LOCK
    _LOCK = threading.Lock()  # a parent's thread may have held it at the fork
    _DROPPED.clear()  # the parent's to leave


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=after_fork_in_child)
