"""What the operating system allows this process (open files, file size, room on the disk):
named in the error when a write or an open fails because a limit was reached."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from types import ModuleType

# Imported now, not when a limit is met: out of descriptors, importing it (an extension
# module, opened as a file, after a look at every folder of the path) fails as well.
resource: ModuleType | None
try:
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None


def descriptors_near_limit() -> tuple[int, int] | None:
    """(files open, the limit) when this process is within a few files of its limit on
    open files, else None (or where that cannot be known)."""
    if resource is None:
        return None
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    try:
        used = len(os.listdir("/proc/self/fd"))  # Linux; elsewhere not known
    except OSError as exc:  # (listing them takes one more)
        if exc.errno != errno.EMFILE:
            return None
        used = limit
    if limit == resource.RLIM_INFINITY or used + 8 < limit:
        return None
    return used, int(limit)


def out_of_files(where: str, text: str) -> str | None:
    """What to say when ``where`` could not be opened (``text``) because this process is
    at its limit of open files; None when it is not."""
    files_open = descriptors_near_limit()
    if files_open is None:
        return None
    return (f"{where} could not be opened ({text}): this process has {files_open[0]} files "
            f"open, and its limit (ulimit -n) is {files_open[1]}. Close the searches it no "
            "longer uses (oracle.close()) or other files, or raise the limit; nothing was "
            "written.")


def file_size_limit() -> int | None:
    """This process's largest file size (``ulimit -f``) in bytes, or None when unlimited."""
    if resource is None:
        return None
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if limit == resource.RLIM_INFINITY or limit < 0 else int(limit)


def log_pages(path: Path | None, pages: int, page_size: int) -> int:
    """How many pages the write-ahead log of the search file ``path`` may hold before it is
    folded into the file: ``pages``, or fewer where the disk's free room (or this process's
    file size limit, ``ulimit -f``) is under ten such logs. A log that outgrew what was left
    stopped the search with the disk full (a 3 MB log holding 126 KB of trials on a small
    disk), and freeing some room bought only a few trials more: it went on growing from
    there until its next fold."""
    if path is None:  # (a search in memory: no log)
        return pages
    frame = page_size + 24
    try:
        room = shutil.disk_usage(path.parent).free
    except OSError:
        return pages
    limit = file_size_limit()
    if limit is not None:
        room = min(room, limit)
    if room >= 10 * pages * frame:
        return pages
    return max(100, room // (10 * frame))


def out_of_room(path: Path, text: str, page_size: int) -> tuple[str, str] | None:
    """(what ran out, what to do) when writing the search file ``path``, its log or its
    index failed (SQLite's ``text``) for want of room: this process's file size limit
    (``ulimit -f``) or the disk. SQLite says "disk I/O error" whatever the operating system
    refused, so look at what may have run out (the disk through statvfs); None when
    neither did."""
    limit = file_size_limit()
    parts = [path.with_name(path.name + s) for s in ("", "-wal", "-shm")]
    sizes = {p: p.stat().st_size for p in parts if p.exists()}
    largest = max(sizes, key=sizes.__getitem__, default=path)
    if limit is not None and sizes.get(largest, 0) + 2 * page_size > limit:
        what = "the file" if largest == path else f"its log {largest.name}"
        return (f"{what} reached this process's file size limit of {limit} bytes "
                f"(ulimit -f) ({text})", "raise the limit")
    if (inodes := no_free_inodes(path.parent, text)) is not None:
        return inodes
    free = shutil.disk_usage(path.parent).free
    if "disk is full" in text or free < 16 * page_size:
        return (f"the disk holding {path.parent} is full ({free} bytes free; {text})",
                "free some space")
    return None


def no_free_inodes(folder: Path, text: str) -> tuple[str, str] | None:
    """(what ran out, what to do) when the disk holding ``folder`` has no free inode left,
    so that no new file (SQLite's log, its index, a lock file) can be made there, however
    many bytes are free; None otherwise (or where that cannot be known)."""
    try:
        fs = os.statvfs(folder)
    except OSError:
        return None
    # (a filesystem that makes inodes on demand reports none at all; root may use those
    # kept back for it)
    free = fs.f_ffree if os.geteuid() == 0 else fs.f_favail
    if fs.f_files == 0 or free > 0:
        return None
    return (f"the disk holding {folder} has no free inodes: no new file can be made there, "
            f"whatever its free bytes ({text})", "delete files on that disk")


def no_room_for_file(path: Path, exc: OSError) -> str | None:
    """What to say when a file of hpstore's own (a lock file, the lock folder) could not
    be made at ``path`` (``exc``) for want of room; None for any other failure."""
    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    text = exc.strerror or str(exc)
    found = no_free_inodes(path.parent, text)
    if found is None:
        free = shutil.disk_usage(path.parent).free
        found = (f"the disk holding {path.parent} is full ({free} bytes free; {text})"
                 if exc.errno == errno.ENOSPC else f"your disk quota is used up ({text})",
                 "free some space")
    cause, remedy = found
    return f"{path} could not be made: {cause}. Nothing was written; {remedy} and run again."
