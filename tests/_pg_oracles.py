"""What the PostgreSQL oracle tests share: a small space, one search per built-in oracle,
and running a search to its end."""

from __future__ import annotations

import hpstore


def space(grid: bool = False, small: bool = False) -> hpstore.HyperParameters:
    hp = hpstore.HyperParameters()
    hp.Int("a", 0, 3)
    hp.Float("x", -1.0, 1.0, step=1.0 if grid or small else None)
    return hp


ORACLES = {
    "random": lambda url: hpstore.RandomSearchOracle("loss", max_trials=8,
                                                     hyperparameters=space(), seed=4,
                                                     database=url),
    # 12 sets for 16 trials: draws of values run before, a decision made again (PostgreSQL
    # looks them up as it records them), and the end of the space
    "random-exhausted": lambda url: hpstore.RandomSearchOracle(
        "loss", max_trials=16, hyperparameters=space(small=True), seed=4, database=url),
    "grid": lambda url: hpstore.GridSearchOracle("loss", hyperparameters=space(grid=True),
                                                 seed=4, database=url),
    "bayesian": lambda url: hpstore.BayesianOptimizationOracle(
        "loss", max_trials=8, num_initial_points=3, hyperparameters=space(), seed=4,
        database=url),
    "hyperband": lambda url: hpstore.HyperbandOracle("loss", max_epochs=9, factor=3,
                                                     hyperparameters=space(), seed=4,
                                                     database=url),
}


def another_worker(oracle):
    """``oracle`` with a liveness lock of its own, as an oracle in another process has (the
    oracles of one process share theirs); call before its first trial."""
    from hpstore.store.postgresql import liveness

    mine = oracle.store._liveness = liveness.Liveness(oracle.store.db)
    mine.users = 1
    return oracle


def finish(oracle, stop_after=None):
    done = 0
    while stop_after is None or done < stop_after:
        trial = oracle.create_trial("w")
        if trial.status != "RUNNING":
            return done
        v = trial.hyperparameters.values
        oracle.update_trial(trial.trial_id, {"loss": (v["a"] - 2) ** 2 + v["x"]})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        done += 1
    return done
