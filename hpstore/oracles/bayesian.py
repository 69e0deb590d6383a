"""Bayesian optimisation with a numpy Gaussian process and a lower-confidence-bound search."""

from __future__ import annotations

import math
import numbers
from typing import Any, Unpack

import numpy as np

from hpstore.hyperparameters import Fixed, HyperParameter
from hpstore.oracle import Oracle, values_key
from hpstore.oracle.base import StoreOptions
from hpstore.oracle.opening import check_optional_int
from hpstore.oracles.encoding import TOP, Encoding
from hpstore.oracles.gaussian_process import GaussianProcess
from hpstore.trial import TrialStatus

RANDOM_CANDIDATES = 1000
LOCAL_CANDIDATES = 100
REFINE_ROUNDS = ((0.1, 10), (0.03, 10), (0.01, 5), (0.003, 5), (0.001, 3))
# (radius, points kept) per refinement round: coarse to fine, as a local optimiser would
# The least improvement on the model's best mean, as a fraction of the scores' spread, that
# a trial must be able to bring (at its optimistic bound) for the bound to choose it.
IMPROVEMENT = 0.03
LOOKUPS_BEFORE_READING_ALL = 16  # candidates looked up one by one before reading every key
MODEL_POINTS = 300  # trials the model is conditioned on, at most (its cost grows as n^3)
FIT_POINTS = 200  # trials its hyperparameters are fitted on, at most
# Under the prior the noise is small (the default's log is at -11.5, std 1): with a larger
# expected noise the model smooths away the last differences near the best, and the
# search stops short of the optimum of a smooth function (Hartmann-3).
NOISE_PRIOR = (math.log(1e-5), 1.0)
GAP_BLOCK = 1 << 21  # differences held at once in a design's least gap: 16 MB of floats


def _real(value: Any) -> bool:
    """A real number, numpy's included (stored as a Python float), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(x)
    except OverflowError:  # an int beyond any float (10**400)
        return False


class BayesianOptimizationOracle(Oracle):
    """Bayesian optimisation: a Gaussian process models the score, and the next trial is
    the point minimising ``mean - beta * std`` (the best optimistic guess). When even that
    bound promises less than a small improvement on the best the model expects (3% of the
    scores' spread), the next trial is instead the point likeliest to bring one: a model
    sure of its best region would otherwise spend the trials a hair away from the best
    trial and never try a better region it is less sure of.

    Random trials come first, until ``num_initial_points`` (default: three per
    hyperparameter, at least 3) have ended with a score: the points of a Latin hypercube
    drawn from the seed, then random values. The model sees each configuration
    as a point of the unit cube (:mod:`hpstore.oracles.encoding`: log-scaled axes on the
    log scale, an unordered Choice of more than two values one-hot, an inactive
    hyperparameter at its default) and the scores through a logarithm that stretches the
    differences near the best (heavy-tailed objectives otherwise look flat where it
    matters). The kernel's length scales (one shared or one per hyperparameter, chosen by
    a BIC test), its signal and its noise variance are fitted under log-normal priors.

    COMPLETED trials count at their score; STOPPED ones (ended early by a stopping rule)
    at the worse of the score they reached and the worst COMPLETED score. Running trials
    are added at the model's mean plus one standard deviation, so parallel workers spread
    out; FAILED and INVALID trials are left out. The search never proposes a configuration
    already tried, and is deterministic for a given seed and history.

    Args:
        objective, max_trials (default 10 for a new search), seed, ...: as for
            :class:`hpstore.Oracle`.
        num_initial_points: random trials to end before the model is used.
        alpha: the least noise variance the model may fit (on normalised scores).
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
                 **kwargs: Unpack[StoreOptions]) -> None:
        num_initial_points = check_optional_int("num_initial_points", num_initial_points, 1)
        if not _real(alpha) or not alpha > 0 or not _finite(alpha):
            raise ValueError(f"`alpha` must be a positive finite number, received {alpha!r}.")
        if not _real(beta) or not beta >= 0 or not _finite(beta):
            raise ValueError(f"`beta` must be a finite number of at least 0, received "
                             f"{beta!r}.")
        self.num_initial_points = num_initial_points
        self.alpha = float(alpha)
        self.beta = float(beta)
        self._encoding: tuple[Any, Encoding] | None = None
        self._designs: dict[tuple[int, int, int], np.ndarray] = {}
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

    def _encoder(self) -> Encoding:
        """The encoding of the current space (rebuilt when the space changes; it keeps
        the stored trials' inputs between decisions)."""
        space = list(self._space.space)
        signature = [(type(hp).__name__, hp.get_config()) for hp in space]
        if self._encoding is None or self._encoding[0] != signature:
            self._encoding = (signature, Encoding(space))
        return self._encoding[1]

    # -- the search ----------------------------------------------------------------------------
    def populate_space(self, trial_id: str) -> dict[str, Any]:
        dims = self._dimensions()
        observed, scores = self._observations()
        initial = self.num_initial_points or max(3 * len(self._space.space), 3)
        if len(observed) < initial or not dims:
            return self._initial_response(dims, initial)
        encoding = self._encoder()
        keep = self._model_points(scores, MODEL_POINTS)
        rows = [encoding.history(observed[i]) for i in keep]
        x = np.array([f for f, _ in rows])
        points = np.array([p for _, p in rows])
        y = stretch(scores[keep])
        stored = self._state_object("bayesian")
        scales = stored.get("length_scales")
        warm = scales is not None and len(scales) == len(dims)
        # The model's hyperparameters move little from one trial to the next: refit them
        # when the data has grown by a tenth since the last fit, and reuse them in between.
        refit = not warm or len(observed) >= 1.1 * stored.get("fitted_on", 0)
        gp = self._model(np.array(scales) if warm else None, encoding, stored)
        if refit:
            fit = self._model_points(y, FIT_POINTS)
            gp = self._fit(x[fit], y[fit], gp, encoding, iterations=30 if warm else 60)
        gp.fit(x, y, optimise=False)
        # A trial worth running must be able to beat the best the model expects so far
        # by a margin (its optimistic bound must reach this target).
        target = float(gp.predict(x)[0].min()) - IMPROVEMENT * float(np.std(y))
        fitted_on = len(observed) if refit else stored["fitted_on"]
        running = self.decision.running
        if running:
            xr = np.array([encoding.features(v) for v in running])
            mean, std = gp.predict(xr)
            gp.fit(np.vstack([x, xr]), np.concatenate([y, mean + std]), optimise=False)
        assert gp.length_scales is not None
        self.set_state_value("bayesian", {
            "length_scales": [float(s) for s in gp.length_scales], "fitted_on": fitted_on,
            "noise": gp.noise, "signal": gp.signal})
        values = self._minimise_acquisition(gp, encoding, points, y, target)
        if values is None:
            return self._random_response()
        return {"status": "RUNNING", "values": values}

    def _observations(self) -> tuple[list[str], np.ndarray]:
        """What the model learns from: the values (JSON text) of every scored COMPLETED and
        STOPPED trial not retired, and their scores, lower better.

        A STOPPED trial (ended early by a stopping rule) counts at the worse of the score
        it reached and the worst COMPLETED score: the rule judged it no better than the
        trials that ran to the end, and its partial score says only how good it was when
        stopped. Leaving it out would let the model propose its neighbourhood again, and
        the search with a stopping rule would be no better than random search with it.
        One stopped with no score (every value it reported NaN, a diverging run) counts at
        the worst score known: left out, the model proposed its neighbourhood again and
        again.
        """
        sign = -1.0 if self.objective.direction == "max" else 1.0
        completed = self.project.completed()
        stopped = [(t.values_json, t.score) for t in self.project.trials(
            statuses=[TrialStatus.STOPPED]) if not t.retired]
        scored = [(v, s) for v, s in stopped if s is not None and not math.isnan(s)]
        unscored = [v for v, s in stopped if s is None or math.isnan(s)]
        reached = np.array([sign * s for _, s in scored])
        done = np.array([sign * s for _, s in completed])
        if len(reached) and len(done):
            reached = np.maximum(reached, done.max())
        known = np.concatenate([done, reached])
        if not len(known):
            unscored = []  # (no score to put them at)
        worst = np.full(len(unscored), known.max() if len(known) else 0.0)
        values = [v for v, _ in completed] + [v for v, _ in scored] + unscored
        return values, np.concatenate([known, worst])

    @staticmethod
    def _model_points(scores: np.ndarray, limit: int) -> np.ndarray:
        """Which trials the model is fitted on: all of them up to ``limit``,
        then the best half of the limit and the most recent others (the model's cost grows
        with the cube of its points)."""
        n = len(scores)
        if n <= limit:
            return np.arange(n)
        best = np.argsort(scores, kind="stable")[:limit // 2]
        others = np.ones(n, dtype=bool)  # (a mask: setdiff1d hashed every index)
        others[best] = False
        rest = np.flatnonzero(others)[-(limit - len(best)):]
        return np.sort(np.concatenate([best, rest]))

    def _model(self, scales: np.ndarray | None, encoding: Encoding,
               stored: dict[str, Any]) -> GaussianProcess:
        return GaussianProcess(self.alpha, scales, groups=encoding.groups, fit_noise=True,
                               prior=True, noise=stored.get("noise"),
                               signal=stored.get("signal", 1.0),
                               noise_prior=NOISE_PRIOR)

    def _fit(self, x: np.ndarray, y: np.ndarray, gp: GaussianProcess, encoding: Encoding,
             iterations: int) -> GaussianProcess:
        """Fit one shared length scale and one per input; keep the per-input ones only
        when their gain in likelihood beats a BIC penalty for the extra parameters. With
        few points per input, separate scales overfit (Hartmann-6 after 30 trials); with an
        input that matters far more than the others, one scale underfits."""
        d = len(encoding.dims)
        if d == 1:
            return gp.fit(x, y, iterations=iterations)
        shared = self._model(gp.length_scales, encoding, {}).fit(
            x, y, iterations=iterations, shared=True)
        separate = self._model(gp.length_scales, encoding, {}).fit(x, y, iterations=iterations)
        lml_shared, _ = shared.log_marginal_likelihood(shared._theta())
        lml_separate, _ = separate.log_marginal_likelihood(separate._theta())
        penalty = 0.5 * (d - 1) * math.log(len(x))
        return separate if lml_separate - lml_shared > penalty else shared

    def _initial_response(self, dims: list[HyperParameter], initial: int) -> dict[str, Any]:
        """The initial trials: the points of a Latin hypercube drawn from the seed (each
        hyperparameter's range cut into ``initial`` slices, each slice used once, so the
        first trials cover every axis evenly), then random values (also for a design
        point already tried, or added by hand)."""
        number = self.decision.number
        if dims and number < initial:
            values = self._encoder().decode(self._design(initial, len(dims))[number])
            if not self.is_taken(values):
                return {"status": "RUNNING", "values": values}
        return self._random_response()

    def _design(self, n: int, d: int) -> np.ndarray:
        """The most spread (largest least distance) of a few Latin hypercubes."""
        key = (self.seed, n, d)
        if key not in self._designs:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed % 2**32, n, d, 7]))
            best, best_gap = None, -1.0
            tries = max(1, min(20, 2000 // n))
            for _ in range(tries):
                design = (np.argsort(rng.random((n, d)), axis=0) + rng.random((n, d))) / n
                # (one hypercube drawn, as from 667 hyperparameters on: nothing to compare)
                gap = least_gap(design) if tries > 1 else 0.0
                if gap > best_gap:
                    best, best_gap = design, gap
            assert best is not None
            self._designs[key] = np.minimum(best, TOP)
        return self._designs[key]

    def _random_response(self) -> dict[str, Any]:
        values = self.random_values()
        if values is None:
            return self.exhausted()
        return {"status": "RUNNING", "values": values}

    def _minimise_acquisition(self, gp: GaussianProcess, encoding: Encoding,
                              points: np.ndarray, y: np.ndarray,
                              target: float) -> dict[str, Any] | None:
        """The untried configuration with the lowest ``mean - beta * std`` found by a
        search over points of [0, 1)^d: random points, points around the best trials,
        rounds of points around the best candidates at shrinking radii, then a pattern
        search on the continuous dimensions of the best few. When no candidate's bound
        reaches ``target``, the one most likely to reach it (:func:`acquisition_order`)."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed % 2**32,
                                                            self.decision.number]))
        beta = self.beta
        d = len(encoding.dims)
        low, high = np.zeros(d), np.full(d, TOP)
        found_points: list[np.ndarray] = []
        found_scores: list[np.ndarray] = []
        found_means: list[np.ndarray] = []
        found_stds: list[np.ndarray] = []
        keys: set[bytes] = set()

        def predict(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            rows = np.clip(rows, low, high)
            mean, std = gp.predict(encoding.bulk_features(rows))
            return rows, mean, std

        def lcb(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            rows, mean, std = predict(rows)
            return rows, mean - beta * std

        def consider(rows: np.ndarray) -> None:
            rows, mean, std = predict(rows)
            found_points.append(rows)
            found_scores.append(mean - beta * std)
            found_means.append(mean)
            found_stds.append(std)

        def best(k: int) -> np.ndarray:
            allp = np.concatenate(found_points)
            alls = np.concatenate(found_scores)
            return allp[np.argsort(alls, kind="stable")[:k]]

        def around(centres: np.ndarray, radius: float, count: int) -> np.ndarray:
            rows = (np.repeat(centres, count, axis=0)
                    + rng.normal(0, radius, (len(centres) * count, d)) * (high - low))
            if encoding.onehot.any():  # a categorical value has no neighbours: redraw some
                redraw = ((rng.random(rows.shape) < min(0.5, 2 * radius))
                          & encoding.onehot)
                rows = np.where(redraw, rng.random(rows.shape), rows)
            return rows

        consider(low + rng.random((RANDOM_CANDIDATES, d)) * (high - low))
        top = points[np.argsort(y, kind="stable")[:5]]  # around the best trials so far
        consider(around(top, 0.1, LOCAL_CANDIDATES))
        for radius, keep in REFINE_ROUNDS:
            consider(around(best(keep), radius, LOCAL_CANDIDATES // 2))
        if encoding.continuous:
            consider(self._polish(lcb, best(3), encoding.continuous))
        allp = np.concatenate(found_points)
        order = acquisition_order(np.concatenate(found_means), np.concatenate(found_stds),
                                  beta, target)
        # Tried before? Asked of the index for the first few candidates (the first is
        # usually new), then of every key read at once: reading them all for each trial
        # cost 0.4 s at 100,000 trials.
        tried: set[str] | None = None
        asked = 0
        for i in order:
            row = allp[i]
            key = row.tobytes()
            if key in keys:
                continue
            keys.add(key)
            values = encoding.decode(row)
            vkey = values_key(values)
            if tried is None and asked >= LOOKUPS_BEFORE_READING_ALL:
                tried = self.project.values_keys()
            asked += 1
            if (vkey in tried if tried is not None else self.project.has_values(vkey)):
                continue
            if not self.is_taken(values, vkey):
                return values  # never a configuration already tried, or being tried
        return None

    @staticmethod
    def _polish(lcb: Any, starts: np.ndarray, axes: list[int],
                iterations: int = 60) -> np.ndarray:
        """Coordinate pattern search of the acquisition along ``axes`` from each of
        ``starts`` at once: the candidates find the right basin, this its bottom."""
        rows, scores = lcb(starts)
        rows = rows.copy()
        steps = np.full(len(rows), 0.02)
        k = len(axes)
        for _ in range(iterations):
            if (steps < 1e-6).all():
                break
            moves = np.repeat(rows, 2 * k, axis=0)
            for j, axis in enumerate(axes):
                moves[2 * j::2 * k, axis] += steps
                moves[2 * j + 1::2 * k, axis] -= steps
            moves, moved = lcb(moves)
            moved = moved.reshape(len(rows), 2 * k)
            pick = moved.argmin(1)
            better = moved[np.arange(len(rows)), pick] < scores
            for r in np.flatnonzero(better):
                rows[r] = moves[r * 2 * k + pick[r]]
                scores[r] = moved[r, pick[r]]
            steps[~better] /= 2
        return rows


def least_gap(points: np.ndarray, budget: int = GAP_BLOCK) -> float:
    """The least squared distance between two different rows of ``points`` (inf for one
    row), taken over blocks of rows holding about ``budget`` differences at a time.

    All the differences at once took n x n x d floats: 1.9 GB for the 900 points of 300
    hyperparameters' design, 89 GiB for 1,100 hyperparameters. Each distance is summed
    as before, by itself over its d differences, so the result is the same to the bit
    (a distance through |a|^2 + |b|^2 - 2ab rounds differently and could pick another
    design).
    """
    n, d = points.shape
    rows = max(1, budget // max(1, n * d))
    least = math.inf
    for start in range(0, n, rows):
        block = ((points[start:start + rows, None, :] - points[None, :, :]) ** 2).sum(-1)
        own = np.arange(len(block))
        block[own, own + start] = np.inf  # (a row's distance to itself)
        least = min(least, float(block.min()))
    return least


def acquisition_order(means: np.ndarray, stds: np.ndarray, beta: float,
                      target: float) -> np.ndarray:
    """The candidates in the order they are proposed: by ``mean - beta * std``, lowest
    first, while some candidate's bound reaches ``target``; otherwise by how many standard
    deviations each stands above ``target`` (fewest first: the likeliest to reach it).

    The bound alone, once the model is sure of its best region, picks the next point a
    hair away from the best trial, and goes on doing so: the trials are spent on
    improvements no one would notice, and a better region the model is less sure of (the
    best of six interacting choices, other than the one found first) is never tried. The
    likeliest to bring a real improvement is such a region, or the best one's neighbourhood
    again when nothing else can.
    """
    bounds = means - beta * stds
    if len(bounds) and bounds.min() > target:
        return np.argsort((means - target) / np.maximum(stds, 1e-300), kind="stable")
    return np.argsort(bounds, kind="stable")


def stretch(scores: np.ndarray) -> np.ndarray:
    """The scores (lower better) as the model sees them: ``log(score - best + offset)``
    with the offset the distance from the best to the median. Monotone, so the ranking is
    kept; far-off failures (a diverged run, a corner of Rosenbrock) are pulled in, and the
    differences among the good trials, the ones that decide where to look next, are kept
    at the scale of the typical one. An infinite score (a run that diverged to inf) is
    taken as a margin past the worst finite one (or before the best), so that it stays
    the worst without making every other score infinite or NaN."""
    finite = scores[np.isfinite(scores)]
    if finite.size and float(np.abs(finite).max()) > 1e150:
        # (scores near the float range, 1e308 beside -1e308 or inf: their differences and
        # the margin would overflow to inf, then NaN in the model; divided by a positive
        # constant, the ranking and the stretch's shape stay, as log turns it into a shift)
        scores = scores / float(np.abs(finite).max())
        finite = scores[np.isfinite(scores)]
    if finite.size < scores.size:
        if finite.size == 0:
            return np.zeros(scores.shape)  # (nothing to tell the trials apart)
        best, worst = float(finite.min()), float(finite.max())
        margin = max(worst - best, abs(worst), abs(best), 1.0)
        scores = np.where(np.isposinf(scores), worst + margin,
                          np.where(np.isneginf(scores), best - margin, scores))
    low = float(scores.min())
    spread = float(scores.max()) - low
    offset = max(float(np.median(scores)) - low, 1e-6 * spread, 1e-12)
    return np.log(scores - low + offset)
