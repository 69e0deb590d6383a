"""Every set of values of a finite space, conditions respected, in a chosen order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from hpstore.hyperparameters.base import HyperParameter

_DONE = object()  # (a value list may hold None)


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
    values: dict[str, Any] = {}
    # One entry per hyperparameter walked so far: the values it has left to try, or None
    # where it is inactive or a repeated name. A recursive walk nested one generator per
    # hyperparameter and hit Python's recursion limit at about 1,000 of them.
    pending: list[Iterator[Any] | None] = []

    def advance() -> bool:
        """Give the deepest hyperparameter with values left its next value, dropping the
        ones used up; False when every one is used up (the walk is over)."""
        while pending:
            options = pending[-1]
            if options is not None:
                name = space[len(pending) - 1].name
                value = next(options, _DONE)
                if value is not _DONE:
                    values[name] = value
                    return True
                values.pop(name, None)  # (absent when it had no value at all)
            pending.pop()
        return False

    while True:
        while len(pending) < len(space):
            hp = space[len(pending)]
            active = all(c.is_active(values) for c in hp.conditions)
            if not active or hp.name in values:
                pending.append(None)
                continue
            options = order(hp)
            if options is None:
                raise ValueError(f"{hp.name!r} has infinitely many values; give it a step.")
            pending.append(iter(options))
            if not advance():
                return
        yield dict(values)
        if not advance():
            return


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
