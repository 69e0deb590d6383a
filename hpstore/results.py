"""What a trial's run returns: checked as KerasTuner checks it, and turned into metrics.

A ``run_trial`` (or a hypermodel's ``fit``) returns a float, a dict of metrics or a list of
those; :func:`validate_results` refuses what no trial could be scored on, and
:func:`to_metrics` gives the metrics ``update_trial`` records. ``hpstore.Tuner`` and
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
