"""hpstore restore DB TRIAL... --reason TEXT: bring retired trials back into the results,
recorded in the status log like the retirement (see `hpstore retire`)."""

from __future__ import annotations

import sys

from hpstore.cli import load_tool
from hpstore.tooling import run_tool


def main(argv: list[str] | None = None) -> int:
    # the same command as retire, the other way round (retire.py holds both)
    return int(load_tool("retire").main(argv, retired=False))


if __name__ == "__main__":
    sys.exit(run_tool(main))
