"""Steering a search by hand: configurations enqueued to run first, results obtained
elsewhere added, another project's results taken in (warm start), trials retired from the
results and annotated.

Configurations given by hand are checked against the space before anything is written: a
name the search does not have, a value outside a hyperparameter's range (or off its grid),
a value for a hyperparameter that is not active with the others, each is a
:class:`hpstore.ValuesOutsideSpaceError` naming it, and the store is left unchanged.
"""

from __future__ import annotations

import getpass
import math
import os
import random
import socket
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hpstore.errors import (
    NotJSONSerializableError,
    ProjectChoiceError,
    TrialNotEndedError,
    ValuesOutsideSpaceError,
)
from hpstore.hyperparameters import HyperParameter, HyperParameters
from hpstore.hyperparameters.base import Parent, to_jsonable, unicode_problem
from hpstore.objective import MultiObjective
from hpstore.oracle.deciding import format_id
from hpstore.oracle.opening import check_bool, check_step, missing_objective
from hpstore.oracle.trials import trial_from, trial_id_given
from hpstore.oracle.values import as_held, values_key
from hpstore.oracle.warm import (
    WarmStart,
    choose_warm_project,
    origin_label,
    own_values,
    same_store,
    warm_source,
    warn_left_out,
)
from hpstore.store import shown
from hpstore.store.contract import ProjectStore, Store
from hpstore.store.records import NewTrial, TrialRecord
from hpstore.trial import MetricHistory, MetricsTracker, Trial, TrialStatus, check_metric

if TYPE_CHECKING:
    from hpstore.objective import Objective

#: the statuses a trial added with its result may have
ADDED_STATUSES = (TrialStatus.COMPLETED, TrialStatus.FAILED, TrialStatus.STOPPED)


def who() -> str:
    """The person or program acting, for the status log: ``user@host``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


def checked_values(space: HyperParameters, given: Any, what: str,
                   fill: Callable[[HyperParameter], Any],
                   counts: list[int] | None = None) -> dict[str, Any]:
    """``given`` checked against ``space`` and completed: every active hyperparameter
    given a value (``fill`` supplies the missing ones), in space order. ``counts``, when
    given, receives how many values the first 0, 1, 2, ... hyperparameters of the space
    gave: the values a space of only those would have given are the first ones.

    Raises:
        TypeError: ``given`` is not a dict of name to value.
        ValuesOutsideSpaceError: an unknown name, a value outside its hyperparameter, or
            a value for one that is not active given the others.
    """
    if not isinstance(given, Mapping):
        raise TypeError(f"{what} takes a dict of hyperparameter name to value, received "
                        f"{type(given).__name__}.")
    names = [hp.name for hp in space.space]
    for name in given:
        if not isinstance(name, str):
            raise TypeError(f"{what}: hyperparameter names are strings, received {name!r}.")
        if name not in names:
            known = ", ".join(dict.fromkeys(names)) or "none yet"
            raise ValuesOutsideSpaceError(
                f"{what}: {name!r} is not a hyperparameter of this search (it has: {known}). "
                "Nothing was recorded. Declare it in the space first (hyperparameters= "
                "given to the Oracle), or leave it out.")
    values: dict[str, Any] = {}
    for hp in space.space:
        if counts is not None:
            counts.append(len(values))  # counts[k]: the first k hyperparameters' values
        if hp.name in values or not all(c.is_active(values) for c in hp.conditions):
            continue
        if hp.name in given:
            try:
                values[hp.name] = hp.check_value(given[hp.name])
            except ValueError as exc:
                said = str(exc)
                twins = [h for h in space.space if h.name == hp.name]
                if len(twins) > 1 and not any(_takes(h, given[hp.name]) for h in twins):
                    # (the branch drawn is no more the one meant than any other)
                    said = (f"{given[hp.name]!r} is not a value of {hp.name} in any of its "
                            "declarations: " + ", or ".join(h.describe() for h in twins))
                raise ValuesOutsideSpaceError(
                    f"{what}: {said.rstrip('.')}. Nothing was recorded.") from None
        else:
            values[hp.name] = _fill_for(hp, fill, space, given)
    inactive = [name for name in given if name not in values]
    if inactive:
        hp = next(h for h in space.space if h.name == inactive[0])
        raise ValuesOutsideSpaceError(
            f"{what}: {inactive[0]!r} is not active with the other values given "
            f"({hp.describe()}). Nothing was recorded; leave it out.")
    return dict(to_jsonable(values, what=what))


def _fill_for(hp: HyperParameter, fill: Callable[[HyperParameter], Any],
              space: HyperParameters, given: Mapping[str, Any]) -> Any:
    """A value for ``hp``, left out of ``given``: ``fill``'s, unless a value given is one
    of a branch ``hp`` chooses; then one that takes that branch (``{"C": 0.5}`` of a
    ``C`` under ``kind == "b"`` fills ``kind`` with "b", whatever the seed). A name
    declared in several branches (``units`` 1 .. 10 under "a", 50 .. 200 under "b") wants
    the branches whose declaration takes the value given: ``{"units": 100}`` is "b"."""
    value = fill(hp)
    wanted: list[set[Any]] = []
    for name in given:
        branches: set[Any] = set()
        for h in space.space:
            if h.name != name or not _takes(h, given[name]):
                continue
            chosen = [set(map(_key, c.values)) for c in h.conditions
                      if isinstance(c, Parent) and c.name == hp.name]
            if not chosen:  # declared whatever ``hp`` is: it asks nothing of it
                branches = set()
                break
            branches |= set.intersection(*chosen)
        if branches:
            wanted.append(branches)
    if not wanted or all(_key(value) in w for w in wanted):
        return value
    choices = [v for v in (hp.every_value() or ()) if all(_key(v) in w for w in wanted)]
    if not choices:
        return value  # (no value takes every branch: said as a value not active)
    for _ in range(64):  # drawn on, from the same seeded generator: alike in every process
        value = fill(hp)
        if _key(value) in set(map(_key, choices)):
            return value
    return choices[0]


def _earlier_keys(hps: list[HyperParameter], request: Mapping[str, Any],
                  filled: dict[str, Any], counts: list[int],
                  prepare: Callable[[dict[str, Any]], dict[str, Any]]) -> list[str]:
    """The values keys the enqueue of ``request`` (filled to ``filled`` now, ``counts``
    as :func:`checked_values` gave them) gave when the space held fewer hyperparameters,
    so that enqueueing it again once the space has grown does not enqueue a second trial.

    A space grows by appending (a hypermodel declares a branch's hyperparameters once a
    trial takes it), and the fill draws in space order: an enqueue when the space was
    its first ``k`` hyperparameters gave the first ``counts[k]`` values given now, and
    its trial, once it declared the later ones, holds them at their defaults. So the
    candidates are each shorter prefix's values, as they are and with the later active
    hyperparameters at their defaults (the store matches them with enqueued trials only).
    """
    first: dict[str, int] = {}
    for k, hp in enumerate(hps):
        first.setdefault(hp.name, k)
    shortest = 1 + max((first[name] for name in request), default=0)
    items = list(filled.items())
    now = values_key(prepare(dict(filled)))
    keys: list[str] = []
    for k in range(len(hps) - 1, shortest - 1, -1):
        if k + 1 < len(hps) and counts[k] == counts[k + 1]:
            continue  # the same values as the longer prefix
        part = dict(items[:counts[k]])
        if not all(name in part for name in request):
            continue  # (a value not active in that space: never enqueued so)
        grown = dict(part)
        for hp in hps[k:]:  # in order: a parent is settled before its children
            if hp.name not in grown and all(c.is_active(grown) for c in hp.conditions):
                grown[hp.name] = hp.default
        for values in (part, grown):
            key = values_key(prepare(dict(values)))
            if key != now and key not in keys:
                keys.append(key)
    return keys


def _takes(hp: HyperParameter, value: Any) -> bool:
    try:
        hp.check_value(value)
    except (TypeError, ValueError):
        return False
    return True


def _key(value: Any) -> Any:
    return (type(value) is bool, value)  # True and 1 are not one choice


class SteeringMixin:
    """Enqueue, add, warm start, retire, restore and annotate: part of :class:`hpstore.Oracle`."""

    seed: int
    objective: Objective
    project_name: str
    _store: Store
    _project: ProjectStore
    _space: HyperParameters

    if TYPE_CHECKING:  # provided by the Oracle
        def _refresh_space(self) -> None: ...
        def _direction(self, metric: str) -> str: ...
        def score_trial(self, trial: Trial) -> None: ...

    # -- enqueue ---------------------------------------------------------------------------
    def enqueue_trial(self, values: Mapping[str, Any], skip_if_exists: bool = True) -> str:
        """Run ``values`` before the algorithm's own proposals (first in, first out), once.

        Hyperparameters left out are filled as a random search would, from a generator
        seeded by the search's seed and the values given, so every process that enqueues
        the same values fills them alike. With ``skip_if_exists`` (the default), values
        the search already holds (enqueued, running or run, by any process) are not
        enqueued again: every worker may enqueue the same configurations at start-up. An
        enqueued trial counts towards ``max_trials``. Returns its trial id (the existing
        trial's when skipped).

        Raises:
            ValuesOutsideSpaceError (a ValueError): a name or value outside the space.
            SearchFullError: the search holds ``max_trials`` trials already.
            ProjectRemovedError: another process removed or replaced the project.
        """
        skip_if_exists = check_bool("skip_if_exists", skip_if_exists)
        full, earlier = self.enqueue_plan(values)
        record, _ = self.enqueue_values(full, skip_if_exists, earlier=earlier)
        return record.trial_id

    def enqueue_values(self, full: dict[str, Any], skip_if_exists: bool = True, *,
                       earlier: Sequence[str] = ()) -> tuple[TrialRecord, bool]:
        """Enqueue values :meth:`enqueue_plan` gave (with the keys of the values the same
        request held before the space grew): (the trial, whether it is new).

        Raises:
            SearchFullError: the search holds ``max_trials`` trials already.
        """
        return self._project.enqueue(full, values_key(full), skip_if_exists=bool(skip_if_exists),
                                     make_id=format_id, by=who(),
                                     earlier=earlier if skip_if_exists else ())

    def values_to_enqueue(self, values: Mapping[str, Any], what: str = "enqueue_trial"
                          ) -> dict[str, Any]:
        """The values :meth:`enqueue_trial` would enqueue for ``values``: checked, the
        missing ones filled; nothing is written.

        Raises:
            ValuesOutsideSpaceError (a ValueError): a name or value outside the space (a
                NaN or an infinity too).
            NotJSONSerializableError (a ValueError): a value JSON cannot hold.
        """
        return self.enqueue_plan(values, what)[0]

    def enqueue_plan(self, values: Mapping[str, Any], what: str = "enqueue_trial"
                     ) -> tuple[dict[str, Any], list[str]]:
        """:meth:`values_to_enqueue`'s values, and the values keys the same request was
        enqueued with when the space was smaller (see :func:`_earlier_keys`).

        Raises:
            ValuesOutsideSpaceError (a ValueError): a name or value outside the space (a
                NaN or an infinity too).
            NotJSONSerializableError (a ValueError): a value JSON cannot hold.
        """
        if not isinstance(values, Mapping):  # (before its digest is taken)
            raise TypeError(f"{what} takes a dict of hyperparameter name to value, received "
                            f"{type(values).__name__}.")
        self._refresh_space()
        try:
            request = to_jsonable(dict(values), what=what)
        except NotJSONSerializableError:
            # a NaN or an infinity: said as the value its hyperparameter cannot take
            # (ValuesOutsideSpaceError, naming it), as add_trial says it
            checked_values(self._space, dict(values), what, lambda hp: hp.default)
            raise
        # seeded by the values as the search holds them: {"units": 16.0} is {"units": 16}
        rng = random.Random(f"{self.seed}:enqueue:{values_key(as_held(self._space, request))}")
        counts: list[int] = []
        filled = checked_values(self._space, request, what,
                                lambda hp: hp.prob_to_value(rng.random()), counts)
        return self.prepare_enqueued(dict(filled)), _earlier_keys(
            self._space.space, request, filled, counts, self.prepare_enqueued)

    def prepare_enqueued(self, values: dict[str, Any]) -> dict[str, Any]:
        """The values an enqueued trial runs with, given the checked and completed ones;
        an algorithm that adds values of its own to its trials adds them here (Hyperband
        gives the full training budget)."""
        return values

    def enqueued(self) -> list[Trial]:
        """The trials waiting to run, first to run first: enqueued ones, and trials
        handed back to run again."""
        self._refresh_space()
        return [trial_from(r, self._space, self._project, metrics=False)
                for r in self._project.enqueued()]

    # -- results obtained elsewhere ---------------------------------------------------------
    def add_trial(self, values: Mapping[str, Any], metrics: Mapping[str, Any],
                  status: str = TrialStatus.COMPLETED, step: int | None = None, *,
                  count_towards_max_trials: bool = False) -> Trial:
        """Record a result obtained elsewhere (an earlier search, a paper) as a trial of
        this search, scored as the search scores its own.

        Every algorithm sees it: the Bayesian oracle fits on it (its random phase is
        shorter by one), random search never proposes these values again, a stopping
        rule compares with it. By default it does not count towards ``max_trials``: the
        search still runs that many trials of its own. Hyperparameters left out take
        their default, as a trial that declared them only later would have. ``step``:
        the step (epoch) the metrics were measured at, 0 when left out; with a
        percentile or median stopping rule, which compares each trial with the others at
        the same step, a COMPLETED result left at step 0 is warned of: each new trial's
        first report would be judged against a final result.

        Raises:
            ValuesOutsideSpaceError (a ValueError): a name or value outside the space.
            MissingObjectiveError (a ValueError): an objective metric missing (COMPLETED).
            ValueError: a status other than COMPLETED, FAILED or STOPPED.
            InvalidMetricError (a TypeError and a ValueError): a metric that is not a number.
            TypeError: a ``step`` that is not an integer (numpy's are); ValueError: one
                beyond 64 bits.
        """
        if step is None:
            self._say_step_zero(status)
        step = check_step(0 if step is None else step)
        counted = check_bool("count_towards_max_trials", count_towards_max_trials)
        self._refresh_space()
        full = checked_values(self._space, values, "add_trial", lambda hp: hp.default)
        if not isinstance(metrics, Mapping):
            raise TypeError(f"`metrics` must be a dict of metric name to value, received "
                            f"{type(metrics).__name__}.")
        new = self._new_trial(full, [(step, dict(metrics))], status, "added")
        added = self._project.add_trials([new], counted=counted,
                                         skip_existing=False, make_id=format_id)
        record = added[0]
        assert record is not None  # nothing is skipped without skip_existing
        return trial_from(record, self._space, self._project)

    def _say_step_zero(self, status: str) -> None:
        """Warn that a result added at step 0 (by default) is what a percentile or median
        rule holds each new trial's first report against: a warm search with five added
        results and MedianStopping() ran every trial of its own one epoch."""
        from hpstore.stopping import PercentileStopping

        rule = getattr(self, "early_stopping", None)
        if isinstance(rule, PercentileStopping) and status == TrialStatus.COMPLETED:
            warnings.warn(
                f"add_trial: the result is recorded at step 0, where {type(rule).__name__} "
                "compares each new trial's first report with the completed trials' values: "
                "a final result there stops every trial whose first epoch is worse. Give "
                "step= the step it was measured at (its last epoch).", UserWarning,
                stacklevel=3)

    def _new_trial(self, values: dict[str, Any], steps: Sequence[tuple[int, Mapping[str, Any]]],
                   status: str, origin: str) -> NewTrial:
        """A finished trial with these metric values (per step), scored as update_trial and
        end_trial score a trial of the search."""
        if status not in ADDED_STATUSES:
            raise ValueError(f"A trial added with its result is COMPLETED, FAILED or STOPPED; "
                             f"received status {status!r}.")
        tracker = MetricsTracker()
        rows: list[tuple[str, str, int, float]] = []
        for step, metrics in steps:
            checked = {name: check_metric(name, value) for name, value in metrics.items()}
            missing = [n for n in self.objective.metric_names if n not in checked]
            if missing and status == TrialStatus.COMPLETED:
                raise missing_objective("The metrics of a COMPLETED trial given to be added",
                                        missing, list(checked), self.objective)
            step_rows = [(n, self._direction(n), int(step), v) for n, v in checked.items()]
            if isinstance(self.objective, MultiObjective):
                self.objective.check_report(checked)
            if isinstance(self.objective, MultiObjective) and not missing:
                step_rows.append((self.objective.name, "min", int(step),
                                  self.objective.get_value(checked)))
            for name, direction, at, value in step_rows:
                if name not in tracker.metrics:
                    tracker.metrics[name] = MetricHistory(direction)
                tracker.metrics[name].update(value, at)
            rows += step_rows
        trial = Trial(self._space.with_values(values), status=status)
        trial.metrics = tracker
        score = best_step = None
        if status != TrialStatus.FAILED:
            self.score_trial(trial)
            score, best_step = trial.score, trial.best_step
            if status == TrialStatus.COMPLETED and (score is None or math.isnan(score)):
                raise ValueError(f"The objective {self.objective.name!r} has no valid value "
                                 "in the metrics given (NaN), so the trial cannot be scored.")
        return NewTrial(values, values_key(values), status, score, best_step, rows, origin)

    # -- warm start --------------------------------------------------------------------------
    def _warm_start(self, source: Any, *, warn: bool = True) -> WarmStart:
        """Add the completed trials (not retired) of another project whose values fit this
        space, each once however often the search is opened; warn about the rest (unless
        not ``warn``: a run again as the space grew)."""
        from hpstore.store import open_store

        where, name = warm_source(source)
        store = open_store(where, read_only=True)
        place = shown(where)
        try:
            # (the search's own store: its own project is never a source; refused before
            # the search was written to, see WarmSource.check_against)
            chosen = choose_warm_project(store.projects(), name, self.project_name, place,
                                         own=same_store(store, self._store))
            source_project = store.open_project(chosen)
            label = f"warm start: {origin_label(where)} {chosen.name!r}"
            result = WarmStart(f"{place} {chosen.name!r}")
            new, repeated = self._warm_trials(source_project, label, result)
        finally:
            store.close()
        if new:
            added = self._project.add_trials(new, counted=False, skip_existing=True,
                                             make_id=format_id)
            for record in added:
                if record is None:  # held before this warm start (the batch has no repeats)
                    result.already += 1
                else:
                    result.added.append(record.trial_id)
        # Said once, when first taken in: an open that finds trials of the source held
        # already is another worker's, or a restart's, even as it takes in the source's
        # new results (nothing taken in at all: nothing tells a first open from a later
        # one, so each says it).
        if warn and result.skipped and not result.already:
            warn_left_out(result, repeated)
        return result

    def _warm_trials(self, source: ProjectStore, label: str, result: WarmStart
                     ) -> tuple[list[NewTrial], int]:
        """The source's trials to add, each values once, and how many were left out for
        holding the values of a later run (listed in ``result.skipped``, with the trials
        that do not fit)."""
        self._refresh_space()
        taken: list[tuple[TrialRecord, NewTrial | str]] = []  # a trial, or why not
        combined = self.objective.name if isinstance(self.objective, MultiObjective) else None
        for record in source.trials(statuses=[TrialStatus.COMPLETED]):
            if record.retired:
                continue
            try:
                values = checked_values(self._space, own_values(record.values),
                                        f"trial {record.trial_id}", lambda hp: hp.default)
                # Each step's reports, in the order made: a step reported twice (two
                # executions of the trial) is scored on its mean here as in the source, so
                # the second report must not replace the first.
                steps: dict[int, list[dict[str, float]]] = {}
                for obs in source.observations(record):
                    if combined is not None and obs.metric == combined:
                        continue  # the combined value: recomputed here from its metrics
                    reports = steps.setdefault(obs.step, [])
                    report = next((r for r in reports if obs.metric not in r), None)
                    if report is None:
                        reports.append(report := {})
                    report[obs.metric] = obs.value
                complete = [(step, m) for step in sorted(steps) for m in steps[step]
                            if all(n in m for n in self.objective.metric_names)]
                if not complete:
                    wanted = self.objective.metric_names
                    missing = [n for n in wanted
                               if not any(n in m for r in steps.values() for m in r)]
                    raise ValueError(
                        f"it reported no {' or '.join(map(repr, missing))}" if missing else
                        f"no step of it reported all of {', '.join(map(repr, wanted))}")
                trial = self._new_trial(values, complete, TrialStatus.COMPLETED,
                                        f"{label} trial {record.trial_id}")
            except (ValueError, TypeError) as exc:
                why = str(exc).replace(f"trial {record.trial_id}: ", "")
                taken.append((record, why.split(". Nothing")[0]))
                continue
            taken.append((record, trial))
        # Of the trials with the same values (once Hyperband's tuner/* bookkeeping is left
        # out), the one created last is taken: a Hyperband continuation trains the
        # configuration further and is created after the run it continued, so its result
        # is the one the configuration reached. (Not the one whose end time is the latest:
        # each end time is the clock of the worker that wrote it, and a continuation run
        # by a worker whose clock is behind, or after the clock was stepped back, would
        # lose to the shorter run.)
        last: dict[str, TrialRecord] = {}
        for record, got in taken:
            if isinstance(got, NewTrial) and (
                    got.key not in last or record.number > last[got.key].number):
                last[got.key] = record
        new: list[NewTrial] = []
        repeated = 0
        for record, got in taken:
            if isinstance(got, str):
                result.skipped.append((record.trial_id, got))
            elif last[got.key] is not record:
                result.skipped.append((record.trial_id, (
                    f"same values as trial {last[got.key].trial_id}, a later run of them, "
                    "which was taken in instead")))
                repeated += 1
            else:
                new.append(got)
        return new, repeated

    # -- retire, restore, annotate ------------------------------------------------------
    def retire_trial(self, trial_id: str, reason: str | None = None, *,
                     by: str | None = None) -> Trial:
        """Take an ended trial out of the results (best trials, the Bayesian fit, stopping
        rules, the tools' rankings) without deleting anything; the status log records
        who (``by``, else ``user@host``), when and why. :meth:`restore_trial` undoes it.

        Raises:
            TrialNotFoundError: no such trial.
            TrialNotEndedError: the trial is waiting or running.
            TypeError, ValueError: ``reason`` or ``by`` not a string, or holding a lone
                surrogate or a NUL; nothing is recorded.
        """
        return self._retire(trial_id, True, reason, by)

    def restore_trial(self, trial_id: str, reason: str | None = None, *,
                      by: str | None = None) -> Trial:
        """Bring a retired trial back into the results, logged like :meth:`retire_trial`.

        Raises:
            as :meth:`retire_trial`.
        """
        return self._retire(trial_id, False, reason, by)

    def _retire(self, trial_id: str, retired: bool, reason: str | None,
                by: str | None) -> Trial:
        trial_id = trial_id_given(trial_id, self._project)
        for name, text in (("reason", reason), ("by", by)):
            _check_text(name, text)
        record = self._project.trial(trial_id)
        if worker_gone(self._store, record):
            raise TrialNotEndedError(
                f"Trial {trial_id} is RUNNING, {worker_gone_text(record)}: only a trial that "
                f"has ended can be {'retired' if retired else 'restored'}. {WORKER_GONE_TODO}")
        self._project.retire(trial_id, retired=retired, by=by or who(),
                             reason=reason or None)
        self._refresh_space()
        return trial_from(self._project.trial(trial_id), self._space, self._project)

    def set_trial_note(self, trial_id: str, note: str | None) -> Trial:
        """Attach ``note`` to a trial (shown by ``hpstore show``, the report and the
        dashboard); None or "" removes it.

        Raises:
            TrialNotFoundError: no such trial.
            TypeError, ValueError: ``note`` not a string, or holding a lone surrogate or a
                NUL; nothing is recorded.
        """
        trial_id = trial_id_given(trial_id, self._project)
        _check_text("note", note)
        self._project.set_note(trial_id, note or None)
        self._refresh_space()
        return trial_from(self._project.trial(trial_id), self._space, self._project)


#: what to do about a trial whose worker died, for a refusal to retire it
WORKER_GONE_TODO = ("A worker of this search takes it over and runs it again: start one (or "
                    "let one running take it), and retire the trial once it has ended.")


def worker_gone(store: Store, record: TrialRecord) -> bool:
    """Whether ``record`` is RUNNING in a process that is gone (killed, or on a machine
    that stopped): it ends only once another worker takes it over."""
    return (record.status == TrialStatus.RUNNING and record.session is not None
            and not store.is_alive(record.session, record.pid))


def worker_gone_text(record: TrialRecord) -> str:
    """``record``'s dead worker, in words."""
    who_ran = ", ".join(part for part in (
        record.tuner_id, None if record.pid is None else f"pid {record.pid}") if part)
    return f"but its worker ({who_ran}) is gone" if who_ran else "but its worker is gone"


def _check_text(name: str, text: Any) -> None:
    """Refuse what a person's text (a reason, a name, a note) cannot be stored as.

    Raises:
        TypeError: not a string (or None).
        ValueError: a lone surrogate, which UTF-8 cannot hold; a NUL character, which a
            PostgreSQL store cannot hold (refused on a file too, so that a search copies
            from any store to any other).
    """
    if text is None:
        return
    if not isinstance(text, str):
        raise TypeError(f"`{name}` must be a string or None, received {text!r}.")
    problem = unicode_problem(text)
    if problem is None and "\x00" in text:
        problem = (f"it holds the NUL character (\\x00) at position {text.index(chr(0))}, "
                   "which PostgreSQL's text cannot hold; remove it")
    if problem is not None:
        raise ValueError(f"`{name}` {text!r} cannot be stored: {problem}. Nothing was "
                         "recorded.")


def attach(cls: type, database: Any, project_name: str | None = None, *,
           named_by: str = "project_name=") -> Any:
    """:meth:`hpstore.Oracle.attach`: the stored project, opened with the oracle that
    made it and its stored arguments; ``named_by``: what the person names a project with,
    for the error when they must (a command says ``--project``)."""
    from hpstore import oracles
    from hpstore.objective import objective_from_config
    from hpstore.queries import listed, project_named
    from hpstore.store import open_store

    store = open_store(database, read_only=True)
    try:
        records = store.projects()
        names = [r.name for r in records]
        if project_name is None and len(records) == 1:
            record = records[0]
        else:
            record = (None if project_name is None
                      else project_named(records, project_name))
        if record is None:
            held = (f"holds several projects ({listed(names)})" if len(names) > 1
                    else f"holds {listed(names)}" if names else "holds no project yet")
            what = (f"name the one to open with {named_by}" if project_name is None
                    else f"there is no project {project_name!r}")
            raise ProjectChoiceError(f"{shown(database)} {held}: {what}.")
        _, space = store.open_project(record).space()
    finally:
        store.close()
    built_in = (oracles.RandomSearchOracle, oracles.GridSearchOracle,
                oracles.BayesianOptimizationOracle, oracles.HyperbandOracle)
    made_by: type | None = {c.__name__: c for c in built_in}.get(record.oracle_class)
    if made_by is None:
        # An oracle class of the user's own, not importable here: a stand-in of the same
        # name, which steers and reads but cannot decide trials.
        name = record.oracle_class

        def populate_space(self: Any, trial_id: str) -> dict[str, Any]:
            raise NotImplementedError(
                f"This {name} was opened with Oracle.attach, which stands in for an oracle "
                "class of your own: it steers and reads the search, and decides no trial. "
                f"Open the search with your class ({name}(..., database=...)) to run "
                "trials.")

        made_by = type(name, (cls,), {"populate_space": populate_space})
    config = record.oracle_config
    search = config.get("search") if isinstance(config.get("search"), Mapping) else {}
    options = config.get("options") if isinstance(config.get("options"), Mapping) else {}
    hps = HyperParameters.from_config({"space": space, "values": {}})
    return made_by(objective_from_config(record.objective), hyperparameters=hps,
                   database=database, project_name=record.name, **dict(search),
                   **dict(options))


