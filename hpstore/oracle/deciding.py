"""create_trial: hand back, re-run or decide, and what an algorithm works with to decide.

Each step is one atomic call of the store contract: dead workers' trials are handed back,
a worker's own running trial returned, a queued trial taken, and only then is
``populate_space`` asked, inside the store's ``decide``, which serialises decisions per
project and records the new trial with the algorithm state that decided it.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpstore.errors import DuplicateValuesError, OracleContractError, TunerIdInUseError
from hpstore.hyperparameters import HyperParameter, HyperParameters
from hpstore.hyperparameters.base import to_jsonable, unicode_problem
from hpstore.hyperparameters.enumerate import count_configurations, iter_configurations
from hpstore.oracle.draws import SeededDraws
from hpstore.oracle.trials import KeptRun, trial_from
from hpstore.oracle.values import completes, proposed, values_key
from hpstore.store.contract import CreationFacts, Decision, ProjectStore, Store
from hpstore.store.decode import damaged
from hpstore.store.records import TrialRecord
from hpstore.trial import Trial, TrialStatus

#: times a dead worker may take a trial down with it before the trial is FAILED
MAX_INTERRUPTIONS = 3
_POPULATE_ATTEMPTS = 10
_RANDOM_ATTEMPTS = 64
_LONG_ATTEMPTS = 4096  # draws before a space too large to list is called used up
#: methods a subclass overrides to decide differently (see __init_subclass__)
_DECIDING_METHODS = ("populate_space", "random_values", "_random_values", "is_taken",
                     "exhausted")


@dataclass
class DecisionContext:
    """What an oracle's ``populate_space`` works with: the trial being decided.

    Attributes:
        number: the trial's number (0, 1, 2, ... in creation order).
        trial_id: its id.
        recorded: False when ``populate_space`` was called directly, outside
            ``create_trial``: then nothing it stores is written.
        state: algorithm state to store with the trial, in the same transaction.
        running: the values of the trials running now.
    """

    number: int
    trial_id: str
    recorded: bool = True
    state: dict[str, Any] = field(default_factory=dict)
    running: list[dict[str, Any]] = field(default_factory=list)
    #: False while values are drawn ahead of the lock: the look-up in the store is left to
    #: the check made holding it (one read fewer per trial where workers queue)
    look_up: bool = True
    fresh_key: str = ""
    fresh_values: dict[str, Any] | None = None


def _check_state_key(key: Any) -> None:
    """Refuse a state key that is no name: a list or None reached SQLite, and came back
    as a DatabaseError ("SQLite failed on FILE"), the store blamed for an argument."""
    if not isinstance(key, str) or not key:
        raise TypeError(f"An oracle state's key must be a non-empty string (a name of your "
                        f"own, such as 'generation'), received {key!r}.")


def format_id(number: int, max_trials: int | None) -> str:
    # KerasTuner's width: the digits of max_trials; len("None") = 4 without a limit.
    return f"{number:0{len(str(max_trials))}d}"


class DecidingMixin:
    """``create_trial`` and the subclass API of :class:`hpstore.Oracle`."""

    seed: int
    _store: Store
    _project: ProjectStore
    _space: HyperParameters
    _space_version: int
    _space_held: int
    _local: threading.local
    _handed: dict[str, tuple[int, float | None]]
    _ended_stopped: set[str]
    _kept: dict[str, KeptRun]

    #: True when ``populate_space`` is cheap (no model to fit, no long reads): each
    #: decision is then made inside the transaction that records it, with no lock held
    #: across it (faster, and several workers wait on each other less). Leave it False in
    #: an oracle whose decisions take long: they are then made under a lock of their own,
    #: while other workers go on recording. On PostgreSQL a quick decision's
    #: ``self.project.has_values()`` answers False without a round trip and the keys it
    #: was asked about are looked up as the trial is recorded: had one run, the decision
    #: is made again with real answers; and a worker alone on the project (or, with
    #: ``draws_ahead``, beside others) decides before taking any lock, on the facts its
    #: last decision left, recorded only if they still hold (else decided again). So
    #: ``populate_space`` may run more than once for one
    #: trial and must not keep state of its own between calls (``set_state_value`` is
    #: fine: it is written only with the trial).
    decides_quickly: bool = False
    #: True when ``populate_space`` depends on nothing but the trial's number, the space
    #: and the values run or running (no stored state), and uses the running trials only
    #: not to repeat what they run: on a local file each trial's values are then drawn
    #: before any lock is taken, and only checked again under it (a worker alone, on the
    #: facts its last decision left, its look-ups answered without reading and made by
    #: the insert, as on a server; while other writers queue, on facts read before the
    #: lock). On a server they are
    #: drawn ahead for the number the worker expects (the last one it took plus its usual
    #: stride: with W workers, W) even while other workers run trials, and recorded only
    #: if, under the lock, that is the next number and no running trial is this tuner's,
    #: a dead worker's, or has fewer values, all named in the decision (one that may
    #: still declare the rest).
    draws_ahead: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A subclass with its own populate_space may think for long or keep state: it
        # decides under the lock, in its own step, unless it says otherwise. So does one
        # that changes what random search proposes or how it avoids what runs.
        if any(name in cls.__dict__ for name in _DECIDING_METHODS):
            for flag in ("decides_quickly", "draws_ahead"):
                if flag not in cls.__dict__:
                    setattr(cls, flag, False)

    if TYPE_CHECKING:  # provided by SpaceMixin
        def _refresh_space(self, version: int | None = None) -> None: ...
        def _keep_declared_here(self) -> None: ...
        def get_space(self) -> HyperParameters: ...

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """Decide the next trial: return ``{"status": "RUNNING", "values": {...}}``, or
        ``{"status": "IDLE"}`` (nothing to start yet) or ``{"status": "STOPPED"}`` (done).

        Subclasses implement it. Inside ``create_trial`` it runs under the search's lock,
        so it may read the store and call ``self.set_state_value`` without racing other
        processes; ``self.decision`` holds the trial's number and the running trials,
        ``self.random_values()`` gives unseen random values and ``self.rng()`` a seeded
        generator. Called directly, it decides the next trial and records nothing.

        Raises:
            NotImplementedError: on the base class.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement populate_space(trial_id); use one of the "
            "built-in oracles or subclass Oracle.")

    def create_trial(self, tuner_id: str) -> Trial:
        """Create (or hand back) a trial for the worker ``tuner_id``.

        A worker that already holds a running trial gets it back; else a trial waiting for a
        re-run (after an INVALID result or a dead worker) is started; else, within
        ``max_trials``, ``populate_space`` decides. The trial's status says what to do:
        RUNNING (run it), IDLE (ask again later) or STOPPED (the search is over).

        Raises:
            TunerIdInUseError: another live process is running a trial under this tuner id.
            DuplicateValuesError: ``populate_space`` keeps proposing values already run.
            OracleContractError: ``populate_space`` answered what no trial can start with
                (not the documented dict, a value its hyperparameter cannot take); nothing
                is recorded.
            ProjectRemovedError: another process removed or replaced the project.
        """
        if not isinstance(tuner_id, str) or not tuner_id:
            raise ValueError(f"`tuner_id` must be a non-empty string, received {tuner_id!r}.")
        if (problem := unicode_problem(tuner_id)) is not None:
            raise ValueError(f"`tuner_id` {tuner_id!r} cannot be stored: {problem}.")
        session = self._store.session()
        if self._project.remote or (self.decides_quickly and not self._store.contended()):
            # On a server every read is a round trip: the running trials (with whether their
            # workers live) are read in the round trip that takes the decision's lock, just
            # ahead of it, and only when one is to be handed back or reaped is the long way
            # below taken. On a file, a quick decision with no other writer waiting does
            # the same inside its write transaction, where the statement of the decision's
            # facts says whether any trial runs (one read, and its read transaction, fewer
            # a trial); while writers queue, the running trials are read before the lock,
            # as below, so that values can be drawn ahead of it.
            started = self._start_new(tuner_id, session, None)
            if started is not None:
                return started
        running = self._project.running()
        others = {t.session: t.pid for t in running
                  if t.session is not None and t.session != session}
        dead = set(others) - self._store.alive(others) if others else set()
        if dead:
            self._project.reap(dead, MAX_INTERRUPTIONS)
            running = self._project.running()
        own = next((t for t in running if t.tuner_id == tuner_id), None)
        if own is not None:
            if own.session != session:
                if not self._store.owns(own.session):
                    raise TunerIdInUseError(
                        f"Tuner id {tuner_id!r} is running trial {own.trial_id} in another "
                        "live process. Give each process its own tuner_id.")
                # an earlier Oracle of this process on the same file left it running
                own = self._project.adopt(own, session)
            self._refresh_space()
            return self._handed_out(own)
        started = self._start_new(tuner_id, session, running)
        assert started is not None  # (only a read of the running trials may send us back)
        return started

    def _start_new(self, tuner_id: str, session: str | None,
                   running: list[TrialRecord] | None) -> Trial | None:
        """A trial from the queue, or decided by the algorithm, for a tuner with none
        running; ``running``: the running trials, None to read them with the decision's
        facts (then None is returned when one must first be handed back or reaped)."""
        if len(self._space._space) != self._space_held:  # (the list itself: no copy)
            # Declared on oracle.hyperparameters since (KerasTuner's way): stored by a
            # commit of its own before the decision's. Stored by the decision's, a cut
            # connection rolled them back and the decision, made again, read the stored
            # space back without them (this object had taken it as stored).
            self._keep_declared_here()
        running_values = None if running is None else [t.values for t in running]
        # Drawn before the lock only while other writers queue for it: then it shortens
        # the time they wait; alone, it would only read everything twice.
        ahead = (self._draw_ahead(running_values) if self.draws_ahead
                 and running_values is not None and not self._project.remote
                 and self._store.contended() else None)

        def decide(facts: CreationFacts) -> Decision:
            self._refresh_space(facts.space_version)
            trial_id = format_id(facts.number, facts.max_trials)
            if facts.full:
                return Decision(TrialStatus.STOPPED, trial_id)
            if (ahead is not None and ahead[0] == (facts.number, self._space_version)
                    and not self._project.has_values(ahead[1].key)):
                # drawn for this very number and space before the write lock, and still
                # never run: checked again here, where the file cannot change
                drawn = ahead[1]
                return Decision(drawn.status, trial_id, drawn.values, drawn.key)
            if running_values is None:
                values = [t.values for t in facts.running or ()]
            elif not self.decides_quickly:
                # Read again now that no other decision can be made: a trial started by
                # the worker this one waited for was not running yet when they were read
                # before the lock, and, ended meanwhile with the hyperparameters it
                # declared, its first values were handed out again. (A quick decision on
                # a file is made in the transaction that records it: no trial ends
                # during it.)
                values = [t.values for t in self._project.running()]
            else:
                values = running_values
            context = DecisionContext(facts.number, trial_id, running=values)
            self._local.decision = context
            try:
                return self._decide(trial_id, context)
            finally:
                self._local.decision = None

        # a trial waiting to run again comes first; else the algorithm decides
        outcome = self._project.decide(decide, tuner_id=tuner_id, session=session,
                                       quick=self.decides_quickly, running=running is None,
                                       draws_ahead=self.draws_ahead)
        if outcome is None:
            return None
        if isinstance(outcome, Decision):
            return Trial(self.get_space(), trial_id=outcome.trial_id, status=outcome.status)
        self._handed[outcome.trial_id] = (outcome.run, outcome.started_at)
        # (a new trial under the id of one this process ended STOPPED, its end and its
        # creation lost with a server's last commits: this run is not that one)
        self._ended_stopped.discard(outcome.trial_id)
        self._kept[outcome.trial_id] = KeptRun(outcome)  # a run just started: no values yet
        return trial_from(outcome, self._space, self._project, metrics=outcome.run > 1)

    def _draw_ahead(self, running: list[dict[str, Any]]
                    ) -> tuple[tuple[int, int], Decision] | None:
        """The decision for the next trial number as the file stands now, made before any
        lock is taken; None when there is none to make ahead (the search is full, a trial
        waits in the queue, or the algorithm answers something else than RUNNING)."""
        facts = self._project.creation_facts()
        self._refresh_space(facts.space_version)
        if facts.full or facts.queued:
            return None
        trial_id = format_id(facts.number, facts.max_trials)
        context = DecisionContext(facts.number, trial_id, running=running, look_up=False)
        self._local.decision = context
        try:
            decision = self._decide(trial_id, context)
        except DuplicateValuesError:
            return None  # decided again under the lock, where the error is raised
        finally:
            self._local.decision = None
        if decision.status != TrialStatus.RUNNING or decision.state:
            return None
        return (facts.number, self._space_version), decision

    def _decide(self, trial_id: str, context: DecisionContext) -> Decision:
        """populate_space's answer as a Decision: values never run before, nor being
        completed by a running trial, with the state it stored."""
        try:
            for attempt in range(_POPULATE_ATTEMPTS):
                # (asked again after values already run: self.rng() draws afresh, where it
                # gave the same values at each of the ten asks, and the search stopped)
                self._local.attempt = attempt
                response = self.populate_space(trial_id)
                status, values = _check_response(response, type(self).__name__,
                                                 trusted=context.fresh_values)
                if values is not context.fresh_values:
                    # as the search holds them: 3.0 of an Int is 3, so {"u": 3.0} and {"u": 3}
                    # are one set of values, never run twice
                    values = proposed(self._space, values, type(self).__name__)
                if status != TrialStatus.RUNNING:
                    return Decision(status, trial_id, state=context.state)
                if values is context.fresh_values:  # drawn and looked up by random_values
                    return Decision(status, trial_id, values, context.fresh_key, context.state)
                key = values_key(values)
                if not self.is_taken(values, key):
                    return Decision(status, trial_id, values, key, context.state)
        finally:
            self._local.attempt = 0
        raise DuplicateValuesError(
            f"{type(self).__name__}.populate_space proposed values already run (or being run) "
            f"{_POPULATE_ATTEMPTS} times in a row (last: {values}). It must return values "
            "not tried before, or status IDLE / STOPPED when none are left.")

    def _handed_out(self, record: TrialRecord) -> Trial:
        self._handed[record.trial_id] = (record.run, record.started_at)
        self._ended_stopped.discard(record.trial_id)  # (a run of its own: see _start_new)
        self._kept.pop(record.trial_id, None)  # what it reported before is not known here
        return trial_from(record, self._space, self._project)

    # -- for subclasses ----------------------------------------------------------------------------
    @property
    def decision(self) -> DecisionContext:
        """The trial being decided: inside ``create_trial`` the one it will record; when
        ``populate_space`` is called directly, the next trial, with nothing recorded."""
        context: DecisionContext | None = getattr(self._local, "decision", None)
        if context is None:
            self._refresh_space()
            facts = self._project.creation_facts()
            context = DecisionContext(facts.number, format_id(facts.number, facts.max_trials),
                                      recorded=False,
                                      running=[t.values for t in self._project.running()])
        return context

    def get_state_value(self, key: str, default: Any = None) -> Any:
        """A value the algorithm stored under ``key`` (this decision's pending one first).

        Raises:
            TypeError: ``key`` is not a non-empty string.
        """
        _check_state_key(key)
        pending = getattr(self._local, "decision", None)
        if pending is not None and key in pending.state:
            return pending.state[key]
        return self._project.get_value(key, default)

    def _state_object(self, key: str) -> dict[str, Any]:
        """A built-in algorithm's state under ``key``: a JSON object, or {} when none.

        Raises:
            NotAnHpstoreFileError: the store holds something else there.
        """
        value = self.get_state_value(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise damaged("oracle_state.value", value)
        return value

    def set_state_value(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` with the trial being decided, in the same
        transaction (not at all when ``populate_space`` was called directly).

        Raises:
            TypeError: ``key`` is not a non-empty string.
            NotJSONSerializableError: the value has no JSON form.
        """
        _check_state_key(key)
        value = to_jsonable(value, what=f"Oracle state {key!r}")
        pending = getattr(self._local, "decision", None)
        if pending is not None:
            pending.state[key] = value

    def rng(self, *salt: int | str) -> random.Random:
        """A random generator determined by the seed, the trial number and ``salt`` (numbers
        or strings: a trial id, a label of one's own); in a ``populate_space`` asked again
        because the values it proposed had run, by how many times it was asked too, so
        that it proposes others."""
        # A string seed goes through SHA-512 in Python's random: stable across processes
        # and versions, and far cheaper than numpy's SeedSequence.
        again = getattr(self._local, "attempt", 0)
        parts = (self.seed, self.decision.number, *salt, *((f"again {again}",) if again else ()))
        return random.Random(":".join(map(str, parts)))

    def is_taken(self, values: Mapping[str, Any], key: str | None = None) -> bool:
        """Whether ``values`` were run already, or are being run by a running trial (one
        that will record them once it declares its missing hyperparameters).

        Raises:
            TypeError: ``values`` is not a dict of name to value.
        """
        if type(values) is not dict and not isinstance(values, Mapping):
            raise TypeError(f"is_taken takes a dict of hyperparameter name to value, "
                            f"received {values!r}.")
        if self.decision.look_up and self._project.has_values(key or values_key(values)):
            return True
        space = self._space
        return any(completes(r, values, space) for r in self.decision.running)

    def random_values(self) -> dict[str, Any] | None:
        """Random values for the active hyperparameters, never a set already run (or being
        run); None when a finite space has been run in full."""
        space = self._space.space
        found = self._draw(space, range(_RANDOM_ATTEMPTS))
        if found is not None:
            return found
        # Many collisions: the space is small or nearly used up. List what is left.
        if count_configurations(space, limit=200_000) is None:
            # Too many to list, yet every draw was taken: most draws fall where the space
            # is used up (one large branch beside small ones). Drawing longer finds the rest.
            return self._draw(space, range(_RANDOM_ATTEMPTS, _LONG_ATTEMPTS))
        tried = self._project.values_keys()
        left = [v for v in iter_configurations(space)
                if values_key(v) not in tried and not self.is_taken(v)]
        if not left:
            return None
        return left[self.rng(_RANDOM_ATTEMPTS).randrange(len(left))]

    def _draw(self, space: list[HyperParameter], attempts: range) -> dict[str, Any] | None:
        """The first draw of ``attempts`` not run or running, or None."""
        context = self.decision
        for attempt in attempts:
            # (not self.rng(attempt): seeding a random.Random costs more than the draw)
            rng = SeededDraws(f"{self.seed}:{context.number}:{attempt}")
            if any(hp.conditions for hp in space):
                hps = HyperParameters()
                for hp in space:
                    hps.merge([hp], overwrite=False)
                    if hps.is_active(hp):
                        hps.values[hp.name] = hp.prob_to_value(rng.random())
                values = to_jsonable(hps.values)
            else:  # every entry active: the same draws without building a container
                values = to_jsonable({hp.name: hp.prob_to_value(rng.random()) for hp in space})
            key = values_key(values)
            if not self.is_taken(values, key):
                # create_trial need not normalise these again nor look them up again
                context.fresh_key, context.fresh_values = key, values
                return values
        return None

    def exhausted(self) -> dict[str, Any]:
        """The answer when nothing is left to propose: IDLE while trials run (they may
        declare new hyperparameters, or fail and be retried), STOPPED after."""
        return {"status": TrialStatus.IDLE if self.decision.running else TrialStatus.STOPPED}

    # The names these had before; kept for subclasses written against them.
    _get_state_value = get_state_value
    _set_state_value = set_state_value
    _rng = rng
    _random_values = random_values

    @property
    def _number(self) -> int:
        return self.decision.number


def _check_response(response: Any, where: str,
                    trusted: Any = None) -> tuple[str, dict[str, Any]]:
    # (a dict looked at first: the Mapping ABC's check costs more, at every decision)
    if (type(response) is not dict and not isinstance(response, Mapping)) or (
            "status" not in response):
        raise OracleContractError(
            f"{where}.populate_space must return a dict with a 'status'; returned "
            f"{response!r}.")
    status = response["status"]
    if not isinstance(status, str) or status not in (
            TrialStatus.RUNNING, TrialStatus.IDLE, TrialStatus.STOPPED):
        raise OracleContractError(
            f"{where}.populate_space returned status {status!r}; expected RUNNING, IDLE or "
            "STOPPED (upper case; or TrialStatus.RUNNING ...).")
    status = str(status)
    values = response.get("values") or {}
    if type(values) is not dict and not isinstance(values, Mapping):
        raise OracleContractError(
            f"{where}.populate_space returned values {values!r}; expected a dict of "
            "hyperparameter name to value.")
    if values is trusted:  # exactly what random_values returned: already JSON-normalised
        return status, values
    return status, to_jsonable(dict(values), what="The values from populate_space")
