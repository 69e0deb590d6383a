"""The store: the contract the Oracle, the Tuner and the tools use, and its engines.

``open_store(database)`` picks the engine from its argument: a path (a SQLite file),
None or ":memory:" (a search kept in this process), and, for searches across machines, a
``postgresql://`` URL.
"""

from __future__ import annotations

import os
import re
from typing import Any

from hpstore.store.contract import CreationFacts, Decision, ProjectStore, Store
from hpstore.store.records import (
    NewProject,
    NewTrial,
    Observation,
    ProjectRecord,
    RunRecord,
    Transition,
    TrialRecord,
)


def open_store(database: str | os.PathLike[str] | None, *, durability: str = "normal",
               read_only: bool = False, **options: Any) -> Any:
    """The store for ``database``.

    Args:
        database: a file path, None / ":memory:", or a ``postgresql://`` (``postgres://``)
            URL of a PostgreSQL database.
        durability: for a SQLite file, "normal" (WAL with synchronous=NORMAL: a killed
            process loses nothing committed) or "full" (synchronous=FULL: commits also
            survive a power cut, slower); on PostgreSQL the same promises, through
            synchronous_commit off or on.
        read_only: open it to read only (the tools, notebooks, the dashboard): nothing is
            created or written, and the workers are never held up.

    Raises:
        DatabaseError and its subclasses: the database cannot be used.
        EngineUnavailableError: a PostgreSQL URL without psycopg installed (it says which
            extra to install).
        ValueError: an unknown durability, or an empty ``database``.
        TypeError: ``database`` is not a path, a URL or None.
    """
    from hpstore.store.postgresql import is_url

    check_database(database)
    if is_url(database):
        from hpstore.store.postgresql.store import PostgresStore

        return PostgresStore(str(database), durability=durability, read_only=read_only,
                             **options)
    from hpstore.store.sqlite import SQLiteStore

    return SQLiteStore(database, durability=durability, read_only=read_only, **options)


#: a URL of another kind than PostgreSQL's (SQLAlchemy's sqlite:///, mysql://, a SQLite URI)
_OTHER_URL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|sqlite:|file:)", re.IGNORECASE)


def check_database(database: Any) -> None:
    """Refuse a ``database`` no store opens, before anything is made.

    Raises:
        TypeError: not a path, a URL or None.
        ValueError: an empty or blank path, one holding a NUL, or a URL of another kind
            than ``postgresql://`` (SQLAlchemy's ``sqlite:///search.db``, a SQLite
            ``file:`` URI), which would otherwise name a file or folder by its letters.
    """
    from hpstore.store.postgresql import is_url

    if database is not None and not isinstance(database, (str, os.PathLike)):
        raise TypeError(f"`database` must be the path of a search file, a postgresql:// URL "
                        f"or None, received {database!r} ({type(database).__name__}).")
    if database is None or is_url(database):
        return
    text = os.fsdecode(database)
    if not text.strip() or "\0" in text:
        raise ValueError(f"`database` must be the path of a search file (such as search.db), "
                         f"a postgresql:// URL or None, received {database!r}.")
    if isinstance(database, str) and _OTHER_URL.match(database):
        path = re.sub(r"^sqlite:/{2,3}|^file:(?://)?", "", database, flags=re.IGNORECASE)
        hint = (f" For a SQLite file give its path itself: database={path.split('?')[0]!r}."
                if database.lower().startswith(("sqlite:", "file:")) and path else "")
        raise ValueError(
            f"`database` {database!r} is a URL hpstore does not open: it takes the path of a "
            f"search file (a SQLite file), a postgresql:// URL, or None.{hint}")


def file_stamp(path: str) -> tuple[Any, ...]:
    """(modification time, size) of a search file and of its write-ahead log: what a
    write changes. A reader of a file of an older schema reads a copy made when it opened
    it (``snapshot``): it opens the file again once this changes."""
    stamp: list[Any] = []
    for name in (path, path + "-wal"):
        try:
            info = os.stat(name)
            stamp += [info.st_mtime_ns, info.st_size]
        except OSError:
            stamp += [None, None]
    return tuple(stamp)


def shown(database: Any) -> str:
    """``database`` as messages show it: a path as given, a URL without its password.

    A path whose bytes are not UTF-8 (a folder named on a Latin-1 system) shows them as
    ``\xe9``: it reaches Python as lone surrogates, which no page, JSON or UTF-8 stream
    can hold.
    """
    from hpstore.store.postgresql import is_url, redact

    if is_url(database):
        return redact(database, query=True)
    return os.fsencode(str(database)).decode("utf-8", "backslashreplace")


__all__ = ["CreationFacts", "Decision", "NewProject", "NewTrial", "Observation",
           "ProjectRecord", "ProjectStore", "RunRecord", "Store", "Transition", "TrialRecord",
           "open_store", "shown"]
