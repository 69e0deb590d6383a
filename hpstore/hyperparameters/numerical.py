"""Int and Float: ranges sampled linearly, on a log scale, or on a reversed log scale."""

from __future__ import annotations

import decimal
import math
from collections.abc import Sequence
from typing import Any

from hpstore.hyperparameters.base import (
    Condition,
    HyperParameter,
    index_to_prob,
    plain_scalar,
    prob_to_index,
)

SAMPLINGS = ("linear", "log", "reverse_log")

# Enough digits that a grid value computed in decimal is exact before it becomes a float.
_DECIMAL = decimal.Context(prec=40)


def _dec(value: float) -> decimal.Decimal:
    """The decimal a person typed for ``value``: its shortest repr, not its binary expansion."""
    if isinstance(value, float):
        return decimal.Decimal(repr(value))
    return decimal.Decimal(value)


def _grid_formula(sampling: str, index: int, low: Any, high: Any, step: Any) -> Any:
    """Grid point ``index`` with a step: ints, floats and Decimals all work."""
    if sampling == "linear":
        return low + index * step
    if sampling == "log":
        return low * step**index
    return high + low - low * step**index


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _sample(prob: float, low: float, high: float, sampling: str) -> float:
    if sampling == "linear":
        return low + prob * (high - low)
    if sampling == "log":
        return low * (high / low) ** prob
    return high + low - low * (high / low) ** (1 - prob)


def _unsample(value: float, low: float, high: float, sampling: str) -> float:
    if high == low:
        return 0.5
    if sampling == "linear":
        return (value - low) / (high - low)
    if sampling == "log":
        return math.log(value / low) / math.log(high / low)
    return 1 - math.log((high + low - value) / low) / math.log(high / low)


class Numerical(HyperParameter):
    """The shared part of Int and Float: range, step, sampling and their checks."""

    _kind = "number"

    def __init__(
        self,
        name: str,
        min_value: float,
        max_value: float,
        step: float | None = None,
        sampling: str | None = "linear",
        default: float | None = None,
        conditions: Sequence[Condition] | None = None,
    ) -> None:
        super().__init__(name=name, default=default, conditions=conditions)
        min_value, max_value = plain_scalar(min_value), plain_scalar(max_value)
        step, default = plain_scalar(step), plain_scalar(default)
        for arg, value in (("min_value", min_value), ("max_value", max_value)):
            if not _is_number(value) or not math.isfinite(value):
                raise ValueError(
                    f"`{arg}` of {type(self).__name__} {name!r} must be a finite number, "
                    f"received {value!r}."
                )
        if step is not None and (not _is_number(step) or not math.isfinite(step)):
            raise ValueError(
                f"`step` of {type(self).__name__} {name!r} must be a finite number or None, "
                f"received {step!r}."
            )
        if min_value > max_value:
            raise ValueError(
                f"`min_value` {min_value} is greater than the `max_value` {max_value}."
            )
        sampling = "linear" if sampling is None else sampling
        if not isinstance(sampling, str) or sampling.lower() not in SAMPLINGS:
            raise ValueError(
                "`sampling` must be one of 'linear', 'log' or 'reverse_log', "
                f"received: {sampling!r}."
            )
        sampling = sampling.lower()
        if sampling in ("log", "reverse_log") and min_value <= 0:
            raise ValueError(
                f"`sampling=\"{sampling}\"` does not support negative values, found "
                f"{type(self).__name__} {name!r} with `min_value` {min_value}."
            )
        if sampling in ("log", "reverse_log") and step is not None and step <= 1:
            raise ValueError(
                f"Expected `step` to be greater than 1 when `sampling` is \"{sampling}\"; "
                f"received `step` {step} for {name!r}."
            )
        if step is not None and sampling == "linear" and step <= 0:
            raise ValueError(f"`step` must be positive, received {step} for {name!r}.")
        self.min_value = min_value
        self.max_value = max_value
        self.step = step
        self.sampling = sampling

    # -- the grid when there is a step ---------------------------------------------------
    def _count(self) -> int:
        m, big, step = self.min_value, self.max_value, self.step
        assert step is not None
        if self.sampling == "linear":
            # A tolerance keeps Float(0, 1, step=0.2) at six values: 1 // 0.2 is 4.0 in
            # binary floating point, and the seed page promises 1.0 as the last value.
            return int(math.floor((big - m) / step + 1e-9)) + 1
        return int(math.log(big / m, step) + 1e-8) + 1

    def _value_at(self, index: int) -> float:
        """The grid value at ``index``, kept inside [min_value, max_value].

        Int grids are exact integers. A Float grid value is computed twice, in binary
        floating point (as KerasTuner does) and in decimal on the numbers the user typed,
        and the one with the shorter repr wins: ``0 + 3 * 0.2`` gives 0.6, not
        0.6000000000000001, and ``3 * (1 / 3)`` gives 1.0, not 0.9999999999999999. The two
        differ by an ulp or so, so this only chooses how a value prints.
        """
        m, big, step = self.min_value, self.max_value, self.step
        assert step is not None
        if isinstance(m, int) and isinstance(big, int) and isinstance(step, int):
            return min(max(_grid_formula(self.sampling, index, m, big, step), m), big)
        binary = float(_grid_formula(self.sampling, index, m, big, step))
        with decimal.localcontext(_DECIMAL):
            exact = float(_grid_formula(self.sampling, index, _dec(m), _dec(big), _dec(step)))
        value = min((binary, exact), key=lambda v: len(repr(v)))
        if self.sampling != "log" and abs(value - big) <= 1e-9 * step:
            value = big  # the count's tolerance let in a last point a hair off max_value
        return min(max(value, m), big)

    def _index_of(self, value: float) -> int:
        """The grid index of ``value``: the point itself when it is (within rounding) on the
        grid, else the point below it in index order (KerasTuner truncates the same way)."""
        m, big, step = self.min_value, self.max_value, self.step
        assert step is not None
        n = self._count()
        try:
            if self.sampling == "linear":
                raw = (value - m) / step
            elif self.sampling == "log":
                raw = math.log(value / m, step)
            else:
                raw = math.log((big + m - value) / m, step)
        except (ValueError, ZeroDivisionError):  # log of a value outside the range
            return 0 if self.sampling == "log" else n - 1
        if not math.isfinite(raw):
            return 0 if raw < 0 else n - 1
        nearest = round(raw)
        if 0 <= nearest < n and math.isclose(
            self._value_at(nearest), value, rel_tol=1e-9, abs_tol=1e-12 * step
        ):
            return nearest
        return max(0, min(n - 1, math.floor(raw)))

    def _check_default(self, default: Any) -> None:
        if default is None:
            return
        if not _is_number(default):
            raise ValueError(
                f"`default` of {type(self).__name__} {self.name!r} must be a number, "
                f"received {default!r}."
            )
        if not (self.min_value <= default <= self.max_value):
            raise ValueError(
                f"The default value {default} of {type(self).__name__} {self.name!r} is out "
                f"of range: it must lie in [{self.min_value}, {self.max_value}]."
            )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            min_value=self.min_value,
            max_value=self.max_value,
            step=self.step,
            sampling=self.sampling,
        )
        return config


class Int(Numerical):
    """An integer in [min_value, max_value], both ends included.

    Raises:
        ValueError: min > max, an unknown sampling, log sampling with min <= 0 or
            step <= 1, a bound, step or default that is not integral, or a default
            outside the range.
    """

    def __init__(
        self,
        name: str,
        min_value: int,
        max_value: int,
        step: int | None = None,
        sampling: str | None = "linear",
        default: int | None = None,
        conditions: Sequence[Condition] | None = None,
    ) -> None:
        super().__init__(name, min_value, max_value, step, sampling, default, conditions)
        self.min_value = self._integral(self.min_value, "min_value")
        self.max_value = self._integral(self.max_value, "max_value")
        if self.step is not None:
            self.step = self._integral(self.step, "step")
        elif self.sampling == "linear":
            self.step = 1
        default = plain_scalar(default)
        if default is not None:
            self._check_default(default)
            default = self._integral(default, "default")
        self._default = default

    def _integral(self, value: Any, arg: str) -> int:
        if not _is_number(value) or int(value) != value:
            raise ValueError(
                f"{arg} must be an int, Received: {value!r} of type {type(value).__name__}."
            )
        return int(value)

    @property
    def default(self) -> int:
        return self.min_value if self._default is None else self._default

    @property
    def values(self) -> list[int]:
        if self.step is None:
            return list(range(self.min_value, self.max_value + 1))
        return [int(self._value_at(i)) for i in range(self._count())]

    def prob_to_value(self, prob: float) -> int:
        if self.step is None:
            # Sample [min, max + 1) and truncate so max_value gets a full-width bucket;
            # clamped because pow() rounding can land a hair outside at either end.
            value = int(_sample(prob, self.min_value, self.max_value + 1, self.sampling))
            return min(max(value, self.min_value), self.max_value)
        return int(self._value_at(prob_to_index(prob, self._count())))

    def value_to_prob(self, value: float) -> float:
        if self.step is None:
            return _unsample(value + 0.5, self.min_value, self.max_value + 1, self.sampling)
        return index_to_prob(self._index_of(value), self._count())


class Float(Numerical):
    """A real number in [min_value, max_value], continuous or on a grid of ``step``.

    Raises:
        ValueError: min > max, an unknown sampling, log sampling with min <= 0 or
            step <= 1, or a default outside the range.
    """

    def __init__(
        self,
        name: str,
        min_value: float,
        max_value: float,
        step: float | None = None,
        sampling: str | None = "linear",
        default: float | None = None,
        conditions: Sequence[Condition] | None = None,
    ) -> None:
        super().__init__(name, min_value, max_value, step, sampling, default, conditions)
        self.min_value = float(self.min_value)
        self.max_value = float(self.max_value)
        if self.step is not None:
            self.step = float(self.step)
        default = plain_scalar(default)
        self._check_default(default)
        self._default = None if default is None else float(default)

    @property
    def default(self) -> float:
        return self.min_value if self._default is None else self._default

    @property
    def values(self) -> list[float] | None:
        """The grid when there is a step; None for a continuous range."""
        if self.step is None:
            return None
        return [float(self._value_at(i)) for i in range(self._count())]

    def prob_to_value(self, prob: float) -> float:
        if self.step is None:
            value = _sample(prob, self.min_value, self.max_value, self.sampling)
            return min(max(value, self.min_value), self.max_value)
        return float(self._value_at(prob_to_index(prob, self._count())))

    def value_to_prob(self, value: float) -> float:
        if self.step is None:
            return _unsample(value, self.min_value, self.max_value, self.sampling)
        return index_to_prob(self._index_of(value), self._count())
