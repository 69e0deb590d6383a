"""Tuner: the search loop around any Python code, in one process or several.

Like KerasTuner's BaseTuner: ask the oracle for a trial, run the user's code on its
hyperparameters, report the result, repeat until the oracle says STOPPED. Subclass and
override :meth:`Tuner.run_trial`, or pass ``run_trial=`` a function, or pass a
``hypermodel`` whose ``build(hp)`` declares the space (and whose ``fit`` trains).
"""

from __future__ import annotations

import collections
import contextlib
import inspect
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from hpstore.errors import (
    DatabaseError,
    FailedTrialError,
    FatalError,
    FatalTypeError,
    FatalValueError,
    InvalidMetricError,
    MissingObjectiveError,
    NameTooLongError,
    NothingToRunError,
    ProjectMismatchError,
    TrialLostError,
    TrialNotRunningError,
)
from hpstore.handing_back import (
    END_RAISED,
    LEFT_RUNNING,
    RESUME_HINT,
    end_failed,
    give_back,
    interrupted_what,
    left_running,
)
from hpstore.hyperparameters import HyperParameters
from hpstore.hyperparameters.discover import (
    check_declared_again,
    declaration_key,
    discover_space,
    watch_declarations,
)
from hpstore.kerastuner_surface import missing_attribute, not_taken
from hpstore.oracle import Oracle
from hpstore.oracle.opening import check_optional_int, check_step
from hpstore.progress import Progress
from hpstore.results import best_step_of, to_metrics, validate_results
from hpstore.trial import Trial, TrialStatus
from hpstore.tuner_ids import check_tuner_id, search_ended, search_started, tuner_id_of
from hpstore.tuner_results import ResultsMixin
from hpstore.workers import (
    NO_MAIN_GUARD_EXIT,
    WORKER_MARK,
    ignore_sigint,
    ignore_sigterm_as_ctrl_c,
    importing_in_a_worker,
    no_main_guard_message,
    run_workers,
    sigint_deferred,
    terminated_as_ctrl_c,
)

#: the tuner ids of this process's Tuners inside their search loop (a running trial of one
#: of them is in hand; one of no loop was left running by hand)
_LOOPS: collections.Counter[str] = collections.Counter()
_LOOPS_LOCK = threading.Lock()
_IDLE_WAIT = (0.05, 1.0)  # seconds between asks while the oracle is IDLE: first, most
class BuildFunction:
    """A function ``build(hp)`` given as a Tuner's hypermodel, as an object with
    ``build(hp)`` (it has no ``fit``: a trial is run by ``run_trial``). Calling it calls the
    function."""

    def __init__(self, function: Callable[[HyperParameters], Any]) -> None:
        self.function = function

    def build(self, hp: HyperParameters) -> Any:
        """What the function returns for ``hp``."""
        return self.function(hp)

    def __call__(self, hp: HyperParameters) -> Any:
        return self.function(hp)

    def __repr__(self) -> str:
        return f"BuildFunction({self.function!r})"


class Tuner(ResultsMixin):
    """Runs a search: override ``run_trial`` or pass ``run_trial=`` / ``hypermodel=``.

    Args:
        oracle: the search algorithm and its file (an :class:`hpstore.Oracle`).
        hypermodel: optional; a function ``build(hp)`` or an object with ``build(hp)``
            (and ``fit(hp, model, *args, **kwargs)`` returning the results). It is called
            once before the search so the space is declared, and once per trial.
        run_trial: optional function ``run_trial(trial, *args, **kwargs)`` returning the
            results (a float to minimise, a dict of metrics, or a list of either).
        tuner_id: this worker's name; by default ``HPSTORE_TUNER_ID`` or
            ``KERASTUNER_TUNER_ID`` when set, else ``worker-<pid>`` (``worker-<pid>-t<n>``
            for a search in another thread than the main one).
        verbose: 0 silent, 1 a line per trial and a live status line on a terminal.

    ``run_trial`` may raise ``FailedTrialError`` (the trial is FAILED, not retried),
    ``FatalError`` (the search stops), or anything else (the trial is INVALID and retried
    up to ``max_retries_per_trial`` times, with the traceback as its message). A metric
    value that is not one real number, returned or reported, is an ``InvalidMetricError``:
    the trial is FAILED and the search stops, as for a return of the wrong type; so does a
    report without the objective (``MissingObjectiveError``).

    Raises:
        TypeError: an ``oracle`` that is not an hpstore Oracle, a ``hypermodel`` that has
            no build(hp) (or is a class, not an instance of it), a ``run_trial`` that
            cannot be called; a keyword argument it does not take, and one of KerasTuner's
            Tuner (``directory``, ``project_name``, ``overwrite``,
            ``executions_per_trial``, ``max_retries_per_trial``, ``logger``, Keras-only
            ones) named with where it goes instead; a ``tuner_id`` not a string (or a
            whole number, taken as its digits), a ``verbose`` not a whole number or "auto".
        ValueError: a ``tuner_id`` no store can hold.
    """

    #: stop the search (as at Ctrl-C) when the reader of its output pipe closes it: for
    #: a command (hpstore demo | head); a script's search goes on without its display
    _stop_when_output_closed = False
    #: KerasTuner's BaseTuner keeps the logger it is given, which it ignores: always None
    logger = None
    #: whether the search was interrupted elsewhere (a worker's parent stopping it)
    _interrupted_elsewhere: Callable[[], bool] = staticmethod(lambda: False)

    def __init__(self, oracle: Oracle, hypermodel: Any = None, *,
                 run_trial: Callable[..., Any] | None = None, tuner_id: str | None = None,
                 verbose: int | str = 1, **kwargs: Any) -> None:
        if kwargs.get("logger", True) is None:
            del kwargs["logger"]  # (KerasTuner takes logger=None without a word, as no logger)
        if kwargs:
            raise not_taken(type(self).__name__, kwargs)
        if not isinstance(oracle, Oracle):
            raise TypeError(f"`oracle` must be an hpstore Oracle, received {oracle!r}.")
        if hypermodel is not None and not (callable(hypermodel) or hasattr(hypermodel, "build")):
            raise TypeError("`hypermodel` must be a function build(hp) or an object with a "
                            f"build(hp) method; received {hypermodel!r}.")
        if isinstance(hypermodel, type) and inspect.isfunction(
                inspect.getattr_static(hypermodel, "build", None)):
            # (its build would be called unbound, hp taken as self: "missing 1 required
            # positional argument: 'hp'" at the first build; a static or class method
            # build is called as it should be)
            raise TypeError(f"`hypermodel` is the class {hypermodel.__name__}: pass an "
                            f"instance of it, hypermodel={hypermodel.__name__}().")
        if run_trial is not None and not callable(run_trial):
            # (else every trial failed on calling it, until too many had in a row)
            raise TypeError("`run_trial` must be a function run_trial(trial, ...), received "
                            f"{run_trial!r}.")
        self.oracle = oracle
        #: an object with ``build(hp)``, as in KerasTuner (which wraps a function alike), so
        #: a ``run_trial`` of a subclass written for it builds with ``self.hypermodel.build``
        #: (Any, as KerasTuner's: a HyperModel of one's own, with ``fit`` or not)
        self.hypermodel: Any = (BuildFunction(hypermodel) if hypermodel is not None
                           and not hasattr(hypermodel, "build") else hypermodel)
        self._run_trial_fn = run_trial
        self._tuner_id = check_tuner_id(tuner_id)
        if verbose == "auto":  # (KerasTuner's fit default)
            verbose = 1
        elif not isinstance(verbose, int):
            # (else the first progress line failed, inside search(), on comparing it)
            raise TypeError(f"`verbose` must be a whole number (0: quiet; 1: a line per "
                            f"trial) or 'auto', received {verbose!r}.")
        self.verbose = verbose
        self._reported: set[str] = set()
        #: whether the last search() was stopped by Ctrl-C (its message already printed)
        self.interrupted = False
        self._in_worker = False  # True in a process started by search(workers=N)
        #: a worker of a search whose display is on: says on stderr what only it knows
        self._worker_says = False
        if hypermodel is not None:
            self._declare_space()  # as KerasTuner does, so search_space_summary() sees it

    @property
    def tuner_id(self) -> str:
        """This worker's name: the one given, else ``default_tuner_id()`` of the process
        running the search (a Tuner handed to child processes names each child apart), and
        of the thread: read outside a search, the name the last search of this process ran
        under (one run in another thread recorded its trials as ``worker-<pid>-t<thread>``:
        the main thread's name found none of them)."""
        return tuner_id_of(self, self._tuner_id)

    @tuner_id.setter
    def tuner_id(self, value: str | None) -> None:
        # the constructor's check (TypeError): `tuner.tuner_id = 7` failed at search()
        self._tuner_id = check_tuner_id(value) or None

    @property
    def project_name(self) -> str:
        """The name of the search in its file (the oracle's ``project_name``)."""
        return self.oracle.project_name

    @property
    def remaining_trials(self) -> int | None:
        """How many trials are left to start, None without ``max_trials`` (as in
        KerasTuner; see :meth:`Oracle.remaining_trials`)."""
        return self.oracle.remaining_trials()

    def __getattr__(self, name: str) -> Any:
        # Only for names not found otherwise: one of KerasTuner's tuners says what to use
        raise missing_attribute(self, name)

    # -- the user's side ---------------------------------------------------------------------------
    def build(self, hp: HyperParameters) -> Any:
        """Build the model for ``hp`` with the hypermodel (None without one)."""
        if self.hypermodel is None:
            return None
        return self.hypermodel.build(hp)

    def run_trial(self, trial: Trial, *args: Any, **kwargs: Any) -> Any:
        """Run one trial and return its results; override it, or pass ``run_trial=``.

        The default builds the hypermodel and calls its ``fit(hp, model, *args, **kwargs)``.

        Raises:
            NothingToRunError (a FatalError and a NotImplementedError): there is nothing to
                run; the trial is FAILED and the search stops.
        """
        if self._run_trial_fn is not None:
            return self._run_trial_fn(trial, *args, **kwargs)
        if self.hypermodel is not None and hasattr(self.hypermodel, "fit"):
            model = self.build(trial.hyperparameters)
            return self.hypermodel.fit(trial.hyperparameters, model, *args, **kwargs)
        raise NothingToRunError(
            "Nothing to run: subclass Tuner and override run_trial(self, trial, ...), pass "
            "run_trial=your_function, or give a hypermodel with build(hp) and fit(hp, model).")

    # KerasTuner's BaseTuner hooks, for a subclass to override. They are called in each
    # process that runs trials (with search(workers=N), in each worker, as each worker of a
    # KerasTuner search runs search() of its own). Ending the trial is not their job, as it
    # is in KerasTuner: an override need not call super().
    def on_search_begin(self) -> None:
        """Called as this process starts running trials."""

    def on_trial_begin(self, trial: Trial) -> None:
        """Called before ``run_trial``, as part of the trial: what it raises counts as
        ``run_trial`` raising it."""

    def on_trial_end(self, trial: Trial) -> None:
        """Called once the trial's end is recorded (``trial.status`` is final, or INVALID
        for a failed run queued to run again while ``max_retries_per_trial`` allows): what
        it raises stops the search, the trial kept as recorded."""

    def on_search_end(self) -> None:
        """Called when this process has no trial left to run (not after Ctrl-C, nor when
        the search stops on an error)."""

    def pre_create_trial(self) -> None:
        """Called before each ask for a trial (also each ask again while the oracle answers
        IDLE), as in KerasTuner; what it raises stops the search."""

    # -- models: hpstore keeps the search, a subclass keeps its models ------------------------
    def save_model(self, trial_id: str, model: Any, step: int = 0) -> None:
        """Save ``model`` of trial ``trial_id``: override it (with :meth:`load_model`) in a
        subclass whose ``run_trial`` calls it, as in KerasTuner's BaseTuner.

        Raises:
            NotImplementedError: not overridden; hpstore keeps the search, not models.
        """
        raise NotImplementedError(
            "hpstore.Tuner keeps the search, not models: override save_model(self, trial_id, "
            "model, step=0) to write the model under a folder of your own, named by the "
            "trial id, and load_model(self, trial) to read it back.")

    def load_model(self, trial: Trial) -> Any:
        """The model of ``trial``, for :meth:`get_best_models`: override it in a subclass,
        as in KerasTuner's BaseTuner.

        Raises:
            NotImplementedError: not overridden; hpstore keeps the search, not models.
        """
        raise NotImplementedError(
            "hpstore.Tuner keeps the search, not models: override load_model(self, trial) "
            "to read what your run_trial saved for trial.trial_id, or build the best model "
            "again from tuner.get_best_hyperparameters()[0].")

    def get_best_models(self, num_models: int = 1) -> list[Any]:
        """The best ``num_models`` trials' models, best first, each from
        :meth:`load_model` (as in KerasTuner's BaseTuner).

        Raises:
            NotImplementedError: ``load_model`` is not overridden.
        """
        return [self.load_model(trial) for trial in self.oracle.get_best_trials(num_models)]

    def save(self) -> None:
        """Nothing to do: the search file holds the whole search as it happens."""

    def reload(self) -> None:
        """Nothing to do: the oracle reads the search file as it is now."""

    def report(self, trial: Trial, metrics: Mapping[str, Any], step: int = 0) -> bool:
        """Record metrics of a running trial at ``step`` (an epoch, say); returns True when
        the trial has been told to stop (its status became STOPPED).

        Raises:
            MissingObjectiveError, InvalidMetricError and the rest of what
            :meth:`Oracle.update_trial` raises, nothing of ``metrics`` recorded; in a
            search, these two fail the trial and stop the search.
            FatalTypeError, FatalValueError: ``step`` is not a whole number of 64 bits (a
                mistake every trial would repeat: the search stops too).
        """
        try:
            step = check_step(step)
        except (TypeError, ValueError) as exc:
            fatal = FatalTypeError if isinstance(exc, TypeError) else FatalValueError
            raise fatal(f"{exc} (the step of tuner.report())") from None
        updated = self.oracle.update_trial(trial.trial_id, metrics, step=step)
        if all(n in metrics for n in self.oracle.objective.metric_names):
            self._reported.add(trial.trial_id)
        for name, value in metrics.items():  # keep the caller's copy current, no re-read
            if not trial.metrics.exists(name):
                trial.metrics.register(name, self.oracle._direction(name))
            trial.metrics.update(name, value, step=step)
        if updated.status == TrialStatus.STOPPED:
            trial.status = TrialStatus.STOPPED  # (the caller's copy says so too)
        return updated.status == TrialStatus.STOPPED

    # -- the loop -------------------------------------------------------------------------------
    def search(self, *args: Any, workers: int | None = None, **kwargs: Any) -> None:
        """Run trials until the oracle says the search is over; arguments go to run_trial.

        With ``workers=N`` (N >= 2) N local processes (spawn) share the search and this
        process shows their progress; None or 1 runs it in this process. Run the same
        script again to resume.

        A ``verbose=`` among the arguments also sets this Tuner's display (``"auto"`` as
        1), as KerasTuner's search() does, and is passed on to run_trial as well.

        Raises:
            FatalError: run_trial raised one, or returned something unusable.
            InvalidMetricError: a metric returned or reported is not one real number; the
                trial is FAILED and the search stops.
            MissingObjectiveError: metrics reported without the objective (a misspelt
                name); the trial is FAILED and the search stops.
            NameTooLongError: a metric name returned or reported is longer than a
                PostgreSQL store takes, or it or a hyperparameter declared in run_trial
                holds a NUL; the trial is FAILED and the search stops.
            RuntimeError: too many trials failed in a row.
            ValueError: ``workers`` not None or a whole number of at least 1, before
                anything runs.
        """
        # (-1 and 0 ran the search here alone without a word; "2" was a bare TypeError)
        workers = check_optional_int("workers", workers, minimum=1)
        if "verbose" in kwargs:
            # KerasTuner's search(verbose=) sets its display and goes on to run_trial too
            given = kwargs["verbose"]
            if given == "auto":
                self.verbose = 1
            elif isinstance(given, int):
                self.verbose = given
        several = workers is not None and workers >= 2
        if several and importing_in_a_worker():
            if os.environ.get(WORKER_MARK) == str(os.getppid()):
                sys.exit(NO_MAIN_GUARD_EXIT)  # our parent explains, once for all workers
            raise FatalError(no_main_guard_message(workers or 0))
        self.interrupted = False
        self._handed_back: list[tuple[str, str]] = []
        self._unsaid = 0  # (workers ended by force before saying what they held)
        progress = Progress(self.oracle.project, self.oracle.objective.direction, self.verbose,
                            stop_when_closed=self._stop_when_output_closed)
        try:
            remaining = self.oracle.remaining_trials()
            if remaining == 0 and not self.oracle.project.running() and not self._queued():
                # KerasTuner's hooks, as it calls them on a finished search (a report or an
                # export of the best model in on_search_end runs again)
                self.on_search_begin()
                self.pre_create_trial()
                self._finished(progress, "This search is already finished.")
                self.on_search_end()
                return
            with terminated_as_ctrl_c():
                if several:
                    if run_workers(self, workers or 0, args, kwargs, progress):
                        # Trials of crashed workers may wait in the queue after the others
                        # stopped: this process runs them.
                        self._loop(args, kwargs, progress)
                else:
                    self._loop(args, kwargs, progress)
        except KeyboardInterrupt:
            self._interrupted(progress)
            raise
        self._finished(progress, "Search finished.")

    def _interrupted(self, progress: Progress) -> None:
        """After Ctrl-C: the trials' lines, then one message whose last words say how to
        resume. A second Ctrl-C meanwhile only skips the trial lines."""
        with contextlib.suppress(KeyboardInterrupt):
            progress.poll()
        progress.close()
        self.interrupted = True
        if not self.verbose:
            return
        # (several workers: gathered from them by run_workers)
        what = interrupted_what(self._handed_back, self._unsaid)
        progress.message(f"\nSearch interrupted; {what}. {RESUME_HINT}")

    def _queued(self) -> bool:
        return self.oracle.project.creation_facts().queued

    def _finished(self, progress: Progress, text: str) -> None:
        progress.poll()
        progress.close()
        if self.verbose:  # through the display: a name its output cannot encode is escaped
            best = self.oracle.get_best_trials(1)
            progress.message(text)
            if best and best[0].status == TrialStatus.COMPLETED:
                progress.message("Best trial:")
                progress.message(best[0].summary_text())

    def _declare_space(self) -> None:
        # Built on a fresh space (plus what hyperparameters= overrides), not the stored
        # one, so a definition changed since the search began is seen and refused.
        given = self.oracle.given_hyperparameters
        declare = getattr(self.hypermodel, "declare_hyperparameters", None)
        if callable(declare):
            # a KerasTuner HyperModel may declare hyperparameters outside build(): as there,
            # before the builds, and a later definition of one of them in build() is not
            # taken (the same name keeps its first)
            declare(given)
        space = discover_space(self.build, given)
        self.oracle.update_space(space)
        #: what the build declares is checked here; a trial checks what else it declares
        self._declared = {declaration_key(hp) for hp in space.space}

    def _loop(self, args: tuple[Any, ...], kwargs: dict[str, Any],
              progress: Progress | None = None) -> None:
        search_started(self)  # (see tuner_id)
        with _LOOPS_LOCK:
            _LOOPS[self.tuner_id] += 1
        try:
            self.on_search_begin()
            self._search_loop(args, kwargs, progress)
            self.on_search_end()
        finally:
            with _LOOPS_LOCK:
                _LOOPS[self.tuner_id] -= 1
                if _LOOPS[self.tuner_id] <= 0:
                    del _LOOPS[self.tuner_id]
            search_ended(self)

    def _search_loop(self, args: tuple[Any, ...], kwargs: dict[str, Any],
                     progress: Progress | None) -> None:
        wait = _IDLE_WAIT[0]
        waiting_for: list[str] = []
        while True:
            if self._interrupted_elsewhere():  # (Ctrl-C that reached another worker only)
                raise KeyboardInterrupt
            self.pre_create_trial()
            try:
                trial = self.oracle.create_trial(self.tuner_id)
                if left_running(trial):
                    # This tuner's own trial left RUNNING here with values reported (its
                    # end refused by a full disk, say): reports from run_trial's start would
                    # count twice in that run. It is queued, to run in a run of its own.
                    trial.status = TrialStatus.IDLE
                    trial.message = LEFT_RUNNING
                    self.oracle.end_trial(trial)
                    continue
                if trial.status in (TrialStatus.STOPPED, TrialStatus.IDLE):
                    # Nothing to start: trials still running in other processes are waited
                    # for (the search is not over, its best may be among them, and one
                    # whose worker dies is handed to this one); so, on IDLE, are those of
                    # this process's other Tuners. One left running by hand is not.
                    elsewhere = self.oracle.running_elsewhere()
                    if not elsewhere and (trial.status == TrialStatus.STOPPED
                                          or self._only_trials_in_no_ones_hands()):
                        return
                    # (a worker of search(workers=N) does not speak of its siblings' trials:
                    # every search would end on such lines)
                    others = [f"{t.trial_id} ({t.tuner_id})" for t in elsewhere
                              if not (self._in_worker and self._sibling(t.tuner_id))]
                    if others and others != waiting_for:
                        waiting_for = others
                        self._say(f"Nothing to start for now; waiting for trial(s) "
                                  f"{', '.join(others)} running in other processes.",
                                  progress)
                    trial.status = TrialStatus.IDLE
                if trial.status == TrialStatus.IDLE:
                    time.sleep(wait)  # polling the oracle, not synchronising with anyone
                    wait = min(wait * 2, _IDLE_WAIT[1])
                    continue
                wait = _IDLE_WAIT[0]
                if progress is None:
                    self._run_one(trial, args, kwargs, progress)
                    continue
                progress.poll()  # the live line with this trial running, while it runs
                with progress.beside_output():
                    self._run_one(trial, args, kwargs, progress)
                progress.poll()
            except (KeyboardInterrupt, SystemExit) as exc:  # (sys.exit: a SIGTERM handler's)
                self._hand_back_taken(exiting=isinstance(exc, SystemExit))
                raise

    def _hand_back_taken(self, exiting: bool = False) -> None:
        """After a Ctrl-C in the loop: a trial create_trial had already recorded for this
        worker (the Ctrl-C landing between the commit and the return, or before _run_one
        took the trial over) goes back to run again, as one interrupted while it ran
        would. One _run_one handed back, or ended, is no longer running: nothing is done."""
        session = self.oracle.store.session()
        self._hand_back([self.oracle.trials[r.trial_id] for r in self.oracle.project.running()
                         if r.tuner_id == self.tuner_id and r.session == session], exiting)

    def _reported_elsewhere(self, trial: Trial) -> bool:
        """Whether the objective was reported for the trial's run by other means than this
        tuner's report(): another Tuner or oracle object of this search (a script's own
        module-level ``tuner``, which a worker process imports afresh), or
        ``oracle.update_trial`` called in run_trial (as KerasTuner allows)."""
        stored = self.oracle.get_trial(trial.trial_id)
        return stored.status in (TrialStatus.RUNNING, TrialStatus.STOPPED) and all(
            stored.metrics.exists(n) for n in self.oracle.objective.metric_names)

    def _hand_back(self, trials: list[Trial], exiting: bool = False) -> None:
        """After Ctrl-C (or ``exiting``, sys.exit): hand ``trials`` back to run again, each
        in one piece (a second Ctrl-C meanwhile waits until it is done)."""
        previous = ignore_sigint()
        term = ignore_sigterm_as_ctrl_c()  # a second SIGTERM waits too
        try:
            for trial in trials:
                trial.status = TrialStatus.IDLE
                trial.message = ("The program exited (sys.exit) as it ran" if exiting else
                                 "Interrupted (Ctrl-C or SIGTERM)") + "; queued to run again."
                self.oracle.end_trial(trial)
                # (its status as ended: STOPPED when a stopping rule had stopped it)
                self._handed_back = [*getattr(self, "_handed_back", []),
                                     (trial.trial_id, trial.status)]
        finally:
            # a worker process keeps ignoring it: it is about to exit
            if previous is not None and not self._in_worker:
                signal.signal(signal.SIGINT, previous)
            if term is not None and not self._in_worker:
                signal.signal(signal.SIGTERM, term)

    def _run_one(self, trial: Trial, args: tuple[Any, ...], kwargs: dict[str, Any],
                 progress: Progress | None) -> None:
        fatal: BaseException | None = None
        try:
            # declared as it runs: joins the space at the end (declared otherwise: refused)
            with watch_declarations(trial.hyperparameters, self._check_declaration):
                self.on_trial_begin(trial)
                results = self.run_trial(trial, *args, **kwargs)
            # Once the objective is reported (by report(), or oracle.update_trial as
            # KerasTuner allows), what run_trial returns is not recorded, as there
            # (recorded as well, at step 0 it was averaged with that epoch's value).
            if trial.trial_id not in self._reported and not self._reported_elsewhere(trial):
                validate_results(results, self.oracle.objective, "run_trial()")
                # at the step it stands for: a History's best epoch, as KerasTuner
                # records it (a checkpoint saved each epoch is loaded by best_step)
                objective = self.oracle.objective
                self.oracle.record_result(trial.trial_id, to_metrics(results, objective),
                                          step=best_step_of(results, objective))
            trial.status = TrialStatus.COMPLETED
        except (KeyboardInterrupt, SystemExit) as exc:  # (sys.exit: a SIGTERM handler's)
            self._hand_back([trial], exiting=isinstance(exc, SystemExit))
            raise
        except FailedTrialError as exc:
            trial.status = TrialStatus.FAILED
            trial.message = f"{type(exc).__name__}: {exc}"
        except (FatalError, InvalidMetricError, MissingObjectiveError,
                NameTooLongError) as exc:
            # A metric that is not a number, returned or reported, is a mistake in the
            # code that every trial would repeat: like a return of the wrong type (which
            # KerasTuner treats as fatal), it fails the trial and stops the search. So is
            # a report without the objective (a misspelt name: every trial would fail
            # the same way, and use up the search), and a metric name longer than a
            # PostgreSQL store's indexes take.
            trial.status = TrialStatus.FAILED
            trial.message = traceback.format_exc()
            fatal = exc
        except ProjectMismatchError as exc:
            if getattr(exc, "declared_in_trial", False):
                # the code now declares a stored hyperparameter differently: every trial
                # would, so the search stops; this one ran on the stored values and is
                # handed back to run again
                trial.status = TrialStatus.IDLE
                trial.message = ("The code declares a hyperparameter differently than the "
                                 "search holds; queued to run again.")
                fatal = exc
            else:  # the user's own code's (opening another search, say): the trial's
                trial.status = TrialStatus.INVALID
                trial.message = traceback.format_exc()
        except DatabaseError as exc:
            if getattr(exc, "while_recording", False):
                # The search's store failed as the trial reported (a writer stopped for
                # longer than the lock timeout, a full disk, a server gone): not the
                # trial's fault, so it is not failed but handed back to run again, and
                # the search stops with the error.
                trial.status = TrialStatus.IDLE
                trial.message = (f"The search's store failed during this run "
                                 f"({type(exc).__name__}); queued to run again.")
                fatal = exc
            else:  # the user's own code's (reading another search, say): the trial's
                trial.status = TrialStatus.INVALID
                trial.message = traceback.format_exc()
        except Exception:
            trial.status = TrialStatus.INVALID
            trial.message = traceback.format_exc()
        finally:
            self._reported.discard(trial.trial_id)
        # a Ctrl-C now would leave the trial RUNNING, its result unrecorded: it waits for
        # the end to be written, then interrupts the search
        with sigint_deferred():
            if getattr(fatal, "while_recording", False):
                assert isinstance(fatal, DatabaseError)
                self._give_back(trial, fatal)
                raise fatal
            ended = False
            try:
                self.oracle.end_trial(trial)
                ended = True
            except (TrialNotRunningError, TrialLostError) as exc:
                # Handed to another worker while this one ran it (this worker was cut off
                # from the server, or frozen, long enough to look dead), ended by another
                # process, or lost with the server's last commits: this run is over and
                # nothing of it is recorded. The worker is alive and the search is not
                # over: it goes on with its next trial.
                self._say(f"{exc} Going on with the next trial.", progress)
            except Exception as exc:
                trial.status = TrialStatus.IDLE
                if isinstance(exc, DatabaseError) and getattr(exc, "while_recording", False):
                    # The store failed as the end was written (a full disk): the trial is
                    # still RUNNING, this run's values in the file. It runs again, afresh,
                    # when the search resumes; the search stops with the error.
                    trial.message = end_failed(exc)
                    self._give_back(trial, exc)
                    raise
                # end_trial raised (a score_trial or end_trial of the user's): the trial is
                # handed back, so that the next search runs it afresh, not on top of this
                # run's metrics, as it would resume a run left RUNNING
                trial.message = END_RAISED
                with contextlib.suppress(Exception):
                    self.oracle.end_trial(trial)
                raise
        if ended:
            try:
                self.on_trial_end(trial)
            except TrialNotRunningError as exc:
                # KerasTuner's own on_trial_end ends the trial, and an override copied from
                # it does too: here the end is already recorded when the hook is called
                exc.add_note(
                    "on_trial_end is called once the trial's end is recorded: an override "
                    "that ends it (self.oracle.end_trial(trial), as KerasTuner's "
                    "on_trial_end does) ends it twice; remove that call.")
                raise
        if fatal is not None:
            raise fatal

    def _give_back(self, trial: Trial, failure: DatabaseError) -> None:
        give_back(self.oracle.end_trial, trial, failure)

    def _check_declaration(self, hp: Any, stored: Any) -> None:
        def compare(class_name: str, config: dict[str, Any]) -> None:
            self.oracle.update_space(HyperParameters.from_config(
                {"space": [{"class_name": class_name, "config": config}], "values": {}}))

        check_declared_again(self, hp, stored, compare, self.oracle.store)

    def _only_trials_in_no_ones_hands(self) -> bool:
        """Whether the trials running are all this process's and run by none of its
        Tuners (left running by hand, as in a notebook): an IDLE oracle waits for them,
        a Tuner does not. With none running at all, the oracle's IDLE is waited out."""
        running = self.oracle.ongoing_trials
        with _LOOPS_LOCK:
            return bool(running) and not any(tid in _LOOPS for tid in running)

    def _sibling(self, tuner_id: str | None) -> bool:
        """Whether ``tuner_id`` is another worker of the same search(workers=N) as this
        one (``X-1``, ``X-2`` ... of the parent's ``X``)."""
        family = self.tuner_id.rpartition("-")[0]
        return bool(tuner_id) and bool(family) and str(tuner_id).rpartition("-")[0] == family

    def _say(self, text: str, progress: Progress | None) -> None:
        if progress is not None:
            progress.message(text)
        elif self.verbose or getattr(self, "_worker_says", False):  # a worker: no display
            print(text, file=sys.stderr, flush=True)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_reported"] = set()
        state.pop("_handed_back", None)
        state.pop("_unsaid", None)
        return state
