"""Operating-system file locks: a mutex between processes, and proof that a worker lives.

The mutex (:class:`FileMutex`) keeps its descriptor open until its search file is closed,
so taking it costs a few system calls; hpstore takes it on every ``create_trial``. Waiting
for it is bounded, and a holder leaves its name in the lock file for whoever waits.

Liveness (:class:`Session`) tells a live worker from a dead one without guessing from
elapsed time. Each process that takes trials holds an exclusive lock on a small file of its own for
as long as it lives. The operating system drops that lock the instant the process ends,
``kill -9`` included, so another process that manages to take the lock knows the owner
is gone. A slow worker keeps its lock and is never mistaken for a dead one.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import secrets
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hpstore.errors import DatabaseError, LockTimeoutError
from hpstore.store.sqlite.files import make_lock_folder, open_lock_file

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
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


def _pid_space() -> str:
    """"/N", N this process's PID namespace (Linux), written after its pid in a lock's
    note: a process id read back means this process's kind only in the same namespace."""
    try:
        return f"/{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return "/"


_PID_SPACE = _pid_space()


class FileMutex:
    """An exclusive, re-entrant lock between processes (and threads) on one file.

    Waiting is bounded: :meth:`hold` gives up after ``timeout`` seconds with a
    :class:`LockTimeoutError` that names the holder, which each holder writes into the
    lock file (its pid, and its tuner id when it has one) when it takes the lock. A
    ``patient`` lock waits on for as long as its holder is alive and not stopped (an oracle
    thinking for minutes, or several in a row, is working, not stuck): only a holder
    stopped (Ctrl-Z, a debugger) or not to be found for ``timeout`` seconds ends the wait.
    """

    def __init__(self, path: Path, *, what: str = "lock", patient: bool = False) -> None:
        self.path = path
        self.what = what
        self.patient = patient
        self._fd: int | None = None
        self._pid = -1
        self._depth = 0
        self._threads = threading.RLock()
        _MUTEXES.add(self)

    @contextlib.contextmanager
    def hold(self, timeout: float, holder: str | None = None) -> Iterator[None]:
        """Hold the lock for the ``with`` block.

        Raises:
            LockTimeoutError: another process (or thread) held it for ``timeout`` seconds.
            FileIdentityError: the lock file is a symbolic link.
        """
        self.acquire(timeout, holder)
        try:
            yield
        finally:
            self.release()

    def acquire(self, timeout: float, holder: str | None = None) -> None:
        """Take the lock (re-entrant); see :meth:`hold`."""
        deadline = time.monotonic() + max(0.0, timeout)
        held = held_count(self._threads)
        try:
            # (another thread of this process holding it is alive and not stopped: this
            # one is)
            if not self._threads.acquire(timeout=-1 if self.patient else max(0.0, timeout)):
                raise LockTimeoutError(
                    f"Another thread of this process held {self.what} ({self.path}) for "
                    f"more than {timeout:g} s; nothing was written. Is a thread stuck "
                    "inside create_trial?")
            if self._pid != os.getpid():
                self._fd, self._pid, self._depth = None, os.getpid(), 0
            if self._depth == 0:
                self._lock_current_file(deadline, timeout)
                self._note(holder)
            self._depth += 1
        except BaseException:
            # A Ctrl-C may land anywhere here, even as a call returns: whatever was taken
            # is given back, the file's lock first (kept, every other worker would wait
            # for it while this process lives), then the thread lock, to its count before.
            # (only by the thread that took the thread lock here: another thread may hold
            # the file's lock at depth 0 yet, between its flock and its count)
            if (held_count(self._threads) > held and self._depth == 0
                    and self._fd is not None and self._pid == os.getpid()):
                with contextlib.suppress(OSError):
                    _unlock(self._fd)
            release_to(self._threads, held)
            raise

    def release(self) -> None:
        try:
            self._depth -= 1
        finally:  # (the unlock in a finally too: a Ctrl-C between the two kept the lock)
            try:
                if self._depth == 0 and self._fd is not None:
                    _unlock(self._fd)
            finally:
                self._threads.release()

    def __enter__(self) -> FileMutex:
        self.acquire(_FOREVER)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def close(self) -> None:
        """Close the lock file's descriptor (the lock must not be held)."""
        with self._threads:
            # forgotten before it is closed: a Ctrl-C landing as os.close returns left the
            # number here, and a later close closed whatever file had it next (SQLite's -shm)
            fd, mine = self._fd, self._pid == os.getpid() and self._depth == 0
            self._fd, self._pid, self._depth = None, -1, 0
            if fd is not None and mine:
                os.close(fd)

    def _after_fork_in_child(self) -> None:
        # The parent's threads do not exist here: a lock one of them held would never be
        # released. Start afresh; the inherited descriptor is closed without unlocking it
        # (unlocking would release the parent's lock, which lives on in the parent).
        self._threads = threading.RLock()
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd, self._pid, self._depth = None, -1, 0

    def _lock_current_file(self, deadline: float, timeout: float) -> None:
        # If the lock file was deleted (or replaced) under us, a lock on our old descriptor
        # excludes no one: another process locks the new file. Lock whatever file the path
        # names now, and check after locking that it still names it.
        while True:
            if self._fd is None:
                make_lock_folder(self.path.parent)  # made again if deleted; never a link
                try:
                    self._fd = open_lock_file(self.path)
                except FileNotFoundError:  # the folder deleted again in between: remake it
                    continue
            self._wait_for(self._fd, deadline, timeout)
            try:
                current = os.stat(self.path, follow_symlinks=False)
            except FileNotFoundError:
                current = None
            held = os.fstat(self._fd)
            if current is not None and (current.st_dev, current.st_ino) == (
                    held.st_dev, held.st_ino):
                return
            _unlock(self._fd)
            os.close(self._fd)
            self._fd = None

    def _wait_for(self, fd: int, deadline: float, timeout: float) -> None:
        # No operating system offers a blocking file lock with a timeout: see _wait_turn.
        while not _wait_turn(fd, deadline):
            if not (self.patient and self._holder_state(fd) == "running"):
                raise LockTimeoutError(self._explain_wait(fd, timeout))
            deadline = time.monotonic() + timeout  # working, not stuck: wait on

    def _holder_state(self, fd: int) -> str:
        """What the holder the lock file names is doing (see :func:`process_state`);
        "unknown" for one of another PID namespace (a container sharing the folder: its
        process ids are not this one's)."""
        try:
            pid, _, space = os.pread(fd, 4096, 0).decode("ascii", "replace").split(
                " ", 1)[0].partition("/")
            if f"/{space}" != _PID_SPACE:
                return "unknown"
            return process_state(int(pid))
        except (OSError, ValueError, AttributeError):
            return "unknown"

    def _note(self, holder: str | None) -> None:
        # Who holds the lock, for the message of whoever waits too long for it: "pid tuner".
        # Rewritten only when another holder wrote its own since (a pread is cheaper than a
        # write and a truncate, and this runs on every create_trial).
        assert self._fd is not None
        note = f"{os.getpid()}{_PID_SPACE} {holder if holder is not None else ''}".encode(
            "utf-8", "backslashreplace")
        with contextlib.suppress(OSError, AttributeError):  # no pread/pwrite on Windows
            if os.pread(self._fd, len(note) + 1, 0) != note:
                os.pwrite(self._fd, note, 0)
                os.ftruncate(self._fd, len(note))

    def _explain_wait(self, fd: int, timeout: float) -> str:
        try:
            pid_text, _, tuner = os.pread(fd, 4096, 0).decode("utf-8", "replace").partition(" ")
            pid = int(pid_text.partition("/")[0])
        except (OSError, ValueError, AttributeError):
            return (f"Another process held {self.what} ({self.path}) for more than "
                    f"{timeout:g} s and did not say which; nothing was written. Find it with "
                    f"`fuser {self.path}` and resume (kill -CONT) or end it.")
        who = f"process {pid}" + (f" (tuner {tuner!r})" if tuner else "")
        state = process_state(pid)
        if state == "stopped":
            what_now = (f"It is stopped (Ctrl-Z, SIGSTOP or a debugger): resume it (`fg` in "
                        f"its terminal, or `kill -CONT {pid}`) or end it (`kill {pid}`).")
        elif state == "gone":
            what_now = ("That process has ended, but a process it started still holds the "
                        f"lock file open: find it with `fuser {self.path}`.")
        else:
            what_now = (f"It is still running: wait for it, or end it (`kill {pid}`) if it "
                        "is stuck.")
        return (f"Waited {timeout:g} s for {self.what} ({self.path}), held by {who}. "
                f"{what_now} Nothing was written; run again after that.")


def held_count(lock: Any) -> int:
    """How many times this thread holds ``lock`` (an RLock; 0 when another thread, or none,
    holds it)."""
    return int(lock._recursion_count())


def release_to(lock: Any, count: int) -> None:
    """Release ``lock`` (an RLock) until this thread holds it ``count`` times: what an
    interrupted acquire took, however far it got (a KeyboardInterrupt can land as acquire
    returns, before any code could note that it did)."""
    while lock._is_owned() and held_count(lock) > count:
        lock.release()


class Turnstile:
    """Where one process's writers queue for a file before SQLite's own write lock.

    Only an accelerator, never what keeps writes apart (SQLite's lock does that): a writer
    that finds the file locked is put to sleep by SQLite for a millisecond or more, while a
    write transaction takes tens of microseconds; a writer waiting here takes its turn the
    instant the last one ends. A writer that cannot pass within ``patience`` seconds (a
    long import, a stopped process) goes on to SQLite's lock and its bounded wait, so a
    lost or replaced lock file costs speed, never safety.
    """

    def __init__(self, path: Path, patience: float = 0.05) -> None:
        self.path = path
        self.patience = patience
        self._fd: int | None = None
        self._pid = -1
        _TURNSTILES.add(self)
        #: when (monotonic seconds) a writer last found the turnstile taken
        self.waited = -math.inf

    def enter(self, pid: int | None = None) -> bool:
        """Take a turn; whether this process holds it (False: go on without it).
        ``pid``: this process's id, when the caller just asked for it."""
        if pid is None:
            pid = os.getpid()
        if self._pid != pid:  # first use, or a child after fork: a descriptor
            self._after_fork_in_child()  # of its own, not its parent's
            self._pid = pid
        try:
            if self._fd is None:
                make_lock_folder(self.path.parent)
                self._fd = open_lock_file(self.path)
        except (OSError, DatabaseError):  # (out of open files: said by the write itself)
            return False
        try:
            if _try_lock(self._fd):
                return True
            self.waited = time.monotonic()
            return _wait_turn(self._fd, self.waited + self.patience)
        except BaseException:  # a Ctrl-C as the lock was taken: no turn is kept
            self.leave()
            raise

    def take_now(self) -> bool:
        """Take a turn if it is free now, without waiting (after :meth:`enter` let this
        writer go on without one)."""
        return self._fd is not None and self._pid == os.getpid() and _try_lock(self._fd)

    def leave(self, pid: int | None = None) -> None:
        """End this process's turn (taken by :meth:`enter` returning True; nothing
        happens when this process holds none). ``pid`` as for :meth:`enter`."""
        if self._fd is not None and self._pid == (os.getpid() if pid is None else pid):
            # (not contextlib.suppress: this runs at every write, and a context manager
            # costs more than the unlock)
            try:  # noqa: SIM105
                _unlock(self._fd)
            except OSError:
                pass

    def close(self) -> None:
        fd, mine = self._fd, self._pid == os.getpid()
        self._fd, self._pid = None, -1  # (forgotten first: see FileMutex.close)
        if fd is not None and mine:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _after_fork_in_child(self) -> None:
        # The child's copy of the descriptor shares the parent's lock: kept open, it would
        # hold a turn the parent took for as long as the child lives, after the parent
        # died (every writer of the file then waits out its patience at each write).
        # Closed without unlocking, which would release the parent's turn.
        if self._fd is not None and self._pid != os.getpid():
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd, self._pid = None, -1


def _wait_turn(fd: int, until: float) -> bool:
    """Take the lock on ``fd``, waiting at most until ``until`` (monotonic); whether it was
    taken. Most holders are done within tens of microseconds (one write transaction), far
    less than the shortest sleep: a waiter first gives the processor away and looks again,
    for a bounded time, then sleeps between looks."""
    if _try_lock(fd):
        return True
    spin_until = time.monotonic() + _SPIN
    delay = 0.0002
    while not _try_lock(fd):
        now = time.monotonic()
        if now >= until:
            return False
        if now < spin_until:
            _yield()
        else:
            time.sleep(min(delay, until - now))
            delay = min(delay * 2, 0.001)
    return True


#: the lock files hpstore keeps in a search's lock folder
LOCK_FILES = ("oracle.lock", "write.lock", "schema.lock")
_FOREVER = 10.0 ** 9  # seconds: the plain ``with mutex:`` form waits as long as it takes
_SPIN = 0.002  # seconds a waiter yields the processor between looks before it sleeps
_yield = getattr(os, "sched_yield", lambda: time.sleep(0))
_MUTEXES: weakref.WeakSet[FileMutex] = weakref.WeakSet()
_TURNSTILES: weakref.WeakSet[Turnstile] = weakref.WeakSet()


def process_state(pid: int) -> str:
    """What process ``pid`` is doing: "stopped", "gone", "running" or "unknown"."""
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except FileNotFoundError:
        return "gone" if not _pid_alive(pid) else "unknown"
    except OSError:
        return "unknown"
    state = text[text.rfind(")") + 2:][:1]  # the field after "(command name)"
    if state in ("T", "t"):
        return "stopped"
    return "gone" if state in ("Z", "X") else "running"


_LIVE: set[Session] = set()


def _after_fork_in_child() -> None:
    # A forked child shares its parent's open lock descriptions; if it kept them, the
    # parent would look alive for as long as the child lives. Close the child's copies
    # (which leaves the parent's lock in place) before any user code runs in the child.
    for session in list(_LIVE):
        session.forget()
    _LIVE.clear()
    for mutex in list(_MUTEXES):
        mutex._after_fork_in_child()
    for turnstile in list(_TURNSTILES):
        turnstile._after_fork_in_child()
    _WATCHED.lock = threading.Lock()  # (a parent's thread may have held it)
    _WATCHED.close()


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
_FILE = re.compile(r"worker-([0-9a-f]{16})\.alive")


class _Watched:
    """Descriptors of other processes' liveness files, kept open between looks.

    Every ``create_trial`` looks at the file of each worker running a trial, and most of
    them are alive: on an open descriptor that look is one ``flock`` call, where opening
    the file by its name walks the path and costs two calls more. Nothing is locked
    through them between looks. At most ``limit`` are kept (the oldest closed first), a
    search's are closed when the search is closed, and a forked child closes its copies.
    """

    def __init__(self, limit: int = 64) -> None:
        self.lock = threading.Lock()
        self.limit = limit
        self._fds: dict[tuple[Path, str], int] = {}  # (folder, token): descriptor
        self._pid = os.getpid()

    def pop(self, key: tuple[Path, str]) -> int | None:
        """The descriptor kept for the file of ``key`` (folder, token), taken out (keep it
        again), if any; call with ``lock`` held."""
        self._forked()
        return self._fds.pop(key, None)

    def keep(self, key: tuple[Path, str], fd: int) -> None:
        """Keep ``fd`` open for the next look at the file of ``key`` (closed instead when
        another thread kept one for it meanwhile); call with ``lock`` held."""
        self._forked()
        if key in self._fds:
            os.close(fd)
            return
        self._fds[key] = fd
        while len(self._fds) > self.limit:
            with contextlib.suppress(OSError):
                os.close(self._fds.pop(next(iter(self._fds))))

    def close(self, folder: Path | None = None) -> None:
        """Close the descriptors kept for files in ``folder`` (None: all of them)."""
        with self.lock:
            self._forked()
            for key in [k for k in self._fds if folder is None or k[0] == folder]:
                with contextlib.suppress(OSError):
                    os.close(self._fds.pop(key))

    def _forked(self) -> None:
        # In a forked child the descriptors are copies of the parent's: closed here (no
        # lock is held through them, so the parent loses nothing), not carried along.
        if self._pid != os.getpid():
            for fd in self._fds.values():
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._fds.clear()
            self._pid = os.getpid()


_WATCHED = _Watched()


def stop_watching(folder: Path) -> None:
    """Close the descriptors kept open for looks at the liveness files in ``folder``."""
    _WATCHED.close(folder)


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
    def start(cls, folder: Path, note: str = "") -> Session:
        """Create and lock a fresh token file in ``folder``, holding this process's pid and
        ``note`` (the machine it runs on, see machines.py).

        Raises:
            FileIdentityError: the folder holds a symbolic link of that name.
        """
        for _ in range(100):
            token = secrets.token_hex(8)
            path = _lock_path(folder, token)
            try:
                fd = open_lock_file(path, exclusive=True)
            except FileExistsError:
                continue
            except FileNotFoundError:  # the lock folder was deleted (by hand): made again
                make_lock_folder(folder)
                continue
            # Between creating the file and locking it, a sweeper (see sweep) may take the
            # free lock and remove the file: then start again under another name.
            if _try_lock(fd) and _names(path, fd):
                with contextlib.suppress(OSError):
                    os.write(fd, f"{os.getpid()} {note}".strip().encode())
                session = cls(folder, token, fd)
                _LIVE.add(session)
                return session
            os.close(fd)
        raise OSError(f"could not create a liveness file in {folder}")

    @staticmethod
    def probe(folder: Path, token: str, *, tidy: bool = True, pid: int | None = None) -> bool:
        """Whether the process holding ``token`` is alive; a dead one's file is removed
        unless ``tidy`` is False (read-only inspection changes nothing). Without its file
        (the folder was deleted under it, or a prober tidied it), or with a file this user
        cannot read, ``pid`` decides; with neither file nor pid it is taken for dead, with
        an unreadable file and no pid for alive (never reaped on a guess)."""
        if not isinstance(token, str):
            return False  # (see below)
        key = (folder, token)
        with _WATCHED.lock:
            fd = _WATCHED.pop(key)
            if fd is not None:  # (a token checked when its file was first opened)
                if not _try_lock(fd):
                    _WATCHED.keep(key, fd)
                    return True
                # Free: the session ended, or its process did. Which one (a worker that
                # closed its search and goes on is alive: its pid decides, as below) is
                # told by the look by name that follows, as if nothing had been kept.
                _unlock(fd)
                os.close(fd)
        if not _TOKEN.fullmatch(token):
            # Tokens are made by start(); anything else was written into the file by another
            # program, and must never become a path (think "../../x") that tidying removes.
            return False
        path = _lock_path(folder, token)
        try:
            try:
                fd = os.open(path, os.O_RDWR | _NOFOLLOW)
            except OSError as exc:
                if not isinstance(exc, PermissionError) and exc.errno != errno.EROFS:
                    raise
                # another user's worker (its file 0644), or a read-only file system (a
                # snapshot, a backup disk): read-only takes the lock as well on a local
                # disk (NFS emulates flock with fcntl locks, which need write access: there
                # a worker's own files are opened for writing, as above)
                fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
        except OSError as exc:
            unreadable = isinstance(exc, PermissionError)  # (another user's, umask 077)
            if not unreadable and not isinstance(exc, FileNotFoundError) and (
                    exc.errno != errno.ELOOP):
                raise
            # no file, or a symbolic link put there by someone else: not a worker's file;
            # or a file this user cannot read: its process decides
            if pid is None:
                return unreadable  # (unknown: never taken for dead)
            if pid == os.getpid():  # this process knows its own sessions
                return any(s.token == token and s.pid == pid for s in _LIVE)
            return _pid_alive(pid)
        try:
            if not _try_lock(fd):
                with _WATCHED.lock:
                    _WATCHED.keep(key, fd)
                fd = -1  # kept open for the next look
                return True
            if tidy:
                with contextlib.suppress(OSError):
                    path.unlink()
            _unlock(fd)
            return False
        finally:
            if fd >= 0:
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


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        current = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino)


def sweep(folder: Path, keep: set[str]) -> int:
    """Remove the liveness files of ended processes, except the tokens in ``keep`` (those
    of trials still RUNNING in the file: the next create_trial needs their files to see
    their workers died). A file whose lock is taken is a live worker's, and stays.
    Returns how many were removed."""
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    mine = {s.token for s in _LIVE if s.pid == os.getpid()}
    for name in names:
        match = _FILE.fullmatch(name)
        if match is None or match.group(1) in keep or match.group(1) in mine:
            continue
        if not Session.probe(folder, match.group(1)):  # takes the lock: free means ended
            removed += 1
    return removed


def sweep_ended(folder: Path, mine: str | None, running: Callable[[], set[str]]) -> None:
    """:func:`sweep` the lock ``folder`` if it holds a liveness file other than ``mine``,
    keeping those of the sessions ``running()`` names (read only then: a query)."""
    with contextlib.suppress(OSError):
        if not any(liveness_token(n) not in (None, mine) for n in os.listdir(folder)):
            return
        try:
            keep = running()
        except DatabaseError:
            return
        sweep(folder, keep=keep)


def liveness_token(name: str) -> str | None:
    """The token of a worker's liveness file named ``name``, or None for any other name."""
    match = _FILE.fullmatch(name)
    return None if match is None else match.group(1)


def remove_idle_folder(folder: Path) -> None:
    """Remove a lock folder no process uses: each of its files unlocked (taking each lock
    proves nobody holds it), then the folder. Anything held, or not hpstore's, stays."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not (name in LOCK_FILES or liveness_token(name) is not None):
            return
        path = folder / name
        try:
            fd = os.open(path, os.O_RDWR | _NOFOLLOW)
        except FileNotFoundError:
            continue  # another closer removed it just now
        except OSError:
            return
        try:
            if not _try_lock(fd):
                return
            with contextlib.suppress(OSError):
                path.unlink()
            _unlock(fd)
        finally:
            os.close(fd)
    with contextlib.suppress(OSError):
        folder.rmdir()
