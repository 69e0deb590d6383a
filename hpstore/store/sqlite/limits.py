"""Limits on the SQL a person runs against a search file: what may run, and for how long.

SQLite runs a query in C, where Python never sees Ctrl-C: without a progress handler a
runaway query cannot be stopped. :func:`guard_queries` installs one that lets the pending
Ctrl-C through (SQLite then stops the query with "interrupted") and stops a query that
runs past a deadline. A long reader costs the writers: while it holds its snapshot, SQLite
cannot checkpoint the log past it, so the ``-wal`` keeps growing until it ends.

:func:`restrict_user_sql` installs an authorizer for ``hpstore sql``: no ``ATTACH``, no
``PRAGMA`` that changes a setting or does work (checkpoint, optimize...), and no function
that hands out a memory address (``fts3_tokenizer``) or loads code (``load_extension``).
"""

from __future__ import annotations

import sqlite3
import time

# VM instructions between two calls of the progress handler: about a millisecond of work.
PROGRESS_STEPS = 20_000

# PRAGMAs that only report something when given no value.
_QUERY_PRAGMAS = frozenset({
    "analysis_limit", "application_id", "auto_vacuum", "automatic_index", "busy_timeout",
    "cache_size", "cache_spill", "cell_size_check", "checkpoint_fullfsync", "collation_list",
    "compile_options", "data_version", "database_list", "defer_foreign_keys", "encoding",
    "foreign_key_check", "foreign_keys", "freelist_count", "fullfsync", "function_list",
    "hard_heap_limit", "ignore_check_constraints", "integrity_check", "journal_mode",
    "journal_size_limit", "legacy_alter_table", "locking_mode", "max_page_count", "mmap_size",
    "module_list", "page_count", "page_size", "pragma_list", "query_only", "quick_check",
    "read_uncommitted", "recursive_triggers", "reverse_unordered_selects", "schema_version",
    "secure_delete", "soft_heap_limit", "synchronous", "table_list", "temp_store", "threads",
    "trusted_schema", "user_version", "wal_autocheckpoint",
})
# PRAGMAs whose argument names a table or index, or bounds a check: reads all the same.
_ARGUMENT_PRAGMAS = frozenset({
    "foreign_key_check", "foreign_key_list", "index_info", "index_list", "index_xinfo",
    "integrity_check", "quick_check", "table_info", "table_list", "table_xinfo",
})
# fts3_tokenizer('simple') returns the address of a C structure; load_extension runs code.
_REFUSED_FUNCTIONS = frozenset({"fts3_tokenizer", "load_extension"})


class QueryGuard:
    """The progress handler of one connection: stops a query at its deadline.

    A pending Ctrl-C is raised inside the handler, which makes SQLite stop the query with
    "interrupted"; :meth:`timed_out` tells the two causes apart.
    """

    def __init__(self, timeout: float | None = None) -> None:
        self.timeout = timeout
        self.deadline: float | None = None
        self.expired = False

    def start(self) -> None:
        """Start the clock for the next query."""
        self.expired = False
        self.deadline = None if not self.timeout else time.monotonic() + self.timeout

    def __call__(self) -> int:
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.expired = True
            return 1  # non-zero: SQLite stops the query
        return 0

    def timed_out(self) -> bool:
        return self.expired


def guard_queries(conn: sqlite3.Connection, timeout: float | None = None) -> QueryGuard:
    """Make every query on ``conn`` stoppable by Ctrl-C, and by ``timeout`` seconds (from
    :meth:`QueryGuard.start`) when given."""
    guard = QueryGuard(timeout)
    conn.set_progress_handler(guard, PROGRESS_STEPS)
    return guard


def is_interruption(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite reporting a query stopped by the progress handler."""
    return isinstance(exc, sqlite3.OperationalError) and str(exc) == "interrupted"


class Refusals:
    """The authorizer of ``hpstore sql``; keeps what it refused, for the error message."""

    def __init__(self) -> None:
        self.refused: list[str] = []

    def __call__(self, action: int, arg1: str | None, arg2: str | None, database: str | None,
                 trigger: str | None) -> int:
        if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
            self.refused.append("ATTACH, DETACH and VACUUM (they attach other database "
                                "files, which would be opened for writing)")
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_PRAGMA:
            name = (arg1 or "").lower()
            if (arg2 is None and name in _QUERY_PRAGMAS) or name in _ARGUMENT_PRAGMAS:
                return sqlite3.SQLITE_OK
            shown = f"PRAGMA {name}" + ("" if arg2 is None else f" = {arg2}")
            self.refused.append(f"{shown} (a PRAGMA that changes a setting or does work)")
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _REFUSED_FUNCTIONS:
            self.refused.append(f"the function {arg2}() (it exposes memory addresses or "
                                "loads code)")
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK


def restrict_user_sql(conn: sqlite3.Connection) -> Refusals:
    """Install the authorizer of ``hpstore sql`` on ``conn``; returns it."""
    refusals = Refusals()
    conn.set_authorizer(refusals)
    return refusals
