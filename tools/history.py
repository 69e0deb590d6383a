"""hpstore history DB: the status log (every status change), optionally of one trial or
one worker."""

from __future__ import annotations

import sys

from hpstore.inspection import (
    add_format_options,
    choose_project,
    connect_readonly,
    find_trial,
    positive_int,
    render,
    run_tool,
    tool_parser,
)
from hpstore.rendering import last_line


def main(argv: list[str] | None = None) -> int:
    parser = tool_parser("history", __doc__)
    parser.add_argument("--trial", help="only this trial: its trial id, or its number")
    parser.add_argument("--worker", help="only changes made by this tuner id")
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="only the last N changes")
    add_format_options(parser, ["table", "csv", "json"], "table")
    args = parser.parse_args(argv)
    conn = connect_readonly(args.database)
    pid, _ = choose_project(conn, args.project)
    where, params = "t.project_id = ?", [pid]
    if args.trial is not None:
        where += " AND s.trial = ?"
        params.append(find_trial(conn, pid, args.trial)[0])
    if args.worker is not None:
        where += " AND s.tuner_id = ?"
        params.append(args.worker)
    limit = ""
    if args.limit is not None:
        limit = " LIMIT ?"
        params.append(args.limit)
    # newest first with the limit, then put back in time order
    rows = conn.execute(
        "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', s.at, 'unixepoch'), t.trial_id, "
        "s.from_status, s.to_status, s.tuner_id, s.pid, s.message FROM transitions s "
        f"JOIN trials t ON t.id = s.trial WHERE {where} ORDER BY s.at DESC, s.id DESC{limit}",
        params).fetchall()[::-1]
    if args.format == "table":  # a traceback's last line is what a person needs here
        rows = [[*r[:6], last_line(r[6])] for r in rows]
    sys.stdout.write(render(["at", "trial_id", "from", "to", "tuner_id", "pid", "message"],
                            rows, args.format, raw=args.raw))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
