"""hpstore summary DB: the projects in a file, and for one: objective, counts per status,
best trial and search space."""

from __future__ import annotations

import sys

from hpstore import queries
from hpstore.rendering import show_values, space_lines, terminal_text
from hpstore.store import shown
from hpstore.tooling import help_text, open_search, run_tool, tool_parser


def against(stopped: queries.Stopping) -> str:
    """What the steps not run are measured against: each trial's own budget (Hyperband's
    tuner/epochs), or the longest completed run."""
    # (no trial completed yet: nothing to measure a trial without a budget against)
    full = (f"against {stopped.full_length} steps of a completed trial" if stopped.full_length
            else "not counted until a trial completes")
    if not stopped.own_budget:
        return full
    if stopped.own_budget == stopped.stopped:
        return f"each against its own budget, {queries.BUDGET}"
    return (f"{stopped.own_budget} against their own budget, {queries.BUDGET}; the rest "
            f"{full}")


def stopped_line(stopped: queries.Stopping) -> str:
    """The summary's line on the trials stopped early and the steps that saved."""
    if not stopped.counted:
        return f"Stopped early: {stopped.said()}"
    return f"Stopped early: {stopped.said()} ({against(stopped)})"


def main(argv: list[str] | None = None) -> int:
    args = tool_parser("summary", help_text(__doc__, __file__)).parse_args(argv)
    store = open_search(args.database)
    names = [p.name for p in store.projects()]
    several = len(names) > 1 and args.project is None
    # a project asked for that is not there is the whole answer (nothing printed before)
    project = None if several else queries.choose_project(store, args.project)
    print(terminal_text(f"{shown(args.database)}: {len(names)} project(s): "
                        f"{', '.join(names) or '(none)'}"))
    if project is None:
        print("Choose one with --project NAME for its details.")
        return 0
    record = project.record()
    print()
    print(terminal_text(
        f"Project {record.name!r}: {record.oracle_class}, objective "
        f"{queries.describe_objective(record)}, max_trials "
        f"{record.max_trials if record.max_trials is not None else 'none'}, seed {record.seed}"))
    search = record.oracle_config.get("search") or {}
    if search:
        print(terminal_text("  settings: " + show_values(search)))
    counts = dict(sorted(project.counts_by_status().items()))
    total = sum(counts.values())
    print(terminal_text(f"Trials: {total}" + "".join(f", {s} {n}" for s, n in counts.items())))
    stopped = queries.stopping(project)
    if stopped.stopped:
        print(stopped_line(stopped))
    steered = project.steering_counts()
    if steered:
        parts = [f"{steered[k]} {k}" for k in ("enqueued", "added", "warm start", "retired")
                 if k in steered]
        uncounted = f" ({record.uncounted} not counted towards max_trials)" \
            if record.uncounted else ""
        print(f"Steered: {', '.join(parts)}{uncounted}")
    best = queries.best_trial(project, queries.direction_of(record))
    if best is not None and best.score is not None:
        print(terminal_text(f"Best: trial {best.trial_id}, score {best.score:.6g} at step "
                            f"{best.best_step}, values {show_values(best.values)}"))
    print("Search space:")
    print("\n".join(space_lines(project.space()[1])))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
