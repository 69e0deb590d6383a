"""hpstore export DB: every trial with its values, score and timing, as csv, json or jsonl.

With -o the output file is never the search file, one of its companions or any SQLite
file, and an existing file is replaced only with --force."""

from __future__ import annotations

import sys

from hpstore.inspection import (
    add_format_options,
    add_output_options,
    choose_project,
    connect_readonly,
    render,
    run_tool,
    tool_parser,
    trial_rows,
)
from hpstore.output_file import check_output, write_output
from hpstore.rendering import terminal_text


def main(argv: list[str] | None = None) -> int:
    parser = tool_parser("export", __doc__)
    add_format_options(parser, ["csv", "json", "jsonl"], "csv")
    add_output_options(parser, None)
    args = parser.parse_args(argv)
    if args.output is not None:  # a bad -o is refused before the file is read
        check_output(args.output, database=args.database, force=args.force)
    conn = connect_readonly(args.database)
    pid, _ = choose_project(conn, args.project)
    text = render(*trial_rows(conn, pid), args.format, raw=args.raw)
    conn.close()
    if args.output is not None:
        write_output(args.output, text, database=args.database, force=args.force)
        print(terminal_text(f"wrote {args.output}"), file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
