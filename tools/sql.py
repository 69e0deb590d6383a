"""hpstore sql DB "SELECT ...": run one read-only query and print its rows.

Writes, ATTACH, PRAGMAs that change a setting and functions that expose memory addresses
are refused. Rows are printed as they are read, so a result of millions of rows starts at
once and takes little memory; a table is aligned on its first 1000 rows, and past them a
wider cell widens its column from that row on. A query runs for at most --timeout seconds
(default 60; 0: no limit), until its last row is printed, and Ctrl-C stops it: while it
runs, the search's workers cannot checkpoint their log past the query's snapshot, so the
-wal grows. A query stopped part way has printed the rows before; its exit code is 2."""

from __future__ import annotations

import sys

from hpstore.rendering import render_stream
from hpstore.tooling import (
    add_format_options,
    open_search,
    print_rows,
    run_tool,
    seconds,
    tool_parser,
)

DEFAULT_TIMEOUT = 60.0


def main(argv: list[str] | None = None) -> int:
    # a query reads the whole store: a project is chosen in it (WHERE p.name = ...)
    parser = tool_parser("sql", __doc__, project=False)
    parser.add_argument("query", help="one SQL statement; the views trial_overview, "
                        "trial_values, metric_history and status_log are made for this")
    add_format_options(parser, ["table", "csv", "json"], "table")
    parser.add_argument("--timeout", type=seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"stop the query after this many seconds, counted until its "
                             f"last row is printed (default {DEFAULT_TIMEOUT:g}; 0: no "
                             "limit)")
    args = parser.parse_args(argv)
    if not args.query.strip():
        parser.error("the query is empty: give one SQL statement, such as \"SELECT * FROM "
                     "trial_overview\"")
    store = open_search(args.database, check=False)
    with store.sql_rows(args.query, timeout=args.timeout or None) as (columns, rows):
        for text in render_stream(columns, rows, args.format, raw=args.raw):
            print_rows(text)
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
