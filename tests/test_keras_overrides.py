"""A ported KerasTuner script's oracle of its own: a subclass of one of ``kt.oracles``
overriding a method KerasTuner users override. ``create_trial`` and ``end_trial`` are the
Tuner's own calls and run; ``score_trial`` is called as KerasTuner calls it, with the
KerasTuner Trial, when a trial ends scored; ``populate_space`` and ``update_space``, which
the hpstore oracle underneath answers, are refused when the class is written, never
silently skipped. Real Keras, training a tiny model on a CPU."""

from __future__ import annotations

import math
import sqlite3
import warnings
from typing import Any

import keras_tuner
import pytest
from _keras_models import build, data

import hpstore.keras as kt

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")

X, Y = data()
EPOCHS = 2


def search(tuner: Any) -> None:
    tuner.search(X, Y, epochs=EPOCHS, validation_data=(X, Y), verbose=0)


def stored(path: Any) -> dict[str, tuple[str, float | None]]:
    """trial id -> (status, score) as the file holds them."""
    with sqlite3.connect(path) as conn:
        return {t: (s, v) for t, s, v in conn.execute(
            "SELECT trial_id, status, score FROM trials")}


def test_a_score_trial_override_scores_every_trial_with_a_keras_trial(tmp_path: Any) -> None:
    seen: list[tuple[str, str, list[float]]] = []

    class LastEpoch(kt.oracles.RandomSearchOracle):
        def score_trial(self, trial: Any) -> None:
            assert isinstance(trial, keras_tuner.engine.trial.Trial)
            history = [o.mean() for o in trial.metrics.get_history("val_loss")]
            seen.append((trial.trial_id, trial.status, history))
            trial.score, trial.best_step = history[-1] + 100.0, len(history) - 1

    oracle = LastEpoch(objective="val_loss", max_trials=3, seed=1)
    tuner = kt.Tuner(oracle=oracle, hypermodel=build, directory=str(tmp_path),
                     project_name="p")
    search(tuner)
    assert sorted(t for t, _, _ in seen) == sorted(tuner.oracle.trials)
    assert {status for _, status, _ in seen} == {"COMPLETED"}
    assert all(len(history) == EPOCHS for _, _, history in seen)
    rows = stored(tmp_path / "p.db")
    for trial_id, _, history in seen:
        assert rows[trial_id] == ("COMPLETED", pytest.approx(history[-1] + 100.0))
        assert tuner.oracle.get_trial(trial_id).best_step == EPOCHS - 1
    best = tuner.oracle.get_best_trials(1)[0]
    assert best.score == min(h[-1] for _, _, h in seen) + 100.0


def test_an_override_that_calls_super_gets_the_score_hpstore_gives(tmp_path: Any) -> None:
    given: list[tuple[float, int]] = []

    class Watching(kt.oracles.RandomSearchOracle):
        def score_trial(self, trial: Any) -> None:
            super().score_trial(trial)
            given.append((trial.score, trial.best_step))

    tuner = kt.Tuner(oracle=Watching(objective="val_loss", max_trials=2, seed=1),
                     hypermodel=build, directory=str(tmp_path), project_name="p")
    search(tuner)
    assert len(given) == 2
    for trial in tuner.oracle.trials.values():
        best = min(o.mean() for o in trial.metrics.get_history("val_loss"))
        assert (trial.score, trial.best_step) in given
        assert trial.score == pytest.approx(best)


def test_a_nan_score_from_the_override_fails_the_trial_as_in_keras_tuner(tmp_path: Any
                                                                         ) -> None:
    class Unscorable(kt.oracles.RandomSearchOracle):
        def score_trial(self, trial: Any) -> None:
            trial.score = math.nan

    tuner = kt.Tuner(oracle=Unscorable(objective="val_loss", max_trials=1, seed=1,
                                       max_consecutive_failed_trials=1),
                     hypermodel=build, directory=str(tmp_path), project_name="p")
    with pytest.raises(RuntimeError, match="consecutive"):
        search(tuner)
    assert [s for s, _ in stored(tmp_path / "p.db").values()] == ["FAILED"]


def test_a_status_set_by_the_override_is_honoured_as_in_keras_tuner(tmp_path: Any) -> None:
    # a run the override deems infeasible (INVALID) was recorded COMPLETED all the same
    seen: list[str] = []

    class Infeasible(kt.oracles.RandomSearchOracle):
        def score_trial(self, trial: Any) -> None:
            super().score_trial(trial)
            seen.append(trial.status)
            trial.status = "INVALID"

    tuner = kt.Tuner(oracle=Infeasible(objective="val_loss", max_trials=1, seed=1,
                                       max_retries_per_trial=1,
                                       max_consecutive_failed_trials=1),
                     hypermodel=build, directory=str(tmp_path), project_name="p")
    with pytest.raises(RuntimeError, match="consecutive"):
        search(tuner)
    assert seen == ["COMPLETED", "COMPLETED"]  # run again once, then FAILED
    assert [s for s, _ in stored(tmp_path / "p.db").values()] == ["FAILED"]


@pytest.mark.parametrize("method", ["populate_space", "update_space"])
@pytest.mark.parametrize("base", ["RandomSearchOracle", "HyperbandOracle"])
def test_an_override_the_hpstore_oracle_answers_is_refused_when_written(
        method: str, base: str) -> None:
    def override(self: Any, arg: Any) -> Any:  # pragma: no cover - never called
        return None

    with pytest.raises(TypeError, match=rf"(?s){method}.*hpstore\.Oracle.*oracle="):
        type("Mine", (getattr(kt.oracles, base),), {method: override})


def test_create_trial_and_end_trial_overrides_run_as_the_tuner_calls_them(tmp_path: Any
                                                                           ) -> None:
    calls: list[str] = []

    class Counting(kt.oracles.RandomSearchOracle):
        def create_trial(self, tuner_id: str) -> Any:
            trial = super().create_trial(tuner_id)
            calls.append(f"create {trial.status}")
            return trial

        def end_trial(self, trial: Any) -> None:
            calls.append(f"end {trial.trial_id}")
            super().end_trial(trial)

    tuner = kt.Tuner(oracle=Counting(objective="val_loss", max_trials=2, seed=1),
                     hypermodel=build, directory=str(tmp_path), project_name="p")
    search(tuner)
    assert calls.count("create RUNNING") == 2
    assert sorted(c for c in calls if c.startswith("end")) == sorted(
        f"end {t}" for t in tuner.oracle.trials)


def test_own_get_state_and_set_state_are_said_to_go_uncalled_as_the_class_is_written():
    # KerasTuner calls them at each save and reload; here nothing is saved or reloaded, and
    # a counter kept through them read 2 after the search resumed to 4 trials, unsaid
    with pytest.warns(UserWarning, match="overrides get_state and set_state, which "
                                         "hpstore.keras never calls on its oracles"):
        class Counting(kt.oracles.RandomSearchOracle):
            def get_state(self):
                return {}

            def set_state(self, state):
                pass

    with pytest.warns(UserWarning, match="overrides set_state, which hpstore.keras never "
                                         "calls on its tuners.*set_state_value"):
        class Restoring(kt.RandomSearch):
            def set_state(self, state):
                pass

    with warnings.catch_warnings():
        warnings.simplefilter("error")

        class Plain(kt.RandomSearch):  # (nothing of its own: nothing said)
            def on_trial_end(self, trial):
                super().on_trial_end(trial)


def test_an_on_trial_end_that_does_not_call_super_still_ends_its_trial(tmp_path, capsys):
    # KerasTuner's on_trial_end ends the trial: an override without super() left it
    # running, the oracle handed the tuner its own trial back, and it ran forever
    ran = []

    class Forgetful(kt.RandomSearch):
        def run_trial(self, trial, *args, **kwargs):
            ran.append(trial.trial_id)
            if len(ran) > 6:
                raise SystemExit(f"run again and again: {ran}")
            return trial.hyperparameters.Float("x", -1.0, 1.0) ** 2

        def on_trial_end(self, trial):
            ran.append(f"end {trial.trial_id}")

    tuner = Forgetful(objective=kt.Objective("score", "min"), max_trials=2, seed=1,
                      directory=str(tmp_path), project_name="p")
    tuner.search(verbose=0)
    assert ran == ["0", "end 0", "1", "end 1"]
    assert [t.status for t in tuner.oracle.trials.values()] == ["COMPLETED"] * 2
    assert capsys.readouterr().out.count("did not call super().on_trial_end(trial)") == 1
