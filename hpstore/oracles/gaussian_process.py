"""A Gaussian process regressor in numpy: Matern 5/2 kernel, one length scale per input.

The length scales are fitted by maximising the log marginal likelihood with Adam on their
logarithms (the gradient is analytic). Targets are normalised to zero mean and unit
variance; ``alpha`` is the noise added to the kernel's diagonal.
"""

from __future__ import annotations

import math

import numpy as np

SQRT5 = math.sqrt(5.0)
LOG_SCALE_BOUNDS = (math.log(1e-2), math.log(1e2))


def matern52(a: np.ndarray, b: np.ndarray, length_scales: np.ndarray) -> np.ndarray:
    """The Matern 5/2 kernel matrix between the rows of ``a`` and ``b``."""
    r = _distances(a / length_scales, b / length_scales)
    return (1.0 + SQRT5 * r + (5.0 / 3.0) * r**2) * np.exp(-SQRT5 * r)


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))


class GaussianProcess:
    """Fit with :meth:`fit`, then :meth:`predict` means and standard deviations.

    Args:
        alpha: noise variance added to the diagonal (on normalised targets).
        length_scales: initial length scales, one per input dimension (default 0.5).
    """

    def __init__(self, alpha: float = 1e-4, length_scales: np.ndarray | None = None) -> None:
        self.alpha = float(alpha)
        self.length_scales = length_scales
        self._x: np.ndarray | None = None

    def fit(self, x: np.ndarray, y: np.ndarray, *, optimise: bool = True,
            iterations: int = 60, shared: bool = False) -> GaussianProcess:
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        if self.length_scales is None or len(self.length_scales) != x.shape[1]:
            self.length_scales = np.full(x.shape[1], 0.5)
        self._mean = float(y.mean())
        std = float(y.std())
        self._std = std if std > 0 else 1.0
        self._y = (y - self._mean) / self._std
        self._x = x
        if optimise and len(x) > 1:
            self._optimise(iterations, shared)
        self._factorise()
        return self

    def _factorise(self) -> None:
        assert self._x is not None and self.length_scales is not None
        k = matern52(self._x, self._x, self.length_scales)
        k[np.diag_indices_from(k)] += self.alpha
        _, self._inverse = _factor(k)
        # Prediction is then two matrix products per batch of points.
        self._weights = self._inverse @ self._y

    def log_marginal_likelihood(self, log_scales: np.ndarray) -> tuple[float, np.ndarray]:
        """The log marginal likelihood at ``exp(log_scales)`` and its gradient."""
        assert self._x is not None
        x, y = self._x, self._y
        scales = np.exp(log_scales)
        diffs2 = ((x[:, None, :] - x[None, :, :]) / scales) ** 2  # n x n x d
        r = np.sqrt(diffs2.sum(-1))
        e = np.exp(-SQRT5 * r)
        k = (1.0 + SQRT5 * r + (5.0 / 3.0) * r**2) * e
        k[np.diag_indices_from(k)] += self.alpha
        chol, inverse = _factor(k)
        weights = inverse @ y
        lml = (-0.5 * y @ weights - np.log(np.diag(chol)).sum()
               - 0.5 * len(y) * math.log(2 * math.pi))
        inner = np.outer(weights, weights) - inverse
        # d k / d log(l_d) = 5/3 (1 + sqrt5 r) exp(-sqrt5 r) (x_d - x'_d)^2 / l_d^2
        common = (5.0 / 3.0) * (1.0 + SQRT5 * r) * e
        grad = 0.5 * (inner * common).ravel() @ diffs2.reshape(-1, diffs2.shape[-1])
        return float(lml), grad

    def _optimise(self, iterations: int, shared: bool = False) -> None:
        """Adam on the log length scales; ``shared`` ties them to one value (fewer
        parameters to fit when the data is still small)."""
        assert self.length_scales is not None
        theta = np.clip(np.log(self.length_scales), *LOG_SCALE_BOUNDS)
        if shared:
            theta = np.full_like(theta, theta.mean())
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
                grad = np.full_like(grad, grad.sum())
            m = b1 * m + (1 - b1) * grad
            v = b2 * v + (1 - b2) * grad**2
            theta = theta + rate * (m / (1 - b1**step)) / (np.sqrt(v / (1 - b2**step)) + 1e-8)
            theta = np.clip(theta, *LOG_SCALE_BOUNDS)
        self.length_scales = np.exp(best_theta)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation at the rows of ``x`` (original units)."""
        assert self._x is not None and self.length_scales is not None
        ks = matern52(np.asarray(x, dtype=float), self._x, self.length_scales)
        mean = ks @ self._weights
        var = np.maximum(1.0 - ((ks @ self._inverse) * ks).sum(1), 1e-12)
        return mean * self._std + self._mean, np.sqrt(var) * self._std


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
