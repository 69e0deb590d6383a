"""One machine per search file: its workers all run under one kernel.

SQLite shares a file between processes through the log's index, kept in memory mapped from
``<file>-shm``, and a machine sees only its own memory: two machines writing one file over
a network file system (NFS, SMB, Lustre, a VM's shared folder) each keep an index the other
never sees, and damage the file. So each worker writes the id of the kernel it runs under
(Linux's boot id, the same in every container of one machine) in its liveness file, and
a worker starting beside a live one of another kernel is refused, naming it. Containers of
one machine share its kernel, and so its memory: they are one machine here.

The check is made as a worker starts, against the liveness files a network file system
shows at that moment: two machines starting within the same second may both go on (a
network file system may show a new file seconds late). It guards against the common
mistake (a second machine started on a search another runs), not every interleaving.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from hpstore.errors import DatabaseError
from hpstore.store.sqlite.locks import Session, liveness_token


def _boot_id() -> str:
    """This kernel's boot id ("" where there is none to read: then nothing is checked)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            text = f.read().strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return text if text and len(text) <= 64 and text.replace("-", "").isalnum() else ""


#: the kernel this process runs under
MACHINE = _boot_id()


def refuse_another(folder: Path, mine: str, what: str) -> None:
    """Refuse to go on beside a live worker of ``folder``'s search that runs under another
    kernel (``mine``: this process's own liveness token, left out).

    Raises:
        DatabaseError: naming that worker's machine and pid, and what to do.
    """
    if not MACHINE:
        return
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        token = liveness_token(name)
        if token is None or token == mine:
            continue
        text = ""
        with contextlib.suppress(OSError, UnicodeDecodeError):
            text = (folder / name).read_text(encoding="ascii")[:200]
        pid, _, kernel = text.strip().partition(" ")
        if not kernel or kernel == MACHINE or not Session.probe(folder, token, tidy=False):
            continue  # (this machine's, an older version's, or no longer live)
        raise DatabaseError(
            f"{what} is in use by a worker on another machine (pid {pid or '?'} under "
            f"kernel {kernel}; this one runs under {MACHINE}). A search file is shared by "
            "the processes of one machine only: SQLite keeps the file's log index in shared "
            "memory, which does not reach across machines, and two machines writing one "
            "file over a network file system damage it. Run every worker of this search on "
            "that machine, or keep the search in PostgreSQL (database=\"postgresql://...\": "
            "hpstore copy FILE URL moves it there).")
