"""Test functions for search quality, each with its space described once for every system.

A space is a list of ``(name, kind, args)`` with kind "float", "int", "choice" or "log", and
an optional condition ``(parent, values)``; each system builds its own space from it.
``PROBLEMS`` are the four of the original quality table; ``benchmarks.suite`` adds the rest.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "float", "log" (float, log scale), "int", "logint" (int, log scale), "choice"
    args: tuple[Any, ...]
    parent: tuple[str, tuple[Any, ...]] | None = None


@dataclass(frozen=True)
class Problem:
    name: str
    space: tuple[Param, ...]
    function: Callable[[dict[str, Any]], float]
    optimum: float | None  # None: not known (a real model's cross-validated loss)
    kind: str = "continuous"  # the row group of the suite's table
    noise: float = 0.0  # standard deviation of Gaussian noise added to what a system sees


def _mixed(v: dict[str, Any]) -> float:
    return (v["x"] - 3) ** 2 + v["y"] + (1.0 if v["c"] == "a" else 0.0)


def _branin(v: dict[str, Any]) -> float:
    x1, x2 = v["x1"], v["x2"]
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                 [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                        [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])


def _hartmann6(v: dict[str, Any]) -> float:
    x = np.array([v[f"x{i}"] for i in range(1, 7)])
    return float(-(_H_ALPHA * np.exp(-(_H_A * (x - _H_P) ** 2).sum(1))).sum())


def _conditional(v: dict[str, Any]) -> float:
    if v["model"] == "sphere":
        return v["u"] ** 2 + v["w"] ** 2
    return (math.log10(v["lr"]) + 2) ** 2 + 0.3 + 0.05 * abs(v["layers"] - 3)


PROBLEMS = (
    Problem("mixed", (Param("x", "float", (-10, 10)), Param("y", "int", (0, 10)),
                      Param("c", "choice", ("a", "b"))), _mixed, 0.0, "mixed"),
    Problem("branin", (Param("x1", "float", (-5, 10)), Param("x2", "float", (0, 15))),
            _branin, 0.397887, "continuous"),
    Problem("hartmann6", tuple(Param(f"x{i}", "float", (0, 1)) for i in range(1, 7)),
            _hartmann6, -3.32237, "continuous"),
    Problem("conditional", (
        Param("model", "choice", ("sphere", "net")),
        Param("u", "float", (-5, 5), ("model", ("sphere",))),
        Param("w", "float", (-5, 5), ("model", ("sphere",))),
        Param("lr", "log", (1e-5, 1.0), ("model", ("net",))),
        Param("layers", "int", (1, 8), ("model", ("net",))),
    ), _conditional, 0.0, "conditional"),
)
