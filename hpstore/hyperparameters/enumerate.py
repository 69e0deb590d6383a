"""Every set of values of a finite space, conditions respected, in a chosen order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from hpstore.hyperparameters.base import HyperParameter


def _default_order(hp: HyperParameter) -> Sequence[Any] | None:
    # every value sampling can reach, so a random search knows when its space is used up
    return hp.every_value()


def iter_configurations(
    space: Sequence[HyperParameter],
    order: Callable[[HyperParameter], Iterable[Any] | None] = _default_order,
) -> Iterator[dict[str, Any]]:
    """Yield each set of active values; the last hyperparameter in ``space`` changes fastest.

    ``order(hp)`` lists the values of ``hp`` in the order to try them (None: infinite,
    which stops the enumeration with a ValueError).

    Raises:
        ValueError: an active hyperparameter has infinitely many values.
    """
    space = list(space)

    def walk(i: int, values: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if i == len(space):
            yield dict(values)
            return
        hp = space[i]
        active = all(c.is_active(values) for c in hp.conditions)
        if not active or hp.name in values:
            yield from walk(i + 1, values)
            return
        options = order(hp)
        if options is None:
            raise ValueError(f"{hp.name!r} has infinitely many values; give it a step.")
        for value in options:
            values[hp.name] = value
            yield from walk(i + 1, values)
        del values[hp.name]

    yield from walk(0, {})


def count_configurations(space: Sequence[HyperParameter], limit: int) -> int | None:
    """How many sets of values the space has, or None if infinite or more than ``limit``."""
    n = 0
    try:
        for _ in iter_configurations(space):
            n += 1
            if n > limit:
                return None
    except ValueError:
        return None
    return n
