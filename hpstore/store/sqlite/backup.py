"""A running search copied into one new file: SQLite's online backup API, read through a
read-only connection, so the copy is one snapshot of the whole search and the source is
never changed."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import sqlite3
from collections.abc import Callable
from pathlib import Path

from hpstore import process_limits
from hpstore.errors import HpStoreError
from hpstore.store.sqlite import files
from hpstore.store.sqlite.checks import SQLITE_FAILURES, unreadable
from hpstore.store.sqlite.readonly import connect_readonly
from hpstore.store.sqlite.schema import PAGE_SIZE

# Names SQLite gives the files it keeps beside a database: a copy under such a name would
# be taken for the log of another file.
_COMPANIONS = ("-wal", "-shm", "-journal")

#: pages copied between two calls of a backup's ``progress`` (4 MB of 1 KiB pages)
STEP_PAGES = 4096


def _partial_name(out: Path, token: str) -> str:
    return f".{out.name}.{token}.partial"


def _refuse_target(source: Path, out: Path) -> None:
    files.resolved(out)  # a loop of links: named as one, not as a folder that is missing
    if os.path.isdir(out):
        raise HpStoreError(f"{out} is a folder: give the copy a file name in it, such as "
                           f"{out / (source.stem + '-backup' + source.suffix)}.")
    if os.path.lexists(out):
        what = ("the search file itself" if files.resolved(out) == files.resolved(source)
                else "a file")
        raise HpStoreError(f"{out} exists ({what}): hpstore backup never writes over a file. "
                           "Give the copy a new name.")
    if not out.parent.is_dir():
        raise HpStoreError(f"The folder {out.parent} does not exist; create it first.")
    # The copy is made in a hidden file beside it, with SQLite's journal beside that: the
    # longest name of the three must fit in one name of the folder's file system.
    try:
        name_max = int(os.pathconf(out.parent, "PC_NAME_MAX"))
    except (OSError, ValueError):  # (a file system that does not say)
        name_max = 255
    over = len(os.fsencode(_partial_name(out, "0" * 8) + "-journal")) - name_max
    if over > 0:
        raise HpStoreError(
            f"The name {out.name!r} is too long for a copy: hpstore backup makes the copy "
            f"in a hidden file beside it first ({_partial_name(out, 'XXXXXXXX')}, with "
            f"SQLite's -journal beside that), {over} byte(s) over the {name_max} bytes a "
            f"name may have here. Shorten the name by {over} byte(s).")
    partial = files.resolved(out.parent) / (_partial_name(out, "0" * 8) + "-journal")
    over = len(os.fsencode(partial)) - files.SQLITE_MAX_PATH
    if over > 0:  # (else SQLite's "unable to open database file", the search blamed)
        raise HpStoreError(
            f"The path {out} is too long for a copy: hpstore backup makes the copy in a "
            f"hidden file beside it first, and SQLite opens that file (with its journal) by "
            f"a path of at most {files.SQLITE_MAX_PATH} bytes: {over} byte(s) over. Give the "
            "copy a shorter path (shorter folder names, or a shorter name).")
    if out.name.endswith(_COMPANIONS):
        raise HpStoreError(f"{out.name} ends like the log files SQLite keeps beside a database "
                           f"({', '.join(_COMPANIONS)}); give the copy another name.")
    left = [out.name + s for s in _COMPANIONS if os.path.lexists(f"{out}{s}")]
    if left:  # SQLite would replay another database's log over the copy when it opens
        raise HpStoreError(f"{', '.join(left)} already beside {out.name}: the log of another "
                           "database, which SQLite would apply to the copy. Give the copy "
                           "another name (or remove those files if nothing uses them).")
    sidecar = files.lock_folder(files.resolved(source))
    if files.resolved(out).parent == sidecar:
        raise HpStoreError(f"{out} is inside hpstore's lock folder {sidecar}; give the copy a "
                           "place of its own.")


def _remove(path: Path) -> None:
    for suffix in ("", *_COMPANIONS):
        with contextlib.suppress(FileNotFoundError):
            path.with_name(path.name + suffix).unlink()


def _partial(out: Path) -> tuple[Path, int]:
    """A new hidden file beside ``out`` to make the copy in, and a descriptor holding an
    flock on it for as long as the copy is made: a backup killed (kill -9) leaves its
    partial copy unlocked, and the next backup to that name removes it."""
    while True:
        token = secrets.token_hex(4)
        temporary = out.with_name(_partial_name(out, token))
        # made and locked under a name no backup removes, then given its own: a backup
        # looking for abandoned copies never sees it unlocked
        claim = out.with_name(f".{out.name}.{token}.claim")
        try:
            fd = os.open(claim, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o664)
        except FileExistsError:
            continue
        except OSError as exc:
            if said := process_limits.no_room_for_file(claim, exc):
                raise HpStoreError(f"Copying to {out} failed: {said}") from None
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):  # (not the hidden name)
                raise HpStoreError(
                    f"Cannot write the copy {out}: the folder {out.parent} is not writable "
                    f"by you ({exc.strerror}). Give the copy a path in a folder you can "
                    "write.") from None
            raise
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.path.lexists(temporary):  # (drawn twice: another token)
            os.close(fd)
            os.unlink(claim)
            continue
        os.rename(claim, temporary)
        return temporary, fd


def _remove_abandoned(out: Path) -> None:
    """Remove the partial copies of earlier backups to ``out`` that were killed: those no
    running backup holds (SQLite's own locks are POSIX locks, which flock ignores)."""
    mine = re.compile(re.escape(f".{out.name}.") + r"[0-9a-f]{8}\.partial")
    with contextlib.suppress(OSError), os.scandir(out.parent) as entries:
        found = [Path(e.path) for e in entries if mine.fullmatch(e.name)]
    for path in found:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # a backup making it now
            continue
        try:
            _remove(path)
        finally:
            os.close(fd)


def _place(temporary: Path, out: Path) -> None:
    """Give the finished copy its name, never replacing a file that appeared meanwhile."""
    try:
        os.link(temporary, out)  # fails if ``out`` exists
        return
    except FileExistsError:
        raise HpStoreError(f"{out} appeared while the copy was being made; nothing was "
                           "written over it. Give the copy a new name.") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV,
                             errno.EMLINK, errno.ENOSYS):
            raise
    # A filesystem without hard links: claim the name first, then move the copy onto it.
    try:
        os.close(os.open(out, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o664))
    except FileExistsError:
        raise HpStoreError(f"{out} appeared while the copy was being made; nothing was "
                           "written over it. Give the copy a new name.") from None
    os.replace(temporary, out)


# In the copy, a trial that was running in the source has no worker: the source's worker
# goes on writing to the source. Its liveness file is not in the copy's lock folder, and
# without a process id to fall back on (see locks.Session.probe) its run is taken for ended,
# so the copy runs it again as it would after that worker was killed. Only that column of
# those rows changes (the status log is not touched: no status changed).
_ORPHAN_COPIED_RUNS = ("UPDATE trials SET pid = NULL WHERE status = 'RUNNING' "
                       "AND session IS NOT NULL")


def backup(source: Path, out: Path, progress: Callable[[int, int], None] | None = None
           ) -> tuple[int, int, int]:
    """Copy the search file ``source`` into the new file ``out``; (trials, projects, trials
    running in the source, which the copy runs again) copied. ``progress(done, total)`` is
    called with the bytes copied so far and the bytes to copy, every :data:`STEP_PAGES`
    pages.

    Raises:
        HpStoreError: ``out`` exists, is a companion name, lies in the lock folder, or the
            copy failed; nothing is left at ``out``.
        DatabaseError: ``source`` or ``out`` cannot be followed (a loop of symbolic links).
    """
    source, out = files.expanded(source), files.expanded(out)
    _refuse_target(source, out)
    src = connect_readonly(source, check=False)
    try:
        _remove_abandoned(out)
        temporary, held = _partial(out)
    except BaseException:
        src.close()
        raise
    try:
        dst = sqlite3.connect(temporary, isolation_level=None)
        try:
            # One snapshot of the source, copied in steps: the read transaction held
            # across them keeps every step on it (a step that began its own would see the
            # workers' new commits, and SQLite would start the copy over, again and again
            # on a busy search).
            src.execute("BEGIN")
            src.execute("SELECT count(*) FROM sqlite_schema").fetchone()  # (its first read)
            size = src.execute("PRAGMA page_size").fetchone()[0]
            src.backup(dst, pages=STEP_PAGES, progress=None if progress is None else (
                lambda _status, left, total: progress((total - left) * size, total * size)))
            src.rollback()
            running = dst.execute(_ORPHAN_COPIED_RUNS).rowcount
            # WAL like every search file, and the only connection: closing leaves one file.
            dst.execute("PRAGMA journal_mode = WAL")
            problems = [r[0] for r in dst.execute("PRAGMA integrity_check")]
            trials, projects = dst.execute(
                "SELECT (SELECT count(*) FROM trials), (SELECT count(*) FROM projects)"
            ).fetchone()
        finally:
            dst.close()
        if problems != ["ok"]:
            raise HpStoreError(f"The copy of {source} failed SQLite's integrity check "
                               f"({'; '.join(problems[:3])}); {out} was not written. Check the "
                               "search with `hpstore check`.")
        _place(temporary, out)
    except SQLITE_FAILURES as exc:
        text = unreadable(exc)
        if ("disk is full" in text or "disk I/O" in text) and (
                room := process_limits.out_of_room(temporary, text, PAGE_SIZE)):
            # the copy's disk, not the search: the search is fine
            raise HpStoreError(f"Copying {source} to {out} failed: {room[0]}. {out} was not "
                               f"written and {source} is unchanged; {room[1]} and run again."
                               ) from None
        if "unable to open" in text and (
                said := process_limits.out_of_files(f"{source} or its copy {out}", text)):
            raise HpStoreError(said) from None  # (this process's limit, not the search)
        raise HpStoreError(f"Copying {source} to {out} failed: {text}. {out} was "
                           "not written. Check the search with `hpstore check`.") from None
    finally:
        src.close()
        _remove(temporary)
        os.close(held)
    return trials, projects, running
