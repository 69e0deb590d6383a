"""Oracle: KerasTuner's oracle contract, with the search kept in a SQLite file.

There is no central process: every process that builds an ``Oracle`` on the same file
and ``project_name`` is the oracle. ``create_trial`` decides under a cross-process file
lock and records its decision in the same step, so processes never hand out the same
trial twice, and everything an oracle knows is in the file the moment it is decided.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import random
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from hpstore.errors import (
    DuplicateValuesError,
    HpStoreError,
    OracleContractError,
    ProjectMismatchError,
    TunerIdInUseError,
)
from hpstore.hyperparameters import Fixed, HyperParameter, HyperParameters
from hpstore.hyperparameters.base import _same, to_jsonable
from hpstore.hyperparameters.enumerate import count_configurations, iter_configurations
from hpstore.objective import (
    MultiObjective,
    Objective,
    create_objective,
    infer_metric_direction,
    objective_from_config,
)
from hpstore.store import Database, ProjectStore
from hpstore.store.decode import damaged
from hpstore.store.sqlite.project import decode_values, same_entry
from hpstore.trial import (
    MetricHistory,
    MetricsTracker,
    Trial,
    TrialStatus,
    check_metric,
    check_status,
)

#: times a dead worker may take a trial down with it before the trial is FAILED
MAX_INTERRUPTIONS = 3
_POPULATE_ATTEMPTS = 10
_RANDOM_ATTEMPTS = 64


def _identity(values: Mapping[str, Any]) -> dict[str, Any]:
    # Hyperband's bookkeeping values are not part of what was tried, but a continued
    # trial (tuner/trial_id) is not the fresh trial it continues.
    return {k: v for k, v in values.items()
            if not k.startswith("tuner/") or k == "tuner/trial_id"}


def values_key(values: Mapping[str, Any]) -> str:
    """The identity of a set of values: a digest of the sorted name=value pairs.

    Hyperband's bookkeeping values (``tuner/...``) are left out, except ``tuner/trial_id``,
    which tells a continued trial from a fresh one.
    """
    text = json.dumps(_identity(values), sort_keys=True, separators=(",", ":"),
                      allow_nan=False)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def completes(running: Mapping[str, Any], values: Mapping[str, Any],
              space: HyperParameters) -> bool:
    """Whether the running trial with values ``running`` will end up having run ``values``.

    A trial that declares a hyperparameter while it runs registers it at its default, and
    ends recorded with it. So a running trial whose values are a part of ``values``, all
    the rest being at their defaults, is already running ``values``: proposing them again
    would run the same set twice.
    """
    ran, wanted = _identity(running), _identity(values)
    if len(wanted) <= len(ran):
        return False  # equal sets are caught by their digests; fewer cannot be a superset
    for name, value in ran.items():
        if name not in wanted or not _same(wanted[name], value):
            return False
    for name in wanted.keys() - ran.keys():
        if not any(_same(wanted[name], hp.default) for hp in space._hps.get(name, ())):
            return False
    return True


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
    fresh_key: str = ""
    fresh_values: dict[str, Any] | None = None


_F = TypeVar("_F", bound=Callable[..., Any])


def synchronized(method: _F) -> _F:
    """Run an Oracle method under its search's lock, across threads and processes.

    KerasTuner's ``keras_tuner.synchronized`` for custom oracle methods: at most one call
    of a decorated method (or of ``create_trial``) runs at a time for one search file,
    whichever process or thread makes it. The lock is re-entrant, so a decorated override
    may call the decorated method it overrides.
    """

    @functools.wraps(method)
    def wrapper(self: Oracle, *args: Any, **kwargs: Any) -> Any:
        with self._db.lock():
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _dumps(values: Mapping[str, Any]) -> str | None:
    """``values`` as the store writes them, or None when they are not plain JSON."""
    try:
        return json.dumps(values, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return None


def _rebuild(cls: type[Oracle], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Oracle:
    kwargs = dict(kwargs, overwrite=False)  # a copy in another process must not wipe the file
    return cls(*args, **kwargs)


class _StoredTrial(Trial):
    """A Trial read from the file whose values and metric histories are decoded only when
    first used: update_trial's returned trial and end_trial's scoring never need them."""

    _loader: Any = None
    _hp_loader: Any = None

    @property  # type: ignore[override]
    def hyperparameters(self) -> HyperParameters:
        if self._hp_loader is not None:
            loader, self._hp_loader = self._hp_loader, None
            self._hyperparameters = loader()
        return self._hyperparameters

    @hyperparameters.setter
    def hyperparameters(self, value: HyperParameters) -> None:
        self._hp_loader = None
        self._hyperparameters = value

    @property  # type: ignore[override]
    def metrics(self) -> MetricsTracker:
        if self._loader is not None:
            loader, self._loader = self._loader, None
            self._metrics = loader()
        return self._metrics

    @metrics.setter
    def metrics(self, value: MetricsTracker) -> None:
        self._loader = None
        self._metrics = value

    def __reduce__(self) -> tuple[Any, ...]:
        return (Trial.from_state, (self.get_state(),))


class _Trials(Mapping[str, Trial]):
    """``oracle.trials``: a read-only mapping of trial id to Trial, read from the file."""

    def __init__(self, oracle: Oracle) -> None:
        self._oracle = oracle

    def __getitem__(self, trial_id: str) -> Trial:
        return self._oracle.get_trial(trial_id)

    def __iter__(self) -> Iterator[str]:
        return iter(self._oracle._store.trial_ids())

    def __len__(self) -> int:
        return self._oracle._store.count()

    def __contains__(self, trial_id: object) -> bool:
        return isinstance(trial_id, str) and self._oracle._store.has_trial(trial_id)


def _from_file(build: Any, config: Any, where: str) -> Any:
    """``build(config)`` for a config read from the file; a config that cannot be built
    was not written by hpstore.

    Raises:
        NotAnHpstoreFileError: naming ``where`` ("table.column").
    """
    try:
        return build(config)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        raise damaged(where, config) from None


class Oracle:
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
        database: the search file (created if missing), or None / ":memory:" for a search
            kept in this process only.
        project_name: the search within the file; a file may hold several.
        overwrite: start this project afresh, deleting its trials (other projects in the
            file are left alone).
        durability: "normal" (default; survives any process crash) or "full" (also
            survives power loss, slower).

    Arguments left at None on a project that already exists take their stored values;
    given ones are checked against what is stored.

    Raises:
        ValueError: a bad argument (named in the message).
        ProjectMismatchError: the file's project was made with another oracle class,
            objective, seed or conflicting space.
        DatabaseError: the file cannot be used (see ``hpstore.DatabaseError`` subclasses).
    """

    #: ``max_trials`` of a new search when none is given (subclasses set KerasTuner's)
    default_max_trials: int | None = None

    def __new__(cls, *args: Any, **kwargs: Any) -> Oracle:
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
    ) -> None:
        _check_int("max_trials", max_trials, minimum=1, optional=True)
        _check_int("seed", seed, minimum=None, optional=True)
        _check_int("max_retries_per_trial", max_retries_per_trial, minimum=0)
        _check_int("max_consecutive_failed_trials", max_consecutive_failed_trials, minimum=1)
        if hyperparameters is not None and not isinstance(hyperparameters, HyperParameters):
            raise TypeError(f"`hyperparameters` must be a HyperParameters, received "
                            f"{type(hyperparameters).__name__}.")
        if hyperparameters is None and not tune_new_entries:
            raise ValueError("If you set `tune_new_entries=False`, you must specify the search "
                             "space via the `hyperparameters` argument.")
        if hyperparameters is None and not allow_new_entries:
            raise ValueError("If you set `allow_new_entries=False`, you must specify the search "
                             "space via the `hyperparameters` argument.")
        if not isinstance(project_name, str) or not project_name:
            raise ValueError(f"`project_name` must be a non-empty string, received "
                             f"{project_name!r}.")
        self.allow_new_entries = bool(allow_new_entries)
        self.tune_new_entries = bool(tune_new_entries)
        self.max_retries_per_trial = max_retries_per_trial
        self.max_consecutive_failed_trials = max_consecutive_failed_trials
        self.project_name = project_name
        given_objective = None if objective is None else create_objective(objective)
        given_space = hyperparameters.copy() if hyperparameters is not None else None
        #: the space given as ``hyperparameters=``: it overrides what a hypermodel declares
        self._given_space = given_space
        #: trial id -> the run of it this process was handed (a later run is not ours)
        self._handed: dict[str, int] = {}
        self._local = threading.local()
        self._db = Database(database, durability=durability)
        try:
            with self._db.lock():
                stored = None if overwrite else ProjectStore.find(self._db, project_name)
                if stored is None:
                    self._create(given_objective, max_trials, given_space, seed,
                                 replace=overwrite)
                else:
                    self._resume(stored, given_objective, max_trials, given_space, seed)
        except BaseException:
            self._db.close()  # a refused search keeps no connection open on the file
            raise
        self._space_version = -1
        self._space = HyperParameters()
        self._refresh_space()

    # -- opening ---------------------------------------------------------------------------------
    def _search_config(self) -> dict[str, Any]:
        """The constructor arguments of a subclass that define its search; a resumed
        project must be opened with the same ones."""
        return {}

    def _options(self) -> dict[str, Any]:
        return {"allow_new_entries": self.allow_new_entries,
                "tune_new_entries": self.tune_new_entries,
                "max_retries_per_trial": self.max_retries_per_trial,
                "max_consecutive_failed_trials": self.max_consecutive_failed_trials}

    def _create(self, objective: Objective | None, max_trials: int | None,
                space: HyperParameters | None, seed: int | None, replace: bool) -> None:
        self.objective = objective or create_objective(None)
        if max_trials is None:
            max_trials = self.default_max_trials
        # Drawn from the random module, as KerasTuner does, so random.seed() before the
        # search makes it repeatable; stored, so a resumed search keeps it.
        self.seed = seed if seed is not None else random.randrange(2**31)
        self._store = ProjectStore.create(
            self._db, self.project_name, oracle_class=type(self).__name__,
            oracle_config={"search": self._search_config(), "options": self._options()},
            objective=self.objective.get_config(), max_trials=max_trials, seed=self.seed,
            space=(space.get_config()["space"] if space is not None else []),
            replace=replace)

    def _resume(self, stored: dict[str, Any], objective: Objective | None,
                max_trials: int | None, space: HyperParameters | None,
                seed: int | None) -> None:
        where = f"project {self.project_name!r} in {self._db.path}"
        if stored["oracle_class"] != type(self).__name__:
            raise ProjectMismatchError(
                f"The {where} was made by {stored['oracle_class']}, not {type(self).__name__}. "
                "Use that oracle, another project_name, or overwrite=True to start afresh.")
        stored_objective = _from_file(objective_from_config, stored["objective"],
                                      "projects.objective")
        if objective is not None and objective != stored_objective:
            raise ProjectMismatchError(
                f"The {where} optimises {stored_objective!r}, but {objective!r} was given. "
                "Use another project_name, or overwrite=True to start afresh.")
        if seed is not None and seed != stored["seed"]:
            raise ProjectMismatchError(
                f"The {where} has seed {stored['seed']}, but seed={seed} was given. Leave "
                "seed=None to resume with the stored one.")
        stored_search = stored["oracle_config"].get("search", {})
        if not isinstance(stored_search, dict):
            raise damaged("projects.oracle_config", stored["oracle_config"])
        given_search = self._search_config()
        for key, value in given_search.items():
            if key in stored_search and stored_search[key] != value:
                raise ProjectMismatchError(
                    f"The {where} was made with {key}={stored_search[key]!r}, but {key}="
                    f"{value!r} was given. Use the stored value, another project_name, or "
                    "overwrite=True.")
        self.objective = stored_objective
        self.seed = int(stored["seed"])
        self._store = ProjectStore(self._db, stored["project_id"], self.project_name)
        if space is not None:  # every refusal comes before the first write
            _, stored_space = self._store.load_space()
            for item in space.get_config()["space"]:
                _check_definition(stored_space, item, where, "`hyperparameters=` gives")
        changes: dict[str, Any] = {}
        if max_trials is not None and max_trials != stored["max_trials"]:
            changes["max_trials"] = max_trials
        config = {"search": {**stored_search, **given_search}, "options": self._options()}
        if config != stored["oracle_config"]:
            changes["oracle_config"] = config
        self._store.update_settings(**changes)
        if space is not None:
            self._store.extend_space(space.get_config()["space"])

    def __reduce__(self) -> tuple[Any, ...]:
        if self._db.memory:
            raise HpStoreError("An in-memory search cannot be shared with another process; "
                               "give the Oracle a database= path.")
        args, kwargs = self._init_args
        return (_rebuild, (type(self), args, kwargs))

    def close(self) -> None:
        """Close this process's connection and give up its liveness lock."""
        self._db.close()

    def __enter__(self) -> Oracle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the space -------------------------------------------------------------------------------
    def _refresh_space(self) -> None:
        version = self._store.space_version()
        if version != self._space_version:
            version, items = self._store.load_space()
            self._space = _from_file(HyperParameters.from_config,
                                     {"space": items, "values": {}}, "hyperparameters.config")
            self._space_version = version

    @property
    def hyperparameters(self) -> HyperParameters:
        """The search space as stored in the file (read again when another process grew it)."""
        self._refresh_space()
        return self._space

    @property
    def given_hyperparameters(self) -> HyperParameters:
        """A copy of the ``hyperparameters=`` this oracle was given (empty if none): they
        override what a hypermodel declares."""
        given = self._given_space
        return given.copy() if given is not None else HyperParameters()

    def get_space(self) -> HyperParameters:
        """A copy of the search space."""
        return self.hyperparameters.copy()

    def update_space(self, hyperparameters: HyperParameters) -> None:
        """Add the hyperparameters of ``hyperparameters`` that the space does not hold yet.

        With ``tune_new_entries=False`` they are added as Fixed at their default. A
        hyperparameter the space holds under another definition (a range changed in the
        hypermodel since the search began) is refused, unless ``hyperparameters=`` given
        to this oracle overrides it.

        Raises:
            RuntimeError: there are new entries but ``allow_new_entries`` is False.
            ProjectMismatchError: a stored hyperparameter is declared differently.
        """
        items = self._new_entries(hyperparameters, check=True)
        if items:
            self._store.extend_space(items)
            self._refresh_space()

    def _new_entries(self, hyperparameters: HyperParameters, *, check: bool
                     ) -> list[dict[str, Any]]:
        """The entries of ``hyperparameters`` to add to the space, as stored; with
        ``check``, also compare the ones already stored with their stored definition."""
        space = self.hyperparameters
        overrides = self._given_space
        new: list[HyperParameter] = []
        stored_items: list[dict[str, Any]] | None = None
        for hp in hyperparameters.space:
            if not space._exists(hp.name, hp.conditions):
                new.append(hp)
                continue
            if not check or (overrides is not None and overrides._exists(hp.name,
                                                                         hp.conditions)):
                continue  # hyperparameters= overrides what the hypermodel declares
            if stored_items is None:
                stored_items = space.get_config()["space"]
            item = _entry(hp)
            if not self.tune_new_entries:
                item = _entry(Fixed(hp.name, hp.default, conditions=hp.conditions))
            _check_definition(stored_items, item,
                              f"project {self.project_name!r} in {self._db.path or 'memory'}",
                              "the hypermodel now declares")
        if not new:
            return []
        if not self.allow_new_entries:
            raise RuntimeError(f"`allow_new_entries` is `False`, but found new entries {new}")
        if not self.tune_new_entries:
            new = [Fixed(hp.name, hp.default, conditions=hp.conditions) for hp in new]
        return [_entry(hp) for hp in new]

    # -- trials as objects -------------------------------------------------------------------------
    def _trial(self, row: Mapping[str, Any], metrics: bool = True) -> Trial:
        """A Trial from a trials row; its metrics (of the current run) load when first read."""
        space, text = self._space, row["hp_values"]
        trial = _StoredTrial(space, trial_id=row["trial_id"], status=row["status"],
                             message=row["message"])
        # the space as it is now (a later version only adds entries), with these values
        trial._hp_loader = lambda: space.with_values(decode_values(text))
        trial.score = row["score"]
        trial.best_step = row["best_step"]
        trial.tuner_id = row["tuner_id"]
        trial.run = row["run_count"]
        if metrics and row["run_count"]:
            pk, run = row["id"], row["run_count"]
            trial._loader = lambda: self._metrics_of(pk, run)
        return trial

    def _metrics_of(self, pk: int, run: int) -> MetricsTracker:
        tracker = MetricsTracker()
        for name, direction, step, value in self._store.observations(pk, run):
            if name not in tracker.metrics:
                tracker.metrics[name] = MetricHistory(direction)
            tracker.metrics[name].update(value, step)
        return tracker

    @property
    def trials(self) -> Mapping[str, Trial]:
        """Every trial of the search by id, read from the file on access."""
        return _Trials(self)

    def get_trial(self, trial_id: str) -> Trial:
        """The trial with that id, as the file holds it now.

        Raises:
            TrialNotFoundError (a KeyError): no such trial in this project.
        """
        self._refresh_space()
        return self._trial(self._store.trial_row(trial_id))

    @property
    def ongoing_trials(self) -> dict[str, Trial]:
        """The running trials, by the tuner id running them."""
        self._refresh_space()
        return {row["tuner_id"]: self._trial(row) for row in self._store.running()}

    @property
    def max_trials(self) -> int | None:
        return self._store.max_trials()

    def remaining_trials(self) -> int | None:
        """How many more trials may be created, or None when there is no limit."""
        max_trials = self._store.max_trials()
        return None if max_trials is None else max(0, max_trials - self._store.count())

    # -- the oracle contract -----------------------------------------------------------------------
    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """Decide the next trial: return ``{"status": "RUNNING", "values": {...}}``, or
        ``{"status": "IDLE"}`` (nothing to start yet) or ``{"status": "STOPPED"}`` (done).

        Subclasses implement it. Inside ``create_trial`` it runs under the search's lock,
        so it may read the file and call ``self.set_state_value`` without racing other
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
            ProjectRemovedError: another process removed or replaced the project.
        """
        if not isinstance(tuner_id, str) or not tuner_id:
            raise ValueError(f"`tuner_id` must be a non-empty string, received {tuner_id!r}.")
        session = self._db.session()
        token = session.token if session is not None else None
        with self._db.lock(tuner_id):
            self._refresh_space()
            running = self._store.running()
            if self._reap_dead_workers(running, token):
                running = self._store.running()
            row = next((r for r in running if r["tuner_id"] == tuner_id), None)
            if row is not None:
                if row["session"] != token:
                    if not self._db.owns(row["session"]):
                        raise TunerIdInUseError(
                            f"Tuner id {tuner_id!r} is running trial {row['trial_id']} in "
                            "another live process. Give each process its own tuner_id.")
                    # an earlier Oracle of this process on the same file left it running
                    row = self._store.adopt(row, token)
                return self._handed_out(row)
            max_trials, number, queued = self._store.creation_facts()
            if queued:
                row = self._store.take_queued(tuner_id, token)
                if row is not None:
                    return self._handed_out(row)
            if max_trials is not None and number >= max_trials:
                return Trial(self.get_space(), trial_id=self._format_id(number, max_trials),
                             status=TrialStatus.STOPPED)
            trial_id = self._format_id(number, max_trials)
            context = DecisionContext(number, trial_id,
                                      running=[decode_values(r["hp_values"]) for r in running])
            self._local.decision = context
            try:
                status, values, key = self._decide(trial_id, context)
            finally:
                self._local.decision = None
            if status != TrialStatus.RUNNING:
                if context.state:
                    self._store.set_values(context.state)
                return Trial(self.get_space(), trial_id=trial_id, status=status)
            row = self._store.insert_trial(number, trial_id, values, key, tuner_id, token,
                                           state=context.state)
            self._handed[row["trial_id"]] = row["run_count"]
            return self._trial(row, metrics=False)

    def _decide(self, trial_id: str, context: DecisionContext
                ) -> tuple[str, dict[str, Any], str]:
        """(status, values, values key) from ``populate_space``: values never run before,
        nor being completed by a running trial."""
        for _ in range(_POPULATE_ATTEMPTS):
            response = self.populate_space(trial_id)
            status, values = _check_response(response, type(self).__name__,
                                              trusted=context.fresh_values)
            if status != TrialStatus.RUNNING:
                return status, values, ""
            if values is context.fresh_values:  # drawn and looked up by random_values
                return status, values, context.fresh_key
            key = values_key(values)
            if not self.is_taken(values, key):
                return status, values, key
        raise DuplicateValuesError(
            f"{type(self).__name__}.populate_space proposed values already run (or being run) "
            f"{_POPULATE_ATTEMPTS} times in a row (last: {values}). It must return values "
            "not tried before, or status IDLE / STOPPED when none are left.")

    def _handed_out(self, row: Mapping[str, Any]) -> Trial:
        self._handed[row["trial_id"]] = row["run_count"]
        return self._trial(row)

    def _reap_dead_workers(self, running: list[dict[str, Any]], mine: str | None) -> bool:
        """Hand back the trials of workers that died; returns whether there were any."""
        others = {r["session"]: r["pid"] for r in running if r["session"] not in (None, mine)}
        dead = [t for t, pid in others.items() if not self._db.is_alive(t, pid)]
        if dead:
            self._store.reap(dead, MAX_INTERRUPTIONS)
        return bool(dead)

    @staticmethod
    def _format_id(number: int, max_trials: int | None) -> str:
        # KerasTuner's width: the digits of max_trials; len("None") = 4 without a limit.
        return f"{number:0{len(str(max_trials))}d}"

    def update_trial(self, trial_id: str, metrics: Mapping[str, Any], step: int = 0) -> Trial:
        """Record metrics a running trial reports at ``step`` (several at one step average).

        Returns the trial with its current status: STOPPED means stop training it.

        Raises:
            ValueError: an objective metric is missing from ``metrics``.
            InvalidMetricError (a TypeError): a name is not a string or a value not a number.
            TrialNotFoundError (a KeyError): no such trial.
            TrialNotRunningError: the trial has ended, or was handed to another worker.
            ProjectRemovedError: another process removed or replaced the project.
        """
        if not isinstance(metrics, Mapping):
            raise TypeError(f"`metrics` must be a dict of metric name to value, received "
                            f"{type(metrics).__name__}.")
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
            raise TypeError(f"`step` must be an int, received {step!r}.")
        if not -(2**63) <= int(step) < 2**63:  # what an SQLite integer holds
            raise ValueError(f"`step` must be between -2**63 and 2**63 - 1, received {step}.")
        values = {name: check_metric(name, value) for name, value in metrics.items()}
        missing = [n for n in self.objective.metric_names if n not in values]
        if missing:
            raise ValueError(
                "Objective value missing in metrics reported to the Oracle, expected: "
                f"{missing}, found: {list(values)}")
        rows = [(name, self._direction(name), int(step), value) for name, value in values.items()]
        if isinstance(self.objective, MultiObjective):
            rows.append((self.objective.name, "min", int(step), self.objective.get_value(values)))
        row = self._store.record_metrics(trial_id, rows, run=self._handed.get(str(trial_id)))
        return self._trial(row)

    def _direction(self, metric: str) -> str:
        return self.objective.direction_of(metric) or infer_metric_direction(metric) or "min"

    def score_trial(self, trial: Trial) -> None:
        """Set ``trial.score`` and ``trial.best_step`` from its objective's best value."""
        name = self.objective.name
        if not trial.metrics.exists(name):
            trial.score, trial.best_step = None, None
            return
        trial.score = trial.metrics.get_best_value(name)
        trial.best_step = trial.metrics.get_best_step(name)

    def end_trial(self, trial: Trial) -> None:
        """Record the end of a run: the trial's status, message and values are written back,
        and the hyperparameters it declared while running join the space.

        COMPLETED trials are scored (a NaN or missing score makes them INVALID); a trial
        still RUNNING is taken as COMPLETED, as KerasTuner does; INVALID ones run again
        until they have had ``max_retries_per_trial`` retries, then FAILED; IDLE hands the
        trial back to run again later without counting as a retry.

        Raises:
            ValueError: an unknown status.
            TrialNotRunningError: the trial is not running (ended twice, or handed to
                another worker since this process ran it).
            ProjectRemovedError: another process removed or replaced the project.
            RuntimeError: the last ``max_consecutive_failed_trials`` trials all FAILED, or
                the trial declared new hyperparameters while ``allow_new_entries`` is False
                (the trial is recorded FAILED first).
        """
        status = check_status(trial.status)
        if status == TrialStatus.RUNNING:
            status = TrialStatus.COMPLETED
        row = self._store.trial_row(trial.trial_id)
        ProjectStore.check_running(row, self._handed.get(row["trial_id"]))
        message = None if trial.message is None else str(trial.message)
        refused: RuntimeError | None = None
        try:
            new_entries = self._new_entries(trial.hyperparameters, check=False)
        except RuntimeError as exc:  # allow_new_entries=False: say so, and stop the search
            new_entries, refused = [], exc
            status, message = TrialStatus.FAILED, (
                f"{exc}. The trial declared hyperparameters the search space does not hold; "
                "declare them in the `hyperparameters=` given to the oracle, or set "
                "allow_new_entries=True.")
        values = trial.hyperparameters.values
        written: Mapping[str, Any] | str = values
        if _dumps(values) == row["hp_values"]:
            # unchanged since the trial was created (the usual case): keep the stored text
            key, written = row["values_key"], row["hp_values"]
        else:
            # the values it ran with, hyperparameters it declared while running included
            values = to_jsonable(values, what="The trial's values")
            key, written = values_key(values), values
        score = best_step = None
        if status == TrialStatus.COMPLETED:
            stored = self._trial(row)
            if written is not row["hp_values"]:  # the worker changed them: score those
                space, changed = self._space, dict(values)
                stored._hp_loader = lambda: space.with_values(changed)
            self.score_trial(stored)
            score, best_step = stored.score, stored.best_step
            if score is None or math.isnan(score):
                status = TrialStatus.INVALID
                if message is None:
                    message = (f"No valid value of the objective {self.objective.name!r} was "
                               "reported, so the trial could not be scored.")
        invalid = status == TrialStatus.INVALID
        requeue = status == TrialStatus.IDLE
        if invalid:
            if row["invalid_runs"] + 1 < self.max_retries_per_trial + 1:
                requeue = True
            else:
                status = TrialStatus.FAILED
        self._store.finish(row, status, message, written, key, score, best_step,
                           invalid=invalid, requeue=requeue, space=new_entries)
        self._handed.pop(row["trial_id"], None)
        if new_entries:
            self._refresh_space()
        trial.status, trial.message = status, message
        trial.score, trial.best_step = score, best_step
        if refused is not None:
            raise refused
        if status == TrialStatus.FAILED:
            self._check_consecutive_failures(message)

    def _check_consecutive_failures(self, message: str | None) -> None:
        limit = self.max_consecutive_failed_trials
        recent = self._store.recent_final_statuses(limit)
        if len(recent) == limit and all(s == TrialStatus.FAILED for s in recent):
            raise RuntimeError(
                f"Number of consecutive failures exceeded the limit of {limit}.\n"
                + (message or ""))

    def get_best_trials(self, num_trials: int = 1) -> list[Trial]:
        """The best COMPLETED trials, best first; padded with other trials in creation
        order when fewer have completed."""
        _check_int("num_trials", num_trials, minimum=0)
        self._refresh_space()
        rows = self._store.best_rows(num_trials, self.objective.direction)
        return [self._trial(r) for r in rows]

    # -- state -----------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """The whole project (settings, space, trials with metric histories, algorithm state)
        as a JSON-serialisable dict, read in one transaction."""
        state = self._store.dump()
        state["project_name"] = self.project_name
        return state

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Replace this project in the file with ``state`` (from :meth:`get_state`), in one
        transaction.

        Raises:
            ProjectMismatchError: the state was written by another oracle class.
            HpStoreError: the state is malformed; nothing was changed.
        """
        settings = state.get("settings") if isinstance(state, Mapping) else None
        if isinstance(settings, Mapping) and settings.get("oracle_class") not in (
                None, type(self).__name__):
            raise ProjectMismatchError(
                f"This state belongs to a {settings.get('oracle_class')}, not a "
                f"{type(self).__name__}.")
        if isinstance(settings, Mapping):  # what would stop the project from opening again
            try:
                objective_from_config(settings["objective"])
                HyperParameters.from_config({"space": state["space"], "values": {}})
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
                raise HpStoreError(
                    f"The state given to set_state() is malformed ({type(exc).__name__}: "
                    f"{exc}); nothing was changed.") from None
        with self._db.lock():
            self._store.load(state)
        self.objective = objective_from_config(state["settings"]["objective"])
        self.seed = int(state["settings"]["seed"])
        self._space_version = -1
        self._refresh_space()

    # -- for subclasses ----------------------------------------------------------------------------
    @property
    def decision(self) -> DecisionContext:
        """The trial being decided: inside ``create_trial`` the one it will record; when
        ``populate_space`` is called directly, the next trial, with nothing recorded."""
        context: DecisionContext | None = getattr(self._local, "decision", None)
        if context is None:
            self._refresh_space()
            max_trials, number, _ = self._store.creation_facts()
            context = DecisionContext(
                number, self._format_id(number, max_trials), recorded=False,
                running=[decode_values(r["hp_values"]) for r in self._store.running()])
        return context

    def get_state_value(self, key: str, default: Any = None) -> Any:
        """A value the algorithm stored under ``key`` (this decision's pending one first)."""
        pending = getattr(self._local, "decision", None)
        if pending is not None and key in pending.state:
            return pending.state[key]
        return self._store.get_value(key, default)

    def _state_object(self, key: str) -> dict[str, Any]:
        """A built-in algorithm's state under ``key``: a JSON object, or {} when none.

        Raises:
            NotAnHpstoreFileError: the file holds something else there.
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
            NotJSONSerializableError: the value has no JSON form.
        """
        value = to_jsonable(value, what=f"Oracle state {key!r}")
        pending = getattr(self._local, "decision", None)
        if pending is not None:
            pending.state[key] = value

    def rng(self, *salt: int) -> random.Random:
        """A random generator determined by the seed, the trial number and ``salt``."""
        # A string seed goes through SHA-512 in Python's random: stable across processes
        # and versions, and far cheaper than numpy's SeedSequence.
        number = self.decision.number
        return random.Random(":".join(map(str, (self.seed, number, *salt))))

    def is_taken(self, values: Mapping[str, Any], key: str | None = None) -> bool:
        """Whether ``values`` were run already, or are being run by a running trial (one
        that will record them once it declares its missing hyperparameters)."""
        if self._store.has_values(key or values_key(values)):
            return True
        space = self._space
        return any(completes(r, values, space) for r in self.decision.running)

    def random_values(self) -> dict[str, Any] | None:
        """Random values for the active hyperparameters, never a set already run (or being
        run); None when a finite space has been run in full."""
        context = self.decision
        space = self._space.space
        for attempt in range(_RANDOM_ATTEMPTS):
            rng = self.rng(attempt)
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
        # Many collisions: the space is small or nearly used up. List what is left.
        if count_configurations(space, limit=200_000) is None:
            return None
        tried = self._store.values_keys()
        left = [v for v in iter_configurations(space)
                if values_key(v) not in tried and not self.is_taken(v)]
        if not left:
            return None
        return left[self.rng(_RANDOM_ATTEMPTS).randrange(len(left))]

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


def _entry(hp: HyperParameter) -> dict[str, Any]:
    return {"class_name": type(hp).__name__, "config": hp.get_config()}


def _check_definition(stored: list[dict[str, Any]], item: dict[str, Any], where: str,
                      given: str) -> None:
    """Raises ProjectMismatchError when ``item`` is stored under another definition,
    naming only what differs."""
    for old in stored:
        if same_entry(old, item) and old != item:
            raise ProjectMismatchError(
                f"The {where} defines {item['config']['name']!r} differently than {given}: "
                f"{_difference(old, item)}. Keep the stored definition, use another "
                "project_name, or overwrite=True to start afresh.")


def _difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """What differs between two stored hyperparameter definitions, e.g.
    ``min_value -10 -> -20, max_value 10 -> 20``."""
    if old["class_name"] != new["class_name"]:
        return f"{old['class_name']} in the file, {new['class_name']} now"
    a, b = old["config"], new["config"]
    changes = [f"{key} {a.get(key)!r} -> {b.get(key)!r}"
               for key in list(dict.fromkeys([*a, *b])) if a.get(key) != b.get(key)]
    return f"{old['class_name']} with " + ", ".join(changes)


def _check_response(response: Any, where: str,
                    trusted: Any = None) -> tuple[str, dict[str, Any]]:
    if not isinstance(response, Mapping) or "status" not in response:
        raise OracleContractError(
            f"{where}.populate_space must return a dict with a 'status'; returned "
            f"{response!r}.")
    status = check_status(response["status"])
    if status not in (TrialStatus.RUNNING, TrialStatus.IDLE, TrialStatus.STOPPED):
        raise OracleContractError(
            f"{where}.populate_space returned status {status!r}; expected RUNNING, IDLE or "
            "STOPPED.")
    values = response.get("values") or {}
    if not isinstance(values, Mapping):
        raise OracleContractError(
            f"{where}.populate_space returned values {values!r}; expected a dict of "
            "hyperparameter name to value.")
    if values is trusted:  # exactly what _random_values returned: already JSON-normalised
        return status, values
    return status, to_jsonable(dict(values), what="The values from populate_space")


def _check_int(name: str, value: Any, minimum: int | None, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"`{name}` must be an int, received {value!r}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}, received {value}.")


