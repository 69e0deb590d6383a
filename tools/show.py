"""hpstore show DB TRIAL: one trial's values, metric history per step, and status changes.

A trial of more than 1000 steps in all (every metric, every run) gets one line per metric
and run instead (its steps, first and last, min and max and where, last value, reports):
--all-steps prints the mean of every step, as metric_history holds them for hpstore sql."""

from __future__ import annotations

import itertools
import sys
from typing import Any

from hpstore import queries
from hpstore.rendering import (
    iso_time,
    message_line,
    render,
    table_cell,
    terminal_text,
)
from hpstore.tooling import help_text, open_search, print_rows, run_tool, tool_parser


def main(argv: list[str] | None = None) -> int:
    parser = tool_parser("show", help_text(__doc__, __file__))
    parser.add_argument("trial", help="the trial id as `hpstore trials` lists it (07), or the "
                                      "trial number (7)")
    parser.add_argument("--all-steps", action="store_true",
                        help=f"print the mean of every step of every metric (by default, "
                             f"past {SHOWN_STEPS} steps in all, one line per metric and run: "
                             "its steps, first and last, min and max and where, last value)")
    args = parser.parse_args(argv)
    project = queries.choose_project(open_search(args.database), args.project)
    trial = queries.find_trial(project, args.trial)
    print(terminal_text(f"Trial {trial.trial_id}: {trial.status}, score "
                        f"{table_cell(trial.score, exact=True) or '-'}, best step "
                        f"{table_cell(trial.best_step) or '-'}, runs {trial.run}, last worker "
                        f"{table_cell(trial.tuner_id) or '-'}"))
    if trial.origin is not None:
        print(terminal_text(f"Origin: {trial.origin}"))
    if trial.retired_at is not None:
        print(f"Retired: {iso_time(trial.retired_at)} (out of the results; the status log "
              "says who and why; `hpstore restore` brings it back)")
    if trial.note:
        print("Note:")
        for line in trial.note.strip("\n").splitlines():
            print("  " + terminal_text(line))
    if trial.message is not None and trial.message.strip():
        print("Message:")
        for line in trial.message.strip("\n").splitlines():
            print("  " + terminal_text(line))
    print("Values:")
    for name, value in trial.values.items():
        print(f"  {terminal_text(name)}: {table_cell(value, exact=True)}")
    metrics = queries.step_means(project.observations(trial, every_run=True))
    if metrics and (args.all_steps or len(metrics) <= SHOWN_STEPS):
        print("Metrics (mean per step):")
        print_rows(render(["run", "metric", "step", "value", "reports"], metrics))
    elif metrics:
        print(f"Metrics ({len(metrics)} means per step in all, more than {SHOWN_STEPS}: "
              "each metric summed up; --all-steps prints every one):")
        print_rows(render(["run", "metric", "steps", "first", "last", "min", "at step",
                           "max", "at step", "last value", "reports"], _summary(metrics)))
    changes = project.transitions(trial_id=trial.trial_id)
    print("Status changes:")
    print_rows(render(["at", "from", "to", "tuner_id", "pid", "message"],
                            [[iso_time(c.at), c.from_status, c.to_status, c.tuner_id, c.pid,
                              message_line(c.message)] for c in changes]))
    return 0


#: rows of means per step shown whole; past them each metric is summed up in one line
SHOWN_STEPS = 1_000


def _summary(metrics: list[list[Any]]) -> list[list[Any]]:
    """One row per (run, metric) of step_means' rows (sorted by run, metric, step): steps,
    first and last step, min and max mean and their first step, last mean, reports."""
    rows: list[list[Any]] = []
    for (run, metric), group in itertools.groupby(metrics, key=lambda r: (r[0], r[1])):
        steps = list(group)
        scored = [r for r in steps if r[3] is not None]  # (a step of NaN reports only)
        low = min(scored, key=lambda r: r[3], default=None)
        high = max(scored, key=lambda r: r[3], default=None)
        rows.append([run, metric, len(steps), steps[0][2], steps[-1][2],
                     None if low is None else low[3], None if low is None else low[2],
                     None if high is None else high[3], None if high is None else high[2],
                     steps[-1][3], sum(r[4] for r in steps)])
    return rows


if __name__ == "__main__":
    sys.exit(run_tool(main))
