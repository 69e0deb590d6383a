"""Checks of a search file's name before hpstore opens it: is the name safe to open?

SQLite keeps the write-ahead log and its index under the name a file had when it was
opened (see :mod:`files`). So a name is refused, before SQLite opens it, when the log
beside it belongs to another file (one deleted or moved away from the name), when running
processes have the file open under another name (it was moved or renamed while they used
it), or when the file took the name of one they still use (it replaced that file).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from hpstore.errors import FileIdentityError
from hpstore.store.sqlite import closing, files, locks
from hpstore.store.sqlite.files import identity

if TYPE_CHECKING:  # (database.py imports this module)
    from hpstore.store.sqlite.database import Database

_CONFIRMATIONS = 5  # looks at a file that seems open under another name, before refusing it
_WAL_HEADER = 32  # bytes of a log's header: a log no longer than that holds no commit


def check_no_log_of_another_file(db: Database) -> None:
    """Refuse to make a new file where the name's log belongs to a file that is gone
    from it: SQLite would take that log's pages as the new file's own (the deleted
    search's trials in the new one, or a file it calls damaged).

    Raises:
        FileIdentityError: processes still use a file under this name (it was moved,
            renamed or deleted while they ran), or a log with commits is left beside it.
    """
    path = db.path
    assert path is not None
    wal, shm = (path.with_name(path.name + suffix) for suffix in ("-wal", "-shm"))
    here = _open_here_as(db) == "replaced"
    in_use = here or files.index_in_use(shm) is True
    try:
        commits = wal.stat().st_size > _WAL_HEADER
    except OSError:
        commits = False
    # Looked at before the name: a process that makes the file meanwhile opens it (and
    # its log) only once the file has its name, so a name still free means a stray log.
    if not (in_use or commits) or path.exists():
        return
    if here:
        raise FileIdentityError(_STILL_OPEN_HERE.format(path=path, what="does not exist"))
    if in_use:
        beside = f" (its log, {wal.name}, is beside it)" if wal.exists() else ""
        raise FileIdentityError(
            f"{path} does not exist, but running processes still use a search file "
            f"under this name{beside}: it was moved, renamed "
            "or deleted while they ran. A new file here would take their log as its own. "
            "Wait for them to end (an hpstore worker stops at its next write, and the "
            "log of a moved file is folded into it; a dashboard lets go at its page's "
            "next look, `hpstore watch` at its next refresh), then run again.")
    raise FileIdentityError(
        f"{path} does not exist, but a log with commits is left beside it ({wal}): the "
        "log of a search file deleted or moved away after its process was killed. A "
        "new file here would take that log's pages as its own. If the file was moved, "
        f"move it back beside {wal.name} and open it once (its commits fold in), or "
        f"delete {wal.name} and {shm.name} to start afresh; then run again.")


#: a file deleted, moved or replaced while this process still has it open (a notebook's
#: oracle of an earlier cell): waiting for other processes would never help
_STILL_OPEN_HERE = (
    "{path} {what}, but this process still has the search file that was at this name "
    "open (an oracle or Tuner of an earlier notebook cell, say), and a new file here would "
    "take its log as its own. Close it (oracle.close(), or del it and let it be "
    "collected) or restart the kernel, then run again.")


def _open_here_as(db: Database) -> str | None:
    """What this process's other open searches say of the name: "moved" when one has
    the file the name names open under another name, "replaced" when one has another
    file open under this name (the looks at other processes' locks never see this
    process's own: within one process, a file put at the name of one still open took
    its log)."""
    assert db.path is not None
    key = identity(db.path)
    for other in closing.open_databases():
        if (other is db or other._conn is None or other._pid != os.getpid()
                or other._identity is None):
            continue
        if other.path == db.path and other._identity != key:
            return "replaced"
        if other.path != db.path and other._identity == key:
            return "moved"
    return None


def check_not_open_elsewhere(db: Database) -> None:
    """Refuse a file that running processes have open under another name (it was moved
    or renamed while they used it): they keep a log of their own, under the old name;
    or a file that took the name of one they still use: the log beside it is theirs."""
    path = db.path
    assert path is not None
    header = files.read_header(path)
    if len(header) < 100 or header[18] != 2:
        return  # not (yet) a WAL file: no process keeps a log of it open
    shm = path.with_name(path.name + "-shm")

    def elsewhere() -> str | None:
        key = identity(path)
        if key is None:
            return None
        if files.used_under_another_name(key, path, shm) is True:
            return "moved"
        if files.index_used_for_another_file(key, path, shm) is True:
            return "replaced"
        return None

    found = _open_here_as(db)  # this process's own: exact, no look needed
    looked = not found
    if not found:
        # A process opening or closing the file holds SQLite's lock on it for an
        # instant without the -shm index's (or the other way round): a look that falls
        # in that instant sees what looks like another name. Another name is a lasting
        # state, so look again a few times, the last time under the schema lock, which
        # hpstore processes hold while they first read.
        for _ in range(_CONFIRMATIONS):
            if not elsewhere():
                return
            time.sleep(0.05)  # the instant is over by then; another name is not
        made = not db.sidecar.exists()
        with db._schema_lock():
            found = elsewhere()
            if not found:
                return
        if made:  # a refusal leaves nothing behind
            locks.remove_idle_folder(db.sidecar)
    if found == "replaced" and not looked:
        raise FileIdentityError(_STILL_OPEN_HERE.format(
            path=db.path, what="took the name of a search file"))
    if found == "replaced":
        raise FileIdentityError(
            f"{db.path} took the name of a search file that running processes still "
            "use: the log beside the name is that file's, and opening this one now "
            "would take that log's pages as its own and corrupt it. Wait for those "
            "processes to end (an hpstore worker stops at its next write), then run "
            "again.")
    if looked and not shm.exists():
        # Seen from outside, a file moved here and one whose index was deleted under its
        # workers look alike (open, with no index beside this name): both are said.
        raise FileIdentityError(
            f"{db.path} is open in another process under another name, or its index "
            f"{shm.name} was deleted while processes used it: moved or renamed while a "
            "process used it, or the file mounted here under another name (mount --bind; "
            "its latest commits are then still in the log beside the other name), or its "
            "index removed. Opening it now could corrupt it. Wait for those "
            "processes to end (an hpstore worker stops at its next write, and the last to "
            "close folds its log into the file), then run again.")
    raise FileIdentityError(
        f"{db.path} is open in a process (this one, or another) under another name: "
        "it was moved or renamed while that process used it, and its latest commits are "
        "still in the log beside the old name. Opening it now would corrupt it. Wait for "
        "those processes "
        "to end (an hpstore worker stops at its next write, and the last to close folds "
        "its log into the file), then run again."
    )
