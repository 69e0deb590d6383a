"""hpstore watch DB: a live view of a running search, refreshed every few seconds.

Read-only: it never blocks the workers. Ends with Ctrl-C, or by itself once the search is
finished.
"""

from __future__ import annotations

import json
import sys
import time

from hpstore.inspection import choose_project, connect_readonly, run_tool, tool_parser


def frame(conn, pid: int) -> tuple[str, bool]:
    """The text of one refresh, and whether the search looks finished."""
    max_trials, objective = conn.execute(
        "SELECT max_trials, objective FROM projects WHERE project_id = ?", (pid,)).fetchone()
    counts = dict(conn.execute("SELECT status, count(*) FROM trials WHERE project_id = ? "
                               "GROUP BY status", (pid,)))
    done = counts.get("COMPLETED", 0) + counts.get("FAILED", 0)
    now = time.time()
    running = conn.execute(
        "SELECT trial_id, tuner_id, started_at, hp_values FROM trials WHERE project_id = ? AND "
        "status = 'RUNNING' ORDER BY tuner_id", (pid,)).fetchall()
    direction = json.loads(objective).get("direction", "min")
    order = "DESC" if direction == "max" else "ASC"
    best = conn.execute(
        "SELECT trial_id, score, hp_values FROM trials WHERE project_id = ? AND status = "
        f"'COMPLETED' AND score IS NOT NULL ORDER BY score {order} LIMIT 1", (pid,)).fetchone()
    rate = conn.execute(
        "SELECT count(*), min(ended_at), max(ended_at) FROM trials WHERE project_id = ? AND "
        "ended_at > ?", (pid, now - 600)).fetchone()
    lines = [f"{time.strftime('%H:%M:%S')}  trials done {done}/{max_trials or '?'}  "
             + "  ".join(f"{s.lower()} {n}" for s, n in sorted(counts.items()))]
    if rate[0] > 1 and rate[2] > rate[1]:
        per_minute = (rate[0] - 1) / (rate[2] - rate[1]) * 60
        lines[0] += f"  ({per_minute:.1f} trials/min"
        if max_trials:
            left = max(0, max_trials - done) / per_minute
            lines[0] += f", ~{left:.1f} min left"
        lines[0] += ")"
    if best:
        lines.append(f"best: trial {best[0]} score {best[1]:.6g} {json.loads(best[2])}")
    lines.append(f"running ({len(running)}):")
    for trial_id, tuner, started, values in running:
        lines.append(f"  {tuner}: trial {trial_id} for {now - (started or now):.0f}s "
                     f"{json.loads(values)}")
    finished = bool(max_trials) and done >= max_trials and not running
    if finished:
        lines.append("The search is finished.")
    return "\n".join(lines), finished


def main(argv: list[str] | None = None) -> int:
    parser = tool_parser("watch", __doc__)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes")
    parser.add_argument("--once", action="store_true", help="print one view and exit")
    args = parser.parse_args(argv)
    conn = connect_readonly(args.database)
    pid, _ = choose_project(conn, args.project)
    live = sys.stdout.isatty() and not args.once
    try:
        while True:
            text, finished = frame(conn, pid)
            if live:
                sys.stdout.write("\x1b[H\x1b[2J")  # clear the terminal for the new view
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
            if args.once or finished:
                return 0
            time.sleep(args.interval)  # the refresh rate of a display, nothing waits on it
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
