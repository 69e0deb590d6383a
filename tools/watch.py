"""hpstore watch DB: a live view of a running search, refreshed every few seconds.

Read-only: it never blocks the workers. A file that does not exist yet is waited for. Ends
with Ctrl-C (exit code 130), or by itself once the search is finished: nothing running or
waiting to run again, and either max_trials trials ended (COMPLETED, FAILED or STOPPED) or,
with no worker left alive, the search's oracle would hand out no more trials.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hpstore.errors import HpStoreError
from hpstore.inspection import choose_project, connect_readonly, run_tool, seconds, tool_parser
from hpstore.rendering import table_cell, terminal_text
from hpstore.store.sqlite.locks import Session
from hpstore.trial import TrialStatus

FINAL = TrialStatus.FINAL


def still_being_created(path: Path) -> bool:
    """Whether ``path`` is not (yet) a search: missing, empty, or a new SQLite file whose
    schema another process has not committed yet."""
    if not path.exists():
        return True
    if path.is_file() and path.stat().st_size == 0:
        return True
    if not path.is_file():
        return False
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return False
    try:
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        projects = conn.execute("SELECT count(*) FROM projects").fetchone()[0] if tables else 0
        return tables == 0 or projects == 0
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def wait_for(path: Path, interval: float) -> None:
    """Return once ``path`` holds a search; says once that it waits."""
    if not still_being_created(path):
        return
    print(terminal_text(f"Waiting for {path} to hold a search (Ctrl-C to stop)..."),
          flush=True)
    while still_being_created(path):
        time.sleep(interval)  # polling a file that other processes create


def live_workers(database: Path) -> int:
    """How many worker processes hold a liveness lock on this search right now."""
    folder = database.resolve().with_name(database.resolve().name + ".hpstore")
    alive = 0
    for lock in folder.glob("worker-*.alive"):
        token = lock.name[len("worker-"):-len(".alive")]
        alive += Session.probe(folder, token, tidy=False)
    return alive


class _Snapshot:
    """A read transaction on a read-only connection, in the shape ProjectStore.dump reads
    through (its ``read()``)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN")
        try:
            yield self.conn
        finally:
            self.conn.rollback()


def oracle_would_stop(conn: sqlite3.Connection, pid: int, name: str) -> bool | None:
    """Whether the project's oracle, asked for a trial now, would say the search is over;
    None when the file cannot tell (an oracle class of the user's own, or rows hpstore
    never writes). Asked of a copy of the project in memory: the file is only read."""
    from hpstore.objective import objective_from_config
    from hpstore.oracles import (
        BayesianOptimizationOracle,
        GridSearchOracle,
        HyperbandOracle,
        RandomSearchOracle,
    )
    from hpstore.store import ProjectStore

    classes: dict[str, Any] = {c.__name__: c for c in (
        RandomSearchOracle, GridSearchOracle, BayesianOptimizationOracle, HyperbandOracle)}
    cls_name, config, objective, max_trials, seed = conn.execute(
        "SELECT oracle_class, oracle_config, objective, max_trials, seed FROM projects "
        "WHERE project_id = ?", (pid,)).fetchone()
    cls = classes.get(cls_name)
    if cls is None:
        return None
    try:
        state = ProjectStore(_Snapshot(conn), pid, name).dump()  # type: ignore[arg-type]
        search = json.loads(config).get("search") or {}
        memory = cls(objective=objective_from_config(json.loads(objective)),
                     max_trials=max_trials, seed=seed, database=None, project_name=name,
                     **search)
    except (HpStoreError, KeyError, TypeError, ValueError):  # rows hpstore never writes
        return None
    try:
        memory.set_state(state)
        return bool(memory.create_trial("hpstore-watch").status == TrialStatus.STOPPED)
    except (HpStoreError, KeyError, TypeError, ValueError):
        return None
    finally:
        memory.close()


class Watcher:
    """Builds each refresh of one project, and decides when the search is finished."""

    def __init__(self, conn: sqlite3.Connection, pid: int, name: str, database: Path) -> None:
        self.conn, self.pid, self.name, self.database = conn, pid, name, database
        self._asked: tuple[int, bool | None] | None = None  # (data_version, answer)

    def finished(self, counts: dict[str, int], running: int, queued: int,
                 max_trials: int | None) -> str | None:
        """Why the search is finished, or None while it is not."""
        if running or queued:
            return None
        final = sum(counts.get(s, 0) for s in FINAL)
        if max_trials is not None and final >= max_trials:
            return f"The search is finished: {final} of {max_trials} trials ended."
        if not sum(counts.values()) or live_workers(self.database):
            return None
        config = json.loads(self.conn.execute(
            "SELECT oracle_config FROM projects WHERE project_id = ?", (self.pid,)).fetchone()[0])
        limit = (config.get("options") or {}).get("max_consecutive_failed_trials")
        if isinstance(limit, int) and limit > 0:
            recent = [r[0] for r in self.conn.execute(
                "SELECT x.to_status FROM transitions x JOIN trials t ON t.id = x.trial WHERE "
                "t.project_id = ? AND x.to_status IN ('COMPLETED', 'FAILED', 'STOPPED') "
                "ORDER BY x.id DESC LIMIT ?", (self.pid, limit))]
            if len(recent) == limit and set(recent) == {TrialStatus.FAILED}:
                return (f"The search stopped: its last {limit} trials failed "
                        "(max_consecutive_failed_trials).")
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        if self._asked is None or self._asked[0] != version:  # ask again only after a change
            self._asked = (version, oracle_would_stop(self.conn, self.pid, self.name))
        if self._asked[1]:
            return "The search is finished: its oracle has no more trials to hand out."
        return None

    def frame(self) -> tuple[str, bool]:
        """The text of one refresh, and whether the search is finished."""
        conn, pid = self.conn, self.pid
        max_trials, objective = conn.execute(
            "SELECT max_trials, objective FROM projects WHERE project_id = ?",
            (pid,)).fetchone()
        counts = dict(conn.execute("SELECT status, count(*) FROM trials WHERE project_id = ? "
                                   "GROUP BY status", (pid,)))
        done = sum(counts.get(s, 0) for s in FINAL)
        queued = conn.execute("SELECT count(*) FROM trials WHERE project_id = ? AND queued IS "
                              "NOT NULL", (pid,)).fetchone()[0]
        now = time.time()
        running = conn.execute(
            "SELECT trial_id, tuner_id, started_at, hp_values FROM trials WHERE project_id = ? "
            "AND status = 'RUNNING' ORDER BY tuner_id, number", (pid,)).fetchall()
        direction = json.loads(objective).get("direction", "min")
        order = "DESC" if direction == "max" else "ASC"
        best = conn.execute(
            "SELECT trial_id, score, hp_values FROM trials WHERE project_id = ? AND status = "
            f"'COMPLETED' AND score IS NOT NULL ORDER BY score {order}, number LIMIT 1",
            (pid,)).fetchone()
        rate = conn.execute(
            "SELECT count(*), min(ended_at), max(ended_at) FROM trials WHERE project_id = ? AND "
            "ended_at > ?", (pid, now - 600)).fetchone()
        head = (f"{time.strftime('%H:%M:%S')}  trials done {done}/{max_trials or '?'}  "
                + "  ".join(f"{s.lower()} {n}" for s, n in sorted(counts.items())))
        if rate[0] > 1 and rate[2] > rate[1]:
            per_minute = (rate[0] - 1) / (rate[2] - rate[1]) * 60
            head += f"  ({per_minute:.1f} trials/min"
            if max_trials:
                head += f", ~{max(0, max_trials - done) / per_minute:.1f} min left"
            head += ")"
        lines = [head]
        if best:
            lines.append(f"best: trial {best[0]} score {best[1]:.6g} "
                         f"{table_cell(json.loads(best[2]))}")
        lines.append(f"running ({len(running)}):")
        for trial_id, tuner, started, values in running:
            lines.append(f"  {tuner}: trial {trial_id} for {now - (started or now):.0f}s "
                         f"{table_cell(json.loads(values))}")
        why = self.finished(counts, len(running), queued, max_trials)
        if why:
            lines.append(why)
        return "\n".join(terminal_text(line) for line in lines), why is not None


def main(argv: list[str] | None = None) -> int:
    parser = tool_parser("watch", __doc__)
    parser.add_argument("--interval", type=seconds, default=2.0,
                        help="seconds between refreshes (default 2)")
    parser.add_argument("--once", action="store_true",
                        help="print one view and exit (a missing file is an error, not waited "
                             "for)")
    args = parser.parse_args(argv)
    path = Path(args.database).expanduser()
    if not args.once:
        wait_for(path, args.interval)
    conn = connect_readonly(path)
    pid, name = choose_project(conn, args.project)
    watcher = Watcher(conn, pid, name, path)
    live = sys.stdout.isatty() and not args.once
    while True:  # Ctrl-C ends it: run_tool prints one line and exits with 130
        text, finished = watcher.frame()
        if live:
            sys.stdout.write("\x1b[H\x1b[2J")  # clear the terminal for the new view
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        if args.once or finished:
            return 0
        time.sleep(args.interval)  # the refresh rate of a display, nothing waits on it


if __name__ == "__main__":
    sys.exit(run_tool(main))
