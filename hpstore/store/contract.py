"""The store contract: what the Oracle, the Tuner and the tools may ask of an engine.

An engine (SQLite file, PostgreSQL database) implements :class:`Store` and
:class:`ProjectStore`; nothing above this contract knows a table, a column, a lock file or
an SQL dialect. Every state change is one atomic call that checks what it expects (the
trial's status, its run, the project still being there) and raises instead of writing
over someone else's change. No call assumes a lock held across several of them while
other processes write: where an algorithm needs a consistent view to decide (the grid's
position, Hyperband's slots), :meth:`ProjectStore.decide` gives it one, serialised per
project, and records the decision in the same step.

Errors every engine raises in the same situations:

- ``ProjectRemovedError``: the project was removed or replaced by another process.
- ``TrialNotFoundError``: no such trial in the project.
- ``TrialNotRunningError``: the trial is not in the status or run the caller expects.
- ``DatabaseError`` and its subclasses: the storage itself failed or refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from hpstore.store.records import (
    NewProject,
    NewTrial,
    Observation,
    ProjectRecord,
    RunRecord,
    Transition,
    TrialRecord,
)


@dataclass
class Decision:
    """What an algorithm decided for the next trial: run ``values`` (status RUNNING) as
    ``trial_id``, wait (IDLE) or stop (STOPPED); ``state`` is stored with it."""

    status: str
    trial_id: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    key: str = ""
    state: dict[str, Any] = field(default_factory=dict)


class CreationFacts(NamedTuple):
    """What deciding the next trial starts from, read in one step."""

    #: the most trials the search creates (None: no limit)
    max_trials: int | None
    #: the next trial's number (trials are numbered 0, 1, 2 ... without gaps)
    number: int
    #: whether a trial waits in the queue (enqueued, or handed back to run again)
    queued: bool
    #: trials added with a result that do not count towards ``max_trials``
    uncounted: int = 0
    #: the space's version (None: the engine did not read it here; ask ``space_version``)
    space_version: int | None = None
    #: the running trials, by number, when asked for (``decide(running=True)``)
    running: tuple[TrialRecord, ...] | None = None

    @property
    def counted(self) -> int:
        """How many trials count towards ``max_trials``."""
        return self.number - self.uncounted

    @property
    def full(self) -> bool:
        """Whether the search holds ``max_trials`` counted trials already."""
        return self.max_trials is not None and self.counted >= self.max_trials


#: decide(facts) -> Decision; runs while the engine holds the project's decision lock, so
#: its reads through the same ProjectStore see a settled state
Decider = Callable[[CreationFacts], Decision]

#: trial_id(number, max_trials) -> the id a new trial gets (KerasTuner's zero-padded width)
MakeId = Callable[[int, "int | None"], str]


@dataclass(frozen=True)
class StopVerdict:
    """A stopping rule's verdict: the trial is STOPPED with this message and scored on
    the best value it reached, in the same step as the metrics that caused it."""

    message: str
    score: float | None
    best_step: int | None


@dataclass(frozen=True)
class StopCheck:
    """Asked inside ``record_metrics``' transaction, after the values are recorded, about
    the (observation id, step, value) points of ``metric`` in the trial's current run, in
    the order reported. ``last(trial_key, run)`` is the last point the checker holds (or
    None): found in the store as it is (same id, step and value), the store gives
    ``decide(trial_key, run, last, points, history)`` only the points after it; else
    ``decide(trial_key, run, None, every_point, history)``. ``history`` is a
    :class:`hpstore.stopping.History` of the other trials read in the same transaction.
    It may be asked again when the transaction is retried."""

    metric: str
    decide: Callable[[int, int, Any, list[tuple[int, int, float]], Any], StopVerdict | None]
    last: Callable[[int, int], Any]


class ProjectStore(Protocol):
    """One project (search) in a store."""

    project_id: int
    name: str
    #: every read is a round trip to a server: an oracle then reads nothing ahead of
    #: :meth:`decide` (a draw made early would be read again under the lock, at twice the
    #: cost), while on a local file reading ahead keeps the lock short
    remote: bool

    # -- settings and space ---------------------------------------------------------------
    def record(self) -> ProjectRecord:
        """The project's settings as stored now."""

    def update_settings(self, *, max_trials: int | None = None,
                        oracle_config: Mapping[str, Any] | None = None,
                        set_max_trials: bool = False) -> None:
        """Change what may change on resume."""

    def space_version(self) -> int:
        """Grows whenever the space grows; cheap, for revalidating a cached space."""

    def space(self) -> tuple[int, list[dict[str, Any]]]:
        """(version, [{"class_name", "config"}, ...]) read together."""

    def extend_space(self, entries: list[dict[str, Any]]) -> int:
        """Append the entries not stored yet (same name and conditions); the new version."""

    # -- creating trials ------------------------------------------------------------------
    def running(self) -> list[TrialRecord]:
        """The RUNNING trials, by number."""

    def reap(self, sessions: Iterable[str], max_interruptions: int) -> list[str]:
        """Hand back the running trials of dead workers (IDLE, queued; FAILED after
        ``max_interruptions``) in trial-number order, whatever order ``sessions`` comes in;
        the trial ids."""

    def adopt(self, trial: TrialRecord, session: str | None) -> TrialRecord:
        """Move a running trial to another session of the same process."""

    def take_queued(self, tuner_id: str, session: str | None) -> TrialRecord | None:
        """Start the trial at the head of the retry queue (this tuner's own first)."""

    def decide(self, decider: Decider, *, tuner_id: str, session: str | None,
               quick: bool = False, running: bool = False,
               draws_ahead: bool = False) -> TrialRecord | Decision | None:
        """Serialised per project: a trial waiting in the retry queue is started (as
        :meth:`take_queued`); else ``decider(creation facts)`` is asked, and a
        RUNNING decision recorded as a new trial with its state in one step (an IDLE or
        STOPPED decision only stores its state).

        ``quick`` says the decider is cheap (no model to fit): the engine may then run it
        inside the very transaction that records its decision, instead of under a lock
        held across a read, the decision and a separate write. Its reads through this
        ProjectStore see that transaction's state either way, with one exception an
        engine may make for a quick decider: :meth:`has_values` answers False without
        reading, and every key it was asked about is looked up as the new trial is
        recorded; when one had run (or the decision is not a new trial), nothing is
        written and the decider is asked again, its look-ups read. Both ways give the
        same decision. An engine may also ask a quick decider before taking any lock, on
        the facts it expects (those its last decision left: the next number, nothing
        queued, nothing running), and record the decision only if the facts under the
        lock are exactly those and the decider read nothing but those look-ups; else
        nothing is written and it is asked again as above. A quick decider must therefore
        decide the same on the same facts and reads (the built-in ones seed their draws
        with the trial number).

        ``draws_ahead`` says more of a quick decider: of the running trials it needs only
        that none runs the values it chose, nor will once it declares the hyperparameters
        it lacks. An engine may then ask it ahead of the lock on facts with no running
        trials and the number it expects while other workers run theirs, and record the
        decision only if, under the lock, that is the next number and no running trial
        is this tuner's, a dead worker's or has fewer values than the decision, all named
        in it.

        ``running`` asks for the running trials to be read in the same step, before the
        queue is looked at: they are then ``facts.running``. Should one of them be this
        tuner's, or belong to a session whose worker is gone (see :meth:`Store.alive`),
        nothing is done and None is returned, for the caller to hand it back or reap it
        first.

        Raises:
            TunerIdInUseError: another session runs a trial under ``tuner_id``.
        """

    # -- reading trials -------------------------------------------------------------------
    def trial(self, trial_id: str) -> TrialRecord: ...
    def trial_by_number(self, number: int) -> TrialRecord: ...
    def trials(self, *, statuses: Sequence[str] | None = None, order: str = "number",
               descending: bool = False, limit: int | None = None,
               offset: int = 0) -> list[TrialRecord]: ...
    def trials_by_id(self, trial_ids: Sequence[str]) -> dict[str, TrialRecord]: ...
    def trials_by_number(self, numbers: Sequence[int]) -> dict[int, TrialRecord]: ...
    def score_line(self) -> list[tuple[int, str, str, float | None]]: ...
    def last_activity(self) -> float | None: ...
    def trial_ids(self) -> list[str]: ...
    def has_trial(self, trial_id: str) -> bool: ...
    def count(self) -> int: ...
    def counts_by_status(self) -> dict[str, int]: ...
    def creation_facts(self) -> CreationFacts: ...
    def has_values(self, key: str) -> bool: ...
    def values_keys(self) -> set[str]: ...
    def best(self, n: int, direction: str) -> list[TrialRecord]: ...
    def completed(self) -> list[tuple[str, float]]: ...
    def scores(self, trial_ids: list[str]) -> list[tuple[str, float]]: ...
    def run_started(self, trial: TrialRecord, at: float) -> bool:
        """Whether the trial's status log holds the start of a run of it at ``at``: a run
        since handed on to another worker, not one of a trial lost (with the store's last
        commits, or a restored copy) and created again under the same id."""

    def observations(self, trial: TrialRecord, *, every_run: bool = False
                     ) -> list[Observation]: ...

    def trial_with_observations(self, trial_id: str) -> tuple[TrialRecord, list[Observation]]:
        """A trial and its current run's metric values (as :meth:`observations`), read
        together in one step.

        Raises:
            TrialNotFoundError: no such trial.
            ProjectRemovedError: the project is no longer in the store.
        """

    def transitions(self, *, trial_id: str | None = None, tuner_id: str | None = None,
                    after: int = 0, limit: int | None = None, last: bool = False
                    ) -> list[Transition]: ...
    def last_transition(self) -> int: ...
    def runs(self, limit: int) -> tuple[list[RunRecord], int]:
        """The runs of the status log (see :mod:`hpstore.store.runlog` for where one starts
        and ends), and how many it holds. Up to ``limit`` runs, every one, in the order they
        ended, those still open last (in the order their trials started them); past it an
        even sample of each worker's runs in order of start, in proportion to how many it
        ran, one at least (an even sample of them all could miss a worker: workers often
        take turns in a fixed order), by start, and evenly thinned to ``limit`` when more
        workers than ``limit`` ran. Only those runs are read: the log may hold millions."""

    def steps_reported(self, metric: str, *, status: str | None = None
                       ) -> dict[str, tuple[int, int]]:
        """How many steps of ``metric`` each trial (of ``status``, else every one) reported
        in its current run, and the last of them, by id; a trial that reported none is
        left out."""

    def most_steps_reported(self, metric: str, status: str) -> int:
        """The most steps of ``metric`` a trial of ``status`` reported in its current run
        (0 when none reported any): the largest count of :meth:`steps_reported`, without
        building it."""

    def observations_of(self, trials: Sequence[TrialRecord], metric: str
                        ) -> dict[str, list[tuple[int, float]]]: ...
    def recent_final_statuses(self, n: int) -> list[str]: ...

    def observations_since(self, after: int = 0, *, limit: int | None = None
                           ) -> list[tuple[int, str, Observation]]:
        """(position, trial_id, observation) of each metric value reported after position
        ``after``, oldest first, at most ``limit`` of them. Positions grow with every value
        written and become visible in that order, so a reader that asks again from the last
        position it saw misses no value and sees none twice (the dashboard's live view)."""

    def last_observation(self) -> int:
        """The position of the newest metric value of the project (0 when there is none)."""

    def get_value(self, key: str, default: Any = None) -> Any: ...

    # -- changing trials ------------------------------------------------------------------
    def record_metrics(self, trial_id: str, rows: list[tuple[str, str, int, float]],
                       run: int | None = None, stop: StopCheck | None = None,
                       known: TrialRecord | None = None, started: float | None = None
                       ) -> TrialRecord:
        """Append (metric, direction, step, value) rows to the trial's current run; with
        ``stop``, a RUNNING trial the check stops becomes STOPPED in the same step.

        ``known`` is the trial as the caller last had it from the store, in ``run``. An
        engine may then write the rows on a check that the trial is still RUNNING in that
        run, and answer ``known`` without reading the trial back; otherwise it reads it.

        ``started`` is the ``started_at`` run ``run`` had when the store handed it out
        (with ``run``, it tells that run from a run of a trial created since under the same
        id, after the caller's was lost): the rows are written only to that very run, in
        the statement that checks the status and run.

        Raises:
            TrialNotRunningError: not RUNNING or STOPPED, or no longer in ``run``.
            TrialLostError: the trial holds a run ``run`` that started at another time than
                ``started``; nothing was written.
        """

    def finish(self, trial: TrialRecord, status: str, message: str | None,
               values: Mapping[str, Any] | str, key: str, score: float | None,
               best_step: int | None, *, invalid: bool, requeue: bool,
               space: list[dict[str, Any]] | None = None, seen: int | None = None
               ) -> bool:
        """Write the end of a run: status, message, values (a dict, or the JSON text already
        stored), score, and the hyperparameters the run added to the space. Returns True.

        With ``seen`` (the number of metric values the end was computed from, when the
        caller kept them instead of reading them back), the end is written only if the
        trial is still exactly as ``trial`` says (status, run, message, retries, values)
        and its run holds exactly ``seen`` values; else nothing is written and it returns
        False, so that the caller reads the trial and ends it again.

        The run ended is ``trial``'s: its ``run`` and ``started_at`` (a trial created since
        under the same id, after this one was lost, is never written).

        Raises:
            TrialNotRunningError: without ``seen``, the trial changed since ``trial`` was
                read (another process ended it, or handed it to another worker); nothing
                was written.
            TrialLostError: without ``seen``, the trial's run ``trial.run`` started at
                another time than ``trial.started_at`` (another trial holds its id now);
                nothing was written.
        """

    def set_status(self, trial_id: str, status: str, message: str | None) -> str: ...

    # -- steering -------------------------------------------------------------------------
    def enqueue(self, values: Mapping[str, Any], key: str, *, skip_if_exists: bool,
                make_id: MakeId, by: str | None, earlier: Sequence[str] = ()
                ) -> tuple[TrialRecord, bool]:
        """Queue ``values`` as a new IDLE trial, run before the algorithm's proposals (first
        in, first out); serialised with :meth:`decide`. With ``skip_if_exists``, a trial of
        the project with the same values key is returned instead (any status), else an
        enqueued one whose values key is one of ``earlier`` (what the same request held
        when it was enqueued before the space grew). Returns (the trial, whether it was
        created).

        Raises:
            SearchFullError: the search holds ``max_trials`` counted trials already.
        """

    def enqueued(self) -> list[TrialRecord]:
        """The trials waiting in the queue, first to run first."""

    def steering_counts(self) -> dict[str, int]:
        """How many trials were steered: by origin ("enqueued", "added", "warm start")
        and "retired"; kinds with none are left out."""

    def add_trials(self, trials: Sequence[NewTrial], *, counted: bool, skip_existing: bool,
                   make_id: MakeId) -> list[TrialRecord | None]:
        """Record finished trials with their results, in one step serialised with
        :meth:`decide`; ``counted`` says whether they count towards ``max_trials``. With
        ``skip_existing``, one whose values key the project holds is skipped (None in
        the returned list, which follows ``trials``)."""

    def retire(self, trial_id: str, *, retired: bool, by: str, reason: str | None
               ) -> TrialRecord:
        """Retire a trial from the results (``retired``) or restore it, with a row in the
        status log saying who, when and why; the trial as it was before. Nothing changes
        when it is in that state already.

        Raises:
            TrialNotFoundError: no such trial.
            TrialNotEndedError: the trial has not ended (waiting or running).
        """

    def set_note(self, trial_id: str, note: str | None) -> TrialRecord:
        """Attach ``note`` to a trial (None removes it); the trial as it was before.

        Raises:
            TrialNotFoundError: no such trial.
        """

    # -- the whole project ----------------------------------------------------------------
    def dump(self, *, metrics: bool = True, log: bool = True) -> dict[str, Any]:
        """Everything the project holds, in one snapshot; ``metrics=False`` leaves every
        trial's reported values out (its ``observations`` empty), ``log=False`` the
        status log (its ``transitions`` and the ``log`` empty): what an oracle needs to
        decide the next trial when none runs, without reading every epoch and change."""
    def load(self, state: Mapping[str, Any]) -> None: ...


class Store(Protocol):
    """A place that holds searches: a file, memory, a database server."""

    #: where, for messages ("search.db", "postgresql://host/db", ":memory:")
    location: str
    #: True for a search kept in this process only (it cannot be shared)
    memory: bool
    #: what holds the searches, for messages ("file", "schema": "no project in this file")
    holder: str

    def identity(self) -> tuple[Any, ...]:
        """What tells this store's data from any other's: equal for two stores that hold
        the same data, however each was named (a file under another path or link, a
        database under another URL)."""

    def unwritable(self) -> str | None:
        """Why no worker could write here, from this process (a file on a read-only
        mount, or one whose parts another user owns), in words that say what to do; None
        when one could. Asked by a reader before it advises starting a worker."""

    def projects(self) -> list[ProjectRecord]: ...
    def find_project(self, name: str) -> ProjectRecord | None: ...
    def check_new(self, new: NewProject, state: Mapping[str, Any] | None = None) -> None:
        """Refuse, before anything is written, a project (and its ``get_state()``
        document) this store cannot hold as given: a name longer than its indexes take.

        Raises:
            NameTooLongError: saying which name; nothing is written.
        """

    def check_space(self, entries: Iterable[Mapping[str, Any]]) -> None:
        """Refuse, before anything is written, space entries (``{"class_name", "config"}``)
        whose hyperparameter name this store cannot hold: on PostgreSQL, one with a NUL.
        Asked as a trial declares a new hyperparameter, which its end adds to the space.

        Raises:
            NameTooLongError: saying which name; nothing is written.
        """

    def create_project(self, new: NewProject, *, replace: bool = False) -> ProjectStore: ...
    def open_project(self, record: ProjectRecord) -> ProjectStore: ...

    def now(self) -> float:
        """The time now, in seconds since the epoch, by the clock the store's times are
        written with (this machine's for a file; the server's for PostgreSQL, which every
        worker writes by): what a reader compares those times with."""

    # -- liveness and mutual exclusion ----------------------------------------------------
    def session(self) -> str | None:
        """This process's liveness token (held for as long as the process lives)."""

    def is_alive(self, token: str, pid: int | None = None) -> bool:
        """Whether the process behind a token lives; never a guess from elapsed time."""

    def contended(self) -> bool:
        """Whether this process's writes lately waited for other writers' (a hint: work
        done ahead of a lock pays off only when others queue for it)."""

    def alive(self, tokens: Mapping[str, int | None]) -> set[str]:
        """Which of these tokens (each with its process id, when known) belong to a
        process that lives: :meth:`is_alive` asked of them all at once (on a server, in
        one round trip)."""

    def owns(self, token: str | None) -> bool:
        """Whether a token is one of this process's own."""

    def mutex(self) -> AbstractContextManager[None]:
        """A lock over the whole store, across threads and processes (re-entrant)."""

    def live_workers(self) -> int:
        """How many worker processes are alive on this store right now."""

    def checkpoint(self) -> None:
        """Make what was committed durable in the store's main storage now (a no-op where
        there is nothing to fold)."""

    def health(self) -> list[tuple[str, bool, str]]:
        """What ``hpstore check`` reports of the storage: (what, fine, what it says)."""

    def sql(self, query: str, *, timeout: float | None = None
            ) -> tuple[list[str], list[Any]]:
        """One read-only statement a person wrote: (columns, rows)."""

    def sql_rows(self, query: str, *, timeout: float | None = None
                 ) -> AbstractContextManager[tuple[list[str], Iterator[Any]]]:
        """One read-only statement a person wrote: its columns, and its rows read from the
        engine as they are iterated (memory bounded, whatever their number), within the
        block; the statement and its snapshot last until the block ends."""

    def close(self) -> None: ...


def iter_chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """``items`` in slices of ``size`` (engines bound the parameters of one statement)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]
