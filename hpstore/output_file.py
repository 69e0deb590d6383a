"""Writing a tool's output file (a report, an export) without ever harming a search.

A mistyped ``-o`` must not turn a search into a page of HTML. The output is refused, even
with ``--force``, when it is the search file being read, its log (``-wal``), shared memory
(``-shm``), rollback journal or lock folder (``<file>.hpstore``), whether named directly,
through a symbolic link or a hard link (files are compared by device and inode, not by
name), or when it is any existing SQLite file. Any other existing file is replaced only
with ``--force``. New files are created 0644 at most (a stricter umask is kept).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import sys
from pathlib import Path

from hpstore import process_limits
from hpstore.errors import OutputFileError

SQLITE_MAGIC = b"SQLite format 3\x00"
_COMPANIONS = ("", "-wal", "-shm", "-journal", ".hpstore")


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


class _Protected:
    """The search file and its companions: their paths, and the identities of those that
    exist (and of every file in the lock folder)."""

    def __init__(self, database: str | os.PathLike[str] | None) -> None:
        # None: no search file (a command that writes results only); SQLite files are
        # refused all the same
        self.db = Path(os.path.realpath(os.path.expanduser(database or os.devnull)))
        self.paths = [] if database is None else [
            self.db.with_name(self.db.name + s) for s in _COMPANIONS]
        self.sidecar = self.db.with_name(self.db.name + ".hpstore")
        self.ids: set[tuple[int, int]] = set()
        if database is None:
            self.names: set[tuple[tuple[int, int], str]] = set()
            return
        candidates = list(self.paths)
        with contextlib.suppress(OSError):
            candidates += list(self.sidecar.iterdir())
        for p in candidates:
            with contextlib.suppress(OSError):
                self.ids.add(_identity(os.stat(p)))
        # The same folder reached by another path (a bind mount): its (folder, name) pairs.
        self.names = set()
        with contextlib.suppress(OSError):
            folder = _identity(os.stat(self.db.parent))
            self.names = {(folder, p.name) for p in self.paths}

    def why(self, real: Path) -> str | None:
        """Why writing ``real`` (a resolved path) would harm the search, or None."""
        if not self.paths:
            return None
        if real == self.db:
            return "it is the search file being read"
        if real in self.paths or self.sidecar in real.parents:
            return f"it belongs to the search file {self.db} (its log, memory or lock files)"
        with contextlib.suppress(OSError):
            if (_identity(os.stat(real.parent)), real.name) in self.names:
                return f"it belongs to the search file {self.db}"
        with contextlib.suppress(OSError):
            if _identity(os.stat(real)) in self.ids:
                return (f"it is the same file as the search file {self.db} or one of its "
                        "companions (a link to it)")
        return None


def _is_sqlite(fd: int) -> bool:
    return os.pread(fd, len(SQLITE_MAGIC), 0) == SQLITE_MAGIC


def check_output(path: str | os.PathLike[str], *, database: str | os.PathLike[str] | None,
                 force: bool = False, example: str, option: str = "-o") -> Path:
    """Check, before any work, that ``path`` may be written; returns it resolved.
    ``example`` is the file name suggested when ``path`` is a folder, ``option`` the
    command's option that names the file.

    Raises:
        OutputFileError: as :func:`write_output`.
    """
    given = str(path)
    if not given:
        raise OutputFileError(f"The output file name is empty; give one with {option} FILE.")
    try:
        expanded = Path(path).expanduser()
    except RuntimeError:  # (no HOME, no entry in the password database)
        raise OutputFileError(
            f"{given} starts with ~, but this user's home folder is unknown (HOME is not "
            "set, and the user has no entry in the password database). Set HOME, or give "
            "the path without ~.") from None
    with contextlib.suppress(OSError):
        st = os.stat(expanded)
        if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            # A device or a pipe (/dev/null; /dev/stdout, or the /dev/fd/N of a shell's
            # `>(gzip > out.gz)`, whose links name no path): written as it is, through the
            # name given. Never the search file: that is a regular file.
            return expanded
        if stat.S_ISSOCK(st.st_mode) or stat.S_ISBLK(st.st_mode):
            raise OutputFileError(f"Cannot write {given}: it is a "
                                  f"{'socket' if stat.S_ISSOCK(st.st_mode) else 'disk'}. "
                                  f"Choose another output file with {option}.")
    real = Path(os.path.realpath(expanded))
    reason = _Protected(database).why(real)
    if reason:
        raise OutputFileError(f"Refusing to write {given}: {reason}. hpstore never writes over "
                              f"a search file; choose another output file with {option}.")
    if not real.parent.is_dir():
        raise OutputFileError(f"Cannot write {given}: the folder {real.parent} does not exist. "
                              f"Create it, or choose another output file with {option}.")
    if real.is_dir():
        raise OutputFileError(f"Cannot write {given}: it is a folder. Give a file name, such as "
                              f"{Path(given) / example}.")
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return real
    except OSError as exc:
        raise OutputFileError(f"Cannot write {given}: {exc.strerror or exc}.") from None
    if stat.S_ISREG(st.st_mode):
        try:
            fd = os.open(real, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise OutputFileError(f"Cannot write {given}: {exc.strerror or exc}.") from None
        try:
            if _is_sqlite(fd):
                raise _sqlite_refusal(given)
        finally:
            os.close(fd)
        if not force:
            raise OutputFileError(f"{given} already exists; give --force to replace it, "
                                  f"or choose another output file with {option}.")
    return real


def _sqlite_refusal(given: str) -> OutputFileError:
    return OutputFileError(f"Refusing to write {given}: it is a SQLite database. hpstore never "
                           "writes over one, even with --force; choose another output file.")


def write_output(path: str | os.PathLike[str], text: str, *,
                 database: str | os.PathLike[str] | None, force: bool = False,
                 example: str, option: str = "-o") -> Path:
    """Write ``text`` (UTF-8) to ``path``; returns the path written.

    Raises:
        OutputFileError: ``path`` is the search file ``database`` or one of its companions
            (also through a link), any SQLite file, an existing file without ``force``, a
            folder, in a folder that does not exist, or cannot be written. Nothing is
            written then, and a file this call created is removed again.
    """
    given = str(path)
    real = check_output(path, database=database, force=force, example=example,
                        option=option)
    protected = _Protected(database)
    fd, created = _open(real, given)
    try:
        st = os.fstat(fd)
        # checked again on the open file: the name may have been switched meanwhile
        if _identity(st) in protected.ids:
            raise OutputFileError(f"Refusing to write {given}: it is the same file as the "
                                  f"search file {protected.db} or one of its companions.")
        regular = stat.S_ISREG(st.st_mode)
        if regular and not created:
            if _is_sqlite(fd):
                raise _sqlite_refusal(given)
            if not force:
                raise OutputFileError(f"{given} already exists; give --force to replace it.")
        data = text.encode("utf-8")
        if regular and not created and _replace_whole(real, data, st):
            return real
        if regular:
            # Room for the whole output first, the file replaced still as it was: a full
            # disk or `ulimit -f` refuses this, not a write that would leave half a report
            # (or half a CSV that reads as a whole one) in its place.
            _reserve(fd, len(data), given, real, created)
        try:
            _write_all(fd, data)
            if regular:
                os.ftruncate(fd, len(data))  # (what is left of a longer file replaced)
        except BrokenPipeError:
            raise OutputFileError(f"Cannot write {given}: the program reading it stopped "
                                  "before the whole output was written.") from None
        except OSError as exc:
            if regular and not created:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)  # never part of it: it would read as the whole
            raise OutputFileError(_not_written(given, real, len(data), exc, created, (
                "" if created or not regular else f"; {given} was left empty"))) from None
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                os.unlink(real)
        raise
    finally:
        os.close(fd)
    return real


def _replace_whole(real: Path, data: bytes, st: os.stat_result) -> bool:
    """Replace the file ``real`` (described by ``st``) with ``data`` written beside it and
    renamed over it, so that a process killed half-way leaves it as it was: written in
    place, a kill (``timeout``, cron) left the new text followed by the old one's tail,
    which read as a whole file. False, nothing done, wherever the new file would not be
    the old one with new contents: a file with other names (hard links, which a rename
    would part from it), extended attributes or ACLs, an owner this process cannot give
    a file, a folder that takes no new file or no rename over it (a sticky folder of
    another user's file), no room for both at once. It is then written in place."""
    if st.st_nlink > 1:
        return False
    with contextlib.suppress(OSError, AttributeError):  # (no xattrs here: none to keep)
        if os.listxattr(real):  # type: ignore[attr-defined]
            return False
    partial = real.with_name(f".{real.name}.{os.getpid()}.partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                     stat.S_IMODE(st.st_mode))
    except OSError:
        return False
    replaced = False
    try:
        made = os.fstat(fd)
        if (made.st_uid, made.st_gid) != (st.st_uid, st.st_gid):
            os.fchown(fd, st.st_uid, st.st_gid)  # (root may; anyone else: in place)
        os.fchmod(fd, stat.S_IMODE(st.st_mode))  # (what the umask took away)
        allocate = getattr(os, "posix_fallocate", None)
        if allocate is not None and data:
            allocate(fd, 0, len(data))  # (no room for both: in place, as before)
        _write_all(fd, data)
        os.fsync(fd)  # (the rename never lands ahead of the data)
        os.replace(partial, real)
        replaced = True
    except OSError:
        pass  # written in place, as before (Ctrl-C goes on up, the partial file removed)
    finally:
        os.close(fd)
        if not replaced:
            with contextlib.suppress(OSError):
                os.unlink(partial)
    return replaced


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _reserve(fd: int, size: int, given: str, real: Path, created: bool) -> None:
    """Allocate ``size`` bytes for the file open as ``fd``, its contents unchanged.

    Raises:
        OutputFileError: no room (a full disk, a quota, ``ulimit -f``); nothing changed.
    """
    allocate = getattr(os, "posix_fallocate", None)  # (not on macOS or Windows)
    if allocate is None or size == 0:
        return
    before = os.fstat(fd).st_size
    try:
        allocate(fd, 0, size)
    except OSError as exc:
        # a file system that allocates in steps (ext4) may have grown the file, with
        # zeros, before it ran out of room: back to its size, its contents untouched
        with contextlib.suppress(OSError):
            if os.fstat(fd).st_size != before:
                os.ftruncate(fd, before)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise OutputFileError(_not_written(
                given, real, size, exc, created,
                "" if created else f"; {given} is as it was")) from None
        # a file system that cannot allocate ahead: the writes say what goes wrong


def _not_written(given: str, real: Path, size: int, exc: OSError, created: bool,
                 after: str) -> str:
    """Why ``size`` bytes could not be written to ``real``, and what to do."""
    text = exc.strerror or str(exc)
    remedy = "free some space and run again"
    if exc.errno == errno.EFBIG:
        limit = process_limits.file_size_limit()
        if limit is not None and size > limit:
            cause = (f"it is {size} bytes, more than this process may write to a file "
                     f"(ulimit -f: {limit} bytes)")
            remedy = "raise the limit, or choose another output"
        else:
            cause = f"it is {size} bytes, too large for the file system holding it ({text})"
            remedy = "choose another output file with -o"
    elif exc.errno == errno.EDQUOT:
        cause = f"your disk quota is used up ({text})"
    elif exc.errno == errno.ENOSPC:
        free = None
        with contextlib.suppress(OSError):
            free = shutil.disk_usage(real.parent).free
        if free is not None and free >= size:
            # (a device that takes nothing, /dev/full: "the disk is full, 12 GB free")
            cause = (f"it refused the data ({text}), though the disk holding "
                     f"{real.parent} has {free} bytes free of the {size} it needs: a "
                     "device that takes nothing, such as /dev/full")
            remedy = "choose another output with -o"
        else:
            room = "" if free is None else f", {free} bytes free of the {size} it needs"
            cause = f"the disk holding {real.parent} is full ({text}{room})"
    else:
        cause = text
        remedy = "run again once that is mended"
    done = "nothing was written" if created else "the output was not written"
    return f"Cannot write {given}: {cause}; {done}{after}. {remedy[0].upper()}{remedy[1:]}."


def _open(real: Path, given: str) -> tuple[int, bool]:
    """(file descriptor, whether this call created the file); created 0644 (less what the
    umask takes away)."""
    try:
        return os.open(real, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644), True
    except FileExistsError:
        pass
    except OSError as exc:
        raise OutputFileError(f"Cannot write {given}: {exc.strerror or exc}.") from None
    try:
        mode = os.stat(real).st_mode
        if stat.S_ISREG(mode):
            return os.open(real, os.O_RDWR | os.O_CLOEXEC), False
        # a device or pipe (/dev/null, /dev/stdout into a pipe) is written, not replaced
        if stat.S_ISFIFO(mode):
            return _open_fifo(real, given), False
        return os.open(real, os.O_WRONLY | os.O_CLOEXEC), False
    except OSError as exc:
        raise OutputFileError(f"Cannot write {given}: {exc.strerror or exc}.") from None


def _open_fifo(real: Path, given: str) -> int:
    """A named pipe, opened for writing: at once when a program reads it, else once one
    does, having said on stderr what it waits for (Ctrl-C stops the wait)."""
    try:
        fd = os.open(real, os.O_WRONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
            raise
        print(f"hpstore: waiting for a program to read {given} (a named pipe); Ctrl-C to "
              "stop.", file=sys.stderr, flush=True)
        return os.open(real, os.O_WRONLY | os.O_CLOEXEC)
    os.set_blocking(fd, True)
    return fd
