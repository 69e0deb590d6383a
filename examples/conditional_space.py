"""A conditional space: each model type has hyperparameters of its own.

    python examples/conditional_space.py [DB] [TRIALS]

The hypermodel declares the space; hyperparameters of the model not chosen are inactive
(absent from the trial's values) and are not tuned for that trial. Left out, TRIALS is the
number the search holds (10 for a new one).
"""

import math
import sys

import hpstore


class HyperModel:
    def build(self, hp):
        kind = hp.Choice("model", ["forest", "linear"])
        with hp.conditional_scope("model", ["forest"]):
            trees = hp.Int("trees", 10, 200, step=10)
            depth = hp.Int("depth", 2, 12)
        with hp.conditional_scope("model", ["linear"]):
            l2 = hp.Float("l2", 1e-6, 1.0, sampling="log")
        return {"kind": kind, "trees": trees, "depth": depth, "l2": l2}

    def fit(self, hp, model):
        if model["kind"] == "forest":
            return {"val_error": 0.2 + 0.002 * abs(model["depth"] - 7) + 2 / model["trees"]}
        return {"val_error": 0.25 + 0.01 * abs(math.log10(model["l2"]) + 3)}


def main(db="conditional.db", trials=None):
    oracle = hpstore.BayesianOptimizationOracle(objective="val_error", max_trials=trials,
                                                seed=4, database=db)
    tuner = hpstore.Tuner(oracle, hypermodel=HyperModel())
    tuner.search_space_summary()
    tuner.search()
    for hp in tuner.get_best_hyperparameters(3):
        print(hp.values)


if __name__ == "__main__":
    main(*sys.argv[1:2], *map(int, sys.argv[2:3]))
