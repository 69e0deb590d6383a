"""hpstore.Tuner against the public surface of KerasTuner's BaseTuner: what a ported script
calls or overrides behaves the same, or says what to use instead (never an argument
ignored, or a bare AttributeError deep in the script)."""

from __future__ import annotations

import pytest
from _tuners import oracle

import hpstore


class _ReportsThroughTheOracle(hpstore.Tuner):
    def run_trial(self, trial):
        for epoch, loss in enumerate([5.0, 4.0, 3.0]):
            self.oracle.update_trial(trial.trial_id, {"loss": loss}, step=epoch)
        return {"loss": 0.5}  # (a test loss, say)


class _ReportsItself(_ReportsThroughTheOracle):
    def run_trial(self, trial):
        for epoch, loss in enumerate([5.0, 4.0, 3.0]):
            self.report(trial, {"loss": loss}, step=epoch)
        return {"loss": 0.5}


@pytest.mark.parametrize("tuner_class", [_ReportsThroughTheOracle, _ReportsItself])
def test_a_value_returned_after_the_objective_was_reported_is_not_recorded(tuner_class):
    # KerasTuner ignores it; here it was recorded at step 0 through the oracle, and
    # averaged with that epoch's 5.0 into a score of 2.75 that no epoch reached
    tuner = tuner_class(oracle(max_trials=1), verbose=0)
    tuner.search()
    trial = tuner.oracle.trials["0"]
    assert (trial.status, trial.score, trial.best_step) == ("COMPLETED", 3.0, 2)
    assert [o.value for o in trial.metrics.get_history("loss")] == [[5.0], [4.0], [3.0]]
