"""Grid search: every combination of values, in KerasTuner's order, each exactly once."""

from __future__ import annotations

import itertools
from typing import Any

from hpstore.hyperparameters import Float, HyperParameter, index_to_prob
from hpstore.hyperparameters.enumerate import iter_configurations
from hpstore.oracle import Oracle, values_key

FLOAT_SAMPLES = 10


def grid_values(hp: HyperParameter) -> list[Any]:
    """The values of ``hp`` in grid order: its default first, then the others in order.

    A Float without a step has no finite list; it contributes its default and ten values
    at the centres of ten equal probability buckets (so log sampling spreads them on a
    log scale).
    """
    values = hp.values
    if values is None:
        assert isinstance(hp, Float)
        values = [hp.prob_to_value(index_to_prob(i, FLOAT_SAMPLES)) for i in range(FLOAT_SAMPLES)]
    rest = [v for v in values if not _same(v, hp.default)]
    return [hp.default, *rest]


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
    """

    decides_quickly = True  # no model to fit: decided inside the recording transaction

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        version = self._space_version
        state = self._state_object("grid")
        # Every point before `position` has been run (or is running). A grown space adds
        # points among them, so it is walked again from the start, run points skipped.
        start = state.get("position", 0) if state.get("space_version") == version else 0
        combos = iter_configurations(self._space.space, order=grid_values)
        position, settled = start, True
        for index, values in enumerate(itertools.islice(combos, start, None), start):
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
            return {"status": "RUNNING", "values": values}
        self.set_state_value("grid", {"position": position, "space_version": version})
        return self.exhausted()
