"""A quick decision made before SQLite's write lock, on the facts a worker alone expects.

A worker alone on a search usually knows what its next ``create_trial`` will find: the
number after its own last trial, nothing queued, nothing running, the settings and the
space as they were. Once a decision under the lock found the facts to be those its last
decision left, the next decision of a decider that draws ahead (random search: its values
depend on the seed, the number and what ran, on no state) is made on them before the lock,
its look-ups of values run before answered without reading (as the store contract allows:
see ``ProjectStore.decide``), and recorded by one insert that checks, holding the write
lock, each of those facts and that its values never ran. When any has changed, nothing is
written and the decision is made the usual way in the same transaction. The transaction
that records a trial then holds two statements fewer (the facts, the look-up), and the
decision is made while other processes may write.

Beside other workers' running trials the facts are never those expected: decisions are
then made the usual way, and none is made twice. Other quick deciders (a grid, Hyperband)
read their state as they decide, so they decide under the lock only; so does, after a few
tries, a decider that draws ahead but reads the store other than by its look-ups.
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import TYPE_CHECKING

from hpstore.store.ahead import DecidingAhead
from hpstore.store.contract import CreationFacts, Decider, Decision
from hpstore.store.records import TrialRecord, dumps
from hpstore.trial import TrialStatus

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from hpstore.store.sqlite.readonly import AnyDatabase

# The new trial, written only if, holding the write lock, the project's settings, its next
# number and its space are those it was decided on, no trial waits in the queue, none runs
# (so none is this tuner's, nor a dead worker's to reap first), and its values never ran.
_INSERT_AHEAD = (
    "INSERT INTO trials (project_id, number, trial_id, status, hp_values, values_key, "
    "tuner_id, session, run_count, created_at, started_at, pid, changed_at) SELECT "
    "p.project_id, ?, ?, 'RUNNING', ?, ?, ?, ?, 1, ?, ?, ?, ? FROM projects AS p WHERE "
    "p.project_id = ? AND p.max_trials IS ? AND p.uncounted = ? AND p.space_version = ? AND "
    "coalesce((SELECT number + 1 FROM trials WHERE project_id = p.project_id ORDER BY number "
    "DESC LIMIT 1), 0) = ? AND NOT EXISTS (SELECT 1 FROM trials WHERE project_id = "
    "p.project_id AND queued IS NOT NULL) AND NOT EXISTS (SELECT 1 FROM trials WHERE "
    "project_id = p.project_id AND status = 'RUNNING') AND NOT EXISTS (SELECT 1 FROM trials "
    "WHERE project_id = p.project_id AND values_key = ?)")


class AheadMixin(DecidingAhead):
    """Quick decisions made ahead of the write lock, for
    :class:`hpstore.store.sqlite.project.SQLiteProject`."""

    db: AnyDatabase
    project_id: int

    if TYPE_CHECKING:  # provided by the project class and its reading mixin
        def _write_state(self, conn: sqlite3.Connection, values: Mapping[str, Any]
                         ) -> None: ...
        def _looked_up(self, key: str) -> bool: ...

    def has_values(self, key: str) -> bool:
        """Whether a trial holds values with this key (see the store contract); while
        this thread decides ahead, False without reading (the insert looks it up)."""
        return False if self._deferred_look_up(key) else self._looked_up(key)

    def _decide_ahead(self, decider: Decider) -> tuple[CreationFacts, Decision] | None:
        """The decision on the facts expected, made before any lock; None when there is
        none to record ahead (not foreseen, or it read the store, raised, or is not a new
        trial whose only look-up is its own values: it is then made under the lock)."""
        if not self._may_ask_ahead():
            return None
        facts = self._expected
        assert facts is not None
        decision = self._ask_ahead(decider, facts, lambda: self.db.reads)
        if decision is None or any(key != decision.key for key in self._deferred):
            return None
        return facts, decision

    def _insert_ahead(self, conn: sqlite3.Connection, facts: CreationFacts,
                      decision: Decision, tuner_id: str, session: str | None
                      ) -> TrialRecord | None:
        """The trial decided ahead on ``facts``, inserted in the write transaction
        ``conn`` if they hold; None (nothing written) when they do not."""
        now, text, pid = time.time(), dumps(decision.values), os.getpid()
        # the trials_log_insert trigger records the first transition
        cur = conn.execute(_INSERT_AHEAD, (
            facts.number, decision.trial_id, text, decision.key, tuner_id, session, now, now,
            pid, now, self.project_id, facts.max_trials, facts.uncounted,
            facts.space_version, facts.number, decision.key))
        if not cur.rowcount:
            return None
        if decision.state:
            self._write_state(conn, decision.state)
        self._foreseen = True
        return self._new_trial(int(cur.lastrowid or 0), facts, decision, text, tuner_id,
                               session, now, pid)

    def _new_trial(self, key: int, facts: CreationFacts, decision: Decision, text: str,
                   tuner_id: str, session: str | None, now: float, pid: int) -> TrialRecord:
        """The record of the trial just inserted as row ``key``, decided on ``facts``;
        the next decision is expected to find the number after it."""
        self.db.started_here(key)
        self._expected = CreationFacts(facts.max_trials, facts.number + 1, False,
                                       facts.uncounted, facts.space_version, ())
        return TrialRecord(key, facts.number, decision.trial_id, TrialStatus.RUNNING, text,
                           decision.key, None, None, tuner_id, session, None, 1, 0, 0, None,
                           now, now, None, pid, now, _values=decision.values)
