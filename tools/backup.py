"""hpstore backup DB OUT: a copy of a search in one new file, consistent even while workers
write (SQLite's online backup API, reading through a read-only connection).

Copying the .db with cp while workers run can miss the commits still in its -wal log, or
catch the file half-written by a checkpoint: this copies one snapshot of the whole search.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hpstore.errors import HpStoreError
from hpstore.store.postgresql import is_url, redact
from hpstore.store.sqlite import files
from hpstore.store.sqlite.backup import backup
from hpstore.tooling import (
    StatusLine,
    command_parser,
    help_text,
    run_tool,
    terminated_as_interrupted,
)


def main(argv: list[str] | None = None) -> int:
    parser = command_parser(prog="hpstore backup",
                                     description=help_text(__doc__, __file__))
    parser.add_argument("database", help="the search file (read-only: it is never changed)")
    parser.add_argument("output", help="the new file to write the copy to (must not exist)")
    args = parser.parse_args(argv)
    if is_url(args.database):
        raise HpStoreError(
            f"{redact(args.database)} is a PostgreSQL database: back it up with the server's "
            "own tools (pg_dump), or copy its searches into a file with `hpstore copy URL "
            "FILE`.")
    if is_url(args.output):
        raise HpStoreError(
            f"hpstore backup writes a file, not into {redact(args.output)}: copy the search "
            f"into the database with `hpstore copy {args.database} URL`.")
    out = files.expanded(args.output)
    line = StatusLine(sys.stderr)  # (a large search takes seconds: said on a terminal)

    def progress(done: int, total: int) -> None:
        line.show(f"Copying {args.database}: {done * 100 // max(total, 1)}% of "
                  f"{total / 1e6:,.1f} MB")

    try:
        with terminated_as_interrupted():  # (kill, timeout: the partial copy is removed)
            trials, projects, running = backup(Path(args.database), out, progress)
    finally:
        line.clear()
    print(f"wrote {out}: {trials} trial(s) of {projects} project(s), "
          f"{out.stat().st_size} bytes, one file", file=sys.stderr)
    if running:
        print(f"{running} trial(s) running in the source run again when the copy is resumed "
              "(their workers write to the source, not the copy)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
