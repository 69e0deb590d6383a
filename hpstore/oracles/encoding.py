"""How the Bayesian oracle sees configurations: each as a row of numbers in the unit cube,
one at a time (the stored trials) or in bulk (thousands of candidates per decision).

Each hyperparameter is one column holding its ``value_to_prob`` (log-scaled ones on the log
scale, discrete ones at the centre of their bucket), except an unordered Choice of more
than two values: one column per value (one-hot), so that no order is assumed between them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hpstore.hyperparameters import Choice, Fixed, HyperParameter
from hpstore.hyperparameters.numerical import Numerical
from hpstore.store.rows import decode_values

TOP = 1.0 - 1e-9  # probabilities live in [0, 1)
_LOOKUP_LIMIT = 1024  # discrete values mapped exactly; a longer list is treated as continuous


class Dimension:
    """One tunable hyperparameter: how a point of [0, 1) becomes its value (in bulk), and
    the model's input columns for it."""

    def __init__(self, hp: HyperParameter, column: int) -> None:
        self.hp = hp
        self.column = column
        # counted before listed: a grid of 10**9 points is treated as continuous, not built
        count = hp.value_count() if isinstance(hp, Numerical) else None
        values = hp.values if count is None or count <= _LOOKUP_LIMIT else None
        self.values: list[Any] | None = None
        if values is not None and len(values) <= _LOOKUP_LIMIT:
            # The values in the order of their points, and the point where each begins:
            # prob_to_value is monotone, so a bisection between neighbours finds it.
            centres = [hp.value_to_prob(v) for v in values]
            order = sorted(range(len(values)), key=centres.__getitem__)
            self.values = [values[i] for i in order]
            self.centres = np.array([centres[i] for i in order])
            self.edges = np.array([0.0] + [self._edge(j) for j in range(1, len(order))])
        self.onehot = (isinstance(hp, Choice) and not hp.ordered
                       and self.values is not None and len(self.values) > 2)
        self.width = len(self.values) if self.onehot else 1  # type: ignore[arg-type]
        # An inactive hyperparameter is seen at its default, as KerasTuner encodes it.
        self.inactive = self._feature_of(hp.default)

    def _edge(self, j: int) -> float:
        low, high = float(self.centres[j - 1]), float(self.centres[j])
        target = self.values[j]  # type: ignore[index]
        for _ in range(40):
            middle = 0.5 * (low + high)
            if _same(self.hp.prob_to_value(middle), target):
                high = middle
            else:
                low = middle
        return high

    def _feature_of(self, value: Any) -> np.ndarray:
        row = np.zeros(self.width)
        if self.onehot:
            index = next((i for i, v in enumerate(self.values or []) if _same(v, value)), None)
            if index is None:
                index = next(i for i, v in enumerate(self.values or [])
                             if _same(v, self.hp.default))
            row[index] = math.sqrt(0.5)  # two values sit 1 apart, as the ends of a range
            return row
        try:
            row[0] = self.hp.value_to_prob(value)
        except (ValueError, TypeError):  # a value the current definition does not hold
            row[0] = self.hp.value_to_prob(self.hp.default)
        return np.clip(row, 0.0, TOP)

    def index(self, probs: np.ndarray) -> np.ndarray:
        """The index in ``self.values`` each point decodes to."""
        return np.searchsorted(self.edges, probs, side="right") - 1

    def features(self, probs: np.ndarray, index: np.ndarray | None) -> np.ndarray:
        if self.onehot:
            assert index is not None
            out = np.zeros((len(probs), self.width))
            out[np.arange(len(probs)), index] = math.sqrt(0.5)
            return out
        if index is not None:
            return self.centres[index][:, None]
        return probs[:, None]  # continuous: the point is the value


class Encoding:
    """How configurations become the model's inputs, one at a time or in bulk.

    Each hyperparameter is one column holding its ``value_to_prob`` (log-scaled ones on the
    log scale, discrete ones at the centre of their bucket), except an unordered Choice of
    more than two values: one column per value (one-hot), so that no order is assumed
    between them. An inactive hyperparameter holds its default's column.
    """

    def __init__(self, space: list[HyperParameter]) -> None:
        self.space = space
        self.dims: list[Dimension] = []
        column = 0
        for hp in space:
            if not isinstance(hp, Fixed):
                self.dims.append(Dimension(hp, column))
                column += self.dims[-1].width
        self.width = column
        self.groups = np.concatenate(
            [np.full(d.width, i) for i, d in enumerate(self.dims)]).astype(int)
        self.onehot = np.array([d.onehot for d in self.dims], dtype=bool)
        self.continuous = [i for i, d in enumerate(self.dims)  # (a Float with no step)
                           if isinstance(d.hp, Numerical) and d.hp.value_count() is None]
        names = [hp.name for hp in space]
        # Bulk decoding follows conditions on parents it can decode in bulk; a space with
        # other conditions (or a name used twice) is decoded one point at a time.
        by_name = {d.hp.name: d for d in self.dims}
        fixed = {hp.name for hp in space if isinstance(hp, Fixed)}

        def decodable(condition: Any) -> bool:
            parent = getattr(condition, "name", None)
            dim = by_name.get(parent) if isinstance(parent, str) else None
            return parent in fixed or (dim is not None and dim.values is not None)

        self.bulk = len(set(names)) == len(names) and all(
            decodable(c) for hp in space for c in hp.conditions)
        self._rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    # -- one configuration -----------------------------------------------------------------
    def features(self, values: dict[str, Any]) -> np.ndarray:
        row = np.empty(self.width)
        for d in self.dims:
            if d.hp.name in values:
                row[d.column:d.column + d.width] = d._feature_of(values[d.hp.name])
            else:
                row[d.column:d.column + d.width] = d.inactive
        return row

    def probs(self, values: dict[str, Any]) -> np.ndarray:
        """The point in [0, 1)^d that decodes to ``values`` (inactive ones at their
        default)."""
        row = np.empty(len(self.dims))
        for i, d in enumerate(self.dims):
            try:
                row[i] = d.hp.value_to_prob(values.get(d.hp.name, d.hp.default))
            except (ValueError, TypeError):
                row[i] = d.hp.value_to_prob(d.hp.default)
        return np.clip(row, 0.0, TOP)

    def history(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(features, point) of a stored trial's values, kept for the next decision."""
        found = self._rows.get(text)
        if found is None:
            values = decode_values(text)
            found = self._rows[text] = (self.features(values), self.probs(values))
        return found

    def decode(self, row: np.ndarray) -> dict[str, Any]:
        """The values a point stands for (inactive hyperparameters left out)."""
        probs = {d.hp.name: float(p) for d, p in zip(self.dims, row)}
        values: dict[str, Any] = {}
        for hp in self.space:  # in order, so a parent is decided before its children
            if hp.name in values or not all(c.is_active(values) for c in hp.conditions):
                continue
            values[hp.name] = (hp.value if isinstance(hp, Fixed)
                               else hp.prob_to_value(probs[hp.name]))
        return values  # plain Python values already (Fixed ones are stored JSON-normalised)

    # -- many points at once ---------------------------------------------------------------
    def bulk_features(self, points: np.ndarray) -> np.ndarray:
        """The model's inputs for each row of ``points`` (exactly what :meth:`features`
        gives for the decoded values, but for long lists of values)."""
        if not self.bulk:
            return np.array([self.features(self.decode(p)) for p in points])
        m = len(points)
        out = np.empty((m, self.width))
        active: dict[str, np.ndarray] = {}
        chosen: dict[str, np.ndarray] = {}  # name -> index into its values
        fixed = {hp.name: hp.value for hp in self.space if isinstance(hp, Fixed)}
        column_of = {d.hp.name: (i, d) for i, d in enumerate(self.dims)}
        for hp in self.space:
            mask = np.ones(m, dtype=bool)
            for c in hp.conditions:
                parent = c.name  # type: ignore[attr-defined]
                if parent not in active:  # a parent later in the space is not active yet
                    mask[:] = False
                elif parent in fixed:
                    mask &= active[parent] & c.is_active({parent: fixed[parent]})
                else:
                    values = column_of[parent][1].values or []
                    allowed = np.array([c.is_active({parent: v}) for v in values], dtype=bool)
                    mask &= active[parent] & allowed[chosen[parent]]
            active[hp.name] = mask
            if isinstance(hp, Fixed):
                continue
            i, d = column_of[hp.name]
            index = d.index(points[:, i]) if d.values is not None else None
            cols = d.features(points[:, i], index)
            cols[~mask] = d.inactive
            out[:, d.column:d.column + d.width] = cols
            if index is not None:
                chosen[hp.name] = index
        return out


def _same(a: Any, b: Any) -> bool:
    return (type(a) is type(b) and a == b) or (
        isinstance(a, (int, float)) and isinstance(b, (int, float))
        and not isinstance(a, bool) and not isinstance(b, bool) and a == b)
