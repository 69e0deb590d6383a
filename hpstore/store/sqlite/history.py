"""What a stopping rule may know of the other trials, read inside the transaction that
records the values it decides on (see :class:`hpstore.stopping.History`).

Each question is one index probe per trial of the project (the observations are indexed by
trial, run, metric and step), so a decision costs about as much at trial 1,000 as the
values it reads, and never a scan of every value ever reported. A retired trial is
not among the others: its values were taken out of the results.
"""

from __future__ import annotations

import sqlite3

from hpstore.store.rows import from_db_float, mean_of_stored


class SQLiteHistory:
    """The other trials of one project, for one metric, seen from one transaction."""

    def __init__(self, conn: sqlite3.Connection, project_id: int, metric: str,
                 trial_key: int) -> None:
        self.conn, self.project_id, self.metric, self.trial_key = (
            conn, project_id, metric, trial_key)

    def completed_count(self) -> int:
        return int(self.conn.execute(
            "SELECT count(*) FROM trials WHERE project_id = ? AND status = 'COMPLETED' AND "
            "retired_at IS NULL",
            (self.project_id,)).fetchone()[0])

    def completed_values_at(self, step: int) -> list[float]:
        rows = self.conn.execute(
            "SELECT (SELECT max(o.value) FROM observations o WHERE o.trial = t.id AND "
            "o.run = t.run_count AND o.metric = ? AND o.step = ?), "
            "(SELECT count(*) FROM observations o WHERE o.trial = t.id AND o.run = "
            "t.run_count AND o.metric = ? AND o.step = ?), t.id, t.run_count FROM trials t "
            "WHERE t.project_id = ? AND t.status = 'COMPLETED' AND t.retired_at IS NULL AND "
            "t.id <> ?",
            (self.metric, step, self.metric, step, self.project_id, self.trial_key))
        # a trial without the step is absent
        return [self._mean(value, count, key, run, step) for value, count, key, run in rows
                if count]

    def values_from(self, step: int) -> list[float]:
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
            found.append(self._mean(value, count, key, run, first))
        return found

    def _mean(self, value: float | None, count: int, key: int, run: int, step: int) -> float:
        """The step's mean from its one value, or (several reported) from them all."""
        if count == 1:
            return from_db_float(value)
        return mean_of_stored([v for (v,) in self.conn.execute(
            "SELECT value FROM observations WHERE trial = ? AND run = ? AND metric = ? AND "
            "step = ?", (key, run, self.metric, step))])
