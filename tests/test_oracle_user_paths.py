"""The grid, Hyperband and Bayesian oracles as their users drive them: spaces declared
while trials run, several workers at once, odd objectives."""

from __future__ import annotations

import collections

import hpstore


def declare(hp):
    """A space a trial declares as it runs (nothing given to the oracle, no hypermodel)."""
    hp.Choice("model", ["a", "b", "c"])
    hp.Float("x", 0.0, 1.0)


def test_hyperband_keeps_its_first_bracket_whole_when_a_second_worker_asks_early():
    # The first trial runs with no values (its space is declared as it runs); a second
    # worker asking meanwhile finds nothing new to start. That is no reason to close the
    # bracket at one trial: once the first trial has declared the space, the bracket's
    # first round gets its 9 trials, as it does with one worker.
    oracle = hpstore.HyperbandOracle(max_epochs=9, factor=3, seed=1)
    first = oracle.create_trial("w0")
    assert oracle.create_trial("w1").status == "IDLE"
    seen = []
    trial = first
    while trial.status == "RUNNING":
        declare(trial.hyperparameters)
        seen.append(trial.hyperparameters.values)
        oracle.update_trial(trial.trial_id,
                            {"default_objective": trial.hyperparameters.values["x"]})
        oracle.end_trial(trial)
        trial = oracle.create_trial("w0")
    assert trial.status == "STOPPED"
    rounds = collections.Counter((v["tuner/bracket"], v["tuner/round"]) for v in seen)
    assert rounds == {(2, 0): 9, (2, 1): 3, (2, 2): 1, (1, 0): 5, (1, 1): 2, (0, 0): 3}
