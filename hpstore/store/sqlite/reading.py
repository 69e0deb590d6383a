"""Reads of one SQLite project: the trials, their metrics and their status log, as records.

What the Oracle asks to decide (values tried, completed scores) and what people ask to see
(the tools, the report, the progress display) both come through here; nothing above the
store contract writes SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hpstore.errors import TrialNotFoundError
from hpstore.store.contract import iter_chunks
from hpstore.store.decode import damaged
from hpstore.store.records import (
    Observation,
    RunRecord,
    Transition,
    TrialRecord,
    fits_int64,
)
from hpstore.store.rows import TRIAL_FIELDS, from_db_float, observation, transition, trial_record
from hpstore.store.runlog import RUNS, STARTS, kept_starts, run_records
from hpstore.trial import TrialStatus

if TYPE_CHECKING:
    import sqlite3

    from hpstore.errors import ProjectRemovedError
    from hpstore.store.sqlite.readonly import AnyDatabase

_COLUMNS = ", ".join(TRIAL_FIELDS)
# (a retired trial is ranked by no tool: by score, it comes after every other trial)
_ORDERS = {"number": "number", "score": "retired_at IS NOT NULL, score IS NULL, score",
           "ended": "ended_at"}
_CHUNK = 500  # ids per statement, well under SQLite's parameter limit
#: the statuses most trials of a large search end with: asked for, the trials are read in
#: number order (see ``trials``)
_COMMON = frozenset({"COMPLETED", "FAILED"})

#: The most trials a page by score may reach (offset and limit) to be read through the
#: status index, status by status (see ``_best_first``); deeper pages are sorted whole: the
#: first 5,000 of each status then cost more than one sort of the project's trials.
_BY_INDEX = 5_000

#: How many of the newest rows of the status log (or of the metric values) a question
#: about a project's newest rows walks back through before it reads the project's own
#: rows by index instead: walked, its newest rows cost the same at any size of the log,
#: and one project's log never costs another's more than this walk.
WALKED = 5_000
# the walk's bound: rows newer than the newest minus WALKED (one row id range: SQLite
# walks by the one bound it picks and only filters by a second)
_S_WALKED = " AND s.id > (SELECT max(id) FROM transitions) - ?"
_AFTER_IN_WALK = "max(?, (SELECT max(id) FROM transitions) - ?)"
_FINAL_STATUSES_WALKED = (
    "SELECT x.to_status FROM transitions x CROSS JOIN trials t ON t.id = x.trial "
    "WHERE t.project_id = ? AND x.to_status IN ('COMPLETED', 'FAILED', 'STOPPED') "
    "AND x.from_status IS NOT x.to_status AND x.id > (SELECT max(id) FROM transitions) - ? "
    "ORDER BY x.id DESC LIMIT ?")
_FINAL_STATUSES = (
    "SELECT x.to_status FROM trials t CROSS JOIN transitions x ON x.trial = t.id "
    "WHERE t.project_id = ? AND x.to_status IN ('COMPLETED', 'FAILED', 'STOPPED') "
    "AND x.from_status IS NOT x.to_status ORDER BY x.id DESC LIMIT ?")
# the log walked by row id, each row's trial looked up; or the project's trials first,
# then each one's rows by index (CROSS JOIN fixes SQLite's loop order)
_LOG_FIRST = "transitions s CROSS JOIN trials t ON t.id = s.trial"
# whether a project holds most of the file's trials (the only project: no count)
_HOLDS_MOST = ("SELECT CASE WHEN (SELECT count(*) FROM projects) = 1 THEN 1 ELSE "
               "(SELECT count(*) FROM trials WHERE project_id = ?) * 2 > "
               "(SELECT count(*) FROM trials) END")
_TRIALS_FIRST = "trials t CROSS JOIN transitions s ON s.trial = t.id"
# How many trials, or reported values, a project holds, counted up to a bound: whether
# its own rows, read by index, cost less than a walk over the rows of the file's other
# projects (a dashboard of 1,000 small projects beside one of 20,000 trials walked the
# latter's 40,000 log rows for each: 17 s an answer).
_TRIALS_UP_TO = "SELECT count(*) FROM (SELECT 1 FROM trials WHERE project_id = ? LIMIT ?)"
_VALUES_UP_TO = ("SELECT count(*) FROM (SELECT 1 FROM trials t CROSS JOIN observations o ON "
                 "o.trial = t.id WHERE t.project_id = ? LIMIT ?)")
#: rows walked for the cost of one look-up by index (a walked row costs a look-up of its
#: trial too; a project's rows by index sort afterwards)
_WALK_PER_LOOK_UP = 8
# a project's trials for a join, in number order (the order of the table: a subquery with
# an ORDER BY and a LIMIT, which SQLite does not fold into the join, so that it walks the
# (project_id, number) index), or of one status
_IN_NUMBER_ORDER = ("(SELECT id, trial_id, run_count FROM trials WHERE project_id = ? "
                    "ORDER BY number LIMIT -1) AS t")
_OF_STATUS = ("(SELECT id, trial_id, run_count FROM trials WHERE project_id = ? AND "
              "status = ?) AS t")


# the starts of the log's runs (see runlog.py), found as transitions() walks the log
_STARTS_LOG_FIRST = STARTS % {"p": "?", "starts": _LOG_FIRST}
_STARTS_TRIALS_FIRST = STARTS % {"p": "?", "starts": _TRIALS_FIRST}


# the newest row of a table, and what tells one of its rows from another given its id
# later (see ReadingMixin._quiet_start)
_NEWEST_ROW = {"observations": "SELECT coalesce(max(id), 0) FROM observations",
               "transitions": "SELECT coalesce(max(id), 0) FROM transitions"}
_ROW_AT = {"observations": "SELECT trial, at FROM observations WHERE id = ?",
           "transitions": "SELECT trial, at FROM transitions WHERE id = ?"}


class ReadingMixin:
    """The reads of :class:`hpstore.store.sqlite.project.SQLiteProject`."""

    db: AnyDatabase
    project_id: int
    name: str

    if TYPE_CHECKING:  # provided by the project class
        def removed(self) -> ProjectRemovedError: ...
        def check_exists(self, conn: sqlite3.Connection) -> None: ...

    def trial(self, trial_id: str) -> TrialRecord:
        """Raises TrialNotFoundError (no such trial) or ProjectRemovedError."""
        rows = self.db.query(
            f"SELECT {_COLUMNS} FROM trials WHERE project_id = ? AND trial_id = ?",
            (self.project_id, str(trial_id)))
        if not rows:
            with self.db.read() as conn:
                self.check_exists(conn)
            raise TrialNotFoundError(
                f"No trial {trial_id!r} in project {self.name!r}; trial ids are strings "
                "such as those in `oracle.trials`.")
        return trial_record(rows[0])

    def trial_by_number(self, number: int) -> TrialRecord:
        if not fits_int64(int(number)):  # no trial has it (nor can hold it)
            raise TrialNotFoundError(f"No trial number {number} in project {self.name!r}.")
        rows = self.db.query(f"SELECT {_COLUMNS} FROM trials WHERE project_id = ? AND "
                             "number = ?", (self.project_id, int(number)))
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
        where = "project_id = ?"
        params: list[Any] = [self.project_id]
        if statuses:
            where += f" AND status IN ({', '.join('?' for _ in statuses)})"
            params += list(statuses)
        direction = "DESC" if descending else "ASC"
        if order == "score" and limit is not None and int(limit) + int(offset) <= _BY_INDEX:
            return self._best_first(list(dict.fromkeys(statuses or TrialStatus.ALL)),
                                    descending, int(limit), int(offset))
        by = _ORDERS[order]
        if statuses and order == "number" and not _COMMON.intersection(statuses):
            # Few trials have these: found by the status index and sorted. Ordered by
            # number, SQLite walked every trial of the project in number order instead
            # (0.1 s at 100,000 trials for none found; at each Bayesian decision, at each
            # refresh of watch). The unary + keeps that index out of the ORDER BY.
            by = "+number"
        source = "trials"
        if order != "number" and (not statuses or _COMMON.intersection(statuses)):
            # Sorted whole: most trials read, in number order, as the table lies (a
            # subquery SQLite keeps, see _IN_NUMBER_ORDER); found by the project alone,
            # SQLite took the values index, whose order is a digest's, and read the table
            # at random (trials --sort ended --limit 20: 0.2 s, against 0.07 s, at 100,000)
            source = f"(SELECT {_COLUMNS} FROM trials WHERE {where} ORDER BY number LIMIT -1)"
            where = "1"
        sql = (f"SELECT {_COLUMNS} FROM {source} WHERE {where} ORDER BY {by} "
               f"{direction}, number")
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            params += [-1 if limit is None else int(limit), int(offset)]
        return [trial_record(r) for r in self.db.query(sql, params)]

    def _best_first(self, statuses: list[str], descending: bool, limit: int, offset: int
                    ) -> list[TrialRecord]:
        """A page of the trials by score (``_ORDERS["score"]``: scored trials by score, then
        number; then those without a score by number; retired trials last, as ordered).

        The first ``offset + limit`` of each status, walked in the status index's order
        (project, status, score, number), merged here: sorted in one statement, every trial
        of the project was read and sorted for a page of 20 (1 s at 100,000 trials).
        """
        wanted, marks = offset + limit, ", ".join("?" for _ in statuses)
        direction = "DESC" if descending else "ASC"
        with self.db.read() as conn:
            found = []
            for status in statuses:
                found += conn.execute(
                    f"SELECT {_COLUMNS} FROM trials WHERE project_id = ? AND status = ? AND "
                    f"score IS NOT NULL AND retired_at IS NULL ORDER BY score {direction}, "
                    "number LIMIT ?", (self.project_id, status, wanted)).fetchall()
            rows = [trial_record(r) for r in found]
            sign = -1 if descending else 1
            rows.sort(key=lambda t: (sign * t.score, t.number))  # type: ignore[operator]
            rows = rows[:wanted]
            if len(rows) < wanted:
                rows += [trial_record(r) for r in conn.execute(
                    f"SELECT {_COLUMNS} FROM trials WHERE project_id = ? AND status IN "
                    f"({marks}) AND score IS NULL AND retired_at IS NULL ORDER BY number "
                    "LIMIT ?", (self.project_id, *statuses, wanted - len(rows))).fetchall()]
            if len(rows) < wanted:  # (only the retired are left: no index finds them)
                rows += [trial_record(r) for r in conn.execute(
                    f"SELECT {_COLUMNS} FROM trials WHERE project_id = ? AND status IN "
                    f"({marks}) AND retired_at IS NOT NULL ORDER BY score IS NULL, score "
                    f"{direction}, number LIMIT ?",
                    (self.project_id, *statuses, wanted - len(rows))).fetchall()]
        return rows[offset:]

    def trials_by_id(self, trial_ids: Sequence[str]) -> dict[str, TrialRecord]:
        """The trials among ``trial_ids`` that exist, by id."""
        found: dict[str, TrialRecord] = {}
        for chunk in iter_chunks(list(dict.fromkeys(trial_ids)), _CHUNK):
            marks = ", ".join("?" for _ in chunk)  # placeholders only; ids stay parameters
            for row in self.db.query(f"SELECT {_COLUMNS} FROM trials WHERE project_id = ? "
                                     f"AND trial_id IN ({marks})", (self.project_id, *chunk)):
                record = trial_record(row)
                found[record.trial_id] = record
        return found

    def trials_by_number(self, numbers: Sequence[int]) -> dict[int, TrialRecord]:
        """The trials among ``numbers`` that exist, by number."""
        found: dict[int, TrialRecord] = {}
        for chunk in iter_chunks(list(dict.fromkeys(int(n) for n in numbers
                                        if fits_int64(int(n)))), _CHUNK):
            marks = ", ".join("?" for _ in chunk)
            for row in self.db.query(f"SELECT {_COLUMNS} FROM trials WHERE project_id = ? "
                                     f"AND number IN ({marks})", (self.project_id, *chunk)):
                record = trial_record(row)
                found[record.number] = record
        return found

    def score_line(self) -> list[tuple[int, str, str, float | None]]:
        """(number, trial_id, status, score) of every trial, by number: the light view of a
        large search (the history plot, sampling). A retired trial's score is None."""
        line = self.db.query(
            "SELECT number, trial_id, status, CASE WHEN retired_at IS NULL THEN score END "
            "FROM trials WHERE project_id = ? ORDER BY number", (self.project_id,))
        for _, _, _, score in line:
            if score is not None and type(score) is not float and type(score) is not int:
                raise damaged("trials.score", score)  # changed by hand since a tool checked
        return [(n, t, s, sc) for n, t, s, sc in line]

    def last_activity(self) -> float | None:
        """The time of the last status change or reported value, or None."""
        rows = self.db.query(
            "SELECT (SELECT max(s.at) FROM transitions s JOIN trials t ON t.id = s.trial "
            "WHERE t.project_id = ?), (SELECT max(o.at) FROM observations o JOIN trials t "
            "ON t.id = o.trial WHERE t.project_id = ?)", (self.project_id, self.project_id))
        times = []
        for where, value in zip(("transitions.at", "observations.at"), rows[0]):
            if value is not None and type(value) is not float and type(value) is not int:
                raise damaged(where, value)  # changed by hand since a tool checked
            if value is not None:
                times.append(float(value))
        return max(times, default=None)

    def trial_ids(self) -> list[str]:
        return [r[0] for r in self.db.query(
            "SELECT trial_id FROM trials WHERE project_id = ? ORDER BY number",
            (self.project_id,))]

    def has_trial(self, trial_id: str) -> bool:
        return bool(self.db.query("SELECT 1 FROM trials WHERE project_id = ? AND trial_id = ?",
                                  (self.project_id, str(trial_id))))

    def count(self) -> int:
        return int(self.db.query("SELECT count(*) FROM trials WHERE project_id = ?",
                                 (self.project_id,))[0][0])

    def counts_by_status(self) -> dict[str, int]:
        rows = self.db.query("SELECT status, count(*) FROM trials WHERE project_id = ? "
                             "GROUP BY status", (self.project_id,))
        return {s: int(n) for s, n in rows}

    def _looked_up(self, key: str) -> bool:
        """Whether a trial holds values with this key, read (``has_values``, see ahead.py)."""
        return bool(self.db.query(
            "SELECT 1 FROM trials WHERE project_id = ? AND values_key = ? LIMIT 1",
            (self.project_id, key)))

    def values_keys(self) -> set[str]:
        return {r[0] for r in self.db.query(
            "SELECT values_key FROM trials WHERE project_id = ?", (self.project_id,))}

    def best(self, n: int, direction: str) -> list[TrialRecord]:
        """The ``n`` best COMPLETED trials not retired, padded with the other trials not
        retired in creation order."""
        order = "DESC" if direction == "max" else "ASC"  # one of two fixed words
        found = [trial_record(r) for r in self.db.query(
            f"SELECT {_COLUMNS} FROM trials WHERE project_id = ? AND status = 'COMPLETED' "
            f"AND score IS NOT NULL AND retired_at IS NULL ORDER BY score {order}, number "
            "LIMIT ?", (self.project_id, n))]
        if len(found) < n:
            found += [trial_record(r) for r in self.db.query(
                f"SELECT {_COLUMNS} FROM trials WHERE project_id = ? AND NOT "
                "(status = 'COMPLETED' AND score IS NOT NULL) AND retired_at IS NULL "
                "ORDER BY number LIMIT ?", (self.project_id, n - len(found)))]
        return found

    def completed(self) -> list[tuple[str, float]]:
        """(values JSON, score) of every scored COMPLETED trial not retired, in creation
        order."""
        return [(v, s) for v, s in self.db.query(
            "SELECT hp_values, score FROM trials WHERE project_id = ? AND status = 'COMPLETED' "
            "AND score IS NOT NULL AND retired_at IS NULL ORDER BY number",
            (self.project_id,))]

    def scores(self, trial_ids: list[str]) -> list[tuple[str, float]]:
        """(trial_id, score) of the scored COMPLETED trials not retired among
        ``trial_ids``, in creation order."""
        found: list[Any] = []
        for chunk in iter_chunks(trial_ids, _CHUNK):
            marks = ", ".join("?" for _ in chunk)  # placeholders only; ids stay parameters
            # (+status: probed by trial id; on the status index SQLite read every completed
            # trial, 143 ms at 35,000 trials in each Hyperband promotion, holding the lock)
            found += self.db.query(
                f"SELECT trial_id, score, number FROM trials WHERE project_id = ? AND +status "
                f"= 'COMPLETED' AND score IS NOT NULL AND retired_at IS NULL AND trial_id IN "
                f"({marks})",
                (self.project_id, *chunk))
        return [(t, s) for t, s, _ in sorted(found, key=lambda r: r[2])]

    def observations(self, trial: TrialRecord, *, every_run: bool = False
                     ) -> list[Observation]:
        """The trial's metric values in the order reported: its current run's, or every
        run's."""
        sql = ("SELECT run, metric, direction, step, value, at FROM observations WHERE "
               "trial = ?")
        params: list[Any] = [trial.key]
        if not every_run:
            sql += " AND run = ?"
            params.append(trial.run)
        rows = self.db.query(sql + " ORDER BY id", params)
        return [observation(r, m, d, s, v, at) for r, m, d, s, v, at in rows]

    def run_started(self, trial: TrialRecord, at: float) -> bool:
        """Whether the trial's status log holds the start of a run of it at ``at``: a run
        since handed on to another worker, not one of a trial lost (with the store's last
        commits, or a restored copy) and created again under the same id."""
        return bool(self.db.query(
            "SELECT EXISTS (SELECT 1 FROM transitions WHERE trial = ? AND to_status = "
            "'RUNNING' AND at = ?)", (trial.key, at))[0][0])

    def trial_with_observations(self, trial_id: str) -> tuple[TrialRecord, list[Observation]]:
        """Raises TrialNotFoundError (no such trial) or ProjectRemovedError."""
        with self.db.read():  # one snapshot for both
            record = self.trial(trial_id)
            return record, self.observations(record)

    def observations_of(self, trials: Sequence[TrialRecord], metric: str
                        ) -> dict[str, list[tuple[int, float]]]:
        """(step, value) of ``metric`` in each trial's current run, by trial id."""
        by_key = {t.key: t for t in trials}
        out: dict[str, list[tuple[int, float]]] = {t.trial_id: [] for t in trials}
        for chunk in iter_chunks(list(by_key), _CHUNK):
            marks = ", ".join("?" for _ in chunk)
            for key, run, step, value in self.db.query(
                    f"SELECT trial, run, step, value FROM observations WHERE metric = ? AND "
                    f"trial IN ({marks}) ORDER BY id", (metric, *chunk)):
                trial = by_key[key]
                if run == trial.run:
                    if type(step) is not int:  # changed by hand since a tool checked
                        raise damaged("observations.step", step)
                    out[trial.trial_id].append((step, from_db_float(value)))
        return out

    def transitions(self, *, trial_id: str | None = None, tuner_id: str | None = None,
                    after: int = 0, limit: int | None = None, last: bool = False
                    ) -> list[Transition]:
        """The status log, oldest first: of one trial or one worker, after the entry
        numbered ``after``; ``limit`` with ``last`` keeps the newest entries."""
        # Of one trial: its trial found by its id, then its rows by index. Otherwise CROSS
        # JOIN fixes the loop order: the log walked by row id from ``after`` on (backwards
        # with ``last``) and each row's trial looked up, so a LIMIT stops the walk; joined
        # the other way, SQLite read the project's whole log and sorted it (0.2 s for the
        # last 20 changes of 3.2 million).
        # The newest rows are walked only so far back (WALKED): past them, where another
        # project wrote the file's latest changes, this one's are read by index.
        if trial_id is None and last and limit is None:
            # The whole log, newest first (`hpstore history` of every trial or one worker):
            # walked whole when the project holds most of the file's trials, which reads it
            # once in order where the project's trials first read it in their order and
            # sorted it (150 ms against 35 ms for a tuner id no row holds, at 100,000
            # trials; no index holds the tuner id).
            walk = bool(self.db.query(_HOLDS_MOST, (self.project_id,))[0][0])
            return self._transitions(None, tuner_id, after, None, True, walk, bounded=False)
        walk = trial_id is None and (not last or limit is not None)
        if walk and not last and tuner_id is None:  # (the log since a position: see
            newest, start = self._quiet_start("transitions", after)  # observations_since)
            rows = self._transitions(None, None, start, limit, False,
                                     not self._fewer(newest - start))
            if not rows:
                self._quiet_until("transitions", after, newest)
            return rows
        rows = self._transitions(trial_id, tuner_id, after, limit, last, walk)
        if walk and last and len(rows) < int(limit or 0):
            rows = self._transitions(trial_id, tuner_id, after, limit, last, False)
        return rows

    def _transitions(self, trial_id: str | None, tuner_id: str | None, after: int,
                     limit: int | None, last: bool, walk: bool, bounded: bool = True
                     ) -> list[Transition]:
        newest = walk and last and bounded  # (only the WALKED newest rows)
        sql = ("SELECT s.id, t.trial_id, s.from_status, s.to_status, s.at, s.tuner_id, "
               "s.pid, s.message FROM " + (_LOG_FIRST if walk else _TRIALS_FIRST) +
               " WHERE t.project_id = ? AND s.id > " + (_AFTER_IN_WALK if newest else "?"))
        params: list[Any] = [self.project_id, int(after)]
        if newest:
            params.append(WALKED)
        if trial_id is not None:
            sql += " AND t.trial_id = ?"
            params.append(str(trial_id))
        if tuner_id is not None:
            sql += " AND s.tuner_id = ?"
            params.append(tuner_id)
        sql += " ORDER BY s.id DESC" if last else " ORDER BY s.id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        rows = [transition(*r) for r in self.db.query(sql, params)]
        return rows[::-1] if last else rows

    def runs(self, limit: int) -> tuple[list[RunRecord], int]:
        """See :meth:`hpstore.store.contract.ProjectStore.runs`."""
        walk = bool(self.db.query(_HOLDS_MOST, (self.project_id,))[0][0])
        starts = self.db.query(_STARTS_LOG_FIRST if walk else _STARTS_TRIALS_FIRST,
                               (self.project_id,))
        rows: list[Any] = []
        for chunk in iter_chunks(kept_starts(starts, int(limit)), _CHUNK):
            marks = ", ".join("?" for _ in chunk)
            rows += self.db.query(RUNS % {"kept": "s.id IN (" + marks + ")",
                                          "materialized": ""}, chunk)
        return run_records(rows, len(starts), int(limit)), len(starts)

    def steps_reported(self, metric: str, *, status: str | None = None
                       ) -> dict[str, tuple[int, int]]:
        """How many steps of ``metric`` each trial (of ``status``, else every one) reported
        in its current run, and the last of them, by id."""
        # The trials of one status found by the status index; every trial in number order,
        # as the table lies: found by the project alone, SQLite took the values index,
        # whose order is a digest's, and read the table at random (1 s at 100,000 trials).
        trials = _OF_STATUS if status is not None else _IN_NUMBER_ORDER
        params = [self.project_id] if status is None else [self.project_id, status]
        return {t: (int(n), int(last)) for t, n, last in self.db.query(
            "SELECT t.trial_id, count(DISTINCT o.step), max(o.step) FROM " + trials +
            " CROSS JOIN observations o ON o.trial = t.id AND o.run = t.run_count "
            "WHERE o.metric = ? GROUP BY t.id", (*params, metric))}

    def most_steps_reported(self, metric: str, status: str) -> int:
        """See :meth:`hpstore.store.contract.ProjectStore.most_steps_reported`."""
        # One index probe per trial, its trials read in number order, as the table lies
        # (found by the status index, in score order, each trial's run read at random cost
        # 3 times as much); nothing grouped or sorted.
        rows = self.db.query(
            "SELECT max((SELECT count(DISTINCT o.step) FROM observations o WHERE o.trial = "
            "t.id AND o.run = t.run_count AND o.metric = ?)) FROM (SELECT id, run_count FROM "
            "trials WHERE project_id = ? AND +status = ? ORDER BY number) AS t",
            (metric, self.project_id, status))
        return int(rows[0][0] or 0)

    def last_transition(self) -> int:
        """The number of the newest status-log entry (0 when there is none)."""
        # (the log walked backwards by row id until a row of this project: max() over a
        # join read the project's whole log, 0.6 s at 3.2 million rows, at every poll)
        rows = (not self._fewer(WALKED) and self.db.query(
            "SELECT s.id FROM transitions s CROSS JOIN trials t ON t.id = s.trial WHERE "
            "t.project_id = ?" + _S_WALKED + " ORDER BY s.id DESC LIMIT 1",
            (self.project_id, WALKED))) or self.db.query(
            "SELECT max(s.id) FROM " + _TRIALS_FIRST + " WHERE t.project_id = ?",
            (self.project_id,))
        return int(rows[0][0] or 0)

    def recent_final_statuses(self, n: int) -> list[str]:
        """The final statuses of the ``n`` trials that ended last, last first."""
        # The status log is in commit order: reading it backwards stops after n rows, with
        # no index on the end time to keep up on every commit. CROSS JOIN makes SQLite walk
        # it so; with JOIN it read the project's whole log and sorted it (2.8 s at every
        # FAILED trial's end at 3.2 million rows).
        rows = ([] if self._fewer(WALKED)
                else self.db.query(_FINAL_STATUSES_WALKED, (self.project_id, WALKED, n)))
        if len(rows) < n:  # (past the newest rows walked: this project's read by index)
            rows = self.db.query(_FINAL_STATUSES, (self.project_id, n))
        return [r[0] for r in rows]

    def observations_since(self, after: int = 0, *, limit: int | None = None
                           ) -> list[tuple[int, str, Observation]]:
        """(row id, trial_id, observation) of the values reported after row ``after``."""
        # CROSS JOIN fixes the loop order: SQLite walks observations from ``after`` on (a
        # rowid range) and looks each trial up, so the cost follows the new rows, not the
        # size of the project. Row ids grow in commit order: writers take turns.
        # The rows another project wrote after this one's last are walked once: a walk that
        # found none of this project's remembers how far it went, and the next walk from the
        # same ``after`` starts there (a dashboard asks at every poll; it walked 2 million
        # values of a later project at each, 0.2 s, and each project of the file in turn).
        newest, start = self._quiet_start("observations", after)
        sql = ("SELECT o.id, t.trial_id, o.run, o.metric, o.direction, o.step, o.value, o.at "
               "FROM " + ("trials t CROSS JOIN observations o ON o.trial = t.id"
                          if self._fewer(newest - start, values=True) else
                          "observations o CROSS JOIN trials t ON t.id = o.trial") +
               " WHERE o.id > ? AND t.project_id = ? ORDER BY o.id")
        params: list[Any] = [start, self.project_id]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        found = [(i, trial_id, observation(r, m, d, s, v, at))
                 for i, trial_id, r, m, d, s, v, at in self.db.query(sql, params)]
        if not found:
            self._quiet_until("observations", after, newest)
        return found

    def _fewer(self, walk: int, values: bool = False) -> bool:
        """Whether the project holds so few trials (or reported ``values``) that its own
        rows read by index cost less than a walk of ``walk`` rows of the file's status log
        (or values); the count stops at what the walk would cost."""
        bound = walk // _WALK_PER_LOOK_UP
        if bound <= 0:
            return False
        found = self.db.query(_VALUES_UP_TO if values else _TRIALS_UP_TO,
                              (self.project_id, bound))
        return int(found[0][0]) < bound

    def _quiet_start(self, table: str, after: int) -> tuple[int, int]:
        """(the table's newest row id now, where a walk for this project's rows after
        ``after`` starts): past a stretch known to hold none of them."""
        newest = int(self.db.query(_NEWEST_ROW[table])[0][0])
        quiet = self.__dict__.setdefault("_quiet", {}).get(table)
        # The stretch holds while its last row is the one it ended on: rows at the top
        # deleted (a project replaced or removed) give their ids again, maybe to this
        # project's next rows, and the row the stretch ended on is then gone or another.
        if (quiet is not None and quiet[0] <= int(after) < quiet[1] <= newest
                and self._row_at(table, quiet[1]) == quiet[2]):
            return newest, quiet[1]
        return newest, int(after)

    def _quiet_until(self, table: str, after: int, newest: int) -> None:
        """Remember that no row of this project lies after ``after`` up to ``newest``."""
        quiet = self.__dict__.setdefault("_quiet", {})
        known = quiet.get(table)
        if newest > int(after) and (known is None or known[:2] != (int(after), newest)):
            quiet[table] = (int(after), newest, self._row_at(table, newest))

    def _row_at(self, table: str, row: int) -> tuple[Any, ...] | None:
        """What tells the row ``row`` of ``table`` from another given its id later."""
        found = self.db.query(_ROW_AT[table], (row,))
        return tuple(found[0]) if found else None

    def last_observation(self) -> int:
        """The row id of the project's newest observation (0 when there is none)."""
        rows = (not self._fewer(WALKED, values=True) and self.db.query(
            # read backwards from the newest row: stops at the first match
            "SELECT o.id FROM observations o CROSS JOIN trials t ON t.id = o.trial WHERE "
            "t.project_id = ? AND o.id > (SELECT max(id) FROM observations) - ? "
            "ORDER BY o.id DESC LIMIT 1", (self.project_id, WALKED))) or self.db.query(
            "SELECT max(o.id) FROM trials t CROSS JOIN observations o ON o.trial = t.id "
            "WHERE t.project_id = ?", (self.project_id,))
        return int(rows[0][0] or 0)
