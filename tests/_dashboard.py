"""What the dashboard tests' spawned processes run, and the searches they inspect.

Spawned children import this module by name, so it holds no test functions itself.
"""

from __future__ import annotations

import math
import os
from typing import Any

from _stores import first_free

import hpstore
from hpstore.store import TrialRecord, open_store

DEADLINE = 60.0

HOSTILE = "<img src=x onerror=alert(1)>&\"'"
HOSTILE_PROJECT = "</script><script>alert('p')</script>"
METRIC_HOSTILE = "<svg onload=alert(2)>"


def report_values(where: str, worker: str, count: int, start: Any, results: Any) -> None:
    """Start a trial of project "p" and record ``count`` values, one transaction each."""
    try:
        store = open_store(where)
        record = store.find_project("p")
        assert record is not None
        project = store.open_project(record)
        trial = project.decide(first_free(project, range(10)), tuner_id=worker,
                               session=store.session())
        assert isinstance(trial, TrialRecord)
        start.wait(DEADLINE)
        for step in range(count):
            project.record_metrics(trial.trial_id, [("loss", "min", step, float(step))])
        store.close()
        results.put(("ok", trial.trial_id))
    except BaseException as exc:  # report everything to the parent
        results.put(("error", f"{type(exc).__name__}: {exc}"))


# -- searches -------------------------------------------------------------------------------

def space() -> hpstore.HyperParameters:
    hp = hpstore.HyperParameters()
    hp.Float("x", -10, 10)
    hp.Int("y", 0, 6)
    hp.Choice(HOSTILE, ["<b>a</b>", "b&c"])
    return hp


def curve_value(values: dict[str, Any], step: int) -> float:
    base = (values["x"] - 3) ** 2 + values["y"]
    return base + 10.0 / (step + 1)


class CurveTuner(hpstore.Tuner):
    """Reports loss and a hostile-named metric per step; some trials report NaN and inf, one
    kind of trial fails with a traceback holding markup."""

    def run_trial(self, trial: hpstore.Trial) -> None:
        v = trial.hyperparameters.values
        if v["y"] == 6:
            raise hpstore.FailedTrialError("<b>six</b> & more: refused")
        for step in range(4):
            loss = curve_value(v, step)
            if v["y"] == 5 and step == 1:
                loss = math.nan
            self.report(trial, {"loss": loss, METRIC_HOSTILE: math.inf if step == 2 else -1.0},
                        step=step)


def write_search(path: str, project: str, trials: int, *, seed: int = 3, workers: int = 1,
                 tuner_id: str | None = None) -> None:
    """A search of ``trials`` trials written by ``workers`` processes."""
    oracle = hpstore.RandomSearchOracle(
        objective="loss", max_trials=trials, seed=seed, database=path, project_name=project,
        hyperparameters=space(), max_consecutive_failed_trials=100)
    tuner = CurveTuner(oracle, tuner_id=tuner_id, verbose=0)
    if workers > 1:
        tuner.search(workers=workers)
    else:
        tuner.search()
    oracle.close()


def run_worker(path: str, project: str, trials: int, start: Any, results: Any) -> None:
    """One worker of a shared search, started by ``start``; puts ("ok"|"error", pid, text)."""
    try:
        oracle = hpstore.RandomSearchOracle(
            objective="loss", max_trials=trials, seed=11, database=path,
            project_name=project, hyperparameters=space(), max_consecutive_failed_trials=100)
        tuner = CurveTuner(oracle, tuner_id=f"w{os.getpid()}", verbose=0)
        start.wait(DEADLINE)
        tuner.search()
        oracle.close()
        results.put(("ok", os.getpid(), ""))
    except BaseException as exc:  # report everything to the parent
        results.put(("error", os.getpid(), f"{type(exc).__name__}: {exc}"))
