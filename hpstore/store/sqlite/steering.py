"""Steering a SQLite project: trials enqueued or added by hand, retired, annotated.

New trials take the next number, so these steps hold the project's decision lock like
``decide`` does: a decision reads the next number under that lock and records its trial
under it, and a trial slipped in between would take its number.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hpstore.errors import SearchFullError, TrialNotEndedError
from hpstore.store.contract import CreationFacts, MakeId
from hpstore.store.records import NewTrial, TrialRecord, dumps
from hpstore.store.rows import TRIAL_FIELDS, to_db_float, trial_record
from hpstore.trial import TrialStatus

if TYPE_CHECKING:
    from hpstore.store.sqlite.readonly import AnyDatabase

_COLUMNS = ", ".join(TRIAL_FIELDS)
_ENDED = (TrialStatus.COMPLETED, TrialStatus.FAILED, TrialStatus.STOPPED,
          TrialStatus.INVALID)


class SteeringMixin:
    """The steering steps of :class:`hpstore.store.sqlite.project.SQLiteProject`."""

    db: AnyDatabase
    project_id: int
    name: str

    if TYPE_CHECKING:  # provided by the project class
        def _trial(self, conn: sqlite3.Connection, trial_id: str) -> TrialRecord: ...
        def _next_queue_position(self, conn: sqlite3.Connection) -> int: ...
        def _facts(self, conn: sqlite3.Connection) -> CreationFacts: ...

    def enqueue(self, values: Mapping[str, Any], key: str, *, skip_if_exists: bool,
                make_id: MakeId, by: str | None, earlier: Sequence[str] = ()
                ) -> tuple[TrialRecord, bool]:
        with self.db.lock(by), self.db.write() as conn:
            now = time.time()  # (holding the write lock: the log's times follow its order)
            if skip_if_exists:
                # "+number": found by the values index, the one or two rows sorted; a
                # plain ORDER BY walks the number index (every trial) to spare that sort
                row = conn.execute(
                    f"SELECT {_COLUMNS} FROM trials WHERE project_id = ? AND values_key = ? "
                    "ORDER BY +number LIMIT 1", (self.project_id, key)).fetchone()
                for old in earlier:
                    if row is not None:
                        break
                    row = conn.execute(
                        f"SELECT {_COLUMNS} FROM trials WHERE project_id = ? AND values_key = ?"
                        " AND origin = 'enqueued' ORDER BY +number LIMIT 1",
                        (self.project_id, old)).fetchone()
                if row is not None:
                    return trial_record(row), False
            facts = self._facts(conn)
            if facts.full:
                raise SearchFullError(
                    f"The search {self.name!r} already holds {facts.counted} of its "
                    f"max_trials={facts.max_trials} trials, so an enqueued trial would never "
                    "run; nothing was enqueued. Raise max_trials (give the Oracle a larger "
                    "max_trials) first.")
            number = facts.number
            trial_id = make_id(number, facts.max_trials)
            queued = self._next_queue_position(conn)
            message = f"Enqueued by {by}." if by else "Enqueued."
            text = dumps(dict(values))
            # the trials_log_insert trigger records the first transition
            cur = conn.execute(
                "INSERT INTO trials (project_id, number, trial_id, status, hp_values, values_key,"
                " message, run_count, queued, created_at, pid, changed_at, origin) "
                "VALUES (?, ?, ?, 'IDLE', ?, ?, ?, 0, ?, ?, ?, ?, 'enqueued')",
                (self.project_id, number, trial_id, text, key, message, queued, now,
                 os.getpid(), now))
            row = conn.execute(f"SELECT {_COLUMNS} FROM trials WHERE id = ?",
                               (cur.lastrowid,)).fetchone()
        return trial_record(row), True

    def steering_counts(self) -> dict[str, int]:
        rows = self.db.query(
            # Every trial read (no index holds origin or retirement), in number order, as
            # the table lies: a subquery with an ORDER BY and a LIMIT, which SQLite keeps,
            # so that it walks the (project_id, number) index; found by the project alone,
            # it took the values index, whose order is a digest's, and read the table at
            # random (0.5 s at 100,000 trials, against 0.04 s). Only steered trials are
            # grouped (an unsteered one counts nowhere).
            "SELECT origin, count(*), sum(retired) FROM (SELECT CASE WHEN origin LIKE "
            "'warm start%' THEN 'warm start' ELSE origin END AS origin, retired_at IS NOT NULL "
            "AS retired FROM trials WHERE project_id = ? AND (origin IS NOT NULL OR "
            "retired_at IS NOT NULL) ORDER BY number LIMIT -1) GROUP BY 1",
            (self.project_id,))
        counts: dict[str, int] = {}
        for origin, n, retired in rows:
            if origin is not None:
                counts[str(origin)] = int(n)
            if retired:
                counts["retired"] = counts.get("retired", 0) + int(retired)
        return counts

    def enqueued(self) -> list[TrialRecord]:
        return [trial_record(r) for r in self.db.query(
            f"SELECT {_COLUMNS} FROM trials WHERE project_id = ? AND queued IS NOT NULL AND "
            "status IN ('IDLE', 'INVALID') ORDER BY queued", (self.project_id,))]

    def add_trials(self, trials: Sequence[NewTrial], *, counted: bool, skip_existing: bool,
                   make_id: MakeId) -> list[TrialRecord | None]:
        out: list[TrialRecord | None] = []
        with self.db.lock("add_trial"), self.db.write() as conn:
            now = time.time()  # (holding the write lock: the log's times follow its order)
            facts = self._facts(conn)
            number = facts.number
            known: set[str] = set()
            for new in trials:
                if skip_existing and (new.key in known or conn.execute(
                        "SELECT 1 FROM trials WHERE project_id = ? AND values_key = ? LIMIT 1",
                        (self.project_id, new.key)).fetchone()):
                    out.append(None)
                    continue
                known.add(new.key)
                final = new.status in TrialStatus.FINAL
                cur = conn.execute(
                    "INSERT INTO trials (project_id, number, trial_id, status, hp_values, "
                    "values_key, score, best_step, message, run_count, created_at, started_at,"
                    " ended_at, pid, changed_at, origin) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
                    (self.project_id, number, make_id(number, facts.max_trials), new.status,
                     dumps(dict(new.values)), new.key,
                     None if new.score is None else to_db_float(new.score), new.best_step,
                     new.message, now, now, now if final else None, os.getpid(), now,
                     new.origin))
                trial = int(cur.lastrowid or 0)
                conn.executemany(
                    "INSERT INTO observations (trial, run, metric, direction, step, value, at) "
                    "VALUES (?, 1, ?, ?, ?, ?, ?)",
                    [(trial, m, d, s, to_db_float(v), now) for m, d, s, v in new.observations])
                out.append(trial_record(conn.execute(
                    f"SELECT {_COLUMNS} FROM trials WHERE id = ?", (trial,)).fetchone()))
                number += 1
            added = sum(t is not None for t in out)
            if added and not counted:
                conn.execute("UPDATE projects SET uncounted = uncounted + ?, updated_at = ? "
                             "WHERE project_id = ?", (added, now, self.project_id))
        return out

    def retire(self, trial_id: str, *, retired: bool, by: str, reason: str | None
               ) -> TrialRecord:
        with self.db.write() as conn:
            now = time.time()  # (holding the write lock: the log's times follow its order)
            trial = self._trial(conn, trial_id)
            if trial.status not in _ENDED or trial.queued is not None:
                waits = " and waits to run again" if trial.queued is not None else ""
                raise TrialNotEndedError(
                    f"Trial {trial.trial_id} is {trial.status}{waits}: only a trial that has "
                    f"ended can be {'retired' if retired else 'restored'}. Wait for it to end.")
            if trial.retired == retired:
                return trial
            word = "Retired" if retired else "Restored"
            message = f"{word} by {by}: {reason}" if reason else f"{word} by {by}."
            conn.execute("UPDATE trials SET retired_at = ? WHERE id = ?",
                         (now if retired else None, trial.key))
            # the status does not change, so no trigger logs it: the row is written here
            conn.execute(
                "INSERT INTO transitions (trial, from_status, to_status, at, tuner_id, pid, "
                "message) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (trial.key, trial.status, trial.status, now, by, os.getpid(), message))
        return trial

    def set_note(self, trial_id: str, note: str | None) -> TrialRecord:
        with self.db.write() as conn:
            trial = self._trial(conn, trial_id)
            conn.execute("UPDATE trials SET note = ? WHERE id = ?", (note, trial.key))
        return trial
