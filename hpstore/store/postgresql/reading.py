"""Reads of one PostgreSQL project: the trials, their metrics and their status log, as records.

The same reads as the SQLite engine's (hpstore/store/sqlite/reading.py). JSON columns are
read as their text (``::text``), exactly as written, and decoded only when a record's
values are asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hpstore.errors import TrialNotFoundError
from hpstore.store.records import (
    Observation,
    RunRecord,
    Transition,
    TrialRecord,
    fits_int64,
)
from hpstore.store.rows import from_db_float, observation, transition, trial_record
from hpstore.store.runlog import RUNS, STARTS, kept_starts, run_records

if TYPE_CHECKING:
    from hpstore.errors import ProjectRemovedError

#: the columns of a trial in TRIAL_FIELDS order (hpstore.store.rows), JSON as its text
TRIAL_COLUMNS = ("id, number, trial_id, status, hp_values::text, values_key, score, best_step, "
                 "tuner_id, session, message, run_count, invalid_runs, interruptions, queued, "
                 "created_at, started_at, ended_at, pid, changed_at, origin, note, retired_at")
#: How many of the newest rows of the status log a question about a project's newest row
#: walks back through before it reads the project's own rows by index (as the SQLite
#: engine's reading.WALKED)
WALKED = 5_000
# (a retired trial is ranked by no tool: by score, it comes after every other trial)
_ORDERS = {"number": "number", "score": "retired_at IS NOT NULL, score IS NULL, score",
           "ended": "ended_at"}
_DIRECTIONS = {False: "ASC", True: "DESC"}
# the runs of the status log (see runlog.py): their starts, then the runs of those kept
_STARTS = STARTS % {"p": "%s", "starts": "transitions AS s JOIN trials AS t ON t.id = s.trial"}
_RUNS = RUNS % {"kept": "s.id = ANY(%s)", "materialized": "MATERIALIZED"}
_SELECT = f"SELECT {TRIAL_COLUMNS} FROM trials WHERE project_id = %s"
# A trial and its current run's metric values, in one statement (one round trip, one
# snapshot): the values as arrays in the order reported (an array keeps a float8's
# infinities, which JSON would turn to text).
_WITH_OBSERVATIONS = (
    f"SELECT {TRIAL_COLUMNS}, o.* FROM trials LEFT JOIN LATERAL (SELECT array_agg(metric "
    "ORDER BY id), array_agg(direction ORDER BY id), array_agg(step ORDER BY id), "
    "array_agg(value ORDER BY id), array_agg(at ORDER BY id) FROM observations WHERE "
    "trial = trials.id AND run = trials.run_count) AS o ON true "
    "WHERE project_id = %s AND trial_id = %s")


class ReadingMixin:
    """The reads of :class:`hpstore.store.postgresql.project.PostgresProject`."""

    db: Any
    project_id: int
    name: str

    if TYPE_CHECKING:  # provided by the project class
        def removed(self) -> ProjectRemovedError: ...
        def check_exists(self, conn: Any = None) -> None: ...
        def _deferred_look_up(self, key: str) -> bool: ...

    def trial(self, trial_id: str) -> TrialRecord:
        """Raises TrialNotFoundError (no such trial) or ProjectRemovedError."""
        # (an id with a NUL, which no text column holds, names no trial: not a query that
        # fails as a write of it would)
        rows = [] if "\x00" in str(trial_id) else self.db.query(
            _SELECT + " AND trial_id = %s", (self.project_id, str(trial_id)))
        if not rows:
            self.check_exists()
            raise TrialNotFoundError(
                f"No trial {trial_id!r} in project {self.name!r}; trial ids are strings "
                "such as those in `oracle.trials`.")
        return trial_record(rows[0])

    def trial_by_number(self, number: int) -> TrialRecord:
        if not fits_int64(int(number)):  # no trial has it (nor can hold it)
            raise TrialNotFoundError(f"No trial number {number} in project {self.name!r}.")
        rows = self.db.query(_SELECT + " AND number = %s", (self.project_id, int(number)))
        if not rows:
            raise TrialNotFoundError(f"No trial number {number} in project {self.name!r}.")
        return trial_record(rows[0])

    def trials(self, *, statuses: Sequence[str] | None = None, order: str = "number",
               descending: bool = False, limit: int | None = None,
               offset: int = 0) -> list[TrialRecord]:
        """The trials, filtered by status, ordered by number, score or end time, then
        number (each a fixed phrase; the statuses are bound parameters).

        Raises:
            ValueError: an unknown order.
        """
        if order not in _ORDERS:
            raise ValueError(f"order must be one of {sorted(_ORDERS)}, received {order!r}.")
        sql = _SELECT + " AND (%s::text[] IS NULL OR status = ANY(%s::text[])) ORDER BY "
        sql += _ORDERS[order] + " " + _DIRECTIONS[bool(descending)]
        sql += ", number LIMIT %s OFFSET %s"
        wanted = list(statuses) if statuses else None
        return [trial_record(r) for r in self.db.query(
            sql, (self.project_id, wanted, wanted, limit, int(offset)))]

    def trials_by_id(self, trial_ids: Sequence[str]) -> dict[str, TrialRecord]:
        """The trials among ``trial_ids`` that exist, by id."""
        ids = list(dict.fromkeys(str(t) for t in trial_ids if "\x00" not in str(t)))
        records = [trial_record(r) for r in self.db.query(
            _SELECT + " AND trial_id = ANY(%s)", (self.project_id, ids))]
        return {r.trial_id: r for r in records}

    def trials_by_number(self, numbers: Sequence[int]) -> dict[int, TrialRecord]:
        """The trials among ``numbers`` that exist, by number."""
        wanted = list(dict.fromkeys(int(n) for n in numbers
                                        if fits_int64(int(n))))
        records = [trial_record(r) for r in self.db.query(
            _SELECT + " AND number = ANY(%s)", (self.project_id, wanted))]
        return {r.number: r for r in records}

    def score_line(self) -> list[tuple[int, str, str, float | None]]:
        """(number, trial_id, status, score) of every trial, by number. A retired trial's
        score is None."""
        return [(n, t, s, sc) for n, t, s, sc in self.db.query(
            "SELECT number, trial_id, status, CASE WHEN retired_at IS NULL THEN score END "
            "FROM trials WHERE project_id = %s ORDER BY number", (self.project_id,))]

    def last_activity(self) -> float | None:
        """The time of the last status change or reported value, or None."""
        rows = self.db.query(
            "SELECT greatest((SELECT max(s.at) FROM transitions AS s JOIN trials AS t ON "
            "t.id = s.trial WHERE t.project_id = %s), (SELECT max(o.at) FROM observations AS "
            "o JOIN trials AS t ON t.id = o.trial WHERE t.project_id = %s))",
            (self.project_id, self.project_id))
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    def trial_ids(self) -> list[str]:
        return [r[0] for r in self.db.query(
            "SELECT trial_id FROM trials WHERE project_id = %s ORDER BY number",
            (self.project_id,))]

    def has_trial(self, trial_id: str) -> bool:
        return bool(self.db.query("SELECT 1 FROM trials WHERE project_id = %s AND trial_id = %s",
                                  (self.project_id, str(trial_id))))

    def count(self) -> int:
        return int(self.db.query("SELECT count(*) FROM trials WHERE project_id = %s",
                                 (self.project_id,))[0][0])

    def counts_by_status(self) -> dict[str, int]:
        rows = self.db.query("SELECT status, count(*) FROM trials WHERE project_id = %s "
                             "GROUP BY status", (self.project_id,))
        return {s: int(n) for s, n in rows}

    def has_values(self, key: str) -> bool:
        if self._deferred_look_up(key):
            # asked by a decision in the making: its insert looks up every key asked
            # (see PostgresProject.decide), saving a round trip under the decision lock
            return False
        return bool(self.db.query(
            "SELECT 1 FROM trials WHERE project_id = %s AND values_key = %s",
            (self.project_id, key)))

    def values_keys(self) -> set[str]:
        return {r[0] for r in self.db.query(
            "SELECT values_key FROM trials WHERE project_id = %s", (self.project_id,))}

    def best(self, n: int, direction: str) -> list[TrialRecord]:
        """The ``n`` best COMPLETED trials not retired, padded with the other trials not
        retired in creation order."""
        order = " ORDER BY score DESC, number" if direction == "max" else " ORDER BY score, number"
        found = [trial_record(r) for r in self.db.query(
            _SELECT + " AND status = 'COMPLETED' AND score IS NOT NULL AND retired_at IS NULL"
            + order + " LIMIT %s", (self.project_id, n))]
        if len(found) < n:
            found += [trial_record(r) for r in self.db.query(
                _SELECT + " AND NOT (status = 'COMPLETED' AND score IS NOT NULL) AND "
                "retired_at IS NULL ORDER BY number LIMIT %s", (self.project_id, n - len(found)))]
        return found

    def completed(self) -> list[tuple[str, float]]:
        """(values JSON, score) of every scored COMPLETED trial not retired, in creation
        order."""
        return [(v, s) for v, s in self.db.query(
            "SELECT hp_values::text, score FROM trials WHERE project_id = %s AND status = "
            "'COMPLETED' AND score IS NOT NULL AND retired_at IS NULL ORDER BY number",
            (self.project_id,))]

    def scores(self, trial_ids: list[str]) -> list[tuple[str, float]]:
        """(trial_id, score) of the scored COMPLETED trials not retired among
        ``trial_ids``, in creation order."""
        return [(t, s) for t, s in self.db.query(
            "SELECT trial_id, score FROM trials WHERE project_id = %s AND status = 'COMPLETED'"
            " AND score IS NOT NULL AND retired_at IS NULL AND trial_id = ANY(%s) "
            "ORDER BY number", (self.project_id, [str(t) for t in trial_ids]))]

    def observations(self, trial: TrialRecord, *, every_run: bool = False
                     ) -> list[Observation]:
        """The trial's metric values in the order reported: its current run's, or every
        run's."""
        rows = self.db.query(
            "SELECT run, metric, direction, step, value, at FROM observations WHERE trial = %s "
            "AND (%s OR run = %s) ORDER BY id", (trial.key, every_run, trial.run))
        return [observation(r, m, d, s, v, at) for r, m, d, s, v, at in rows]

    def run_started(self, trial: TrialRecord, at: float) -> bool:
        """Whether the trial's status log holds the start of a run of it at ``at``: a run
        since handed on to another worker, not one of a trial lost (with the store's last
        commits, or a restored copy) and created again under the same id."""
        return bool(self.db.query(
            "SELECT EXISTS (SELECT 1 FROM transitions WHERE trial = %s AND to_status = "
            "'RUNNING' AND at = %s::float8)", (trial.key, at))[0][0])

    def trial_with_observations(self, trial_id: str) -> tuple[TrialRecord, list[Observation]]:
        """Raises TrialNotFoundError (no such trial) or ProjectRemovedError."""
        rows = self.db.query(_WITH_OBSERVATIONS, (self.project_id, str(trial_id)))
        if not rows:
            return self.trial(trial_id), []  # raises TrialNotFoundError, in its words
        row = rows[0]
        record = trial_record(row[:-5])
        metrics, directions, steps, values, ats = row[-5:]
        if metrics is None:  # nothing reported in this run
            return record, []
        return record, [observation(record.run, m, d, s, v, a)
                        for m, d, s, v, a in zip(metrics, directions, steps, values, ats)]

    def observations_of(self, trials: Sequence[TrialRecord], metric: str
                        ) -> dict[str, list[tuple[int, float]]]:
        """(step, value) of ``metric`` in each trial's current run, by trial id."""
        by_key = {t.key: t for t in trials}
        out: dict[str, list[tuple[int, float]]] = {t.trial_id: [] for t in trials}
        for key, run, step, value in self.db.query(
                "SELECT trial, run, step, value FROM observations WHERE metric = %s AND "
                "trial = ANY(%s) ORDER BY id", (metric, list(by_key))):
            trial = by_key[key]
            if run == trial.run:
                out[trial.trial_id].append((step, from_db_float(value)))
        return out

    def transitions(self, *, trial_id: str | None = None, tuner_id: str | None = None,
                    after: int = 0, limit: int | None = None, last: bool = False
                    ) -> list[Transition]:
        """The status log, oldest first: of one trial or one worker, after the entry
        numbered ``after``; ``limit`` with ``last`` keeps the newest entries."""
        sql = ("SELECT s.id, t.trial_id, s.from_status, s.to_status, s.at, s.tuner_id, s.pid, "
               "s.message FROM transitions AS s JOIN trials AS t ON t.id = s.trial WHERE "
               "t.project_id = %s AND s.id > %s AND (%s::text IS NULL OR t.trial_id = %s) AND "
               "(%s::text IS NULL OR s.tuner_id = %s) ORDER BY s.id ")
        sql += ("DESC" if last else "ASC") + " LIMIT %s"
        trial = None if trial_id is None else str(trial_id)
        found = [transition(*r) for r in self.db.query(
            sql, (self.project_id, int(after), trial, trial, tuner_id, tuner_id,
                  None if limit is None else int(limit)))]
        return found[::-1] if last else found

    def runs(self, limit: int) -> tuple[list[RunRecord], int]:
        """See :meth:`hpstore.store.contract.ProjectStore.runs`."""
        starts = self.db.query(_STARTS, (self.project_id,))
        kept = kept_starts(starts, int(limit))
        rows = self.db.query(_RUNS, (kept,)) if kept else []
        return run_records(rows, len(starts), int(limit)), len(starts)

    def steps_reported(self, metric: str, *, status: str | None = None
                       ) -> dict[str, tuple[int, int]]:
        """How many steps of ``metric`` each trial (of ``status``, else every one) reported
        in its current run, and the last of them, by id."""
        return {t: (int(n), int(last)) for t, n, last in self.db.query(
            "SELECT t.trial_id, count(DISTINCT o.step), max(o.step) FROM trials AS t JOIN "
            "observations AS o ON o.trial = t.id AND o.run = t.run_count WHERE "
            "t.project_id = %s AND (%s::text IS NULL OR t.status = %s) AND o.metric = %s "
            "GROUP BY t.id, t.trial_id", (self.project_id, status, status, metric))}

    def most_steps_reported(self, metric: str, status: str) -> int:
        """See :meth:`hpstore.store.contract.ProjectStore.most_steps_reported`."""
        return int(self.db.query(
            "SELECT coalesce(max(n), 0) FROM (SELECT count(DISTINCT o.step) AS n FROM trials "
            "AS t JOIN observations AS o ON o.trial = t.id AND o.run = t.run_count WHERE "
            "t.project_id = %s AND t.status = %s AND o.metric = %s GROUP BY t.id) AS c",
            (self.project_id, status, metric))[0][0])

    def last_transition(self) -> int:
        """The number of the newest status-log entry (0 when there is none)."""
        # The log walked backwards by its key through its newest rows until one of this
        # project's, then (none there: another project wrote them) the project's own by
        # index: max() over the join read the whole log, at every refresh of `hpstore
        # watch` (0.1 s at 100,000 trials, against 5 ms).
        rows = self.db.query(
            "SELECT s.id FROM transitions AS s JOIN trials AS t ON t.id = s.trial WHERE "
            "t.project_id = %s AND s.id > (SELECT max(id) FROM transitions) - %s "
            "ORDER BY s.id DESC LIMIT 1", (self.project_id, WALKED)) or self.db.query(
            "SELECT coalesce(max(s.id), 0) FROM transitions AS s JOIN trials AS t ON t.id = "
            "s.trial WHERE t.project_id = %s", (self.project_id,))
        return int(rows[0][0])

    def observations_since(self, after: int = 0, *, limit: int | None = None
                           ) -> list[tuple[int, str, Observation]]:
        """(row id, trial_id, observation) of the values reported after row ``after``.

        Ids come from a sequence, which alone would not make them visible in order (a
        transaction may take a lower id and commit later); the values of one project are
        reported under its "observe" lock, taken before the ids, and released at commit,
        so within a project ids become visible in the order they grow.
        """
        return [(i, trial_id, observation(r, m, d, s, v, at))
                for i, trial_id, r, m, d, s, v, at in self.db.query(
                    "SELECT o.id, t.trial_id, o.run, o.metric, o.direction, o.step, o.value, "
                    "o.at FROM observations AS o JOIN trials AS t ON t.id = o.trial "
                    "WHERE o.id > %s AND t.project_id = %s ORDER BY o.id LIMIT %s",
                    (int(after), self.project_id, None if limit is None else int(limit)))]

    def last_observation(self) -> int:
        """The row id of the project's newest observation (0 when there is none)."""
        rows = self.db.query(
            "SELECT max(o.id) FROM observations AS o JOIN trials AS t ON t.id = o.trial "
            "WHERE t.project_id = %s", (self.project_id,))
        return int(rows[0][0] or 0) if rows else 0

    def recent_final_statuses(self, n: int) -> list[str]:
        """The final statuses of the ``n`` trials that ended last, last first (a trial
        retired or restored, logged with its status unchanged, did not end again)."""
        return [r[0] for r in self.db.query(
            "SELECT x.to_status FROM transitions AS x JOIN trials AS t ON t.id = x.trial "
            "WHERE t.project_id = %s AND x.to_status IN ('COMPLETED', 'FAILED', 'STOPPED') "
            "AND x.from_status IS DISTINCT FROM x.to_status "
            "ORDER BY x.id DESC LIMIT %s", (self.project_id, n))]
