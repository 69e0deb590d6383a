"""A Gaussian process regressor in numpy: Matern 5/2 kernel, one length scale per input.

The model is ``y = f(x) + noise`` with ``f`` a Gaussian process of variance ``signal`` and
Matern 5/2 covariance, and Gaussian noise of variance ``noise`` (at least ``alpha``).
Targets are normalised to zero mean and unit variance. The hyperparameters (length scales,
and optionally the signal and noise variances) are fitted by maximising the log marginal
likelihood plus log-normal priors (a maximum a posteriori fit) with Adam on their
logarithms; the gradient is analytic.

The priors keep a fit on few points from chasing noise: the length scales (inputs in the
unit cube) are expected near 0.5, the signal variance near 1 and the noise small.

Inputs may be grouped: the columns of one group (the one-hot columns of a categorical
hyperparameter) share one length scale.
"""

from __future__ import annotations

import math

import numpy as np

SQRT5 = math.sqrt(5.0)
LOG_SCALE_BOUNDS = (math.log(1e-2), math.log(1e2))
LOG_SIGNAL_BOUNDS = (math.log(5e-2), math.log(20.0))
MAX_NOISE = 0.5  # on normalised targets: half the variance is noise at most
LENGTH_SCALE_PRIOR = (math.log(0.5), math.sqrt(3.0))  # mean and std of a log length scale
SIGNAL_PRIOR = (0.0, 1.0)  # mean and std of log signal variance
NOISE_PRIOR = (math.log(1e-5), 1.0)  # mean and std of log noise variance
LIKELIHOOD_BLOCK = 1 << 22  # squared differences the likelihood holds at once (32 MB)


def matern52(a: np.ndarray, b: np.ndarray, length_scales: np.ndarray) -> np.ndarray:
    """The Matern 5/2 kernel matrix (unit variance) between the rows of ``a`` and ``b``."""
    r = _distances(a / length_scales, b / length_scales)
    return (1.0 + SQRT5 * r + (5.0 / 3.0) * r**2) * np.exp(-SQRT5 * r)


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))


class GaussianProcess:
    """Fit with :meth:`fit`, then :meth:`predict` means and standard deviations.

    Args:
        alpha: the noise variance (on normalised targets); the lowest noise a fit may
            choose when ``fit_noise`` is set.
        length_scales: initial length scales, one per group of inputs (default 0.5 each).
        groups: the group of each input column (default: each column its own group).
        fit_noise: fit the noise and signal variances as well as the length scales
            (else: noise ``alpha``, signal 1).
        noise, signal: initial noise and signal variances when fitted.
        prior: put log-normal priors on the hyperparameters (else: plain likelihood).
        length_scale_prior, noise_prior: (mean, standard deviation) of the logarithm of
            each length scale and of the noise variance under the prior.
    """

    def __init__(self, alpha: float = 1e-4, length_scales: np.ndarray | None = None, *,
                 groups: np.ndarray | None = None, fit_noise: bool = False,
                 noise: float | None = None, signal: float = 1.0, prior: bool = False,
                 length_scale_prior: tuple[float, float] = LENGTH_SCALE_PRIOR,
                 noise_prior: tuple[float, float] = NOISE_PRIOR) -> None:
        self.alpha = float(alpha)
        self.length_scales = length_scales
        self.groups = groups
        self.fit_noise = fit_noise
        self.noise = max(self.alpha, float(noise)) if noise is not None else self.alpha
        self.signal = float(signal)
        self.prior = prior
        self.length_scale_prior = length_scale_prior
        self.noise_prior = noise_prior
        self._x: np.ndarray | None = None

    # -- hyperparameters as one vector of logarithms ---------------------------------------
    def _theta(self) -> np.ndarray:
        assert self.length_scales is not None
        theta = list(np.log(self.length_scales))
        if self.fit_noise:
            theta += [math.log(self.signal), math.log(self.noise)]
        return np.array(theta)

    def _set_theta(self, theta: np.ndarray) -> None:
        d = self._n_groups
        self.length_scales = np.exp(theta[:d])
        if self.fit_noise:
            self.signal = float(math.exp(theta[d]))
            self.noise = float(math.exp(theta[d + 1]))

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        d = self._n_groups
        low = [LOG_SCALE_BOUNDS[0]] * d
        high = [LOG_SCALE_BOUNDS[1]] * d
        if self.fit_noise:
            low += [LOG_SIGNAL_BOUNDS[0], math.log(self.alpha)]
            high += [LOG_SIGNAL_BOUNDS[1], math.log(max(MAX_NOISE, self.alpha))]
        return np.array(low), np.array(high)

    @property
    def _n_groups(self) -> int:
        assert self._groups is not None
        return int(self._groups.max()) + 1 if len(self._groups) else 0

    def _column_scales(self) -> np.ndarray:
        assert self.length_scales is not None and self._groups is not None
        return self.length_scales[self._groups]

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, x: np.ndarray, y: np.ndarray, *, optimise: bool = True,
            iterations: int = 60, shared: bool = False) -> GaussianProcess:
        """Condition on ``x`` (rows of inputs) and ``y``; with ``optimise``, fit the
        hyperparameters first (``shared``: one length scale for every input)."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        self._groups = (np.arange(x.shape[1]) if self.groups is None
                        else np.asarray(self.groups, dtype=int))
        d = self._n_groups
        if self.length_scales is None or len(self.length_scales) != d:
            self.length_scales = np.full(d, 0.5)
        self._mean = float(y.mean())
        std = float(y.std())
        self._std = std if std > 0 else 1.0
        self._y = (y - self._mean) / self._std
        self._x = x
        # one row per column, one column per group: sums squared differences by group
        self._membership: np.ndarray | None = np.zeros((x.shape[1], d))
        self._membership[np.arange(x.shape[1]), self._groups] = 1.0
        if np.array_equal(self._groups, np.arange(x.shape[1])):
            # (each column its own group: the product with the identity, the same to the
            # bit, took n x n x columns^2 operations, most of a fit's time on many inputs)
            self._membership = None
        if optimise and len(x) > 1:
            self._optimise(iterations, shared)
        self._factorise()
        return self

    def _factorise(self) -> None:
        assert self._x is not None
        k = self.signal * matern52(self._x, self._x, self._column_scales())
        k[np.diag_indices_from(k)] += self.noise
        _, self._inverse = _factor(k)
        # Prediction is then two matrix products per batch of points.
        self._weights = self._inverse @ self._y

    def log_marginal_likelihood(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """The log marginal likelihood (plus the log priors, when set) at ``theta`` and
        its gradient. ``theta`` holds the log length scales, then, when the noise is
        fitted, the log signal and log noise variances."""
        assert self._x is not None
        x, y = self._x, self._y
        d = self._n_groups
        scales = np.exp(theta[:d])
        signal, noise = ((math.exp(theta[d]), math.exp(theta[d + 1])) if self.fit_noise
                         else (self.signal, self.noise))
        cols = scales[self._groups]
        # The squared scaled distances by group take n x n x columns floats, 0.7 GB for
        # 200 points of 1,100 inputs at each of the fit's steps: past LIKELIHOOD_BLOCK they
        # are made for blocks of rows, twice (for the kernel, then for the gradient),
        # rather than held. A small case is one block, computed exactly as before.
        n = len(x)
        step = max(1, LIKELIHOOD_BLOCK // max(1, n * x.shape[1]))
        blocks = [slice(start, start + step) for start in range(0, n, step)]
        held = (_grouped_squares(x, cols, self._membership, blocks[0]) if len(blocks) == 1
                else None)
        r = np.empty((n, n))
        for rows in blocks:
            grouped = held if held is not None else _grouped_squares(
                x, cols, self._membership, rows)
            r[rows] = np.sqrt(grouped.sum(-1))
        e = np.exp(-SQRT5 * r)
        unit = (1.0 + SQRT5 * r + (5.0 / 3.0) * r**2) * e
        k = signal * unit
        k[np.diag_indices_from(k)] += noise
        chol, inverse = _factor(k)
        weights = inverse @ y
        lml = (-0.5 * y @ weights - np.log(np.diag(chol)).sum()
               - 0.5 * len(y) * math.log(2 * math.pi))
        inner = np.outer(weights, weights) - inverse
        # d k / d log(l_g) = signal 5/3 (1 + sqrt5 r) exp(-sqrt5 r) sum_g (x - x')^2 / l_g^2
        common = signal * (5.0 / 3.0) * (1.0 + SQRT5 * r) * e
        weighted = inner * common
        grad = np.zeros(d)
        for rows in blocks:
            grouped = held if held is not None else _grouped_squares(
                x, cols, self._membership, rows)
            grad += 0.5 * weighted[rows].ravel() @ grouped.reshape(-1, d)
        if self.fit_noise:
            grad = np.concatenate([grad, [0.5 * (inner * k).sum() - 0.5 * noise * np.trace(inner),
                                          0.5 * noise * np.trace(inner)]])
        if self.prior:
            lp, lp_grad = self._log_prior(theta)
            lml += lp
            grad = grad + lp_grad
        return float(lml), grad

    def _log_prior(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        d = self._n_groups
        centres = np.full(d, self.length_scale_prior[0])
        stds = np.full(d, self.length_scale_prior[1])
        if self.fit_noise:
            centres = np.concatenate([centres, [SIGNAL_PRIOR[0], self.noise_prior[0]]])
            stds = np.concatenate([stds, [SIGNAL_PRIOR[1], self.noise_prior[1]]])
        z = (theta - centres) / stds
        return float(-0.5 * (z**2).sum()), -z / stds

    def _optimise(self, iterations: int, shared: bool = False) -> None:
        """Adam on the log hyperparameters; ``shared`` ties the length scales to one
        value (fewer parameters to fit when the data is still small)."""
        low, high = self._bounds()
        theta = np.clip(self._theta(), low, high)
        d = self._n_groups
        if shared:
            theta[:d] = theta[:d].mean()
        best, best_theta = -math.inf, theta.copy()
        m = np.zeros_like(theta)
        v = np.zeros_like(theta)
        rate, b1, b2 = 0.1, 0.9, 0.999
        for step in range(1, iterations + 1):
            try:
                lml, grad = self.log_marginal_likelihood(theta)
            except np.linalg.LinAlgError:
                break
            if lml > best:
                best, best_theta = lml, theta.copy()
            if shared:
                grad[:d] = grad[:d].sum()
            m = b1 * m + (1 - b1) * grad
            v = b2 * v + (1 - b2) * grad**2
            theta = theta + rate * (m / (1 - b1**step)) / (np.sqrt(v / (1 - b2**step)) + 1e-8)
            theta = np.clip(theta, low, high)
        self._set_theta(best_theta)

    # -- prediction -------------------------------------------------------------------------
    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of ``f`` (the noise-free function) at the
        rows of ``x``, in the targets' units."""
        assert self._x is not None
        ks = self.signal * matern52(np.asarray(x, dtype=float), self._x, self._column_scales())
        mean = ks @ self._weights
        var = np.maximum(self.signal - ((ks @ self._inverse) * ks).sum(1), 1e-12)
        return mean * self._std + self._mean, np.sqrt(var) * self._std


def _grouped_squares(x: np.ndarray, cols: np.ndarray, membership: np.ndarray | None,
                     rows: slice) -> np.ndarray:
    """``sum (x_i - x_j)^2 / l^2`` over each group's columns (``membership``: a column's
    row holds 1 at its group; None: each column its own group), for the rows ``rows`` of
    ``x`` against every row: an array rows x n x groups."""
    diffs2 = ((x[rows, None, :] - x[None, :, :]) / cols) ** 2  # rows x n x columns
    return diffs2 if membership is None else diffs2 @ membership


def _factor(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Cholesky factor of ``k`` (for its log determinant) and its inverse, adding a
    little jitter to the diagonal if rounding made it not quite positive definite."""
    jitter = 0.0
    eye = np.eye(len(k))
    for _ in range(7):
        try:
            chol = np.linalg.cholesky(k + jitter * eye)
            # numpy has no triangular solver; inverting the triangle once is cheaper than
            # the general solves it would otherwise take.
            inv_chol = np.linalg.inv(chol)
            return chol, inv_chol.T @ inv_chol
        except np.linalg.LinAlgError:
            jitter = 1e-8 if jitter == 0.0 else jitter * 10
    raise np.linalg.LinAlgError("the kernel matrix is not positive definite")
