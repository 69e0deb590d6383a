"""The grid, Hyperband and Bayesian oracles as their users drive them: spaces declared
while trials run, several workers at once, odd objectives."""

from __future__ import annotations

import collections
import multiprocessing as mp

import pytest
from _postgres import fresh_url

import hpstore
from hpstore.oracle import values_key

DEADLINE = 120.0


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


def _end_first_trial_when_told(url, kind, conn):
    """A worker of its own process: takes the first trial (no values yet: the space is
    declared as it runs), then ends it, declaring the space, when the test says."""
    oracle = ORACLES_BY_KIND[kind](url)
    trial = oracle.create_trial("first")
    conn.send(trial.hyperparameters.values)
    if not conn.poll(DEADLINE):
        return
    declare(trial.hyperparameters)
    oracle.update_trial(trial.trial_id, {"default_objective": 0.5})
    oracle.end_trial(trial)
    conn.send("ended")
    conn.poll(DEADLINE)  # (kept alive until the test is done with it)
    oracle.close()


class _EndsTheFirstTrialMidDecision:
    """Makes the other worker end its trial in the middle of this worker's decision:
    after the running trials and the space were read, before the values are chosen."""

    conn = None

    def populate_space(self, trial_id):
        if self.conn is not None:
            self.conn.send("end")
            assert self.conn.poll(DEADLINE) and self.conn.recv() == "ended"
            type(self).conn = None
        return super().populate_space(trial_id)


class _Hyperband(_EndsTheFirstTrialMidDecision, hpstore.HyperbandOracle):
    # (a class with its own populate_space decides as a slow one unless it says otherwise:
    # this one decides as the built-in class does)
    decides_quickly = hpstore.HyperbandOracle.decides_quickly


class _Bayesian(_EndsTheFirstTrialMidDecision, hpstore.BayesianOptimizationOracle):
    decides_quickly = hpstore.BayesianOptimizationOracle.decides_quickly


ORACLES_BY_KIND = {"hyperband": lambda url: _Hyperband(database=url, max_epochs=9, seed=1),
                   "bayesian": lambda url: _Bayesian(database=url, seed=1)}


@pytest.mark.parametrize(("kind", "engine"), [("hyperband", "postgresql"),
                                              ("bayesian", "postgresql"),
                                              ("bayesian", "sqlite")])
def test_a_trial_ending_mid_decision_is_not_run_again(kind, engine, tmp_path):
    # A worker reads the running trials (the first, with no values) and decides; meanwhile
    # the first trial ends, recorded with the values it declared (on PostgreSQL ending
    # waits for no decision; on a file, the Bayesian oracle thinks outside the write
    # lock). The look-up of the first trial's values then misses it, and the same (empty)
    # set of values was handed out again: the same model run twice. (A quick decision on
    # a file is made in the write transaction, where no trial ends meanwhile.)
    url = fresh_url() if engine == "postgresql" else str(tmp_path / "search.db")
    ours, theirs = mp.Pipe()
    other = mp.get_context("spawn").Process(target=_end_first_trial_when_told,
                                             args=(url, kind, theirs))
    other.start()
    try:
        assert ours.poll(DEADLINE)
        ours.recv()
        racing = ORACLES_BY_KIND[kind](url)
        type(racing).conn = ours
        trial = racing.create_trial("second")
        if trial.status == "RUNNING":
            declare(trial.hyperparameters)
            racing.update_trial(trial.trial_id, {"default_objective": 1.0})
            racing.end_trial(trial)
        keys = [values_key(t.hyperparameters.values) for t in racing.trials.values()]
        assert len(keys) == len(set(keys)), [t.hyperparameters.values
                                             for t in racing.trials.values()]
        racing.close()
    finally:
        ours.send("done")
        other.join(DEADLINE)
        if other.is_alive():
            other.kill()
