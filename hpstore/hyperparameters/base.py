"""What every hyperparameter shares: a name, its conditions, and the [0, 1) probability map."""

from __future__ import annotations

import json
import math
import random
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from hpstore.errors import NotJSONSerializableError


def prob_to_index(prob: float, n: int) -> int:
    """Map a probability in [0, 1) onto one of ``n`` equal-width buckets.

    Computed as ``floor(prob / (1 / n))``, not ``floor(prob * n)``: the two differ in the
    last bit at some bucket edges (1/3 of 66 buckets is 21 one way, 22 the other), and
    this is the form KerasTuner uses, so both pick the same bucket for the same draw.
    """
    return min(int(math.floor(prob / (1 / n))), n - 1)


def index_to_prob(index: float, n: int) -> float:
    """The probability at the centre of bucket ``index`` of ``n``: ``(index + 0.5) * (1 / n)``
    (bit for bit as KerasTuner computes it). A log grid may pass a fractional index."""
    return (index + 0.5) * (1 / n)


def to_jsonable(value: Any, what: str = "value") -> Any:
    """Return ``value`` as it will come back from the search file.

    numpy scalars and arrays become Python numbers and lists, tuples become lists and
    dict keys become strings, exactly as a JSON round trip leaves them, so what a user
    reads back after a resume equals what they read before it.

    Raises:
        NotJSONSerializableError: the value (or something inside it) has no JSON form,
            or is a NaN or infinite float, which strict JSON cannot hold.
    """
    if type(value) is dict and _plain_names_and_scalars(value):
        return dict(value)  # what the round trip below gives back, at a fraction of its cost
    try:
        text = json.dumps(_native(value), allow_nan=False, sort_keys=False)
        if "\\ud" in text:  # an escaped surrogate: a character beyond U+FFFF, or a lone one
            json.dumps(_native(value), ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise NotJSONSerializableError(
            f"{what} {value!r} (type {type(value).__name__}) cannot be stored as JSON: "
            f"{exc}. Use str, int, float (finite), bool, None, or lists and dicts of them."
        ) from None
    return json.loads(text)


def _plain_names_and_scalars(values: dict[Any, Any]) -> bool:
    """Whether a JSON round trip gives ``values`` back as they are: ASCII text names, and
    values each a bool, None, ASCII text, an int of at most 64 bits (longer ones may pass
    Python's limit on digits, refused below) or a finite float (repr gives it back bit for
    bit, -0.0 included). A set of hyperparameter values drawn by random search, say."""
    for name, value in values.items():
        if type(name) is not str or not name.isascii():
            return False
        kind = type(value)
        if kind is float:
            if not math.isfinite(value):
                return False
        elif kind is str:
            if not value.isascii():
                return False
        elif kind is int:
            if not -2**63 <= value < 2**63:
                return False
        elif kind is not bool and value is not None:
            return False
    return True


def unicode_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored as UTF-8 (a lone surrogate such as '\\ud800', which
    SQLite, its JSON functions and a terminal cannot hold), or None when it can."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"it holds the lone surrogate {text[exc.start]!r} at position {exc.start}, "
                "which UTF-8 cannot hold")
    return None


def _native(value: Any) -> Any:
    # numpy types are common in user code (np.arange, np.float32 metrics) and json
    # refuses them; .item()/.tolist() give the plain Python value. So is a torch scalar
    # (a value taken from a model: torch.tensor(7)), which .item() gives.
    if hasattr(value, "tolist") and type(value).__module__ == "numpy":
        return value.tolist()
    if type(value).__module__ == "torch" and getattr(value, "ndim", None) == 0:
        return value.item()
    if isinstance(value, dict):
        return {k: _native(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_native(v) for v in value]
    return value


def numpy_scalar(value: Any, kind: str) -> bool:
    """Whether ``value`` is an instance of numpy's scalar type ``kind`` (``"integer"``,
    ``"number"``, ``"bool_"``). False when numpy was never imported, as no value can be one
    then: hpstore's tools start without loading it."""
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, getattr(numpy, kind))


def plain_scalar(value: Any) -> Any:
    """A numpy scalar, or a numpy array or torch tensor of no dimension, as the Python
    scalar it holds (``torch.tensor(7)`` as 7); anything else unchanged."""
    module = type(value).__module__
    if (module == "numpy" or module == "torch") and hasattr(value, "item") and getattr(
            value, "ndim", 0) == 0:
        return value.item()
    return value


class Condition:
    """Base of the conditions that make a hyperparameter active."""

    def is_active(self, values: dict[str, Any]) -> bool:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Condition:
        return cls(**config)


class Parent(Condition):
    """Active while the hyperparameter ``name`` currently holds one of ``values``.

    Raises:
        ValueError: ``values`` is empty.
        TypeError: ``name`` is not a string, or ``values`` mixes types (None may stand
            beside one other type, as it may in a Choice; ints and floats mix).
    """

    def __init__(self, name: str, values: Any) -> None:
        if not isinstance(name, str):
            raise TypeError(f"`parent_name` must be a string, received {name!r}.")
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            values = [values]
        values = [plain_scalar(v) for v in values]
        if not values:
            raise ValueError(f"`parent_values` for parent {name!r} must not be empty.")
        for v in values:
            # what a parent can hold (a Choice's values, a number, a bool), and what the
            # search file stores as JSON
            if v is not None and (not isinstance(v, (int, float, str))
                                  or (isinstance(v, float) and not math.isfinite(v))):
                raise TypeError(
                    f"`parent_values` for parent {name!r} can hold only int, float, str, "
                    f"bool or None values (finite numbers), received {v!r} in {values!r}.")
        # None may join, as in Choice; ints and floats are numbers alike ([0, 0.25] on a
        # Float parent), a bool is not one (True is not 1 here: see _same)
        kinds = {float if type(v) is int else type(v) for v in values if v is not None}
        if len(kinds) > 1:
            shown = ", ".join(sorted({str(type(v)) for v in values if v is not None}))
            raise TypeError(
                "`parent_values` can contain only one type of value, found values: "
                f"{values} with types {{{shown}}}."
            )
        self.name = name
        self.values = values

    def is_active(self, values: dict[str, Any]) -> bool:
        if self.name not in values:
            return False
        current = values[self.name]
        # bool and int compare equal in Python (True == 1); a condition on a Boolean
        # parent must not fire for an Int parent holding 1, so types must agree too.
        return any(_same(current, v) for v in self.values)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "values": list(self.values)}

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Parent)
            and self.name == other.name
            and len(self.values) == len(other.values)
            and all(_same(a, b) for a, b in zip(self.values, other.values))
        )

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"Parent(name={self.name!r}, values={self.values!r})"


def _same(a: Any, b: Any) -> bool:
    """Equality that keeps bools apart from ints (True is not 1 here)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


CONDITION_CLASSES: dict[str, type[Condition]] = {"Parent": Parent}


def condition_from_config(config: dict[str, Any]) -> Condition:
    """Rebuild a condition from ``{"class_name": ..., "config": ...}``.

    Raises:
        ValueError: the class name is not a known condition.
    """
    name = config.get("class_name")
    if name not in CONDITION_CLASSES:
        raise ValueError(
            f"Unknown condition class {name!r}; expected one of {sorted(CONDITION_CLASSES)}."
        )
    return CONDITION_CLASSES[name].from_config(config["config"])


class HyperParameter:
    """One dimension of the search space.

    Subclasses define ``prob_to_value`` and ``value_to_prob``: the map between a
    probability in [0, 1) and a value, which sampling and the Bayesian oracle use.
    """

    def __init__(
        self, name: str, default: Any = None, conditions: Sequence[Condition] | None = None
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"A hyperparameter name must be a non-empty string, received {name!r}."
            )
        problem = unicode_problem(name)
        if problem:
            raise ValueError(f"The hyperparameter name {name!r} cannot be stored: {problem}.")
        self.name = name
        self._default = default
        self.conditions: list[Condition] = list(conditions or [])

    @property
    def default(self) -> Any:
        return self._default

    @property
    def values(self) -> list[Any] | None:
        """Every value this hyperparameter can take, or None when there are infinitely many."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for people: name, type, range or values, and the conditions, such as
        ``lr (Float): 1e-05 .. 0.1, log`` or ``units (Int): 8 .. 64, step 8; when model in
        ['mlp']``."""
        conditions = " and ".join(
            f"{_printable(c.name)} in {c.values!r}" if isinstance(c, Parent) else repr(c)
            for c in self.conditions)
        when = f"; when {conditions}" if conditions else ""
        return f"{_printable(self.name)} ({type(self).__name__}): {self._describe_values()}{when}"

    def _describe_values(self) -> str:
        return f"default {self.default!r}"

    def check_value(self, value: Any) -> Any:
        """``value`` as this hyperparameter holds it, when it is a value it can take (for
        configurations given by hand: enqueued, added, warm-started).

        Raises:
            ValueError: it is not; the message names the hyperparameter and its values.
        """
        raise NotImplementedError

    def _not_a_value(self, value: Any, why: str = "") -> ValueError:
        return ValueError(f"{value!r} is not a value of {self.describe()}{why}.")

    def every_value(self) -> Sequence[Any] | None:
        """Every value sampling can give (None when there are infinitely many).

        Usually ``values``; an Int on a log scale without a step lists ten values in
        ``values`` (for grid search, as KerasTuner does) but samples any integer in range,
        and a search that must know when its space is used up counts all of them.
        """
        return self.values

    def listed(self) -> Sequence[Any] | None:
        """``values``, computed as read: a grid search walks ``Int(0, 2**62)`` without
        making a list of its values."""
        return self.values

    def prob_to_value(self, prob: float) -> Any:
        raise NotImplementedError

    def value_to_prob(self, value: Any) -> float:
        raise NotImplementedError

    def random_sample(self, seed: int | None = None) -> Any:
        """A value drawn uniformly in probability space; the same seed gives the same value."""
        return self.prob_to_value(random.Random(seed).random())

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "default": self.default,
            "conditions": [
                {"class_name": type(c).__name__, "config": c.get_config()} for c in self.conditions
            ],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> HyperParameter:
        config = dict(config)
        config["conditions"] = [
            c if isinstance(c, Condition) else condition_from_config(c)
            for c in config.get("conditions", [])
        ]
        return cls(**config)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and _configs_equal(
            self.get_config(), other.get_config()  # type: ignore[attr-defined]
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.name))

    #: how KerasTuner writes this type's repr: (attribute, quoting) pairs; "q" puts the
    #: value in single quotes, "d" in double quotes, "r" writes it bare
    _REPR: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:
        # KerasTuner's text (`Int(name: 'j', min_value: 1, ...)`), so logs and doctests
        # written against KerasTuner read the same; conditions, which it leaves out, last.
        quotes = {"q": "'", "d": '"', "r": ""}
        parts = [f"{attr}: {quotes[how]}{getattr(self, attr)}{quotes[how]}"
                 for attr, how in self._REPR]
        if self.conditions:
            parts.append(f"conditions: {self.conditions!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


def _printable(name: str) -> str:
    """A name as it is, or quoted when it holds a line break or another control character
    that would break a one-line summary."""
    return name if name.isprintable() else repr(name)


def _configs_equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_configs_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_configs_equal(x, y) for x, y in zip(a, b))
    return _same(a, b)
