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
