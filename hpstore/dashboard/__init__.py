"""hpstore dashboard: a search shown live in the browser, read-only.

``server`` is the web server (the standard library's, one reader thread), ``api`` its
endpoints, ``live`` what it keeps of each project between requests (brought up to date
from the status log and the metric values newer than it holds), ``finished`` whether a
search is over, ``plots`` the plots (the report's drawing), and ``assets/`` the page and
its script.
"""

from __future__ import annotations

from typing import Any

from hpstore.dashboard.server import Running


def open_dashboard(database: str, *, host: str = "127.0.0.1", port: int = 8080,
                   project: str | None = None, check: bool = True) -> Running:
    """A dashboard of ``database`` (a search file), listening on ``host``:``port`` (0: any
    free port) but not serving yet: call ``serve_forever()``, or ``start()`` to serve from
    a thread; ``close()`` stops it. The search is opened read-only.

    Raises:
        DatabaseError, NotAnHpstoreFileError: the search cannot be read.
        ProjectChoiceError: ``project`` is not in it.
        ValueError: the host or port cannot be listened on.
    """
    from hpstore.tooling import open_search

    checked: list[Any] = [object() if check else _identity(database)]

    def opener() -> Any:
        # A file's contents are checked when the dashboard opens it, and again when its
        # name is found naming another file (see Dashboard.renew), not at every reopening.
        seen = _identity(database)
        store = open_search(database, check=seen != checked[0])
        checked[0] = seen
        return store

    return Running(opener, host=host, port=port, project=project)


def _identity(database: str) -> tuple[int, int] | None:
    """(device, inode) of the file ``database`` names now; None for none (or a URL)."""
    import os

    try:
        info = os.stat(database)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


__all__ = ["Running", "open_dashboard"]
