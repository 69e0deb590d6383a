"""A ported KerasTuner script whose trials stop, fail or meet a failing store: real
Keras, real training, on a CPU.

A trial stopped from outside or by a stopping rule, failed, fatal, or ending with what is
not a number ends as it would in KerasTuner, and the search goes on or stops as
KerasTuner's would; a store failing under a trial hands it back.
"""

from __future__ import annotations

import sqlite3

import keras
import keras_tuner
import pytest
from _keras_models import build, epochs_recorded, rows, search

import hpstore
import hpstore.keras as kt

# numpy 2 asks torch tensors for a keyword they do not take, once per batch
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


class StopAtEpoch1(kt.RandomSearch):
    """Stops each trial from outside at epoch 1, as an early-stopping rule would."""

    def on_epoch_end(self, trial, model, epoch, logs=None):
        if epoch == 1:
            self.oracle.hpstore_oracle.project.set_status(trial.trial_id, "STOPPED", "enough")


def test_a_stopped_trial_stops_training_and_is_scored_on_what_it_reached(tmp_path):
    tuner = search(StopAtEpoch1(build, objective="val_accuracy", max_trials=2,
                                directory=str(tmp_path), project_name="p"), epochs=5)
    recorded = epochs_recorded(tmp_path / "p.db")
    assert {t: r["val_accuracy"] for t, r in recorded.items()} == {"0": [0, 1], "1": [0, 1]}
    for trial_id in ("0", "1"):
        trial = tuner.oracle.get_trial(trial_id)
        assert trial.status == "STOPPED"
        assert trial.score == max(o.mean() for o in trial.metrics.get_history("val_accuracy"))


class Raising(kt.HyperModel):
    def __init__(self, error):
        super().__init__()
        self.error = error

    def build(self, hp):
        return build(hp)

    def fit(self, hp, model, *args, **kwargs):
        raise self.error


@pytest.mark.parametrize("fatal", [keras_tuner.errors.FatalError, hpstore.FatalError])
def test_a_fatal_error_stops_the_search_with_its_trial_failed(tmp_path, fatal):
    tuner = kt.RandomSearch(Raising(fatal("no data")),
                            objective="val_accuracy", max_trials=3, directory=str(tmp_path),
                            project_name="p")
    with pytest.raises(fatal, match="no data"):
        search(tuner)
    # KerasTuner leaves it RUNNING; here the next run does not wait for it
    assert rows(tmp_path / "p.db", "SELECT status FROM trials") == [("FAILED",)]


@pytest.mark.parametrize("failed", [keras_tuner.errors.FailedTrialError,
                                    hpstore.FailedTrialError])
def test_a_failed_trial_is_failed_and_the_search_goes_on(tmp_path, failed):
    tuner = kt.RandomSearch(Raising(failed("too big")),
                            objective="val_accuracy", max_trials=2,
                            max_consecutive_failed_trials=5, directory=str(tmp_path),
                            project_name="p")
    search(tuner)
    statuses = rows(tmp_path / "p.db", "SELECT status, message FROM trials")
    assert [s for s, _ in statuses] == ["FAILED", "FAILED"]
    assert all("too big" in m for _, m in statuses)


class ReturnsNotANumber(Raising):
    def fit(self, hp, model, *args, **kwargs):
        return {"val_accuracy": self.error}


@pytest.mark.parametrize("value", ["0.5", True, [0.5, 0.6]])
def test_a_returned_metric_that_is_no_number_fails_its_trial_and_stops_the_search(
        tmp_path, value):
    # KerasTuner scores "0.5" and True, and retries a list until three trials failed:
    # every trial would repeat the mistake, so the first one stops the search
    tuner = kt.RandomSearch(ReturnsNotANumber(value), objective="val_accuracy",
                            max_trials=3, max_consecutive_failed_trials=5,
                            directory=str(tmp_path), project_name="p")
    with pytest.raises(hpstore.InvalidMetricError, match="val_accuracy"):
        search(tuner)
    assert rows(tmp_path / "p.db", "SELECT status FROM trials") == [("FAILED",)]


class EachExecutionItsOwn(Raising):
    def fit(self, hp, model, *args, **kwargs):
        self.error += 1  # (the execution's number)
        return {"val_accuracy": 0.5 * self.error, f"only_in_{self.error}": 1.0}


def test_executions_returning_other_metrics_are_averaged_over_all_of_them(tmp_path):
    tuner = kt.RandomSearch(EachExecutionItsOwn(0), objective="val_accuracy",
                            max_trials=1, executions_per_trial=2,
                            directory=str(tmp_path), project_name="p")
    search(tuner)
    trial = tuner.oracle.get_trial("0")
    assert trial.score == pytest.approx(0.75)
    assert {"only_in_1", "only_in_2"} <= set(trial.metrics.metrics)


def test_executions_stopped_at_different_epochs_are_scored_where_all_are_averaged(tmp_path):
    # executions_per_trial=2, the first stopped after its first epoch by a callback of the
    # script's (EarlyStopping): past that epoch the curve averaged the second alone, whose
    # value alone scored the trial
    trainings = []

    class Scores(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            trainings.append(self)

        def on_epoch_end(self, epoch, logs=None):
            first = trainings[0] is self
            logs["score"] = 5.0 if epoch == 0 else 1.0
            if first:
                self.model.stop_training = True

    tuner = kt.RandomSearch(build, objective=kt.Objective("score", "min"), max_trials=1,
                            executions_per_trial=2, directory=str(tmp_path), project_name="p")
    search(tuner, epochs=3, callbacks=[Scores()])
    assert len(trainings) == 2
    trial = tuner.oracle.get_trial("0")
    assert [o.step for o in trial.metrics.get_history("score")] == [0, 1, 2]
    assert (trial.score, trial.best_step) == (5.0, 0)


def test_a_stopping_rule_stops_keras_training(tmp_path):
    """early_stopping= on a KerasTuner tuner: a trial whose validation loss leaves the
    bound stops training at once, and ends STOPPED, scored on the epochs it ran."""
    tuner = search(kt.RandomSearch(build, objective="val_loss", max_trials=2,
                                   directory=str(tmp_path), project_name="p",
                                   early_stopping=hpstore.Threshold(upper=-1.0)), epochs=4)
    recorded = epochs_recorded(tmp_path / "p.db")
    assert {t: r["val_loss"] for t, r in recorded.items()} == {"0": [0], "1": [0]}
    for trial_id in ("0", "1"):
        trial = tuner.oracle.get_trial(trial_id)
        assert trial.status == "STOPPED" and "Threshold" in trial.message


def test_a_trial_stopped_in_one_execution_runs_no_further_execution(tmp_path):
    """executions_per_trial=3: the first execution's epoch 0 stops the trial; the two
    executions left train no model (each would have trained an epoch and averaged it into
    the stopped trial's curve, changing the score the stop gave it)."""
    fits = []

    class CountFits(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            fits.append(0)

    tuner = search(kt.RandomSearch(build, objective="val_loss", max_trials=1,
                                   executions_per_trial=3, directory=str(tmp_path),
                                   project_name="p",
                                   early_stopping=hpstore.Threshold(upper=-1.0)),
                   epochs=3, callbacks=[CountFits()])
    assert len(fits) == 1
    history = tuner.oracle.hpstore_oracle.get_trial("0").metrics.get_history("val_loss")
    assert [(o.step, len(o.value)) for o in history] == [(0, 1)]
    trial = tuner.oracle.get_trial("0")
    assert trial.status == "STOPPED" and trial.score == history[0].value[0]


class Failing(kt.Tuner):
    """A Tuner whose every run raises an ordinary error (an INVALID run: retried)."""

    def run_trial(self, trial):
        trial.hyperparameters.Int("x", 0, 9)
        raise RuntimeError("boom")


def test_the_oracles_failure_settings_are_read_and_set_on_tuner_oracle(tmp_path, capsys):
    # KerasTuner keeps them as plain attributes, and scripts set them on tuner.oracle: here
    # they were missing (AttributeError), and a value set was not used
    tuner = Failing(oracle=kt.oracles.RandomSearchOracle(objective="loss", max_trials=1),
                    directory=str(tmp_path), project_name="f")
    oracle = tuner.oracle
    assert (oracle.max_retries_per_trial, oracle.max_consecutive_failed_trials,
            oracle.allow_new_entries, oracle.tune_new_entries) == (0, 3, True, True)
    oracle.max_retries_per_trial = 2
    oracle.max_consecutive_failed_trials = 1
    with pytest.raises(RuntimeError, match="limit of 1"):
        tuner.search()
    assert rows(tmp_path / "f.db", "SELECT status, invalid_runs FROM trials") == [("FAILED", 3)]
    out = capsys.readouterr().out
    assert "Trial 0 failed 1 time; 2 retries left." in out, out
    assert "Trial 0 failed 2 times; 1 retry left." in out, out
    with pytest.raises(ValueError, match="max_retries_per_trial"):
        oracle.max_retries_per_trial = -1
    with pytest.raises(TypeError, match="allow_new_entries"):
        oracle.allow_new_entries = "no"
    assert oracle.max_retries_per_trial == oracle.hpstore_oracle.max_retries_per_trial == 2


class HeldOnce(kt.Tuner):
    """Its first trial's report meets the file locked by a writer that does not let go."""

    held = False

    def run_trial(self, trial):
        x = trial.hyperparameters.Int("x", 0, 9)
        if not HeldOnce.held:
            HeldOnce.held = True
            path = self.oracle.hpstore_oracle.store.location
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            try:
                self.oracle.update_trial(trial.trial_id, {"loss": 1.0})
            finally:
                other.execute("ROLLBACK")
                other.close()
        return float(x)


def test_a_store_failure_under_a_keras_trial_hands_it_back_and_stops(tmp_path):
    # the trial was INVALID, then FAILED for good, and the search went on one short
    tuner = HeldOnce(oracle=kt.oracles.RandomSearchOracle(objective="loss", max_trials=3),
                     directory=str(tmp_path), project_name="h")
    db = tuner.oracle.hpstore_oracle.store.db
    db.timeout = 0.2
    db.connect().execute("PRAGMA busy_timeout = 200")  # (the open connection)
    with pytest.raises(hpstore.DatabaseError, match="stayed locked"):
        tuner.search()
    assert rows(tmp_path / "h.db", "SELECT status FROM trials") == [("IDLE",)]
    db.timeout = 60.0
    tuner.search()
    assert rows(tmp_path / "h.db", "SELECT status FROM trials") == [("COMPLETED",)] * 3
