"""What KerasTuner's tuners take and have that ``hpstore.Tuner`` has not, and what to use
instead: a script ported from KerasTuner is told where each argument goes, rather than
given a bare "unexpected keyword argument" or ``AttributeError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_TO_THE_ORACLE = ("the search lives in the oracle's file: give the oracle database=\"DIR/"
                  "NAME.db\", project_name= and overwrite=True (for example "
                  "hpstore.RandomSearchOracle(..., database=\"runs/p.db\", project_name=\"p\"))")
_KERAS_ONLY = ("it is an argument of KerasTuner's Tuner for Keras models: use "
               "hpstore.keras.Tuner (KerasTuner's own Tuner, on an hpstore oracle) for them")

#: what a KerasTuner script gives its Tuner that hpstore.Tuner does not take, and where it
#: goes instead (a bare "unexpected keyword argument" left a port to guess)
_KERASTUNER_ARGUMENTS = {
    "directory": _TO_THE_ORACLE,
    "project_name": _TO_THE_ORACLE,
    "overwrite": _TO_THE_ORACLE,
    "max_retries_per_trial": "it is an oracle's argument: give it to the oracle",
    "max_consecutive_failed_trials": "it is an oracle's argument: give it to the oracle",
    "executions_per_trial": ("run your code that many times in run_trial and return the "
                             "list of their results, which is averaged per metric"),
    "logger": ("KerasTuner 1.4 ignores one too; remove it (verbose=0 silences the "
               "search's display)"),
    "distribution_strategy": _KERAS_ONLY,
    "max_model_size": _KERAS_ONLY,
    "optimizer": _KERAS_ONLY,
    "loss": _KERAS_ONLY,
    "metrics": _KERAS_ONLY,
}

#: attributes of KerasTuner's tuners that hpstore.Tuner has not, and what to use instead
_KERASTUNER_ATTRIBUTES = {
    "directory": ("the search lives in one file, tuner.oracle.store.location; a folder "
                  "for files of your own is yours to choose"),
    "project_dir": ("the search lives in one file, tuner.oracle.store.location; a folder "
                    "for files of your own (models, checkpoints) is yours to choose"),
    "get_trial_dir": ("hpstore keeps no folder per trial; save a trial's files under a "
                      "folder of your own, named by trial.trial_id"),
    "executions_per_trial": _KERASTUNER_ARGUMENTS["executions_per_trial"],
    "get_state": ("the search file holds the search as it happens; nothing of the Tuner "
                  "is saved or reloaded"),
    "set_state": ("the search file holds the search as it happens; nothing of the Tuner "
                  "is saved or reloaded"),
    **{name: _KERAS_ONLY for name in ("distribution_strategy", "max_model_size",
                                      "optimizer", "loss", "metrics")},
    **{name: ("KerasTuner's Tuner for Keras models calls it from model.fit, and it does "
              "nothing there; report an epoch's metrics with self.report(trial, logs, "
              "step=epoch), or remove the call")
       for name in ("on_epoch_begin", "on_epoch_end", "on_batch_begin", "on_batch_end")},
}


def not_taken(cls_name: str, given: Mapping[str, Any]) -> TypeError:
    """The error for keyword arguments a Tuner does not take: those of KerasTuner's Tuner
    each named with where it goes instead."""
    lines = []
    for name in given:
        advice = _KERASTUNER_ARGUMENTS.get(name)
        if advice is None:
            lines.append(f"{cls_name}() got an unexpected keyword argument {name!r}.")
        else:
            lines.append(f"hpstore.Tuner takes no `{name}` (KerasTuner's tuners do): "
                         f"{advice}.")
    return TypeError(" ".join(lines))


def missing_attribute(obj: Any, name: str) -> AttributeError:
    """The error for an attribute ``obj`` (a Tuner) has not: for one of KerasTuner's
    tuners, it says what to use instead (an ``AttributeError`` still, so that ``hasattr``
    and ``getattr`` with a default keep working)."""
    advice = _KERASTUNER_ATTRIBUTES.get(name)
    if advice is None:
        return AttributeError(f"{type(obj).__name__!r} object has no attribute {name!r}",
                              name=name, obj=obj)
    return AttributeError(f"hpstore.Tuner has no {name!r} (KerasTuner's tuners have): "
                          f"{advice}.", name=name, obj=obj)
