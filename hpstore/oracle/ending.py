"""Ending a trial's run: part of :class:`hpstore.Oracle`.

``end_trial`` works out how the run ends from what its worker says and the values it
reported (``_ending``: scored, INVALID and retried, FAILED, handed back), then writes it
in one statement that checks nothing else changed the trial since (``_Ending.write``);
hyperparameters the trial declared while it ran join the space.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpstore.errors import (
    DatabaseError,
    InvalidMetricError,
    NameTooLongError,
    OracleContractError,
    TrialLostError,
    TrialNotFoundError,
    TrialNotRunningError,
    ValuesOutsideSpaceError,
)
from hpstore.hyperparameters.base import to_jsonable
from hpstore.oracle.space import SpaceMixin
from hpstore.oracle.trials import KeptRun, MetricRow, best_of, rows_of, trial_from
from hpstore.oracle.values import held_as, stored_json, values_key
from hpstore.store.contract import ProjectStore, Store
from hpstore.store.records import TrialRecord, fits_int64
from hpstore.store.rows import check_running
from hpstore.trial import Trial, TrialStatus, check_metric, check_status

if TYPE_CHECKING:
    from hpstore.hyperparameters import HyperParameters
    from hpstore.objective import Objective


class EndingMixin:
    """``end_trial`` and ``score_trial``."""

    objective: Objective
    max_retries_per_trial: int
    max_consecutive_failed_trials: int
    _space: HyperParameters
    _space_held: int
    _project: ProjectStore
    _store: Store
    _handed: dict[str, tuple[int, float | None]]
    _kept: dict[str, KeptRun]
    _ended_stopped: set[str]

    if TYPE_CHECKING:  # provided by the Oracle
        def _refresh_space(self, version: int | None = None) -> None: ...
        def _warm_up(self) -> None: ...
        def _keep_declared_here(self) -> None: ...
        def update_space(self, hyperparameters: HyperParameters) -> None: ...
        def _new_entries(self, hyperparameters: HyperParameters, *, check: bool
                         ) -> list[dict[str, Any]]: ...

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
        still RUNNING is taken as COMPLETED (KerasTuner's Tuner sets COMPLETED before it
        ends a trial; its oracle would leave one RUNNING); INVALID ones run again until
        they have had ``max_retries_per_trial`` retries, then FAILED; IDLE hands the trial
        back to run again later without counting as a retry; STOPPED (an early stop of the
        worker's own) ends it STOPPED, scored on what it reported. A ``score_trial`` of
        one's own sets the score, and may set the status the trial ends with.

        Raises:
            TypeError: ``trial`` is not a Trial (a trial id, say).
            ValueError: an unknown status, or a trial of another project.
            ValuesOutsideSpaceError (a ValueError): a value changed by hand that its
                hyperparameter cannot take.
            TrialNotRunningError: the trial is not running (ended twice, or handed to
                another worker since this process ran it).
            TrialLostError (a TrialNotFoundError): the trial this process was running was
                lost with the server's last commits, or the search restored from a copy.
            ProjectRemovedError: another process removed or replaced the project.
            DatabaseError: the store failed as the end was written (a full disk, a server
                gone): nothing of the end was written, and the trial is still RUNNING.
            OracleContractError: a ``score_trial`` of one's own set a score, best step or
                status no trial keeps; nothing is written, and the trial still runs.
            RuntimeError: the last ``max_consecutive_failed_trials`` trials all FAILED, or
                the trial declared new hyperparameters while ``allow_new_entries`` is False
                (the trial is recorded FAILED first).
            NameTooLongError: the trial declared a hyperparameter whose name the store
                cannot hold (a NUL on PostgreSQL); the trial is recorded FAILED first.
        """
        if not (hasattr(trial, "trial_id") and hasattr(trial, "status")
                and hasattr(trial, "hyperparameters")):
            raise TypeError(
                f"end_trial takes the Trial create_trial returned (with its status set), "
                f"received {trial!r} (of type {type(trial).__name__}).")
        status = check_status(trial.status)
        if status == TrialStatus.RUNNING:
            status = TrialStatus.COMPLETED
        owner = getattr(trial, "project_of", None)
        if owner is not None and owner != (self._project.project_id, self._project.name):
            if owner[1] == self._project.name:  # (the name's project made afresh since)
                raise ValueError(
                    f"end_trial: trial {trial.trial_id!r} is a trial of the project "
                    f"{owner[1]!r} as it was before it was replaced (overwrite=True), not of "
                    "the one this oracle opened. Nothing was recorded; "
                    "its search is gone.")
            raise ValueError(
                f"end_trial: trial {trial.trial_id!r} is a trial of the project "
                f"{owner[1]!r}, not of this oracle's {self._project.name!r}. Nothing was "
                "recorded; end it with the oracle that created it.")
        self._not_ended_after_a_stop(trial.trial_id)
        if len(self._space._space) != self._space_held:  # (the list itself: no copy)
            self._keep_declared_here()  # (declared on oracle.hyperparameters as it ran)
        kept = self._kept.pop(str(trial.trial_id), None)
        try:
            ending = self._end(trial, status, kept)
        except TrialNotFoundError:  # (TrialLostError among them)
            if str(trial.trial_id) in self._handed:
                raise self._lost(trial.trial_id) from None
            raise
        except DatabaseError as exc:
            # the search's own store failed as the end was written (a full disk): the
            # trial is still RUNNING, and a Tuner hands it back (see _update)
            exc.while_recording = True  # type: ignore[attr-defined]
            raise
        self._handed.pop(ending.record.trial_id, None)
        if ending.status == TrialStatus.STOPPED:
            self._ended_stopped.add(ending.record.trial_id)
        if ending.new_entries:
            self._refresh_space()
            self._warm_up()  # the warm start's trials of the branch this one declared
        trial.status, trial.message = ending.status, ending.message
        trial.score, trial.best_step = ending.score, ending.best_step
        if ending.refused is not None:
            raise ending.refused
        if type(self).update_space is not SpaceMixin.update_space:
            # a subclass's own: called with the trial's hyperparameters at each end, as
            # KerasTuner's end_trial calls it (the space itself has grown above)
            self.update_space(trial.hyperparameters)
        if ending.status == TrialStatus.FAILED:
            self._check_consecutive_failures(ending.message)

    def _not_ended_after_a_stop(self, trial_id: str) -> None:
        """Raises TrialNotRunningError for a trial this oracle ended STOPPED."""
        if self._ended_stopped and str(trial_id) in self._ended_stopped:
            raise TrialNotRunningError(
                f"Trial {trial_id} is STOPPED and its worker has ended it: it has already "
                "ended. Nothing was recorded.")

    def _end(self, trial: Trial, status: str, kept: KeptRun | None) -> _Ending:
        """The end of the trial's run, written.

        Raises:
            TrialNotRunningError, TrialNotFoundError, TrialLostError: as ``end_trial``
                (the store's words: ``end_trial`` says a lost run in its own).
        """
        if kept is not None:
            # Ended from what this process started and reported: the store checks, as it
            # writes, that nothing else changed the trial or added to its metrics.
            ending = self._ending(trial, status, kept.record, kept.rows)
            if self._write(ending, seen=len(kept.rows)):
                return ending
        record, observations = self._project.trial_with_observations(trial.trial_id)
        ending = self._ending(trial, status, record, rows_of(observations))
        self._write(ending)
        return ending

    def _write(self, ending: _Ending, seen: int | None = None) -> bool:
        """Write ``ending`` as _Ending.write does.

        Raises:
            DatabaseError: as _Ending.write; for a trial the search had stopped, with its
                stop's message as ``stopped_by`` (a Tuner's error then says the trial stays
                STOPPED, not that it runs again).
            TrialNotRunningError: as _Ending.write.
        """
        try:
            return ending.write(self._project, seen)
        except DatabaseError as exc:
            if ending.record.status == TrialStatus.STOPPED:
                exc.stopped_by = ending.record.message  # type: ignore[attr-defined]
            raise

    def _check_ran_with(self, trial: Trial, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` a trial's worker may have changed by hand (``hp.values["x"] = ...``),
        each as the first hyperparameter of its name that takes it holds it (3.0 of an
        Int as 3, -0.0 as 0.0), in the space or declared while it ran.

        Raises:
            ValuesOutsideSpaceError: a value no hyperparameter of its name takes; nothing
                is written.
        """
        known = [*self._space.space, *trial.hyperparameters.space]
        held = {}
        for name, value in values.items():
            # (a value no hyperparameter is named for is kept: KerasTuner's hp.values
            # allows it)
            try:
                held[name] = held_as(known, name, value)
            except ValueError as exc:
                raise ValuesOutsideSpaceError(
                    f"end_trial: trial {trial.trial_id!r} holds {name}={value!r}, which its "
                    f"hyperparameter cannot take ({exc}). Nothing was recorded; set values "
                    "through the hyperparameters (hp.Int, hp.Choice ...), or end the trial "
                    "with the values it was given.") from None
        return held

    @staticmethod
    def _lost(trial_id: str) -> TrialLostError:
        """The error for a run this process was running that the store no longer holds."""
        return TrialLostError(
            f"Trial {str(trial_id)!r}, which this process was running, is no longer in the "
            "store (not in that run): its last commits were lost (a database server that "
            "crashed with durability='normal', which does not wait for each commit to reach "
            "its disk, or a failover to a replica the commits had not reached), or the search "
            "was restored from an earlier copy. A trial created since under the same id is "
            "another worker's, and was left as it is. Nothing of this run was recorded; ask "
            "for a new trial to go on.")

    def _ending(self, trial: Trial, status: str, record: TrialRecord,
                rows: list[MetricRow]) -> _Ending:
        """How the run of ``record`` ends, from its metric values ``rows`` and what its
        worker says in ``trial``; nothing is written.

        Raises:
            TrialNotRunningError: the trial is not running in the run this process had.
        """
        run, started = self._handed.get(record.trial_id, (None, None))
        check_running(record, run, started=started, logged=self._project.run_started)
        given_to = getattr(trial, "tuner_id", None)
        if given_to is not None and record.tuner_id is not None and \
                given_to != record.tuner_id:
            # (a Trial whose trial_id was changed by hand, or a run handed on: ending it
            # would end another worker's run with this one's values)
            raise TrialNotRunningError(
                f"Trial {record.trial_id} runs for {record.tuner_id!r}, and the Trial given "
                f"to end_trial was handed to {given_to!r}: its trial_id was changed since, "
                "or the trial was handed on. Nothing was recorded; end each Trial as "
                "create_trial gave it.")
        # (text for people: a lone surrogate, from a file name say, is shown escaped
        # rather than failing the end of the run)
        message = None if trial.message is None else str(trial.message).encode(
            "utf-8", "backslashreplace").decode("utf-8")
        stopped = record.status == TrialStatus.STOPPED
        if stopped and status != TrialStatus.FAILED:
            # told to stop (a stopping rule, or another process): it ends STOPPED, scored
            # on what it reached, whatever its worker made of the stop
            status, message = TrialStatus.STOPPED, record.message
        refused: RuntimeError | NameTooLongError | None = None
        try:
            new_entries = self._new_entries(trial.hyperparameters, check=False)
            # (a name the store cannot hold, a NUL on PostgreSQL: refused here, or the
            # trial's end is refused as it is written, and it is left RUNNING for good;
            # asked only of a trial that declared some: most end with none)
            if new_entries:
                self._store.check_space(new_entries)
        except RuntimeError as exc:  # allow_new_entries=False: say so, and stop the search
            new_entries, refused = [], exc
            status, message = TrialStatus.FAILED, (
                f"{exc}. The trial declared hyperparameters the search space does not hold; "
                "declare them in the `hyperparameters=` given to the oracle, or set "
                "allow_new_entries=True.")
        except NameTooLongError as exc:  # every trial would declare it: as above
            new_entries, refused = [], exc
            status, message = TrialStatus.FAILED, f"{type(exc).__name__}: {exc}"
        values = trial.hyperparameters.values
        written: Mapping[str, Any] | str = values
        if stored_json(values) == record.values_json:
            # unchanged since the trial was created (the usual case): keep the stored text
            key, written = record.values_key, record.values_json
        else:
            # the values it ran with, hyperparameters it declared while running included,
            # each as its hyperparameter holds it (3.0 of an Int as 3: one key per set)
            values = to_jsonable(self._check_ran_with(trial, values),
                                 what="The trial's values")
            key, written = values_key(values), values
        score = best_step = None
        if status in (TrialStatus.COMPLETED, TrialStatus.STOPPED):
            if getattr(self.score_trial, "__func__", None) is EndingMixin.score_trial:
                # score_trial's own scoring (not a subclass's, nor one set on this oracle),
                # worked out from the rows: no Trial to build
                score, best_step = best_of(rows, self.objective.name)
            else:  # one of one's own (a subclass's, or set on it): given the trial as it ran
                stored = trial_from(record, self._space, self._project, rows=rows)
                stored.status = status  # (as it ends, as KerasTuner hands it)
                if written is not record.values_json:  # the worker changed them: those
                    space, changed = self._space, dict(values)
                    stored._hp_loader = lambda: space.with_values(changed)
                self.score_trial(stored)
                score, best_step = _own_score(self, stored.score, stored.best_step)
                status = _own_status(self, stored.status, status, stopped)
            # (a trial its worker ended STOPPED, its own early stop, is not a failure: as
            # in KerasTuner it stays STOPPED, scored if it reported the objective)
            if (score is None or math.isnan(score)) and status == TrialStatus.COMPLETED:
                status = TrialStatus.INVALID
                if message is None:
                    message = _unscored(rows, self.objective.name, self.objective.metric_names)
        invalid = status == TrialStatus.INVALID
        requeue = status == TrialStatus.IDLE
        if invalid:
            if record.invalid_runs + 1 < self.max_retries_per_trial + 1:
                requeue = True
            else:
                status = TrialStatus.FAILED
        return _Ending(record, status, message, written, key, score, best_step, invalid,
                       requeue, new_entries, refused)

    def _check_consecutive_failures(self, message: str | None) -> None:
        limit = self.max_consecutive_failed_trials
        recent = self._project.recent_final_statuses(limit)
        if len(recent) == limit and all(s == TrialStatus.FAILED for s in recent):
            raise RuntimeError(
                f"Number of consecutive failures exceeded the limit of {limit}.\n"
                + (message or ""))


def _own_score(oracle: object, score: Any, best_step: Any) -> tuple[float | None, int | None]:
    """The score and best step a ``score_trial`` of one's own set, as the store keeps them:
    a float (a numpy or torch scalar's number too) and a whole number.

    Raises:
        OracleContractError: anything else (a string, a bool, an array, a step of 1.5);
            nothing is written, and the trial still runs.
    """
    who = f"{type(oracle).__name__}.score_trial"
    if score is not None:
        try:
            score = check_metric("score", score)
        except InvalidMetricError:
            raise OracleContractError(
                f"{who} set trial.score to {score!r} (type {type(score).__name__}); a score "
                "is a real number (a float, or a numpy or torch scalar) or None. Nothing was "
                "recorded.") from None
    if best_step is not None:
        step = best_step
        if not isinstance(step, bool) and callable(getattr(step, "item", None)):
            with contextlib.suppress(Exception):
                step = step.item()  # a numpy integer, a one-element tensor: its number
        if isinstance(step, bool) or not isinstance(step, int) or not fits_int64(step):
            raise OracleContractError(
                f"{who} set trial.best_step to {best_step!r} (type "
                f"{type(best_step).__name__}); a best step is a whole number, the step at "
                "which the score was reached (int(...) of numpy's argmin, say), or None. "
                "Nothing was recorded.")
        best_step = step
    return score, best_step


def _own_status(oracle: object, status: Any, ending: str, stopped: bool) -> str:
    """The status a trial ends with once a ``score_trial`` of one's own has seen it:
    ``status``, as it set it (INVALID for a run it deems infeasible, say), as KerasTuner
    honours it; ``ending`` (the status it was handed) for a trial the search stopped,
    unless it says FAILED.

    Raises:
        OracleContractError: a status a run cannot end with (RUNNING, IDLE, or no status);
            nothing is written, and the trial still runs.
    """
    ends = (TrialStatus.COMPLETED, TrialStatus.STOPPED, TrialStatus.INVALID,
            TrialStatus.FAILED)
    if status not in ends:
        raise OracleContractError(
            f"{type(oracle).__name__}.score_trial set trial.status to {status!r}; a run "
            f"ends {', '.join(ends)}. Nothing was recorded.")
    if stopped and status != TrialStatus.FAILED:
        return ending  # (stopped by the search: it stays STOPPED, whatever it was scored)
    return str(status)


def _unscored(rows: Sequence[MetricRow], name: str, parts: Sequence[str] = ()) -> str:
    """Why a trial ending scored has no score: its objective never reported a number, or
    every step it reported holds a NaN (which makes the step's mean NaN, as KerasTuner's
    does; the stopping rules leave it out)."""
    if any(row[0] == name and not math.isnan(row[3]) for row in rows):
        return (f"Each step of the objective {name!r} was reported with a NaN among its "
                "values (one execution that diverged, say), and a step's score is the mean "
                "of its values, NaN with one NaN in them: the trial could not be scored.")
    # (several objectives: the combined value is NaN where one of them is; name it)
    nan = [n for n in parts if n != name and any(row[0] == n and math.isnan(row[3])
                                                 for row in rows)]
    said = f" ({', '.join(map(repr, nan))} reported as NaN)" if nan else ""
    if not nan:  # (infinities of opposite directions: their sum, inf - inf, is NaN)
        inf = [n for n in parts if n != name and any(row[0] == n and math.isinf(row[3])
                                                     for row in rows)]
        if inf:
            return (f"The objectives {', '.join(map(repr, inf))} were reported as infinite, "
                    f"and {name!r}, which adds them up (each as a quantity to minimise), "
                    "is then undefined (inf - inf), so the trial could not be scored.")
    return (f"No valid value of the objective {name!r} was reported{said}, so the trial "
            "could not be scored.")


@dataclass
class _Ending:
    """The end of one run, worked out by Oracle._ending and not yet written."""

    record: TrialRecord
    status: str
    message: str | None
    values: Mapping[str, Any] | str
    key: str
    score: float | None
    best_step: int | None
    invalid: bool
    requeue: bool
    new_entries: list[dict[str, Any]]
    refused: RuntimeError | NameTooLongError | None

    def write(self, project: ProjectStore, seen: int | None = None) -> bool:
        """Write it; False when ``seen`` is given and the trial is no longer as it was
        (nothing written). Raises TrialNotRunningError as ProjectStore.finish does."""
        return project.finish(self.record, self.status, self.message, self.values, self.key,
                              self.score, self.best_step, invalid=self.invalid,
                              requeue=self.requeue, space=self.new_entries, seen=seen)
