"""hpstore sql DB "SELECT ...": run one read-only query and print its rows.

Writes, ATTACH, PRAGMAs that change a setting and functions that expose memory addresses
are refused. Rows are rendered as they are read, into a temporary file past the first
256 KB, and printed once the query is over: a result of millions of rows takes little
memory, and a pager read slowly holds no snapshot of the search. A table is aligned on its
first 1000 rows, and past them a wider cell widens its column from that row on. A query
runs for at most --timeout seconds (default 60; 0: no limit) and Ctrl-C stops it: while it
runs, the search's workers cannot checkpoint their log past the query's snapshot, so the
-wal grows. A query stopped part way prints no row."""

from __future__ import annotations

import sys
import tempfile
from typing import IO

from hpstore.rendering import render_stream
from hpstore.tooling import (
    add_format_options,
    help_text,
    open_search,
    print_rows,
    run_tool,
    seconds,
    tool_parser,
)

DEFAULT_TIMEOUT = 60.0
#: bytes of output (UTF-8) kept in memory; the rest waits in a temporary file
SPOOLED_IN_MEMORY = 1 << 18


def main(argv: list[str] | None = None) -> int:
    # a query reads the whole store: a project is chosen in it (WHERE p.name = ...)
    parser = tool_parser("sql", help_text(__doc__, __file__), project=False)
    parser.add_argument("query", help="one SQL statement; the views trial_overview, "
                        "trial_values, metric_history and status_log are made for this")
    add_format_options(parser, ["table", "csv", "json"], "table")
    parser.add_argument("--timeout", type=seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"stop the query after this many seconds (default "
                             f"{DEFAULT_TIMEOUT:g}; 0: no limit)")
    args = parser.parse_args(argv)
    if not args.query.strip():
        parser.error("the query is empty: give one SQL statement, such as \"SELECT * FROM "
                     "trial_overview\"")
    store = open_search(args.database, check=False)
    # Rendered into a spool, printed once the query is over: printing as rows are read
    # would hold the query's snapshot (and grow the search's -wal) for as long as a pager
    # waits for its reader.
    with tempfile.SpooledTemporaryFile(SPOOLED_IN_MEMORY, "w+", encoding="utf-8",
                                       newline="") as spool:
        # (a query stopped part way prints nothing: half a JSON document or CSV table
        # would pass for the whole to a script reading it)
        with store.sql_rows(args.query, timeout=args.timeout or None) as (columns, rows):
            for text in render_stream(columns, rows, args.format, raw=args.raw):
                spool.write(text)
        spool.seek(0)
        print_spooled(spool, args.format)
    return 0


def print_spooled(spool: IO[str], fmt: str = "table") -> None:
    """Print what ``spool`` holds in pieces of whole lines (a terminal's escaping of
    control characters reads line by line)."""
    rest = ""
    while piece := spool.read(1 << 16):
        piece = rest + piece
        cut = piece.rfind("\n") + 1
        print_rows(piece[:cut], fmt)
        rest = piece[cut:]
    if rest:
        print_rows(rest, fmt)


if __name__ == "__main__":
    sys.exit(run_tool(main))
