"""The search file on disk: which file a path names, its header, and the lock folder.

Three hazards live here.

- POSIX locks belong to a process and a file, not to a descriptor: closing *any* descriptor
  of a file drops every lock the process holds on it, SQLite's included
  (https://sqlite.org/howtocorrupt.html, section 2.2). The header is read through a
  descriptor that is closed only once no other descriptor of this process refers to the
  file, so no lock is ever dropped and no descriptor is kept for longer than that.
- SQLite names the write-ahead log and its index after the *path* (``<path>-wal``,
  ``-shm``), and hpstore its lock folder too. Two names for one file (a hard link), or a
  file moved while open, give two logs and two sets of locks for one file: the file is
  then written without coordination and ends corrupt. :func:`identity` is what a path
  names now, to compare with what was opened.
- The lock folder is created and written by every worker: a symbolic link in it (or the
  folder itself a link) would make hpstore create and lock files elsewhere.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import struct
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from hpstore import process_limits
from hpstore.errors import (
    DatabaseError,
    FileIdentityError,
    NotAnHpstoreFileError,
    ReadOnlyDatabaseError,
)

Identity = tuple[int, int]  # (st_dev, st_ino): what a path names

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

# Header descriptors still open because another descriptor of this process (SQLite's)
# refers to the same file: fd -> the file's identity. Swept by :func:`release_descriptors`.
_HEADER_FDS: dict[int, Identity] = {}
_FDS_LOCK = threading.Lock()


def lock_folder(path: Path) -> Path:
    """The folder beside a search file that holds hpstore's lock files (``<file>.hpstore``)."""
    return path.with_name(path.name + ".hpstore")


def expanded(path: str | os.PathLike[str]) -> Path:
    """``path`` with a leading ``~`` replaced by the home folder.

    Raises:
        DatabaseError: naming the path, when this user's home folder is unknown (no HOME,
            no entry in the password database: a container's ``--user``).
    """
    try:
        return Path(path).expanduser()
    except RuntimeError:
        raise DatabaseError(
            f"{path} starts with ~, but this user's home folder is unknown (HOME is not "
            "set, and the user has no entry in the password database). Set HOME, or give "
            "the path without ~.") from None


def resolved(path: str | os.PathLike[str]) -> Path:
    """The absolute path ``path`` names, ``~`` and symbolic links followed.

    Raises:
        DatabaseError: naming the path, when it cannot be followed: a loop of symbolic
            links (the file itself, or a folder on its way), or longer than the system
            allows; or it starts with ``~`` and the home folder is unknown.
    """
    given = expanded(path)
    try:
        found = given.resolve()
    except RuntimeError:  # (a loop, before Python 3.13)
        raise _unreachable(given, errno.ELOOP) from None
    try:
        os.stat(found)  # resolve() reports no loop (Python 3.13 on), nor a path too long
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENAMETOOLONG):
            raise _unreachable(given, exc.errno) from None
        # (missing, or in a folder this user cannot search: what opens it says so)
    return found


_NAME_MAX = 255  # bytes in one name, on every file system Linux and macOS use


def _unreachable(given: Path, code: int) -> DatabaseError:
    if code == errno.ELOOP:
        return DatabaseError(
            f"{given} cannot be followed: a symbolic link on it (the file itself, or a folder "
            "on its way) leads back to itself. Remove or fix that link, or give another path.")
    text = os.fsdecode(given)
    shown = text if len(text) <= 120 else f"{text[:60]}...{text[-40:]}"
    long = next((part for part in given.parts if len(os.fsencode(part)) > _NAME_MAX), None)
    if long is not None:  # one name too long: shorter folders would not help
        name = long if len(long) <= 60 else f"{long[:30]}...{long[-20:]}"
        return DatabaseError(
            f"The name {name} in {shown} is {len(os.fsencode(long))} bytes, longer than the "
            f"{_NAME_MAX} bytes a file system takes for one name ({os.strerror(code)}). "
            "Give it a shorter name.")
    return DatabaseError(
        f"The path {shown} ({len(os.fsencode(text))} bytes) is too long for this system "
        f"({os.strerror(code)}). Give a shorter path: shorten its folders' names or its own.")


def is_regular(path: Path, folder_says: str = "") -> bool:
    """Whether something is at ``path`` (False: nothing), refusing what is not a regular
    file: opening a FIFO waits for a writer for ever, and SQLite would replace a device by
    a search file of its own.

    Raises:
        NotAnHpstoreFileError: a folder (its message ends with ``folder_says``), a device, a
            FIFO or a socket, naming it.
        ReadOnlyDatabaseError: a folder on its path this user may not enter (a traceback
            of PermissionError before).
    """
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False
    except PermissionError:
        raise ReadOnlyDatabaseError(
            f"{path} cannot be reached: a folder on its path ({_closed_folder(path)}) does not "
            "let you in. Give a path in folders you may enter, or ask their owner.") from None
    if stat.S_ISREG(mode):
        return True
    if stat.S_ISDIR(mode):
        raise NotAnHpstoreFileError(f"{path} is a folder, not a search file{folder_says}.")
    kind = ("a character device" if stat.S_ISCHR(mode) else "a block device"
            if stat.S_ISBLK(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    raise NotAnHpstoreFileError(
        f"{path} is {kind}, not a search file: hpstore neither reads nor replaces it. Give "
        "the path of a search file (or, to an oracle, a new path to start one).")


def _closed_folder(path: Path) -> str:
    """The first folder on ``path`` this process may not enter, named with its mode."""
    for folder in reversed(path.parents):
        if not os.access(folder, os.X_OK):
            with contextlib.suppress(OSError):
                return f"{folder}, {stat.filemode(os.stat(folder).st_mode)}"
            return str(folder)
    return str(path.parent)


def identity(path: str | os.PathLike[str]) -> Identity | None:
    """(device, inode) of the file ``path`` names now, or None when it names nothing."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def read_header(path: Path, size: int = 100) -> bytes:
    """The first ``size`` bytes of ``path``, read without dropping any lock of this process.

    Raises:
        OSError: the file cannot be opened.
    """
    with _FDS_LOCK:
        st = os.stat(path)
        key = (st.st_dev, st.st_ino)
        fd = next((f for f, k in _HEADER_FDS.items() if k == key), None)
        if fd is None:
            fd = os.open(path, os.O_RDONLY | _CLOEXEC)
            opened = os.fstat(fd)
            _HEADER_FDS[fd] = (opened.st_dev, opened.st_ino)
        try:
            return os.pread(fd, size, 0)
        finally:
            _sweep()


@contextlib.contextmanager
def opening() -> Iterator[None]:
    """Hold off header reads and sweeps while this thread opens a connection (whose first
    read takes SQLite's locks): a descriptor closed in that instant would drop them."""
    with _FDS_LOCK:
        yield


def release_descriptors() -> None:
    """Close every header descriptor whose file this process no longer has open otherwise
    (called when a connection closes)."""
    with _FDS_LOCK:
        _sweep()


def _sweep() -> None:
    if not _HEADER_FDS:
        return
    if os.name == "nt":  # pragma: no cover - Windows locks belong to handles, not files
        for fd in list(_HEADER_FDS):
            os.close(fd)
        _HEADER_FDS.clear()
        return
    others = _open_identities(exclude=set(_HEADER_FDS))
    if others is None:
        return  # cannot tell: keeping a descriptor is safe, closing it might not be
    for fd, key in list(_HEADER_FDS.items()):
        if key not in others:
            del _HEADER_FDS[fd]
            os.close(fd)


def _fd_folder() -> str | None:
    for folder in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(folder):
            return folder
    return None


def _open_identities(exclude: set[int]) -> set[Identity] | None:
    """The files this process has open, except through ``exclude``; None if unknown."""
    folder = _fd_folder()
    if folder is None:
        return None
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    found = set()
    for name in names:
        if not name.isdigit() or int(name) in exclude:
            continue
        try:
            st = os.fstat(int(name))
        except OSError:  # the listing's own descriptor, or one closed meanwhile
            continue
        found.add((st.st_dev, st.st_ino))
    return found


def open_descriptor_of(key: Identity) -> int | None:
    """A descriptor this process has open on the file ``key`` (SQLite's), or None."""
    folder = _fd_folder()
    if folder is None:
        return None
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            if name.isdigit():
                with contextlib.suppress(OSError):
                    st = os.fstat(int(name))
                    if (st.st_dev, st.st_ino) == key and stat.S_ISREG(st.st_mode):
                        return int(name)
    return None


# SQLite's lock bytes (os_unix.c): on the main file PENDING, RESERVED and the SHARED range,
# and in the -shm index the "dead man switch" byte every connection locks while it is open.
_LOCK_BYTES = (0x40000000, 2 + 510)
_SHM_DMS = (128, 1)


def _flock_struct() -> tuple[str, int] | None:
    """struct flock's layout and where l_type sits in it, on systems whose layout is known."""
    if sys.platform.startswith("linux"):
        return "hhqqi", 0  # l_type, l_whence, l_start, l_len, l_pid
    if sys.platform == "darwin" or "bsd" in sys.platform:
        return "qqihh", 3  # l_start, l_len, l_pid, l_type, l_whence
    return None


def _others_lock(key: Identity, path: Path | None, start: int, length: int) -> bool | None:
    """Whether another process holds a POSIX lock on bytes [start, start + length) of the
    file ``key``; None when that cannot be told.

    F_GETLK only asks: it takes nothing (so it cannot disturb SQLite's locks) and never
    reports this process's own locks. It needs a descriptor: one this process has open on
    the file (SQLite's), else one opened here and closed again, which drops no lock since no
    other descriptor of this process refers to the file. Called holding _FDS_LOCK.
    """
    layout = _flock_struct()
    if layout is None:
        return None
    import fcntl

    fmt, type_at = layout
    fd, opened = open_descriptor_of(key), False
    if fd is None:
        if path is None:
            return None
        try:
            fd = os.open(path, os.O_RDONLY | _CLOEXEC | _NOFOLLOW)
        except OSError:
            return None
        opened = True
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != key:
            return None
        fields: list[int] = [fcntl.F_WRLCK, os.SEEK_SET, start, length, 0]
        if type_at == 3:
            fields = [start, length, 0, fcntl.F_WRLCK, os.SEEK_SET]
        answer = struct.unpack(fmt, fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(fmt, *fields)))
        return answer[type_at] != fcntl.F_UNLCK
    except OSError:
        return None
    finally:
        if opened:
            os.close(fd)


def used_under_another_name(key: Identity, path: Path | None, shm: Path) -> bool | None:
    """Whether another process has the database file ``key`` open under a name whose log
    index is not ``shm``: a hard link, or the name the file had before it was moved.

    Every connection to a WAL file holds a shared lock on it, and a lock in the ``-shm``
    index of the name it opened, for as long as it is open. Another process holding the
    first and nobody else the second can only be using another index, hence another log.
    None when that cannot be told (no F_GETLK layout known, or no way to reach the file).
    """
    with _FDS_LOCK:
        on_file = _others_lock(key, path, *_LOCK_BYTES)
        if not on_file:
            return on_file
        shm_key = identity(shm)
        if shm_key is None:
            return True
        on_index = _others_lock(shm_key, shm, *_SHM_DMS)
        return None if on_index is None else not on_index


def index_used_for_another_file(key: Identity, path: Path | None, shm: Path) -> bool | None:
    """Whether other processes use the ``-shm`` index ``shm`` while none has the database
    file ``key`` open: they have another file open under this name (``key`` took the name
    of the file they use), and the log beside the name is that file's. None when that
    cannot be told."""
    shm_key = identity(shm)
    if shm_key is None:
        return False
    with _FDS_LOCK:
        on_index = _others_lock(shm_key, shm, *_SHM_DMS)
        if not on_index:
            return on_index
        on_file = _others_lock(key, path, *_LOCK_BYTES)
        return None if on_file is None else not on_file


def index_in_use(shm: Path) -> bool | None:
    """Whether another process has the ``-shm`` index ``shm`` open (None: cannot tell)."""
    key = identity(shm)
    if key is None:
        return False
    with _FDS_LOCK:
        return _others_lock(key, shm, *_SHM_DMS)


# -- the lock folder ----------------------------------------------------------------------------
def _refuse_link(path: Path, what: str) -> FileIdentityError:
    return FileIdentityError(
        f"{path} is a symbolic link, not {what}: hpstore would create and lock its files "
        f"wherever it points. Remove the link (hpstore makes {what} again) and run again."
    )


#: the longest path SQLite's unix VFS opens (MAX_PATHNAME in its os_unix.c)
SQLITE_MAX_PATH = 512
_BUILT_AS = "creating-0123456789abcdef.db-journal"  # the longest name a new file has


def check_path_lengths(path: Path) -> None:
    """Refuse, before anything is made, a path too long for what hpstore keeps beside it:
    the lock folder ``<name>.hpstore`` (a name of at most NAME_MAX bytes) and, for SQLite,
    a new file built in that folder, with its journal (at most 512 bytes in all).

    Raises:
        DatabaseError: saying what to shorten, and by how much.
    """
    if os.name != "posix":  # (Windows counts UTF-16 units, and SQLite's limit differs)
        return
    try:
        name_max = int(os.pathconf(path.parent, "PC_NAME_MAX"))
    except (OSError, ValueError):  # (a filesystem that does not say)
        name_max = 255
    folder = lock_folder(path)
    over = len(os.fsencode(folder.name)) - name_max
    if over > 0:
        raise DatabaseError(
            f"The file name {path.name!r} is too long: hpstore keeps its lock files in a "
            f"folder named after it, {folder.name!r}, {over} bytes over the {name_max} a "
            f"name may have here. Shorten the file name by {over} bytes.")
    new = not path.exists()
    longest = folder / _BUILT_AS if new else Path(f"{path}-journal")
    over = len(os.fsencode(longest)) - SQLITE_MAX_PATH
    if over > 0:
        what = ("the file is made in its lock folder first, and that path with its journal "
                if new else "with its journal, it ")
        raise DatabaseError(
            f"The path {path} is too long for SQLite, which opens paths of at most "
            f"{SQLITE_MAX_PATH} bytes: {what}is {over} bytes over. Shorten the names of its "
            f"folders or its own by {over} bytes.")


def check_sqlite_path(path: Path, verb: str) -> None:
    """Refuse an existing file whose path SQLite cannot open (with its journal's name, at
    most :data:`SQLITE_MAX_PATH` bytes): moved deep into a tree after it was made.

    Raises:
        DatabaseError: saying by how much to shorten the path.
    """
    over = len(os.fsencode(f"{path}-journal")) - SQLITE_MAX_PATH
    if over > 0:
        raise DatabaseError(
            f"The path {path} is too long for SQLite, which opens paths of at most "
            f"{SQLITE_MAX_PATH} bytes: with its journal, it is {over} bytes over, so the "
            f"search cannot be {verb} there. Move it (with {lock_folder(path).name}, while "
            "no worker runs) to a shorter path, or shorten the names of its folders by "
            f"{over} bytes.")


def check_lock_folder(folder: Path) -> None:
    """Refuse a lock folder that is a symbolic link, or holds one, or is not a folder.

    Raises:
        FileIdentityError: naming the link.
        DatabaseError: the path exists and is not a folder.
        ReadOnlyDatabaseError: the folder cannot be read (another user's).
    """
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise _refuse_link(folder, "hpstore's lock folder")
    if not stat.S_ISDIR(st.st_mode):
        raise DatabaseError(
            f"{folder} is a file, but hpstore keeps its lock files in a folder of that name. "
            "Move the file away and run again."
        )
    _refuse_planted(folder, st)
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_symlink():
                    raise _refuse_link(Path(entry.path), "a lock file")
    except PermissionError:  # (another user's, made with umask 077)
        raise ReadOnlyDatabaseError(
            f"hpstore's lock folder {folder} cannot be read (it may belong to another "
            "user): make it and its files readable and writable by you.") from None


def make_lock_folder(folder: Path) -> Path:
    """Create the lock folder if missing; refuse one that is a link.

    Raises:
        FileIdentityError, DatabaseError: see :func:`check_lock_folder`.
    """
    while True:
        try:
            # the umask decides what the group may do, as for any file a user makes (002
            # in a lab's shared folder lets the group's workers make their liveness files
            # in it); others never write, whatever the umask
            folder.mkdir(mode=0o775)
        except FileExistsError:
            pass
        except OSError as exc:
            if said := process_limits.no_room_for_file(folder, exc):
                raise DatabaseError(said) from None
            raise
        try:
            st = os.lstat(folder)
            break
        except FileNotFoundError:  # deleted again (by hand) in between: made again
            continue
    if stat.S_ISLNK(st.st_mode):
        raise _refuse_link(folder, "hpstore's lock folder")
    if not stat.S_ISDIR(st.st_mode):
        raise DatabaseError(f"{folder} is not a folder; move it away and run again.")
    _refuse_planted(folder, st)
    return folder


def _refuse_planted(folder: Path, st: os.stat_result) -> None:
    """Refuse a lock folder another user made and every user may write in: hpstore builds a
    new search file there before linking it into place, and keeps its lock files there, so
    whoever may write in it can swap either for their own. hpstore never makes one so
    (0775 at most); another user does, first, in a folder everyone writes (``/tmp``).
    Sharing in a group (2775 and umask 002, see README's File modes) is not refused.

    Raises:
        FileIdentityError: naming the folder and its owner.
    """
    if not st.st_mode & stat.S_IWOTH or st.st_uid in (os.geteuid(), 0):
        return
    try:
        import pwd

        owner = f"user {pwd.getpwuid(st.st_uid).pw_name!r}"
    except (ImportError, KeyError):
        owner = f"user id {st.st_uid}"
    raise FileIdentityError(
        f"hpstore's lock folder {folder} belongs to {owner} and every user may write in it "
        f"(mode {stat.S_IMODE(st.st_mode):o}): any of them could swap the search's files "
        "there for their own. Keep the search in a folder that only you or your group may "
        f"write, or have its owner remove the lock folder (or run chmod o-w {folder}).")


def open_lock_file(path: Path, *, exclusive: bool = False) -> int:
    """Open (creating) a lock file without following a symbolic link.

    Raises:
        FileIdentityError: ``path`` is a symbolic link.
        FileExistsError: ``exclusive`` and the file exists.
    """
    flags = os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC | (os.O_EXCL if exclusive else 0)
    try:
        return os.open(path, flags, 0o664)  # (less the umask, see make_lock_folder)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refuse_link(path, "a lock file") from None
        if exc.errno == errno.EMFILE and (said := process_limits.out_of_files(
                str(path), exc.strerror or "too many open files")):
            raise DatabaseError(said) from None
        if said := process_limits.no_room_for_file(path, exc):
            raise DatabaseError(said) from None
        raise


def _after_fork_in_child() -> None:
    global _FDS_LOCK
    _FDS_LOCK = threading.Lock()  # a parent's thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
