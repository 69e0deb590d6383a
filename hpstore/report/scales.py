"""Numbers, ticks, axes and colours of the report's plots."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

SCORE_STOPS = ["#440154", "#3b528b", "#21918c", "#5ec962", "#d8e219"]  # best .. worst
CHAR_PX = 6.3  # width of one character of the 11px plot font, for fitting labels
_LEAST = 5e-324  # the least positive float: the lowest end a log axis may have


# -- values, numbers and scales --------------------------------------------------------------

def finite(value: Any) -> float | None:
    """``value`` as a float if it is a finite real number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def real(value: Any) -> float | None:
    """``value`` as a float if it is a real number (not a bool), infinite ones included
    (a score of -inf ranks first when lower is better), else None (NaN too)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return float(value)


def value_key(value: Any) -> str:
    """A key telling apart 1, 1.0-as-text "1" and True, for categories."""
    return json.dumps(value, sort_keys=True, default=str)


def fmt_value(value: Any) -> str:
    """A hyperparameter value or score as a person reads it."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def fmt_tick(value: float, step: float = 0.0) -> str:
    """A tick label with just the digits that tell it from its neighbours ``step`` away."""
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    if step <= 0 or value == 0:
        return f"{value:.3g}"
    digits = math.floor(math.log10(abs(value))) - math.floor(math.log10(step) + 1e-9) + 1
    return f"{value:.{min(max(digits, 1), 12)}g}"


def fit(label: str, chars: float) -> str:
    """``label`` cut to ``chars`` characters, with an ellipsis when cut."""
    chars = max(int(chars), 2)
    return label if len(label) <= chars else label[:chars - 1] + "\u2026"


def nice_ticks(lo: float, hi: float, count: int, integer: bool = False) -> list[float]:
    """About ``count`` round values (1, 2 or 5 times a power of ten apart) in [lo, hi];
    whole numbers only when ``integer``."""
    if not hi > lo:
        return [lo]
    # (each end divided first: hi - lo may pass the float range, or round to nothing)
    raw = hi / max(count, 1) - lo / max(count, 1)
    mag = 10.0 ** math.floor(math.log10(raw)) if raw > 0 and math.isfinite(raw) else 0.0
    if not 0 < mag < math.inf:  # beyond what a round step can say: the ends alone
        return [lo, hi]
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw * 0.75)
    step = max(step, 1.0) if integer else step
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    return [float(f"{i * step:.12g}") for i in range(first, last + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten in [lo, hi], with 2 and 5 times them when there are few."""
    # (the powers a float holds: 10.0 ** 309 overflows, 10.0 ** -324 is 0)
    decades = range(max(math.floor(math.log10(lo)), -323),
                    min(math.ceil(math.log10(hi)), 308) + 1)
    inside = [v for v in (10.0**k for k in decades) if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9)]
    if len(inside) < 3:
        inside = sorted(v for k in decades for v in (10.0**k, 2 * 10.0**k, 5 * 10.0**k)
                        if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9))
    return inside if len(inside) >= 2 else nice_ticks(lo, hi, 4)


def thin(values: list[float], count: int) -> list[float]:
    """Every k-th value, so that at most about ``count`` remain."""
    k = max(1, math.ceil(len(values) / max(count, 1)))
    return values[::k]


class Axis(NamedTuple):
    """Maps values to 0..1 along a plot axis: linear, log or evenly spaced categories."""

    kind: str = "linear"  # "linear", "log" or "category"
    lo: float = 0.0
    hi: float = 1.0
    keys: Sequence[str] = ()  # value_key of each category, in order
    labels: Sequence[str] = ()
    integer: bool = False  # ticks on whole numbers only

    def unit(self, value: Any) -> float | None:
        """Where ``value`` falls (0 to 1 inside the axis, beyond for values outside it), or
        None for a value the axis cannot place (missing, NaN, not positive on a log axis)."""
        if self.kind == "category":
            key = value_key(value)
            return (self.keys.index(key) + 0.5) / len(self.keys) if key in self.keys else None
        v, lo, hi = finite(value), self.lo, self.hi
        if v is None and self.kind != "log" and real(value) is not None:
            return 2.0 if value > 0 else -1.0  # an infinite score: beyond its edge
        if v is None or (self.kind == "log" and v <= 0):
            return None
        if self.kind == "log":
            v, lo, hi = math.log10(v), math.log10(lo), math.log10(hi)
        if hi <= lo:
            return 0.5
        if math.isinf(hi - lo):  # ends near the float range: halves, which cannot overflow
            return (v / 2 - lo / 2) / (hi / 2 - lo / 2)
        return (v - lo) / (hi - lo)

    def ticks(self, count: int = 5) -> list[tuple[float, str]]:
        """(position 0..1, label) of the tick marks."""
        if self.kind == "category":
            return [((i + 0.5) / len(self.keys), lab) for i, lab in enumerate(self.labels)]
        if self.kind == "log":
            return [(u, f"{v:g}") for v in thin(log_ticks(self.lo, self.hi), count)
                    if (u := self.unit(v)) is not None]
        values = nice_ticks(self.lo, self.hi, count, self.integer)
        step = values[1] - values[0] if len(values) > 1 else 0.0
        return [(u, fmt_tick(v, step)) for v in values if (u := self.unit(v)) is not None]


def category_axis(values: Iterable[Any]) -> Axis:
    keys: dict[str, str] = {}
    for v in values:
        keys.setdefault(value_key(v), fmt_value(v))
    return Axis("category", keys=list(keys), labels=list(keys.values()))


def numeric_axis(lo: float, hi: float, log: bool = False, pad: float = 0.0,
                 integer: bool = False) -> Axis:
    """A linear or log axis over [lo, hi], widened by ``pad`` of its length each side."""
    if hi <= lo:  # one value: give it some room
        room = abs(lo) * 0.1 or 1.0
        lo, hi = (lo / 2, lo * 2) if log else (lo - room, hi + room)
    elif log:
        widen = (hi / lo) ** pad  # (infinite for ends far apart: clamped below)
        lo, hi = lo / widen, hi * widen
    else:
        room = (hi / 2 - lo / 2) * (2 * pad)  # (hi - lo may pass the float range)
        lo, hi = max(lo - room, -sys.float_info.max), min(hi + room, sys.float_info.max)
    if log:  # within the positive floats (a range ending near either end of them)
        lo, hi = max(lo, _LEAST), min(hi, sys.float_info.max)
    return Axis("log" if log else "linear", lo, hi, integer=integer)


def axis_for(class_name: str, config: dict[str, Any], seen: Sequence[Any]) -> Axis:
    """The axis of one hyperparameter: from its definition, widened by the values seen."""
    numbers = [v for v in map(finite, seen) if v is not None]
    if class_name in ("Int", "Float") and finite(config.get("min_value")) is not None:
        lo = min([config["min_value"], *numbers])
        hi = max([config["max_value"], *numbers])
        return numeric_axis(lo, hi, config.get("sampling") == "log" and lo > 0, 0.04,
                            integer=class_name == "Int")
    if class_name == "Choice":
        return category_axis([*config.get("values", []), *seen])
    if class_name == "Boolean":
        return category_axis([False, True, *seen])
    if class_name == "Fixed":
        return category_axis([config.get("value"), *seen])
    if seen and len(numbers) == len(seen):  # not in the space (e.g. tuner/epochs)
        return numeric_axis(min(numbers), max(numbers), pad=0.04,
                            integer=all(isinstance(v, int) for v in seen))
    return category_axis(seen)


def quantile(values: Sequence[float], q: float) -> float:
    pos = (len(values) - 1) * q
    low = math.floor(pos)
    return values[low] + (values[min(low + 1, len(values) - 1)] - values[low]) * (pos - low)


def score_axis(scores: Sequence[float], direction: str) -> Axis:
    """A linear axis for scores. A few very bad scores that would squeeze the others into a
    quarter of the height are left beyond it (drawn at its edge), as are infinite ones."""
    values = sorted(v for v in scores if math.isfinite(v))
    if not values:
        return numeric_axis(0.0, 1.0)
    kept = values
    if len(values) >= 8:
        q1, q3 = quantile(values, 0.25), quantile(values, 0.75)
        spread = 4 * max(q3 - q1, 1e-12)
        trimmed = ([v for v in values if v <= q3 + spread] if direction == "min"
                   else [v for v in values if v >= q1 - spread])
        if 0 < trimmed[-1] - trimmed[0] < 0.25 * (values[-1] - values[0]):
            kept = trimmed
    return numeric_axis(kept[0], kept[-1], pad=0.06)


def score_colour(fraction: float) -> str:
    """Colour for a score ranked ``fraction`` of the way from the best (0) to the worst (1)."""
    pos = min(max(fraction, 0.0), 1.0) * (len(SCORE_STOPS) - 1)
    i = min(int(pos), len(SCORE_STOPS) - 2)
    a, b = (tuple(int(c[k:k + 2], 16) for k in (1, 3, 5)) for c in SCORE_STOPS[i:i + 2])
    return "#" + "".join(f"{round(x + (y - x) * (pos - i)):02x}" for x, y in zip(a, b))


# -- what the report shows, read from the file -----------------------------------------------
