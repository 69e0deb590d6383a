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
_LISTED = 10  # how many values `values` lists for an Int on a log scale without a step

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


def _too_big(value: Any, arg: str) -> ValueError | None:
    """The error for an int no float can hold (sampling works in floats), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 1000:
        try:
            float(value)
        except OverflowError:
            return ValueError(
                f"{arg} must be a number a float can hold (at most about 1.8e308), Received: "
                f"an int of {value.bit_length()} bits."
            )
    return None


def _width(low: float, high: float, sampling: str) -> float:
    """What sampling the range computes first: the span (linear) or the ratio (log); for
    reverse_log also high + low. Infinite when it overflows a float."""
    if sampling == "linear":
        return float(high) - float(low)
    ratio = float(high) / float(low)
    return ratio if sampling == "log" else ratio + float(high) + float(low)


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
    # (high + low - value is rounded: at a bound it is not always low or high, and the
    # bound's probability stepped past 0 or 1, or fell short of them, as KerasTuner's does)
    # Compared and summed as floats, as the value is one: an Int's bound past 2**53 is no
    # float, and high + low - value at the top bound came to 0 (math domain error)
    low, high = float(low), float(high)
    if value == low:
        return 0.0
    if value == high or high + low - value <= 0.0:
        return 1.0
    prob = 1 - math.log((high + low - value) / low) / math.log(high / low)
    return min(max(prob, 0.0), 1.0) if low < value < high else prob


class Numerical(HyperParameter):
    """The shared part of Int and Float: range, step, sampling and their checks.

    The checks run in KerasTuner's order, with its messages (those of the conversions
    followed by the hyperparameter they are about, which KerasTuner leaves out, and that
    of a log scale's bound by what to give): the step, then the bounds
    are converted (Int: must be integral; Float: must be finite numbers), then min > max,
    then the sampling name, then log scales with min <= 0, then log scales with
    step <= 1. hpstore adds: a linear step must be positive, and a default must be a
    number inside [min_value, max_value].
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
        super().__init__(name=name, default=None, conditions=conditions)
        which = f"HyperParameters.{type(self).__name__}(name={name!r})"
        where = f"For {which}"
        step = plain_scalar(step)
        if step is not None:  # KerasTuner converts the step first
            step = self._argument(step, "step", which)
        min_value = self._argument(plain_scalar(min_value), "min_value", which)
        max_value = self._argument(plain_scalar(max_value), "max_value", which)
        if min_value > max_value:
            raise ValueError(
                f"{where}, min_value {min_value} is greater than the max_value {max_value}."
            )
        sampling = "linear" if sampling is None else sampling
        if not isinstance(sampling, str) or sampling.lower() not in SAMPLINGS:
            raise ValueError(
                f"{where}, sampling must be one of {{'linear', 'log', 'reverse_log'}}. "
                f"Received: sampling={sampling!r}."
            )
        sampling = sampling.lower()
        if sampling in ("log", "reverse_log") and min_value <= 0:
            # (KerasTuner's words, said of 0 too: what to give follows them)
            raise ValueError(
                f"{where}, sampling='{sampling}' does not support negative values, found "
                f"min_value: {min_value}. It takes only values above 0: give a min_value "
                "above 0, or sampling='linear'."
            )
        if sampling in ("log", "reverse_log") and step is not None and step <= 1:
            raise ValueError(
                f"{where}, expected step > 1 with sampling='{sampling}'. Received: step={step}."
            )
        if sampling == "linear" and step is not None and step <= 0:
            raise ValueError(
                f"{where}, expected step > 0 with sampling='linear'. Received: step={step}."
            )
        self.min_value = min_value
        self.max_value = max_value
        self.step = step
        self.sampling = sampling
        if not math.isfinite(_width(min_value, max_value, sampling)):
            what = "max_value - min_value" if sampling == "linear" else "max_value / min_value"
            raise ValueError(
                f"{where}, the range [{min_value}, {max_value}] cannot be sampled with "
                f"sampling='{sampling}': {what} is beyond the largest float."
            )
        if step is not None and not math.isfinite(self._steps()):
            raise ValueError(
                f"{where}, step={step} is too small for the range [{min_value}, {max_value}]: "
                "the grid would have more points than a float can count."
            )
        default = plain_scalar(default)
        if default is not None:
            default = self._argument(default, "default", which)
            if not (min_value <= default <= max_value):
                raise ValueError(
                    f"{where}, the default value {default} is out of range: it must lie in "
                    f"[{min_value}, {max_value}]."
                )
        self._default = default

    def _argument(self, value: Any, arg: str, which: str) -> Any:
        """The argument ``arg`` as :meth:`_convert` makes it.

        Raises:
            ValueError: :meth:`_convert`'s (KerasTuner's words), naming ``which``
                hyperparameter it is about: a hypermodel declares many, in loops.
        """
        try:
            return self._convert(value, arg)
        except ValueError as exc:
            raise ValueError(f"{str(exc).rstrip('.')}, in {which}.") from None

    def _convert(self, value: Any, arg: str) -> Any:
        """``value`` as this type's number (Int: an int; Float: a finite float).

        Raises:
            ValueError: naming ``arg`` and the value.
        """
        raise NotImplementedError

    # -- the grid when there is a step ---------------------------------------------------
    def _steps(self) -> float:
        """How many steps fit in the range (a float; infinite when it overflows)."""
        m, big, step = self.min_value, self.max_value, self.step
        assert step is not None
        if self.sampling == "linear":
            return (big - m) / step
        return math.log(big / m, step)

    def value_count(self) -> int | None:
        """How many values :attr:`values` lists, without listing them (None for a Float
        without a step): a grid of 10**12 points is counted, never built."""
        if self.step is None:
            return None if self.values is None else len(self.values)
        return self._count()

    def _count(self) -> int:
        m, big, step = self.min_value, self.max_value, self.step
        if isinstance(m, int) and isinstance(big, int) and isinstance(step, int):
            # An Int grid is counted in integers: in floats, a range near 2**63 or a step of
            # 10**10 rounds, adding a point off the grid or losing the last ones.
            if self.sampling == "linear":
                return (big - m) // step + 1
            count, point = 1, m * step  # (log and reverse_log: m * step**k <= max)
            while point <= big:
                count, point = count + 1, point * step
            return count
        if self.sampling == "linear":
            # A tolerance keeps Float(0, 1, step=0.2) at six values: 1 // 0.2 is 4.0 in
            # binary floating point, and the seed page promises 1.0 as the last value.
            return int(math.floor(self._steps() + 1e-9)) + 1
        return int(self._steps() + 1e-8) + 1

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
        if self.sampling == "linear" and abs(value - big) <= 1e-9 * step:
            value = big  # the count's tolerance let in a last point a hair off max_value
        return min(max(value, m), big)

    def _index_of(self, value: float) -> float:
        """Where ``value`` sits on the grid, in index units, within [0, n - 1].

        A value on a grid point (within rounding: 0.6 on 0, 0.2, ... is point 3 although
        0.6 / 0.2 is 2.9999999999999996) gives that point's index. Off the grid, as in
        KerasTuner: a linear grid truncates to the point below; a log grid gives the
        fractional index ``log(value / min, step)`` (reverse_log likewise), kept below
        ``n - 0.5`` so that its probability stays under 1.
        """
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
        if self.sampling == "linear":
            return max(0, min(n - 1, math.floor(raw)))
        # past the last grid point but still in range: stay in the last bucket
        return max(0.0, min(n - 0.5 - 1e-9, raw))

    def check_value(self, value: Any) -> Any:
        value = plain_scalar(value)
        try:
            number = self._convert(value, "the value")
        except ValueError:
            # (a Decimal or a Fraction read as a number of the range was refused as if out
            # of it: say what to give instead)
            raise self._not_a_value(value, "" if isinstance(value, (int, float)) else
                                    f" (a {type(value).__name__}: give an int or a "
                                    "float)") from None
        if not self.min_value <= number <= self.max_value:
            raise self._not_a_value(value, " (outside the range)")
        if self.step is not None and not (self._default is not None and number == self._default):
            # (a default off the grid is a value of the space: grid search runs it first,
            # as KerasTuner does, so a trial that ran it must be one any check accepts)
            if (type(number) is int and self.sampling == "linear"
                    and type(self.min_value) is int and type(self.step) is int):
                return self._check_on_int_grid(value, number)
            index = self._index_of(number)
            if index != int(index) or not math.isclose(
                    self._value_at(int(index)), number, rel_tol=1e-9, abs_tol=1e-12):
                past = int(index) + 1 >= self._count()  # in range, past the grid's last point
                raise self._off_grid(value, self._value_at(int(index)),
                                     None if past else self._value_at(int(index) + 1))
            return type(number)(self._value_at(int(index)))
        if number == 0:  # -0.0 is the value 0.0, never a set of values of its own
            return type(number)(0)
        return number

    def _check_on_int_grid(self, value: Any, number: int) -> int:
        """``number`` when a linear grid of integers holds it, checked in integers (in
        floating point, a range wider than 2**53 took most of its own values for points
        off the grid, and a huge one let in a value near a point as that point)."""
        assert isinstance(self.step, int) and isinstance(self.min_value, int)
        below = number - (number - self.min_value) % self.step
        if below == number:
            return number
        above = below + self.step
        raise self._off_grid(value, below, None if above > self.max_value else above)

    def _off_grid(self, value: Any, below: Any, above: Any) -> ValueError:
        """The error for a value in range but between the grid's points ``below`` and
        ``above`` (None: past the grid's last point, ``below``)."""
        if above is None:
            return self._not_a_value(value, f" (not on its grid, which ends at {below!r})")
        return self._not_a_value(
            value, f" (not on its grid; the nearest are {below!r} and {above!r})")

    def _describe_values(self) -> str:
        parts = [f"{self.min_value!r} .. {self.max_value!r}"]
        if self.step is not None and not (isinstance(self, Int) and self.step == 1
                                          and self.sampling == "linear"):
            parts.append(f"step {self.step!r}")
        if self.sampling != "linear":
            parts.append(self.sampling)
        if self._default is not None and self._default != self.min_value:
            parts.append(f"default {self._default!r}")
        return ", ".join(parts)

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
        ValueError: a step, bound or default that is not integral, min > max, an
            unknown sampling, log sampling with min <= 0 or step <= 1, a linear step
            <= 0, or a default outside the range.
    """

    _REPR = (("name", "q"), ("min_value", "r"), ("max_value", "r"), ("step", "r"),
             ("sampling", "r"), ("default", "r"))

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
        if self.step is None and self.sampling == "linear":
            self.step = 1

    def _convert(self, value: Any, arg: str) -> int:
        error = _too_big(value, arg)
        if error is not None:
            raise error
        integral = _is_number(value) and math.isfinite(value) and int(value) == value
        if not integral:
            raise ValueError(
                f"{arg} must be an int, Received: {value!r} of type {type(value)}."
            )
        return int(value)

    @property
    def default(self) -> int:
        return int(self.min_value) if self._default is None else int(self._default)

    @property
    def values(self) -> list[int]:
        """The grid when there is a step (a linear Int always has one, 1 by default).

        On a log or reverse_log scale without a step, the values at the centres of ten
        equal probability buckets, each once, ascending: as KerasTuner lists them (a grid
        search tries these, not the thousand integers of ``Int(2, 1024, sampling="log")``).
        Sampling still reaches every integer; :meth:`every_value` lists them all.
        """
        if self.step is None:
            # p = i * 0.1 + 0.05 exactly as KerasTuner computes it, so both pick the same
            # integers (it differs from (i + 0.5) / 10 in the last bit for some i).
            return sorted({self.prob_to_value(i * 0.1 + 0.05) for i in range(_LISTED)})
        return [int(self._value_at(i)) for i in range(self._count())]

    def listed(self) -> Sequence[int]:
        if self.step is None:
            return self.values  # (ten values)
        return _Grid(self._count(), lambda i: int(self._value_at(i)))

    def every_value(self) -> Sequence[int]:
        """Every integer sampling can give: the grid, or the whole range without a step
        (computed as read: a search counting its configurations stops at its limit)."""
        if self.step is None:
            return range(int(self.min_value), int(self.max_value) + 1)
        if self.sampling == "linear":
            return range(int(self.min_value), int(self.max_value) + 1, int(self.step))
        return self.values

    def prob_to_value(self, prob: float) -> int:
        if self.step is None:
            # Sample [min, max + 1) and truncate so max_value gets a full-width bucket;
            # clamped because pow() rounding can land a hair outside at either end.
            value = int(_sample(prob, self.min_value, self.max_value + 1, self.sampling))
            return int(min(max(value, self.min_value), self.max_value))
        if self.sampling == "linear":  # (the usual Int: _count and _value_at, in integers)
            low, high, step = int(self.min_value), int(self.max_value), int(self.step)
            return min(low + prob_to_index(prob, (high - low) // step + 1) * step, high)
        return int(self._value_at(prob_to_index(prob, self._count())))

    def value_to_prob(self, value: float) -> float:
        if self.step is None:
            return _unsample(value + 0.5, self.min_value, self.max_value + 1, self.sampling)
        return index_to_prob(self._index_of(value), self._count())


class Float(Numerical):
    """A real number in [min_value, max_value], continuous or on a grid of ``step``.

    Raises:
        ValueError: a bound, step or default that is not a finite number, min > max, an
            unknown sampling, log sampling with min <= 0 or step <= 1, a linear step
            <= 0, or a default outside the range.
    """

    _REPR = (("name", "q"), ("min_value", "q"), ("max_value", "q"), ("step", "q"),
             ("sampling", "q"), ("default", "q"))

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

    def _convert(self, value: Any, arg: str) -> float:
        error = _too_big(value, arg)
        if error is not None:
            raise error
        if not _is_number(value) or not math.isfinite(value):
            raise ValueError(
                f"{arg} must be a finite number, Received: {value!r} of type {type(value)}."
            )
        return float(value)

    @property
    def default(self) -> float:
        return self.min_value if self._default is None else self._default

    @property
    def values(self) -> list[float] | None:
        """The grid when there is a step; None for a continuous range."""
        if self.step is None:
            return None
        return [float(self._value_at(i)) for i in range(self._count())]

    def listed(self) -> Sequence[float] | None:
        return self.every_value()

    def every_value(self) -> Sequence[float] | None:
        """The grid (computed as read), or None for a continuous range."""
        return None if self.step is None else _Grid(self._count(),
                                                    lambda i: float(self._value_at(i)))

    def prob_to_value(self, prob: float) -> float:
        if self.step is None:
            value = _sample(prob, self.min_value, self.max_value, self.sampling)
            return min(max(value, self.min_value), self.max_value)
        return float(self._value_at(prob_to_index(prob, self._count())))

    def value_to_prob(self, value: float) -> float:
        if self.step is None:
            return _unsample(value, self.min_value, self.max_value, self.sampling)
        return index_to_prob(self._index_of(value), self._count())


class _Grid(Sequence[Any]):
    """A grid's points, each computed when read: a search that counts its configurations
    up to a limit never builds a list of 10**12 values."""

    def __init__(self, count: int, at: Any) -> None:
        self._len, self._at = count, at

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self._at(i) for i in range(*index.indices(self._len))]
        i = index + self._len if index < 0 else index
        if not 0 <= i < self._len:
            raise IndexError(index)
        return self._at(i)
