"""The public API's arguments of the wrong kind: each named where it is given, with what to
give instead, and nothing of it passed on to SQLite, unicodedata or the search file."""

from __future__ import annotations

import os

import pytest
from _workers import open_oracle

import hpstore


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "search.db")


def test_open_database_names_what_it_was_given(tmp_path):
    # None, bytes, "" (". is a folder") and a PostgreSQL URL ("postgresql:/nope:1/x does
    # not exist") got messages about something else
    path = tmp_path / "s.db"
    open_oracle(str(path)).close()
    assert "trials" in hpstore.open_database(os.fsencode(path)).table_names()
    with pytest.raises(TypeError, match="open_database takes the path of a search file"):
        hpstore.open_database(None)
    with pytest.raises(ValueError, match="open_database received an empty path"):
        hpstore.open_database("")
    with pytest.raises(hpstore.HpStoreError, match="trials_dataframe"):
        hpstore.open_database("postgresql://nope:1/x")
    with pytest.raises(ValueError, match="lone surrogate"):
        hpstore.open_database("s\ud800.db")
    # as every store refuses them: a NUL (a bare "embedded null byte"), SQLAlchemy's
    # spelling ("sqlite:/...s.db does not exist", of a file that does), :memory:
    with pytest.raises(ValueError, match="must be the path of a search file"):
        hpstore.open_database("a\x00b.db")
    with pytest.raises(ValueError, match=r"give its path itself: database='/"):
        hpstore.open_database(f"sqlite:///{path}")
    with pytest.raises(hpstore.HpStoreError, match="in-memory search lives in the process"):
        hpstore.open_database(":memory:")


def test_arguments_of_the_wrong_kind_are_named_not_passed_on(db):
    # an oracle state's key that is no name reached SQLite, and came back as a
    # DatabaseError blaming the file; a project name that is no string, a bare TypeError
    # from unicodedata; a metric of "n/a" was no ValueError, where KerasTuner's is
    oracle = open_oracle(db, max_trials=3)
    for key in (["k"], None, "", 5):
        with pytest.raises(TypeError, match="state's key must be a non-empty string"):
            oracle.get_state_value(key)
        with pytest.raises(TypeError, match="state's key must be a non-empty string"):
            oracle.set_state_value(key, 1)
    trial = oracle.create_trial("w")
    with pytest.raises(ValueError, match="n/a"):  # (an InvalidMetricError, and a TypeError)
        oracle.update_trial(trial.trial_id, {"loss": "n/a"})
    with pytest.raises(TypeError, match="n/a"):
        oracle.update_trial(trial.trial_id, {"loss": "n/a"})
    oracle.close()
    for call in (lambda: hpstore.Oracle.attach(db, 5), lambda: hpstore.trials_dataframe(db, 5)):
        with pytest.raises(TypeError, match="A project's name must be a string, received 5"):
            call()
    tuner = hpstore.Tuner(open_oracle(db), run_trial=lambda t: 1.0)
    tuner.tuner_id = 7  # (taken as its digits, as the constructor takes it)
    assert tuner.tuner_id == "7"
    with pytest.raises(TypeError, match="tuner_id"):
        tuner.tuner_id = ["w"]


def test_wrong_arguments_to_the_smaller_calls_say_what_they_take(db):
    # each leaked an AttributeError or a KeyError from inside ("'dict' object has no
    # attribute 'space'", "'str' object has no attribute 'items'", KeyError: 'trial_id'),
    # or, for name_scope, failed only at the next hp.Int
    oracle = open_oracle(db)
    with pytest.raises(TypeError, match="update_space takes a HyperParameters"):
        oracle.update_space({"x": 1})
    with pytest.raises(TypeError, match="is_taken takes a dict"):
        oracle.is_taken("x")
    with pytest.raises(TypeError, match="Trial takes a HyperParameters"):
        hpstore.Trial(None)
    with pytest.raises(ValueError, match="lacks 'trial_id', 'hyperparameters', 'metrics'"):
        hpstore.Trial.from_state({})
    hp = hpstore.HyperParameters()
    with pytest.raises(TypeError, match="name_scope takes a string"), hp.name_scope(None):
        pass
    assert hp.Int("n", 0, 3) == 0 and hp.values == {"n": 0}  # the scope was not left open
    oracle.close()
