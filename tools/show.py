"""hpstore show DB TRIAL: one trial's values, metric history per step, and status changes."""

from __future__ import annotations

import sys

from hpstore import queries
from hpstore.rendering import iso_time, last_line, render, table_cell, terminal_text
from hpstore.tooling import open_search, print_rows, run_tool, tool_parser


def main(argv: list[str] | None = None) -> int:
    parser = tool_parser("show", __doc__)
    parser.add_argument("trial", help="the trial id as `hpstore trials` lists it (07), or the "
                                      "trial number (7)")
    args = parser.parse_args(argv)
    project = queries.choose_project(open_search(args.database), args.project)
    trial = queries.find_trial(project, args.trial)
    print(terminal_text(f"Trial {trial.trial_id}: {trial.status}, score "
                        f"{table_cell(trial.score) or '-'}, best step "
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
        print(f"  {terminal_text(name)}: {table_cell(value)}")
    metrics = queries.step_means(project.observations(trial, every_run=True))
    if metrics:
        print("Metrics (mean per step):")
        print_rows(render(["run", "metric", "step", "value", "reports"], metrics))
    changes = project.transitions(trial_id=trial.trial_id)
    print("Status changes:")
    print_rows(render(["at", "from", "to", "tuner_id", "pid", "message"],
                            [[iso_time(c.at), c.from_status, c.to_status, c.tuner_id, c.pid,
                              last_line(c.message)] for c in changes]))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
