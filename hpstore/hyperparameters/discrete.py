"""Boolean, Fixed and Choice: hyperparameters with a short list of values."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterable, Mapping, Sequence, Set
from typing import Any

from hpstore.hyperparameters.base import (
    Condition,
    HyperParameter,
    _same,
    index_to_prob,
    plain_scalar,
    prob_to_index,
    to_jsonable,
    unicode_problem,
)
from hpstore.rendering import reads_as_a_number

_CHOICE_TYPES = (int, float, str, bool)


_SHOWN_CHOICES = 20  # values a summary line lists before "... (n values)"


def _shown(value: Any) -> str:
    """A value for a summary line: plain words bare (``relu``); anything a reader could
    misread (empty, commas, spaces at the ends, a long text, a number as text) in repr."""
    if isinstance(value, str) and value and len(value) <= 40 and value.strip() == value \
            and value.isprintable() and not any(c in value for c in ",;'\"") \
            and not reads_as_a_number(value) and value not in ("None", "True", "False"):
        return value
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"


def _key(value: Any) -> tuple[bool, Any]:
    """A dict key that holds exactly when ``_same`` does: Python's equality and hash, with
    bools kept apart from numbers (True == 1 == 1.0 in Python, but a Choice of ints does
    not hold True). Equal ints and floats share a key, as they are ``_same``."""
    return isinstance(value, bool), value


def _position(positions: dict[tuple[bool, Any], int], value: Any) -> int | None:
    """Where ``value`` is among a Choice's values, or None (an unhashable value is in none)."""
    try:
        return positions.get(_key(value))
    except TypeError:
        return None


class Boolean(HyperParameter):
    """True or False.

    Raises:
        ValueError: the default is not a Python bool.
    """

    _REPR = (("name", "d"), ("default", "r"))

    def __init__(
        self, name: str, default: bool = False, conditions: Sequence[Condition] | None = None
    ) -> None:
        default = plain_scalar(default)
        if not isinstance(default, bool):
            raise ValueError(
                f"`default` must be a Python boolean. You passed: default={default!r} "
                f"(type {type(default).__name__}) for Boolean {name!r}."
            )
        super().__init__(name=name, default=default, conditions=conditions)

    @property
    def values(self) -> list[bool]:
        return [True, False]

    def _describe_values(self) -> str:
        return f"True, False, default {self.default}"

    def check_value(self, value: Any) -> bool:
        value = plain_scalar(value)
        if not isinstance(value, bool):
            raise self._not_a_value(value, " (give true or false)")
        return value

    def prob_to_value(self, prob: float) -> bool:
        return bool(prob >= 0.5)

    def value_to_prob(self, value: Any) -> float:
        return 0.75 if value else 0.25


class Fixed(HyperParameter):
    """A value that is not tuned; it may be anything JSON can hold.

    The value is kept in the form it has after a JSON round trip (tuples become lists,
    numpy scalars become Python numbers), which is the form a resumed search reads back.

    Raises:
        NotJSONSerializableError (a ValueError): JSON cannot hold the value.
    """

    _REPR = (("name", "r"), ("value", "r"))

    def __init__(
        self, name: str, value: Any, conditions: Sequence[Condition] | None = None
    ) -> None:
        value = to_jsonable(value, what=f"The value of Fixed {name!r},")
        super().__init__(name=name, default=value, conditions=conditions)
        self.value = value

    @property
    def values(self) -> list[Any]:
        return [self.value]

    def prob_to_value(self, prob: float) -> Any:
        return self.value

    def check_value(self, value: Any) -> Any:
        try:
            given = to_jsonable(value)
        except ValueError:
            raise self._not_a_value(value, " (it is fixed)") from None
        if isinstance(given, (list, dict)) or isinstance(self.value, (list, dict)):
            same = json.dumps(given, sort_keys=True) == json.dumps(self.value, sort_keys=True)
        else:
            same = _same(given, self.value)
        if not same:
            raise self._not_a_value(value, " (it is fixed)")
        # (a list or a dict of its own: the caller's values must not be this definition)
        return copy.deepcopy(self.value) if type(self.value) in (list, dict) else self.value

    def _describe_values(self) -> str:
        return _shown(self.value)

    def value_to_prob(self, value: Any) -> float:
        return 0.5

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["default"]
        config["value"] = self.value
        return config


class Choice(HyperParameter):
    """One value out of a list of int, float, str or bool values (None may be one of them).

    Raises:
        ValueError: ``values`` is empty, the default is not among them, ``ordered=True``
            for values that are not numbers, or a float value is NaN or infinite.
        TypeError: the values mix types (int with float counts as mixed), a value is not
            int, float, str, bool or None, or ``ordered`` is not True, False or None.
    """

    _REPR = (("name", "q"), ("values", "r"), ("ordered", "r"), ("default", "r"))

    def __init__(
        self,
        name: str,
        values: Sequence[Any],
        ordered: bool | None = None,
        default: Any = None,
        conditions: Sequence[Condition] | None = None,
    ) -> None:
        super().__init__(name=name, default=None, conditions=conditions)
        if values is None:  # (as empty values: KerasTuner's ValueError, which code catches)
            raise ValueError(f"`values` must be provided for `Choice` {name!r}: give a "
                             "list of the values to choose from.")
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise TypeError(
                f"`values` of Choice {name!r} must be a list of values, received {values!r}."
            )
        if isinstance(values, (Set, Mapping)):
            # a set's order (and so the default, the first value) changes from one process
            # to the next with Python's hash seed: another worker would find another space
            raise TypeError(
                f"`values` of Choice {name!r} must be a list, in the order to keep, "
                f"received a {type(values).__name__} ({values!r}): give sorted(...) of "
                "it, or a list in the order you want.")
        values = [plain_scalar(v) for v in values]
        if not values:
            raise ValueError("`values` must be provided for `Choice`.")
        types = {type(v) for v in values if v is not None}
        if len(types) > 1:
            shown = ", ".join(sorted(str(t) for t in types))
            raise TypeError(
                "A `Choice` can contain only one type of value, found values: "
                f"{values} with types {{{shown}}}."
            )
        kind = next(iter(types), type(None))
        if types and kind not in _CHOICE_TYPES:
            raise TypeError(
                "A `Choice` can contain only `int`, `float`, `str`, or `bool`, "
                f"found values: {values} with types: {kind}."
            )
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(
                    f"Choice {name!r} holds {v!r}; NaN and infinite values cannot be stored."
                )
            problem = unicode_problem(v) if isinstance(v, str) else None
            if problem:
                raise ValueError(f"Choice {name!r} holds {v!r}, which cannot be stored: {problem}.")
        positions: dict[tuple[bool, Any], int] = {}
        for i, v in enumerate(values):
            # setdefault keeps the first position: one hashed look-up per value, so a
            # Choice of a million values builds in linear time
            if positions.setdefault(_key(v), i) != i:
                raise ValueError(f"Choice {name!r} lists the value {v!r} more than once.")
        numeric = bool(types) and types <= {int, float, bool} and None not in values
        ordered = plain_scalar(ordered)
        if ordered is not None and not isinstance(ordered, bool):
            # ("false", a truthy string, ordered the values without a word)
            raise TypeError(
                f"`ordered` of Choice {name!r} must be True, False or None (None: ordered "
                f"when the values are numbers), received {ordered!r}.")
        if ordered is None:
            ordered = numeric
        elif ordered and not numeric:
            raise ValueError(
                f"`ordered` must be `False` for non-numeric types. Choice {name!r} has "
                f"values: {values}."
            )
        default = plain_scalar(default)
        if default is None:
            default = None if _key(None) in positions else values[0]
        else:
            position = _position(positions, default)
            if position is None:
                raise ValueError(
                    "The default value should be one of the choices. You passed: "
                    f"values={values}, default={default!r}"
                )
            # the value as listed: a default of 2.0 among [1, 2] is 2, or a grid would run
            # {c: 2.0} and then {c: 2}, two digests for one set of values
            default = values[position]
        self._values = values
        self._positions = positions
        self.ordered = bool(ordered)
        self._default = default

    @property
    def values(self) -> list[Any]:
        return list(self._values)

    def index(self, value: Any) -> int:
        """Position of ``value`` among the choices (True is not 1 here).

        Raises:
            ValueError: the value is not one of the choices.
        """
        position = _position(self._positions, value)
        if position is None:
            shown = self._values if len(self._values) <= 20 else (
                f"[{', '.join(map(repr, self._values[:20]))}, ...] ({len(self._values)} values)")
            raise ValueError(f"{value!r} is not one of the choices {shown} of {self.name!r}.")
        return position

    def check_value(self, value: Any) -> Any:
        position = _position(self._positions, plain_scalar(value))
        if position is None:
            raise self._not_a_value(value)
        return self._values[position]

    def prob_to_value(self, prob: float) -> Any:
        return self._values[prob_to_index(prob, len(self._values))]

    def value_to_prob(self, value: Any) -> float:
        return index_to_prob(self.index(value), len(self._values))

    def _describe_values(self) -> str:
        shown = [_shown(v) for v in self._values[:_SHOWN_CHOICES]]
        if len(self._values) > _SHOWN_CHOICES:
            shown.append(f"... ({len(self._values):,} values)")
        text = ", ".join(shown)
        if self._values and _key(self.default) != _key(self._values[0]):
            text += f"; default {_shown(self.default)}"
        return text

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(values=list(self._values), ordered=self.ordered)
        return config
