"""Running a search to its end and reading all it holds, for the steering tests
(test_steering.py, test_warm_start.py)."""

from __future__ import annotations

import json

from _workers import objective_value


def run(oracle, tuner="w", n=None):
    """Run trials to the end (or ``n`` of them); their (id, values)."""
    ran = []
    while (n is None or len(ran) < n) and (
            trial := oracle.create_trial(tuner)).status == "RUNNING":
        ran.append((trial.trial_id, trial.hyperparameters.values))
        oracle.update_trial(trial.trial_id, {"loss": objective_value(trial.hyperparameters.values)})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    return ran


def state(oracle):
    """Everything the project holds, for 'nothing was written' checks."""
    doc = oracle.get_state()
    doc["settings"].pop("updated_at")
    return json.dumps(doc, sort_keys=True)
