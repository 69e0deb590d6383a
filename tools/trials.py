"""hpstore trials DB: one row per trial, a column per hyperparameter."""

from __future__ import annotations

import sys

from hpstore.inspection import (
    choose_project,
    connect_readonly,
    render,
    run_tool,
    tool_parser,
    trial_rows,
)
from hpstore.trial import TrialStatus


def main(argv: list[str] | None = None) -> int:
    parser = tool_parser("trials", __doc__)
    parser.add_argument("--status", action="append", choices=TrialStatus.ALL,
                        help="only trials with this status (repeatable)")
    parser.add_argument("--sort", choices=["number", "score", "ended"], default="number")
    parser.add_argument("--desc", action="store_true", help="sort descending")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    args = parser.parse_args(argv)
    conn = connect_readonly(args.database)
    pid, _ = choose_project(conn, args.project)
    columns, rows = trial_rows(conn, pid, statuses=args.status, order=args.sort,
                               descending=args.desc, limit=args.limit)
    sys.stdout.write(render(columns, rows, args.format))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
