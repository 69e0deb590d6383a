"""What a stopping rule may know of the other trials, read inside the transaction that
records the values it decides on (see :class:`hpstore.stopping.History`).

Read afresh, each question is one index probe per trial of the project (the observations
are indexed by trial, run, metric and step), never a scan of every value ever reported;
what a process keeps from one decision to the next (:class:`CompletedValues`,
:class:`RungValues`) makes a decision cost the same at any size. A retired trial is not
among the others: its values were taken out of the results.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from hpstore.store.rows import from_db_float, mean_of_stored

#: values kept at most by a process for one metric (about 80 bytes each): past it, the
#: steps asked about least recently are read again when next asked
KEPT_VALUES = 250_000


class _KeptByStep:
    """What a process keeps of the other trials for a rule, one table a step (or rung)
    asked about, the tables asked about least recently dropped past ``KEPT_VALUES``."""

    def __init__(self) -> None:
        #: step -> key -> what is kept of that trial there, the step asked last at the end
        self.tables: dict[int, dict[int, Any]] = {}
        self.kept = 0  # entries in ``tables``

    def _recent(self, step: int, read: Callable[[], dict[int, Any]]) -> dict[int, Any]:
        """The table of ``step``, ``read()`` once if not kept, now the most recently asked.
        (Taken out, then put back last and counted again: a Ctrl-C in between leaves the
        count right.)"""
        table = self.tables.pop(step, None)
        if table is not None:
            self.kept -= len(table)
        else:
            table = read()
        while self.tables and self.kept + len(table) > KEPT_VALUES:
            self.kept -= len(self.tables.pop(next(iter(self.tables))))
        self.tables[step] = table
        self.kept += len(table)
        return table

    def _set(self, table: dict[int, Any], key: int, entry: Any) -> None:
        """``entry`` for ``key`` in ``table`` (None: none), counted."""
        had = table.pop(key, None) is not None
        if entry is not None:
            table[key] = entry
        self.kept += (entry is not None) - had

    def _drop(self, key: int) -> None:
        for table in self.tables.values():
            self._set(table, key, None)

    @staticmethod
    def _row(conn: sqlite3.Connection, table: str, row_id: int) -> tuple[Any, Any]:
        """The trial and time of row ``row_id`` of the status log or of the reported values
        (``table``, one of those two names, never a user's): what tells it from another
        row given its id later."""
        sql = ("SELECT trial, at FROM transitions WHERE id = ?" if table == "transitions"
               else "SELECT trial, at FROM observations WHERE id = ?")
        row = conn.execute(sql, (row_id,)).fetchone()
        return (None, None) if row is None else (row[0], row[1])


class CompletedValues(_KeptByStep):
    """The COMPLETED trials (not retired) of one project, and their values of one metric
    at the steps a rule asked about, kept by one process from one decision to the next.

    A rule comparing a trial with the completed ones asks at every report: read afresh,
    each question cost one pair of index probes per completed trial, inside the write
    transaction (21 ms a report at 4,000 trials, while every other worker waited, and a
    search's reports cost the square of its trials). A completed trial's values never
    change, and every change of a trial's status or retirement adds a row to the status
    log: each decision reads only the rows added since the last, and the values of the
    trials they name. What the log's new rows cannot tell is read again whole: the project
    made again (its creation time), its trials loaded again by ``set_state`` (its space
    version, which a load moves), the log's last row seen gone or another (rows deleted,
    another project's with it, whose ids the next rows take again), or a count of the
    completed trials that differs, taken once the log has grown by as many rows as there
    are completed trials since the last count (a constant cost a report, on average).
    Values are kept for the steps asked about most recently, ``KEPT_VALUES`` at most."""

    def __init__(self) -> None:
        super().__init__()  # (tables: step -> key -> its value there)
        #: (the project's created_at and space version, the log's last id, that row's
        #: trial and time)
        self.stamp: tuple[Any, ...] | None = None
        self.counted_at = 0  # the log's last id when the completed trials were last counted
        self.members: dict[int, tuple[int, bool]] = {}  # completed key -> (run, retired)

    def refresh(self, history: SQLiteHistory) -> None:
        """Bring what is kept up to the transaction of ``history``."""
        conn, project_id = history.conn, history.project_id
        stamp = self.stamp
        seen = -1 if stamp is None else stamp[2]
        created, version, last, trial, at = conn.execute(
            "SELECT (SELECT created_at FROM projects WHERE project_id = ?), "
            "(SELECT space_version FROM projects WHERE project_id = ?), "
            "(SELECT max(id) FROM transitions), (SELECT trial FROM transitions WHERE id = ?), "
            "(SELECT at FROM transitions WHERE id = ?)",
            (project_id, project_id, seen, seen)).fetchone()
        last = last or 0
        if stamp is not None and stamp[:2] == (created, version) and (
                last >= stamp[2]) and (stamp[2] == 0 or stamp[3:] == (trial, at)):
            # (the log's new rows by the range of their ids, then each trial they name:
            # joined in one statement, or asked for distinct trials, SQLite read the whole
            # log's index or every trial of the project instead)
            changed = {key for (key,) in conn.execute(
                "SELECT trial FROM transitions WHERE id > ?", (stamp[2],)).fetchall()}
            for key in changed:
                row = conn.execute(
                    "SELECT status, run_count, retired_at IS NOT NULL, project_id FROM trials "
                    "WHERE id = ?", (key,)).fetchone()
                if row is None or row[3] == project_id:  # (not another project's trial)
                    self._take(history, key, row)
            self.stamp = (created, version, last, *self._row(conn, "transitions", last))
            if last - self.counted_at < len(self.members) or (
                    self._counted(history) == len(self.members)):
                return
        # (every statement read whole before its rows are used, and what is kept changed
        # only once they are: a Ctrl-C or SIGTERM landing in between leaves neither a
        # statement open on the connection, which stopped the log's fold as the search
        # closed, nor half a read kept)
        self.stamp = None
        members = {key: (run, bool(retired)) for key, run, retired in conn.execute(
            "SELECT id, run_count, retired_at IS NOT NULL FROM trials WHERE project_id = ? "
            "AND status = 'COMPLETED'", (project_id,)).fetchall()}
        self.members, self.tables, self.kept = members, {}, 0
        self.stamp = (created, version, last, *self._row(conn, "transitions", last))
        self.counted_at = last

    def _counted(self, history: SQLiteHistory) -> int:
        """The completed trials in the store (retired ones too), counted on the index."""
        self.counted_at = self.stamp[2] if self.stamp is not None else 0
        return int(history.conn.execute(
            "SELECT count(*) FROM trials WHERE project_id = ? AND status = 'COMPLETED'",
            (history.project_id,)).fetchone()[0])

    def _take(self, history: SQLiteHistory, key: int, row: Any) -> None:
        """The trial ``key`` as it stands now (``row``: its status, run and retirement)."""
        if row is None or row[0] != "COMPLETED":
            self.members.pop(key, None)
            self._drop(key)
            return
        run, retired = int(row[1]), bool(row[2])
        if self.members.get(key, (None,))[0] != run:
            for step, values in self.tables.items():
                self._set(values, key, history.value_of(key, run, step))
        self.members[key] = (run, retired)

    def count(self) -> int:
        return sum(1 for _, retired in self.members.values() if not retired)

    def values_at(self, history: SQLiteHistory, step: int) -> list[float]:
        def read() -> dict[int, Any]:  # asked for the first time: once for every member
            values = {}
            for value, count, key, run in history.conn.execute(
                    "SELECT (SELECT max(o.value) FROM observations o WHERE o.trial = t.id AND "
                    "o.run = t.run_count AND o.metric = ? AND o.step = ?), "
                    "(SELECT count(*) FROM observations o WHERE o.trial = t.id AND o.run = "
                    "t.run_count AND o.metric = ? AND o.step = ?), t.id, t.run_count "
                    "FROM trials t WHERE t.project_id = ? AND t.status = 'COMPLETED'",
                    (history.metric, step, history.metric, step, history.project_id)
                    ).fetchall():
                if count:  # (a trial without the step is absent)
                    values[key] = history.mean(value, count, key, run, step)
            return values

        members = self.members
        return [v for key, v in self._recent(step, read).items()
                if key != history.trial_key and not members.get(key, (0, True))[1]]


class RungValues(_KeptByStep):
    """Every trial's (not retired) value of one metric at the first step it reported at or
    past each rung a rule asked about (successive halving), in its current run, kept by
    one process from one decision to the next.

    Read afresh, each rung a report first reached cost a probe per trial of the project
    inside the write transaction (283 ms at 20,000 trials). A running trial's first value
    past a rung appears when it reports, so what is kept follows two logs by the range of
    their ids: the status log (a trial made, run again, retired or restored) and the
    metric values themselves (each report). What neither can tell is read again whole, as
    for :class:`CompletedValues`: the project made again or loaded again, either log's
    last row seen gone or another (rows deleted, their ids taken again)."""

    def __init__(self) -> None:
        super().__init__()  # (tables: rung -> key -> (its first step past it, its value))
        self.stamp: tuple[Any, ...] | None = None
        self.trials: dict[int, tuple[int, bool]] = {}  # key -> (current run, retired)

    def refresh(self, history: SQLiteHistory) -> None:
        """Bring what is kept up to the transaction of ``history``."""
        conn, project_id, stamp = history.conn, history.project_id, self.stamp
        log_seen, obs_seen = (-1, -1) if stamp is None else (stamp[2], stamp[5])
        now = conn.execute(
            "SELECT (SELECT created_at FROM projects WHERE project_id = ?), (SELECT "
            "space_version FROM projects WHERE project_id = ?), (SELECT max(id) FROM "
            "transitions), (SELECT trial FROM transitions WHERE id = ?), (SELECT at FROM "
            "transitions WHERE id = ?), (SELECT max(id) FROM observations), (SELECT trial "
            "FROM observations WHERE id = ?), (SELECT at FROM observations WHERE id = ?)",
            (project_id, project_id, log_seen, log_seen, obs_seen, obs_seen)).fetchone()
        created, version, log_last, obs_last = now[0], now[1], now[2] or 0, now[5] or 0
        if (stamp is not None and stamp[:2] == (created, version) and log_last >= stamp[2]
                and obs_last >= stamp[5] and (stamp[2] == 0 or stamp[3:5] == now[3:5])
                and (stamp[5] == 0 or stamp[6:] == now[6:])):
            for key in {k for (k,) in conn.execute(  # (ids' range: see CompletedValues)
                    "SELECT trial FROM transitions WHERE id > ?", (stamp[2],)).fetchall()}:
                row = conn.execute("SELECT run_count, retired_at IS NOT NULL, project_id "
                                   "FROM trials WHERE id = ?", (key,)).fetchone()
                if row is None or row[2] != project_id:
                    self.trials.pop(key, None)
                    self._drop(key)
                    continue
                before = self.trials.get(key)
                self.trials[key] = (int(row[0]), bool(row[1]))
                if before is None or before[0] != row[0]:
                    for rung in self.tables:
                        self._probe(history, key, int(row[0]), rung)
            for key, run, step in conn.execute(
                    "SELECT trial, run, step FROM observations WHERE id > ? AND metric = ?",
                    (stamp[5], history.metric)).fetchall():
                known = self.trials.get(key)
                if known is None or known[0] != run:
                    continue  # another project's trial, or a run since replaced
                for rung, firsts in self.tables.items():
                    held = firsts.get(key)
                    if step >= rung and (held is None or step <= held[0]):
                        self._probe(history, key, run, rung)
            self.stamp = (created, version, log_last, *self._row(conn, "transitions", log_last),
                          obs_last, *self._row(conn, "observations", obs_last))
            return
        self.stamp = None
        trials = {key: (run, bool(retired)) for key, run, retired in conn.execute(
            "SELECT id, run_count, retired_at IS NOT NULL FROM trials WHERE project_id = ?",
            (project_id,)).fetchall()}
        self.trials, self.tables, self.kept = trials, {}, 0
        self.stamp = (created, version, log_last, *self._row(conn, "transitions", log_last),
                      obs_last, *self._row(conn, "observations", obs_last))

    def _probe(self, history: SQLiteHistory, key: int, run: int, rung: int) -> None:
        """Read again the trial ``key``'s first value at or past ``rung`` in run ``run``."""
        (first,) = history.conn.execute(
            "SELECT min(step) FROM observations WHERE trial = ? AND run = ? AND metric = ? "
            "AND step >= ?", (key, run, history.metric, rung)).fetchone()
        value = None if first is None else history.value_of(key, run, first)
        self._set(self.tables[rung], key, None if value is None else (int(first), value))

    def values_from(self, history: SQLiteHistory, rung: int) -> list[float]:
        def read() -> dict[int, Any]:  # asked for the first time: once for every trial
            firsts = {}
            for first, key, run in history.conn.execute(
                    "SELECT (SELECT min(o.step) FROM observations o WHERE o.trial = t.id AND "
                    "o.run = t.run_count AND o.metric = ? AND o.step >= ?), t.id, "
                    "t.run_count FROM trials t WHERE t.project_id = ?",
                    (history.metric, rung, history.project_id)).fetchall():
                if first is not None:
                    value = history.value_of(key, run, first)
                    if value is not None:
                        firsts[key] = (int(first), value)
            return firsts

        trials = self.trials
        return [value for key, (_, value) in self._recent(rung, read).items()
                if key != history.trial_key and not trials.get(key, (0, True))[1]]


class SQLiteHistory:
    """The other trials of one project, for one metric, seen from one transaction; with
    ``kept``, the completed ones as a :class:`CompletedValues` the process keeps."""

    def __init__(self, conn: sqlite3.Connection, project_id: int, metric: str,
                 trial_key: int, kept: CompletedValues | None = None,
                 rungs: RungValues | None = None) -> None:
        self.conn, self.project_id, self.metric, self.trial_key = (
            conn, project_id, metric, trial_key)
        self._kept, self._fresh = kept, False
        self._rungs, self._rungs_fresh = rungs, False

    def _completed(self) -> CompletedValues:
        kept = self._kept if self._kept is not None else CompletedValues()
        if not self._fresh:
            kept.refresh(self)
            self._kept, self._fresh = kept, True
        return kept

    def completed_count(self) -> int:
        return self._completed().count()

    def completed_values_at(self, step: int) -> list[float]:
        return self._completed().values_at(self, step)

    def value_of(self, key: int, run: int, step: int) -> float | None:
        """The trial ``key``'s value at ``step`` of its run ``run``; None if not reported."""
        value, count = self.conn.execute(
            "SELECT max(value), count(*) FROM observations WHERE trial = ? AND run = ? "
            "AND metric = ? AND step = ?", (key, run, self.metric, step)).fetchone()
        return self.mean(value, count, key, run, step) if count else None

    def values_from(self, step: int) -> list[float]:
        if self._rungs is not None:
            if not self._rungs_fresh:
                self._rungs.refresh(self)
                self._rungs_fresh = True
            return self._rungs.values_from(self, step)
        rows = self.conn.execute(
            "SELECT (SELECT min(o.step) FROM observations o WHERE o.trial = t.id AND "
            "o.run = t.run_count AND o.metric = ? AND o.step >= ?), t.id, t.run_count "
            "FROM trials t WHERE t.project_id = ? AND t.retired_at IS NULL AND t.id <> ?",
            (self.metric, step, self.project_id, self.trial_key)).fetchall()
        found = []
        for first, key, run in rows:
            if first is None:
                continue
            value, count = self.conn.execute(
                "SELECT max(value), count(*) FROM observations WHERE trial = ? AND run = ? "
                "AND metric = ? AND step = ?", (key, run, self.metric, first)).fetchone()
            found.append(self.mean(value, count, key, run, first))
        return found

    def mean(self, value: float | None, count: int, key: int, run: int, step: int) -> float:
        """The step's mean from its one value, or (several reported) from them all."""
        if count == 1:
            return from_db_float(value)
        return mean_of_stored([v for (v,) in self.conn.execute(
            "SELECT value FROM observations WHERE trial = ? AND run = ? AND metric = ? AND "
            "step = ?", (key, run, self.metric, step)).fetchall()])
