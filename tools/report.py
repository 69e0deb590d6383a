"""hpstore report DB -o report.html: one self-contained HTML page with plots of a search.

The page shows the optimisation history, the score against each hyperparameter, parallel
coordinates, the metric curves of the best trials, a timeline of every run per worker and
the trials table. It loads nothing and runs no script: the plots are inline SVG.
"""

from __future__ import annotations

import sys

from hpstore import queries
from hpstore.output_file import check_output, write_output
from hpstore.rendering import terminal_text
from hpstore.report import (  # noqa: F401 (the names tests and users reach through the tool)
    MAX_POINTS,
    STATUS_COLOURS,
    TABLE_ROWS,
    WIDE,
    axis_for,
    esc,
    load_search,
    log_ticks,
    nice_ticks,
    render_page,
    score_axis,
)
from hpstore.store import shown
from hpstore.tooling import (
    StatusLine,
    add_output_options,
    help_text,
    open_search,
    run_tool,
    tool_parser,
)


def main(argv: list[str] | None = None) -> int:
    parser = tool_parser("report", help_text(__doc__, __file__))
    add_output_options(parser, "report.html")
    args = parser.parse_args(argv)
    to_stdout = args.output == "-"  # the usual name of standard output
    if not to_stdout:
        check_output(args.output, database=args.database, force=args.force,
                     example="report.html")  # before the work
    store = open_search(args.database)  # (before the line: it may warn on stderr)
    # what it reads and draws, on stderr, while the page is made (on a terminal only: a
    # million trials take seconds)
    line = StatusLine(sys.stderr)
    try:
        try:
            search = load_search(queries.choose_project(store, args.project), line.show)
        finally:
            store.close()
        line.show(f"Drawing {len(search.trials):,} trials and {len(search.runs):,} runs")
        page = render_page(search, shown(args.database))
    finally:
        line.clear()
    if to_stdout:
        sys.stdout.write(page)
        sys.stdout.flush()
        return 0
    write_output(args.output, page, database=args.database, force=args.force,
                 example="report.html")
    print(terminal_text(f"Wrote {args.output}: project {search.name!r}, "
                        f"{search.total} trial(s)."), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
