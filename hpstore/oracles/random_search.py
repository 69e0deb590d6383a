"""Random search: each trial a fresh random point of the space, never one already run."""

from __future__ import annotations

from typing import Any

from hpstore.oracle import Oracle


class RandomSearchOracle(Oracle):
    """Samples every active hyperparameter uniformly in its probability space.

    Takes the arguments of :class:`hpstore.oracle.Oracle`; a new search runs 10 trials
    unless ``max_trials`` says otherwise (a resumed one keeps its stored ``max_trials``).
    The values of trial number n are decided by the seed and n alone, so a search
    resumed from the file, or shared by several processes, draws the same points. A
    finite space that has been run in full stops the search exactly then (once the trials
    still running have ended: they may declare new hyperparameters).

    Raises:
        as :class:`hpstore.Oracle` (a bad argument, a search made otherwise, a file that
        cannot be used).
    """

    decides_quickly = True  # no model to fit: decided inside the recording transaction
    draws_ahead = True  # the values depend on the seed, the number and what ran: no state

    default_max_trials = 10

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        values = self.random_values()
        if values is None:
            return self.exhausted()
        return {"status": "RUNNING", "values": values}
