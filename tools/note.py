"""hpstore note DB TRIAL TEXT: attach a note to a trial ("" removes it).

`hpstore show`, the report and the dashboard show it; SQL finds it in
trial_overview.note.
"""

from __future__ import annotations

import sys

from hpstore import queries
from hpstore.rendering import terminal_text
from hpstore.tooling import attach_oracle, help_text, run_tool, writing_parser


def main(argv: list[str] | None = None) -> int:
    parser = writing_parser("note", help_text(__doc__, __file__))
    parser.add_argument("trial", help="the trial id as `hpstore trials` lists it (07), or the "
                                      "trial number (7)")
    parser.add_argument("text", help='the note; "" removes the one there is')
    args = parser.parse_args(argv)
    oracle = attach_oracle(args.database, args.project)
    try:
        record = queries.find_trial(oracle.project, args.trial)
        oracle.set_trial_note(record.trial_id, args.text)
        if args.text:
            print(f"trial {record.trial_id}: note set: {terminal_text(args.text)}",
                  file=sys.stderr)
        else:
            print(f"trial {record.trial_id}: note removed", file=sys.stderr)
    finally:
        oracle.close()
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
