"""Conditions on a parent whose value may be None: an inactive parent is not a None."""

from __future__ import annotations

import hpstore
from hpstore.hyperparameters.enumerate import iter_configurations


def _space() -> hpstore.HyperParameters:
    hp = hpstore.HyperParameters()
    hp.Boolean("use")
    with hp.conditional_scope("use", [True]):
        hp.Choice("kind", ["x", None])
    # n's only condition is on kind: when kind is inactive (use=False), kind has no value,
    # which is not the value None
    hp.Int("n", 1, 3, parent_name="kind", parent_values=[None])
    return hp


def test_a_child_of_an_inactive_parent_is_inactive_even_under_none():
    hp = _space()
    hp.values = {"use": False}
    n = next(h for h in hp.space if h.name == "n")
    assert not hp.is_active(n)
    assert "n" not in hp
    hp.values = {"use": True, "kind": None}
    assert hp.is_active(n)


def test_grid_enumeration_leaves_the_child_out_when_the_parent_is_inactive():
    combos = list(iter_configurations(_space().space))
    assert {"use": False} in combos
    assert not any("n" in c for c in combos if not c["use"])
    assert not any("n" in c for c in combos if c.get("kind") == "x")
    assert sorted(c["n"] for c in combos if "n" in c) == [1, 2, 3]
    assert len(combos) == 1 + 1 + 3


def test_grid_search_runs_exactly_those(tmp_path):
    oracle = hpstore.GridSearchOracle("loss", hyperparameters=_space(),
                                      database=str(tmp_path / "g.db"))
    ran = []
    while (trial := oracle.create_trial("w")).status == "RUNNING":
        ran.append(dict(trial.hyperparameters.values))
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    assert ran == list(iter_configurations(_space().space, order=lambda h: (
        [h.default, *[v for v in h.values if v != h.default or type(v) is not type(h.default)]]
    )))
    assert {"use": False} in ran and len(ran) == 5


def test_numbers_may_mix_in_parent_values_and_a_bool_is_not_one():
    hp = hpstore.HyperParameters()
    hp.Float("dropout", 0.0, 0.5, step=0.25)
    # [0, 0.25] on a Float parent was a TypeError (one type only); KerasTuner takes it
    assert hp.Int("units", 8, 64, parent_name="dropout", parent_values=[0, 0.25]) == 8
    hp.values["dropout"] = 0.5
    assert not hp.is_active("units")
    hp.Boolean("extra", default=True)
    # ... but True is not 1: a condition [1] on a Boolean never holds (KerasTuner: it does)
    assert hp.Int("more", 1, 4, parent_name="extra", parent_values=[1]) is None
    try:  # other mixes are refused, naming the types given
        hp.Int("odd", 1, 4, parent_name="dropout", parent_values=[1, "a"])
    except TypeError as exc:
        assert "<class 'int'>, <class 'str'>" in str(exc)
    else:
        raise AssertionError("[1, 'a'] was taken")


def test_a_parent_name_without_parent_values_is_refused():
    # it made a condition on None alone, which never holds: the hyperparameter was
    # silently never active
    hp = hpstore.HyperParameters()
    hp.Int("layers", 1, 3)
    try:
        hp.Int("units", 8, 64, parent_name="layers")
    except TypeError as exc:
        assert "needs `parent_values`" in str(exc)
    else:
        raise AssertionError("parent_name without parent_values was taken")
    assert [h.name for h in hp.space] == ["layers"]


def test_the_oracles_space_holds_each_active_default_as_a_declared_one_does():
    hp = hpstore.HyperParameters()
    hp.Int("x", 0, 10, default=3)
    hp.Choice("model", ["a", "b"])
    with hp.conditional_scope("model", ["b"]):
        hp.Float("lr", 0.1, 1.0)
    space = hpstore.RandomSearchOracle("loss", hyperparameters=hp, max_trials=3).get_space()
    assert space.values == {"x": 3, "model": "a"}  # it was empty: get("x") "inactive"
    assert space.get("x") == 3
    bare = hpstore.HyperParameters()
    bare.Int("y", 0, 5)
    bare.values.clear()
    try:
        bare.get("y")
    except ValueError as exc:  # said "inactive" of an active hyperparameter
        assert "active but holds no value" in str(exc)
    else:
        raise AssertionError("a value was made up")
