"""What a Keras trial's run returns (a number, a dict, a History, one per execution): checked
as KerasTuner checks it, with hpstore's checks of each value, and turned into the metrics
the oracle records."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

import keras
from keras_tuner.src.engine import objective as kt_objective
from keras_tuner.src.engine import tuner_utils

from hpstore.errors import MissingMetricError
from hpstore.results import to_metrics, validate_results

if TYPE_CHECKING:
    from hpstore.keras.oracle import Oracle


def validate_returned(results: Any, oracle: Oracle, returned_by: str) -> None:
    """KerasTuner's check of what ``returned_by`` (``run_trial``, or the hypermodel's
    ``fit``) returned, except for a list of objectives: the oracle scores it from the
    metric of each objective, so each result but a History (whose epochs hold them) must
    be a dict holding each, as ``hpstore.Tuner`` checks it. (KerasTuner's check asks for
    a "multi_objective" key, which only its conversion of a History provides, and its
    oracle then refuses the trial for lack of the metrics themselves.)

    Raises:
        FatalTypeError: None, or a type that is not a number, a dict, a History or a list
            of them (KerasTuner's, or hpstore's for a list of objectives).
        FatalValueError: a result without the objective's metrics: for a list of
            objectives, a number, or a dict that lacks one of them (named).
    """
    objective = oracle.objective
    if not isinstance(objective, kt_objective.MultiObjective):
        tuner_utils.validate_trial_results(results, objective, returned_by)
        return
    items = results if isinstance(results, list) else [results]
    others = [r for r in items if not isinstance(r, keras.callbacks.History)]
    if others or not items:
        validate_results(others if isinstance(results, list) else results,
                         oracle.hpstore_oracle.objective, returned_by)


def check_logged(results: Any, names: list[str]) -> None:
    """Each Keras History in ``results`` (one, or one per execution) must hold the
    objective's metrics ``names`` in some epoch: KerasTuner fails each trial on a bare
    ``KeyError`` when one does not, and every trial would, since the logs come from the
    model's compiled metrics and the data given to ``search()``.

    Raises:
        MissingMetricError: a History without one of ``names``; the message names it, the
            metrics the logs had, and what to change.
    """
    for history in _leaves(results):
        if not isinstance(history, keras.callbacks.History):
            continue
        logged = sorted(name for name, values in history.history.items() if len(values))
        missing = [name for name in names if name not in logged]
        if missing:
            raise MissingMetricError(_missing_message(missing, logged))


def _missing_message(missing: list[str], logged: list[str]) -> str:
    """What :func:`_check_logged` says about the objective's ``missing`` metrics."""
    what = (f"The objective {missing[0]!r} is" if len(missing) == 1
            else f"The objective's metrics {missing} are")
    lines = [f"{what} not among the metrics the model logged in training: {logged}."]
    if not logged:
        lines.append("The training logged no metric at all: did it run any epoch?")
    for name in missing:
        if name.startswith("val_") and not any(n.startswith("val_") for n in logged):
            lines.append(f"Keras logs {name!r} only on the epochs it validates: pass "
                         "validation_data= (or validation_split=) to search(), and no "
                         "validation_freq that skips every epoch a trial trains.")
            continue
        close = difflib.get_close_matches(name, logged, n=1)
        if close:  # (a guess: the metric may also be one the model was not compiled with)
            lines.append(f"Did you mean {close[0]!r}? Name the metric as Keras logs it, "
                         f"or compile the model with {name!r} (model.compile(metrics=[...])).")
        else:
            lines.append(f"Compile the model with the metric {name!r} "
                         "(model.compile(metrics=[...])), or name one of the metrics logged "
                         "as the objective.")
    lines.append("Every trial would miss it, so the search stops here.")
    return " ".join(lines)


def returned_metrics(results: Any, objective: Any) -> dict[str, float]:
    """What ``run_trial`` returned as one dict of metrics, as KerasTuner converts it (a
    History gives its best epoch's logs, a list is averaged per metric), each value
    checked as ``update_trial`` checks it before executions are averaged: KerasTuner's
    average turns ``True`` into 1.0 and a list into its mean, and such a value is a
    mistake every trial would repeat.

    Raises:
        InvalidMetricError: a value that is not one real number.
    """
    items = results if isinstance(results, list) else [results]
    # (a list inside: what one execution returned, a fit's Histories of its trainings,
    # say, averaged first as KerasTuner's conversion does)
    checked = [returned_metrics(r, objective) if isinstance(r, list) else
               to_metrics(_history_metrics(r, objective)
                          if isinstance(r, keras.callbacks.History) else r, objective)
               for r in items]
    if len(checked) == 1:
        return checked[0]
    # each metric over the executions that returned it, as KerasTuner averages them
    return {name: float(value) for name, value in
            tuner_utils.average_metrics_dicts(checked).items()}


def _history_metrics(history: Any, objective: Any) -> dict[str, Any]:
    """A History's best epoch's logs, as KerasTuner converts it, without the combined value
    it adds for several objectives (``multi_objective``): the oracle computes that from
    the objectives' metrics, and refuses it reported."""
    metrics = dict(tuner_utils.convert_to_metrics_dict(history, objective))
    if isinstance(objective, kt_objective.MultiObjective):
        metrics.pop(objective.name, None)
    return metrics


def histories_only(results: Any) -> bool:
    """Whether ``results`` are the Keras History objects of the model's training (one, or
    one per execution), whose epochs the tuner's callback recorded as they ran."""
    items = _leaves(results)
    return bool(items) and all(isinstance(r, keras.callbacks.History) for r in items)


def _leaves(results: Any) -> list[Any]:
    """The results in ``results``, lists inside it opened (run_trial returns one result
    per execution, and a hypermodel's fit may itself return a list)."""
    if not isinstance(results, (list, tuple)):
        return [results]
    return [leaf for item in results for leaf in _leaves(item)]
