"""A stopping rule averaging several reports at one step near the float range: the same
mean the trial's own curve takes (no overflow) on a file and on a server (which refused the
sum with "value out of range" and failed the report)."""

from __future__ import annotations

import pytest
from _postgres import fresh_url

import hpstore


@pytest.mark.parametrize("rule", [hpstore.MedianStopping(min_trials=2),
                                  hpstore.SuccessiveHalving(min_resource=1)], ids=repr)
@pytest.mark.parametrize("engine", ["file", "server"])
def test_rules_average_reports_near_the_float_range(tmp_path, rule, engine):
    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 1)
    database = str(tmp_path / "h.db") if engine == "file" else fresh_url()
    oracle = hpstore.RandomSearchOracle("loss", max_trials=4, hyperparameters=hp, seed=1,
                                        database=database, early_stopping=rule)
    for value in (1.7e308, 1.6e308):  # each reported twice: the sum passes the range
        trial = oracle.create_trial("w")
        for _ in range(2):
            oracle.update_trial(trial.trial_id, {"loss": value}, step=1)
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    trial = oracle.create_trial("w")
    # worse than both others' means (1.7e308 and 1.6e308), better than an overflowed inf
    assert oracle.update_trial(trial.trial_id, {"loss": 1.75e308}, step=1).status == "STOPPED"
    oracle.close()
