"""A script that forgets `if __name__ == "__main__":` around search(workers=2).

usage: no_main_guard.py DB

Each worker process imports this script again (spawn), and so calls search() again.
"""

import sys

import hpstore


def run_trial(trial):
    return trial.hyperparameters["x"]


hp = hpstore.HyperParameters()
hp.Float("x", 0, 1)
oracle = hpstore.RandomSearchOracle("loss", max_trials=4, hyperparameters=hp, seed=1,
                                    database=sys.argv[1])
hpstore.Tuner(oracle, run_trial=run_trial, verbose=1).search(workers=2)
