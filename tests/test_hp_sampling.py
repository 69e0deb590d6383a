"""prob_to_value / value_to_prob against the reference formulas, written out here on their own."""

from __future__ import annotations

import math
import random

import pytest

import hpstore
from hpstore.hyperparameters import (
    Boolean,
    Choice,
    Fixed,
    Float,
    Int,
    index_to_prob,
    prob_to_index,
)

PROBS = [0.0, 1e-9, 0.1, 0.25, 1 / 3, 0.4999999, 0.5, 0.6, 0.75, 0.9, 0.999999,
         0.9999999999999999] + [random.Random(7).random() for _ in range(40)]


# The reference page's formulas, independent of hpstore's code ------------------------------

# The reference writes floor(p * n) and (i + 0.5) / n; KerasTuner computes both through the
# bucket width 1 / n, which rounds differently in the last bit at some edges. hpstore uses
# KerasTuner's form so that the same draw lands in the same bucket in both.
def ref_index(p, n):
    return min(math.floor(p / (1 / n)), n - 1)


def ref_center(i, n):
    return (i + 0.5) * (1 / n)


def ref_sample(p, m, big, sampling):
    if sampling == "linear":
        return m + p * (big - m)
    if sampling == "log":
        return m * (big / m) ** p
    return big + m - m * (big / m) ** (1 - p)


def ref_unsample(v, m, big, sampling):
    if big == m:
        return 0.5
    if sampling == "linear":
        return (v - m) / (big - m)
    if sampling == "log":
        return math.log(v / m) / math.log(big / m)
    return 1 - math.log((big + m - v) / m) / math.log(big / m)


def ref_count(m, big, step, sampling):
    if sampling == "linear":
        return int((big - m) // step + 1)
    return int(math.log(big / m, step) + 1e-8) + 1


def ref_value_at(i, m, big, step, sampling):
    if sampling == "linear":
        return m + i * step
    if sampling == "log":
        return m * step**i
    return big + m - m * step**i


# -- helpers ----------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 1000])
def test_prob_to_index_and_index_to_prob(n):
    for p in PROBS:
        assert prob_to_index(p, n) == ref_index(p, n)
        assert 0 <= prob_to_index(p, n) < n
    for i in range(n):
        assert index_to_prob(i, n) == ref_center(i, n)
        assert prob_to_index(index_to_prob(i, n), n) == i
    assert prob_to_index(1.0, n) == n - 1  # p = 1 is clipped to the last bucket


def test_prob_to_index_uses_the_bucket_width():
    # p * n is exactly 22.0 here, p / (1 / n) is 21.999999999999996
    assert prob_to_index(0.3333333333333333, 66) == 21
    assert index_to_prob(9, 10) == 9.5 * 0.1 != 9.5 / 10


def test_prob_to_index_bucket_edges():
    assert [prob_to_index(p, 4) for p in (0, 0.2499, 0.25, 0.5, 0.74, 0.75, 0.99)] == [
        0, 0, 1, 2, 2, 3, 3]


# -- continuous ranges ------------------------------------------------------------------------

FLOAT_RANGES = [(0.0, 1.0), (-3.0, 7.5), (1e-4, 1e-1), (2.0, 2.0), (0.5, 1000.0), (1.0, 1.0001)]


@pytest.mark.parametrize(
    ("m", "big", "sampling"),
    [(m, big, s) for m, big in FLOAT_RANGES for s in ("linear", "log", "reverse_log")
     if s == "linear" or m > 0],
)
def test_float_without_step(m, big, sampling):
    hp = Float("x", m, big, sampling=sampling)
    for p in PROBS:
        value = hp.prob_to_value(p)
        assert value == pytest.approx(ref_sample(p, m, big, sampling), rel=1e-12, abs=1e-15)
        assert m <= value <= big
        back = hp.value_to_prob(value)
        if big > m and value in (m, big):  # a bound is exactly 0 or 1, not the formula's
            assert back == (0.0 if value == m else 1.0)  # rounding a hair past or short
        else:
            assert back == pytest.approx(ref_unsample(value, m, big, sampling), rel=1e-12,
                                         abs=1e-12)
        if big > m:
            assert back == pytest.approx(p, abs=1e-6)
    assert hp.prob_to_value(0.0) == pytest.approx(m)


def test_float_without_step_known_points():
    assert Float("x", 0, 10).prob_to_value(0.25) == 2.5
    assert Float("x", 1, 100, sampling="log").prob_to_value(0.5) == pytest.approx(10.0)
    # reverse_log puts more mass near max: the midpoint is max + min - sqrt(max * min)
    assert Float("x", 1, 100, sampling="reverse_log").prob_to_value(0.5) == pytest.approx(91.0)
    assert Float("x", 1, 100, sampling="log").value_to_prob(10) == pytest.approx(0.5)
    assert Float("x", 1, 100, sampling="reverse_log").value_to_prob(91) == pytest.approx(0.5)
    assert Float("x", 3, 3).value_to_prob(3) == 0.5
    assert Float("x", 3, 3, sampling="log").prob_to_value(0.7) == 3


def test_reverse_log_float_never_leaves_the_range():
    assert ref_sample(0.0, 0.3, 7.0, "reverse_log") < 0.3  # pow() lands a hair below min
    assert Float("x", 0.3, 7.0, sampling="reverse_log").prob_to_value(0.0) == 0.3
    assert Float("x", 1.7, 10, sampling="reverse_log").prob_to_value(0.0) == 1.7


INT_RANGES = [(0, 10), (-5, 5), (1, 1000), (3, 10), (7, 7), (1, 2)]


@pytest.mark.parametrize(
    ("m", "big", "sampling"),
    [(m, big, s) for m, big in INT_RANGES for s in ("log", "reverse_log") if m > 0],
)
def test_int_without_step_samples_max_plus_one_and_truncates(m, big, sampling):
    hp = Int("x", m, big, sampling=sampling)
    assert hp.step is None
    for p in PROBS:
        expected = min(max(int(ref_sample(p, m, big + 1, sampling)), m), big)
        value = hp.prob_to_value(p)
        assert value == expected and type(value) is int
    for v in range(m, big + 1):
        assert hp.value_to_prob(v) == pytest.approx(ref_unsample(v + 0.5, m, big + 1, sampling))
        assert hp.prob_to_value(hp.value_to_prob(v)) == v


def test_reverse_log_int_stays_in_range_at_the_ends():
    # int() of the raw formula gives max + 1 near p = 1 and, for some ranges, min - 1 at
    # p = 0; hpstore clamps both
    top = 0.9999999999999999
    assert int(ref_sample(top, 3, 11, "reverse_log")) == 11
    assert Int("x", 3, 10, sampling="reverse_log").prob_to_value(top) == 10
    assert int(ref_sample(0.0, 19, 21, "reverse_log")) == 18
    assert Int("x", 19, 20, sampling="reverse_log").prob_to_value(0.0) == 19


@pytest.mark.parametrize(("m", "big"), INT_RANGES)
def test_linear_int_is_a_step_one_grid(m, big):
    hp = Int("x", m, big)
    assert hp.step == 1
    n = big - m + 1
    for p in PROBS:
        assert hp.prob_to_value(p) == m + ref_index(p, n)
        # the same as truncating a sample of [m, max + 1)
        assert hp.prob_to_value(p) == min(math.floor(ref_sample(p, m, big + 1, "linear")), big)
    for v in range(m, big + 1):
        assert hp.value_to_prob(v) == ref_center(v - m, n)


def test_int_linear_known_points():
    hp = Int("x", 0, 9)
    assert [hp.prob_to_value(p) for p in (0, 0.05, 0.1, 0.5, 0.95, 0.99)] == [0, 0, 1, 5, 9, 9]
    assert hp.value_to_prob(0) == ref_center(0, 10) and hp.value_to_prob(9) == ref_center(9, 10)


# -- grids (with a step) ----------------------------------------------------------------------

INT_GRIDS = [
    (6, 13, 3, "linear"), (0, 100, 7, "linear"), (-10, 10, 4, "linear"), (5, 5, 2, "linear"),
    (2, 32, 2, "log"), (1, 1000, 10, "log"), (3, 200, 3, "log"), (1, 64, 4, "reverse_log"),
    (2, 500, 5, "reverse_log"), (1, 1, 2, "log"),
]


@pytest.mark.parametrize(("m", "big", "step", "sampling"), INT_GRIDS)
def test_int_grid(m, big, step, sampling):
    hp = Int("x", m, big, step=step, sampling=sampling)
    n = ref_count(m, big, step, sampling)
    expected = [ref_value_at(i, m, big, step, sampling) for i in range(n)]
    assert hp.values == expected
    for p in PROBS:
        assert hp.prob_to_value(p) == expected[ref_index(p, n)]
    for i, v in enumerate(expected):
        assert hp.value_to_prob(v) == ref_center(i, n)


FLOAT_GRIDS = [
    (0.0, 1.0, 0.25, "linear"), (-1.0, 1.0, 0.5, "linear"), (0.0, 10.0, 3.0, "linear"),
    (0.001, 10.0, 10.0, "log"), (1.0, 1024.0, 2.0, "log"), (1.0, 100.0, 1.5, "log"),
    (0.5, 64.0, 2.0, "reverse_log"), (1.0, 10.0, 1.3, "reverse_log"),
]


@pytest.mark.parametrize(("m", "big", "step", "sampling"), FLOAT_GRIDS)
def test_float_grid(m, big, step, sampling):
    hp = Float("x", m, big, step=step, sampling=sampling)
    n = ref_count(m, big, step, sampling)
    expected = [ref_value_at(i, m, big, step, sampling) for i in range(n)]
    assert hp.values == pytest.approx(expected, rel=1e-12)
    for p in PROBS:
        assert hp.prob_to_value(p) == pytest.approx(expected[ref_index(p, n)], rel=1e-12)
    for i, v in enumerate(expected):
        assert hp.value_to_prob(v) == ref_center(i, n)
        assert hp.value_to_prob(hp.values[i]) == ref_center(i, n)


def test_reverse_log_grid_runs_down_from_max():
    hp = Float("x", 0.001, 10, step=10, sampling="reverse_log")
    assert hp.values == [10.0, 9.991, 9.901, 9.001, 0.001]
    assert hp.prob_to_value(0.0) == 10.0 and hp.prob_to_value(0.99) == 0.001


def test_float_grid_values_are_the_decimals_typed():
    assert Float("x", 0, 1, step=0.1).values == [round(0.1 * i, 1) for i in range(11)]
    assert Float("x", -1, 1, step=0.1).values[10] == 0.0
    assert Float("x", 0, 1, step=1 / 3).values[-1] == 1.0


def test_float_step_count_keeps_the_last_value():
    # (1 - 0) // 0.2 is 4.0 in binary floating point; the seed page lists six values
    assert Float("x", 0, 1, step=0.2).prob_to_value(0.99) == 1.0
    assert Float("x", 0, 1, step=0.2).value_to_prob(1.0) == ref_center(5, 6)
    assert len(Float("x", 0.1, 0.7, step=0.3).values) == 3
    assert Float("x", 0.1, 0.7, step=0.3).values[-1] == 0.7


def test_grid_points_map_to_their_own_bucket_despite_binary_rounding():
    hp = Float("x", 0, 1, step=0.2)
    assert 0.6 / 0.2 < 3  # truncating the raw index would give the bucket of 0.4
    assert hp.value_to_prob(0.6) == ref_center(3, 6)
    assert hp.value_to_prob(0.6000000000000001) == ref_center(3, 6)
    assert hp.value_to_prob(0.5999999999999999) == ref_center(3, 6)
    log = Float("x", 0.001, 10, step=10, sampling="log")
    assert math.log(1.0 / 0.001, 10) < 3
    assert log.value_to_prob(1.0) == ref_center(3, 5)


def test_off_linear_grid_values_truncate_to_the_point_below():
    hp = Float("x", 0, 1, step=0.2)
    assert hp.value_to_prob(0.59) == hp.value_to_prob(0.4) == ref_center(2, 6)
    assert Int("x", 0, 10, step=3).value_to_prob(5) == ref_center(1, 4)
    # below and above the range: the first and last buckets
    assert hp.value_to_prob(-3) == ref_center(0, 6) and hp.value_to_prob(7) == ref_center(5, 6)


def test_off_log_grid_values_get_a_fractional_index():
    hp = Int("x", 1, 64, step=4, sampling="log")  # 1, 4, 16, 64
    assert hp.value_to_prob(8) == pytest.approx((math.log(8, 4) + 0.5) / 4)
    assert hp.prob_to_value(hp.value_to_prob(8)) == 16  # 1.5 + 0.5 rounds up in prob space
    assert hp.prob_to_value(hp.value_to_prob(7)) == 4
    rev = Float("x", 1, 100, step=3, sampling="reverse_log")  # 100, 98, 92, 74, 20
    assert rev.values == [100.0, 98.0, 92.0, 74.0, 20.0]
    assert rev.value_to_prob(95) == pytest.approx((math.log(6, 3) + 0.5) / 5)
    # in range but past the last grid point: still inside [0, 1)
    far = Float("x", 1, 100, step=2, sampling="log")  # ... 32, 64; 100 is past 64
    assert far.value_to_prob(100) < 1 and far.prob_to_value(far.value_to_prob(100)) == 64
    assert far.value_to_prob(0.5) == ref_center(0, 7)


# -- Boolean, Choice, Fixed -------------------------------------------------------------------

def test_boolean_prob_map():
    hp = Boolean("b")
    for p in PROBS:
        assert hp.prob_to_value(p) is (p >= 0.5)
    assert hp.prob_to_value(0.4999999) is False and hp.prob_to_value(0.5) is True
    assert hp.value_to_prob(True) == 0.75 and hp.value_to_prob(False) == 0.25


@pytest.mark.parametrize("values", [["a", "b", "c"], [1, 2, 3, 4, 5, 6, 7], [0.5], [True, False],
                                    ["x", None]])
def test_choice_prob_map(values):
    hp = Choice("c", values)
    n = len(values)
    for p in PROBS:
        assert hp.prob_to_value(p) == values[ref_index(p, n)]
    for i, v in enumerate(values):
        assert hp.value_to_prob(v) == ref_center(i, n)
        assert hp.prob_to_value(hp.value_to_prob(v)) == v


def test_fixed_prob_map():
    hp = Fixed("f", [1, 2])
    assert all(hp.prob_to_value(p) == [1, 2] for p in PROBS)
    assert hp.value_to_prob([1, 2]) == 0.5


# -- random_sample ----------------------------------------------------------------------------

SAMPLED = [Int("i", 1, 100), Int("j", 1, 1000, sampling="log"), Float("f", 0, 1),
           Float("g", 1e-5, 1, sampling="reverse_log"), Float("h", 0, 1, step=0.1),
           Choice("c", list("abcdefgh")), Boolean("b")]


@pytest.mark.parametrize("hp", SAMPLED, ids=lambda h: h.name)
def test_random_sample_is_prob_to_value_of_a_seeded_draw(hp):
    for seed in range(30):
        expected = hp.prob_to_value(random.Random(seed).random())
        assert hp.random_sample(seed) == expected
        assert hp.random_sample(seed) == hp.random_sample(seed)
    assert len({repr(hp.random_sample(s)) for s in range(60)}) > 1


def test_random_sample_without_a_seed_stays_in_range():
    hp = Float("x", 2, 3, sampling="log")
    draws = [hp.random_sample() for _ in range(200)]
    assert all(2 <= d <= 3 for d in draws) and len(set(draws)) > 1


@pytest.mark.parametrize("top", [2**54, 2**62, 2**100])
def test_a_reverse_log_int_past_a_floats_integers_maps_its_bounds_and_runs_bayesian(top):
    # value_to_prob(max_value) was a math domain error from 2**54 up: the Bayesian oracle
    # ended at its first trial on such a space, which the random search ran
    hp = hpstore.HyperParameters()
    hp.Int("n", 1, top, sampling="reverse_log")
    (n,) = hp.space
    assert n.value_to_prob(top) == 1.0 and n.value_to_prob(1) == 0.0
    assert 0.0 <= n.value_to_prob(top - 1) <= 1.0
    oracle = hpstore.BayesianOptimizationOracle("loss", max_trials=5, num_initial_points=2,
                                                hyperparameters=hp, seed=3)
    for _ in range(5):
        trial = oracle.create_trial("w")
        value = trial.hyperparameters.values["n"]
        assert 1 <= value <= top
        oracle.update_trial(trial.trial_id, {"loss": float(value.bit_length())})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    assert len(oracle.trials) == 5
