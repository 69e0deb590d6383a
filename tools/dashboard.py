"""hpstore dashboard DB: the search live in a web browser, at http://127.0.0.1:8080/.

The page shows the projects in the file, and for each its optimisation history, the score
against each hyperparameter, parallel coordinates, learning curves, the runs per worker and
a trials table to filter, sort and page through (where each trial came from, notes,
retired trials marked); one trial's values, metrics per step, status changes and
traceback; two projects compared. The page updates itself as trials change, and stops
asking once the search is finished (the server runs until Ctrl-C).

Read-only like every inspection tool: the search is opened with mode=ro, the server
answers GET and HEAD only and has no endpoint that writes. It listens on 127.0.0.1, this machine
only. --host 0.0.0.0 (or an address of a network interface) lets every machine that can
reach this one on that port read the whole search, with no password: use it on a network
you trust, or reach a remote dashboard through `ssh -L 8080:127.0.0.1:8080 host`. Ctrl-C
stops it.
"""

from __future__ import annotations

import sys

from hpstore.rendering import terminal_text
from hpstore.store import shown
from hpstore.tooling import help_text, run_tool, tool_parser


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 for any free one."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, received {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0 to 65535, received {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = tool_parser("dashboard", help_text(__doc__, __file__))
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--host", default="127.0.0.1",
                        help="the address to listen on (default 127.0.0.1: this machine only; "
                             "0.0.0.0 lets any machine that reaches this one read the search)")
    parser.add_argument("--port", type=port_number, default=8080,
                        help="the port to listen on (default 8080; 0: any free port)")
    args = parser.parse_args(argv)
    from hpstore.dashboard import open_dashboard
    from hpstore.dashboard.server import is_loopback

    dashboard = open_dashboard(args.database, host=args.host, port=args.port,
                               project=args.project)
    try:
        print(terminal_text(f"hpstore dashboard of {shown(args.database)}: {dashboard.url} "
                            "(Ctrl-C stops it)"), flush=True)
        if not is_loopback(args.host):
            print(terminal_text(f"Listening on {args.host}: any machine that can reach this "
                                "one on that port can read the whole search (no password)."),
                  flush=True)
        dashboard.serve_forever()  # Ctrl-C: run_tool says "interrupted" and exits with 130
    finally:
        dashboard.close()
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
