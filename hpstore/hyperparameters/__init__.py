"""The search space: HyperParameters and the five hyperparameter types."""

from hpstore.hyperparameters.base import (
    Condition,
    HyperParameter,
    Parent,
    index_to_prob,
    prob_to_index,
)
from hpstore.hyperparameters.container import (
    HP_CLASSES,
    HyperParameters,
    hyperparameter_from_config,
)
from hpstore.hyperparameters.discrete import Boolean, Choice, Fixed
from hpstore.hyperparameters.numerical import Float, Int

__all__ = [
    "HP_CLASSES",
    "Boolean",
    "Choice",
    "Condition",
    "Fixed",
    "Float",
    "HyperParameter",
    "HyperParameters",
    "Int",
    "Parent",
    "hyperparameter_from_config",
    "index_to_prob",
    "prob_to_index",
]
