"""hpstore watch DB: a live view of a running search, refreshed every few seconds.

Read-only: it never blocks the workers. A file that does not exist yet is waited for, as
are a server not reached yet and a schema without a search yet; a server slow to answer
is said so at once ("Connecting to ..."), not after its connection's time limit. Ends
with Ctrl-C (exit code 130), or by itself once the search is finished: nothing running or
waiting to run again, and either max_trials trials ended (COMPLETED, FAILED or STOPPED) or,
with no worker left alive, the search's oracle would hand out no more trials. A file moved,
replaced or deleted while it is watched is said so, and the name followed: the file now at
that name is watched (waited for, when there is none). A file written by an older hpstore
is read as it was when opened, and read again once it changes (a worker of today upgrades
it at its first write).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from hpstore import queries
from hpstore.errors import ServerUnavailableError
from hpstore.rendering import redraws, table_cell, terminal_text
from hpstore.store import file_stamp, shown
from hpstore.store.contract import ProjectStore, Store
from hpstore.store.postgresql import is_url
from hpstore.tooling import (
    help_text,
    holds_search,
    open_search,
    pause,
    run_tool,
    tool_parser,
)

#: seconds the first look at a server may take before it is said that it connects
AT_ONCE = 0.5


def wait_for(database: str, interval: float) -> None:
    """Return once ``database`` holds a search; says once that it waits. The first look at
    a server may itself take long (one that does not answer is given 10 s, one that says
    it is restarting 30 s): past AT_ONCE, it is said at once that it connects."""
    if not is_url(database):  # (a file is looked at at once)
        if not holds_search(database):
            _say_waiting(database)
            while not holds_search(database):
                time.sleep(interval)  # polling a file that other processes create
        return
    looked = threading.Event()
    answer: list[Any] = []

    def look() -> None:
        try:
            answer.append(holds_search(database))
        except BaseException as exc:  # (raised in the main thread below)
            answer.append(exc)
        finally:
            looked.set()

    threading.Thread(target=look, name="hpstore-watch-first-look", daemon=True).start()
    if not looked.wait(AT_ONCE):
        print(terminal_text(f"Connecting to {shown(database)} (Ctrl-C to stop)..."),
              flush=True)
    while not looked.wait(0.5):  # (woken at once when the look ends; Ctrl-C stays live)
        pass
    if isinstance(answer[0], BaseException):
        raise answer[0]
    if answer[0]:
        return
    _say_waiting(database)
    while not holds_search(database):
        time.sleep(interval)  # polling a server that other processes fill


def _say_waiting(database: str) -> None:
    print(terminal_text(f"Waiting for {shown(database)} to hold a search (Ctrl-C to stop)..."),
          flush=True)


def _stamp_of_a_copy(store: Store, database: str) -> tuple[object, ...] | None:
    """The file's stamp when ``store`` reads a copy of it (see ``file_stamp``), else None."""
    return file_stamp(database) if getattr(store, "snapshot", False) else None


class Watcher:
    """Builds each refresh of one project, and decides when the search is finished."""

    def __init__(self, store: Store, project: ProjectStore) -> None:
        self.store, self.project = store, project
        self._asked: tuple[int, bool | None] | None = None  # (status log position, answer)

    def _oracle_would_stop(self) -> bool | None:
        position = self.project.last_transition()
        if self._asked is None or self._asked[0] != position:  # ask again after a change
            self._asked = (position, queries.oracle_would_stop(self.project))
        return self._asked[1]

    def frame(self) -> tuple[str, bool]:
        """The text of one refresh, and whether the search is finished."""
        now = self.store.now()
        view = queries.overview(self.project, now=now)
        head = (f"{time.strftime('%H:%M:%S')}  trials done {view.done}/"
                f"{view.max_trials or '?'}  "
                + "  ".join(f"{s.lower()} {n}" for s, n in sorted(view.counts.items())))
        why = queries.finish_reason(self.store, self.project, view, self._oracle_would_stop)
        if view.per_minute and why is None:  # (a finished search's pace only falls)
            head += f"  ({view.per_minute:.1f} trials/min"
            if view.minutes_left is not None:
                head += f", ~{view.minutes_left:.1f} min left"
            head += ")"
        lines = [head]
        if view.best is not None and view.best.score is not None:
            lines.append(f"best: trial {view.best.trial_id} score {view.best.score:.6g} "
                         f"{table_cell(view.best.values)}")
        lines.append(f"running ({len(view.running)}):")
        for trial in view.running:
            # (as `hpstore check` says: a killed worker's trial runs again when one asks)
            gone = trial.session is not None and not self.store.is_alive(trial.session,
                                                                         trial.pid)
            lines.append(f"  {trial.tuner_id}: trial {trial.trial_id} for "
                         f"{queries.running_for(trial.started_at, now):.0f}s "
                         f"{table_cell(trial.values)}"
                         + ("  (its worker is gone: interrupted, it runs again when a "
                            "worker asks)" if gone else ""))
        if why:
            lines.append(why)
        return "\n".join(terminal_text(line) for line in lines), why is not None


def main(argv: list[str] | None = None) -> int:
    parser = tool_parser("watch", help_text(__doc__, __file__))
    parser.add_argument("--interval", type=pause, default=2.0,
                        help="seconds between refreshes (default 2)")
    parser.add_argument("--once", action="store_true",
                        help="print one view and exit (a missing file is an error, not waited "
                             "for)")
    args = parser.parse_args(argv)
    if not args.once:
        wait_for(args.database, args.interval)
    store = open_search(args.database)
    watcher = Watcher(store, queries.choose_project(store, args.project))
    # (a server's database cannot be moved from under its URL: only a file is followed)
    opened = None if is_url(args.database) else store.identity()
    stamp = _stamp_of_a_copy(store, args.database)
    live = redraws(sys.stdout) and not args.once
    while True:  # Ctrl-C ends it: run_tool prints one line and exits with 130
        if stamp is not None and file_stamp(args.database) != stamp:
            # A file of an older schema is read through a copy made when it was opened:
            # once the file changed (a worker of today upgrades it at its first write),
            # it is opened again, so the view follows the search.
            stamp = _stamp_of_a_copy(store, args.database)  # (before: a later write shows)
            store.close()
            store = open_search(args.database)
            watcher = Watcher(store, queries.choose_project(store, args.project))
            stamp = stamp if getattr(store, "snapshot", False) else None
        if opened is not None and store.identity() != opened:
            # The name now names another file, or none: what is open is no longer the
            # search at that name. Follow the name, as a person watching it expects.
            store.close()
            print(terminal_text(f"{shown(args.database)} was moved, replaced or deleted; "
                                "watching the search at that name now."), flush=True)
            wait_for(args.database, args.interval)
            store = open_search(args.database)
            watcher = Watcher(store, queries.choose_project(store, args.project))
            opened = store.identity()
        try:
            text, finished = watcher.frame()
        except ServerUnavailableError:
            if args.once:
                raise
            # a server restarting or down for a while: the view waits for it, as it waits
            # for a search that does not exist yet (the workers may be waiting too)
            text, finished = terminal_text(
                f"{time.strftime('%H:%M:%S')}  {shown(args.database)} cannot be reached "
                "(the server is down or restarting). Waiting for the server; Ctrl-C to "
                "stop."), False
        if live:
            sys.stdout.write("\x1b[H\x1b[2J")  # clear the terminal for the new view
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        if args.once or finished:
            return 0
        time.sleep(args.interval)  # the refresh rate of a display, nothing waits on it


if __name__ == "__main__":
    sys.exit(run_tool(main))
