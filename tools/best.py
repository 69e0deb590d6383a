"""hpstore best DB -n N: the best N completed trials, best first."""

from __future__ import annotations

import json
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


def main(argv: list[str] | None = None) -> int:
    parser = tool_parser("best", __doc__)
    parser.add_argument("-n", type=positive_int, default=5,
                        help="how many trials, at least 1 (default 5)")
    add_format_options(parser, ["table", "csv", "json"], "table")
    args = parser.parse_args(argv)
    conn = connect_readonly(args.database)
    pid, _ = choose_project(conn, args.project)
    objective = json.loads(conn.execute("SELECT objective FROM projects WHERE project_id = ?",
                                        (pid,)).fetchone()[0])
    descending = objective.get("direction") == "max"
    columns, rows = trial_rows(conn, pid, statuses=["COMPLETED"], order="score",
                               descending=descending, limit=args.n)
    sys.stdout.write(render(columns, rows, args.format, raw=args.raw))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
