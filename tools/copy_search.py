"""hpstore copy SRC DST: copy a search (one project, or all) between any two stores: a file
to a PostgreSQL database and back, file to file, database to database.

SRC is never changed (workers may keep running on it), each project read whole in one
snapshot; DST gets each project whole in one transaction, or nothing. A search copied
resumes in DST as it would have in SRC: the same next trials, the grid's position and
Hyperband's brackets included. Trials that were running in SRC are handed out again by the
first worker on DST. A project DST already holds is refused unless --overwrite is given
(one of the same letters written with other code points too: it is replaced, under the
name DST holds). On a terminal, a status line says what is being read or written meanwhile
(a search of 100,000 trials takes seconds each way).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpstore.errors import HpStoreError
from hpstore.queries import listed, project_named, same_look
from hpstore.rendering import terminal_text
from hpstore.store import open_store, shown
from hpstore.store.postgresql import is_url
from hpstore.store.records import NewProject
from hpstore.store.rows import orphan_running
from hpstore.store.sqlite.files import lock_folder
from hpstore.tooling import (
    StatusLine,
    command_parser,
    help_text,
    open_search,
    run_tool,
    terminated_as_interrupted,
)


def same_place(a: str, b: str) -> bool:
    """Whether two store arguments name the same file or the same URL."""
    if is_url(a) or is_url(b):
        return a == b
    return os.path.realpath(os.path.expanduser(a)) == os.path.realpath(os.path.expanduser(b))


def copy(source: str, target: str, *, projects: list[str] | None = None,
         overwrite: bool = False, status: Callable[[str], None] | None = None,
         copied: list[tuple[str, tuple[int, int]]] | None = None
         ) -> list[tuple[str, tuple[int, int]]]:
    """Copy the projects named (all when None) from ``source`` to ``target``; returns
    (name, (trials, trials running in ``source``, which run again in ``target``)) of each,
    also added to ``copied`` as each is written (what was copied before an interruption).
    ``status`` is told what is being done as it starts.

    Raises:
        HpStoreError: the same store twice, a DST in memory, a project SRC lacks, or one
            DST holds already (without ``overwrite``); nothing is written then.
        NameTooLongError: a project DST cannot hold (a name longer than PostgreSQL's
            indexes take); nothing is written.
        DatabaseError: either store cannot be used.
    """
    say = status or (lambda text: None)
    if target == ":memory:":
        raise HpStoreError("DST :memory: is a search in this command's memory, gone when it "
                           "ends; give a search file or a postgresql:// URL to copy into.")
    if same_place(source, target):
        raise HpStoreError("SRC and DST are the same store; give another DST to copy into.")
    src = open_search(source)
    try:
        origin = src.identity()
        found = {r.name: r for r in src.projects()}
        names = list(found)
        if projects is not None:
            names = []
            for given in projects:
                # (the same letters written otherwise name the stored project, as for
                # every command)
                record = project_named(list(found.values()), given)
                if record is None:
                    raise HpStoreError(
                        f"{shown(source)} has no project {given!r}; it holds "
                        f"{listed([repr(n) for n in found]) or 'none'}.")
                if record.name not in names:  # (a project named twice is copied once)
                    names.append(record.name)
        if not names:
            raise HpStoreError(f"{shown(source)} holds no project to copy.")
        # every document read before anything is written
        states = {}
        for n in names:
            say(f"reading project {n!r} from {shown(source)}")
            states[n] = src.open_project(found[n]).dump()
    finally:
        src.close()
    # a file this command makes is removed again should nothing be copied into it
    # (refused, failed, Ctrl-C): no empty search is left behind under the name
    made = not is_url(target) and not os.path.lexists(os.path.expanduser(target))
    dst = open_store(target)
    copied = [] if copied is None else copied
    try:
        if dst.identity() == origin:  # one store under two names (another URL, say)
            raise HpStoreError(f"SRC and DST are the same store ({shown(target)} is "
                               f"{shown(source)}); give another DST to copy into.")
        # every project checked before the first is written: none is copied, not some
        for name in names:
            dst.check_new(_new_project(name, states[name]), states[name])
        with dst.mutex():
            records = dst.projects()
            held = {r.name for r in records}
            into = {}  # each project's name in DST: its own, or the spelling DST holds
            for name in names:
                # (two projects of one look: the split an oracle refuses to make)
                look = same_look(records, name, shown(target))
                if look is not None and not overwrite:
                    raise HpStoreError(
                        f"{look[1]} Nothing was copied; give --overwrite to replace that "
                        "project with SRC's (under the name DST holds), or copy into another "
                        "DST.")
                into[name] = name if look is None else look[0]
            if len(set(into.values())) < len(into):
                twins = [n for n in names if list(into.values()).count(into[n]) > 1]
                raise HpStoreError(
                    f"{shown(source)} holds the projects {listed([repr(n) for n in twins])}, "
                    f"the same letters with other code points, which {shown(target)} would "
                    "hold as one; nothing was copied. Copy them into different DSTs (with "
                    "--project).")
            clash = [n for n in names if into[n] in held]
            if clash and not overwrite:
                raise HpStoreError(
                    f"{shown(target)} already holds the project {clash[0]!r}; give "
                    "--overwrite to replace it (or --project to copy others).")
            for name in names:
                say(f"writing project {into[name]!r} ({len(states[name]['trials'])} "
                    f"trial(s)) into {shown(target)}")
                copied.append((into[name], _import(dst, into[name], states[name], overwrite)))
            return copied
    except BaseException:
        if made and not copied:
            dst.close()
            _remove_if_empty(Path(os.path.expanduser(target)))
        raise
    finally:
        dst.close()


def _remove_if_empty(path: Path) -> None:
    """Remove the search file ``path`` this command made, with its log and lock folder,
    if it still holds no project (another process may have begun a search in it)."""
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro",
                                                uri=True)) as conn:
            if conn.execute("SELECT count(*) FROM projects").fetchone()[0]:
                return
    except sqlite3.Error:
        return
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm", f"{path.name}-journal"):
        with contextlib.suppress(FileNotFoundError):
            (path.parent / name).unlink()
    shutil.rmtree(lock_folder(path), ignore_errors=True)


def _import(dst: Any, name: str, state: dict[str, Any], replace: bool) -> tuple[int, int]:
    """(trials, trials running in SRC) copied as project ``name``."""
    copied, running = orphan_running(state)
    dst.import_project(_new_project(name, state), copied, replace=replace)
    return len(state["trials"]), running


def _new_project(name: str, state: dict[str, Any]) -> NewProject:
    settings = state["settings"]
    return NewProject(name, settings["oracle_class"], settings["oracle_config"],
                      settings["objective"], settings["max_trials"], settings["seed"])


def main(argv: list[str] | None = None) -> int:
    parser = command_parser(prog="hpstore copy", description=help_text(__doc__, __file__),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="the search file or postgresql:// URL to copy from "
                        "(read-only)")
    parser.add_argument("target", help="the search file (created if missing) or "
                        "postgresql:// URL to copy into")
    parser.add_argument("--project", action="append", default=None, metavar="NAME",
                        help="a project to copy (repeat for several); default: all")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace projects of the same name in the target")
    args = parser.parse_args(argv)
    line = StatusLine(sys.stderr)
    copied: list[tuple[str, tuple[int, int]]] = []
    try:
        with terminated_as_interrupted():  # (kill, timeout: a file it made is removed)
            copy(args.source, args.target, projects=args.project, overwrite=args.overwrite,
                 status=line.show, copied=copied)
    except KeyboardInterrupt:
        line.clear()
        if copied:  # each whole, in a transaction of its own: say which are there
            print(terminal_text(
                f"hpstore copy: interrupted after copying {len(copied)} project(s) whole "
                f"into {shown(args.target)}: {', '.join(repr(n) for n, _ in copied)}; the "
                "rest were not copied."), file=sys.stderr)
        raise
    finally:
        line.clear()
    for name, (trials, running) in copied:
        print(terminal_text(f"copied project {name!r}: {trials} trial(s) into "
                            f"{shown(args.target)}"), file=sys.stderr)
        if running:
            print(f"  {running} trial(s) running in SRC run again when the copy is resumed "
                  "(their workers write to SRC, not the copy)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
