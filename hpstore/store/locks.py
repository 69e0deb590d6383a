"""Operating-system file locks: a mutex between processes, and proof that a worker lives.

The mutex (:class:`FileMutex`) keeps its descriptor open for the life of the process, so
taking it costs two system calls; hpstore takes it on every ``create_trial``.

Liveness (:class:`Session`) tells a live worker from a dead one without guessing from
elapsed time. Each process that takes trials holds an exclusive lock on a small file of its own for
as long as it lives. The operating system drops that lock the instant the process ends,
``kill -9`` included, so another process that manages to take the lock knows the owner
is gone. A slow worker keeps its lock and is never mistaken for a dead one.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import threading
from pathlib import Path

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        with contextlib.suppress(OSError):
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

    def _lock(fd: int) -> None:
        while True:  # LK_LOCK gives up after ten seconds; a mutex must wait
            try:
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
                return
            except OSError:
                continue

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)


class FileMutex:
    """An exclusive, re-entrant lock between processes (and threads) on one file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = -1
        self._depth = 0
        self._threads = threading.RLock()

    def __enter__(self) -> FileMutex:
        self._threads.acquire()
        try:
            if self._pid != os.getpid():
                # A descriptor inherited through fork shares the parent's lock; open our own.
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                self._pid, self._depth = os.getpid(), 0
            if self._depth == 0:
                self._lock_current_file()
            self._depth += 1
        except BaseException:
            self._threads.release()
            raise
        return self

    def _lock_current_file(self) -> None:
        # If the lock file was deleted (or replaced) under us, a lock on our old descriptor
        # excludes no one: another process locks the new file. Lock whatever file the path
        # names now, and check after locking that it still names it.
        while True:
            assert self._fd is not None
            _lock(self._fd)
            try:
                current = os.stat(self.path)
            except FileNotFoundError:
                current = None
            held = os.fstat(self._fd)
            if current is not None and (current.st_dev, current.st_ino) == (
                    held.st_dev, held.st_ino):
                return
            _unlock(self._fd)
            os.close(self._fd)
            self.path.parent.mkdir(mode=0o755, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)

    def __exit__(self, *exc: object) -> None:
        try:
            self._depth -= 1
            if self._depth == 0 and self._fd is not None:
                _unlock(self._fd)
        finally:
            self._threads.release()


_LIVE: set[Session] = set()


def _after_fork_in_child() -> None:
    # A forked child shares its parent's open lock descriptions; if it kept them, the
    # parent would look alive for as long as the child lives. Close the child's copies
    # (which leaves the parent's lock in place) before any user code runs in the child.
    for session in list(_LIVE):
        session.forget()
    _LIVE.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_TOKEN = re.compile(r"[0-9a-f]{16}")


def _lock_path(folder: Path, token: str) -> Path:
    return folder / f"worker-{token}.alive"


class Session:
    """This process's proof of life: a token and the lock that backs it."""

    def __init__(self, folder: Path, token: str, fd: int) -> None:
        self.folder = folder
        self.token = token
        self.pid = os.getpid()
        self._fd: int | None = fd

    @classmethod
    def start(cls, folder: Path) -> Session:
        """Create and lock a fresh token file in ``folder``."""
        token = secrets.token_hex(8)
        path = _lock_path(folder, token)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):  # a fresh random name cannot be held by anyone else
            os.close(fd)
            raise OSError(f"could not lock the new liveness file {path}")
        with contextlib.suppress(OSError):
            os.write(fd, str(os.getpid()).encode())
        session = cls(folder, token, fd)
        _LIVE.add(session)
        return session

    @staticmethod
    def probe(folder: Path, token: str, *, tidy: bool = True, pid: int | None = None) -> bool:
        """Whether the process holding ``token`` is alive; a dead one's file is removed
        unless ``tidy`` is False (read-only inspection changes nothing). Without its file
        (the folder was deleted under it, or a prober tidied it) ``pid`` decides."""
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            # Tokens are made by start(); anything else was written into the file by another
            # program, and must never become a path (think "../../x") that tidying removes.
            return False
        path = _lock_path(folder, token)
        try:
            fd = os.open(path, os.O_RDONLY if not tidy else os.O_RDWR)
        except FileNotFoundError:
            if pid is None:
                return False
            if pid == os.getpid():  # this process knows its own sessions
                return any(s.token == token and s.pid == pid for s in _LIVE)
            return _pid_alive(pid)
        try:
            if not _try_lock(fd):
                return True
            if tidy:
                with contextlib.suppress(OSError):
                    path.unlink()
            _unlock(fd)
            return False
        finally:
            os.close(fd)

    @staticmethod
    def held_here(token: str | None) -> bool:
        """Whether ``token`` is a live session of this process."""
        pid = os.getpid()
        return any(s.token == token and s.pid == pid and s._fd is not None for s in _LIVE)

    def end(self) -> None:
        """Release the lock and remove the file (a normal exit)."""
        if self._fd is None or self.pid != os.getpid():
            return
        with contextlib.suppress(OSError):
            _lock_path(self.folder, self.token).unlink()
        with contextlib.suppress(OSError):
            _unlock(self._fd)
        os.close(self._fd)
        self._fd = None
        _LIVE.discard(self)

    def forget(self) -> None:
        """In a forked child: drop the inherited descriptor without releasing the parent's
        lock (closing one copy of the descriptor leaves the lock with the parent)."""
        if self._fd is not None and self.pid != os.getpid():
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
