"""The built-in search algorithms."""

from hpstore.oracles.bayesian import BayesianOptimizationOracle
from hpstore.oracles.grid_search import GridSearchOracle
from hpstore.oracles.hyperband import HyperbandOracle
from hpstore.oracles.random_search import RandomSearchOracle

__all__ = [
    "BayesianOptimizationOracle",
    "GridSearchOracle",
    "HyperbandOracle",
    "RandomSearchOracle",
]
