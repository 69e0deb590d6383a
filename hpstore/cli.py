"""The `hpstore` command: a thin dispatcher to the demo and the inspection tools."""

from __future__ import annotations

import sys

USAGE = """usage: hpstore COMMAND [ARGS]

commands:
  demo      run a real small search into hpstore-demo.db (2 worker processes)
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0
    command, rest = args[0], args[1:]
    if command == "demo":
        from hpstore.demo import main as demo

        return demo(rest)
    print(f"hpstore: unknown command {command!r}\n\n{USAGE}", end="", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
