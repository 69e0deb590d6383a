"""A notebook cell whose oracle is closed while its trial runs, run again and again (for
the tests of a file and of a server alike)."""

from __future__ import annotations

import pytest

import hpstore


def cells_closing_their_oracle(open_oracle, database):
    """A notebook cell ``with Oracle(...) as oracle:`` interrupted while its trial runs,
    run four times: the trial id each run got, and the oracle of a fifth run."""
    def oracle_of_the_cell():
        hp = hpstore.HyperParameters()
        hp.Int("x", 0, 1000)
        return open_oracle("loss", max_trials=10, hyperparameters=hp, seed=1,
                           database=database, project_name="cells")

    got = []
    for _ in range(4):
        with pytest.raises(KeyboardInterrupt), oracle_of_the_cell() as oracle:
            got.append(oracle.create_trial("nb").trial_id)
            raise KeyboardInterrupt  # the cell's stop button, as the trial trains
    return got, oracle_of_the_cell()


def trial_left_to_the_next_cell(got, oracle):
    # The process lives: its closed oracle's trial is its own, and the next cell's oracle
    # hands it back to the same tuner id, in the same run. It used to be taken for a dead
    # worker's at each new cell, counted, and FAILED at the third.
    assert got == [got[0]] * 4
    record = oracle._project.trial(got[0])
    assert (record.status, record.run, record.interruptions) == ("RUNNING", 1, 0)
    trial = oracle.create_trial("nb")
    assert trial.trial_id == got[0]
    oracle.update_trial(trial.trial_id, {"loss": 1.0})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    assert oracle.get_trial(got[0]).status == "COMPLETED"
    oracle.close()
