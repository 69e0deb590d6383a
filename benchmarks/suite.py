"""The broad quality suite: classic test functions in 2-10 dimensions, integer- and
categorical-heavy spaces, conditional spaces of several depths, noisy objectives, and real
models tuned on scikit-learn's datasets (``benchmarks.models``).

``SUITES`` names the problem sets ``python -m benchmarks quality --suite`` runs: "core" (the
four problems of the original table), "full" (everything) and "quick" (a CI smoke).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from benchmarks.models import MODEL_PROBLEMS
from benchmarks.problems import PROBLEMS, Param, Problem

# -- classic continuous functions ---------------------------------------------------------------
_H3_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_H3_P = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547],
                         [381, 5743, 8828]])


def _vector(v: dict[str, Any], d: int) -> np.ndarray:
    return np.array([v[f"x{i}"] for i in range(1, d + 1)], dtype=float)


def _hartmann3(v: dict[str, Any]) -> float:
    x = _vector(v, 3)
    return float(-(_H3_ALPHA * np.exp(-(_H3_A * (x - _H3_P) ** 2).sum(1))).sum())


_SHEKEL_BETA = 0.1 * np.array([1, 2, 2, 4, 4, 6, 3, 7, 5, 5], dtype=float)
_SHEKEL_C = np.array([[4, 1, 8, 6, 3, 2, 5, 8, 6, 7], [4, 1, 8, 6, 7, 9, 3, 1, 2, 3.6],
                      [4, 1, 8, 6, 3, 2, 5, 8, 6, 7], [4, 1, 8, 6, 7, 9, 3, 1, 2, 3.6]])


def _shekel(v: dict[str, Any]) -> float:
    x = _vector(v, 4)
    return float(-(1.0 / (((x[:, None] - _SHEKEL_C) ** 2).sum(0) + _SHEKEL_BETA)).sum())


def _ackley(v: dict[str, Any]) -> float:
    x = _vector(v, 5)
    return float(-20 * math.exp(-0.2 * math.sqrt((x**2).mean()))
                 - math.exp(np.cos(2 * math.pi * x).mean()) + 20 + math.e)


def _rastrigin(v: dict[str, Any]) -> float:
    x = _vector(v, 4)
    return float(10 * len(x) + (x**2 - 10 * np.cos(2 * math.pi * x)).sum())


def _rosenbrock(v: dict[str, Any]) -> float:
    x = _vector(v, 4)
    return float((100 * (x[1:] - x[:-1] ** 2) ** 2 + (x[:-1] - 1) ** 2).sum())


def _levy(v: dict[str, Any]) -> float:
    w = 1 + (_vector(v, 10) - 1) / 4
    return float(math.sin(math.pi * w[0]) ** 2
                 + ((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[:-1] + 1) ** 2)).sum()
                 + (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2))


def _styblinski_tang(v: dict[str, Any]) -> float:
    x = _vector(v, 8)
    return float(0.5 * (x**4 - 16 * x**2 + 5 * x).sum())


def _box(d: int, low: float, high: float) -> tuple[Param, ...]:
    return tuple(Param(f"x{i}", "float", (low, high)) for i in range(1, d + 1))


# -- integer- and categorical-heavy spaces --------------------------------------------------------
def _integers(v: dict[str, Any]) -> float:
    """A training recipe in integers: batch size (log scale), layers, units on a step of 8,
    epochs on a step of 5, and a window whose loss ripples."""
    layers_off = abs(v["layers"] - 3)
    ripple = 0.2 * (1 - math.cos(2 * math.pi * (v["window"] - 7) / 5))
    return (((math.log2(v["batch"]) - 6) / 2) ** 2 + 0.25 * layers_off
            + ((v["units"] - 120) / 64) ** 2 * (1 + 0.25 * layers_off)
            + ((v["epochs"] - 60) / 40) ** 2 + 0.05 * abs(v["window"] - 7) + ripple)


_CATEGORIES: tuple[tuple[Any, ...], ...] = (
    ("relu", "tanh", "gelu", "elu"), (16, 32, 64, 128), ("sgd", "adam", "rmsprop"),
    ("none", "batch", "layer", "group", "instance"), ("a", "b", "c"), (0.0, 0.1, 0.3, 0.5))
_CAT_RNG = np.random.default_rng(7)
_CAT_SINGLE = [_CAT_RNG.random(len(c)) for c in _CATEGORIES]
_CAT_PAIRS = [0.5 * _CAT_RNG.random((len(a), len(b)))
              for a, b in itertools.pairwise(_CATEGORIES)]
_CAT_TARGET = _CAT_RNG.random(len(_CATEGORIES[0]))


def _categorical_indices(v: dict[str, Any]) -> list[int]:
    return [c.index(v[f"c{i}"]) for i, c in enumerate(_CATEGORIES)]


def _categorical_table(idx: list[int]) -> float:
    return (sum(t[i] for t, i in zip(_CAT_SINGLE, idx))
            + sum(w[i, j] for w, i, j in zip(_CAT_PAIRS, idx, idx[1:])))


def _categorical(v: dict[str, Any]) -> float:
    """Six choices with pairwise interactions (a fixed random table) and one float whose
    best value depends on the first choice."""
    idx = _categorical_indices(v)
    return float(_categorical_table(idx) + 2 * (v["x"] - _CAT_TARGET[idx[0]]) ** 2)


_CAT_OPTIMUM = min(_categorical_table(list(idx)) for idx in
                   itertools.product(*(range(len(c)) for c in _CATEGORIES)))


# -- conditional spaces ---------------------------------------------------------------------------
_UNITS = (256, 128, 64, 32)
_LR = {"sgd": -1.5, "adam": -3.0, "rmsprop": -2.5}
_OPT_COST = {"sgd": 0.1, "adam": 0.0, "rmsprop": 0.03}


def _network(v: dict[str, Any]) -> float:
    """A network: a layer count, units per layer (each active only when the layer is),
    a log-scaled learning rate whose best value depends on the optimiser."""
    layers = v["layers"]
    units = sum(((math.log2(v[f"units_{i}"]) - math.log2(_UNITS[i])) / 2) ** 2
                for i in range(layers))
    lr = 0.5 * (math.log10(v["lr"]) - _LR[v["optimizer"]] + 0.2 * (layers - 3)) ** 2
    return 0.15 * abs(layers - 3) + units + lr + _OPT_COST[v["optimizer"]]


def _pipeline(v: dict[str, Any]) -> float:
    """A model choice three levels deep: model -> kernel -> degree (and penalty ->
    l1_ratio), each branch with hyperparameters of its own."""
    if v["model"] == "svm":
        score = {"rbf": 0.0, "poly": 0.04, "linear": 0.12}[v["kernel"]]
        score += 0.05 * (math.log10(v["C"]) - 1) ** 2
        if v["kernel"] == "rbf":
            score += 0.08 * (math.log10(v["gamma"]) + 1.5) ** 2
        elif v["kernel"] == "poly":
            score += 0.05 * (math.log10(v["gamma"]) + 2) ** 2 + 0.03 * abs(v["degree"] - 3)
        return score
    if v["model"] == "forest":
        return (0.02 + 0.04 * (math.log10(v["trees"]) - 2.5) ** 2
                + 0.002 * abs(v["depth"] - 12)
                + {"sqrt": 0.0, "log2": 0.01, "half": 0.02}[v["features"]])
    penalty = {"l1": 0.03, "l2": 0.02, "elasticnet": 0.0}[v["penalty"]]
    if v["penalty"] == "elasticnet":
        penalty += 0.1 * (v["l1_ratio"] - 0.3) ** 2
    return 0.1 + penalty + 0.03 * (math.log10(v["linear_C"]) + 1) ** 2


_SVM = ("model", ("svm",))
_FOREST = ("model", ("forest",))
_LINEAR = ("model", ("linear",))

SYNTHETIC = (
    Problem("hartmann3", _box(3, 0, 1), _hartmann3, -3.86278),
    Problem("shekel", _box(4, 0, 10), _shekel, -10.5364),
    Problem("rastrigin4", _box(4, -5.12, 5.12), _rastrigin, 0.0),
    Problem("ackley5", _box(5, -5, 10), _ackley, 0.0),
    Problem("rosenbrock4", _box(4, -5, 10), _rosenbrock, 0.0),
    Problem("styblinski8", _box(8, -5, 5), _styblinski_tang, -39.16617 * 8),
    Problem("levy10", _box(10, -10, 10), _levy, 0.0),
    Problem("integers", (
        Param("batch", "logint", (16, 512)), Param("layers", "int", (1, 8)),
        Param("units", "int", (8, 256, 8)), Param("epochs", "int", (5, 100, 5)),
        Param("window", "int", (-20, 20))), _integers, 0.0, "integer"),
    Problem("categorical", (
        *(Param(f"c{i}", "choice", c) for i, c in enumerate(_CATEGORIES)),
        Param("x", "float", (0, 1))), _categorical, _CAT_OPTIMUM, "categorical"),
    Problem("network", (
        Param("layers", "int", (1, 4)),
        *(Param(f"units_{i}", "logint", (16, 512), ("layers", tuple(range(i + 1, 5))))
          for i in range(4)),
        Param("lr", "log", (1e-5, 1e-1)),
        Param("optimizer", "choice", ("sgd", "adam", "rmsprop"))), _network, 0.0,
        "conditional"),
    Problem("pipeline", (
        Param("model", "choice", ("svm", "forest", "linear")),
        Param("kernel", "choice", ("rbf", "poly", "linear"), _SVM),
        Param("C", "log", (1e-3, 1e3), _SVM),
        Param("gamma", "log", (1e-4, 10.0), ("kernel", ("rbf", "poly"))),
        Param("degree", "int", (2, 5), ("kernel", ("poly",))),
        Param("trees", "logint", (10, 1000), _FOREST),
        Param("depth", "int", (2, 30), _FOREST),
        Param("features", "choice", ("sqrt", "log2", "half"), _FOREST),
        Param("penalty", "choice", ("l1", "l2", "elasticnet"), _LINEAR),
        Param("linear_C", "log", (1e-4, 1e2), _LINEAR),
        Param("l1_ratio", "float", (0, 1), ("penalty", ("elasticnet",)))), _pipeline, 0.0,
        "conditional"),
    Problem("branin_noisy", PROBLEMS[1].space, PROBLEMS[1].function, PROBLEMS[1].optimum,
            "noisy", noise=0.5),
    Problem("hartmann6_noisy", PROBLEMS[2].space, PROBLEMS[2].function, PROBLEMS[2].optimum,
            "noisy", noise=0.1),
)

ALL = (*PROBLEMS, *SYNTHETIC, *MODEL_PROBLEMS)
_BY_NAME = {p.name: p for p in ALL}
SUITES: dict[str, tuple[Problem, ...]] = {
    "core": PROBLEMS,
    "full": ALL,
    "quick": tuple(_BY_NAME[n] for n in ("branin", "conditional", "branin_noisy", "svm_cancer")),
}


def problem(name: str) -> Problem:
    """The problem called ``name``.

    Raises:
        KeyError: no problem has that name.
    """
    return _BY_NAME[name]
