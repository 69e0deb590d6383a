"""What a trial's run returns: checked as KerasTuner checks it, and turned into metrics.

A ``run_trial`` (or a hypermodel's ``fit``) returns a float, a dict of metrics, a Keras
History (its best epoch's metrics), or a list of those; :func:`validate_results` refuses
what no trial could be scored on, and :func:`to_metrics` gives the metrics
``update_trial`` records. ``hpstore.Tuner`` and
``hpstore.keras``'s tuners both use them.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

from hpstore.errors import FatalTypeError, FatalValueError
from hpstore.objective import DefaultObjective, MultiObjective, Objective
from hpstore.trial import check_metric, mean_of


def validate_results(results: Any, objective: Objective, where: str) -> None:
    """Check the shape of what ``run_trial`` returned, as KerasTuner does (the values
    themselves are checked by :func:`to_metrics`).

    Raises:
        FatalValueError: None, or a dict without the objective's metrics.
        FatalTypeError: a type that is not a number, a dict, a History or a list of those.
    """
    results = best_epoch_of(results, objective)
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
        if missing and isinstance(objective, DefaultObjective):
            # (the oracle was given no objective: "default_objective" is no name the
            # user wrote, and no dict could hold it by intent)
            raise FatalValueError(
                f"{where} returned a dict of metrics {sorted(map(str, results))}, but the "
                "oracle was given no objective, so it scores a single float returned "
                "(minimised). Give the oracle objective=\"NAME\" (or "
                "hpstore.Objective(NAME, \"min\" or \"max\")) naming the metric to score, "
                "or return that float.")
        if missing:
            raise FatalValueError(
                f"Expected the dict returned by {where} to hold the objective {missing}; "
                f"received keys {sorted(map(str, results))}.")
        return
    if not _number_like(results):
        raise FatalTypeError(
            f"The return value of {where} must be a float, a dict of metrics, a Keras History "
            f"or a list of them; received {results!r} of type {type(results).__name__}.")
    if isinstance(objective, MultiObjective):
        raise FatalValueError(
            f"{where} returned the single value {results!r}, but the objective has several "
            f"metrics {objective.metric_names}: return a dict holding each of them.")


def best_epoch_of(results: Any, objective: Objective) -> Any:
    """A Keras ``History`` (what ``model.fit`` returns) as the metrics of its best epoch by
    the objective, as KerasTuner's tuners take one (the first epoch of the best value; NaN
    epochs left out); anything else as it is. Known by its shape (a ``history`` dict of
    per-epoch lists), so that plain Python never imports Keras for it."""
    found = _best_epoch(results, objective)
    return results if found is None else found[1]


def best_step_of(results: Any, objective: Objective) -> int:
    """The step a trial's result stands for, as KerasTuner takes it: of a ``History``, its
    best epoch (see :func:`best_epoch_of`); of a list, the whole part of the mean of its
    results' steps (several executions); of anything else, 0."""
    if isinstance(results, (list, tuple)):
        steps = [best_step_of(r, objective) for r in results]
        return int(sum(steps) / len(steps)) if steps else 0
    found = _best_epoch(results, objective)
    return 0 if found is None else found[0]


def _best_epoch(results: Any, objective: Objective) -> tuple[int, dict[str, Any]] | None:
    """(index, metrics) of a ``History``'s best epoch; None for what is no History. With
    no epoch holding the objective: the last epoch's logs, for validate_results to name
    what is missing."""
    logs = getattr(results, "history", None)
    if type(results).__name__ != "History" or not isinstance(logs, Mapping) or not logs:
        return None
    epochs = max(len(v) for v in logs.values() if isinstance(v, (list, tuple)))
    per_epoch = [{k: v[i] for k, v in logs.items() if isinstance(v, (list, tuple))
                  and i < len(v)} for i in range(epochs)]
    best: tuple[float, int] | None = None
    for index, epoch in enumerate(per_epoch):
        if not objective.has_value(epoch):
            continue
        value = objective.get_value(epoch)
        if value == value and (best is None or objective.better_than(value, best[0])):
            best = (value, index)  # (value == value: NaN left out)
    if best is not None:
        return best[1], per_epoch[best[1]]
    return (len(per_epoch) - 1, per_epoch[-1]) if per_epoch else (0, {})


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
        InvalidMetricError (a TypeError and a ValueError): a metric name that is not a
            string, or a value that is not one real number.
    """
    results = best_epoch_of(results, objective)
    if isinstance(results, (list, tuple)):
        dicts = [to_metrics(r, objective) for r in results]
        names = dicts[0].keys()
        return {n: mean_of([d[n] for d in dicts if n in d]) for n in names}
    if isinstance(results, Mapping):
        return {k: check_metric(k, v) for k, v in results.items()}
    return {objective.name: check_metric(objective.name, results)}
