"""A small search space, oracle and Tuner shared by test_tuner.py and
test_tuner_processes.py."""

from __future__ import annotations

from pathlib import Path

import hpstore

SCRIPT = str(Path(__file__).parent / "scripts" / "search.py")
DEADLINE = 120


def space():
    hp = hpstore.HyperParameters()
    hp.Float("x", -5, 5)
    hp.Int("n", 1, 3)
    return hp


def oracle(path=None, cls=hpstore.RandomSearchOracle, **kwargs):
    kwargs.setdefault("max_trials", 6)
    kwargs.setdefault("hyperparameters", space())
    return cls(kwargs.pop("objective", "loss"), seed=1, database=path, **kwargs)


class Squares(hpstore.Tuner):
    """Scores a trial x**2 at once."""

    def run_trial(self, trial):
        return {"loss": trial.hyperparameters.values["x"] ** 2}
