"""Conversions between KerasTuner's objects and hpstore's.

The user's code is KerasTuner code, so what it receives (a trial's hyperparameters, the
tuner's objective, the trials of ``get_best_trials``) are KerasTuner's classes; what goes
into the search file goes through hpstore's. Both speak the same config format
(``{"space": [...], "values": {...}}``), so a conversion is a config round trip.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import keras_tuner
from keras_tuner.src.engine import metrics_tracking as kt_metrics
from keras_tuner.src.engine import objective as kt_objective
from keras_tuner.src.engine import trial as kt_trial

import hpstore
from hpstore.hyperparameters.container import DECLARATION_WATCHERS
from hpstore.objective import DefaultObjective, MultiObjective, Objective


def _watch_keras_declarations() -> None:
    """Have KerasTuner's HyperParameters consult hpstore's declaration watchers, as
    hpstore's own do (see ``hpstore.hyperparameters.discover.watch_declarations``): only a
    running trial's are watched; any other goes straight on to KerasTuner's own code."""
    cls = keras_tuner.HyperParameters
    if getattr(cls._retrieve, "_hpstore_watch", False):
        return  # (a module loaded again)
    retrieve = cls._retrieve

    def _retrieve(self: Any, hp: Any) -> Any:
        watcher = DECLARATION_WATCHERS.get(id(self))
        if watcher is not None:
            watcher(hp)
        return retrieve(self, hp)

    _retrieve._hpstore_watch = True  # type: ignore[attr-defined]
    _retrieve.__doc__ = retrieve.__doc__
    cls._retrieve = _retrieve  # type: ignore[method-assign]


_watch_keras_declarations()


def to_keras_hyperparameters(hps: hpstore.HyperParameters, *, to_run: bool = False
                             ) -> keras_tuner.HyperParameters:
    """KerasTuner's HyperParameters with the same space and values; ``to_run``: a trial's
    to build a model from, where an active hyperparameter it holds no value of (added to
    the space after the trial was made: one queued, or interrupted, before the script
    was edited) takes its default, as hpstore's own trials give it. KerasTuner's raised
    KeyError for it, and each such trial ended FAILED."""
    # KerasTuner's from_config turns the condition dicts of the config it is given into
    # objects in place: hand it a copy, never a config someone else holds.
    theirs = keras_tuner.HyperParameters.from_config(copy.deepcopy(hps.get_config()))
    if to_run:
        missing = True
        while missing:  # (a parent filled in may make its children active)
            missing = False
            for hp in theirs.space:
                if hp.name not in theirs.values and theirs.is_active(hp):
                    theirs.values[hp.name] = hp.default
                    missing = True
    return theirs


def to_hpstore_hyperparameters(hps: Any) -> hpstore.HyperParameters:
    """hpstore's HyperParameters with the same space and values.

    Raises:
        ValueError: a definition hpstore refuses (named in the message, for example a
            default outside its range).
        TypeError: ``hps`` is not a HyperParameters of either library.
    """
    if isinstance(hps, hpstore.HyperParameters):
        return hps.copy()
    if not isinstance(hps, keras_tuner.HyperParameters):
        raise TypeError(f"Expected a keras_tuner.HyperParameters, received {hps!r} of type "
                        f"{type(hps).__name__}.")
    return hpstore.HyperParameters.from_config(copy.deepcopy(hps.get_config()))


def merge_new_entries(target: hpstore.HyperParameters, source: keras_tuner.HyperParameters
                      ) -> None:
    """Register in ``target`` what ``source`` declared that ``target`` does not hold."""
    declared = to_hpstore_hyperparameters(source)
    target.merge([hp for hp in declared.space if not target._exists(hp.name, hp.conditions)],
                 overwrite=False)


def keras_build(build: Callable[[keras_tuner.HyperParameters], Any]
                ) -> Callable[[hpstore.HyperParameters], Any]:
    """``build`` (KerasTuner code) as a function of hpstore's HyperParameters: it is given
    KerasTuner's, and what it declares is carried back."""

    def run(hps: hpstore.HyperParameters) -> Any:
        theirs = to_keras_hyperparameters(hps)
        model = build(theirs)
        merge_new_entries(hps, theirs)
        return model

    return run


# -- objectives ------------------------------------------------------------------------------
def to_hpstore_objective(objective: Any) -> Any:
    """What a KerasTuner user passes as ``objective=`` (strings, KerasTuner Objectives, or
    a list of them), with KerasTuner's objects replaced by hpstore's."""
    if isinstance(objective, (list, tuple)):
        return [to_hpstore_objective(o) for o in objective]
    if isinstance(objective, kt_objective.MultiObjective):
        return [to_hpstore_objective(o) for o in objective.objectives]
    if isinstance(objective, kt_objective.DefaultObjective):
        return None
    if isinstance(objective, kt_objective.Objective):
        return Objective(objective.name, objective.direction)
    return objective


def to_keras_objective(objective: Objective) -> Any:
    """KerasTuner's objective for an hpstore one, with the same names and directions.

    KerasTuner's Tuner asks its objective which epoch to checkpoint and whether results
    hold it; built from hpstore's, it agrees with how the file scores a trial (the two
    infer some metric directions differently).
    """
    if isinstance(objective, MultiObjective):
        return kt_objective.MultiObjective(
            [kt_objective.Objective(o.name, o.direction) for o in objective.objectives])
    if isinstance(objective, DefaultObjective):
        return kt_objective.DefaultObjective()
    return kt_objective.Objective(objective.name, objective.direction)


# -- trials ----------------------------------------------------------------------------------
class KerasTrial(kt_trial.Trial):
    """KerasTuner's Trial for a trial of the search file. Its hyperparameters are
    converted, and its metric histories read from the file, only when first used: a
    trial returned by ``update_trial`` after every epoch seldom needs either."""

    _hp_loader: Callable[[], Any] | None = None
    _loader: Callable[[], Any] | None = None

    @property  # type: ignore[override]
    def hyperparameters(self) -> Any:
        if self._hp_loader is not None:
            loader, self._hp_loader = self._hp_loader, None
            self._hyperparameters = loader()
        return self._hyperparameters

    @hyperparameters.setter
    def hyperparameters(self, value: Any) -> None:
        self._hp_loader = None
        self._hyperparameters = value

    @property  # type: ignore[override]
    def metrics(self) -> Any:
        if self._loader is not None:
            loader, self._loader = self._loader, None
            self._metrics = kt_metrics.MetricsTracker.from_config(loader().get_config())
        return self._metrics

    @metrics.setter
    def metrics(self, value: Any) -> None:
        self._loader = None
        self._metrics = value

    def __reduce__(self) -> tuple[Any, ...]:
        return (kt_trial.Trial.from_state, (self.get_state(),))


def to_keras_trial(trial: hpstore.Trial, *, to_run: bool = False) -> KerasTrial:
    """KerasTuner's Trial for an hpstore Trial: same id, values, status, score (``to_run``:
    handed out to run, see :func:`to_keras_hyperparameters`)."""
    theirs = KerasTrial(hyperparameters=None, trial_id=trial.trial_id, status=trial.status,
                        message=trial.message)
    theirs._hp_loader = lambda: to_keras_hyperparameters(trial.hyperparameters,
                                                         to_run=to_run)
    theirs.score = trial.score
    theirs.best_step = trial.best_step if trial.best_step is not None else 0
    theirs.tuner_id = trial.tuner_id
    theirs.run = trial.run
    theirs._loader = lambda: trial.metrics
    return theirs


def to_hpstore_trial(trial: Any) -> hpstore.Trial:
    """hpstore's Trial for a KerasTuner Trial: id, status, message, and the values (and
    hyperparameters declared while it ran) of its hyperparameters."""
    return hpstore.Trial(to_hpstore_hyperparameters(trial.hyperparameters),
                         trial_id=trial.trial_id, status=trial.status, message=trial.message)
