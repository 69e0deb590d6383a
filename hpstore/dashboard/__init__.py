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

    checked = [check]

    def opener() -> Any:  # the contents are checked once, when the dashboard opens
        first, checked[0] = checked[0], False
        return open_search(database, check=first)

    return Running(opener, host=host, port=port, project=project)


__all__ = ["Running", "open_dashboard"]
