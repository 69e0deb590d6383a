"""hpstore best DB -n N: the best N completed trials, best first (retired ones left out)."""

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


def main(argv: list[str] | None = None) -> int:
    parser = tool_parser("best", help_text(__doc__, __file__))
    parser.add_argument("-n", type=positive_int, default=5,
                        help="how many trials, at least 1 (default 5)")
    add_format_options(parser, ["table", "csv", "json"], "table")
    args = parser.parse_args(argv)
    project = queries.choose_project(open_search(args.database), args.project)
    descending = queries.direction_of(project.record()) == "max"
    # as get_best_trials ranks them: retired trials left out (not its padding)
    trials = [t for t in project.best(args.n, "max" if descending else "min")
              if t.status == TrialStatus.COMPLETED and t.score is not None]
    columns, rows = queries.trial_table(project, queries.space_names(project), trials)
    print_rows(render(columns, rows, args.format, raw=args.raw), args.format)
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
