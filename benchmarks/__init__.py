"""hpstore against its peers, side by side in one run: `python -m benchmarks [WHAT]`."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from hpstore.output_file import OutputFileError, check_output


def add_json_option(parser: argparse.ArgumentParser, text: str = "write the results here"
                    ) -> None:
    """``--json FILE`` and ``--force``, as the hpstore tools take an output file."""
    parser.add_argument("--json", help=f"{text} (never over a search file; over another "
                                       "file only with --force)")
    parser.add_argument("--force", action="store_true", help="let --json replace a file")


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: a whole number no smaller than ``minimum`` (a count of trials,
    repeats, processes or seeds: zero or less made a run divide by zero, wait for ever or
    quietly use a default)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is too small: give at least {minimum}")
        return value
    parse.__name__ = f"at least {minimum}"  # (argparse names the type in some errors)
    return parse


def check_json(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse a ``--json`` that cannot or must not be written, before any run (the runs'
    figures were lost to a traceback at the end, or written over a search file)."""
    if args.json:
        try:
            check_output(args.json, database=None, force=args.force, example="results.json",
                         option="--json")
        except OutputFileError as exc:
            parser.error(str(exc))
