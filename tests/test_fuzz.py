"""Fuzzing the search file with random hyperparameter definitions: each either round-trips
exactly through the file (read back by a fresh Oracle and through get_state / set_state) or
fails with a clear error that names the offending value and leaves the file byte for byte
as it was (hostile strings and odd metric values: test_fuzz_values.py)."""

from __future__ import annotations

import os

import pytest
from _fuzz import (
    ANY,
    CLEAR,
    FUZZ,
    NAN,
    Definition,
    comparable,
    copy_through_state,
    definitions,
    file_digest,
    fraction_near,
    run_trials,
    same,
    search_file,
    small_space,
    strict_json,
)
from _workers import RandomTestOracle
from hypothesis import event, given, settings

import hpstore
from hpstore.hyperparameters import hyperparameter_from_config

# -- 1. hyperparameter definitions ------------------------------------------------------------

def define(hp: hpstore.HyperParameters, d: Definition) -> Exception | None:
    """Register ``d``; returns the error it raised (a clear one, or the test fails)."""
    before = (len(hp.space), dict(hp.values))
    try:
        getattr(hp, d.cls)(d.name, **d.kwargs)
    except CLEAR as exc:
        event(f"{d.cls} refused ({'must' if d.token != ANY else 'may'})")
        assert (len(hp.space), hp.values) == before, "a refused definition was registered"
        if d.token not in (None, ANY):
            assert d.token in str(exc), (d, str(exc)[:500])
        assert d.token is not None, f"{d} was refused: {exc}"
        # the same definition arriving as a config (set_state, a stored space) is refused too
        with pytest.raises(CLEAR):
            hyperparameter_from_config(d.config())
        return exc
    assert d.token in (None, ANY), f"{d} was accepted"
    event(f"{d.cls} accepted ({'must' if d.token is None else 'may'})")
    return None


@settings(FUZZ, max_examples=80)
@given(defs=definitions)
def test_definitions_round_trip_or_fail_clearly(defs):
    hp = hpstore.HyperParameters()
    accepted = [d for d in defs if define(hp, d) is None]
    space = hp.get_config()["space"]
    with search_file() as path:
        oracle = RandomTestOracle(objective="loss", hyperparameters=hp, max_trials=3,
                                  database=str(path), project_name="fuzz")
        seen = run_trials(oracle)
        oracle.close()
        before = file_digest(path)

        fresh = RandomTestOracle(database=str(path), project_name="fuzz")
        assert same(fresh.hyperparameters.get_config()["space"], space)
        for trial_id, values in seen.items():
            assert same(fresh.get_trial(trial_id).hyperparameters.values, values)
        state = fresh.get_state()
        assert same(strict_json(state), state)
        # the same definitions again: no mismatch, and nothing written
        again = RandomTestOracle(objective="loss", hyperparameters=hp, max_trials=3,
                                 database=str(path), project_name="fuzz")
        assert len(again.hyperparameters.space) == len(accepted)
        again.close()
        fresh.close()
        assert file_digest(path) == before

        copied = copy_through_state(state, path.parent, "fuzz")
        assert same(comparable(copied), comparable(state))


@pytest.mark.parametrize("low", [-(2**62), -(10**30), 0, -(10**6), 10**6, 2**52, 2**53])
def test_the_fraction_fault_is_never_a_whole_number(low):
    # The bounds int_kwargs draws, at their extremes: the fault must really be a fault.
    value = fraction_near(low)
    assert value != int(value)
    with pytest.raises(ValueError, match="must be an int"):
        hpstore.HyperParameters().Int("n", value, 10**31)


def test_property_tests_are_deterministic_by_default():
    # The profile tests/conftest.py loads unless HYPOTHESIS_PROFILE names another.
    if os.environ.get("HYPOTHESIS_PROFILE", "ci") != "ci":
        pytest.skip("another Hypothesis profile was asked for")
    assert settings.default.derandomize is True
    assert settings.default.database is None
    assert FUZZ.derandomize is True and FUZZ.database is None


@pytest.mark.parametrize("bad", [
    {"min_value": 5, "max_value": 1},
    {"min_value": 0, "max_value": 1, "step": 0},
    {"class_name": "Evil"},
], ids=["min>max", "step0", "unknown-class"])
def test_set_state_with_a_bad_space_changes_nothing(bad):
    with search_file() as path:
        oracle = RandomTestOracle(objective="loss", hyperparameters=small_space(), max_trials=3,
                                  database=str(path))
        run_trials(oracle, count=1)
        state = oracle.get_state()
        item = {"class_name": bad.pop("class_name", "Int"),
                "config": {"name": "bad", "step": None, "sampling": "linear",
                           "default": None, "conditions": [], **bad}}
        state["space"].append(item)
        before = file_digest(path)
        with pytest.raises(hpstore.HpStoreError):
            oracle.set_state(state)
        assert file_digest(path) == before
        RandomTestOracle(database=str(path)).close()  # still opens


def test_set_state_refuses_what_json_cannot_hold():
    with search_file() as path:
        oracle = RandomTestOracle(objective="loss", hyperparameters=small_space(), max_trials=3,
                                  database=str(path))
        run_trials(oracle, count=1)
        state = oracle.get_state()
        state["space"][0]["config"]["max_value"] = NAN
        before = file_digest(path)
        with pytest.raises(hpstore.HpStoreError, match="nothing was changed"):
            oracle.set_state(state)
        assert file_digest(path) == before


def test_a_mismatched_resume_writes_nothing():
    with search_file() as path:
        RandomTestOracle(objective="loss", hyperparameters=small_space(), max_trials=3,
                         database=str(path)).close()
        before = file_digest(path)
        other = hpstore.HyperParameters()
        other.Float("x", -5, 5)
        with pytest.raises(hpstore.ProjectMismatchError, match="'x'"):
            RandomTestOracle(objective="loss", hyperparameters=other, max_trials=50,
                             database=str(path))
        assert file_digest(path) == before
