"""hpstore export DB: every trial with its values, score and timing, as csv, json or jsonl."""

from __future__ import annotations

import sys

from hpstore.inspection import (
    choose_project,
    connect_readonly,
    render,
    run_tool,
    tool_parser,
    trial_rows,
)


def main(argv: list[str] | None = None) -> int:
    parser = tool_parser("export", __doc__)
    parser.add_argument("--format", choices=["csv", "json", "jsonl"], default="csv")
    parser.add_argument("-o", "--output", help="write here instead of standard output")
    args = parser.parse_args(argv)
    conn = connect_readonly(args.database)
    pid, _ = choose_project(conn, args.project)
    text = render(*trial_rows(conn, pid), args.format)
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
