"""What the constructors say of a bad argument, where it is given, before anything is
written: the oracles, hpstore.Tuner, and hpstore.keras's oracles and tuners (compared with
what KerasTuner's own say)."""

from __future__ import annotations

import os

import pytest

import hpstore


@pytest.mark.parametrize("database, said", [
    ("sqlite:///search.db", "give its path itself: database='search.db'"),
    ("file:x.db?mode=ro", "give its path itself: database='x.db'"),
    ("mysql://host/db", "is a URL hpstore does not open"),
    (" ", "must be the path of a search file"),
    ("x.db\0y", "must be the path of a search file"),
])
def test_a_database_no_store_opens_is_refused_naming_it(tmp_path, monkeypatch, database,
                                                         said):
    # "The folder .../sqlite: does not exist", a file named "file:x.db?mode=ro" or " "
    # made in the working folder, a bare "embedded null byte"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="`database` ") as refused:
        hpstore.RandomSearchOracle("loss", database=database)
    assert said in str(refused.value)
    assert os.listdir(tmp_path) == []


def test_a_kerastuner_space_given_to_an_hpstore_oracle_says_what_to_use():
    kt = pytest.importorskip("keras_tuner")
    with pytest.raises(TypeError, match=r"keras_tuner\.HyperParameters.*hpstore\.keras"
                                        r"\.oracles"):
        hpstore.RandomSearchOracle("loss", hyperparameters=kt.HyperParameters())


def test_a_seed_given_where_kerastuner_takes_it_says_to_name_it(tmp_path):
    # KerasTuner's RandomSearchOracle("loss", 10, 42) is seed 42; hpstore's third argument
    # is the space: "`hyperparameters` must be a HyperParameters, received int."
    with pytest.raises(TypeError, match=r"seed=42"):
        hpstore.RandomSearchOracle("loss", 10, 42, database=str(tmp_path / "s.db"))
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize("iterations", [0, None])
def test_hyperband_iterations_kerastuner_takes_as_no_limit_says_so(iterations):
    with pytest.raises(ValueError, match="KerasTuner takes 0 or None as no limit"):
        hpstore.HyperbandOracle("loss", hyperband_iterations=iterations)


@pytest.mark.parametrize("given, error, said", [
    ({"verbose": None}, TypeError, "`verbose` must be a whole number"),
    ({"verbose": "1"}, TypeError, "`verbose` must be a whole number"),
    ({"tuner_id": 2.5}, TypeError, "`tuner_id` must be a string"),
    ({"tuner_id": "w\ud800"}, ValueError, "lone surrogate"),
])
def test_a_tuners_bad_display_or_name_is_refused_where_given(given, error, said):
    # accepted, then search() failed: a bare "'>' not supported between instances of
    # 'NoneType' and 'int'" from the display, or the first trial refusing the name
    oracle = hpstore.RandomSearchOracle("loss", max_trials=1)
    with pytest.raises(error, match=said):
        hpstore.Tuner(oracle, run_trial=lambda t: 1.0, **given)


def test_a_whole_number_tuner_id_is_taken_as_kerastuner_takes_it():
    oracle = hpstore.RandomSearchOracle("loss", max_trials=2)
    tuner = hpstore.Tuner(oracle, run_trial=lambda t: 1.0, tuner_id=5, verbose="auto")
    tuner.search()
    assert tuner.tuner_id == "5" and tuner.verbose == 1
    assert {t.tuner_id for t in oracle.trials.values()} == {"5"}
