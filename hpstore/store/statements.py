"""What kind of statement a person gave ``hpstore sql``, read before anything runs.

Both engines run the statement in a read-only transaction; PostgreSQL's still runs
statements that act without writing a table (``COPY ... TO`` a server file or program,
``DO``, ``SET``, ``LISTEN``), so a server is only sent a statement that starts as a query.
"""

from __future__ import annotations

#: the statements a server is sent: those that can only read (a data-changing WITH or
#: EXPLAIN ANALYZE of a write is refused by the read-only transaction itself)
QUERY_KEYWORDS = ("select", "with", "values", "table", "show", "explain")


def leading_keyword(query: str) -> str | None:
    """The statement's first word, lower-cased, after the spaces, comments, semicolons and
    opening parentheses before it; None when there is no word there (nothing but those, or
    something else first, such as a quoted name)."""
    start = i = _skip(query, "(;")
    while i < len(query) and (query[i].isalnum() or query[i] == "_") and query[i].isascii():
        i += 1
    return query[start:i].lower() or None


def holds_nothing(query: str) -> bool:
    """Whether the query is nothing but spaces, comments and semicolons."""
    return _skip(query, ";") == len(query)


def first_words(query: str, limit: int = 24) -> str:
    """How the statement starts, after the spaces, comments and semicolons before it, for
    a message."""
    rest = " ".join(query[_skip(query, ";"):].split())
    return rest if len(rest) <= limit else rest[:limit] + "..."


def _skip(query: str, also: str) -> int:
    """Where the statement starts: past spaces, comments and the characters ``also``."""
    i, n = 0, len(query)
    while i < n:
        if query[i].isspace() or query[i] in also:
            i += 1
        elif query.startswith("--", i):
            end = query.find("\n", i)
            i = n if end < 0 else end + 1
        elif query.startswith("/*", i):
            # PostgreSQL nests block comments (SQLite does not: there the statement is only
            # named in a message, never judged by this)
            depth, i = 1, i + 2
            while depth and i < n:
                if query.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif query.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        else:
            break
    return i
