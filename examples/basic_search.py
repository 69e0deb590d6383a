"""A basic search: a function of three hyperparameters, minimised by random search.

    python examples/basic_search.py [DB] [TRIALS]

Run it again and it resumes; raise TRIALS to extend a finished search. Left out, TRIALS
is the number the search holds (10 for a new one, as in KerasTuner): given, a number is
stored, a lower one too.
"""

import sys

import hpstore


def run_trial(trial):
    v = trial.hyperparameters.values
    return (v["x"] - 3) ** 2 + v["y"] + (1.0 if v["c"] == "a" else 0.0)  # minimised


def main(db="basic.db", trials=None):
    hp = hpstore.HyperParameters()
    hp.Float("x", -10, 10)
    hp.Int("y", 0, 10)
    hp.Choice("c", ["a", "b"])
    oracle = hpstore.RandomSearchOracle(max_trials=trials, hyperparameters=hp, seed=1,
                                        database=db)
    tuner = hpstore.Tuner(oracle, run_trial=run_trial)
    tuner.search()
    tuner.results_summary(3)


if __name__ == "__main__":
    main(*sys.argv[1:2], *map(int, sys.argv[2:3]))
