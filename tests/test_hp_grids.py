"""Grids counted exactly and never listed whole, and the values a space cannot hold:
a Choice from a set, a condition on values no parent can have."""

from __future__ import annotations

import pytest

import hpstore
from hpstore.hyperparameters import Float, Int
from hpstore.hyperparameters.enumerate import count_configurations
from hpstore.oracles.encoding import Dimension


@pytest.mark.parametrize(("args", "grid"), [
    # in floats, (max - min) / step rounded up to a last point off the grid (clamped to max)
    ((0, 2 * 10**10 - 1, 10**10, "linear"), [0, 10**10]),
    ((0, 2**63 - 1, 2**62, "linear"), [0, 2**62]),
    # log grids end at the last power in range, never at a max_value off the grid
    ((1, 10**9 - 1, 10, "log"), [10**k for k in range(9)]),
    ((1, 10**9 - 1, 10, "reverse_log"), [10**9 - 10**k for k in range(9)]),
    ((1, 2**63 - 1, 2, "log"), [2**k for k in range(63)]),
    ((6, 13, 3, "linear"), [6, 9, 12]),
])
def test_an_int_grid_is_counted_in_integers(args, grid):
    low, high, step, sampling = args
    hp = Int("x", low, high, step=step, sampling=sampling)
    assert hp.values == grid and list(hp.every_value()) == grid
    oracle = hpstore.RandomSearchOracle("loss", max_trials=20, hyperparameters=_space(hp),
                                        database=":memory:", seed=1)
    for _ in range(min(len(grid), 20)):
        trial = oracle.create_trial("t")
        assert trial.hyperparameters.get("x") in grid
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)


def test_a_step_near_two_to_the_62_loses_no_point_at_the_end():
    # counted in floats, the last 85 points of this grid could never be drawn
    hp = Int("x", 0, 2**62, step=3)
    assert hp.value_count() == 2**62 // 3 + 1 and hp.every_value()[-1] == 2**62 - 1


def _space(*hps):
    space = hpstore.HyperParameters()
    space.merge(list(hps))
    return space


def test_a_large_grid_is_counted_and_encoded_without_being_listed(monkeypatch):
    # .values built the whole list: a random search counting its space, or the Bayesian
    # oracle encoding it, ran out of memory on Int(0, 10**10)
    monkeypatch.setattr(Int, "values", property(lambda self: pytest.fail("listed")))
    monkeypatch.setattr(Float, "values", property(lambda self: pytest.fail("listed")))
    big = Int("big", 0, 10**10)
    fine = Float("fine", 0, 1, step=1e-12)
    assert count_configurations([big], limit=1000) is None
    assert count_configurations([fine], limit=1000) is None
    assert big.value_count() == 10**10 + 1 and fine.value_count() == 10**12 + 1
    assert fine.every_value()[-1] == 1.0 and fine.every_value()[1] == 1e-12
    assert Dimension(big, 0).values is None  # treated as continuous by the model
    assert Dimension(fine, 0).values is None


@pytest.mark.parametrize("values", [{"a", "b", "c"}, frozenset({1, 2}), {"a": 1, "b": 2}])
def test_a_choice_from_a_set_or_a_mapping_is_refused(values):
    # a set's order, and so the default, changed with the process's hash seed: another
    # worker of the file found another space
    with pytest.raises(TypeError, match="must be a list, in the order to keep"):
        hpstore.HyperParameters().Choice("x", values)


def test_a_choice_from_a_range_an_array_or_a_generator_keeps_its_order():
    import numpy as np

    hp = hpstore.HyperParameters()
    hp.Choice("r", range(3, 0, -1))
    hp.Choice("a", np.array([5, 4]))
    hp.Choice("g", (v for v in ["q", "p"]))
    assert [h.values for h in hp.space] == [[3, 2, 1], [5, 4], ["q", "p"]]


@pytest.mark.parametrize("bad", [object(), float("nan"), [1], b"a", 1 + 2j])
def test_a_condition_on_a_value_no_parent_can_hold_is_refused_at_once(bad):
    # accepted, it never activated, and the oracle failed later on a raw JSON error
    hp = hpstore.HyperParameters()
    hp.Choice("m", [1, 2])
    with pytest.raises(TypeError, match="`parent_values` for parent 'm' can hold only"):
        hp.Int("u", 0, 3, parent_name="m", parent_values=[bad])
    assert [h.name for h in hp.space] == ["m"]


@pytest.mark.parametrize("hp, value, says", [
    (Int("u", 8, 64, step=16), 64, "not on its grid, which ends at 56"),
    (Float("f", 0.0, 1.0, step=0.3), 1.0, "not on its grid, which ends at 0.9"),
    (Int("u", 8, 64, step=16), 30, "the nearest are 24 and 40"),
    (Float("f", 0.0, 1.0, step=0.3), 0.5, "the nearest are 0.3 and 0.6"),
])
def test_a_value_off_the_grid_is_refused_naming_where_the_grid_is(hp, value, says):
    # a value in range past the last grid point was said to be between 56 and 56
    with pytest.raises(ValueError) as refused:
        hp.check_value(value)
    assert says in str(refused.value) and repr(value) in str(refused.value)


def test_a_default_off_the_grid_is_a_value_of_the_space(tmp_path):
    # grid search ran Int(0, 10, step=5, default=3) at 3 first (as KerasTuner does), and
    # every check of a value then refused 3: enqueue, add_trial, a warm start of that trial
    hp = hpstore.HyperParameters()
    hp.Int("i", 0, 10, step=5, default=3)
    hp.Float("f", 0.0, 1.0, step=0.25, default=0.3)
    assert Int("i", 0, 10, step=5, default=3).check_value(3) == 3
    with pytest.raises(ValueError, match="nearest are 0 and 5"):
        Int("i", 0, 10, step=5, default=3).check_value(4)
    oracle = hpstore.GridSearchOracle("loss", hyperparameters=hp,
                                      database=str(tmp_path / "g.db"))
    first = oracle.create_trial("w")
    assert first.hyperparameters.values == {"i": 3, "f": 0.3}
    oracle.update_trial(first.trial_id, {"loss": 1.0})
    first.status = "COMPLETED"
    oracle.end_trial(first)
    assert oracle.enqueue_trial({"i": 3, "f": 0.3}) == first.trial_id  # the one run
    oracle.close()


def test_an_int_grid_wider_than_a_float_holds_is_checked_in_integers(tmp_path):
    # in floating point, Int(-2**62, 2**62) took 1 and 5 for points off its grid (the
    # spacing of floats there is 1024), and a step-7 grid up to 10**12 let in a value
    # three from a point as that point
    hp = hpstore.HyperParameters()
    hp.Int("i", -2**62, 2**62)
    hp.Int("j", 0, 10**12, step=7)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=10, hyperparameters=hp, seed=1,
                                        database=tmp_path / "s.db")
    for i in (1, 5, -2**62, 2**62, 2**53 + 1):
        tid = oracle.enqueue_trial({"i": i, "j": 7})
        assert oracle.get_trial(tid).hyperparameters.values["i"] == i
    for j, says in ((10**12 - 3, "the nearest are 999999999992 and 999999999999"),
                    (10**12, "which ends at 999999999999")):
        with pytest.raises(hpstore.ValuesOutsideSpaceError, match=says):
            oracle.enqueue_trial({"i": 0, "j": j})
    oracle.close()
