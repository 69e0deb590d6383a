"""Oracle: KerasTuner's oracle interface, answered by an hpstore oracle and its file.

KerasTuner's Tuner talks to its oracle through a handful of methods (``create_trial``,
``update_trial``, ``end_trial``, ``get_trial``, ``get_best_trials``, ``get_space``,
``update_space``) and checks that the oracle is a ``keras_tuner.Oracle``. This class is
one, and forwards each call to an hpstore oracle, converting Trials, HyperParameters and
objectives on the way. The search file is the whole state: ``save()`` and ``reload()``
have nothing to do, and every process that opens the file shares the search.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import keras_tuner
from keras_tuner.src.engine.oracle import Display

import hpstore
from hpstore.errors import HpStoreError
from hpstore.handing_back import LEFT_RUNNING, left_running
from hpstore.keras._convert import (
    KerasTrial,
    to_hpstore_hyperparameters,
    to_hpstore_objective,
    to_hpstore_trial,
    to_keras_hyperparameters,
    to_keras_objective,
    to_keras_trial,
)
from hpstore.keras.folders import check_project_folder
from hpstore.objective import create_objective
from hpstore.oracle.opening import check_bool, check_int
from hpstore.rendering import print_text, terminal_text
from hpstore.store import shown
from hpstore.trial import TrialStatus

#: seconds between asks while the search is IDLE: first, most (KerasTuner's loop asks
#: again at once, so the wait is here)
IDLE_WAIT = (0.05, 1.0)


def refuse_chief() -> None:
    """Raises HpStoreError when the environment asks for KerasTuner's gRPC chief: its
    Tuner would silently turn into a client of it; here there is no chief."""
    if "KERASTUNER_ORACLE_IP" in os.environ:
        raise HpStoreError(
            f"KERASTUNER_ORACLE_IP is set ({os.environ['KERASTUNER_ORACLE_IP']!r}): that asks "
            "KerasTuner for a gRPC chief, which hpstore.keras does not use. Every process "
            "shares the search file directly; unset KERASTUNER_ORACLE_IP and "
            "KERASTUNER_ORACLE_PORT and start the same script in each process.")


class _KerasTrials(Mapping[str, Any]):
    """``oracle.trials``: the trials of the file by id, as KerasTuner Trials."""

    def __init__(self, oracle: hpstore.Oracle) -> None:
        self._oracle = oracle

    def __getitem__(self, trial_id: str) -> KerasTrial:
        return to_keras_trial(self._oracle.get_trial(trial_id))

    def __iter__(self) -> Iterator[str]:
        return iter(self._oracle.trials)

    def __len__(self) -> int:
        return len(self._oracle.trials)

    def __contains__(self, trial_id: object) -> bool:
        return trial_id in self._oracle.trials


class _Setting:
    """A setting KerasTuner's Oracle keeps as a plain attribute (scripts read it and set it
    on ``tuner.oracle``), kept by the hpstore oracle, or, before a Tuner opens that, with
    the settings it will be opened with. A bad value is refused as the constructor refuses
    it (ValueError / TypeError)."""

    def __init__(self, minimum: int | None = None) -> None:
        self.minimum = minimum  # (None: a bool)

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, oracle: Oracle | None, owner: type | None = None) -> Any:
        if oracle is None:
            return self
        if oracle._inner is None:
            return oracle._settings.get(self.name, _SETTING_DEFAULTS[self.name])
        return getattr(oracle._inner, self.name)

    def __set__(self, oracle: Oracle, value: Any) -> None:
        value = (check_bool(self.name, value) if self.minimum is None
                 else check_int(self.name, value, minimum=self.minimum))
        if oracle._inner is None:
            oracle._settings[self.name] = value
        else:
            setattr(oracle._inner, self.name, value)


#: methods of KerasTuner's Oracle a subclass of this one cannot override, and why
_NOT_OVERRIDABLE = {
    "populate_space": "the hpstore oracle underneath proposes each trial's values, under "
                      "the search file's lock, with its own populate_space.",
    "update_space": "the hpstore oracle underneath keeps the space in the search file, "
                    "and the Tuner adds what the hypermodel declares to it directly.",
}

def say_state_hooks_go_uncalled(cls: type, kind: str) -> None:
    """Warn as a subclass is written that its own ``get_state``/``set_state`` are never
    called: KerasTuner calls them at each save and reload of its files; hpstore.keras's
    search file holds the search as it happens, and saves and reloads nothing. (Silent,
    a counter kept that way read 2 after a search resumed to 4 trials.)"""
    names = [n for n in ("get_state", "set_state") if n in vars(cls)]
    if names:
        warnings.warn(
            f"{cls.__qualname__} overrides {' and '.join(names)}, which hpstore.keras "
            f"never calls on its {kind} (KerasTuner calls them as it saves and reloads its "
            "files; "
            "the search file holds the search as it happens): what they would keep is "
            "lost when the search resumes, and is not shared with other workers. Keep an "
            "algorithm's state in the search file: subclass hpstore.Oracle, store it with "
            "self.set_state_value(key, value) in populate_space, and pass that oracle as "
            "oracle= to hpstore.keras.Tuner.", UserWarning, stacklevel=3)


_SETTING_DEFAULTS = {"max_retries_per_trial": 0, "max_consecutive_failed_trials": 3,
                     "allow_new_entries": True, "tune_new_entries": True}


class Oracle(keras_tuner.Oracle):
    """A ``keras_tuner.Oracle`` whose search is an hpstore oracle's.

    Give it to ``hpstore.keras.Tuner`` (or any KerasTuner Tuner) to run that search;
    several processes, each with its own Tuner on the same file, share it.

    Args:
        oracle: the hpstore oracle, for example
            ``hpstore.BayesianOptimizationOracle(objective="val_loss", max_trials=20,
            database="runs/search.db", project_name="p")``.

    Raises:
        TypeError: ``oracle`` is not an hpstore Oracle.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # The hpstore oracle underneath proposes the trials and keeps the space, in the
        # file every process shares: an override of these would never be called, and a
        # search silently run without it is worse than none.
        super().__init_subclass__(**kwargs)
        for name, instead in _NOT_OVERRIDABLE.items():
            if name in vars(cls):
                raise TypeError(
                    f"{cls.__qualname__} overrides {name}, which hpstore.keras's oracles "
                    f"never call: {instead} Subclass hpstore.Oracle (or one of its "
                    f"oracles), override {name} there, and pass it as oracle= to "
                    "hpstore.keras.Tuner. create_trial, end_trial and score_trial may be "
                    "overridden here.")
        say_state_hooks_go_uncalled(cls, "oracles")

    def __init__(self, oracle: hpstore.Oracle) -> None:
        if not isinstance(oracle, hpstore.Oracle):
            raise TypeError(f"`oracle` must be an hpstore Oracle, received {oracle!r}.")
        self._setup()
        self._inner = oracle

    _inner: hpstore.Oracle | None
    _settings: dict[str, Any]  # (a deferred oracle's, until it is opened)

    max_retries_per_trial = _Setting(minimum=0)
    max_consecutive_failed_trials = _Setting(minimum=1)
    allow_new_entries = _Setting()
    tune_new_entries = _Setting()

    def _setup(self) -> None:
        # What KerasTuner's Tuner reads from its oracle besides the methods below. Its
        # Oracle.__init__ is not called: trials, space and objective are in the file.
        self._inner = None
        self._display = Display(oracle=self)
        self.multi_worker = False
        self.should_report = True
        self.tuner_ids: set[str] = set()
        self._directory: str | None = None
        self._project_name: str | None = None
        self._objective: Any = None
        #: trial id -> the last step its objective was reported at, in its current run
        self._reported: dict[str, int] = {}
        #: trial ids whose run_trial reported its objective through update_trial itself
        self._reported_itself: set[str] = set()
        #: trial id -> the step of the result its run_trial returned, which scores it
        self._scored_on: dict[str, int] = {}
        #: trial id -> the last step every execution of it reached, when they stopped at
        #: different steps (see score_up_to)
        self._scored_up_to: dict[str, int] = {}
        #: what ``hyperparameters`` handed out, each with the entries it held when last
        #: looked at: what is declared on any of them (KerasTuner's
        #: ``oracle.hyperparameters.Float(...)``, on an object a script keeps) joins the
        #: space before the space is next read (a copy made at each access lost it)
        self._held: list[list[Any]] = []
        #: the trials create_trial handed out here, their metrics kept by update_trial as
        #: KerasTuner keeps its own (a custom loop scores the trial it holds)
        self._handed: dict[str, KerasTrial] = {}
        #: while the Tuner tells a subclass's own update_trial a result (see update_trial)
        self._result_told = False
        self._wait = IDLE_WAIT[0]
        #: the other processes' trials last said to be waited for
        self._waiting_for: list[str] = []

    # -- the hpstore oracle ----------------------------------------------------------------------
    @property
    def hpstore_oracle(self) -> hpstore.Oracle:
        """The hpstore oracle that holds the search."""
        if self._inner is None:
            self._open(None)
        assert self._inner is not None
        return self._inner

    def _open(self, directory: str | None) -> None:
        raise HpStoreError(  # pragma: no cover - only deferred oracles open late
            "This oracle has no search to run.")

    def _configure(self, *, database: Any, durability: str | None, overwrite: bool) -> None:
        """Settings a Tuner hands its oracle before opening it.

        Raises:
            ValueError: ``database=``, ``durability=`` or ``overwrite=True`` given to the
                Tuner although the oracle was opened on a file of its own.
        """
        if database is not None or durability is not None or overwrite:
            raise ValueError(
                "This oracle already has its search file open; give `database=`, "
                "`durability=` and `overwrite=True` to the hpstore oracle, not to the Tuner.")

    def _set_project_dir(self, directory: str, project_name: str) -> None:
        # Called by KerasTuner's Tuner before anything else: it names the folder of the
        # checkpoints, which is also where a search file with no path given goes. (Its
        # Tuner turns to a gRPC chief right after, when the environment names one.)
        refuse_chief()
        self._directory, self._project_name = directory, project_name
        if self._inner is None:
            self._open(str(directory))
        else:  # an hpstore oracle opened on its own file: its folder checked all the same
            check_project_folder(self._inner.store.location,
                                 os.path.join(str(directory), project_name), project_name,
                                 overwrite=False, held=self._inner.project.count() > 0)

    @property
    def directory(self) -> str | None:
        """The Tuner's ``directory``, where the checkpoints go (KerasTuner's attribute;
        None before a Tuner is made with this oracle)."""
        return self._directory

    @property
    def project_name(self) -> str | None:
        """The Tuner's ``project_name`` (KerasTuner's attribute; None before a Tuner is
        made with this oracle)."""
        return self._project_name

    def close(self) -> None:
        """Close the search file in this process."""
        if self._inner is not None:
            self._inner.close()

    # -- what KerasTuner's Tuner calls ------------------------------------------------------------
    def create_trial(self, tuner_id: str) -> KerasTrial:
        """A trial for the worker ``tuner_id``: RUNNING (run it), IDLE (ask again) or
        STOPPED (the search is over: nothing left to start, and no trial running in another
        process); see :meth:`hpstore.Oracle.create_trial`. A trial of ``tuner_id`` left
        RUNNING in this process with epochs reported (an earlier search() could not end it)
        goes back to the queue first, to run again from its start in a run of its own."""
        oracle = self.hpstore_oracle
        self._take_declared()
        trial = oracle.create_trial(tuner_id)
        if left_running(trial):
            # This worker's own trial, left RUNNING in this process by an earlier search()
            # whose end of it could not be written (a full disk) or raised, handed out
            # again in that same run: its epochs from the first would report on top of
            # that run's and count twice. It goes back to the queue and runs again
            # afresh, in a run of its own.
            trial.status, trial.message = TrialStatus.IDLE, LEFT_RUNNING
            oracle.end_trial(trial)
            trial = oracle.create_trial(tuner_id)
        self.tuner_ids.add(tuner_id)
        elsewhere = oracle.running_elsewhere() if trial.status == TrialStatus.STOPPED else []
        if elsewhere:
            # No trial is left to start, but other processes still run some. Keep asking
            # until they end, so that search() returns on a finished search (its best
            # models are the best of all) and a trial whose worker dies meanwhile is
            # taken over here; said as hpstore.Tuner says it (a worker waiting on a frozen
            # one's trial was silent for as long as it waited).
            trial.status = TrialStatus.IDLE
            others = [f"{t.trial_id} ({t.tuner_id})" for t in elsewhere]
            verbose = self._display.verbose
            if others != self._waiting_for and not (
                    isinstance(verbose, (int, float)) and verbose < 1):
                print_text(terminal_text(
                    f"Nothing to start for now; waiting for trial(s) {', '.join(others)} "
                    "running in other processes."), flush=True)
            self._waiting_for = others
        if trial.status == TrialStatus.IDLE:
            # Other workers' trials must end first; KerasTuner's loop would ask again at
            # once, so wait a little here, longer each time.
            time.sleep(self._wait)
            self._wait = min(self._wait * 2, IDLE_WAIT[1])
        else:
            self._wait = IDLE_WAIT[0]
            self._waiting_for = []
        theirs = to_keras_trial(trial, to_run=True)
        if trial.status == TrialStatus.RUNNING:
            self._handed[str(theirs.trial_id)] = theirs
            self._display.on_trial_begin(theirs)
        return theirs

    def update_trial(self, trial_id: str, metrics: Mapping[str, Any], step: int = 0
                     ) -> KerasTrial:
        """Record metrics of a running trial at ``step``; the returned trial's status is
        STOPPED when it has been told to stop. See :meth:`hpstore.Oracle.update_trial`.

        The Tuner calls it once a trial ran, with its result, when a subclass overrides
        it (as KerasTuner does); the epochs are recorded already then, and this records
        nothing more."""
        if self._result_told:
            return self.get_trial(trial_id)
        return self.record_epoch(trial_id, metrics, int(step), by_run_trial=True)

    @contextlib.contextmanager
    def result_told(self) -> Iterator[None]:
        """While the Tuner hands a trial's result to a subclass's own ``update_trial``."""
        self._result_told = True
        try:
            yield
        finally:
            self._result_told = False

    def record_epoch(self, trial_id: str, metrics: Mapping[str, Any], step: int, *,
                     by_run_trial: bool = False) -> KerasTrial:
        """:meth:`update_trial`, from the tuner's own callback (``by_run_trial`` False) or
        from a ``run_trial`` that reports for itself (as KerasTuner still allows)."""
        oracle = self.hpstore_oracle
        updated = oracle.update_trial(trial_id, metrics, step=step)
        handed = self._handed.get(str(trial_id))
        if handed is not None:  # (checked and recorded: real numbers)
            for name, value in metrics.items():
                handed.metrics.update(name, float(value), step=step)
            handed.status = updated.status
        if all(name in metrics for name in oracle.objective.metric_names):
            key = str(trial_id)
            self._reported[key] = max(step, self._reported.get(key, step))
            if by_run_trial:
                self._reported_itself.add(key)
        return to_keras_trial(updated)

    def reported(self, trial_id: str) -> bool:
        """Whether the running trial has reported its objective through this oracle."""
        return str(trial_id) in self._reported

    def reported_itself(self, trial_id: str) -> bool:
        """Whether the running trial's ``run_trial`` reported its objective through
        :meth:`update_trial` itself (then, as in KerasTuner, what it returns is not used)."""
        return str(trial_id) in self._reported_itself

    def record_result(self, trial_id: str, metrics: Mapping[str, Any]) -> KerasTrial:
        """Record what a trial's ``run_trial`` (or its hypermodel's ``fit``) returned, after
        the epochs it reported, and score the trial on it when it ends, as KerasTuner
        scores what ``run_trial`` returns (a test-set score, a mean over folds)."""
        key = str(trial_id)
        step = self._reported.get(key, -1) + 1
        # not judged by a stopping rule: it is no epoch of the curve
        updated = self.hpstore_oracle.record_result(trial_id, metrics, step=step)
        self._scored_on[key] = step
        return to_keras_trial(updated)

    def score_up_to(self, trial_id: str, last: int) -> None:
        """Score the running trial, as it ends, on the steps up to ``last`` only: those
        every execution of it reached (``executions_per_trial`` > 1, one of them stopped
        early by a callback of the script's, ``EarlyStopping``). Past it the curve averages
        fewer executions, down to one, whose value alone scored the trial."""
        self._scored_up_to[str(trial_id)] = int(last)

    def end_trial(self, trial: Any = None, status: str = TrialStatus.COMPLETED, *,
                  trial_id: str | None = None) -> None:
        """Record the end of a run of ``trial`` (a KerasTuner Trial): its status, message,
        and the values of the hyperparameters it declared while running. ``trial`` gets
        the status, score and best step recorded. See :meth:`hpstore.Oracle.end_trial`.

        KerasTuner's earlier ``end_trial(trial_id, status="COMPLETED")``, which its
        Oracle still takes, ends the trial of that id with ``status``."""
        if trial_id is not None or isinstance(trial, str):
            trial = self.get_trial(trial_id if trial_id is not None else trial)
            trial.status = status
        self._handed.pop(str(trial.trial_id), None)
        ours = to_hpstore_trial(trial)
        inner = self.hpstore_oracle
        given = ours.status
        step = self._scored_on.pop(str(trial.trial_id), None)
        up_to = self._scored_up_to.pop(str(trial.trial_id), None)
        scorer: Any = None
        if step is not None:  # scored on the result run_trial returned, not its best epoch
            scorer = functools.partial(_score_at_step, inner, step)
        elif up_to is not None:  # on the steps every execution reached
            scorer = functools.partial(_score_up_to_step, inner, up_to)
        if type(self).score_trial is not Oracle.score_trial:  # a subclass's own scoring
            scorer = functools.partial(self._score_as_keras_tuner, scorer or inner.score_trial)
        if scorer is not None:
            inner.score_trial = scorer  # type: ignore[method-assign]
        try:
            inner.end_trial(ours)
        finally:
            if scorer is not None:
                del inner.score_trial  # (the class's again)
            self._reported.pop(str(trial.trial_id), None)
            self._reported_itself.discard(str(trial.trial_id))
            trial.status, trial.message = ours.status, ours.message
            trial.score = ours.score
            trial.best_step = ours.best_step if ours.best_step is not None else 0
        if given == ours.status == TrialStatus.INVALID:  # (no retry left: FAILED)
            # queued to run again: say so, as KerasTuner does (its display shows only ends)
            runs = inner.project.trial(ours.trial_id).invalid_runs
            left = self.max_retries_per_trial - runs + 1
            print_text(f"Trial {trial.trial_id} failed {runs} time{'s' * (runs != 1)}; "
                       f"{left} retr{'ies' if left != 1 else 'y'} left.", flush=True)
        if trial.status != TrialStatus.IDLE and trial.trial_id in self._display.trial_start:
            self._display.on_trial_end(trial)

    def score_trial(self, trial: Any) -> None:
        """Set ``trial.score`` and ``trial.best_step`` of a trial that ends scored
        (COMPLETED, or STOPPED by the search), as the hpstore oracle scores it: its
        objective's best epoch, or the result its ``run_trial`` returned.

        A subclass may override it, as in KerasTuner: it is called with the KerasTuner
        Trial (its ``metrics`` hold every epoch recorded) as the trial ends, and the score
        it sets is recorded; a NaN or None score makes the trial INVALID. The status it sets
        (INVALID for a run it deems infeasible) is the one the trial ends with. ``trial`` is one
        of those this oracle hands to it; any other is scored as KerasTuner's Oracle
        scores it."""
        ours: hpstore.Trial | None = getattr(trial, "_hpstore_trial", None)
        scorer = getattr(trial, "_hpstore_scorer", None)
        if ours is None or scorer is None:
            super().score_trial(trial)
            return
        scorer(ours)
        trial.score = ours.score
        trial.best_step = ours.best_step if ours.best_step is not None else 0

    def _score_as_keras_tuner(self, scorer: Any, stored: hpstore.Trial) -> None:
        """Score ``stored`` (the hpstore oracle's trial) by this class's ``score_trial``,
        handed the KerasTuner Trial, and take back the score it sets."""
        theirs = to_keras_trial(stored)
        theirs.status = (TrialStatus.STOPPED if stored.status == TrialStatus.STOPPED
                         else TrialStatus.COMPLETED)  # (the only ends that are scored)
        theirs._hpstore_trial, theirs._hpstore_scorer = stored, scorer  # type: ignore[attr-defined]
        theirs.score = None
        self.score_trial(theirs)
        stored.status = theirs.status  # (set to INVALID, say: honoured, as in KerasTuner)
        stored.score = None if theirs.score is None else float(theirs.score)
        stored.best_step = None if theirs.best_step is None else int(theirs.best_step)

    def get_trial(self, trial_id: str) -> KerasTrial:
        """The trial as the file holds it now (TrialNotFoundError, a KeyError, if none)."""
        return to_keras_trial(self.hpstore_oracle.get_trial(trial_id))

    def get_best_trials(self, num_trials: int = 1) -> list[KerasTrial]:
        """The best COMPLETED trials of every process, best first."""
        return [to_keras_trial(t) for t in self.hpstore_oracle.get_best_trials(num_trials)]

    def get_space(self) -> keras_tuner.HyperParameters:
        """The search space, each active hyperparameter at its default value."""
        self._take_declared()
        return to_keras_hyperparameters(self.hpstore_oracle.get_space())

    def update_space(self, hyperparameters: Any) -> None:
        """Add what ``hyperparameters`` declares to the space (ProjectMismatchError for a
        hyperparameter stored under another definition)."""
        self._take_declared()
        self.hpstore_oracle.update_space(to_hpstore_hyperparameters(hyperparameters))

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """The hpstore oracle's next proposal, recording nothing."""
        self._take_declared()
        return self.hpstore_oracle.populate_space(trial_id)

    def _take_declared(self) -> None:
        """Add to the space what was declared on :attr:`hyperparameters` since it was
        handed out (RuntimeError with ``allow_new_entries=False``, ProjectMismatchError for
        a stored hyperparameter declared otherwise: raised again at the next read until
        the declaration is mended)."""
        for held in self._held:
            space, count = held
            if len(space.space) != count:
                self.hpstore_oracle.update_space(to_hpstore_hyperparameters(space))
                held[1] = len(space.space)  # (once stored)

    def remaining_trials(self) -> int | None:
        return self.hpstore_oracle.remaining_trials()

    @property
    def hyperparameters(self) -> keras_tuner.HyperParameters:  # type: ignore[override]
        """The search space; what is declared on it joins the space, as on KerasTuner's
        oracle (``tuner.oracle.hyperparameters.Float("lr", 1e-4, 1e-1)``). The same object
        until the space changes."""
        space = self.get_space()
        newest = self._held[-1][0] if self._held else None
        if newest is None or [hp.get_config() for hp in newest.space] != [
                hp.get_config() for hp in space.space]:
            self._held.append([space, len(space.space)])
            newest = space
        return newest

    @property
    def objective(self) -> Any:  # type: ignore[override]
        """The objective as a KerasTuner Objective (names and directions of the file's)."""
        if self._objective is None:
            self._objective = to_keras_objective(self.hpstore_oracle.objective)
        return self._objective

    @property
    def max_trials(self) -> int | None:  # type: ignore[override]
        """The search's limit, as stored; setting it changes it for every process (as
        ``tuner.oracle.max_trials = 20`` extends a search in KerasTuner)."""
        return self.hpstore_oracle.max_trials

    @max_trials.setter
    def max_trials(self, value: int | None) -> None:
        self.hpstore_oracle.max_trials = value

    @property
    def seed(self) -> int:  # type: ignore[override]
        return self.hpstore_oracle.seed

    @property
    def trials(self) -> Mapping[str, KerasTrial]:  # type: ignore[override]
        return _KerasTrials(self.hpstore_oracle)

    @property
    def ongoing_trials(self) -> dict[str, KerasTrial]:  # type: ignore[override]
        return {tuner_id: to_keras_trial(t)
                for tuner_id, t in self.hpstore_oracle.ongoing_trials.items()}

    @property
    def start_order(self) -> list[str]:  # type: ignore[override]
        """The trial ids in the order they first started, each once (a run again of a
        trial is not a start of its own, as KerasTuner keeps it), from the status log."""
        return _first_of_each(c.trial_id for c in self.hpstore_oracle.project.transitions()
                              if c.to_status == TrialStatus.RUNNING)

    @property
    def end_order(self) -> list[str]:  # type: ignore[override]
        """The trial ids in the order they ended for good (COMPLETED, FAILED or STOPPED),
        each once: a run that failed and is queued to run again is no end, as KerasTuner
        keeps it. From the status log."""
        return _first_of_each(c.trial_id for c in self.hpstore_oracle.project.transitions()
                              if c.to_status in TrialStatus.FINAL
                              and c.from_status != c.to_status)

    # -- state: the file --------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return self.hpstore_oracle.get_state()

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.hpstore_oracle.set_state(state)

    def save(self) -> None:
        """Nothing to do: every step was written to the search file as it happened."""

    def reload(self) -> None:
        """Nothing to do: every call reads the search file as it is now."""


def _first_of_each(trial_ids: Iterable[str]) -> list[str]:
    """``trial_ids`` in order, each at its first place only."""
    return list(dict.fromkeys(trial_ids))


def _score_at_step(oracle: hpstore.Oracle, step: int, trial: hpstore.Trial) -> None:
    """``trial``'s score: its objective's value at ``step`` (else as the oracle scores)."""
    name = oracle.objective.name
    at = ([o for o in trial.metrics.get_history(name) if o.step == step]
          if trial.metrics.exists(name) else [])
    if not at:
        type(oracle).score_trial(oracle, trial)
        return
    trial.score, trial.best_step = at[0].mean(), step


def _score_up_to_step(oracle: hpstore.Oracle, last: int, trial: hpstore.Trial) -> None:
    """``trial``'s score: the best of its objective's values at steps up to ``last``, the
    first of equals (else as the oracle scores)."""
    name = oracle.objective.name
    points = sorted((o.step, o.mean()) for o in (
        trial.metrics.get_history(name) if trial.metrics.exists(name) else [])
        if o.step <= last and not math.isnan(o.mean()))
    if not points:
        type(oracle).score_trial(oracle, trial)
        return
    pick = min if oracle.objective.direction == "min" else max
    trial.best_step, trial.score = pick(points, key=lambda point: point[1])


class DeferredOracle(Oracle):
    """An oracle whose hpstore oracle is opened by the Tuner it is given to, so that a
    search file with no path given goes into the Tuner's ``directory``."""

    #: the hpstore oracle class this one opens
    hpstore_class: type[hpstore.Oracle] = hpstore.Oracle

    def __init__(self, settings: dict[str, Any], *, database: Any, durability: str) -> None:
        self._setup()
        settings = dict(settings)
        settings["objective"] = to_hpstore_objective(settings.get("objective"))
        try:
            create_objective(settings["objective"])  # a bad objective fails here, as KerasTuner's
        except ValueError as exc:  # said in the words of the API the script uses
            raise ValueError(str(exc).replace("`hpstore.Objective(", "`keras_tuner.Objective(")
                             ) from None
        if settings.get("hyperparameters") is not None:
            settings["hyperparameters"] = to_hpstore_hyperparameters(settings["hyperparameters"])
        # Every other argument is checked here too, where the script gave it, as
        # KerasTuner's oracles do: the file is opened only by the Tuner (after it made its
        # folder, and from inside KerasTuner's frames).
        self.hpstore_class.check_arguments(**settings, database=database,
                                           durability=durability)
        self._settings = settings
        self.database = database
        self.durability = durability
        self._overwrite = False

    def _configure(self, *, database: Any, durability: str | None, overwrite: bool) -> None:
        if self._inner is not None:
            super()._configure(database=database, durability=durability, overwrite=overwrite)
            return
        if database is not None:
            if self.database is not None and str(self.database) != str(database):
                raise ValueError(
                    f"The oracle was given database={shown(self.database)!r} and the Tuner "
                    f"database={shown(database)!r}; give it once.")
            self.database = database
        if durability is not None:
            self.durability = durability
        self._overwrite = overwrite

    def _open(self, directory: str | None) -> None:
        database = self.database
        project_name = self._project_name or "untitled_project"
        if database is None:
            if directory is None:
                raise HpStoreError(
                    f"{type(self).__name__} has no search file yet: give it to a Tuner (the "
                    "file then goes into the Tuner's `directory`), or give it `database=`.")
            database = os.path.join(directory, f"{project_name}.db")
            os.makedirs(os.path.dirname(database) or ".", exist_ok=True)
        if directory is not None:
            check_project_folder(database, os.path.join(directory, project_name),
                                 project_name, overwrite=self._overwrite)
        self._inner = self.hpstore_class(**self._settings, database=database,
                                         project_name=project_name, overwrite=self._overwrite,
                                         durability=self.durability)
