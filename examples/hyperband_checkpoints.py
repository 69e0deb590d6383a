"""Hyperband with epochs: a promoted trial continues the model of the trial it came from.

    python examples/hyperband_checkpoints.py [DB] [MAX_EPOCHS]

Each trial's values carry tuner/epochs (train up to here), tuner/initial_epoch (start
here) and, for a promoted trial, tuner/trial_id: the trial whose checkpoint to load. The
"model" here is a number that improves with training; the checkpoint is a JSON file, kept
in a folder beside the search file (hyperband.db keeps them in hyperband-checkpoints/), so
a search stopped half-way resumes with the checkpoints its promoted trials need.
"""

import json
import os
import sys

import hpstore


class EpochTuner(hpstore.Tuner):
    def __init__(self, oracle, hypermodel, checkpoints):
        super().__init__(oracle, hypermodel=hypermodel)
        self.checkpoints = checkpoints
        os.makedirs(checkpoints, exist_ok=True)

    def checkpoint(self, trial_id):
        return os.path.join(self.checkpoints, f"trial-{trial_id}.json")

    def run_trial(self, trial):
        hp = trial.hyperparameters
        start = hp.get("tuner/initial_epoch")
        state = {"loss": 10.0}
        if "tuner/trial_id" in hp.values:  # promoted: continue the earlier trial's model
            with open(self.checkpoint(hp.get("tuner/trial_id")), encoding="utf-8") as f:
                state = json.load(f)
        rate = hp.get("learning_rate")
        for epoch in range(start, hp.get("tuner/epochs")):
            state["loss"] = state["loss"] * (1 - rate) + abs(rate - 0.3) * 0.5
            if self.report(trial, {"loss": state["loss"]}, step=epoch):
                break
        with open(self.checkpoint(trial.trial_id), "w", encoding="utf-8") as f:
            json.dump(state, f)


def build(hp):
    hp.Float("learning_rate", 0.01, 0.9)


def main(db="hyperband.db", max_epochs=27):
    oracle = hpstore.HyperbandOracle(objective="loss", max_epochs=max_epochs, factor=3,
                                     seed=2, database=db)
    tuner = EpochTuner(oracle, hypermodel=build,
                       checkpoints=os.path.splitext(db)[0] + "-checkpoints")
    tuner.search()
    best = tuner.get_best_trials(1)[0]
    print(f"best: trial {best.trial_id}, {best.hyperparameters.values}")


if __name__ == "__main__":
    main(*sys.argv[1:2], *map(int, sys.argv[2:3]))
