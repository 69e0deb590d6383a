"""hpstore against its peers, side by side in one run: `python -m benchmarks [WHAT]`."""

from __future__ import annotations

import argparse

from hpstore.output_file import OutputFileError, check_output
from hpstore.tooling import at_least

__all__ = ["add_json_option", "at_least", "check_json"]


def add_json_option(parser: argparse.ArgumentParser, text: str = "write the results here"
                    ) -> None:
    """``--json FILE`` and ``--force``, as the hpstore tools take an output file."""
    parser.add_argument("--json", help=f"{text} (never over a search file; over another "
                                       "file only with --force)")
    parser.add_argument("--force", action="store_true", help="let --json replace a file")


def check_json(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse a ``--json`` that cannot or must not be written, before any run (the runs'
    figures were lost to a traceback at the end, or written over a search file)."""
    if args.json:
        try:
            check_output(args.json, database=None, force=args.force, example="results.json",
                         option="--json")
        except OutputFileError as exc:
            parser.error(str(exc))
