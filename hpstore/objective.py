"""What a search optimises: one metric with a direction, several combined, or the default."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

from hpstore.hyperparameters.base import unicode_problem

DIRECTIONS = ("min", "max")

# Direction of common metric names, decided by the name alone so no Keras is needed. Names
# are compared without underscores and case, so Keras class names ("BinaryAccuracy",
# "MeanSquaredError", "AUC") match the function names ("binary_accuracy", ...).
_MAX_NAMES = {
    "acc", "accuracy", "binary_accuracy", "categorical_accuracy",
    "sparse_categorical_accuracy", "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy", "auc", "precision", "recall",
    "f1_score", "fbeta_score", "f_beta_score", "r2_score", "true_positives", "true_negatives",
    "precision_at_recall", "recall_at_precision", "sensitivity_at_specificity",
    "specificity_at_sensitivity", "iou", "mean_iou", "binary_iou", "one_hot_iou",
    "one_hot_mean_iou", "cosine_similarity", "pearson_correlation", "concordance_correlation",
}
_MIN_NAMES = {
    "loss", "ce", "mse", "mae", "mape", "msle", "rmse", "mean_squared_error",
    "mean_absolute_error", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "root_mean_squared_error", "log_cosh_error",
    "binary_crossentropy", "bce", "categorical_crossentropy", "sparse_categorical_crossentropy",
    "categorical_hinge", "hinge", "squared_hinge", "kl_divergence",
    "kullback_leibler_divergence", "kld", "logcosh", "log_cosh", "poisson", "huber",
    "false_positives", "false_negatives", "ctc", "dice", "tversky", "circle",
}
# Substrings that make a name a loss or an error whatever else it says.
_MIN_PARTS = ("loss", "crossentropy", "error")


def _key(name: str) -> str:
    return name.replace("_", "").lower()


_MAX_KEYS = {_key(n) for n in _MAX_NAMES}
_MIN_KEYS = {_key(n) for n in _MIN_NAMES}


def infer_metric_direction(name: str) -> str | None:
    """"min", "max" or None for a metric name such as ``"val_accuracy"`` or ``"loss"``.

    One leading ``val_`` and then one ``weighted_`` are ignored. Known metric names (and
    their Keras class names) come from a table; any other name containing "loss",
    "crossentropy" or "error" is "min"; anything else is None.
    """
    if not isinstance(name, str):
        return None
    base = name[4:] if name.startswith("val_") else name
    base = base[9:] if base.startswith("weighted_") else base
    key = _key(base)
    if key in _MAX_KEYS:
        return "max"
    if key in _MIN_KEYS:
        return "min"
    if any(part in key for part in _MIN_PARTS):
        return "min"
    return None


class Objective:
    """A metric name and whether lower ("min") or higher ("max") is better.

    Raises:
        ValueError: ``direction`` is not "min" or "max", or the name is not a string.
    """

    def __init__(self, name: str, direction: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"An objective name must be a non-empty string, received {name!r}.")
        problem = unicode_problem(name)
        if problem:
            raise ValueError(f"The objective name {name!r} cannot be stored: {problem}.")
        if direction not in DIRECTIONS:
            raise ValueError(
                f'`direction` of objective {name!r} must be "min" or "max", received '
                f"{direction!r}."
            )
        self.name = name
        self.direction = direction

    def better_than(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``."""
        return a < b if self.direction == "min" else a > b

    def has_value(self, logs: Mapping[str, Any]) -> bool:
        return self.name in logs

    def get_value(self, logs: Mapping[str, Any]) -> float:
        return float(logs[self.name])

    @property
    def metric_names(self) -> list[str]:
        """The metrics a trial must report for this objective."""
        return [self.name]

    def direction_of(self, metric: str) -> str | None:
        """The direction this objective gives ``metric``, or None when it does not name it."""
        return self.direction if metric == self.name else None

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "direction": self.direction}

    def __eq__(self, other: object) -> bool:
        # one metric and its direction, however made: the DefaultObjective that a search
        # made with no objective holds is Objective("default_objective", "min") given
        # again (a search could not be resumed with the very objective it was made with)
        return (
            isinstance(other, Objective) and not isinstance(other, MultiObjective)
            and self.get_config() == other.get_config()
        )

    def __hash__(self) -> int:
        return hash((self.name, self.direction))

    def __repr__(self) -> str:
        return f'Objective(name="{self.name}", direction="{self.direction}")'


class DefaultObjective(Objective):
    """The objective when none is given: the single float a trial returns, minimised."""

    def __init__(self) -> None:
        super().__init__("default_objective", "min")


class MultiObjective(Objective):
    """Several objectives: minimise the sum of the "min" ones minus the sum of the "max" ones."""

    def __init__(self, objectives: Sequence[Objective]) -> None:
        if isinstance(objectives, (str, Objective)) or not all(
                isinstance(o, Objective) for o in objectives):
            raise TypeError(f"MultiObjective takes a list of Objective objects, received "
                            f"{objectives!r}; `objective=[...]` of an oracle also takes "
                            "metric names.")
        if not objectives:
            raise ValueError("MultiObjective received an empty list; give at least one "
                             "Objective.")
        super().__init__("multi_objective", "min")
        for part in objectives:
            if isinstance(part, MultiObjective) or part.name == self.name:
                raise ValueError(
                    f"{part!r} cannot be one of several objectives: {self.name!r} is the "
                    "name of their combined value, which hpstore computes from the metrics "
                    "of the others. Give the metrics themselves.")
        # The same objective twice counts once, as KerasTuner counts it; one metric
        # asked to go both ways is a mistake.
        self.objectives = list(dict.fromkeys(objectives))
        names = [o.name for o in self.objectives]
        if len(set(names)) != len(names):
            raise ValueError(f"The objectives ask for a metric in both directions: "
                             f"{self.objectives}. Give each metric once.")
        self.name_to_direction = {o.name: o.direction for o in self.objectives}

    def has_value(self, logs: Mapping[str, Any]) -> bool:
        return all(name in logs for name in self.name_to_direction)

    def check_report(self, names: Mapping[str, Any]) -> None:
        """Refuse a report that names the combined value itself, which would be averaged
        with the one computed from the objectives' metrics.

        Raises:
            InvalidMetricError: ``names`` holds ``multi_objective``.
        """
        if self.name in names:
            from hpstore.errors import InvalidMetricError

            raise InvalidMetricError(
                f"{self.name!r} is reported, but it is the name of the combined value of "
                f"the objectives ({', '.join(self.name_to_direction)}), which hpstore "
                "computes from their metrics at each report: report those, and leave "
                f"{self.name!r} out (a combination of your own needs a name of its own, "
                "and an Objective of it).")

    def get_value(self, logs: Mapping[str, Any]) -> float:
        total = 0.0
        for name, direction in self.name_to_direction.items():
            value = float(logs[name])
            total += value if direction == "min" else -value
        return total

    @property
    def metric_names(self) -> list[str]:
        return list(self.name_to_direction)

    def direction_of(self, metric: str) -> str | None:
        if metric == self.name:
            return self.direction
        return self.name_to_direction.get(metric)

    def get_config(self) -> dict[str, Any]:
        return {"objectives": [o.get_config() for o in self.objectives]}

    def __eq__(self, other: object) -> bool:
        # The order of the objectives does not change what is optimised.
        return (isinstance(other, MultiObjective)
                and self.name_to_direction == other.name_to_direction)

    def __hash__(self) -> int:
        return hash(frozenset(self.name_to_direction.items()))

    def __repr__(self) -> str:
        return f"MultiObjective({self.objectives!r})"

    def __str__(self) -> str:
        # KerasTuner's text: the combined objective, then its parts
        return (f'MultiObjective(name="{self.name}", direction="{self.direction}"): '
                f"[{', '.join(map(repr, self.objectives))}]")


def create_objective(objective: Any) -> Objective:
    """Turn what a user passes as ``objective=`` into an :class:`Objective`.

    None gives the default objective; a string gets its direction from its name; a list
    gives a :class:`MultiObjective` (a one-element list is that element).

    Raises:
        ValueError: a string whose direction cannot be inferred (pass
            ``Objective(name, direction)`` instead), one ending in ``:min``/``:max`` or
            with spaces around the name, an empty list, or a pair (name, "min" or "max").
        TypeError: something that is not None, a string, an Objective or a list of those.
    """
    if objective is None:
        return DefaultObjective()
    if isinstance(objective, Objective):
        return objective
    if isinstance(objective, str):
        head, colon, tail = objective.rpartition(":")
        if colon and tail.strip().lower() in DIRECTIONS:  # the tools' NAME:max, say
            raise ValueError(
                f"`objective` {objective!r} is read as a metric name, colon included; give "
                f'the direction apart: `hpstore.Objective("{head.strip()}", '
                f'direction="{tail.strip().lower()}")`.')
        if objective != objective.strip():
            raise ValueError(
                f"`objective` {objective!r} has spaces around the metric name, which no "
                f"metric reported will match; give {objective.strip()!r}.")
        direction = infer_metric_direction(objective)
        if direction is None:
            raise ValueError(
                f'Could not infer optimization direction ("min" or "max") for unknown metric '
                f'"{objective}". Please specify the objective as an '
                f"`Objective(name, direction)`, for example "
                f'`hpstore.Objective("{objective}", direction="min")`.'
            )
        return Objective(objective, direction)
    if isinstance(objective, (list, tuple)):
        if not objective:
            raise ValueError("`objective` is an empty list; give at least one objective.")
        if (len(objective) == 2 and all(isinstance(o, str) for o in objective)
                and objective[1].strip().lower() in DIRECTIONS):
            # ("val_loss", "min") read as two metrics, the second named "min", was "unknown
            # metric 'min'" with hpstore.Objective("min", ...) as the example to follow
            name, direction = objective[0], objective[1].strip().lower()
            raise ValueError(
                f"`objective` {objective!r} is read as a list of two metrics, the second "
                f"named {objective[1]!r}; give a metric and its direction as "
                f'`hpstore.Objective("{name}", direction="{direction}")`.')
        parts = list(dict.fromkeys(create_objective(o) for o in objective))
        return parts[0] if len(parts) == 1 else MultiObjective(parts)
    name, direction = getattr(objective, "name", None), getattr(objective, "direction", None)
    if type(objective).__name__ == "Objective" and isinstance(name, str):
        # KerasTuner's own (a script ported to hpstore's oracles): the same two facts, a
        # direction other than "min" or "max" refused as hpstore.Objective refuses it
        return Objective(name, cast(str, direction))
    raise TypeError(
        "`objective` not understood, expected str or `Objective` object (or a list of them), "
        f"found: {objective!r}"
    )


def objective_from_config(config: Mapping[str, Any]) -> Objective:
    """Rebuild an objective from :meth:`Objective.get_config` output."""
    if "objectives" in config:
        return MultiObjective([objective_from_config(c) for c in config["objectives"]])
    if config.get("name") == "default_objective" and config.get("direction") == "min":
        return DefaultObjective()
    return Objective(config["name"], config["direction"])


def is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)

