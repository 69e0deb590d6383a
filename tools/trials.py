"""hpstore trials DB: one row per trial, a column per hyperparameter."""

from __future__ import annotations

import sys

from hpstore import queries
from hpstore.rendering import render
from hpstore.tooling import (
    add_format_options,
    help_text,
    open_search,
    positive_int,
    print_rows,
    run_tool,
    tool_parser,
)
from hpstore.trial import TrialStatus


def status(text: str) -> str:
    """An argparse type: a trial status in any case (completed, COMPLETED)."""
    return text.upper()


def main(argv: list[str] | None = None) -> int:
    parser = tool_parser("trials", help_text(__doc__, __file__))
    parser.add_argument("--status", action="append", type=status, choices=TrialStatus.ALL,
                        help="only trials with this status, in any case (repeatable)")
    parser.add_argument("--sort", choices=["number", "score", "best", "ended"],
                        default="number",
                        help="order of the rows (default: number, the order of creation; "
                             "best: by score in the objective's direction, best first)")
    parser.add_argument("--desc", action="store_true", help="sort descending")
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="only the first N rows")
    add_format_options(parser, ["table", "csv", "json"], "table")
    args = parser.parse_args(argv)
    project = queries.choose_project(open_search(args.database), args.project)
    order, descending = args.sort, args.desc
    if order == "best":  # (as the dashboard's "best": --desc puts the worst first)
        order, descending = "score", descending != (queries.direction_of(project.record())
                                                    == "max")
    trials = project.trials(statuses=args.status, order=order, descending=descending,
                            limit=args.limit)
    columns, rows = queries.trial_table(project, queries.space_names(project), trials)
    print_rows(render(columns, rows, args.format, raw=args.raw), args.format)
    if args.format != "table":  # (the steps of every trial read for a line not printed)
        return 0
    stopped = queries.stopping(project)
    if stopped.stopped:
        print(f"(stopped early: {stopped.said()})")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
