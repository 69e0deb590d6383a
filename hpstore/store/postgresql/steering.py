"""Steering a PostgreSQL project: trials enqueued or added by hand, retired, annotated.

The same steps as the SQLite engine's (hpstore/store/sqlite/steering.py). New trials take
the next number, so enqueueing and adding run in one transaction under the project's
decision lock, like ``decide``: every process enqueueing the same values at once waits its
turn, and the one after the first finds them held (read committed: each statement sees
what was committed before it began). A step that writes the status log takes the log's
lock before any row, in the order every transaction takes them: decision, log, rows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hpstore.errors import SearchFullError, TrialNotEndedError
from hpstore.store.contract import CreationFacts, MakeId
from hpstore.store.postgresql.names import check_names
from hpstore.store.postgresql.reading import TRIAL_COLUMNS
from hpstore.store.records import NewTrial, TrialRecord, dumps
from hpstore.store.rows import to_db_float, trial_record
from hpstore.trial import TrialStatus

_ENDED = (TrialStatus.COMPLETED, TrialStatus.FAILED, TrialStatus.STOPPED,
          TrialStatus.INVALID)
_HELD = (f"SELECT {TRIAL_COLUMNS} FROM trials WHERE project_id = %s AND values_key = %s "
         "ORDER BY number LIMIT 1")
_ENQUEUED_AS = (f"SELECT {TRIAL_COLUMNS} FROM trials WHERE project_id = %s AND values_key = %s"
                " AND origin = 'enqueued' ORDER BY number LIMIT 1")
# the trials_log_insert trigger records the first transition of each new trial
_ENQUEUE = (
    "INSERT INTO trials (project_id, number, trial_id, status, hp_values, values_key, message,"
    " run_count, queued, created_at, pid, changed_at, origin) VALUES (%s, %s, %s, 'IDLE', %s,"
    f" %s, %s, 0, %s, %s, %s, %s, 'enqueued') RETURNING {TRIAL_COLUMNS}")
_ADD = (
    "INSERT INTO trials (project_id, number, trial_id, status, hp_values, values_key, score, "
    "best_step, message, run_count, created_at, started_at, ended_at, pid, changed_at, "
    "origin) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 1, %s, %s, %s, %s, %s, %s) "
    f"RETURNING {TRIAL_COLUMNS}")


class SteeringMixin:
    """The steering steps of :class:`hpstore.store.postgresql.project.PostgresProject`."""

    db: Any
    project_id: int
    name: str

    if TYPE_CHECKING:  # provided by the project class
        def _write(self, body: Any, lock: tuple[str, int] | None = None) -> Any: ...
        def _trial(self, conn: Any, trial_id: str, lock: str = "") -> TrialRecord: ...
        def _next_queue_position(self, conn: Any) -> int: ...
        def _facts(self, conn: Any) -> CreationFacts: ...

    def enqueue(self, values: Mapping[str, Any], key: str, *, skip_if_exists: bool,
                make_id: MakeId, by: str | None, earlier: Sequence[str] = ()
                ) -> tuple[TrialRecord, bool]:
        """See :meth:`hpstore.store.contract.ProjectStore.enqueue`.

        Raises:
            SearchFullError: the search holds ``max_trials`` counted trials already.
            ProjectRemovedError: the project was removed.
        """
        text = dumps(dict(values))
        message = f"Enqueued by {by}." if by else "Enqueued."

        def enqueue(conn: Any) -> tuple[TrialRecord, bool]:
            if skip_if_exists:
                row = conn.execute(_HELD, (self.project_id, key)).fetchone()
                for old in earlier:
                    if row is not None:
                        break
                    row = conn.execute(_ENQUEUED_AS, (self.project_id, old)).fetchone()
                if row is not None:
                    return trial_record(row), False
            facts = self._facts(conn)
            if facts.full:
                raise SearchFullError(
                    f"The search {self.name!r} already holds {facts.counted} of its "
                    f"max_trials={facts.max_trials} trials, so an enqueued trial would never "
                    "run; nothing was enqueued. Raise max_trials (give the Oracle a larger "
                    "max_trials) first.")
            self.db.lock(conn, "log", self.project_id)
            queued = self._next_queue_position(conn)
            now = self.db.now()
            row = conn.execute(_ENQUEUE, (
                self.project_id, facts.number, make_id(facts.number, facts.max_trials), text,
                key, message, queued, now, os.getpid(), now)).fetchone()
            return trial_record(row), True

        return self._write(  # type: ignore[no-any-return]
            enqueue, lock=("decide", self.project_id))

    def enqueued(self) -> list[TrialRecord]:
        """The trials waiting in the queue, first to run first."""
        return [trial_record(r) for r in self.db.query(
            f"SELECT {TRIAL_COLUMNS} FROM trials WHERE project_id = %s AND queued IS NOT NULL "
            "AND status IN ('IDLE', 'INVALID') ORDER BY queued", (self.project_id,))]

    def steering_counts(self) -> dict[str, int]:
        """How many trials were steered, by origin, and how many are retired."""
        rows = self.db.query(
            "SELECT CASE WHEN starts_with(origin, 'warm start') THEN 'warm start' ELSE origin "
            "END, count(*), count(retired_at) FROM trials WHERE project_id = %s GROUP BY 1",
            (self.project_id,))
        counts: dict[str, int] = {}
        for origin, n, retired in rows:
            if origin is not None:
                counts[str(origin)] = int(n)
            if retired:
                counts["retired"] = counts.get("retired", 0) + int(retired)
        return counts

    def add_trials(self, trials: Sequence[NewTrial], *, counted: bool, skip_existing: bool,
                   make_id: MakeId) -> list[TrialRecord | None]:
        """See :meth:`hpstore.store.contract.ProjectStore.add_trials`.

        Raises:
            ProjectRemovedError: the project was removed.
            NameTooLongError: a metric name longer than the index takes; nothing is added.
        """
        check_names("metric name", dict.fromkeys(o[0] for t in trials for o in t.observations))

        def add(conn: Any) -> list[TrialRecord | None]:
            now = self.db.now()
            facts = self._facts(conn)
            number = facts.number
            held: set[str] = set()
            if skip_existing:
                held = {k for (k,) in conn.execute(
                    "SELECT values_key FROM trials WHERE project_id = %s AND values_key = "
                    "ANY(%s)", (self.project_id, [t.key for t in trials]))}
            self.db.lock(conn, "log", self.project_id)
            out: list[TrialRecord | None] = []
            observations: list[tuple[Any, ...]] = []
            for new in trials:
                if skip_existing and new.key in held:
                    out.append(None)
                    continue
                held.add(new.key)
                final = new.status in TrialStatus.FINAL
                record = trial_record(conn.execute(_ADD, (
                    self.project_id, number, make_id(number, facts.max_trials), new.status,
                    dumps(dict(new.values)), new.key, to_db_float(new.score), new.best_step,
                    new.message, now, now, now if final else None, os.getpid(), now,
                    new.origin)).fetchone())
                observations += [(record.key, m, d, int(s), to_db_float(v), now)
                                 for m, d, s, v in new.observations]
                out.append(record)
                number += 1
            if observations:
                conn.cursor().executemany(
                    "INSERT INTO observations (trial, run, metric, direction, step, value, at) "
                    "VALUES (%s, 1, %s, %s, %s, %s, %s)", observations)
            added = sum(t is not None for t in out)
            if added and not counted:
                conn.execute("UPDATE projects SET uncounted = uncounted + %s, updated_at = %s "
                             "WHERE project_id = %s", (added, now, self.project_id))
            return out

        return self._write(add, lock=("decide", self.project_id))  # type: ignore[no-any-return]

    def retire(self, trial_id: str, *, retired: bool, by: str, reason: str | None
               ) -> TrialRecord:
        """See :meth:`hpstore.store.contract.ProjectStore.retire`.

        Raises:
            TrialNotFoundError: no such trial.
            TrialNotEndedError: the trial has not ended (waiting or running).
        """
        def retire(conn: Any) -> TrialRecord:
            self.db.lock(conn, "log", self.project_id)  # it writes the status log
            trial = self._trial(conn, trial_id, "update")
            if trial.status not in _ENDED or trial.queued is not None:
                waits = " and waits to run again" if trial.queued is not None else ""
                raise TrialNotEndedError(
                    f"Trial {trial.trial_id} is {trial.status}{waits}: only a trial that has "
                    f"ended can be {'retired' if retired else 'restored'}. Wait for it to end.")
            if trial.retired == retired:
                return trial
            now = self.db.now()
            word = "Retired" if retired else "Restored"
            message = f"{word} by {by}: {reason}" if reason else f"{word} by {by}."
            conn.execute("UPDATE trials SET retired_at = %s WHERE id = %s",
                         (now if retired else None, trial.key))
            # the status does not change, so no trigger logs it: the row is written here
            conn.execute(
                "INSERT INTO transitions (trial, from_status, to_status, at, tuner_id, pid, "
                "message) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (trial.key, trial.status, trial.status, now, by, os.getpid(), message))
            return trial

        return self._write(retire)  # type: ignore[no-any-return]

    def set_note(self, trial_id: str, note: str | None) -> TrialRecord:
        """See :meth:`hpstore.store.contract.ProjectStore.set_note`.

        Raises:
            TrialNotFoundError: no such trial.
        """
        def annotate(conn: Any) -> TrialRecord:
            trial = self._trial(conn, trial_id, "update")
            conn.execute("UPDATE trials SET note = %s WHERE id = %s", (note, trial.key))
            return trial

        return self._write(annotate)  # type: ignore[no-any-return]
