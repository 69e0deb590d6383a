"""hpstore check DB: integrity, schema version, interrupted trials, and what to do."""

from __future__ import annotations

import sys
from pathlib import Path

from hpstore.errors import ForeignSchemaError
from hpstore.inspection import choose_project, connect_readonly, projects, run_tool, tool_parser
from hpstore.store.sqlite.database import SCHEMA_VERSION
from hpstore.store.sqlite.locks import Session


def main(argv: list[str] | None = None) -> int:
    args = tool_parser("check", __doc__).parse_args(argv)
    try:
        conn = connect_readonly(args.database)
    except ForeignSchemaError as exc:
        # Nothing more is read from such a file: SQLite would run what its schema defines.
        print(f"schema: NOT HPSTORE'S\n  {exc}")
        return 1
    problems = 0
    links = Path(args.database).expanduser().stat().st_nlink
    if links > 1:
        problems += 1
        print(f"names: {links} (hard links to one file): the library refuses it, since workers "
              "on two names would corrupt it. Keep one name, or copy the search with "
              "`hpstore backup`.")
    integrity = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    if integrity == ["ok"]:
        print("integrity: ok")
    else:
        problems += 1
        print("integrity: DAMAGED\n  " + "\n  ".join(integrity[:20]))
        print("  Restore the file from a backup, or copy out what is readable with "
              "`sqlite3 DB .recover`.")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    print(f"schema version: {version} (this hpstore: {SCHEMA_VERSION})"
          + ("" if version == SCHEMA_VERSION else "; opening it with the library upgrades it"))
    folder = Path(args.database).expanduser().resolve()
    folder = folder.with_name(folder.name + ".hpstore")
    names = projects(conn) if args.project is None else [choose_project(conn, args.project)[1]]
    for name in names:
        pid, _ = choose_project(conn, name)
        running = conn.execute(
            "SELECT trial_id, tuner_id, session FROM trials WHERE project_id = ? AND status = "
            "'RUNNING' ORDER BY number", (pid,)).fetchall()
        dead = [(t, w) for t, w, s in running
                if s is not None and not Session.probe(folder, s, tidy=False)]
        waiting = conn.execute("SELECT count(*) FROM trials WHERE project_id = ? AND queued IS "
                               "NOT NULL", (pid,)).fetchone()[0]
        print(f"project {name!r}: {len(running) - len(dead)} trial(s) running in live workers"
              f", {len(dead)} interrupted, {waiting} waiting to run again")
        for trial_id, worker in dead:
            print(f"  trial {trial_id}: its worker {worker!r} is gone (interrupted)")
        if dead or waiting:
            print("  To finish them, start any worker on this file (run the search script "
                  "again): interrupted trials are re-run with the same values.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
