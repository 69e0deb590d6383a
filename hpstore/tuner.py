"""Tuner: the search loop around any Python code, in one process or several.

Like KerasTuner's BaseTuner: ask the oracle for a trial, run the user's code on its
hyperparameters, report the result, repeat until the oracle says STOPPED. Subclass and
override :meth:`Tuner.run_trial`, or pass ``run_trial=`` a function, or pass a
``hypermodel`` whose ``build(hp)`` declares the space (and whose ``fit`` trains).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import numbers
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from hpstore.errors import (
    FailedTrialError,
    FatalError,
    FatalTypeError,
    FatalValueError,
    InvalidMetricError,
    NothingToRunError,
)
from hpstore.hyperparameters import HyperParameters
from hpstore.hyperparameters.discover import discover_space
from hpstore.objective import MultiObjective, Objective
from hpstore.oracle import Oracle
from hpstore.progress import Progress
from hpstore.trial import Trial, TrialStatus, check_metric, mean_of

_IDLE_WAIT = (0.05, 1.0)  # seconds between asks while the oracle is IDLE: first, most

#: The variables BLAS and OpenMP libraries read for their thread count when they load.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
# OpenBLAS also reads this one; a user who set it manages threads.
_USER_THREAD_VARIABLES = (*THREAD_VARIABLES, "GOTO_NUM_THREADS")
# Set in a worker's environment while it starts: the child knows its parent is a Tuner.
_WORKER_MARK = "HPSTORE_TUNER_WORKER"
# A worker that found its script calling search(workers=N) while being imported exits
# with this code (EX_CONFIG), silently: the parent says what to change, once.
_NO_MAIN_GUARD_EXIT = 78
_RAISED_EXIT = 79  # a worker's search raised (FatalError, too many failures...): all stop
_INTERRUPTED_EXIT = 130  # a worker stopped by Ctrl-C, its trial handed back
_STOP_GRACE = 1.0  # seconds workers get to stop on the terminal's own SIGINT
_STOP_DEADLINE = 30.0  # seconds they get after the parent forwards it, before SIGTERM
RESUME_HINT = "Run the same command again to resume."
# what sending an object to a spawned process raises when it cannot be pickled
_PicklingError = mp.reduction.pickle.PicklingError  # type: ignore[attr-defined]


def default_tuner_id() -> str:
    """``KERASTUNER_TUNER_ID`` (or ``HPSTORE_TUNER_ID``) if set, else one per process."""
    given = os.environ.get("HPSTORE_TUNER_ID") or os.environ.get("KERASTUNER_TUNER_ID")
    return given or f"worker-{os.getpid()}"


def validate_results(results: Any, objective: Objective, where: str) -> None:
    """Check the shape of what ``run_trial`` returned, as KerasTuner does (the values
    themselves are checked by :func:`to_metrics`).

    Raises:
        FatalValueError: None, or a dict without the objective's metrics.
        FatalTypeError: a type that is not a number, a dict or a list of those.
    """
    if results is None:
        raise FatalValueError(
            f"The return value of {where} is None. Did you forget to return the metrics? "
            "Return a float (the value to minimise), a dict of metrics holding the objective "
            f"{objective.metric_names}, or report them with tuner.report().")
    if isinstance(results, (list, tuple)):
        if not results:
            raise FatalValueError(
                f"{where} returned an empty {type(results).__name__}: return a float, a dict "
                f"of metrics holding the objective {objective.metric_names}, or a list of "
                "them (averaged per metric).")
        for item in results:
            validate_results(item, objective, f"{where} (an item of its list)")
        return
    if isinstance(results, Mapping):
        missing = [n for n in objective.metric_names if n not in results]
        if missing:
            raise FatalValueError(
                f"Expected the dict returned by {where} to hold the objective {missing}; "
                f"received keys {sorted(map(str, results))}.")
        return
    if not _number_like(results):
        raise FatalTypeError(
            f"The return value of {where} must be a float, a dict of metrics or a list of "
            f"them; received {results!r} of type {type(results).__name__}.")
    if isinstance(objective, MultiObjective):
        raise FatalValueError(
            f"{where} returned the single value {results!r}, but the objective has several "
            f"metrics {objective.metric_names}: return a dict holding each of them.")


def _number_like(value: Any) -> bool:
    """A number, or something holding numbers (a numpy or torch scalar, array or tensor):
    its value is for check_metric to judge, with the message update_trial gives."""
    return isinstance(value, numbers.Number) or callable(getattr(value, "item", None))


def to_metrics(results: Any, objective: Objective) -> dict[str, float]:
    """A float becomes ``{objective: value}``; a list of results is averaged per metric.

    Every value goes through :func:`hpstore.trial.check_metric`, the check ``update_trial``
    makes, so ``"1.5"``, ``True``, a ``Decimal`` or a tensor of several numbers is refused
    here as it is there; numpy and torch scalars become floats.

    Raises:
        InvalidMetricError (a TypeError): a metric name that is not a string, or a value
            that is not one real number.
    """
    if isinstance(results, (list, tuple)):
        dicts = [to_metrics(r, objective) for r in results]
        names = dicts[0].keys()
        return {n: mean_of([d[n] for d in dicts if n in d]) for n in names}
    if isinstance(results, Mapping):
        return {k: check_metric(k, v) for k, v in results.items()}
    return {objective.name: check_metric(objective.name, results)}


def _cores() -> int:
    """The cores this process may run on (its affinity), or all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def thread_limits(workers: int) -> dict[str, str]:
    """The environment each of ``workers`` local worker processes gets: BLAS and OpenMP
    threads limited to ``cores // workers`` (at least 1), so that N workers using numpy or
    scikit-learn do not each start a thread per core. Empty when the user set any of these
    variables: then the user's setting is kept as it is."""
    if any(name in os.environ for name in _USER_THREAD_VARIABLES):
        return {}
    per_worker = str(max(1, _cores() // max(1, workers)))
    return dict.fromkeys(THREAD_VARIABLES, per_worker)


_ENVIRONMENT_LOCK = threading.Lock()


@contextlib.contextmanager
def _starting_workers(environment: Mapping[str, str]) -> Iterator[None]:
    """The conditions worker processes start under.

    A spawned worker's first act is to import the user's script, and with it numpy, whose
    BLAS reads its thread count at that import: so the limits must already be in the
    environment the worker is born with. They are set in this process's environment for
    the time it takes to start the workers, and restored after.

    SIGINT is ignored meanwhile, and a worker inherits that (an ignored signal stays
    ignored through exec; a blocked one does not stay blocked): a Ctrl-C while a worker
    still imports would otherwise print a traceback from deep inside multiprocessing. The
    worker takes Ctrl-C again once it can hand its trial back quietly (``_worker_main``).
    A Ctrl-C in the milliseconds this process spends starting them is lost; press again.
    """
    # One search at a time sets and restores the environment (two threads' searches
    # interleaved would each restore the other's settings).
    with _ENVIRONMENT_LOCK:
        saved = {name: os.environ.get(name) for name in (*environment, _WORKER_MARK)}
        os.environ.update(environment)
        os.environ[_WORKER_MARK] = str(os.getpid())
        previous = _ignore_sigint()
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            if previous is not None:
                signal.signal(signal.SIGINT, previous)


def _ignore_sigint() -> Any:
    """Ignore SIGINT from now on; returns the handler to restore (None off the main thread,
    where handlers cannot be changed)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """A Ctrl-C during the block waits for its end, then acts as it would have (a
    KeyboardInterrupt, or the handler that was in place); off the main thread, where
    handlers cannot be changed, nothing is deferred."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        if callable(previous):
            previous(signal.SIGINT, None)  # Python's own handler raises KeyboardInterrupt
        elif previous == signal.SIG_DFL:
            raise KeyboardInterrupt


def _importing_in_a_worker() -> bool:
    """Whether this process is a spawned child still importing its parent's script.

    Spawn starts a fresh interpreter that imports the parent's main script as
    ``__mp_main__``; multiprocessing marks the process as inheriting until that import and
    the unpickling of its task are done. A script that calls ``search(workers=N)`` at its
    top level, not under ``if __name__ == "__main__":``, calls it again right here.
    """
    return bool(getattr(mp.current_process(), "_inheriting", False))


def _no_main_guard_message(workers: int) -> str:
    return (f"search(workers={workers}) was called while a worker process was importing this "
            "script: each worker imports it again (multiprocessing's spawn), so the code that "
            "starts the search must be under `if __name__ == \"__main__\":` at the end of the "
            "script. Move it there and run the script again.")


def _could_not_start_message(workers: int, codes: list[int | None]) -> str:
    return (f"search(workers={workers}): the worker processes could not start (exit code "
            f"{', '.join(sorted({str(c) for c in codes}))}; their error is printed above), "
            "so nothing was run. Each worker imports this script and rebuilds the tuner from "
            "it: the Tuner subclass, run_trial and the hypermodel must be defined at the top "
            "level of a module, not inside `if __name__ == \"__main__\":` or a function.")


def _unpicklable_message(workers: int, exc: BaseException) -> str:
    return (f"search(workers={workers}) sends the tuner to each worker process, and it cannot "
            f"be sent ({type(exc).__name__}: {exc}). Define run_trial and the hypermodel as "
            "functions (or classes) at the top level of a module, not as a lambda, inside "
            "another function or inside `if __name__ == \"__main__\":`, and keep objects "
            "such as open files or locks out of the tuner. Nothing was run.")


def _worker_main(tuner: Tuner, tuner_id: str, stop: Any, arguments: Any,
                 started: Any = None, index: int = 0, errors: Any = None) -> None:
    """A worker process: run trials until the search is over or Ctrl-C.

    It starts with SIGINT ignored (see ``_starting_workers``) and takes it from here on.
    On Ctrl-C the trial in hand is handed back (in ``_run_one``) and the process exits
    with code 130, printing nothing: the parent prints one message for everyone. ``stop``
    (an Event) is set by the parent when the search was interrupted: a worker that was
    still importing then, and so ignored the Ctrl-C, stops as soon as it gets here.
    ``arguments`` is the pipe that brings search()'s arguments. What the search raises
    here (a ``FatalError``, too many failures in a row, a store that is gone) stops every
    worker, as it stops a search in one process: it goes to the parent through ``errors``,
    which raises it from ``search()``.
    """
    if started is not None:  # it got here: the script imported and the tuner unpickled
        started[index] = 1
    try:
        # the handler first, then the event: the parent sets the event before it forwards
        # SIGINT, so one or the other reaches this process
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _follow_parent()  # (its SIGINT is taken from here on)
        if stop.is_set():
            raise KeyboardInterrupt
        try:
            args, kwargs = arguments.recv()
        except EOFError:  # the parent is gone before sending them: nothing to do
            return
        finally:
            arguments.close()
        tuner.tuner_id = tuner_id
        tuner._in_worker = True
        tuner.verbose = 0  # the parent shows progress for everyone
        tuner._loop(args, kwargs)
    except KeyboardInterrupt:
        _ignore_sigint()  # a second Ctrl-C must not print a traceback on the way out
        sys.exit(_INTERRUPTED_EXIT)
    except Exception as exc:
        _ignore_sigint()
        if errors is None:
            raise
        _send_error(errors, exc, tuner_id)
        sys.exit(_RAISED_EXIT)
    _ignore_sigint()


def _follow_parent() -> None:
    """In a worker: stop as at Ctrl-C (the trial in hand handed back) once the process
    that started it is gone. A parent killed, or stopped by SIGTERM (``timeout``, ``kill``,
    a job scheduler), never gets to stop its workers, which would run the search on alone,
    unseen."""
    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()  # returns when the parent's end of their link closes: it is gone
        with contextlib.suppress(OSError):
            os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, name="hpstore-parent-watch", daemon=True).start()


def _send_error(errors: Any, exc: Exception, tuner_id: str) -> None:
    """``exc`` to the parent, with where it was raised; as a FatalError in words when
    it cannot be pickled."""
    exc.add_note(f"(raised in the worker process {tuner_id}:\n"
                 f"{''.join(traceback.format_exception(exc)).rstrip()})")
    try:
        errors.put(exc)
    except Exception:  # (an exception carrying something that cannot be pickled)
        errors.put(FatalError(f"{type(exc).__name__} in the worker process {tuner_id}: "
                              f"{exc}"))


class Tuner:
    """Runs a search: override ``run_trial`` or pass ``run_trial=`` / ``hypermodel=``.

    Args:
        oracle: the search algorithm and its file (an :class:`hpstore.Oracle`).
        hypermodel: optional; a function ``build(hp)`` or an object with ``build(hp)``
            (and ``fit(hp, model, *args, **kwargs)`` returning the results). It is called
            once before the search so the space is declared, and once per trial.
        run_trial: optional function ``run_trial(trial, *args, **kwargs)`` returning the
            results (a float to minimise, a dict of metrics, or a list of either).
        tuner_id: this worker's name; by default ``KERASTUNER_TUNER_ID`` or one per process.
        verbose: 0 silent, 1 a line per trial and a live status line on a terminal.

    ``run_trial`` may raise ``FailedTrialError`` (the trial is FAILED, not retried),
    ``FatalError`` (the search stops), or anything else (the trial is INVALID and retried
    up to ``max_retries_per_trial`` times, with the traceback as its message). A metric
    value that is not one real number, returned or reported, is an ``InvalidMetricError``:
    the trial is FAILED and the search stops, as for a return of the wrong type.
    """

    def __init__(self, oracle: Oracle, hypermodel: Any = None, *,
                 run_trial: Callable[..., Any] | None = None, tuner_id: str | None = None,
                 verbose: int = 1) -> None:
        if not isinstance(oracle, Oracle):
            raise TypeError(f"`oracle` must be an hpstore Oracle, received {oracle!r}.")
        if hypermodel is not None and not (callable(hypermodel) or hasattr(hypermodel, "build")):
            raise TypeError("`hypermodel` must be a function build(hp) or an object with a "
                            f"build(hp) method; received {hypermodel!r}.")
        self.oracle = oracle
        self.hypermodel = hypermodel
        self._run_trial_fn = run_trial
        self._tuner_id = tuner_id or None
        self.verbose = verbose
        self._reported: set[str] = set()
        #: whether the last search() was stopped by Ctrl-C (its message already printed)
        self.interrupted = False
        self._in_worker = False  # True in a process started by search(workers=N)
        if hypermodel is not None:
            self._declare_space()  # as KerasTuner does, so search_space_summary() sees it

    @property
    def tuner_id(self) -> str:
        """This worker's name: the one given, else ``default_tuner_id()`` of the process
        running the search (a Tuner handed to child processes names each child apart)."""
        return self._tuner_id or default_tuner_id()

    @tuner_id.setter
    def tuner_id(self, value: str | None) -> None:
        self._tuner_id = value or None

    # -- the user's side ---------------------------------------------------------------------------
    def build(self, hp: HyperParameters) -> Any:
        """Build the model for ``hp`` with the hypermodel (None without one)."""
        if self.hypermodel is None:
            return None
        build = getattr(self.hypermodel, "build", self.hypermodel)
        return build(hp)

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

    def report(self, trial: Trial, metrics: Mapping[str, Any], step: int = 0) -> bool:
        """Record metrics of a running trial at ``step`` (an epoch, say); returns True when
        the trial has been told to stop (its status became STOPPED)."""
        updated = self.oracle.update_trial(trial.trial_id, metrics, step=step)
        if all(n in metrics for n in self.oracle.objective.metric_names):
            self._reported.add(trial.trial_id)
        for name, value in metrics.items():  # keep the caller's copy current, no re-read
            if not trial.metrics.exists(name):
                trial.metrics.register(name, self.oracle._direction(name))
            trial.metrics.update(name, value, step=step)
        return updated.status == TrialStatus.STOPPED

    # -- results -------------------------------------------------------------------------------
    def get_best_trials(self, num_trials: int = 1) -> list[Trial]:
        return self.oracle.get_best_trials(num_trials)

    def get_best_hyperparameters(self, num_trials: int = 1) -> list[HyperParameters]:
        return [t.hyperparameters for t in self.oracle.get_best_trials(num_trials)]

    def results_summary(self, num_trials: int = 10) -> None:
        """Print the best ``num_trials`` trials, best first."""
        print(self.results_summary_text(num_trials))

    def results_summary_text(self, num_trials: int = 10) -> str:
        lines = ["Results summary", f"Results in {self.oracle.store.location} "
                 f"(project {self.oracle.project_name!r})",
                 f"Showing {num_trials} best trials", f"{self.oracle.objective}"]
        for trial in self.oracle.get_best_trials(num_trials):
            lines += ["", trial.summary_text()]
        return "\n".join(lines)

    def search_space_summary(self) -> None:
        """Print the search space: one line per hyperparameter, with its range or values
        and the conditions that make it active."""
        print(self.search_space_summary_text())

    def search_space_summary_text(self) -> str:
        space = self.oracle.get_space()
        lines = ["Search space summary", f"Default search space size: {len(space.space)}"]
        lines += [hp.describe() for hp in space.space]
        return "\n".join(lines)

    # -- the loop -------------------------------------------------------------------------------
    def search(self, *args: Any, workers: int | None = None, **kwargs: Any) -> None:
        """Run trials until the oracle says the search is over; arguments go to run_trial.

        With ``workers=N`` (N >= 2) N local processes (spawn) share the search and this
        process shows their progress. Run the same script again to resume.

        Raises:
            FatalError: run_trial raised one, or returned something unusable.
            InvalidMetricError: a metric returned or reported is not one real number; the
                trial is FAILED and the search stops.
            RuntimeError: too many trials failed in a row.
        """
        several = workers is not None and workers >= 2
        if several and _importing_in_a_worker():
            if os.environ.get(_WORKER_MARK) == str(os.getppid()):
                sys.exit(_NO_MAIN_GUARD_EXIT)  # our parent explains, once for all workers
            raise FatalError(_no_main_guard_message(workers or 0))
        self.interrupted = False
        self._handed_back: list[str] = []
        progress = Progress(self.oracle.project, self.oracle.objective.direction, self.verbose)
        try:
            remaining = self.oracle.remaining_trials()
            if remaining == 0 and not self.oracle.project.running() and not self._queued():
                self._finished(progress, "This search is already finished.")
                return
            if several:
                self._run_workers(workers or 0, args, kwargs, progress)
            else:
                self._loop(args, kwargs, progress)
        except KeyboardInterrupt:
            self._interrupted(progress, several)
            raise
        self._finished(progress, "Search finished.")

    def _interrupted(self, progress: Progress, several: bool) -> None:
        """After Ctrl-C: the trials' lines, then one message whose last words say how to
        resume. A second Ctrl-C meanwhile only skips the trial lines."""
        with contextlib.suppress(KeyboardInterrupt):
            progress.poll()
        progress.close()
        self.interrupted = True
        if not self.verbose:
            return
        if several:
            what = "running trials were handed back to run again"
        elif self._handed_back:
            what = f"trial {self._handed_back[-1]} was handed back to run again"
        else:
            what = "no trial was running"
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
        space = discover_space(self.build, self.oracle.given_hyperparameters)
        self.oracle.update_space(space)

    def _loop(self, args: tuple[Any, ...], kwargs: dict[str, Any],
              progress: Progress | None = None) -> None:
        wait = _IDLE_WAIT[0]
        while True:
            try:
                trial = self.oracle.create_trial(self.tuner_id)
                if trial.status == TrialStatus.STOPPED:
                    return
                if trial.status == TrialStatus.IDLE:
                    time.sleep(wait)  # polling the oracle, not synchronising with anyone
                    wait = min(wait * 2, _IDLE_WAIT[1])
                    continue
            except KeyboardInterrupt:
                self._hand_back_taken()
                raise
            wait = _IDLE_WAIT[0]
            self._run_one(trial, args, kwargs, progress)
            if progress is not None:
                progress.poll()

    def _hand_back_taken(self) -> None:
        """After a Ctrl-C inside create_trial: a trial it had already recorded for this
        worker (the Ctrl-C landing between the commit and the return) goes back to run
        again, as one interrupted while it ran would."""
        session = self.oracle.store.session()
        self._hand_back([self.oracle.trials[r.trial_id] for r in self.oracle.project.running()
                         if r.tuner_id == self.tuner_id and r.session == session])

    def _reported_elsewhere(self, trial: Trial) -> bool:
        """Whether the objective was reported for the trial's run by other means than this
        tuner's report(): another Tuner or oracle object of this search (a script's own
        module-level ``tuner``, which a worker process imports afresh), or
        ``oracle.update_trial`` called in run_trial (as KerasTuner allows)."""
        stored = self.oracle.get_trial(trial.trial_id)
        return stored.status in (TrialStatus.RUNNING, TrialStatus.STOPPED) and all(
            stored.metrics.exists(n) for n in self.oracle.objective.metric_names)

    def _hand_back(self, trials: list[Trial]) -> None:
        """After Ctrl-C: hand ``trials`` back to run again, each in one piece (a second
        Ctrl-C meanwhile waits until it is done)."""
        previous = _ignore_sigint()
        try:
            for trial in trials:
                trial.status = TrialStatus.IDLE
                trial.message = "Interrupted by Ctrl-C; queued to run again."
                self.oracle.end_trial(trial)
                self._handed_back = [*getattr(self, "_handed_back", []), trial.trial_id]
        finally:
            # a worker process keeps ignoring it: it is about to exit
            if previous is not None and not self._in_worker:
                signal.signal(signal.SIGINT, previous)

    def _run_one(self, trial: Trial, args: tuple[Any, ...], kwargs: dict[str, Any],
                 progress: Progress | None) -> None:
        fatal: BaseException | None = None
        try:
            # What the trial declares while it runs joins the space when it ends.
            results = self.run_trial(trial, *args, **kwargs)
            if trial.trial_id not in self._reported and not (
                    results is None and self._reported_elsewhere(trial)):
                validate_results(results, self.oracle.objective, "run_trial()")
                self.oracle.record_result(trial.trial_id,
                                          to_metrics(results, self.oracle.objective))
            trial.status = TrialStatus.COMPLETED
        except KeyboardInterrupt:
            self._hand_back([trial])
            raise
        except FailedTrialError as exc:
            trial.status = TrialStatus.FAILED
            trial.message = f"{type(exc).__name__}: {exc}"
        except (FatalError, InvalidMetricError) as exc:
            # A metric that is not a number, returned or reported, is a mistake in the
            # code that every trial would repeat: like a return of the wrong type (which
            # KerasTuner treats as fatal), it fails the trial and stops the search.
            trial.status = TrialStatus.FAILED
            trial.message = traceback.format_exc()
            fatal = exc
        except Exception:
            trial.status = TrialStatus.INVALID
            trial.message = traceback.format_exc()
        finally:
            self._reported.discard(trial.trial_id)
        # a Ctrl-C now would leave the trial RUNNING, its result unrecorded: it waits for
        # the end to be written, then interrupts the search
        with _sigint_deferred():
            self.oracle.end_trial(trial)
        if fatal is not None:
            raise fatal

    def _run_workers(self, workers: int, args: tuple[Any, ...], kwargs: dict[str, Any],
                     progress: Progress) -> None:
        ctx = mp.get_context("spawn")
        stop = ctx.Event()
        pipes = [ctx.Pipe(duplex=False) for _ in range(workers)]
        started = ctx.RawArray("b", workers)  # set by each worker once it runs
        errors = ctx.SimpleQueue()  # what a worker's search raised
        procs = [ctx.Process(target=_worker_main, name=f"{self.tuner_id}-{i}",
                             args=(self, f"{self.tuner_id}-{i}", stop, reader, started, i - 1,
                                   errors))
                 for i, (reader, _) in enumerate(pipes, 1)]
        limits = thread_limits(workers)
        crashed: list[str] = []
        try:
            with _starting_workers(limits):
                for p in procs:
                    try:
                        p.start()
                    except (_PicklingError, AttributeError, TypeError) as exc:
                        _stop_workers(procs, stop, grace=0.0)
                        raise FatalError(_unpicklable_message(workers, exc)) from None
            threads = f", {next(iter(limits.values()))} BLAS/OpenMP threads each" \
                if limits else ""
            progress.message(f"Started {workers} worker processes on "
                             f"{self.oracle.store.location}{threads}.")
            # The arguments (often a data set) go through a pipe once the workers run, not
            # with the start: a large pickle would keep start() waiting, Ctrl-C ignored,
            # until each worker had imported the script and read it.
            for reader, writer in pipes:
                reader.close()
                with contextlib.suppress(OSError):  # a worker that already exited
                    writer.send((args, kwargs))
                writer.close()
            while any(p.is_alive() for p in procs):
                for p in procs:
                    p.join(0.5 / workers)
                if any(p.exitcode == _NO_MAIN_GUARD_EXIT for p in procs):
                    _stop_workers(procs, stop, grace=0.0)
                    raise FatalError(_no_main_guard_message(workers))
                raised = next((p for p in procs if p.exitcode == _RAISED_EXIT), None)
                if raised is not None:
                    # the search stops in every process, as in one: the others hand back
                    # the trials they run, and search() raises what the worker raised
                    progress.message(f"Worker {raised.name} stopped the search; stopping the "
                                     "other workers (their trials will run again).")
                    _stop_workers(procs, stop, grace=0.0)
                    if errors.empty():  # (it exits only after putting it)
                        raise FatalError(f"Worker {raised.name} stopped the search.")
                    raise errors.get()
                failed = [i for i, p in enumerate(procs)
                          if p.exitcode not in (None, 0) and not started[i]]
                if len(failed) == workers:  # none of them could run: say so, run nothing
                    raise FatalError(_could_not_start_message(
                        workers, [procs[i].exitcode for i in failed]))
                progress.poll()
                for i, p in enumerate(procs):
                    if p.exitcode in (None, 0) or p.name in crashed or not (
                            started[i] or any(started)):  # (if none starts: said once, above)
                        continue
                    crashed.append(p.name)
                    progress.message(
                        f"Worker {p.name} exited with code {p.exitcode}; its trial will run "
                        "again." if started[i] else
                        f"Worker {p.name} could not start (exit code {p.exitcode}; its error "
                        "is printed above).")
        except KeyboardInterrupt:
            _stop_workers(procs, stop, grace=_STOP_GRACE)
            raise
        except BaseException:  # whatever stops this process stops its workers
            _stop_workers(procs, stop, grace=0.0)
            raise
        if crashed:
            # Trials of crashed workers may wait in the queue after the others stopped.
            self._loop(args, kwargs, progress)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_reported"] = set()
        state.pop("_handed_back", None)
        return state


def _stop_workers(procs: list[Any], stop: Any, grace: float) -> None:
    """Wait for worker processes to stop, each handing its trial back.

    ``stop`` is set first, for workers not yet taking Ctrl-C. A terminal sends Ctrl-C to
    the whole process group, so the running workers have it already: they get ``grace``
    seconds. Then SIGINT is forwarded to any still running (Ctrl-C may have been sent to
    this process alone), and after ``_STOP_DEADLINE`` seconds, or at a second Ctrl-C, the
    rest are terminated (their trials run again: a dead worker's trial is found by the next
    process that asks for one).
    """
    started = [p for p in procs if p.pid is not None]
    try:
        stop.set()
        deadline = time.monotonic() + grace
        for p in started:
            p.join(max(0.0, deadline - time.monotonic()))
        for p in started:
            if p.is_alive():
                with contextlib.suppress(OSError):  # it ended in the meantime
                    os.kill(p.pid, signal.SIGINT)
        deadline = time.monotonic() + _STOP_DEADLINE
        for p in started:
            p.join(max(0.0, deadline - time.monotonic()))
    except KeyboardInterrupt:
        pass  # a second Ctrl-C: stop waiting
    finally:
        for p in started:
            if p.is_alive():
                p.terminate()
                p.join(5)
