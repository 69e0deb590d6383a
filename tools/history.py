"""hpstore history DB: the status log (every status change), optionally of one trial or
one worker."""

from __future__ import annotations

import sys

from hpstore import queries
from hpstore.rendering import iso_time, message_line, render
from hpstore.tooling import (
    add_format_options,
    help_text,
    open_search,
    positive_int,
    print_rows,
    run_tool,
    tool_parser,
)


def main(argv: list[str] | None = None) -> int:
    parser = tool_parser("history", help_text(__doc__, __file__))
    parser.add_argument("--trial", help="only this trial: its trial id, or its number")
    parser.add_argument("--worker", help="only changes made by this tuner id")
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="only the last N changes")
    add_format_options(parser, ["table", "csv", "json"], "table")
    args = parser.parse_args(argv)
    project = queries.choose_project(open_search(args.database), args.project)
    trial_id = None if args.trial is None else queries.find_trial(project, args.trial).trial_id
    changes = project.transitions(trial_id=trial_id, tuner_id=args.worker, limit=args.limit,
                                  last=True)
    rows = [[iso_time(c.at), c.trial_id, c.from_status, c.to_status, c.tuner_id, c.pid,
             # a traceback's exception line is what a person needs in a table
             message_line(c.message) if args.format == "table" else c.message]
            for c in changes]
    print_rows(render(["at", "trial_id", "from", "to", "tuner_id", "pid", "message"],
                            rows, args.format, raw=args.raw), args.format)
    if not rows and args.worker is not None:
        # an empty table is the answer, but a mistyped tuner id gives the same one
        print(f"note: no status change in project {project.name!r} was made by tuner id "
              f"{args.worker!r}; the tuner ids are in the column tuner_id of "
              "`hpstore history` without --worker.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
