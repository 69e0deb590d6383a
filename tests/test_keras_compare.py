"""hpstore.keras beside KerasTuner's own tuners, on the same hypermodel and data, where
the algorithm decides without chance: the grid's order, Hyperband's schedule."""

from __future__ import annotations

import contextlib
import io

import keras_tuner
import pytest
from _keras_models import _model, build, build_grid, build_scoped, data

import hpstore.keras as kt

X, Y = data()
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"),
    # KerasTuner's own oracle on Python 3.11
    pytest.mark.filterwarnings("ignore:currentThread:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:getName:DeprecationWarning"),
]


def run(module, cls, tmp_path, name, hypermodel, epochs=1, **kwargs):
    tuner = getattr(module, cls)(hypermodel, objective="val_accuracy", seed=7,
                                 directory=str(tmp_path / name), project_name="p", **kwargs)
    with contextlib.redirect_stdout(io.StringIO()):  # KerasTuner prints every trial
        tuner.search(X, Y, epochs=epochs, validation_data=(X, Y), verbose=0)
    trials = tuner.oracle.trials
    return [trials[t] for t in sorted(trials)]


@pytest.mark.parametrize("hypermodel", [build_grid, build_scoped])
def test_grid_search_runs_kerastuners_trials_in_its_order(tmp_path, hypermodel):
    theirs = run(keras_tuner, "GridSearch", tmp_path, "theirs", hypermodel)
    ours = run(kt, "GridSearch", tmp_path, "ours", hypermodel)
    assert [t.hyperparameters.values for t in ours] == [
        t.hyperparameters.values for t in theirs]
    assert [t.trial_id for t in ours] == [t.trial_id for t in theirs]


def schedule(trials):
    """Each trial's place in Hyperband: bracket, round, the epochs it trains, whether it
    continues another trial, and its status."""
    return [(v["tuner/bracket"], v["tuner/round"], v["tuner/initial_epoch"], v["tuner/epochs"],
             "tuner/trial_id" in v, t.status)
            for t in trials for v in [t.hyperparameters.values]]


def promotes_the_best(trials):
    """Whether each promoted trial continues the best trial of the round before among
    those not promoted before it (ties: any of the best)."""
    promoted: set[str] = set()
    for t in trials:
        v = t.hyperparameters.values
        if "tuner/trial_id" not in v:
            continue
        left = [p for p in trials if p.trial_id not in promoted
                and p.hyperparameters.values["tuner/bracket"] == v["tuner/bracket"]
                and p.hyperparameters.values["tuner/round"] == v["tuner/round"] - 1]
        parent = next(p for p in left if p.trial_id == v["tuner/trial_id"])
        if parent.score != max(p.score for p in left):
            return False
        promoted.add(parent.trial_id)
    return bool(promoted)


def test_hyperband_runs_kerastuners_schedule(tmp_path):
    theirs = run(keras_tuner, "Hyperband", tmp_path, "theirs", build, max_epochs=9,
                 factor=3)
    ours = run(kt, "Hyperband", tmp_path, "ours", build, max_epochs=9, factor=3)
    assert schedule(ours) == schedule(theirs)
    # 9 / 3: bracket 2 runs (9, 3, 1) trials, bracket 1 (5, 2), bracket 0 (3)
    assert len(ours) == 23
    assert promotes_the_best(theirs) and promotes_the_best(ours)


def build_fixed_parent(hp):
    """A ``conditional_scope`` whose parent the search fixes to another value."""
    optimizer = hp.Choice("optimizer", ["adam", "sgd"])
    units = hp.Choice("units", [4, 8])
    momentum = 0.0
    with hp.conditional_scope("optimizer", ["sgd"]):
        if optimizer == "sgd":
            momentum = hp.Float("momentum", 0.0, 0.9)
    return _model(units, 0.05, optimizer=optimizer, momentum=momentum)


@pytest.mark.parametrize("fixed", [False, True])
def test_the_space_is_kerastuners_but_for_a_scope_no_value_can_enter(tmp_path, fixed):
    # as the README says: KerasTuner builds once with the fixed parent set to "sgd" and
    # lists "momentum", which no trial can use; hpstore builds only with values the
    # space allows
    def space(module, name):
        override = module.HyperParameters()
        if fixed:
            override.Fixed("optimizer", "adam")
        tuner = module.RandomSearch(build_fixed_parent, objective="val_accuracy",
                                    hyperparameters=override, directory=str(tmp_path / name),
                                    project_name="p")
        return [hp.name for hp in tuner.oracle.get_space().space]

    theirs, ours = space(keras_tuner, "theirs"), space(kt, "ours")
    assert ours == [n for n in theirs if not (fixed and n == "momentum")]
    assert ("momentum" in theirs) and (("momentum" in ours) is not fixed)
