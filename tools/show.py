"""hpstore show DB TRIAL: one trial's values, metric history per step, and status changes."""

from __future__ import annotations

import json
import sys

from hpstore.errors import TrialNotFoundError
from hpstore.inspection import choose_project, connect_readonly, render, run_tool, tool_parser


def main(argv: list[str] | None = None) -> int:
    parser = tool_parser("show", __doc__)
    parser.add_argument("trial", help="the trial id, as `hpstore trials` lists it")
    args = parser.parse_args(argv)
    conn = connect_readonly(args.database)
    pid, _ = choose_project(conn, args.project)
    row = conn.execute(
        "SELECT id, status, score, best_step, tuner_id, run_count, message, hp_values "
        "FROM trials WHERE project_id = ? AND trial_id = ?", (pid, args.trial)).fetchone()
    if row is None:
        raise TrialNotFoundError(f"No trial {args.trial!r} in this project; "
                                 "`hpstore trials DB` lists them.")
    key, status, score, best_step, tuner, runs, message, values = row
    print(f"Trial {args.trial}: {status}, score {score}, best step {best_step}, "
          f"runs {runs}, last worker {tuner}")
    if message:
        print(f"Message: {message.strip()}")
    print("Values:")
    for name, value in json.loads(values).items():
        print(f"  {name}: {value}")
    metrics = conn.execute(
        "SELECT run, metric, step, avg(value), count(*) FROM observations WHERE trial = ? "
        "GROUP BY run, metric, step ORDER BY run, metric, step", (key,)).fetchall()
    if metrics:
        print("Metrics (mean per step):")
        sys.stdout.write(render(["run", "metric", "step", "value", "reports"], metrics))
    changes = conn.execute(
        "SELECT at, from_status, to_status, tuner_id, pid, message FROM status_log "
        "WHERE project = (SELECT name FROM projects WHERE project_id = ?) AND trial_id = ? "
        "ORDER BY at_unix", (pid, args.trial)).fetchall()
    print("Status changes:")
    sys.stdout.write(render(["at", "from", "to", "tuner_id", "pid", "message"],
                            [[*r[:5], (r[5] or "").strip().splitlines()[-1:] and
                              (r[5] or "").strip().splitlines()[-1][:80]] for r in changes]))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
