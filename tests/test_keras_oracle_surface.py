"""What KerasTuner's own code does with its oracle, done with hpstore.keras's: declaring on
``oracle.hyperparameters``, an ``update_trial`` of a subclass's own, the earlier
``end_trial(trial_id, status)``, the trial ``create_trial`` hands out kept up to date, and
the errors KerasTuner raises for a wrong oracle or a project it cannot reload."""

from __future__ import annotations

import sqlite3
import warnings
from typing import Any

import pytest
from _keras_models import build, data

import hpstore.keras as kt

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")

X, Y = data()
EPOCHS = 3


def values(path: Any) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [v for (v,) in conn.execute("SELECT hp_values FROM trials ORDER BY number")]


def test_a_hyperparameter_declared_on_the_oracle_joins_the_space(tmp_path: Any) -> None:
    # KerasTuner's way: declared on tuner.oracle.hyperparameters before search(). Each
    # access handed out a copy, and the search ran trials of no values, in silence.
    class Tuned(kt.RandomSearch):
        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> float:
            return float(trial.hyperparameters.get("lr"))

    tuner = Tuned(objective=kt.Objective("score", "max"), max_trials=3,
                  directory=str(tmp_path), project_name="p", seed=1)
    space = tuner.oracle.hyperparameters
    space.Float("lr", 1e-4, 1e-1, sampling="log")
    assert tuner.oracle.hyperparameters is space  # the same object until the space changes
    assert [hp.name for hp in tuner.oracle.get_space().space] == ["lr"]
    tuner.search(verbose=0)
    assert len(values(tmp_path / "p.db")) == 3
    assert all('"lr"' in v for v in values(tmp_path / "p.db"))
    best = tuner.get_best_hyperparameters(1)[0]
    assert 1e-4 <= best.get("lr") <= 1e-1


def test_a_declaration_on_an_earlier_space_object_a_script_keeps_joins_too(tmp_path: Any
                                                                            ) -> None:
    # once the space changed and the property was read again, what was declared on the
    # object the script still held was dropped in silence
    import keras_tuner

    tuner = kt.Tuner(oracle=kt.oracles.RandomSearchOracle(objective="loss", max_trials=3,
                                                          seed=1),
                     hypermodel=build, directory=str(tmp_path), project_name="p")
    held = tuner.oracle.hyperparameters
    more = keras_tuner.HyperParameters()
    more.Int("b", 0, 3)
    tuner.oracle.update_space(more)
    assert tuner.oracle.hyperparameters is not held  # (the space changed)
    held.Float("later", 0.0, 1.0)
    assert [hp.name for hp in tuner.oracle.get_space().space][-2:] == ["b", "later"]


def test_an_update_trial_of_a_subclass_gets_each_trials_result_as_in_keras_tuner(
        tmp_path: Any) -> None:
    # KerasTuner calls it once a trial ran, with the run's result at its best epoch; here
    # the epochs are recorded as they run, and the override was never called
    calls: list[tuple[str, set[str], int]] = []

    class Logging(kt.oracles.RandomSearchOracle):
        def update_trial(self, trial_id: str, metrics: Any, step: int = 0) -> Any:
            calls.append((trial_id, set(metrics), step))
            return super().update_trial(trial_id, metrics, step)

    tuner = kt.Tuner(oracle=Logging(objective="val_loss", max_trials=2, seed=1),
                     hypermodel=build, directory=str(tmp_path), project_name="p")
    tuner.search(X, Y, epochs=EPOCHS, validation_data=(X, Y), verbose=0)
    assert sorted(t for t, _, _ in calls) == sorted(tuner.oracle.trials)
    for trial_id, names, step in calls:
        trial = tuner.oracle.get_trial(trial_id)
        assert "val_loss" in names and step == trial.best_step
        # recorded once: each epoch's value, not the result again on top
        assert len(trial.metrics.get_history("val_loss")) == EPOCHS
        assert all(len(o.value) == 1 for o in trial.metrics.get_history("val_loss"))


def test_end_trial_takes_keras_tuners_earlier_signature(tmp_path: Any) -> None:
    oracle = kt.oracles.RandomSearchOracle(objective="loss", max_trials=5, seed=1)
    tuner = kt.Tuner(oracle=oracle, hypermodel=build, directory=str(tmp_path),
                     project_name="p")
    assert [h.name for h in tuner.oracle.get_space().space] == ["units", "lr"]
    ended = {}
    for status in ("COMPLETED", "INVALID"):
        trial = tuner.oracle.create_trial("w")
        tuner.oracle.update_trial(trial.trial_id, {"loss": 0.5}, step=0)
        if status == "COMPLETED":
            tuner.oracle.end_trial(trial.trial_id, status)
        else:
            tuner.oracle.end_trial(trial_id=trial.trial_id, status=status)
        ended[trial.trial_id] = trial.hyperparameters.values
    with sqlite3.connect(tmp_path / "p.db") as conn:
        rows = conn.execute("SELECT trial_id, status, score FROM trials ORDER BY number")
        # (INVALID with no retry left: FAILED)
        assert [(s, v) for _, s, v in rows] == [("COMPLETED", 0.5), ("FAILED", None)]
    for trial_id, hp_values in ended.items():  # its values kept (not the space's defaults)
        assert tuner.oracle.get_trial(trial_id).hyperparameters.values == hp_values


def test_the_trial_create_trial_hands_out_sees_what_update_trial_records(tmp_path: Any
                                                                         ) -> None:
    # a loop of one's own scores the trial it holds, as KerasTuner's oracle keeps it
    oracle = kt.oracles.RandomSearchOracle(objective="val_loss", max_trials=2, seed=1)
    tuner = kt.Tuner(oracle=oracle, hypermodel=build, directory=str(tmp_path),
                     project_name="p")
    assert [h.name for h in tuner.oracle.get_space().space] == ["units", "lr"]
    trial = tuner.oracle.create_trial("w")
    for step, value in enumerate((0.9, 0.4, 0.6)):
        tuner.oracle.update_trial(trial.trial_id, {"val_loss": value}, step=step)
    assert [o.value for o in trial.metrics.get_history("val_loss")] == [[0.9], [0.4], [0.6]]
    tuner.oracle.score_trial(trial)
    assert (trial.score, trial.best_step) == (0.4, 1)
    tuner.oracle.end_trial(trial)
    assert tuner.oracle.get_trial(trial.trial_id).score == 0.4


def test_run_trial_reporting_through_update_trial_is_warned_deprecated(tmp_path: Any
                                                                       ) -> None:
    class Reports(kt.RandomSearch):
        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> None:
            self.oracle.update_trial(trial.trial_id, {"score": 1.0})

    tuner = Reports(objective=kt.Objective("score", "max"), max_trials=1,
                    hypermodel=lambda hp: hp.Int("x", 0, 3) and None,
                    directory=str(tmp_path), project_name="p")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tuner.search(verbose=0)
    said = [str(w.message) for w in caught if w.category is DeprecationWarning
            and "update_trial" in str(w.message)]
    assert len(said) == 1 and "return them from run_trial" in said[0]
    assert tuner.oracle.get_best_trials(1)[0].score == 1.0


def test_the_errors_keras_tuner_raises_are_raised(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="`oracle` must be"):  # KerasTuner: ValueError
        kt.Tuner(oracle="invalid", hypermodel=build)
    with pytest.raises(TypeError, match="`oracle` must be"):  # (and, as before, TypeError)
        kt.Tuner(oracle="invalid", hypermodel=build)
    tuner = kt.RandomSearch(build, objective="val_loss", max_trials=1,
                            directory=str(tmp_path), project_name="p")
    tuner.search(X, Y, epochs=1, validation_data=(X, Y), verbose=0)
    # reloaded by another tuner: KerasTuner raises RuntimeError, and so does this
    with pytest.raises(RuntimeError, match="overwrite=True"):
        kt.BayesianOptimization(build, objective="val_loss", max_trials=1,
                                directory=str(tmp_path), project_name="p")


def test_a_trial_made_before_the_script_declared_more_runs_with_the_new_ones_at_default(
        tmp_path: Any) -> None:
    # queued (or interrupted) before the edit, it held no value of the new hyperparameter,
    # and KerasTuner's HyperParameters raised KeyError for it: each such trial FAILED
    import keras

    def model(hp: Any, *, more: bool) -> Any:
        layers = [keras.Input((X.shape[1],)), keras.layers.Dense(hp.Choice("units", [1, 2, 3]))]
        if more and hp.Boolean("dropout"):
            layers.append(keras.layers.Dropout(0.1))
        built = keras.Sequential([*layers, keras.layers.Dense(1)])
        built.compile("sgd", "mse")
        return built

    before = kt.RandomSearch(lambda hp: model(hp, more=False), objective="val_loss",
                             max_trials=2, directory=str(tmp_path), project_name="p", seed=1)
    before.search(X, Y, epochs=1, validation_data=(X, Y), verbose=0)
    waiting = before.oracle.hpstore_oracle
    waiting.max_trials = 3
    queued = waiting.enqueue_trial({"units": 3})
    after = kt.RandomSearch(lambda hp: model(hp, more=True), objective="val_loss",
                            max_trials=3, directory=str(tmp_path), project_name="p")
    after.search(X, Y, epochs=1, validation_data=(X, Y), verbose=0)
    with sqlite3.connect(tmp_path / "p.db") as conn:
        status, hp_values = conn.execute("SELECT status, hp_values FROM trials WHERE "
                                         "trial_id = ?", (queued,)).fetchone()
    assert (status, hp_values) == ("COMPLETED", '{"units":3,"dropout":false}')
