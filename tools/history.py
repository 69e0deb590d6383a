"""hpstore history DB: the status log (every status change), optionally of one trial or
one worker."""

from __future__ import annotations

import sys

from hpstore.inspection import choose_project, connect_readonly, render, run_tool, tool_parser


def main(argv: list[str] | None = None) -> int:
    parser = tool_parser("history", __doc__)
    parser.add_argument("--trial", help="only this trial")
    parser.add_argument("--worker", help="only changes made by this tuner id")
    parser.add_argument("--limit", type=int, default=None, help="only the last N changes")
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    args = parser.parse_args(argv)
    conn = connect_readonly(args.database)
    _, name = choose_project(conn, args.project)
    where, params = "project = ?", [name]
    if args.trial is not None:
        where += " AND trial_id = ?"
        params.append(args.trial)
    if args.worker is not None:
        where += " AND tuner_id = ?"
        params.append(args.worker)
    rows = conn.execute(f"SELECT at, trial_id, from_status, to_status, tuner_id, pid, message "
                        f"FROM status_log WHERE {where} ORDER BY at_unix", params).fetchall()
    if args.limit is not None:
        rows = rows[-args.limit:]
    if args.format == "table":  # a traceback's last line is what a person needs here
        rows = [[*r[:6], (r[6] or "").strip().splitlines()[-1][:80] if r[6] else None]
                for r in rows]
    sys.stdout.write(render(["at", "trial_id", "from", "to", "tuner_id", "pid", "message"],
                            rows, args.format))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
