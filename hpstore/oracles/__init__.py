"""The built-in search algorithms."""

from hpstore.oracles.random_search import RandomSearchOracle

__all__ = ["RandomSearchOracle"]
