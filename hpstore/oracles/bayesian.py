"""Bayesian optimisation with a numpy Gaussian process and a lower-confidence-bound search."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hpstore.hyperparameters import Fixed, HyperParameter
from hpstore.oracle import Oracle, values_key
from hpstore.oracles.gaussian_process import GaussianProcess
from hpstore.store.rows import decode_values

_TOP = 1.0 - 1e-9  # probabilities live in [0, 1)
RANDOM_CANDIDATES = 1000
LOCAL_CANDIDATES = 100
REFINE_ROUNDS = ((0.1, 10), (0.03, 10), (0.01, 5), (0.003, 5), (0.001, 3))
# (radius, points kept) per refinement round: coarse to fine, as a local optimiser would


class BayesianOptimizationOracle(Oracle):
    """Bayesian optimisation: a Gaussian process models the score, and the next trial is
    the point minimising ``mean - beta * std`` (the best optimistic guess).

    Random trials come first, until ``num_initial_points`` (default: three per
    hyperparameter, at least 3) have completed. Values are encoded in [0, 1) through each
    hyperparameter's ``value_to_prob``; an inactive one is encoded at its default. Running
    trials are added to the model at its mean plus one standard deviation, so parallel
    workers spread out; FAILED and INVALID trials are left out. The search never proposes
    a configuration already tried, and is deterministic for a given seed and history.

    Args:
        objective, max_trials (default 10 for a new search), seed, ...: as for
            :class:`hpstore.Oracle`.
        num_initial_points: random trials to complete before the model is used.
        alpha: the noise variance of the model (on normalised scores).
        beta: how much the standard deviation counts: higher explores more.

    Raises:
        ValueError: ``num_initial_points`` below 1, ``alpha`` not positive, ``beta``
            negative.
    """

    default_max_trials = 10

    def __init__(self, objective: Any = None, max_trials: int | None = None,
                 num_initial_points: int | None = None, alpha: float = 1e-4,
                 beta: float = 2.6, seed: int | None = None, hyperparameters: Any = None,
                 allow_new_entries: bool = True, tune_new_entries: bool = True,
                 max_retries_per_trial: int = 0, max_consecutive_failed_trials: int = 3,
                 **kwargs: Any) -> None:
        if num_initial_points is not None and (
                isinstance(num_initial_points, bool) or not isinstance(num_initial_points, int)
                or num_initial_points < 1):
            raise ValueError(f"`num_initial_points` must be an int of at least 1 or None, "
                             f"received {num_initial_points!r}.")
        if not isinstance(alpha, (int, float)) or not alpha > 0 or not math.isfinite(alpha):
            raise ValueError(f"`alpha` must be a positive number, received {alpha!r}.")
        if not isinstance(beta, (int, float)) or not beta >= 0 or not math.isfinite(beta):
            raise ValueError(f"`beta` must be a number of at least 0, received {beta!r}.")
        self.num_initial_points = num_initial_points
        self.alpha = float(alpha)
        self.beta = float(beta)
        super().__init__(objective=objective, max_trials=max_trials,
                         hyperparameters=hyperparameters, allow_new_entries=allow_new_entries,
                         tune_new_entries=tune_new_entries, seed=seed,
                         max_retries_per_trial=max_retries_per_trial,
                         max_consecutive_failed_trials=max_consecutive_failed_trials, **kwargs)

    def _search_config(self) -> dict[str, Any]:
        return {"num_initial_points": self.num_initial_points, "alpha": self.alpha,
                "beta": self.beta}

    # -- encoding ------------------------------------------------------------------------------
    def _dimensions(self) -> list[HyperParameter]:
        return [hp for hp in self._space.space if not isinstance(hp, Fixed)]

    def _encode(self, values: dict[str, Any], dims: list[HyperParameter]) -> np.ndarray:
        row = np.empty(len(dims))
        for i, hp in enumerate(dims):
            value = values.get(hp.name, hp.default)
            try:
                row[i] = hp.value_to_prob(value)
            except (ValueError, TypeError):  # a value the current definition does not hold
                row[i] = hp.value_to_prob(hp.default)
        return np.clip(row, 0.0, _TOP)

    def _decode(self, row: np.ndarray) -> dict[str, Any]:
        probs = dict(zip((hp.name for hp in self._dimensions()), row))
        values: dict[str, Any] = {}
        for hp in self._space.space:  # in order, so a parent is decided before its children
            if hp.name in values or not all(c.is_active(values) for c in hp.conditions):
                continue
            values[hp.name] = (hp.value if isinstance(hp, Fixed)
                               else hp.prob_to_value(float(probs[hp.name])))
        return values  # plain Python values already (Fixed ones are stored JSON-normalised)

    # -- the search ----------------------------------------------------------------------------
    def populate_space(self, trial_id: str) -> dict[str, Any]:
        dims = self._dimensions()
        completed = self.project.completed()
        initial = self.num_initial_points or max(3 * len(self._space.space), 3)
        if len(completed) < initial or not dims:
            return self._random_response()
        sign = -1.0 if self.objective.direction == "max" else 1.0
        x = np.array([self._encode(decode_values(v), dims) for v, _ in completed])
        y = np.array([sign * s for _, s in completed])
        stored = self._state_object("bayesian")
        scales = stored.get("length_scales")
        warm = scales is not None and len(scales) == len(dims)
        # Length scales move little from one trial to the next: refit them when the data
        # has grown by a tenth since the last fit, and reuse them in between.
        refit = not warm or len(x) >= 1.1 * stored.get("fitted_on", 0)
        gp = GaussianProcess(self.alpha, np.array(scales) if warm else None)
        if refit:
            gp = self._fit_scales(x, y, gp, iterations=20 if warm else 50)
        else:
            gp.fit(x, y, optimise=False)
        fitted_on = len(x) if refit else stored["fitted_on"]
        running = self.decision.running
        if running:
            xr = np.array([self._encode(v, dims) for v in running])
            mean, std = gp.predict(xr)
            gp.fit(np.vstack([x, xr]), np.concatenate([y, mean + std]), optimise=False)
        assert gp.length_scales is not None
        self.set_state_value("bayesian", {
            "length_scales": [float(s) for s in gp.length_scales], "fitted_on": fitted_on})
        values = self._minimise_acquisition(gp, x, y, dims)
        if values is None:
            return self._random_response()
        return {"status": "RUNNING", "values": values}

    def _fit_scales(self, x: np.ndarray, y: np.ndarray, gp: GaussianProcess,
                    iterations: int) -> GaussianProcess:
        """Fit one shared length scale and one per input; keep the per-input ones only when
        their gain in likelihood beats a BIC penalty for the extra parameters. With few
        points per input, separate scales overfit (Hartmann-6 after 30 trials); with an
        input that matters far more than the others, one scale underfits."""
        d = x.shape[1]
        shared = GaussianProcess(self.alpha, gp.length_scales).fit(
            x, y, iterations=iterations, shared=True)
        if d == 1:
            return shared
        separate = GaussianProcess(self.alpha, gp.length_scales).fit(x, y, iterations=iterations)
        assert shared.length_scales is not None and separate.length_scales is not None
        lml_shared, _ = shared.log_marginal_likelihood(np.log(shared.length_scales))
        lml_separate, _ = separate.log_marginal_likelihood(np.log(separate.length_scales))
        penalty = 0.5 * (d - 1) * math.log(len(x))
        return separate if lml_separate - lml_shared > penalty else shared

    def _polish(self, gp: GaussianProcess, row: np.ndarray, axes: list[int]) -> np.ndarray:
        """Coordinate pattern search of ``mean - beta * std`` along ``axes`` from ``row``."""

        def lcb(rows: np.ndarray) -> np.ndarray:
            mean, std = gp.predict(rows)
            return mean - self.beta * std

        best = float(lcb(row[None, :])[0])
        step = 0.02
        for _ in range(200):
            if step < 1e-6:
                break
            moves = []
            for i in axes:
                for sign in (1.0, -1.0):
                    moved = row.copy()
                    moved[i] = min(max(moved[i] + sign * step, 0.0), _TOP)
                    moves.append(moved)
            scores = lcb(np.array(moves))
            j = int(np.argmin(scores))
            if scores[j] < best:
                row, best = moves[j], float(scores[j])
            else:
                step /= 2
        return row

    def _random_response(self) -> dict[str, Any]:
        values = self.random_values()
        if values is None:
            return self.exhausted()
        return {"status": "RUNNING", "values": values}

    def _minimise_acquisition(self, gp: GaussianProcess, x: np.ndarray, y: np.ndarray,
                              dims: list[HyperParameter]) -> dict[str, Any] | None:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed % 2**32,
                                                            self.decision.number]))
        tried = self.project.values_keys()
        seen: dict[bytes, tuple[float, dict[str, Any]]] = {}

        def consider(rows: np.ndarray) -> None:
            fresh = []
            for row in np.clip(rows, 0.0, _TOP):
                values = self._decode(row)
                snapped = self._encode(values, dims)  # discrete values at their bucket centre
                key = snapped.tobytes()
                if key not in seen:
                    seen[key] = (math.inf, values)
                    fresh.append((key, snapped))
            if fresh:
                mean, std = gp.predict(np.array([s for _, s in fresh]))
                for (key, _), score in zip(fresh, mean - self.beta * std):
                    seen[key] = (float(score), seen[key][1])

        d = len(dims)
        consider(rng.random((RANDOM_CANDIDATES, d)))
        for row in x[np.argsort(y)[:5]]:  # around the best points seen so far
            consider(row + rng.normal(0, 0.1, (LOCAL_CANDIDATES, d)))
        for radius, keep in REFINE_ROUNDS:
            best = sorted(seen, key=lambda k: seen[k][0])[:keep]
            for key in best:
                centre = np.frombuffer(key)
                consider(centre + rng.normal(0, radius, (LOCAL_CANDIDATES // 2, d)))
        # Polish the best few on their continuous dimensions: the candidates above find the
        # right basin; a pattern search finds the bottom of it.
        continuous = [i for i, hp in enumerate(dims) if hp.values is None]
        if continuous:
            for key in sorted(seen, key=lambda k: seen[k][0])[:3]:
                consider(self._polish(gp, np.frombuffer(key).copy(), continuous)[None, :])
        for _, values in sorted(seen.values(), key=lambda item: item[0]):
            digest = values_key(values)
            if digest not in tried and not self.is_taken(values, digest):
                return values  # never a configuration already tried, or being tried
        return None
