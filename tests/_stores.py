"""The engines the store contract suite runs on, and what spawned test processes run.

Spawned children import this module by name, so it holds no test functions itself.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from hpstore.store import Decision, NewProject, open_store

DEADLINE = 60.0

#: engines that keep a search across processes (every multi-process test runs on each)
SHARED_ENGINES = ["sqlite-file", "postgresql"]
#: every engine
ENGINES = [*SHARED_ENGINES, "sqlite-memory"]


def location(engine: str, tmp_path: Any) -> str | None:
    """Where a fresh store of ``engine`` lives for one test."""
    if engine == "sqlite-file":
        return str(tmp_path / "contract.db")
    if engine == "sqlite-memory":
        return None
    if engine == "postgresql":  # a schema of its own on the tests' server
        from _postgres import fresh_url

        return fresh_url()
    raise ValueError(engine)


def new_project(name: str = "p", max_trials: int | None = 10) -> NewProject:
    return NewProject(name, "RandomSearchOracle", {"search": {}, "options": {}},
                      {"name": "loss", "direction": "min"}, max_trials, 7,
                      [{"class_name": "Int", "config": {
                          "name": "x", "default": 0, "conditions": [], "min_value": 0,
                          "max_value": 4, "step": 1, "sampling": "linear"}}])


def first_free(project: Any, choices: range) -> Any:
    """A decider that takes the first value of ``choices`` no trial has yet: safe only if
    decisions are serialised, which is what the contract promises."""

    def decide(facts: Any) -> Decision:
        number = facts.number
        if facts.full:
            return Decision("STOPPED", str(number))
        for x in choices:
            key = f"x={x}"
            if not project.has_values(key):
                return Decision("RUNNING", f"{number:02d}", {"x": x}, key,
                                {"last": {"number": number, "x": x}})
        return Decision("STOPPED", str(number))

    return decide


def decide_many(where: str, worker: str, count: int, start: Any, results: Any,
                quick: bool = False) -> None:
    """Decide ``count`` trials as fast as possible once ``start`` fires (``quick``: as
    cheap decisions, made inside the recording transaction)."""
    try:
        store = open_store(where)
        record = store.find_project("p")
        assert record is not None
        project = store.open_project(record)
        session = store.session()
        start.wait()
        made = []
        for _ in range(count):
            outcome = project.decide(first_free(project, range(10_000)),
                                     tuner_id=f"{worker}-{len(made)}", session=session,
                                     quick=quick)
            if isinstance(outcome, Decision):
                break
            made.append((outcome.number, outcome.trial_id, outcome.values_key))
        store.close()
        results.put(("ok", made))
    except BaseException as exc:  # report everything to the parent
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def hold_then_die(where: str, ready: Any, info: Any) -> None:
    """Take a trial, say which, then wait to be killed."""
    store = open_store(where)
    record = store.find_project("p")
    assert record is not None
    project = store.open_project(record)
    trial = project.decide(first_free(project, range(10)), tuner_id="doomed",
                           session=store.session())
    info.put((trial.trial_id, store.session(), os.getpid()))
    ready.set()
    signal.pause()  # until SIGKILL


def lost_runs_oracle(where: str, **options: Any) -> Any:
    """The oracle of the lost-run tests (test_lost_runs.py, test_lost_runs_again.py)."""
    from hpstore import HyperParameters, RandomSearchOracle

    hp = HyperParameters()
    hp.Float("x", 0.0, 10.0)
    return RandomSearchOracle("loss", max_trials=5, hyperparameters=hp, seed=1,
                              database=where, project_name="lost", **options)


def enqueue_take_and_hold(where: str, values: dict[str, Any], loss: float, info: Any
                          ) -> None:
    """Enqueue ``values``, take the trial they make as tuner 'B', report ``loss`` for it,
    say which trial (with its liveness token), then wait to be killed."""
    oracle = lost_runs_oracle(where)
    oracle.enqueue_trial(values)
    trial = oracle.create_trial("B")
    oracle.update_trial(trial.trial_id, {"loss": loss})
    info.put((trial.trial_id, oracle.store.session(), os.getpid()))
    signal.pause()  # until SIGKILL
