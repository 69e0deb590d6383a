"""hpstore's oracles side by side with KerasTuner's on searches whose space grows while
they run. Runs where ``keras_tuner`` imports (KERAS_BACKEND defaults to torch here)."""

from __future__ import annotations

import contextlib
import io
import os

import pytest
from test_growing_space import _drive, flag_children, nested, plain_four, two_children

os.environ.setdefault("KERAS_BACKEND", "torch")
kt = pytest.importorskip("keras_tuner")

import hpstore  # noqa: E402

pytestmark = pytest.mark.kerastuner


@pytest.mark.parametrize("declare", [flag_children, two_children, nested, plain_four])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_grid_runs_the_trials_kerastuner_runs(tmp_path, declare, workers):
    with contextlib.redirect_stdout(io.StringIO()):  # KerasTuner prints every trial
        theirs = kt.oracles.GridSearchOracle(objective="loss", max_trials=100)
        theirs._set_project_dir(str(tmp_path), "kt")
        kt_ran = _drive(theirs, declare, workers)
    ours = hpstore.GridSearchOracle("loss", max_trials=100, database=str(tmp_path / "g.db"))
    ran = _drive(ours, declare, workers)
    assert sorted(ran) == sorted(kt_ran)
    assert len(ran) == len(set(ran))


def _declare_some(hp):
    hp.Int("j", 1, 5)
    hp.Int("k", 2, 64, sampling="log")
    hp.Float("f", 0, 1)
    hp.Float("g", 0.001, 1.0, sampling="log", step=10.0)
    hp.Choice("c", [1, 2])
    hp.Choice("s", ["a", "b"], ordered=False)
    hp.Boolean("b")
    hp.Fixed("x", 3)


def test_hyperparameter_reprs_read_as_kerastuners():
    theirs, ours = kt.HyperParameters(), hpstore.HyperParameters()
    _declare_some(theirs)
    _declare_some(ours)
    assert [repr(h) for h in ours.space] == [repr(h) for h in theirs.space]


def test_conditions_are_added_to_the_repr():
    hp = hpstore.HyperParameters()
    hp.Boolean("b")
    with hp.conditional_scope("b", [True]):
        hp.Int("n", 1, 3)
    assert repr(hp.space[1]) == (
        "Int(name: 'n', min_value: 1, max_value: 3, step: 1, sampling: linear, default: 1, "
        "conditions: [Parent(name='b', values=[True])])")
