"""hpstore sql DB "SELECT ...": run a read-only query; writes are refused."""

from __future__ import annotations

import sqlite3
import sys

from hpstore.errors import HpStoreError
from hpstore.inspection import connect_readonly, render, run_tool, tool_parser


def main(argv: list[str] | None = None) -> int:
    parser = tool_parser("sql", __doc__)
    parser.add_argument("query", help="one SQL statement; the views trial_overview, "
                        "trial_values, metric_history and status_log are made for this")
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    args = parser.parse_args(argv)
    conn = connect_readonly(args.database, check=False)
    try:
        cursor = conn.execute(args.query)
    except sqlite3.OperationalError as exc:
        if "readonly" in str(exc) or "read-only" in str(exc):
            raise HpStoreError("hpstore sql is read-only: it runs SELECT queries and never "
                               "changes the file. To change a search, use the library.") from None
        raise HpStoreError(f"SQLite could not run the query: {exc}.") from None
    except sqlite3.Warning as exc:
        raise HpStoreError(f"{exc} (give one statement).") from None
    columns = [d[0] for d in cursor.description or []]
    sys.stdout.write(render(columns, cursor.fetchall(), args.format))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
