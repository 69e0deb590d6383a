"""Fuzzing the search file with hostile strings (names, messages, tuner ids, notes) and odd
metric values: each round-trips exactly through the file or fails with a clear error that
names it, leaving the file byte for byte as it was."""

from __future__ import annotations

import json
import math
import numbers
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from _fuzz import (
    CLEAR,
    FUZZ,
    comparable,
    copy_through_state,
    file_digest,
    names,
    run_trials,
    same,
    search_file,
    small_space,
    strict_json,
    texts,
)
from _workers import RandomTestOracle
from hypothesis import given, settings
from hypothesis import strategies as st

import hpstore
from hpstore.cli import main as cli_main

# -- 2. hostile strings -----------------------------------------------------------------------

@settings(FUZZ, max_examples=40)
@given(project=names, hp_name=names, choices=st.lists(texts, min_size=1, max_size=3,
                                                       unique=True),
       metric=names, tuner=names, message=texts)
def test_hostile_strings_round_trip(project, hp_name, choices, metric, tuner, message):
    hp = hpstore.HyperParameters()
    hp.Choice(hp_name, choices)
    hp.Fixed("fixed" if hp_name != "fixed" else "fixed2", {hp_name: choices, metric: message})
    with search_file() as path:
        oracle = RandomTestOracle(objective=hpstore.Objective(metric, "min"), hyperparameters=hp,
                                  max_trials=5, database=str(path), project_name=project)
        done = oracle.create_trial(tuner)
        oracle.update_trial(done.trial_id, {metric: 1.5, metric + "\x00": 2.5}, step=0)
        oracle.update_trial(done.trial_id, {metric: 0.5}, step=1)
        done.status = "COMPLETED"
        oracle.end_trial(done)
        failed = oracle.create_trial(tuner)
        if failed.status == "RUNNING":
            failed.status, failed.message = "FAILED", message
            oracle.end_trial(failed)
        oracle.close()

        fresh = RandomTestOracle(database=str(path), project_name=project)
        assert fresh.objective.name == metric
        assert same(fresh.hyperparameters.get_config()["space"], hp.get_config()["space"])
        back = fresh.get_trial(done.trial_id)
        assert same(back.hyperparameters.values, done.hyperparameters.values)
        assert back.tuner_id == tuner and back.score == 0.5 and back.best_step == 1
        assert set(back.metrics.metrics) == {metric, metric + "\x00"}
        if failed.status == "FAILED":
            again = fresh.get_trial(failed.trial_id)
            assert again.status == "FAILED" and again.message == message
        state = fresh.get_state()
        assert state["project_name"] == project
        assert same(strict_json(state), state)
        fresh.close()
        copied = copy_through_state(state, path.parent, project)
        assert same(comparable(copied), comparable(state))


@pytest.mark.parametrize("text", ["a\x00b", "\x00", "x" * 100_000,
                                  "Traceback (most recent call last):\n" * 3000],
                         ids=["nul", "only-nul", "100k", "long-traceback"])
def test_nul_and_very_long_text_round_trip(text):
    """NUL characters are kept (the driver binds text with its length) and very long text
    is stored whole, in every place a user's text goes."""
    hp = hpstore.HyperParameters()
    hp.Choice(text, [text, "other"], default=text)
    with search_file() as path:
        oracle = RandomTestOracle(objective=hpstore.Objective(text, "min"), hyperparameters=hp,
                                  max_trials=5, database=str(path), project_name=text)
        trial = oracle.create_trial(text)
        oracle.update_trial(trial.trial_id, {text: 1.0, text + "2": 2.0})
        trial.status, trial.message = "FAILED", text
        oracle.end_trial(trial)
        oracle.close()
        fresh = RandomTestOracle(database=str(path), project_name=text)
        back = fresh.get_trial(trial.trial_id)
        assert fresh.project_name == text and fresh.objective.name == text
        assert back.tuner_id == text and back.message == text
        assert set(back.metrics.metrics) == {text, text + "2"}
        assert back.values[text] in (text, "other")
        state = strict_json(fresh.get_state())
        assert state["trials"][0]["transitions"][-1][-1] == text  # the status log's message
        fresh.close()


SURROGATE = "bad\ud800name"


@pytest.mark.parametrize("where", ["project", "hp name", "choice", "fixed", "metric",
                                   "objective", "tuner"])
def test_lone_surrogates_are_refused_cleanly(where):
    """Text UTF-8 cannot hold is refused where it enters, naming the character, and the
    file is unchanged."""
    with search_file() as path:
        oracle = RandomTestOracle(objective="loss", hyperparameters=small_space(), max_trials=5,
                                  database=str(path))
        trial = oracle.create_trial("w")
        before = file_digest(path)
        with pytest.raises(CLEAR, match=r"\\ud800"):
            if where == "project":
                RandomTestOracle(database=str(path), project_name=SURROGATE)
            elif where in ("hp name", "choice", "fixed"):
                hp = hpstore.HyperParameters()
                {"hp name": lambda: hp.Int(SURROGATE, 0, 1),
                 "choice": lambda: hp.Choice("c2", ["ok", SURROGATE]),
                 "fixed": lambda: hp.Fixed("f", {"k": [SURROGATE]})}[where]()
            elif where == "metric":
                oracle.update_trial(trial.trial_id, {"loss": 1.0, SURROGATE: 2.0})
            elif where == "objective":
                RandomTestOracle(objective=hpstore.Objective(SURROGATE, "min"),
                                 database=str(path), project_name="other")
            else:
                oracle.create_trial(SURROGATE)
        assert file_digest(path) == before


def test_empty_strings_where_allowed_and_refused():
    with search_file() as path:
        hp = hpstore.HyperParameters()
        hp.Choice("c", ["", "a"])
        for make in (lambda: hp.Int("", 0, 1), lambda: hp.Fixed("", 1)):
            with pytest.raises(ValueError, match="non-empty"):
                make()
        with pytest.raises(ValueError, match="project_name"):
            RandomTestOracle(objective="loss", hyperparameters=hp, database=str(path),
                             project_name="")
        oracle = RandomTestOracle(objective="loss", hyperparameters=hp, max_trials=5,
                                  database=str(path))
        before = file_digest(path)
        with pytest.raises(ValueError, match="tuner_id"):
            oracle.create_trial("")
        assert file_digest(path) == before
        trial = oracle.create_trial("w")
        before = file_digest(path)
        with pytest.raises(hpstore.InvalidMetricError, match="non-empty"):
            oracle.update_trial(trial.trial_id, {"loss": 1.0, "": 2.0})
        assert file_digest(path) == before
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        trial.status, trial.message = "FAILED", ""
        oracle.end_trial(trial)
        oracle.close()
        back = RandomTestOracle(database=str(path)).get_trial(trial.trial_id)
        assert back.message == "" and back.values["c"] in ("", "a")


def test_hyperparameters_named_like_columns_keep_both(tmp_path, capsys):
    """`hpstore trials` shows a hyperparameter called "status" beside the trial's status."""
    hp = hpstore.HyperParameters()
    hp.Choice("status", ["s"])
    hp.Fixed("score", "not a score")
    hp.Fixed("hp:score", 3)
    path = tmp_path / "columns.db"
    oracle = RandomTestOracle(objective="loss", hyperparameters=hp, max_trials=2,
                              database=str(path))
    run_trials(oracle, count=1)
    oracle.close()
    assert cli_main(["trials", str(path), "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["status"] == "COMPLETED" and row["score"] == 0.0
    assert row["hp:status"] == "s" and row["hp:score"] == "not a score"
    assert row["hp:hp:score"] == 3


# -- 3. metric values -------------------------------------------------------------------------

METRIC_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
    st.integers() | st.sampled_from([2**1023, 10**400, -(10**400), 2**53 + 1]),
    st.sampled_from([
        1e308, -1e308, 5e-324, -5e-324, -0.0, True, False, "1.5", "nan", None, 1j, [1.0],
        Decimal("1.5"), Fraction(1, 3), Fraction(10**400, 3), np.float16(1.5),
        np.float32("nan"), np.float64("-inf"), np.int64(-7), np.longdouble("1e-300"),
        np.bool_(True), np.array(2.5), np.array([1.0, 2.0]), np.array([3.0])]),
)


def stored_as(value: Any) -> float | None:
    """The float the file holds for a metric value, or None when it must be refused."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, numbers.Real):
        try:
            result = float(value)
        except OverflowError:
            return None
        return 0.0 if result == 0 else result  # SQLite keeps no sign on a zero REAL
    if hasattr(value, "item") and getattr(value, "size", 1) == 1:
        return stored_as(value.item())
    return None


@settings(FUZZ, max_examples=40)
@given(values=st.lists(METRIC_VALUES, min_size=1, max_size=4))
def test_metric_values_round_trip_or_are_refused(values):
    with search_file() as path:
        oracle = RandomTestOracle(objective="loss", hyperparameters=small_space(), max_trials=3,
                                  database=str(path))
        trial = oracle.create_trial("w")
        oracle.update_trial(trial.trial_id, {"loss": 1.0})  # a refused report keeps nothing
        expected = {}
        for step, value in enumerate(values):
            name = f"m{step}"
            want = stored_as(value)
            if want is None:
                before = file_digest(path)
                with pytest.raises(hpstore.InvalidMetricError) as info:
                    oracle.update_trial(trial.trial_id, {"loss": 1.0, name: value}, step=step)
                assert repr(name) in str(info.value)
                assert file_digest(path) == before
            else:
                oracle.update_trial(trial.trial_id, {"loss": 1.0, name: value}, step=step)
                expected[name] = (step, want)
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        oracle.close()

        fresh = RandomTestOracle(database=str(path))
        back = fresh.get_trial(trial.trial_id)
        assert back.status == "COMPLETED" and back.score == 1.0
        for name, (step, want) in expected.items():
            (obs,) = back.metrics.get_history(name)
            assert obs.step == step and same(obs.value, [want]), (name, obs.value, want)
        state = fresh.get_state()
        fresh.close()
        if all(math.isfinite(w) or math.isnan(w) for _, w in expected.values()):
            state = strict_json(state)  # NaN is stored as NULL: the state holds None
        else:  # an infinity: see test_state_with_an_infinite_metric_is_strict_json
            state = json.loads(json.dumps(state))
        copied = copy_through_state(state, path.parent, "untitled_project")
        assert same(comparable(copied), comparable(state))


@pytest.mark.parametrize(("value", "status", "score"), [
    (math.inf, "COMPLETED", math.inf), (-math.inf, "COMPLETED", -math.inf),
    (1e308, "COMPLETED", 1e308), (5e-324, "COMPLETED", 5e-324), (-0.0, "COMPLETED", 0.0),
    (math.nan, "FAILED", None), (np.float32(0.25), "COMPLETED", 0.25),
])
def test_objective_values_score_as_documented(value, status, score):
    """A real-number objective, infinities included, is the score as reported; NaN leaves
    the trial unscored: INVALID, and FAILED with no retries left (README: Objectives)."""
    with search_file() as path:
        oracle = RandomTestOracle(objective="loss", hyperparameters=small_space(), max_trials=3,
                                  database=str(path))
        trial = oracle.create_trial("w")
        oracle.update_trial(trial.trial_id, {"loss": value})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        oracle.close()
        back = RandomTestOracle(database=str(path)).get_trial(trial.trial_id)
        assert back.status == status and same(back.score, score)
        if score is None:
            assert "objective 'loss'" in back.message
            assert math.isnan(back.metrics.get_last_value("loss"))


def test_state_with_an_infinite_metric_is_strict_json():
    with search_file() as path:
        oracle = RandomTestOracle(objective="loss", hyperparameters=small_space(), max_trials=3,
                                  database=str(path))
        trial = oracle.create_trial("w")
        oracle.update_trial(trial.trial_id, {"loss": -math.inf, "other": math.inf})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        text = json.dumps(oracle.get_state(), allow_nan=False)
        oracle.set_state(json.loads(text))  # and back: the strings become floats again
        again = oracle.get_trial(trial.trial_id)
        assert again.score == -math.inf
        assert again.metrics.get_history("other")[0].value == [math.inf]


def test_a_step_beyond_sqlite_is_a_clear_error():
    with search_file() as path:
        oracle = RandomTestOracle(objective="loss", hyperparameters=small_space(), max_trials=3,
                                  database=str(path))
        trial = oracle.create_trial("w")
        before = file_digest(path)
        with pytest.raises(CLEAR, match=str(2**63)):
            oracle.update_trial(trial.trial_id, {"loss": 1.0}, step=2**63)
        assert file_digest(path) == before
