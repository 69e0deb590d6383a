"""Choice with many values: duplicates found and values located by hashing, with the same
answers as comparing every pair (True is not 1; 0.0 and -0.0 are one value)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hpstore.hyperparameters import Choice, discrete
from hpstore.hyperparameters import base as hp_base


def same(a, b):
    """The pairwise rule, written out: bools only equal bools; otherwise Python's ==."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def reference_duplicate(values):
    """The first value that repeats an earlier one, by comparing every pair; or None."""
    for i, v in enumerate(values):
        if any(same(v, w) for w in values[:i]):
            return (v,)
    return None


def reference_index(values, value):
    return next((i for i, v in enumerate(values) if same(v, value)), None)


one_kind = st.one_of(
    st.lists(st.integers(-5, 5), max_size=8),
    st.lists(st.floats(-3, 3, allow_nan=False).map(lambda f: round(f, 1)) | st.just(-0.0),
             max_size=8),
    st.lists(st.sampled_from(["a", "b", "c", "A", ""]), max_size=8),
    st.lists(st.booleans(), max_size=4),
).flatmap(lambda vs: st.tuples(st.just(vs), st.booleans()))
probes = st.one_of(st.integers(-6, 6), st.floats(-3, 3).map(lambda f: round(f, 1)),
                   st.booleans(), st.none(), st.sampled_from(["a", "b", "z"]),
                   st.sampled_from([np.int64(2), np.float64(1.5), np.bool_(True), [1], {}]))


@given(one_kind, st.lists(probes, max_size=6))
def test_duplicates_and_positions_match_comparing_every_pair(kind_and_none, lookups):
    values, with_none = kind_and_none
    values = [*values, None] if with_none else list(values)
    if not values:
        return
    duplicate = reference_duplicate(values)
    if duplicate is not None:
        with pytest.raises(ValueError, match="more than once") as exc:
            Choice("x", values)
        assert repr(duplicate[0]) in str(exc.value)
        return
    choice = Choice("x", values)
    for value in [*values, *lookups]:
        expected = reference_index(values, value)
        if expected is None:
            with pytest.raises(ValueError, match="is not one of the choices"):
                choice.index(value)
        else:
            assert choice.index(value) == expected
            assert choice.value_to_prob(value) == (expected + 0.5) * (1 / len(values))


def test_true_is_not_one_and_zero_is_minus_zero():
    assert Choice("x", [1, 2]).index(1.0) == 0  # one number, as the pairwise rule says
    with pytest.raises(ValueError, match="not one of the choices"):
        Choice("x", [1, 2]).index(True)
    with pytest.raises(ValueError, match="not one of the choices"):
        Choice("x", [True, False]).index(1)
    with pytest.raises(ValueError, match="more than once"):
        Choice("x", [0.0, -0.0])
    assert Choice("x", ["a", None]).default is None  # None, when it is a choice
    assert Choice("x", ["a", "b"]).default == "a"


def test_a_large_choice_compares_no_pairs(monkeypatch):
    """Building and looking up never walks the other values: no pairwise comparison at all
    (the old way made n * (n - 1) / 2 of them to build, and up to n per look-up)."""
    calls = 0

    def counting_same(a, b):
        nonlocal calls
        calls += 1
        return same(a, b)

    monkeypatch.setattr(hp_base, "_same", counting_same)
    monkeypatch.setattr(discrete, "_same", counting_same, raising=False)
    n = 3_000  # small enough that pairwise comparing finishes, and fails the count
    choice = Choice("x", [f"v{i}" for i in range(n)], default=f"v{n - 1}")
    assert choice.index(f"v{n - 1}") == n - 1
    assert math.isclose(choice.value_to_prob("v0"), 0.5 / n)
    assert calls == 0
    with pytest.raises(ValueError, match=r"\(3000 values\)"):  # a short message
        choice.index("missing")
