"""Deciding a new trial in a PostgreSQL project: the decisions of
:class:`hpstore.store.postgresql.project.PostgresProject`.

A decision is one transaction under the project's decision lock (a transaction-level
advisory lock). Its opening round trip carries BEGIN, the running trials with whether their
workers live (when asked: read ahead of the lock, which is not held while they are read;
any started meanwhile by the workers ahead in the queue are read under it), the lock and
the facts; its closing one the new trial's row with the COMMIT. A quick
decider's look-ups of values run before are made by that insert, and a decision they
refuse is made again with real look-ups.

A worker alone on a project usually knows the facts before it reads them: the number after
its own last trial, nothing queued, nothing running. Once a decision found them so, the
next quick decision is made on them before any lock, and recorded in one round trip (BEGIN,
the lock, an insert that checks them, COMMIT); when they have changed, nothing is written
and the decision is made the usual way. A decider that draws ahead (random search) needs
of the running trials only that none runs its values: beside other workers it expects the
number its last strides foresee (with W workers taking turns, its last number plus W), and
its insert checks that no running trial is its tuner's, a dead worker's, or one with fewer
values that could still declare the rest. Workers do not keep their turns exactly (four
on two cores: one try in three found another number than the one foreseen, most often
one a slower worker had yet to take): once a worker's number was not the one it foresaw,
its decision goes with the decisions for the numbers near that one, each made on the same
facts but for its number, and the insert takes whichever is next under the lock.
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hpstore.errors import ProjectRemovedError, TunerIdInUseError
from hpstore.store.ahead import DecidingAhead
from hpstore.store.contract import CreationFacts, Decider, Decision
from hpstore.store.postgresql.database import STATISTICS_AT, Closing
from hpstore.store.postgresql.liveness import SESSION_LIVES
from hpstore.store.postgresql.names import check_names
from hpstore.store.postgresql.reading import TRIAL_COLUMNS
from hpstore.store.records import BOOKKEEPING, TrialRecord, dumps, is_identity_name
from hpstore.store.rows import trial_record
from hpstore.trial import TrialStatus

# What deciding the next trial starts from (CreationFacts), in one statement: max_trials,
# the next number, whether a trial waits in the queue, the trials not counted, the space's
# version.
_FACTS_COLUMNS = (
    "p.max_trials, (SELECT number + 1 FROM trials WHERE project_id = p.project_id ORDER BY "
    "number DESC LIMIT 1), EXISTS (SELECT 1 FROM trials WHERE project_id = p.project_id AND "
    "queued IS NOT NULL), p.uncounted, p.space_version")
_FACTS = f"SELECT {_FACTS_COLUMNS} FROM projects AS p WHERE p.project_id = %s"
# ... and for a decision, whether the tuner id runs a trial in another session, and the
# numbers of the running trials (under the lock: see _since).
_DECISION_FACTS = (
    f"SELECT {_FACTS_COLUMNS}, EXISTS (SELECT 1 FROM trials WHERE project_id = p.project_id "
    "AND status = 'RUNNING' AND tuner_id = %s AND session IS DISTINCT FROM %s), ARRAY("
    "SELECT number FROM trials WHERE project_id = p.project_id AND status = 'RUNNING') "
    "FROM projects AS p WHERE p.project_id = %s")
_RUNNING_NUMBERED = (f"SELECT {TRIAL_COLUMNS} FROM trials WHERE project_id = %s AND number = "
                     "ANY(%s) AND status = 'RUNNING' ORDER BY number")

# The running trials by number, each with whether its worker lives (holds its liveness
# lock: see liveness.py), read when asked in the decision's first round trip, ahead of
# the lock: the lock is not held while they are read.
_RUNNING_LIVES = (f"SELECT {TRIAL_COLUMNS}, {SESSION_LIVES} FROM trials WHERE project_id = %s "
                  "AND status = 'RUNNING' ORDER BY number")

# A new trial and the algorithm's state, in one statement, under the status-log lock (the
# lock is the insert's source, so it is held before the trigger logs the first status).
# A quick decider's look-ups of values run before are made here: when any key it asked
# about had run (the decision lock is held: no decision can race), nothing is written, the
# state included, and the decision is made again.
_INSERT_HEAD = (
    "WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock(%s, %s)), "
    "trial AS (INSERT INTO trials (project_id, number, trial_id, status, hp_values, values_key,"
    " tuner_id, session, run_count, created_at, started_at, pid, changed_at) SELECT %s, ")
_INSERT_INTO = f"{_INSERT_HEAD}%s, %s, 'RUNNING', %s, %s, %s, %s, 1, %s, %s, %s, %s "
_NEVER_RUN = (
    "NOT EXISTS (SELECT 1 FROM trials WHERE project_id = %s AND values_key = ANY(%s::text[]))")
_AND_STATE = (
    " RETURNING id), state AS (INSERT INTO oracle_state (project_id, key, value) SELECT %s, "
    "s.key, s.value::json FROM unnest(%s::text[], %s::text[]) AS s(key, value) WHERE EXISTS "
    "(SELECT 1 FROM trial) ON CONFLICT (project_id, key) DO UPDATE SET value = excluded.value) ")
_INSERT_TRIAL = f"{_INSERT_INTO}FROM lock WHERE {_NEVER_RUN}{_AND_STATE}SELECT id FROM trial"
# a value's name k that tells what was tried (as hpstore.store.records.is_identity_name)
_IDENTITY_NAME = "(k NOT IN (%s))" % ", ".join(  # noqa: UP031 (names of ours, not a user's)
    f"'{name}'" for name in sorted(BOOKKEEPING - {"tuner/trial_id"}))
# ... and one decided ahead of the lock (see DecidingMixin._decide_ahead): written only
# if, under the decision lock, the project's settings, its next number and its space are
# those it was decided on, no trial waits in the queue, and no trial runs; or, for a
# decider that draws ahead (the first parameter after the number true), none of the
# running trials is this tuner's, a dead worker's (to be handed back or reaped first), or
# has fewer values than the decision, all of them named in it (one that could still
# complete them: see hpstore.oracle.values.completes; bookkeeping values tuner/... do not
# count, but tuner/trial_id does). A running trial of another branch of a conditional
# space names a value the decision lacks, so it never refuses it.
_AS_FORESEEN = (
    "p.project_id = %s AND p.max_trials IS NOT DISTINCT FROM %s::bigint AND p.uncounted = %s "
    "AND p.space_version = %s AND coalesce((SELECT number + 1 FROM trials WHERE project_id = "
    "p.project_id ORDER BY number DESC LIMIT 1), 0) = ")
_NOTHING_IN_THE_WAY = (
    " AND NOT EXISTS (SELECT 1 FROM trials WHERE project_id = p.project_id AND "
    "queued IS NOT NULL) AND NOT EXISTS (SELECT 1 FROM trials WHERE project_id = "
    "p.project_id AND status = 'RUNNING' AND (NOT %s OR tuner_id = %s OR (session IS NOT "
    f"NULL AND session IS DISTINCT FROM %s AND NOT {SESSION_LIVES}) OR (SELECT count(*) "
    f"FROM json_object_keys(hp_values) AS k WHERE {_IDENTITY_NAME}) < cardinality(%s::text[]) "
    "AND NOT EXISTS (SELECT 1 FROM json_object_keys(hp_values) AS k WHERE "
    f"{_IDENTITY_NAME} AND k <> ALL(%s::text[]))))")
_INSERT_AHEAD = (f"{_INSERT_INTO}FROM lock, projects AS p WHERE {_AS_FORESEEN}%s"
                 f"{_NOTHING_IN_THE_WAY} AND {_NEVER_RUN}{_AND_STATE}SELECT id FROM trial")
# ... and one of several decided ahead, one for each number near the one foreseen (see
# DecidingMixin._near): the one whose number is next, if any, on the same conditions;
# a decision among them stores no state, and each looks up its own values only.
_INSERT_NEAR = (
    f"{_INSERT_HEAD}c.number, c.trial_id, 'RUNNING', c.hp_values::json, c.values_key, %s, %s, "
    "1, %s, %s, %s, %s FROM lock, projects AS p, unnest(%s::bigint[], %s::text[], %s::text[],"
    " %s::text[]) AS c(number, trial_id, hp_values, values_key) WHERE "
    f"{_AS_FORESEEN}c.number{_NOTHING_IN_THE_WAY} AND NOT EXISTS (SELECT 1 FROM trials WHERE "
    "project_id = p.project_id AND values_key = c.values_key) RETURNING id, number) "
    "SELECT id, number FROM trial")
_WRITE_STATE = (
    "INSERT INTO oracle_state (project_id, key, value) SELECT %s, s.key, s.value::json FROM "
    "unnest(%s::text[], %s::text[]) AS s(key, value) "
    "ON CONFLICT (project_id, key) DO UPDATE SET value = excluded.value")

#: how many of a worker's last strides between its numbers foresee its next number
_STRIDES_KEPT = 8
#: how far from the number foreseen a decision made ahead may take another (see _near)
_NEAR = 2


class _LookFirst:
    """What _decide answers when a running trial must be handed back or reaped first."""


_LOOK_FIRST = _LookFirst()


class _Unchecked(Exception):
    """A quick decision other than a new trial was made on look-ups answered without
    reading: it is rolled back and made again."""


def facts_of(row: Any) -> CreationFacts:
    """A CreationFacts from the first five columns of a _FACTS row."""
    return CreationFacts(row[0], int(row[1] or 0), bool(row[2]), int(row[3]), int(row[4]))


class DecidingMixin(DecidingAhead):
    """How :class:`hpstore.store.postgresql.project.PostgresProject` decides new trials
    (what it shares with the SQLite engine's decisions made ahead: DecidingAhead)."""

    db: Any
    project_id: int
    #: the last number this worker took, and how far each of its last numbers was from
    #: the one before: with W workers on a project it is W as a rule
    _last_number: int | None = None
    _strides: collections.deque[int] | None = None
    #: of this worker's last decisions made ahead, whether each took another number than
    #: the one foreseen (or none)
    _surprises: collections.deque[bool] | None = None

    if TYPE_CHECKING:  # provided by the project class
        def removed(self) -> ProjectRemovedError: ...
        def _guard(self, call: Any) -> Any: ...
        def _take_queued(self, conn: Any, tuner_id: str, session: str | None
                         ) -> TrialRecord | None: ...

    def creation_facts(self) -> CreationFacts:
        """What deciding the next trial needs, read in one statement."""
        return self._facts(None)

    def _facts(self, conn: Any) -> CreationFacts:
        """The creation facts, read on ``conn`` (None: on their own)."""
        if conn is None:
            found = self.db.query(_FACTS, (self.project_id,))
            row = found[0] if found else None
        else:
            row = conn.execute(_FACTS, (self.project_id,)).fetchone()
        if row is None:
            raise self.removed()
        return facts_of(row)

    def decide(self, decider: Decider, *, tuner_id: str, session: str | None,
               quick: bool = False, running: bool = False,
               draws_ahead: bool = False) -> TrialRecord | Decision | None:
        # Every decision is recorded under the project's decision lock, and made in the
        # transaction that records it, or (a quick decision, on the facts the worker
        # expects) ahead of it, on facts the insert checks under the lock. A quick
        # decider's look-ups of values run before are answered by the insert that records
        # its decision (one round trip less under the lock); should its values turn out to
        # have run, nothing was written and it decides again, looking up each candidate as
        # it goes (both ways give the same answer; a slow decider, a model to fit, looks up
        # as it goes from the start).
        outcome: TrialRecord | Decision | _LookFirst | None = None
        if quick and running and self._may_ask_ahead():
            # as the last decision found: decided on the facts it left
            assert self._expected is not None
            outcome = self._decide_ahead(decider, tuner_id, session, self._expected,
                                         draws_ahead)
        if outcome is None:
            outcome = self._decide(decider, tuner_id, session, defer=quick, running=running,
                                   draws_ahead=draws_ahead)
        if outcome is None:
            outcome = self._decide(decider, tuner_id, session, defer=False, running=running,
                                   draws_ahead=draws_ahead)
        # (without deferred look-ups nothing is refused: the second answer is never None)
        assert outcome is not None
        if isinstance(outcome, TrialRecord) and outcome.number in STATISTICS_AT:
            self.db.refresh_statistics()  # after the COMMIT: outside the decision lock
        return None if isinstance(outcome, _LookFirst) else outcome

    def _decide(self, decider: Decider, tuner_id: str, session: str | None, *,
                defer: bool, running: bool, draws_ahead: bool = False
                ) -> TrialRecord | Decision | _LookFirst | None:
        """One transaction under the project's decision lock: the algorithm's reads run on
        this connection inside it (read committed: they see every decision committed before
        the lock was granted), and its decision is recorded before the lock goes. None:
        the values decided had run before (only when ``defer``); _LOOK_FIRST: a running
        trial is to be handed back or reaped first (only when ``running``)."""
        def decide(conn: Any) -> TrialRecord | Decision | Closing | _LookFirst:
            # the facts were read with the BEGIN and the lock (the transaction's opening)
            found = self.db.opened[0] if self.db.opened else None
            if found is None:
                raise self.removed()
            facts, in_use = facts_of(found), bool(found[5])
            expected, self._expected = self._expected, None  # set again by a new trial
            # (other workers' running trials do not matter to a decider that draws ahead:
            # the insert made ahead checks what does; nor does its number being another
            # than foreseen, which the numbers near it sent along allow for: see _near)
            self._foreseen = running and expected is not None and (
                facts._replace(number=expected.number) == expected if draws_ahead
                else facts == expected and not self.db.preceded)
            if running:
                trials = [(trial_record(r[:-1]), bool(r[-1])) for r in self.db.preceded]
                if any(t.tuner_id == tuner_id or (not live and t.session is not None
                                                  and t.session != session)
                       for t, live in trials):
                    return _LOOK_FIRST  # nothing written: its COMMIT ends a reading
                facts = facts._replace(running=tuple(t for t, _ in trials)
                                       + self._since(conn, trials, found[6]))
            if facts.queued:  # a trial waiting to run comes before any new one
                taken = self._take_queued(conn, tuner_id, session)
                if taken is not None:
                    return taken
            self._deferring, self._deferred = (threading.get_ident() if defer else None), []
            try:
                decision = decider(facts)
            finally:
                self._deferring = None
            asked = self._deferred
            if decision.status != TrialStatus.RUNNING and asked:
                raise _Unchecked  # made on look-ups not made: made again, looking
            if decision.status != TrialStatus.RUNNING:
                if decision.state:
                    self._write_state(conn, decision.state)
                return decision
            if in_use:  # checked under the decision lock: no trial can start meanwhile
                raise TunerIdInUseError(
                    f"Tuner id {tuner_id!r} is running a trial in another live process. Give "
                    "each process its own tuner_id.")
            checked = list(dict.fromkeys([*asked, decision.key])) if defer else []
            return self._insert_trial(facts, decision, tuner_id, session, checked,
                                      draws_ahead=draws_ahead)

        try:
            return self._guard(  # type: ignore[no-any-return]
                lambda: self.db.transaction(
                    decide, lock=("decide", self.project_id),
                    opening=(_DECISION_FACTS, (tuner_id, session, self.project_id)),
                    before=(_RUNNING_LIVES, (self.db.keys["live"], self.project_id))
                    if running else None))
        except _Unchecked:
            return None

    def _since(self, conn: Any, trials: list[tuple[TrialRecord, bool]],
               numbers: list[int] | None) -> tuple[TrialRecord, ...]:
        """The trials running under the lock (``numbers``) that were not among ``trials``,
        read ahead of it: started by the workers this one queued behind for the lock.
        Left out, one that ended during this decision, recorded with the hyperparameters it
        declared, had its first values handed out again (the look-up of their digest finds
        the values it ended with). None as a rule: no round trip."""
        known = {t.number for t, _ in trials}
        since = [n for n in numbers or () if n not in known]
        if not since:
            return ()
        return tuple(trial_record(r) for r in conn.execute(
            _RUNNING_NUMBERED, (self.project_id, since)).fetchall())

    def _insert_trial(self, facts: CreationFacts, decision: Decision, tuner_id: str,
                      session: str | None, checked: list[str], *, ahead: bool = False,
                      draws_ahead: bool = False) -> Closing:
        """The new trial's insert, sent with the decision's COMMIT; it makes a TrialRecord,
        or None when one of the values keys ``checked`` turns out to have run before (or,
        decided ``ahead`` of the lock, when the facts under the lock are not ``facts``:
        see _INSERT_AHEAD for what ``draws_ahead`` lets run meanwhile)."""
        now = self.db.now()
        number = facts.number
        text = dumps(decision.values)
        keys, texts = self._state_rows(decision.state)

        def inserted(rows: list[tuple[Any, ...]]) -> TrialRecord | None:
            if not rows:
                return None
            return self._new_record(facts, int(rows[0][0]), number, decision, text, tuner_id,
                                    session, now, draws_ahead=draws_ahead)

        row = (self.db.keys["log"], self.project_id & 0x7FFFFFFF, self.project_id, number,
               decision.trial_id, text, decision.key, tuner_id, session, now, now, os.getpid(),
               now)
        guard = (self.project_id, facts.max_trials, facts.uncounted, facts.space_version,
                 number, draws_ahead, tuner_id, session, self.db.keys["live"],
                 *([k for k in decision.values if is_identity_name(k)],) * 2) if ahead else ()
        # the trials_log_insert trigger records the first transition
        return Closing(_INSERT_AHEAD if ahead else _INSERT_TRIAL, (
            *row, *guard, self.project_id, checked, self.project_id, keys, texts), inserted,
            # this very row (another worker may have taken the number since, if this one
            # was refused): its number, values, session and time of creation
            ("SELECT id FROM trials WHERE project_id = %s AND number = %s AND trial_id = %s "
             "AND values_key = %s AND tuner_id = %s AND session IS NOT DISTINCT FROM %s AND "
             "created_at = %s", (self.project_id, number, decision.trial_id, decision.key,
                                 tuner_id, session, now)))

    def _new_record(self, facts: CreationFacts, row_id: int, number: int, decision: Decision,
                    text: str, tuner_id: str, session: str | None, now: float, *,
                    draws_ahead: bool) -> TrialRecord:
        """The trial inserted as ``number`` on ``facts``, with the facts this worker's next
        decision is to find."""
        self._expected = CreationFacts(
            facts.max_trials, number + (self._stride(number) if draws_ahead else 1),
            False, facts.uncounted, facts.space_version)
        return TrialRecord(row_id, number, decision.trial_id, TrialStatus.RUNNING, text,
                           decision.key, None, None, tuner_id, session, None, 1, 0, 0, None,
                           now, now, None, os.getpid(), now, _values=decision.values)

    def _insert_near(self, facts: CreationFacts, near: dict[int, Decision], tuner_id: str,
                     session: str | None) -> Closing:
        """The insert of whichever of the decisions ``near`` (by number, each made ahead
        on ``facts`` with that number) is for the next number under the lock, on the
        conditions of _INSERT_AHEAD for a decider that draws ahead; it makes a
        TrialRecord, or None when none is (nothing was written)."""
        now = self.db.now()
        numbers = list(near)
        texts = [dumps(near[n].values) for n in numbers]
        keys = [near[n].key for n in numbers]
        names = [k for k in near[facts.number].values if is_identity_name(k)]

        def inserted(rows: list[tuple[Any, ...]]) -> TrialRecord | None:
            if not rows:
                return None
            number = int(rows[0][1])
            return self._new_record(facts, int(rows[0][0]), number, near[number],
                                    texts[numbers.index(number)], tuner_id, session, now,
                                    draws_ahead=True)

        return Closing(_INSERT_NEAR, (
            self.db.keys["log"], self.project_id & 0x7FFFFFFF, self.project_id, tuner_id,
            session, now, now, os.getpid(), now, numbers, [near[n].trial_id for n in numbers],
            texts, keys, self.project_id, facts.max_trials, facts.uncounted,
            facts.space_version, True, tuner_id, session, self.db.keys["live"], names, names),
            inserted,
            # the one row of them that landed, should the connection drop after the COMMIT
            ("SELECT id, number FROM trials WHERE project_id = %s AND (number, values_key) IN "
             "(SELECT * FROM unnest(%s::bigint[], %s::text[])) AND tuner_id = %s AND session "
             "IS NOT DISTINCT FROM %s AND created_at = %s",
             (self.project_id, numbers, keys, tuner_id, session, now)))

    def _near(self, decider: Decider, facts: CreationFacts, decision: Decision
              ) -> dict[int, Decision]:
        """``decision`` (made ahead on ``facts``) and the decisions on the numbers near
        ``facts.number`` (after this worker's last), by number, when its last numbers were
        not always those it foresaw: workers do not keep their turns exactly, and a
        number that another worker was foreseen to take first, or that one took out of
        turn, is then taken in the same round trip instead of the decision being made the
        long way. Empty when the numbers were foreseen (one decision is sent, as alone),
        or when ``decision`` stores state or looked up other values than its own."""
        if (self._last_number is None or not any(self._surprises or ())
                or decision.state or self._deferred != [decision.key]):
            return {}
        names = {k for k in decision.values if is_identity_name(k)}
        near = {facts.number: decision}
        for number in range(max(self._last_number + 1, facts.number - _NEAR),
                            facts.number + _NEAR + 1):
            if number == facts.number:
                continue
            other = self._ask_ahead(decider, facts._replace(number=number), self._reads)
            # (one beyond max_trials, or one refused, is left out)
            if (other is not None and not other.state and self._deferred == [other.key]
                    and {k for k in other.values if is_identity_name(k)} == names):
                near[number] = other
        return near if len(near) > 1 else {}

    def _decide_ahead(self, decider: Decider, tuner_id: str, session: str | None,
                      facts: CreationFacts, draws_ahead: bool) -> TrialRecord | None:
        """The decision made on ``facts`` (nothing queued, no running trial in them)
        before any lock, and recorded in one round trip (the decision lock and the insert,
        one transaction: see Database.at_once) if the facts under the lock are those (for a
        decider that ``draws_ahead``: and no running trial matters to it, see
        _INSERT_AHEAD); None when they are not (nothing was written), or when the decider
        read the store or decided something other than a new trial: then the decision is
        made the usual way.

        A quick decider is a function of the facts and of the look-ups of values run
        before (which the insert makes): on the same facts it decides the same, so a
        decision made ahead on facts that turn out true is the one the lock would have
        given. Its reads of anything else are not checked by the insert: a decider that
        reads the store is not asked ahead again after a few tries.
        """
        if facts.queued or self.db.in_transaction:
            return None
        decision = self._ask_ahead(decider, facts, self._reads)
        if decision is None:
            return None
        checked = list(dict.fromkeys([*self._deferred, decision.key]))
        near = self._near(decider, facts, decision) if draws_ahead else {}
        last = (self._insert_near(facts, near, tuner_id, session) if near else
                self._insert_trial(facts, decision, tuner_id, session, checked, ahead=True,
                                   draws_ahead=draws_ahead))
        if self._surprises is None:
            self._surprises = collections.deque(maxlen=_STRIDES_KEPT)
        try:
            made = self.db.at_once(("decide", self.project_id), last)
        except (self.db.psycopg.IntegrityError, self.db.psycopg.DataError):
            self._surprises.append(True)
            return None  # made again the usual way, which says what was refused
        self._surprises.append(made is None or made.number != facts.number)
        if made is not None:
            self._foreseen = True
        return made  # type: ignore[no-any-return]

    def _reads(self) -> int:
        """How many statements this project's connection has sent (a decider asked ahead
        that reads the store sends some)."""
        return int(self.db.statements)

    def _stride(self, number: int) -> int:
        """How far this worker's next number is expected to be from ``number``, the one it
        just took: its last stride when the one before was the same, else the most frequent
        of its last strides (the most recent of those tied).
        With several workers on a project each takes about one number between two of
        another's, however long their trials run."""
        if self._strides is None:
            self._strides = collections.deque(maxlen=_STRIDES_KEPT)
        if self._last_number is not None and number > self._last_number:
            self._strides.append(number - self._last_number)
        self._last_number = number
        if not self._strides:
            return 1
        if len(self._strides) >= 2 and self._strides[-1] == self._strides[-2]:
            return self._strides[-1]  # (workers came or went: follow at once)
        counts = collections.Counter(self._strides)
        return max(reversed(self._strides), key=counts.__getitem__)

    def _grew_space(self, version: int) -> None:
        """This worker grew the space to ``version``: its next decision may still be made
        ahead (should the growth not commit, the insert's check refuses that decision)."""
        if self._expected is not None and self._expected.space_version == version - 1:
            self._expected = self._expected._replace(space_version=version)

    @staticmethod
    def _state_rows(values: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        """(keys, JSON texts) of what ``set_state_value`` stored with a decision.

        Raises:
            NameTooLongError: a key longer than the index takes; nothing is written.
        """
        check_names("oracle state key", values)
        return [str(k) for k in values], [dumps(v) for v in values.values()]

    def _write_state(self, conn: Any, values: Mapping[str, Any]) -> None:
        conn.execute(_WRITE_STATE, (self.project_id, *self._state_rows(values)))
