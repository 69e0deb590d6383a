"""A Tuner subclass defined under the main guard: spawned workers cannot rebuild it."""

import sys

import hpstore


def build(hp):
    hp.Float("x", 0, 1)


if __name__ == "__main__":
    oracle = hpstore.RandomSearchOracle("loss", max_trials=6, seed=2, database=sys.argv[1])

    class Local(hpstore.Tuner):
        def run_trial(self, trial):
            return trial.hyperparameters["x"]

    Local(oracle, hypermodel=build, verbose=1).search(workers=2)
