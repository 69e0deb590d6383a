"""hpstore trials DB: one row per trial, a column per hyperparameter."""

from __future__ import annotations

import sys

from hpstore.inspection import (
    add_format_options,
    choose_project,
    connect_readonly,
    positive_int,
    render,
    run_tool,
    tool_parser,
    trial_rows,
)
from hpstore.trial import TrialStatus


def status(text: str) -> str:
    """An argparse type: a trial status in any case (completed, COMPLETED)."""
    return text.upper()


def main(argv: list[str] | None = None) -> int:
    parser = tool_parser("trials", __doc__)
    parser.add_argument("--status", action="append", type=status, choices=TrialStatus.ALL,
                        help="only trials with this status, in any case (repeatable)")
    parser.add_argument("--sort", choices=["number", "score", "ended"], default="number",
                        help="order of the rows (default: number, the order of creation)")
    parser.add_argument("--desc", action="store_true", help="sort descending")
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="only the first N rows")
    add_format_options(parser, ["table", "csv", "json"], "table")
    args = parser.parse_args(argv)
    conn = connect_readonly(args.database)
    pid, _ = choose_project(conn, args.project)
    columns, rows = trial_rows(conn, pid, statuses=args.status, order=args.sort,
                               descending=args.desc, limit=args.limit)
    sys.stdout.write(render(columns, rows, args.format, raw=args.raw))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
