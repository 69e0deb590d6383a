"""A ported KerasTuner script whose objective names a metric Keras never logs: a ``val_``
metric without validation data, a misspelt name, a metric the model was not compiled
with. KerasTuner fails each trial on a bare ``KeyError`` from its own code and stops after
three; every trial would repeat it, so hpstore.keras stops at the first, its trial FAILED
with an error that names the metric, the metrics logged, and what to change.

Tiny models on 64 samples, one epoch, on a CPU.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import keras
import pytest
from _keras_models import build, data

import hpstore
import hpstore.keras as kt

X, Y = data()
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


def trials_in(path: Any) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT trial_id, status, COALESCE(message, '') FROM trials ORDER BY trial_id"
        ).fetchall()


def runs_in(path: Any) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [n for (n,) in conn.execute("SELECT run_count FROM trials ORDER BY trial_id")]


def tuner_for(directory: Any, kind: str, objective: Any, **kwargs: Any) -> Any:
    if kind == "hyperband":
        return kt.Hyperband(build, objective=objective, max_epochs=3, seed=1,
                            directory=str(directory), project_name="p", **kwargs)
    return kt.RandomSearch(build, objective=objective, max_trials=3, seed=1,
                           directory=str(directory), project_name="p", **kwargs)


VALIDATED = {"validation_data": (X, Y)}
# (objective, what search() is given besides the data, what the message must say)
MISTAKES = {
    "no validation data": ("val_accuracy", {},
                           ["'val_accuracy'", "['accuracy', 'loss']", "validation_data="]),
    "no epoch validated": ("val_accuracy", {**VALIDATED, "validation_freq": 2},
                           ["'val_accuracy'", "validation_freq"]),
    "misspelt": ("val_acc", VALIDATED, ["'val_acc'", "Did you mean 'val_accuracy'?"]),
    "misspelt, direction given": (kt.Objective("val_acc", "max"), VALIDATED,
                                  ["'val_acc'", "Did you mean 'val_accuracy'?"]),
    "not compiled": (kt.Objective("val_auc", "max"), VALIDATED,
                     ["'val_auc'", "model.compile(metrics=[...])"]),
}


@pytest.mark.parametrize(("mistake", "kind", "executions"), [
    ("no validation data", "random", 1),
    ("no epoch validated", "random", 1),
    ("misspelt", "random", 2),
    ("misspelt, direction given", "hyperband", 1),
    ("not compiled", "hyperband", 2),
])
def test_an_objective_keras_never_logs_stops_the_search_at_the_first_trial(
        tmp_path: Any, mistake: str, kind: str, executions: int) -> None:
    objective, given, said = MISTAKES[mistake]
    # a retry allowed, which a mistake every trial repeats does not use
    tuner = tuner_for(tmp_path, kind, objective, executions_per_trial=executions,
                      max_retries_per_trial=1)
    with pytest.raises(hpstore.MissingMetricError) as caught:
        tuner.search(X, Y, epochs=1, verbose=0, **given)
    error = caught.value
    # caught as KerasTuner's code catches it, and under hpstore's roots
    assert isinstance(error, KeyError) and isinstance(error, hpstore.FatalError)
    assert isinstance(error, hpstore.HpStoreError)
    assert isinstance(error, hpstore.MissingObjectiveError)  # as update_trial raises it
    message = str(error)
    assert not message.startswith(("'", '"'))  # not KeyError's quoted repr
    for words in said:
        assert words in message
    # the first trial is FAILED with that message; no other trial was started
    [(_, status, recorded)] = trials_in(tmp_path / "p.db")
    assert status == "FAILED" and message in recorded
    assert runs_in(tmp_path / "p.db") == [1]


def test_the_script_run_again_with_the_mistake_fixed_goes_on(tmp_path: Any) -> None:
    with pytest.raises(KeyError, match="validation_data="):
        tuner_for(tmp_path, "random", "val_accuracy").search(X, Y, epochs=1, verbose=0)
    tuner = tuner_for(tmp_path, "random", "val_accuracy")
    tuner.search(X, Y, epochs=1, verbose=0, validation_data=(X, Y))
    assert [row[1] for row in trials_in(tmp_path / "p.db")] == [
        "FAILED", "COMPLETED", "COMPLETED"]
    assert isinstance(tuner.get_best_models(1)[0], keras.Model)


def test_a_list_of_objectives_missing_one_stops_the_search_naming_it(tmp_path: Any) -> None:
    # KerasTuner's oracle refuses each such trial with a ValueError, three times over
    tuner = tuner_for(tmp_path, "random", ["val_accuracy", "loss"])
    with pytest.raises(hpstore.MissingMetricError, match="'val_accuracy'") as caught:
        tuner.search(X, Y, epochs=1, verbose=0)
    assert isinstance(caught.value, ValueError)
    assert "'loss' is" not in str(caught.value)  # only the one missing is named
    assert [row[1] for row in trials_in(tmp_path / "p.db")] == ["FAILED"]


class ScoresFromItsHistory(kt.RandomSearch):
    """A run_trial that computes the objective itself from the History's metrics: its
    History lacks the objective, but what it returns holds it."""

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
        history = super().run_trial(trial, *args, **kwargs)[0]
        return {"val_gap": history.history["val_loss"][-1] - history.history["loss"][-1]}


def test_a_run_trial_returning_the_objective_computed_from_its_history_runs(
        tmp_path: Any) -> None:
    tuner = ScoresFromItsHistory(build, objective=kt.Objective("val_gap", "min"),
                                 max_trials=2, seed=1, directory=str(tmp_path),
                                 project_name="p")
    tuner.search(X, Y, epochs=1, verbose=0, validation_data=(X, Y))
    assert [row[1] for row in trials_in(tmp_path / "p.db")] == ["COMPLETED", "COMPLETED"]


def test_epochs_validated_every_other_one_checkpoint_the_epoch_the_trial_is_scored_on(
        tmp_path):
    # With validation_freq=2 the epochs in between, not recorded, each saved KerasTuner's
    # checkpoint over the best validated epoch's: get_best_models() loaded the weights of
    # the last epoch, not of the epoch the trial is scored on
    last = {}

    class KeepLast(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            last["weights"] = [w.numpy().copy() for w in self.model.weights]

    tuner = kt.RandomSearch(build, objective="val_loss", max_trials=1, seed=1,
                            directory=str(tmp_path), project_name="p")
    tuner.search(X, Y, epochs=5, validation_data=(X, Y), validation_freq=2,
                 callbacks=[KeepLast()], verbose=0)
    best = tuner.oracle.get_best_trials(1)[0]
    assert [o.step for o in best.metrics.get_history("val_loss")] == [1, 3]
    model = tuner.get_best_models(1)[0]
    assert model.evaluate(X, Y, verbose=0)[0] == pytest.approx(best.score, rel=1e-5)
    assert not all((w.numpy() == kept).all() for w, kept in zip(model.weights,
                                                                last["weights"], strict=True))
