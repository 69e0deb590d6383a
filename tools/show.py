"""hpstore show DB TRIAL: one trial's values, metric history per step, and status changes."""

from __future__ import annotations

import json
import sys

from hpstore.inspection import (
    choose_project,
    connect_readonly,
    find_trial,
    render,
    run_tool,
    tool_parser,
)
from hpstore.rendering import last_line, table_cell, terminal_text


def main(argv: list[str] | None = None) -> int:
    parser = tool_parser("show", __doc__)
    parser.add_argument("trial", help="the trial id as `hpstore trials` lists it (07), or the "
                                      "trial number (7)")
    args = parser.parse_args(argv)
    conn = connect_readonly(args.database)
    pid, _ = choose_project(conn, args.project)
    key, trial_id = find_trial(conn, pid, args.trial)
    status, score, best_step, tuner, runs, message, values = conn.execute(
        "SELECT status, score, best_step, tuner_id, run_count, message, hp_values "
        "FROM trials WHERE id = ?", (key,)).fetchone()
    print(terminal_text(f"Trial {trial_id}: {status}, score {table_cell(score) or '-'}, "
                        f"best step {table_cell(best_step) or '-'}, runs {runs}, last worker "
                        f"{table_cell(tuner) or '-'}"))
    if message is not None and message.strip():
        print("Message:")
        for line in message.strip("\n").splitlines():
            print("  " + terminal_text(line))
    print("Values:")
    for name, value in json.loads(values).items():
        print(f"  {terminal_text(name)}: {table_cell(value)}")
    metrics = conn.execute(
        "SELECT run, metric, step, avg(value), count(*) FROM observations WHERE trial = ? "
        "GROUP BY run, metric, step ORDER BY run, metric, step", (key,)).fetchall()
    if metrics:
        print("Metrics (mean per step):")
        sys.stdout.write(render(["run", "metric", "step", "value", "reports"], metrics))
    changes = conn.execute(
        "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', at, 'unixepoch'), from_status, to_status, "
        "tuner_id, pid, message FROM transitions WHERE trial = ? ORDER BY at, id",
        (key,)).fetchall()
    print("Status changes:")
    sys.stdout.write(render(["at", "from", "to", "tuner_id", "pid", "message"],
                            [[*r[:5], last_line(r[5])] for r in changes]))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
