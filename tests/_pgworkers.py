"""What the PostgreSQL tests' worker processes run (spawned children import this module by
name, so it holds no test functions)."""

from __future__ import annotations

import os
import time
from typing import Any

import hpstore
from hpstore.errors import HpStoreError, TrialNotRunningError


def oracle_on(url: str, max_trials: int) -> hpstore.RandomSearchOracle:
    hp = hpstore.HyperParameters()
    hp.Float("x", -10, 10)
    hp.Int("y", 0, 10)
    hp.Choice("c", ["a", "b"])
    return hpstore.RandomSearchOracle("loss", max_trials=max_trials, hyperparameters=hp,
                                      seed=1, database=url)


def score(values: dict[str, Any]) -> float:
    return float((values["x"] - 3) ** 2 + values["y"] + (values["c"] == "a"))


def run_trials(url: str, max_trials: int, tuner: str, start: Any, results: Any,
               step_time: float = 0.0) -> None:
    """Run trials until the search stops; report every trial completed, and every error.

    A trial handed to another worker meanwhile (TrialNotRunningError, after a restart of
    the server) is reported and the worker goes on with the next one."""
    done: list[tuple[str, float]] = []
    errors: list[str] = []
    try:
        oracle = oracle_on(url, max_trials)
        start.wait()
        while True:
            try:
                trial = oracle.create_trial(tuner)
                if trial.status == "STOPPED":
                    break
                if trial.status == "IDLE":
                    time.sleep(0.01)  # polling the oracle, as a tuner does
                    continue
                value = score(trial.hyperparameters.values)
                if step_time:
                    time.sleep(step_time)  # the "training"
                oracle.update_trial(trial.trial_id, {"loss": value})
                trial.status = "COMPLETED"
                oracle.end_trial(trial)
                done.append((trial.trial_id, value))
            except TrialNotRunningError as exc:
                errors.append(f"gone: {exc}")
        oracle.close()
    except HpStoreError as exc:  # a clear error ends the worker
        errors.append(f"{type(exc).__name__}: {exc}")
    except BaseException as exc:  # anything else is a failure of the test
        errors.append(f"CRASH {type(exc).__name__}: {exc}")
    results.put((tuner, os.getpid(), done, errors))


def hold_a_trial(url: str, ready: Any, info: Any, go: Any, outcome: Any) -> None:
    """Take a trial, say which (and which backends serve this process), wait for ``go``,
    then try to finish it and say what happened."""
    try:
        oracle = oracle_on(url, 10)
        trial = oracle.create_trial("doomed")
        info.put((trial.trial_id, oracle.store.session(), os.getpid(),
                  dict(trial.hyperparameters.values)))
        ready.set()
        go.wait()
        try:
            oracle.update_trial(trial.trial_id, {"loss": 123.0})
            trial.status = "COMPLETED"
            oracle.end_trial(trial)
            outcome.put("finished")
        except HpStoreError as exc:
            outcome.put(f"{type(exc).__name__}: {exc}")
        oracle.close()
    except BaseException as exc:  # report everything to the parent
        outcome.put(f"CRASH {type(exc).__name__}: {exc}")
