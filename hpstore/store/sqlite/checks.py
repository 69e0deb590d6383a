"""Checks of a file before hpstore opens it for writing or reading: is it a search file?

Each check reads without writing: the header straight from the file (SQLite could change
a file it opens), the marks and the schema through a read-only connection.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import sqlite3
import stat
import struct
from pathlib import Path

from hpstore import process_limits
from hpstore.errors import (
    DatabaseError,
    FileIdentityError,
    LockTimeoutError,
    NotAnHpstoreFileError,
    ReadOnlyDatabaseError,
    SchemaVersionError,
)
from hpstore.store.sqlite import schema
from hpstore.store.sqlite.files import lock_folder, read_header
from hpstore.store.sqlite.schema import APPLICATION_ID, PAGE_SIZE, SCHEMA_VERSION

_SQLITE_MAGIC = b"SQLite format 3\x00"


def inspect_header(path: Path) -> bool:
    """Check an existing file without opening it through SQLite (which could change it).

    Returns False for an empty file (a new search), True for a file to look into.

    Raises:
        NotAnHpstoreFileError: not a SQLite file, a truncated one, or one whose header
            carries another application's id.
    """
    size = path.stat().st_size
    if size == 0:
        return False
    header = read_header(path)
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise NotAnHpstoreFileError(
            f"{path} is not a SQLite database, so it is not an hpstore search file. "
            "Give the path of a search file (or, to an oracle, a new path to start one)."
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
    if application_id not in (0, APPLICATION_ID):
        raise foreign(path, application_id)
    if quiet and valid_for == change_counter and page_count and size < page_count * page_size:
        error = NotAnHpstoreFileError(
            f"{path} is damaged: its header promises {page_count * page_size} bytes but the "
            f"file holds {size}. It may have been truncated by a copy; restore it from a "
            "backup."
        )
        error.damaged = True  # type: ignore[attr-defined]  # (a search, damaged: see check)
        raise error
    _room_to_map_the_index(path)
    return True


#: below this many free bytes, a file system of blocks smaller than a memory page is taken
#: for full (see _room_to_map_the_index)
MAPPED_INDEX_ROOM = 1 << 20


def _room_to_map_the_index(path: Path) -> None:
    """Refuse to open a search on a full file system whose blocks are smaller than a memory
    page (ext4 of 1 KiB blocks, mke2fs's default below 512 MB), before SQLite maps the
    log's index (``-shm``) into memory: a write there that needs a block the disk does not
    have kills the process with SIGBUS, with no word said (every tool, and plain sqlite3).
    On larger blocks a full disk is an error SQLite reports, as it says elsewhere.

    Raises:
        DatabaseError: saying which disk is full, that the file is unchanged, what to do.
    """
    try:
        fs = os.statvfs(path.parent)
    except OSError:
        return
    free = (fs.f_bfree if os.geteuid() == 0 else fs.f_bavail) * fs.f_frsize
    if 0 < fs.f_frsize < os.sysconf("SC_PAGE_SIZE") and free < MAPPED_INDEX_ROOM:
        raise DatabaseError(
            f"{path} could not be opened: the disk holding {path.parent} is full ({free} "
            f"bytes free). On its file system of {fs.f_frsize}-byte blocks, SQLite's index "
            "of the log (the -shm file, which it maps into memory even to read) needs room "
            "to be written, and without it the process would be killed (SIGBUS). The file "
            f"itself is unchanged: free at least {MAPPED_INDEX_ROOM >> 20} MiB on that disk "
            "and run again.")


def foreign(path: Path, application_id: int) -> NotAnHpstoreFileError:
    return NotAnHpstoreFileError(
        f"{path} is a SQLite database of another application (application_id "
        f"{application_id}, tables but no hpstore mark), not an hpstore search file. Give "
        "hpstore a file of its own."
    )


def single_name(path: Path, st: os.stat_result) -> None:
    """Refuse a file with more than one name (hard links).

    SQLite names the log after the path, and hpstore its locks: workers on two names of one
    file would each keep a log of their own and write the file without seeing each other.

    A new file has a second name for a moment, in its lock folder, while the process that
    built it there links it into place and removes the name it was built under: that one
    is not refused.

    Raises:
        FileIdentityError: naming the file and the count of its names.
    """
    if st.st_nlink > 1 and not _being_created(path, st):
        raise FileIdentityError(
            f"{path} has {st.st_nlink} names (hard links to one file). SQLite keeps the "
            "write-ahead log and hpstore its locks beside each name, so workers on two names "
            "would write the file without seeing each other and corrupt it. Keep one name "
            f"(`find / -xdev -samefile {path}` lists them; remove the others), or copy the "
            "search to a file of its own with `hpstore backup`. The read-only tools can "
            "still read it."
        )


def _mounted_read_only(folder: Path) -> bool:
    """Whether ``folder`` is on a file system mounted read-only (``mount -o ro``, a
    read-only bind mount, a snapshot)."""
    try:
        return bool(os.statvfs(folder).f_flag & getattr(os, "ST_RDONLY", 0))
    except (OSError, AttributeError):  # (missing: what opens it says so; no statvfs)
        return False


def switched_read_only(path: Path, exc: Exception) -> ReadOnlyDatabaseError | None:
    """The error for a search SQLite could not open (``exc``) because its file system is
    read-only: mounted so, or switched itself so (see :func:`read_only_file_system`); None
    otherwise. Asked only once opening failed: it tries to make a file beside the search."""
    if "unable to open" not in str(exc) and "disk I/O" not in str(exc):
        return None
    if _mounted_read_only(path.parent):  # (mounted so: the log's index cannot be made)
        return ReadOnlyDatabaseError(
            f"{path} is on a file system mounted read-only, and its log ({path.name}-wal) "
            "holds commits that SQLite cannot read there without the log's index "
            f"({path.name}-shm), which is missing and cannot be made. Copy the file with its "
            "-wal to a writable place and read it there, or mount the file system writable.")
    probe = path.with_name(f".{path.name}.probe-{os.getpid()}")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as refused:
        return read_only_file_system(path, refused) if refused.errno == errno.EROFS else None
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return None


def read_only_file_system(path: Path, exc: OSError) -> ReadOnlyDatabaseError:
    """The error for a search whose file system refused a write as read-only (EROFS) though
    not mounted so: one the kernel switched to read-only after an error of the disk (ext4's
    ``errors=remount-ro``), which :func:`check_writable` cannot see beforehand."""
    return ReadOnlyDatabaseError(
        f"{path}: its file system refuses every write as read-only ({exc.strerror}), "
        "though it is not mounted so: a file system switches itself to "
        "read-only after an error of its disk (see `dmesg`). Nothing was written. Copy the "
        "search to a sound disk to go on with it there (the file with its -wal: SQLite "
        "cannot even read it where it is once its index of the log cannot be made).")


def _others_parts_not_writable(path: Path) -> list[tuple[Path, os.stat_result]]:
    """The parts of the search (the file, its log and index, the lock folder and its lock
    files) that belong to another user and that this process cannot write."""
    if not hasattr(os, "geteuid"):  # (Windows: no owners to name)
        return []
    sidecar = lock_folder(path)
    # (the folder holding the file too: SQLite makes the log and its index there)
    parts = [path.parent, path, path.with_name(path.name + "-wal"),
             path.with_name(path.name + "-shm"), sidecar]
    with contextlib.suppress(OSError):
        parts += sorted(sidecar.glob("*.lock"))
    found = []
    for part in parts:
        try:
            st = os.stat(part)
        except OSError:
            continue
        if st.st_uid != os.geteuid() and not os.access(part, os.W_OK):
            found.append((part, st))
    return found


def _owner(uid: int) -> str:
    """A user's name, else its number."""
    try:
        import pwd  # (POSIX only)

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


def _not_shared(path: Path, theirs: list[tuple[Path, os.stat_result]]) -> str:
    """What to say of a search another user made that this user cannot write: every part
    at once, and the one command that shares it with the group (a search made with the
    common umask 022 is the owner's alone)."""
    shown = "; ".join(f"{p} ({_owner(st.st_uid)}, {stat.filemode(st.st_mode)})"
                      for p, st in theirs)
    folder = path.parent
    tops = [p for p, _ in theirs if p.parent == folder]
    if any(p.parent not in (folder, folder.parent) for p, _ in theirs) and \
            lock_folder(path) not in tops:
        tops.append(lock_folder(path))
    command = "chmod -R g+w " + " ".join(shlex.quote(str(p)) for p in tops) if tops else ""
    if any(p == folder for p, _ in theirs):  # (the folder itself, not all it holds)
        command = " && ".join(c for c in (f"chmod g+w {shlex.quote(str(folder))}", command)
                              if c)
    return (f"{path} is read-only for you ({_owner(os.geteuid())}): these parts of the "
            f"search belong to another user and you cannot write them: {shown}. hpstore "
            "writes every trial to the file, its log and its lock folder. To share the "
            f"search with your group, its owner runs `{command}` (in a folder of the "
            "group), and every worker runs with umask 002 so that what hpstore makes next "
            "stays writable by the group; else read it with the inspection tools "
            "(hpstore summary, trials, watch).")


def check_writable(path: Path) -> None:
    """Refuse a file, folder, log or lock folder this process cannot write.

    Raises:
        ReadOnlyDatabaseError: naming what is read-only and what to do.
    """
    folder = path.parent
    if _mounted_read_only(folder) and not path.exists():  # (no chmod helps there)
        raise ReadOnlyDatabaseError(
            f"{path} cannot be created: its folder {folder} is on a file system mounted "
            "read-only. Give the search a path on a writable file system.")
    if _mounted_read_only(folder):
        raise ReadOnlyDatabaseError(
            f"{path} is on a file system mounted read-only: hpstore writes every trial to "
            "the file, its log and its lock folder. Copy the search to a writable place to "
            f"resume it there (`hpstore backup {shlex.quote(str(path))} COPY.db`), or read "
            "it where it is with the inspection tools (hpstore summary, trials, watch).")
    if not os.path.lexists(path) and not os.access(folder, os.W_OK):
        # (no search there yet: nothing of one to share, nor to read with the tools)
        try:
            st = os.stat(folder)
            whose = f" ({_owner(st.st_uid)}, {stat.filemode(st.st_mode)})"
        except OSError:
            whose = ""
        me = f" ({_owner(os.geteuid())})" if hasattr(os, "geteuid") else ""
        raise ReadOnlyDatabaseError(
            f"{path} cannot be created: its folder {folder}{whose} is not writable by "
            f"you{me}, and hpstore makes the file, its log and its lock folder there. Give "
            "the search a path in a folder you can write.")
    if theirs := _others_parts_not_writable(path):
        raise ReadOnlyDatabaseError(_not_shared(path, theirs))
    # A file no one may write (chmod 444) is read-only for root too, whom os.access lets
    # write anything: the mode says what its owner meant.
    if path.exists() and (not os.access(path, os.W_OK) or not path.stat().st_mode & 0o222):
        if _mode_lets_me_write(path.stat()):
            raise ReadOnlyDatabaseError(
                f"{path} cannot be written, though its mode lets you: an attribute of the "
                "file forbids it (`lsattr` shows i, immutable, or a, append-only; `chattr "
                "-i` or `chattr -a` as root clears it), or a security policy does. hpstore "
                "writes every trial to it: clear that, or open it with the read-only "
                "inspection tools.")
        raise ReadOnlyDatabaseError(
            f"{path} is read-only. hpstore writes every trial to it: make it "
            "writable, or open it with the read-only inspection tools."
        )
    if not os.access(folder, os.W_OK):
        raise ReadOnlyDatabaseError(
            f"The folder {folder} is read-only. SQLite keeps its write-ahead log and hpstore "
            "its lock files beside the search file: make the folder writable."
        )
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        # Asked before whether it is there: the last worker to close removes the log, and
        # a log seen a moment before and gone when asked about was called read-only (one
        # of sixteen workers opening a new search at once was refused so).
        if not os.access(extra, os.W_OK) and os.path.lexists(extra):
            raise ReadOnlyDatabaseError(
                f"{extra} is read-only (it may belong to another user). SQLite keeps the "
                "search's " + ("write-ahead log" if suffix == "-wal" else "index of its "
                              "write-ahead log") + " in it: make it writable by you."
            )
    sidecar = lock_folder(path)
    if sidecar.exists():
        parts = [sidecar, *(p for p in sidecar.glob("*.lock"))]
        if any(not os.access(p, os.W_OK) and os.path.lexists(p) for p in parts):
            raise ReadOnlyDatabaseError(
                f"hpstore's lock folder {sidecar} (or a lock file in it) is read-only (it "
                "may belong to another user): make it and its files writable by you."
            )


def _mode_lets_me_write(st: os.stat_result) -> bool:
    """Whether a file's mode (by owner, group or others) lets this process write it."""
    if not hasattr(os, "geteuid"):
        return False  # (Windows: the mode is all there is to tell)
    if os.geteuid() == 0:
        return bool(st.st_mode & 0o222)
    if st.st_uid == os.geteuid():
        return bool(st.st_mode & 0o200)
    if st.st_gid == os.getegid() or st.st_gid in os.getgroups():
        return bool(st.st_mode & 0o020)
    return bool(st.st_mode & 0o002)


def _being_created(path: Path, st: os.stat_result) -> bool:
    # Its only other name is the one it was built under in its own lock folder, or that
    # name was removed since ``st`` was taken.
    if st.st_nlink != 2:
        return False
    sidecar = lock_folder(path)
    try:
        for built in sidecar.glob("creating-*.db"):
            other = built.lstat()
            if (other.st_ino, other.st_dev) == (st.st_ino, st.st_dev):
                return True
        return path.stat().st_nlink == 1
    except OSError:
        return False


# One statement, so one snapshot: the version and the objects to compare with its schema.
_SCHEMA = ("SELECT (SELECT user_version FROM pragma_user_version), type, name, tbl_name, sql "
           "FROM sqlite_master")

# One statement, so one snapshot: read apart, the marks could straddle another process's
# first migration and show its tables without its mark. One row even for an empty schema.
_MARKS_AND_SCHEMA = (
    "SELECT a.application_id, v.user_version, m.type, m.name, m.tbl_name, m.sql "
    "FROM pragma_application_id AS a, pragma_user_version AS v "
    "LEFT JOIN sqlite_master AS m ON 1")


#: What a call into SQLite raises when it fails: its errors, and MemoryError, which is how
#: Python gives SQLITE_NOMEM, what SQLite says of a damaged page whose sizes ask for more
#: memory than there is.
SQLITE_FAILURES = (sqlite3.Error, MemoryError)

def raised_by_sqlite(exc: BaseException) -> bool:
    """Whether ``exc``, caught around a transaction's body, is SQLite's failure: one of its
    errors, or a MemoryError raised where this package runs statements (its innermost frame
    here), not one of Python code elsewhere in the body (a space too large to list, say),
    which is no damage of the file and is left as it is."""
    if isinstance(exc, sqlite3.Error):
        return True
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return (isinstance(exc, MemoryError) and tb is not None
            and Path(tb.tb_frame.f_code.co_filename).parent == Path(__file__).parent)


#: What reading a damaged file raises: SQLite's errors (out of memory too, see above), and a
#: UnicodeDecodeError when the message SQLite gives quotes a damaged name of its schema
#: (bytes that are not UTF-8).
UNREADABLE = (sqlite3.DatabaseError, MemoryError, UnicodeDecodeError)


def unreadable(exc: BaseException) -> str:
    """What an exception of :data:`UNREADABLE` (or :data:`SQLITE_FAILURES`) says, in
    words."""
    if isinstance(exc, UnicodeDecodeError):
        return "damaged bytes in its schema, which are not UTF-8 text"
    if isinstance(exc, MemoryError):
        return ("SQLite ran out of memory reading it, as a damaged page makes it (one whose "
                "sizes ask for more memory than there is), unless this machine is short of "
                "memory")
    return str(exc).rstrip(".")


#: seconds a reader waits for a lock another program holds on the file before it gives up
READ_LOCK_WAIT = 30


def held_locked(path: Path, exc: BaseException, waited: float | None = None
                ) -> LockTimeoutError | None:
    """The error for a file that stayed locked against reading (``exc``) for ``waited``
    seconds (by default :data:`READ_LOCK_WAIT`); None for any other failure. hpstore's
    workers never lock a reader out of a file in WAL mode: another program did (a file it
    opened outside WAL, an exclusive lock it took), and the file was not called
    unreadable (nor damaged)."""
    if not (isinstance(exc, sqlite3.OperationalError) and "database is locked" in str(exc)):
        return None
    waited = READ_LOCK_WAIT if waited is None else waited
    return LockTimeoutError(
        f"{path} cannot be read now: another program held it locked for as long as this "
        f"process waited ({waited:g} s; a lock hpstore's workers never take against readers: "
        "`PRAGMA locking_mode=EXCLUSIVE`, a `BEGIN EXCLUSIVE` left open, a tool that "
        "switched the file out of WAL mode). The file is not damaged: end that program's "
        "hold on it and run again.")


def no_room_to_open(path: Path, exc: Exception) -> DatabaseError | None:
    """The error for a search file that could not be opened (``exc``) because its disk is
    full or this process's file size limit was reached; None for any other failure.

    SQLite makes the log and its index beside a file in WAL mode even to read it, and says
    "disk I/O error" when there is no room for them: a healthy file must not be called
    damaged then (its owner might delete it).
    """
    text = unreadable(exc)
    if not ("disk I/O" in text or "disk is full" in text or "unable to open" in text):
        return None  # (with no free inode, the log cannot be made: "unable to open")
    found = process_limits.out_of_room(path, text, PAGE_SIZE)
    if found is None:
        return None
    cause, remedy = found
    return DatabaseError(
        f"{path} could not be opened: {cause}. SQLite needs room beside the file for its log "
        f"even to read it; the file itself is unchanged: {remedy} and run again.")


def inspect_database(path: Path) -> None:
    """Read the file's marks and schema through a read-only connection (which also sees
    the WAL), running nothing the file defines.

    Raises:
        NotAnHpstoreFileError: another application's SQLite file, or unreadable.
        ForeignSchemaError: a table, index, view or trigger hpstore did not write.
        SchemaVersionError: an hpstore file from a newer version.
        DatabaseError: no room on its disk (or under ``ulimit -f``) for SQLite's log.
    """
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=READ_LOCK_WAIT)
        try:
            rows = conn.execute(_MARKS_AND_SCHEMA).fetchall()
        finally:
            conn.close()
    except UNREADABLE as exc:
        # (a worker opening a file another program held locked was told it is damaged)
        raise held_locked(path, exc) or no_room_to_open(path, exc) or \
            switched_read_only(path, exc) or NotAnHpstoreFileError(
            f"{path} cannot be read as SQLite ({unreadable(exc)}); it is damaged or not a "
            "database."
        ) from None
    application_id, user_version = rows[0][0], rows[0][1]
    objects = [(user_version, *row[2:]) for row in rows if row[2] is not None]
    if application_id == 0 and not objects:
        return  # an empty SQLite file: a new search
    if application_id != APPLICATION_ID:
        raise foreign(path, application_id)
    _not_newer(path, user_version)
    schema.check(objects, str(path))


def _not_newer(path: Path | str, user_version: int) -> None:
    if user_version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path} was written by a newer hpstore (schema version {user_version}; this "
            f"hpstore reads up to {SCHEMA_VERSION}). Upgrade hpstore to open it."
        )


def check_schema(conn: sqlite3.Connection, where: Path | str) -> None:
    """Check an open connection's schema before anything reads a table (one query).

    Raises:
        ForeignSchemaError: a table, index, view or trigger hpstore did not write.
        SchemaVersionError: an hpstore file from a newer version.
    """
    rows = conn.execute(_SCHEMA).fetchall()
    if rows:
        _not_newer(where, int(rows[0][0]))
    schema.check(rows, str(where))


def check_built(building: Path, busy: int, pages: int) -> None:
    """That a new search file built at ``building`` holds all its ``pages`` once its log
    was folded in (``busy``: what the fold returned first, 0 when it was whole).

    Raises:
        DatabaseError: it does not (the fold could not write them: a disk with no room);
            it is not linked into place, so nothing damaged is left at the search's name.
    """
    log = building.with_name(building.name + "-wal")
    size = building.stat().st_size
    if busy or size < pages * PAGE_SIZE or (log.exists() and log.stat().st_size):
        room = process_limits.out_of_room(building, "database or disk is full", PAGE_SIZE)
        why = room[0] if room else "its log could not be folded into it"
        advice = room[1] if room else "check the disk"
        raise DatabaseError(
            f"The new search file could not be written whole ({why}); nothing was left at "
            f"its name. {advice[:1].upper()}{advice[1:]} and run again.")
