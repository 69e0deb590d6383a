"""KerasTuner's tuners with the search in an hpstore file: ``import hpstore.keras as kt``.

An ordinary KerasTuner script runs unchanged but for its import line. KerasTuner still
builds, fits, checkpoints the best epoch and loads models; hpstore's oracles decide the
trials and keep the whole search in one SQLite file (``<directory>/<project_name>.db``
unless ``database=`` says otherwise), so the same script started several times shares
one search with no chief process, and resumes after a crash.

Needs the ``keras`` extra (``pip install "hpstore[keras]"``: keras-tuner and keras) and a
Keras backend of your choice (``KERAS_BACKEND``).
"""

from __future__ import annotations

from typing import Any

try:
    import keras_tuner as _keras_tuner
except (ImportError, ValueError) as exc:  # keras-tuner, keras, or the KERAS_BACKEND named
    raise ImportError(
        f"hpstore.keras needs keras-tuner, keras and a Keras backend ({exc}). Install them "
        'with pip install "hpstore[keras]" plus a backend (tensorflow, torch or jax), and '
        "name the backend in KERAS_BACKEND.") from exc

from keras_tuner import HyperModel, HyperParameters, Objective, applications, errors

from hpstore.keras import oracles
from hpstore.keras.callback import EpochRecorder
from hpstore.keras.oracle import Oracle
from hpstore.keras.tuners import BayesianOptimization, GridSearch, Hyperband, RandomSearch, Tuner

__all__ = [
    "BayesianOptimization",
    "EpochRecorder",
    "GridSearch",
    "HyperModel",
    "HyperParameters",
    "Hyperband",
    "Objective",
    "Oracle",
    "RandomSearch",
    "Tuner",
    "applications",
    "errors",
    "oracles",
]


def __getattr__(name: str) -> Any:
    if hasattr(_keras_tuner, name):
        raise AttributeError(
            f"hpstore.keras has no {name!r}: it brings KerasTuner's Keras tuners onto hpstore "
            f"({', '.join(__all__)}). Use keras_tuner.{name} itself for it.")
    raise AttributeError(f"module 'hpstore.keras' has no attribute {name!r}")
