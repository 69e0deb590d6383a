"""Grid search: every combination of values, in KerasTuner's order, each exactly once."""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterator
from typing import Any

from hpstore.hyperparameters import Float, HyperParameter, index_to_prob
from hpstore.hyperparameters.enumerate import iter_configurations
from hpstore.oracle import Oracle, values_key

FLOAT_SAMPLES = 10


def grid_values(hp: HyperParameter) -> Iterator[Any]:
    """The values of ``hp`` in grid order: its default first, then the others in order,
    each computed as it is reached (``Int(0, 2**62)`` is never listed).

    A Float without a step has no finite list; it contributes its default and ten values
    at the centres of ten equal probability buckets (so log sampling spreads them on a
    log scale).
    """
    values = hp.listed()
    if values is None:
        assert isinstance(hp, Float)
        values = [hp.prob_to_value(index_to_prob(i, FLOAT_SAMPLES)) for i in range(FLOAT_SAMPLES)]
    default = hp.default
    yield default
    yield from (v for v in values if not _same(v, default))


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


class GridSearchOracle(Oracle):
    """Runs every combination of the space's values once.

    The first trial takes every default; each hyperparameter's values are tried as
    [default] + the rest, the last hyperparameter in the space changing fastest.
    Conditional hyperparameters enter the grid only where their parent's value makes them
    active. The grid position is stored with each trial it creates, so a resumed or shared
    search never repeats or skips a point. When the grid is used up the search is IDLE
    while trials still run (they may add hyperparameters, or fail and be retried) and
    STOPPED after.

    Takes the arguments of :class:`hpstore.Oracle`; ``max_trials`` defaults to no limit.

    Raises:
        as :class:`hpstore.Oracle` (a bad argument, a search made otherwise, a file that
        cannot be used).
    """

    decides_quickly = True  # no model to fit: decided inside the recording transaction

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        version = self._space_version
        state = self._state_object("grid")
        # Every point before `position` has been run (or is running). A grown space adds
        # points among them, so it is walked again from the start, run points skipped.
        start = state.get("position", 0) if state.get("space_version") == version else 0
        combos = self._combinations(version, start)
        position, settled = start, True
        for index, values in enumerate(combos, start):
            key = values_key(values)
            if self.project.has_values(key):
                if settled:
                    position = index + 1
                continue
            if self.is_taken(values, key):
                # A running trial will complete these values when it declares the
                # hyperparameters it is missing; they stay ahead of the position in case
                # it ends without them.
                settled = False
                continue
            if settled:
                position = index + 1
            self.set_state_value("grid", {"position": position, "space_version": version})
            self._local.grid_cursor = (version, index + 1, combos)
            return {"status": "RUNNING", "values": values}
        self.set_state_value("grid", {"position": position, "space_version": version})
        return self.exhausted()

    def _combinations(self, version: int, start: int) -> Iterator[dict[str, Any]]:
        """The grid's points from ``start`` on. The walk this process left off is taken up
        again, only the points other processes took since are stepped over: walking from
        the first point at every trial made a large grid's trials ever slower. (One walk
        per thread: threads sharing the oracle never advance one walk together.)"""
        cursor = getattr(self._local, "grid_cursor", None)
        self._local.grid_cursor = None  # (until a point is handed out: a failure walks afresh)
        if cursor is not None and cursor[0] == version and cursor[1] <= start:
            _, at, combos = cursor
        else:
            at, combos = 0, iter_configurations(self._space.space, order=grid_values)
        collections.deque(itertools.islice(combos, start - at), maxlen=0)  # (stepped over)
        return combos
