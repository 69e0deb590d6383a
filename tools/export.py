"""hpstore export DB: every trial with its values, score and timing, as csv, json or jsonl.

The format is --format's, else the -o file's extension (.csv, .json, .jsonl), else csv.
With -o the output file is never the search file, one of its companions or any SQLite
file, and an existing file is replaced only with --force."""

from __future__ import annotations

import sys
from pathlib import Path

from hpstore import queries
from hpstore.output_file import check_output, write_output
from hpstore.rendering import render, terminal_text
from hpstore.tooling import (
    add_format_options,
    add_output_options,
    help_text,
    open_search,
    print_rows,
    run_tool,
    tool_parser,
)


def main(argv: list[str] | None = None) -> int:
    parser = tool_parser("export", help_text(__doc__, __file__))
    add_format_options(parser, ["csv", "json", "jsonl"], "csv",
                       "the -o file's extension, .csv, .json or .jsonl, else csv")
    # `-o trials.json` without --format writes JSON, not CSV under a .json name
    parser.set_defaults(format=None)
    add_output_options(parser, None)
    args = parser.parse_args(argv)
    if args.output == "-":  # the usual name of standard output
        args.output = None
    if args.format is None:
        suffix = Path(args.output).suffix.lower().lstrip(".") if args.output else ""
        args.format = suffix if suffix in ("csv", "json", "jsonl") else "csv"
    if args.output is not None:  # a bad -o is refused before the file is read
        check_output(args.output, database=args.database, force=args.force,
                     example=f"trials.{args.format}")
    store = open_search(args.database)
    project = queries.choose_project(store, args.project)
    columns, rows = queries.trial_table(project, queries.space_names(project),
                                        project.trials())
    text = render(columns, rows, args.format, raw=args.raw)
    store.close()
    if args.output is not None:
        write_output(args.output, text, database=args.database, force=args.force,
                     example=f"trials.{args.format}")
        print(terminal_text(f"wrote {args.output}"), file=sys.stderr)
    else:
        print_rows(text, args.format)
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
