"""Oracle: KerasTuner's oracle contract, with the search kept in a store.

There is no central process: every process that builds an ``Oracle`` on the same store and
``project_name`` is the oracle. ``create_trial`` decides under the store's per-project
decision lock and records its decision in the same step, so processes never hand out the
same trial twice, and everything an oracle knows is stored the moment it is decided.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Self, TypedDict, TypeVar

from hpstore.errors import (
    DatabaseError,
    HpStoreError,
    ProjectRemovedError,
    TrialNotFoundError,
)
from hpstore.hyperparameters import HyperParameters
from hpstore.hyperparameters.base import unicode_problem
from hpstore.objective import (
    MultiObjective,
    Objective,
    create_objective,
    infer_metric_direction,
)
from hpstore.oracle.deciding import DecidingMixin
from hpstore.oracle.ending import EndingMixin
from hpstore.oracle.opening import (
    OpeningMixin,
    check_bool,
    check_int,
    check_max_trials,
    check_optional_int,
    check_step,
    missing_objective,
)
from hpstore.oracle.space import SpaceMixin
from hpstore.oracle.state import StateMixin
from hpstore.oracle.steering import SteeringMixin
from hpstore.oracle.trials import (
    KeptRun,
    TrialsView,
    trial_from,
    trial_id_given,
)
from hpstore.oracle.warm import WarmStart
from hpstore.stopping import CurvesSoFar, StoppingRule, check_rule
from hpstore.store import check_database, open_store
from hpstore.store.contract import ProjectStore, StopCheck, StopVerdict, Store
from hpstore.store.rows import check_running
from hpstore.trial import Trial, check_metric

#: set while an oracle is rebuilt in another process (unpickled): read, and cleared, by the
#: first Oracle.__init__ of that class that runs then, whatever the subclass's signature
_COPYING = threading.local()


#: set while Oracle.check_arguments runs: the constructor stops once every argument passed
_CHECKING = threading.local()


class _ArgumentsHold(Exception):
    """Raised by a constructor run by :meth:`Oracle.check_arguments` once its arguments
    were checked, before any store is opened."""


def _not_a_space(given: Any) -> str:
    """What to say of a ``hyperparameters=`` that is not hpstore's HyperParameters."""
    kind = type(given)
    said = f"`hyperparameters` must be an hpstore.HyperParameters, received {given!r}"
    if kind.__module__.split(".")[0] == "keras_tuner":
        return (f"{said} (a keras_tuner.{kind.__name__}). Declare the space with "
                "hpstore.HyperParameters(), or, for a KerasTuner script, use the oracles of "
                "hpstore.keras.oracles, which take KerasTuner's.")
    if isinstance(given, int) and not isinstance(given, bool):
        # (KerasTuner's RandomSearchOracle, GridSearchOracle and HyperbandOracle take the
        # seed where hpstore's take the space: RandomSearchOracle("loss", 10, 42))
        return (f"{said}. A seed given by position? hpstore's oracles take `seed` by name "
                f"(seed={given!r}): their third argument is the space, as hpstore.Oracle's.")
    return f"{said} ({kind.__name__})."


def _rebuild(cls: type[Oracle], args: tuple[Any, ...], kwargs: dict[str, Any],
             database: str | None, options: Mapping[str, Any] | None = None) -> Oracle:
    """The oracle ``cls(*args, **kwargs)`` in another process: the same search, opened as
    it stands. Whatever its subclass's ``__init__`` passes on, the copy never wipes the
    file (``overwrite``), keeps the stored ``max_trials`` (``oracle.max_trials = 30`` set
    since is not undone by the value the oracle was made with), opens the very file
    ``database`` (a relative path read after a chdir would name another), and runs with
    the ``options`` the original had when it was sent (``max_retries_per_trial`` ... set
    on it since it was made)."""
    _COPYING.settings = (cls, database)
    try:
        oracle = cls(*args, **kwargs)
    finally:
        _COPYING.settings = None
    for name, value in (options or {}).items():
        setattr(oracle, name, value)
    return oracle


_TOLD: set[type] = set()  # the classes whose get_state/set_state were said to go uncalled


def _say_state_hooks_are_not_called(cls: type[Oracle]) -> None:
    """Warn, once per class, that get_state/set_state of a subclass are never called on
    their own: KerasTuner calls them on save and reload; here the search file holds the
    search as it happens, and what an oracle keeps on ``self`` is this process's alone."""
    if cls in _TOLD or (cls.get_state is Oracle.get_state and
                        cls.set_state is Oracle.set_state):
        return
    _TOLD.add(cls)
    warnings.warn(
        f"{cls.__name__} overrides get_state/set_state: hpstore never calls them to save or "
        "reload (the file holds the search as it happens), so what they would keep is lost "
        "when the search resumes, and is not shared with other workers. Keep an "
        "algorithm's state with self.set_state_value(key, value) in populate_space and "
        "self.get_state_value(key) (stored with the trial it decides, seen by every "
        "process).", UserWarning, stacklevel=3)


class StoreOptions(TypedDict, total=False):
    """The keyword-only arguments of every oracle (see :class:`Oracle`): a subclass that
    passes them on as ``**kwargs: Unpack[StoreOptions]`` keeps them typed for its users."""

    database: str | os.PathLike[str] | None
    project_name: str
    overwrite: bool
    durability: str
    early_stopping: StoppingRule | None
    warm_start_from: Any


class OracleOptions(StoreOptions, total=False):
    """:class:`StoreOptions` and the rest of :class:`Oracle`'s arguments but ``objective``,
    for a subclass that passes them all on."""

    max_trials: int | None
    hyperparameters: HyperParameters | None
    allow_new_entries: bool
    tune_new_entries: bool
    seed: int | None
    max_retries_per_trial: int
    max_consecutive_failed_trials: int


class _InitSignature:
    """``inspect.signature`` of an oracle class (and so ``help()`` and an editor's hints):
    its ``__init__``'s, without ``self``. Without it, inspect takes the
    ``(*args, **kwargs)`` of ``Oracle.__new__`` (which records the arguments, to rebuild
    the oracle in another process) for every class without an ``__init__`` of its own."""

    def __get__(self, instance: object, owner: Any) -> Any:
        if instance is not None:  # an oracle is not callable: no signature of its own
            raise AttributeError("__signature__")
        import inspect

        signature = inspect.signature(owner.__init__)
        return signature.replace(parameters=list(signature.parameters.values())[1:])


class Oracle(OpeningMixin, SpaceMixin, DecidingMixin, EndingMixin, SteeringMixin,
             StateMixin):
    """Implements a hyperparameter search algorithm; subclasses define ``populate_space``.

    Args:
        objective: a metric name (direction inferred), an ``Objective``, or a list of
            them (minimise the sum of the "min" ones minus the sum of the "max" ones).
            None: each trial reports one float, minimised as "default_objective".
        max_trials: the most trials the search creates, over all processes together.
        hyperparameters: a ``HyperParameters`` that pre-registers (or overrides) part of
            the space.
        allow_new_entries: whether trials may register hyperparameters not in the space.
        tune_new_entries: whether such new hyperparameters are tuned (else: their default).
        seed: the random seed (0 is a seed like any other). None picks one and stores it.
        max_retries_per_trial: times an INVALID trial is run again before it is FAILED.
        max_consecutive_failed_trials: the search raises RuntimeError when this many
            trials in a row have FAILED.
        database: the search file (created if missing), None / ":memory:" for a search
            kept in this process only, or a store URL (see ``hpstore.store.open_store``).
        project_name: the search within the file; a file may hold several.
        overwrite: start this project afresh, deleting its trials (other projects in the
            file are left alone).
        early_stopping: a stopping rule (``hpstore.MedianStopping()``, ...) that stops
            hopeless trials on the values they report; None: none (a resumed search keeps
            the rule it was made with).
        durability: an option of the SQLite engine: "normal" (default; survives any
            process crash) or "full" (also survives power loss, slower).
        warm_start_from: another search's results to start from: a search file (or store
            URL), or a ``(file, project_name)`` pair. Its completed trials whose values fit
            this space are added (once, however often the search is opened; not counted
            towards ``max_trials``; of trials with the same values, the run that ended
            last); the others are left out with a warning, and ``oracle.warm_start`` lists
            both.

    Arguments left at None on a project that already exists take their stored values;
    given ones are checked against what is stored.

    Raises:
        ValueError: a bad argument (named in the message), a number of the wrong type
            among them (``max_trials="10"``, as KerasTuner's ``factor`` check raises), a
            ``database`` no store opens (``sqlite:///search.db``, a blank name).
        TypeError: an argument of another wrong type, such as ``overwrite="false"``,
            ``database=3``, a space not hpstore's HyperParameters (named).
        ProjectMismatchError: the file's project was made with another oracle class,
            objective, seed or conflicting space.
        DatabaseError: the file cannot be used (see ``hpstore.DatabaseError`` subclasses).
    """

    #: ``max_trials`` of a new search when none is given (subclasses set KerasTuner's)
    default_max_trials: int | None = None
    #: the constructor's arguments, to rebuild the oracle in another process
    _init_args: tuple[tuple[Any, ...], dict[str, Any]]
    __signature__: Any = _InitSignature()

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        self = super().__new__(cls)
        self._init_args = (args, kwargs)
        return self

    def __init__(
        self,
        objective: Any = None,
        max_trials: int | None = None,
        hyperparameters: HyperParameters | None = None,
        allow_new_entries: bool = True,
        tune_new_entries: bool = True,
        seed: int | None = None,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
        *,
        database: str | os.PathLike[str] | None = None,
        project_name: str = "untitled_project",
        overwrite: bool = False,
        durability: str = "normal",
        early_stopping: StoppingRule | None = None,
        warm_start_from: Any = None,
    ) -> None:
        copying = getattr(_COPYING, "settings", None)
        #: a copy (pickled, deep-copied, sent to another process) opens the search it was
        #: made from, which must still be there: it makes none
        self._copied = copying is not None and copying[0] is type(self)
        if copying is not None and self._copied:
            # rebuilt in another process (see _rebuild); an oracle of another class its
            # __init__ makes first (a helper) is left as made
            _COPYING.settings = None
            overwrite, max_trials = False, None
            database = copying[1] if copying[1] is not None else database
        overwrite = check_bool("overwrite", overwrite)
        allow_new_entries = check_bool("allow_new_entries", allow_new_entries)
        tune_new_entries = check_bool("tune_new_entries", tune_new_entries)
        max_trials = check_max_trials(max_trials)
        seed = check_optional_int("seed", seed, minimum=None)
        max_retries_per_trial = check_int("max_retries_per_trial", max_retries_per_trial,
                                          minimum=0)
        max_consecutive_failed_trials = check_int(
            "max_consecutive_failed_trials", max_consecutive_failed_trials, minimum=1)
        if hyperparameters is not None and not isinstance(hyperparameters, HyperParameters):
            raise TypeError(_not_a_space(hyperparameters))
        if hyperparameters is None and not tune_new_entries:
            raise ValueError("If you set `tune_new_entries=False`, you must specify the search "
                             "space via the `hyperparameters` argument.")
        if hyperparameters is None and not allow_new_entries:
            raise ValueError("If you set `allow_new_entries=False`, you must specify the search "
                             "space via the `hyperparameters` argument.")
        check_rule(early_stopping)
        if not isinstance(project_name, str) or not project_name:
            raise ValueError(f"`project_name` must be a non-empty string, received "
                             f"{project_name!r}.")
        if (problem := unicode_problem(project_name)) is not None:
            raise ValueError(f"`project_name` {project_name!r} cannot be stored: {problem}.")
        self.allow_new_entries = bool(allow_new_entries)
        self.tune_new_entries = bool(tune_new_entries)
        self.max_retries_per_trial = max_retries_per_trial
        self.max_consecutive_failed_trials = max_consecutive_failed_trials
        self.project_name = project_name
        self.early_stopping = early_stopping
        given_objective = None if objective is None else create_objective(objective)
        given_space = hyperparameters.copy() if hyperparameters is not None else None
        #: the space given as ``hyperparameters=``: it overrides what a hypermodel declares
        self._given_space = given_space
        #: trial id -> the run of it this process was handed, with the time it started as
        #: stored (a later run is not ours; nor is a run of the same number that started
        #: at another time: a trial created since under the id, after ours was lost)
        self._handed: dict[str, tuple[int, float | None]] = {}
        #: trial id -> a run this process started, with the metric values it reported
        self._kept: dict[str, KeptRun] = {}
        #: trials a stopping rule stopped that this oracle then ended: a STOPPED trial takes
        #: reports until its worker ends it, and none after (the file marks no such end)
        self._ended_stopped: set[str] = set()
        self._local = threading.local()
        #: the stopping rule's curves of the runs this oracle reports (see CurvesSoFar)
        self._curves = CurvesSoFar()
        if getattr(_CHECKING, "on", False):
            check_database(database)
            if durability not in ("normal", "full"):  # (both engines' choices)
                raise ValueError(f"`durability` must be one of ['full', 'normal'], received "
                                 f"{durability!r}.")
            raise _ArgumentsHold
        warm = None
        if warm_start_from is not None:  # a typo here must not leave a new search behind
            from hpstore.oracle.warm import check_warm_source

            warm = check_warm_source(warm_start_from, project_name)
        if (copying is not None and self._copied and copying[1] is not None
                and not os.path.exists(copying[1])):  # (a file's copy: a URL's names none)
            # (else the copy made a new, empty search there, and a process of a pool ran
            # a fresh search into it)
            raise ProjectRemovedError(
                f"The search this oracle is a copy of is gone: {database} no longer exists "
                "(deleted or moved since the oracle was copied or sent). Nothing was made; "
                "open the search where it is now.")
        self._store: Store = open_store(database, durability=durability)
        try:
            if warm is not None:  # (the search's own file: refused before it is written)
                warm.check_against(self._store, project_name)
            self._open_project(given_objective, max_trials, given_space, seed, overwrite)
        except BaseException:
            self._store.close()  # a refused search keeps no connection open on the file
            raise
        self._space_version = -1
        self._space, self._space_held = HyperParameters(), 0
        self._refresh_space()
        _say_state_hooks_are_not_called(type(self))
        #: what ``warm_start_from`` took in (None without one, or until the space is
        #: declared)
        self.warm_start: WarmStart | None = None
        #: the warm start's source, run again as the space grows (a Tuner's hypermodel
        #: declares the space later, a branch's hyperparameters once a trial takes it)
        self._warm_from: Any = warm_start_from
        self._warm_names: frozenset[str] | None = None
        try:
            self._warm_up()
        except BaseException:
            self._store.close()
            raise

    @classmethod
    def check_arguments(cls, *args: Any, **kwargs: Any) -> None:
        """Refuse, as ``cls(*args, **kwargs)`` would, arguments its constructor refuses,
        without opening any store: for an oracle opened later (a Keras tuner's, in the
        Tuner's folder), whose bad argument is then said where it was given.

        Raises:
            ValueError, TypeError: what the constructor raises for such an argument.
        """
        self = object.__new__(cls)
        _CHECKING.on = True
        try:
            cls.__init__(self, *args, **kwargs)
        except _ArgumentsHold:
            return
        finally:
            _CHECKING.on = False

    @classmethod
    def attach(cls, database: str | os.PathLike[str], project_name: str | None = None
               ) -> Oracle:
        """Open an existing project as it is stored, whatever oracle made it: to steer it
        (enqueue, add results, retire, annotate) or read it from a notebook or a script.

        A project made by a built-in oracle gets that oracle, with its stored arguments; a
        project made by an oracle class of your own gets a stand-in of the same name that
        does everything but decide trials (open it with your class for that).

        Raises:
            ProjectChoiceError: no such project, or several and none named.
            DatabaseError: the store cannot be used.
        """
        from hpstore.oracle.steering import attach

        oracle: Oracle = attach(cls, database, project_name)
        return oracle

    def __reduce__(self) -> tuple[Any, ...]:
        if self._store.memory:
            # (pickle, copy.copy and copy.deepcopy all come here)
            raise HpStoreError("An oracle of an in-memory search cannot be copied, pickled "
                               "or sent to another process: its trials live in this object "
                               "alone. Give the Oracle a database= path.")
        from hpstore.store.postgresql import is_url

        args, kwargs = self._init_args
        location = self._store.location
        return (_rebuild, (type(self), args, kwargs, None if is_url(location) else location,
                           self._options()))

    @property
    def store(self) -> Store:
        """The store holding the search (for tools that read it, such as progress)."""
        return self._store

    @property
    def project(self) -> ProjectStore:
        """This search's project in the store."""
        return self._project

    def close(self) -> None:
        """Close this process's connection and give up its liveness lock, kept only while a
        trial this process started still runs: the process lives, so that trial stays its
        own (the process's next oracle of the search hands it back to the same tuner id,
        and no worker takes it for a dead one's). Using the oracle again afterwards opens
        the search again, as at its first use."""
        self._store.close()

    def __enter__(self) -> Oracle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- trials as objects -------------------------------------------------------------------------
    @property
    def trials(self) -> Mapping[str, Trial]:
        """Every trial of the search by id, read from the store on access."""
        return TrialsView(self.get_trial, self._project)

    def get_trial(self, trial_id: str) -> Trial:
        """The trial with that id, as the store holds it now.

        Raises:
            TrialNotFoundError (a KeyError): no such trial in this project.
        """
        self._refresh_space()
        return trial_from(self._project.trial(trial_id_given(trial_id, self._project)),
                          self._space, self._project)

    @property
    def ongoing_trials(self) -> dict[str, Trial]:
        """The running trials, by the tuner id running them."""
        self._refresh_space()
        return {t.tuner_id or "": trial_from(t, self._space, self._project)
                for t in self._project.running()}

    def running_elsewhere(self) -> list[Trial]:
        """The trials running in other processes, by number: what a worker with nothing
        left to start waits for (its search is not over while they run, and one whose
        worker dies is handed to whoever asks next). Trials of this process, run by its
        other threads or left by hand, are not among them; nor is a trial no worker's
        liveness stands behind (one loaded by ``set_state`` from an in-memory search),
        which no process would ever end or hand on; nor any in an in-memory search,
        which no other process can reach."""
        if self._store.memory:
            return []
        self._refresh_space()
        mine = self._store.session()
        return [trial_from(t, self._space, self._project) for t in self._project.running()
                if t.session is not None and t.session != mine]

    def check_running(self, trial_id: str) -> None:
        """Raise unless the run of ``trial_id`` this process was handed still runs (one
        read): for code that writes something of the trial outside the store (a
        checkpoint) to call first. A worker cut off from the store past its liveness has
        its trial handed to another, which may end it; files it wrote after that would
        replace those of the run recorded. (A trial stopped by the stopping rule still
        runs here: its worker ends it.)

        Raises:
            TrialNotRunningError: the trial has ended, or was handed to another worker;
                TrialLostError: the store no longer holds this process's run (its last
                commits were lost); TrialNotFoundError (a KeyError): no such trial.
        """
        trial_id = trial_id_given(trial_id, self._project)
        run, started = self._handed.get(str(trial_id), (None, None))
        check_running(self._project.trial(trial_id), run, started=started,
                      logged=self._project.run_started)

    @property
    def max_trials(self) -> int | None:
        """The search's limit of trials, as stored (None: no limit). Setting it changes it
        in the store, for every process of the search, as giving ``max_trials=`` to an
        oracle opened again does (raise it to extend a finished search).

        Raises (on setting):
            ValueError, TypeError: not a whole number of at least 1, nor None.
        """
        return self._project.record().max_trials

    @max_trials.setter
    def max_trials(self, value: int | None) -> None:
        value = check_max_trials(value)
        self._project.update_settings(max_trials=value, set_max_trials=True)

    def remaining_trials(self) -> int | None:
        """How many more trials may be created, or None when there is no limit (trials
        added with a result that do not count towards max_trials are not counted)."""
        facts = self._project.creation_facts()
        if facts.max_trials is None:
            return None
        return max(0, facts.max_trials - facts.counted)

    # -- reporting and ending -----------------------------------------------------------------
    def update_trial(self, trial_id: str, metrics: Mapping[str, Any], step: int = 0) -> Trial:
        """Record metrics a running trial reports at ``step`` (several at one step average).

        Returns the trial with its current status: STOPPED means stop training it.

        Raises:
            MissingObjectiveError (a ValueError): an objective metric is missing from
                ``metrics`` (nothing of them is recorded).
            InvalidMetricError (a TypeError and a ValueError): a name is not a string or a
                value not a number.
            TypeError: ``step`` is not a whole number (ValueError: beyond 64 bits).
            TrialNotFoundError (a KeyError): no such trial; TrialLostError (one of them):
                the trial this process was running was lost with the server's last commits.
            TrialNotRunningError: the trial has ended, or was handed to another worker.
            ProjectRemovedError: another process removed or replaced the project.
        """
        return self._update(trial_id, metrics, step, self._stop_check())

    def record_result(self, trial_id: str, metrics: Mapping[str, Any], step: int = 0
                      ) -> Trial:
        """Record the result a trial ends with (what ``run_trial`` returns), as
        :meth:`update_trial` does, but never judged by the stopping rule: a rule judges a
        curve while it trains, and a final result is no step of one. Recorded at
        ``step`` as a report is: at a step already reported it is averaged with that
        step's values, so a result that follows a curve needs a step of its own.

        Raises:
            as :meth:`update_trial`.
        """
        return self._update(trial_id, metrics, step, None)

    def _update(self, trial_id: str, metrics: Mapping[str, Any], step: int,
                stop: StopCheck | None) -> Trial:
        """update_trial, with ``stop`` the stopping rule's check (None: none: a result that
        ends the training, such as what run_trial returns, is not judged as a curve)."""
        # (a dict looked at first: the Mapping ABC's check costs more, at every report)
        if type(metrics) is not dict and not isinstance(metrics, Mapping):
            raise TypeError(f"`metrics` must be a dict of metric name to value, received "
                            f"{type(metrics).__name__}.")
        trial_id = trial_id_given(trial_id, self._project)
        self._not_ended_after_a_stop(trial_id)
        step = check_step(step)
        values = {name: check_metric(name, value) for name, value in metrics.items()}
        missing = [n for n in self.objective.metric_names if n not in values]
        if missing:
            raise missing_objective(f"The metrics reported for trial {trial_id}", missing,
                                    list(values), self.objective)
        rows = [(name, self._direction(name), int(step), value) for name, value in values.items()]
        if isinstance(self.objective, MultiObjective):
            self.objective.check_report(values)
            rows.append((self.objective.name, "min", int(step), self.objective.get_value(values)))
        kept = self._kept.pop(str(trial_id), None)
        run, started = self._handed.get(str(trial_id), (None, None))
        self._local.stop_points = None
        try:
            record = self._project.record_metrics(trial_id, rows, run=run, stop=stop,
                                                  known=None if kept is None else kept.record,
                                                  started=started)
        except TrialNotFoundError:  # (TrialLostError among them)
            if str(trial_id) in self._handed:
                raise self._lost(trial_id) from None
            raise
        except DatabaseError as exc:
            # the search's own store failed as a value was recorded (a Tuner hands the
            # trial back for it; a DatabaseError of the user's own code is theirs)
            exc.while_recording = True  # type: ignore[attr-defined]
            raise
        if self._local.stop_points is not None:  # committed: the rule's curve keeps them
            self._curves.keep(*self._local.stop_points, self.objective.direction)
            self._local.stop_points = None
        if kept is not None and record.run == kept.record.run:
            # what the store now holds of this run, known without reading it back
            kept.record = record
            kept.rows.extend(rows)
            self._kept[record.trial_id] = kept
        return trial_from(record, self._space, self._project)

    def _stop_check(self) -> StopCheck | None:
        rule = self.early_stopping
        if rule is None:
            return None
        direction = self.objective.direction

        curves = self._curves

        def decide(key: int, run: int, last: Any, points: list[tuple[int, int, float]],
                   history: Any) -> StopVerdict | None:
            # kept by _update once the transaction that read them has committed
            self._local.stop_points = (key, run, last, points)
            curve = curves.curve(key, run, last, points, direction)
            if curve is None or not curve.steps:
                return None
            why = rule.decide(curve, history)
            if why is None:
                return None
            best = curve.best()
            step = None if math.isnan(best) else next(
                s for s, v in zip(curve.steps, curve.values) if v == best)
            return StopVerdict(f"Stopped early at step {curve.step} by {type(rule).__name__}: "
                               f"{why}.",
                               None if math.isnan(best) else best, step)

        return StopCheck(self.objective.name, decide, curves.last)

    def _direction(self, metric: str) -> str:
        return self.objective.direction_of(metric) or infer_metric_direction(metric) or "min"

    def get_best_trials(self, num_trials: int = 1) -> list[Trial]:
        """The best COMPLETED trials, best first; padded with other trials in creation
        order when fewer have completed.

        Raises:
            ValueError: ``num_trials`` is not a whole number of at least 0.
            ProjectRemovedError: another process removed or replaced the project.
        """
        num_trials = check_int("num_trials", num_trials, minimum=0)
        self._refresh_space()
        return [trial_from(r, self._space, self._project)
                for r in self._project.best(num_trials, self.objective.direction)]


_F = TypeVar("_F", bound=Callable[..., Any])


def synchronized(method: _F) -> _F:
    """Run an Oracle method under its search's lock, across threads and processes.

    KerasTuner's ``keras_tuner.synchronized`` for custom oracle methods: at most one call
    of a decorated method (or of ``create_trial``) runs at a time for one search,
    whichever process or thread makes it. The lock is re-entrant, so a decorated override
    may call the decorated method it overrides.
    """

    @functools.wraps(method)
    def wrapper(self: Oracle, *args: Any, **kwargs: Any) -> Any:
        with self._store.mutex():
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


__all__ = ["Objective", "Oracle", "synchronized"]
