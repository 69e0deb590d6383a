"""KerasTuner's four oracles, with its signatures and defaults, each running its hpstore
counterpart; ``database=``, ``durability=`` and ``early_stopping=`` are hpstore's.

For a Tuner of your own (``hpstore.keras.Tuner(oracle=..., hypermodel=...)``), as with
``keras_tuner.oracles``. With no ``database=``, the search file is
``<directory>/<project_name>.db`` of the Tuner the oracle is given to.
"""

from __future__ import annotations

from typing import Any

import hpstore
from hpstore.keras.oracle import DeferredOracle, Oracle

__all__ = [
    "BayesianOptimizationOracle",
    "GridSearchOracle",
    "HyperbandOracle",
    "Oracle",
    "RandomSearchOracle",
]


class RandomSearchOracle(DeferredOracle):
    """Random search (:class:`hpstore.RandomSearchOracle`): never the same values twice.
    ``max_trials``: 10 for a new search, as KerasTuner's; a search resumed without it keeps
    its own."""

    hpstore_class = hpstore.RandomSearchOracle

    def __init__(self, objective: Any = None, max_trials: int | None = None,
                 seed: int | None = None, hyperparameters: Any = None,
                 allow_new_entries: bool = True,
                 tune_new_entries: bool = True, max_retries_per_trial: int = 0,
                 max_consecutive_failed_trials: int = 3, *, database: Any = None,
                 durability: str = "normal",
                 early_stopping: Any = None) -> None:
        super().__init__(
            {"objective": objective, "max_trials": max_trials, "seed": seed,
             "hyperparameters": hyperparameters, "allow_new_entries": allow_new_entries,
             "tune_new_entries": tune_new_entries, "max_retries_per_trial": max_retries_per_trial,
             "max_consecutive_failed_trials": max_consecutive_failed_trials,
             "early_stopping": early_stopping},
            database=database, durability=durability)


class GridSearchOracle(DeferredOracle):
    """Every combination in KerasTuner's order (:class:`hpstore.GridSearchOracle`)."""

    hpstore_class = hpstore.GridSearchOracle

    def __init__(self, objective: Any = None, max_trials: int | None = None,
                 seed: int | None = None, hyperparameters: Any = None,
                 allow_new_entries: bool = True, tune_new_entries: bool = True,
                 max_retries_per_trial: int = 0, max_consecutive_failed_trials: int = 3, *,
                 database: Any = None, durability: str = "normal",
                 early_stopping: Any = None) -> None:
        super().__init__(
            {"objective": objective, "max_trials": max_trials, "seed": seed,
             "hyperparameters": hyperparameters, "allow_new_entries": allow_new_entries,
             "tune_new_entries": tune_new_entries, "max_retries_per_trial": max_retries_per_trial,
             "max_consecutive_failed_trials": max_consecutive_failed_trials,
             "early_stopping": early_stopping},
            database=database, durability=durability)


class BayesianOptimizationOracle(DeferredOracle):
    """A Gaussian process (:class:`hpstore.BayesianOptimizationOracle`). ``max_trials``: 10
    for a new search, as KerasTuner's; a search resumed without it keeps its own."""

    hpstore_class = hpstore.BayesianOptimizationOracle

    def __init__(self, objective: Any = None, max_trials: int | None = None,
                 num_initial_points: int | None = None, alpha: float = 1e-4, beta: float = 2.6,
                 seed: int | None = None, hyperparameters: Any = None,
                 allow_new_entries: bool = True, tune_new_entries: bool = True,
                 max_retries_per_trial: int = 0, max_consecutive_failed_trials: int = 3, *,
                 database: Any = None, durability: str = "normal",
                 early_stopping: Any = None) -> None:
        super().__init__(
            {"objective": objective, "max_trials": max_trials,
             "num_initial_points": num_initial_points, "alpha": alpha, "beta": beta,
             "seed": seed, "hyperparameters": hyperparameters,
             "allow_new_entries": allow_new_entries, "tune_new_entries": tune_new_entries,
             "max_retries_per_trial": max_retries_per_trial,
             "max_consecutive_failed_trials": max_consecutive_failed_trials,
             "early_stopping": early_stopping},
            database=database, durability=durability)


class HyperbandOracle(DeferredOracle):
    """KerasTuner's Hyperband schedule (:class:`hpstore.HyperbandOracle`)."""

    hpstore_class = hpstore.HyperbandOracle

    def __init__(self, objective: Any = None, max_epochs: int = 100, factor: int = 3,
                 hyperband_iterations: int = 1, seed: int | None = None,
                 hyperparameters: Any = None, allow_new_entries: bool = True,
                 tune_new_entries: bool = True, max_retries_per_trial: int = 0,
                 max_consecutive_failed_trials: int = 3, *, database: Any = None,
                 durability: str = "normal",
                 early_stopping: Any = None) -> None:
        super().__init__(
            {"objective": objective, "max_epochs": max_epochs, "factor": factor,
             "hyperband_iterations": hyperband_iterations, "seed": seed,
             "hyperparameters": hyperparameters, "allow_new_entries": allow_new_entries,
             "tune_new_entries": tune_new_entries, "max_retries_per_trial": max_retries_per_trial,
             "max_consecutive_failed_trials": max_consecutive_failed_trials,
             "early_stopping": early_stopping},
            database=database, durability=durability)
