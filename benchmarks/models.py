"""Real model-tuning problems on datasets that ship with scikit-learn.

Each objective is a cross-validated loss (lower is better) with fixed folds and fixed model
seeds, so a configuration always scores the same. Log loss rather than accuracy for the
classifiers: accuracy on a few hundred samples moves in coarse steps that hide differences.
scikit-learn is imported when a problem is first evaluated, so the suite's other problems
run without it.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np

from benchmarks.problems import Param, Problem

FOLDS = 3


@functools.cache
def _data(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    if name == "digits":  # a quarter of the digits keeps a network's fit near 0.2 s
        x, y = datasets.load_digits(return_X_y=True)
        return x[:450] / 16.0, y[:450]
    loader = {"cancer": datasets.load_breast_cancer, "wine": datasets.load_wine,
              "diabetes": datasets.load_diabetes}[name]
    x, y = loader(return_X_y=True)
    return x, y


def _cv_loss(model: Any, data: str, scoring: str) -> float:
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
    from threadpoolctl import threadpool_limits

    x, y = _data(data)
    folds = (KFold if scoring == "neg_mean_squared_error" else StratifiedKFold)(
        FOLDS, shuffle=True, random_state=0)
    # One thread: the same arithmetic (so the same score) on any machine, and no contention
    # with the search's own process on a small one.
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")  # short fits do not converge, by design
        score = cross_val_score(model, x, y, cv=folds, scoring=scoring, error_score=np.nan)
    loss = -float(np.mean(score))
    return loss if np.isfinite(loss) else 1e3  # a configuration that cannot fit at all


def _svm_cancer(v: dict[str, Any]) -> float:
    """1 - accuracy of a scaled SVC on breast cancer (5 folds: 0.2% resolution)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    x, y = _data("cancer")
    # An iteration cap: a polynomial kernel with a large C can otherwise take seconds.
    model = make_pipeline(StandardScaler(), SVC(
        C=v["C"], kernel=v["kernel"], gamma=v["gamma"], degree=v.get("degree", 3),
        coef0=1.0, max_iter=20_000))
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return 1.0 - float(np.mean(cross_val_score(model, x, y, cv=folds)))


def _gbm_wine(v: dict[str, Any]) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return _cv_loss(HistGradientBoostingClassifier(
        learning_rate=v["learning_rate"], max_iter=v["max_iter"],
        max_leaf_nodes=v["max_leaf_nodes"], min_samples_leaf=v["min_samples_leaf"],
        l2_regularization=v["l2"], random_state=0), "wine", "neg_log_loss")


def _mlp_digits(v: dict[str, Any]) -> float:
    from sklearn.neural_network import MLPClassifier

    return _cv_loss(MLPClassifier(
        hidden_layer_sizes=(v["units"],) * v["layers"], activation=v["activation"],
        alpha=v["alpha"], learning_rate_init=v["learning_rate"], max_iter=30,
        random_state=0), "digits", "neg_log_loss")


def _krr_diabetes(v: dict[str, Any]) -> float:
    """Mean squared error of kernel ridge regression over the target's variance
    (1 - R^2, about)."""
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), KernelRidge(
        alpha=v["alpha"], kernel=v["kernel"], gamma=v["gamma"], degree=v.get("degree", 3)))
    _, y = _data("diabetes")
    return _cv_loss(model, "diabetes", "neg_mean_squared_error") / float(np.var(y))


MODEL_PROBLEMS = (
    Problem("svm_cancer", (
        Param("kernel", "choice", ("rbf", "poly", "sigmoid")),
        Param("C", "log", (1e-3, 1e3)),
        Param("gamma", "log", (1e-5, 10.0)),
        Param("degree", "int", (2, 5), ("kernel", ("poly",)))), _svm_cancer, None, "model"),
    Problem("gbm_wine", (
        Param("learning_rate", "log", (1e-3, 1.0)),
        Param("max_iter", "logint", (10, 100)),
        Param("max_leaf_nodes", "logint", (2, 64)),
        Param("min_samples_leaf", "int", (1, 40)),
        Param("l2", "log", (1e-6, 10.0))), _gbm_wine, None, "model"),
    Problem("mlp_digits", (
        Param("layers", "int", (1, 3)),
        Param("units", "logint", (16, 128)),
        Param("activation", "choice", ("relu", "tanh")),
        Param("alpha", "log", (1e-6, 1.0)),
        Param("learning_rate", "log", (1e-4, 1e-1))), _mlp_digits, None, "model"),
    Problem("krr_diabetes", (
        Param("kernel", "choice", ("rbf", "laplacian", "poly")),
        Param("alpha", "log", (1e-4, 10.0)),
        Param("gamma", "log", (1e-4, 1.0)),
        Param("degree", "int", (2, 4), ("kernel", ("poly",)))), _krr_diabetes, None, "model"),
)
