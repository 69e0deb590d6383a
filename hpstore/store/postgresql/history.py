"""What a stopping rule may know of the other trials of a PostgreSQL project, read inside the
transaction that records the values it decides on (see :class:`hpstore.stopping.History`).

The same answers as the SQLite engine's (hpstore/store/sqlite/history.py), each question in
one statement: a lateral probe per trial into the observations index (trial, run, metric,
step), so a decision costs one round trip and about as much at trial 1,000 as the values
it reads, never a scan of every value reported. A retired trial is not among the others:
its values were taken out of the results. Trials come in the order they were made.
"""

from __future__ import annotations

from typing import Any

from hpstore.store.rows import from_db_float, mean_of_stored

# A step's one value, or (reported several times) all its values: see step_mean.
_STEP_VALUES = (
    "SELECT min(o.value) AS one, CASE WHEN count(*) > 1 THEN array_agg(o.value) END AS vals, "
    "count(*) AS n FROM observations AS o WHERE o.trial = t.id AND o.run = t.run_count AND "
    "o.metric = %s AND o.step = ")

# Each other COMPLETED trial's values at one step of its current run, for the trials that
# reported that step.
_COMPLETED_AT = (
    f"SELECT s.one, s.vals FROM trials AS t CROSS JOIN LATERAL ({_STEP_VALUES}%s) AS s "
    "WHERE t.project_id = %s AND t.status = 'COMPLETED' AND t.retired_at IS NULL AND "
    "t.id <> %s AND s.n > 0 ORDER BY t.id")

# For each other trial of any status: its values at the first step at or after the one
# given that it reported in its current run.
_VALUES_FROM = (
    "SELECT s.one, s.vals FROM trials AS t CROSS JOIN LATERAL (SELECT min(o.step) AS first "
    "FROM observations AS o WHERE o.trial = t.id AND o.run = t.run_count AND o.metric = %s "
    f"AND o.step >= %s) AS f CROSS JOIN LATERAL ({_STEP_VALUES}f.first) AS s WHERE "
    "t.project_id = %s AND t.retired_at IS NULL AND t.id <> %s AND f.first IS NOT NULL "
    "ORDER BY t.id")


def step_mean(one: float | None, several: list[float | None] | None) -> float:
    """A step's mean from its one value, or from all of them when it has several."""
    return from_db_float(one) if several is None else mean_of_stored(several)


class PostgresHistory:
    """The other trials of one project, for one metric, seen from one transaction."""

    def __init__(self, conn: Any, project_id: int, metric: str, trial_key: int) -> None:
        self.conn, self.project_id, self.metric, self.trial_key = (
            conn, project_id, metric, trial_key)

    def completed_count(self) -> int:
        return int(self.conn.execute(
            "SELECT count(*) FROM trials WHERE project_id = %s AND status = 'COMPLETED' AND "
            "retired_at IS NULL", (self.project_id,)).fetchone()[0])

    def completed_values_at(self, step: int) -> list[float]:
        return [step_mean(*row) for row in self.conn.execute(
            _COMPLETED_AT, (self.metric, int(step), self.project_id, self.trial_key))]

    def values_from(self, step: int) -> list[float]:
        return [step_mean(*row) for row in self.conn.execute(
            _VALUES_FROM, (self.metric, int(step), self.metric, self.project_id,
                           self.trial_key))]
