"""hpstore sql DB "SELECT ...": run one read-only query and print its rows.

Writes, ATTACH, PRAGMAs that change a setting and functions that expose memory addresses
are refused. A query runs for at most --timeout seconds (default 60; 0: no limit) and
Ctrl-C stops it: while it runs, the search's workers cannot checkpoint their log past the
query's snapshot, so the -wal grows."""

from __future__ import annotations

import sqlite3
import sys

from hpstore.errors import HpStoreError, QueryTimeoutError
from hpstore.inspection import (
    add_format_options,
    connect_readonly,
    render,
    run_tool,
    seconds,
    tool_parser,
)
from hpstore.query_limits import guard_queries, is_interruption, restrict_user_sql

DEFAULT_TIMEOUT = 60.0


def main(argv: list[str] | None = None) -> int:
    parser = tool_parser("sql", __doc__)
    parser.add_argument("query", help="one SQL statement; the views trial_overview, "
                        "trial_values, metric_history and status_log are made for this")
    add_format_options(parser, ["table", "csv", "json"], "table")
    parser.add_argument("--timeout", type=seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"stop the query after this many seconds (default "
                             f"{DEFAULT_TIMEOUT:g}; 0: no limit)")
    args = parser.parse_args(argv)
    conn = connect_readonly(args.database, check=False)
    guard = guard_queries(conn, args.timeout or None)
    refusals = restrict_user_sql(conn)
    guard.start()
    try:
        cursor = conn.execute(args.query)
        columns = [d[0] for d in cursor.description or []]
        rows = cursor.fetchall()
    except sqlite3.Warning as exc:
        raise HpStoreError(f"{exc} (give one statement).") from None
    except sqlite3.Error as exc:
        if is_interruption(exc) and guard.timed_out():
            raise QueryTimeoutError(
                f"The query ran longer than {args.timeout:g} s and was stopped. Give "
                "--timeout SECONDS for a longer limit (0: none).") from None
        if is_interruption(exc):
            raise KeyboardInterrupt from None
        if refusals.refused:
            raise HpStoreError(f"hpstore sql refuses {refusals.refused[-1]}: it only reads, "
                               "and never changes the file or its settings.") from None
        text = str(exc)
        if "readonly" in text or "read-only" in text or "query_only" in text:
            raise HpStoreError("hpstore sql is read-only: it runs SELECT queries and never "
                               "changes the file. To change a search, use the library.") from None
        if "one statement at a time" in text:
            raise HpStoreError("hpstore sql runs one statement at a time; give one.") from None
        raise HpStoreError(f"SQLite could not run the query: {text.rstrip('.')}.") from None
    sys.stdout.write(render(columns, rows, args.format, raw=args.raw))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
