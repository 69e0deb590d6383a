"""hpstore check DB: integrity, schema (hpstore's own, and its version), every row's
contents, the file's names, interrupted trials, and what to do. Exit code 1 when it finds a
problem in the search, 0 when none, 2 when DB is no search at all."""

from __future__ import annotations

import sys

from hpstore import queries
from hpstore.errors import (
    ForeignSchemaError,
    HpStoreError,
    NotAnHpstoreFileError,
    ProjectChoiceError,
)
from hpstore.rendering import terminal_text
from hpstore.tooling import StatusLine, help_text, open_search, run_tool, tool_parser


def main(argv: list[str] | None = None) -> int:
    args = tool_parser("check", help_text(__doc__, __file__)).parse_args(argv)
    try:
        # the contents are read by health() below, and a value at fault is its finding,
        # beside the other lines, not the end of the command
        store = open_search(args.database, check=False)
    except ForeignSchemaError as exc:
        # Nothing more is read from such a file: SQLite would run what its schema defines.
        print(f"schema: NOT HPSTORE'S\n  {exc}")
        return 1
    except NotAnHpstoreFileError as exc:
        if not getattr(exc, "damaged", False):
            raise  # (no search at all: exit 2, as for any tool)
        # a search cut short by a copy: damage found, as a damaged page is
        print(terminal_text(f"integrity: DAMAGED\n  {exc}", keep_newlines=True))
        return 1
    # a project asked for is found first: one that does not exist is the whole answer
    # (unless the projects cannot be read at all: then the findings below say why)
    try:
        chosen = (queries.choose_project(store, args.project) if args.project is not None
                  else None)
    except ProjectChoiceError:
        raise
    except HpStoreError:
        chosen = None
    problems = 0
    # (every page and every row is read: seconds on a large file, tens at a gigabyte)
    line = StatusLine(sys.stderr)
    line.show("Checking every page and every row of the search")
    for what, fine, says in store.health():
        problems += not fine
        line.clear()
        print(terminal_text(f"{what}: {says}", keep_newlines=True), flush=True)
        line.show("Checking every page and every row of the search")
    line.clear()
    try:
        projects = ([chosen] if chosen is not None
                    else [store.open_project(r) for r in store.projects()])
    except HpStoreError as exc:  # (a value at fault: the contents line named it)
        print(terminal_text(f"projects: cannot be read: {exc}"))
        return 1
    why = store.unwritable()  # (a read-only mount, another user's file: no worker here)
    for project in projects:
        try:
            running = project.running()
            queued = [t for t in project.trials(statuses=["IDLE", "INVALID"])
                      if t.queued is not None]
        except HpStoreError as exc:  # (a value at fault, a damaged page: said above)
            problems += 1
            print(terminal_text(f"project {project.name!r}: its running and waiting trials "
                                f"cannot be read: {exc}"))
            continue
        dead = [t for t in running
                if t.session is not None and not store.is_alive(t.session, t.pid)]
        waiting = sum(1 for t in queued if t.run)  # ran before: to run again
        enqueued = len(queued) - waiting  # (enqueued, never run yet)
        print(terminal_text(
            f"project {project.name!r}: {len(running) - len(dead)} trial(s) running in live "
            f"workers, {len(dead)} interrupted, {waiting} waiting to run again"
            + (f", {enqueued} enqueued and not run yet" if enqueued else "")))
        for trial in dead:
            print(terminal_text(f"  trial {trial.trial_id}: its worker {trial.tuner_id!r} is "
                                "gone (interrupted)"))
        if dead or waiting:
            if why is not None:
                print(terminal_text(f"  No worker can finish them here: {why}"))
            else:
                print(f"  To finish them, start any worker on this {store.holder} (run the "
                      "search script again): interrupted trials are re-run with the same "
                      "values.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
