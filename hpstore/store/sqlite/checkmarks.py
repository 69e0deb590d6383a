"""Where the contents check of a search file left off, so the next look checks only what is new.

The tools check every text and JSON value of a file before they read it (see
``readonly.check_contents``); on a large search that read of every row is most of the time
a tool takes to open. The rows of the growing tables (trials, metric values, the status
log) are numbered in the order they were added, so this module keeps, per file, the
highest row number each table had when its check passed, and the next check starts after
it.

The marks are kept in the user's own cache folder (``$XDG_CACHE_HOME/hpstore`` or
``~/.cache/hpstore``), never beside the file: a file handed over from elsewhere (copied,
downloaded) is another file, with no marks, and is checked whole. A mark names the file by
its device and inode and by when its first project was created, so a new file that happens
to reuse a deleted file's inode starts with no marks either. What a mark trusts is that rows
already checked were not rewritten since by something other than hpstore; values are
checked again where they are decoded, so such a row is still refused when a tool reads it.
Marks that cannot be read or written (no cache folder, a read-only home) only cost the
whole check.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

#: tables whose rows are checked from the last mark on; the others are small and
#: checked whole every time
GROWING = ("trials", "observations", "transitions")
#: rows to check past which a check is said before it runs (seconds of work, at millions)
LONG_CHECK = 200_000
#: told what runs, before a check of more rows than LONG_CHECK: set by a command that
#: shows a status line (None: nothing is said, as for the library's own opens)
on_long_check: Callable[[str], None] | None = None
_KEEP = 200  # files remembered; the oldest marks are dropped first


def _cache_file() -> Path | None:
    """Where the marks are kept; None where there is no such place (no marks kept: each
    look checks the file whole).

    A relative folder is none (the XDG specification ignores a relative XDG_CACHE_HOME):
    with no HOME and no entry in the password database, expanduser leaves ``~`` as it is,
    and the marks would make a folder named ``~`` wherever the tool runs.
    """
    base = os.environ.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):
        return None
    return Path(base) / "hpstore" / "checked.json"


def file_key(path: Path, conn: sqlite3.Connection) -> str | None:
    """The name marks are kept under for the file at ``path`` read through ``conn``; None
    when the file cannot be named (then it is checked whole)."""
    try:
        st = os.stat(path)
        (first,) = conn.execute("SELECT min(created_at) FROM projects").fetchone()
    except (OSError, sqlite3.Error):
        return None
    return f"{st.st_dev}:{st.st_ino}:{first!r}"


def load(key: str | None) -> dict[str, int]:
    """The marks of a file: table -> the highest row number checked (empty: none)."""
    if key is None:
        return {}
    marks = _read().get(key)
    if not isinstance(marks, dict):
        return {}
    return {t: m for t, m in marks.items()
            if t in GROWING and isinstance(m, int) and not isinstance(m, bool) and m > 0}


def save(key: str | None, marks: dict[str, int]) -> None:
    """Remember ``marks`` for the file; failures are ignored (the next check is whole)."""
    if key is None:
        return
    every = _read()
    every.pop(key, None)
    every[key] = marks
    while len(every) > _KEEP:
        every.pop(next(iter(every)))
    target = _cache_file()
    if target is None:
        return
    with contextlib.suppress(OSError):
        target.parent.mkdir(parents=True, exist_ok=True)
        # written whole and renamed into place: a reader sees the old marks or the new
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".checked-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(every, f)
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise


def _read() -> dict[str, object]:
    target = _cache_file()
    if target is None:
        return {}
    try:
        with open(target, encoding="utf-8") as f:
            found = json.load(f)
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}
