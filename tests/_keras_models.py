"""Tiny data and hypermodels for the Keras tests: a few Dense units on 64 samples, so a
trial trains in a fraction of a second on a CPU. Spawned scripts import it too."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import gc
import sqlite3
from typing import Any

import keras
import numpy as np

import hpstore.keras as _kt

# KerasTuner collects garbage before every build: with torch and keras loaded that walks
# every object they made, about half a second a trial here. Frozen, those objects are left
# out, and a trial costs what its training costs.
gc.freeze()

FEATURES = 8


def data(samples: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A separable two-class problem: the sign of a mix of two features."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, FEATURES)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int32")
    return x, y


def _model(units: int, learning_rate: float, extra: int | None = None,
           optimizer: str = "adam", momentum: float = 0.0) -> keras.Model:
    layers = [keras.Input((FEATURES,)), keras.layers.Dense(units, activation="relu")]
    if extra:
        layers.append(keras.layers.Dense(extra, activation="relu"))
    layers.append(keras.layers.Dense(2, activation="softmax"))
    model = keras.Sequential(layers)
    opt = (keras.optimizers.Adam(learning_rate) if optimizer == "adam"
           else keras.optimizers.SGD(learning_rate, momentum=momentum))
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def build(hp):
    """Two hyperparameters: a Choice and a log-sampled Float."""
    return _model(hp.Choice("units", [4, 8]), hp.Float("lr", 1e-3, 1e-1, sampling="log"))


def build_grid(hp):
    """A four-point grid."""
    return _model(hp.Choice("units", [4, 8]), hp.Choice("lr", [0.01, 0.1]))


def build_branches(hp):
    """A plain ``if`` branch and a ``conditional_scope``: twelve combinations."""
    extra = hp.Choice("extra", [2, 4]) if hp.Boolean("second") else None
    optimizer = hp.Choice("optimizer", ["adam", "sgd"])
    momentum = 0.0
    with hp.conditional_scope("optimizer", ["sgd"]):
        if optimizer == "sgd":
            momentum = hp.Choice("momentum", [0.0, 0.9])
    return _model(4, 0.05, extra=extra, optimizer=optimizer, momentum=momentum)


def build_scoped(hp):
    """Only a ``conditional_scope``, which KerasTuner also finds before the first trial:
    six combinations."""
    units = hp.Choice("units", [4, 8])
    optimizer = hp.Choice("optimizer", ["adam", "sgd"])
    momentum = 0.0
    with hp.conditional_scope("optimizer", ["sgd"]):
        if optimizer == "sgd":
            momentum = hp.Choice("momentum", [0.0, 0.9])
    return _model(units, 0.05, optimizer=optimizer, momentum=momentum)


BUILDS = {"build": build, "grid": build_grid, "branches": build_branches,
          "scoped": build_scoped}


# -- what the tests of a ported script share --------------------------------------------

X, Y = data()


def search(tuner: Any, epochs: int = 2, **kwargs: Any) -> Any:
    """``tuner.search`` on the tiny problem, validated on its own data, silently."""
    tuner.search(X, Y, epochs=epochs, validation_data=(X, Y), verbose=0, **kwargs)
    return tuner


def rows(path: Any, query: str, *args: Any) -> list[Any]:
    """The rows ``query`` reads from the search file at ``path``."""
    with sqlite3.connect(path) as conn:
        return conn.execute(query, args).fetchall()


def epochs_recorded(path: Any) -> dict[str, dict[str, list[int]]]:
    """{trial_id: {metric: [steps]}} of every observation in the file."""
    out: dict[str, dict[str, list[int]]] = {}
    for trial_id, metric, step in rows(
            path, "SELECT trial_id, metric, step FROM metric_history ORDER BY trial_id, step"):
        out.setdefault(trial_id, {}).setdefault(metric, []).append(step)
    return out


class Squares(_kt.Tuner):
    """A Tuner of one's own: no Keras model, a float to minimise."""

    def run_trial(self, trial, offset):
        x = trial.hyperparameters.Float("x", -3, 3)
        return (x - offset) ** 2
