"""A small test oracle and the functions that spawned test processes run.

Spawned children import this module by name, so it holds no test functions itself.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import time
from typing import Any

import hpstore
from hpstore.oracle import Oracle

DEADLINE = 60.0  # seconds any synchronisation may wait before a test fails


def file_digest(path: str) -> str:
    """The digest of the file's bytes (to show a reader changed nothing)."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def end_trials(oracle: Oracle, statuses: list[str]) -> Oracle:
    """``oracle`` after one new trial per status, each reporting a loss of 1 and ended so."""
    for status in statuses:
        trial = oracle.create_trial("w")
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        trial.status = status
        oracle.end_trial(trial)
    return oracle


class RandomTestOracle(Oracle):
    """Random values through the base class's helper; STOPPED when the space is used up."""

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        values = self._random_values()
        if values is None:
            return {"status": "STOPPED"}
        return {"status": "RUNNING", "values": values}


def space() -> hpstore.HyperParameters:
    hp = hpstore.HyperParameters()
    hp.Float("x", -10, 10)
    hp.Int("y", 0, 10)
    hp.Choice("c", ["a", "b"])
    return hp


def objective_value(values: dict[str, Any]) -> float:
    return (values["x"] - 3) ** 2 + values["y"] + (values["c"] == "a")


def open_oracle(path: str, **kwargs: Any) -> RandomTestOracle:
    kwargs.setdefault("objective", "loss")
    kwargs.setdefault("hyperparameters", space())
    return RandomTestOracle(database=path, **kwargs)


def run_trials(oracle: Oracle, tuner_id: str = "tuner0", n: int | None = None
               ) -> list[hpstore.Trial]:
    """Complete trials until STOPPED (or n of them); return them as ended."""
    ended = []
    while n is None or len(ended) < n:
        trial = oracle.create_trial(tuner_id)
        if trial.status != "RUNNING":
            break
        oracle.update_trial(trial.trial_id, {"loss": objective_value(trial.hyperparameters.values)})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        ended.append(trial)
    return ended


def run_together(target: Any, args_of: list[tuple[Any, ...]],
                 wait: float = DEADLINE * 2) -> list[Any]:
    """A spawned process per ``args_of`` entry, each running ``target(*args, start,
    results)``, let go at once: what each put in ``results``, in the order they came."""
    ctx = mp.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, start, results)) for args in args_of]
    for proc in procs:
        proc.start()
    start.set()
    reports = [results.get(timeout=wait) for _ in procs]
    for proc in procs:
        proc.join(DEADLINE)
    return reports


def run_worker(path: str, tuner_id: str, max_trials: int, start: Any, results: Any) -> None:
    """Run trials until STOPPED; put (tuner_id, [(trial_id, score)], error) on ``results``."""
    done: list[tuple[str, float]] = []
    error = None
    try:
        oracle = open_oracle(path, max_trials=max_trials)
        if start.wait(DEADLINE) is False:  # an Event; a Barrier raises instead
            raise RuntimeError("start signal never came")
        while True:
            trial = oracle.create_trial(tuner_id)
            if trial.status == "STOPPED":
                break
            if trial.status == "IDLE":
                continue
            score = objective_value(trial.hyperparameters.values)
            oracle.update_trial(trial.trial_id, {"loss": score})
            trial.status = "COMPLETED"
            oracle.end_trial(trial)
            done.append((trial.trial_id, trial.score))
    except BaseException as exc:  # report everything to the parent
        error = f"{type(exc).__name__}: {exc}"
    results.put((tuner_id, done, error))


def open_new_file(path: str, start: Any, results: Any) -> None:
    """Open a brand-new file the moment ``start`` fires; report the schema seen."""
    try:
        if not start.wait(DEADLINE):
            raise RuntimeError("start signal never came")
        oracle = open_oracle(path, max_trials=5)
        version = oracle.store.db.connect().execute("PRAGMA user_version").fetchone()[0]
        results.put(("ok", version))
    except BaseException as exc:
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def hold_trial(path: str, tuner_id: str, holding: Any, info: Any) -> None:
    """Take a trial, say which, then wait to be killed."""
    oracle = open_oracle(path, max_trials=50)
    trial = oracle.create_trial(tuner_id)
    oracle.update_trial(trial.trial_id, {"loss": 1.0}, step=0)
    info.put((trial.trial_id, trial.hyperparameters.values, os.getpid()))
    holding.set()
    while True:  # until SIGKILL
        time.sleep(1)


def hold_trial_elsewhere(path: str, tuner_id: str, holding: Any, info: Any) -> None:
    """As hold_trial, as a worker of another machine sharing the file (a network file
    system's): its kernel's boot id is another."""
    from hpstore.store.sqlite import machines

    machines.MACHINE = "00000000-0000-4000-8000-00000000beef"
    hold_trial(path, tuner_id, holding, info)


def hold_until_released(path: str, tuner_id: str, holding: Any, release: Any,
                        outcome: Any) -> None:
    """Take a trial, then wait for ``release``; then end the trial, say how that went (an
    error's class name, or "ended") and close, as a worker that stops does."""
    oracle = open_oracle(path, max_trials=50)
    trial = oracle.create_trial(tuner_id)
    oracle.update_trial(trial.trial_id, {"loss": 1.0}, step=0)
    holding.set()
    release.wait(DEADLINE)
    end_and_say(oracle, trial, outcome)


def end_and_say(oracle: Oracle, trial: Any, outcome: Any) -> None:
    """End ``trial`` COMPLETED, say how that went (an error's class name, or "ended"), and
    close."""
    try:
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        outcome.put("ended")
    except Exception as exc:
        outcome.put(type(exc).__name__)
    oracle.close()


def write_forever(path: str, tuner_id: str, started: Any, progress: Any) -> None:
    """Complete trials and stream metrics as fast as possible until killed mid-write."""
    oracle = open_oracle(path, max_trials=100_000)
    started.set()
    step = 0
    while True:
        trial = oracle.create_trial(tuner_id)
        for _ in range(5):
            oracle.update_trial(trial.trial_id, {"loss": float(step)}, step=step)
            step += 1
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        progress.put((trial.trial_id, trial.score))


def grid_space() -> hpstore.HyperParameters:
    hp = hpstore.HyperParameters()
    hp.Int("units", 1, 3)
    hp.Choice("act", ["relu", "tanh"], default="tanh")
    hp.Boolean("dropout")
    with hp.conditional_scope("dropout", [True]):
        hp.Choice("rate", [0.1, 0.5])
    return hp


def build(kind: str, path: str, **kwargs: Any) -> Oracle:
    """An oracle of the named built-in kind on ``path`` (for spawned workers)."""
    if kind == "grid":
        return hpstore.GridSearchOracle("loss", hyperparameters=grid_space(), database=path,
                                        **kwargs)
    if kind == "hyperband":
        kwargs.setdefault("max_epochs", 9)
        kwargs.setdefault("factor", 3)
        return hpstore.HyperbandOracle("loss", hyperparameters=space(), seed=5, database=path,
                                       **kwargs)
    raise ValueError(kind)


def score_of(values: dict[str, Any]) -> float:
    """A deterministic score for any of the test spaces (longer training scores better)."""
    text = json.dumps({k: v for k, v in values.items() if not k.startswith("tuner/")},
                      sort_keys=True)
    base = (sum(text.encode()) % 97) / 97
    return base / (1 + values.get("tuner/epochs", 1))


def run_kind(kind: str, path: str, tuner_id: str, start: Any, results: Any,
             stop_after: int | None = None) -> None:
    """Complete trials of a built-in oracle until STOPPED; report (tuner_id, ids, error)."""
    done: list[str] = []
    error = None
    try:
        oracle = build(kind, path)
        if start is not None and not start.wait(DEADLINE):
            raise RuntimeError("start signal never came")
        while stop_after is None or len(done) < stop_after:
            trial = oracle.create_trial(tuner_id)
            if trial.status == "STOPPED":
                break
            if trial.status == "IDLE":
                continue
            oracle.update_trial(trial.trial_id, {"loss": score_of(trial.hyperparameters.values)})
            trial.status = "COMPLETED"
            oracle.end_trial(trial)
            done.append(trial.trial_id)
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
    results.put((tuner_id, done, error))


def run_kind_until_killed(kind: str, path: str, tuner_id: str, started: Any,
                          progress: Any) -> None:
    """Complete trials, reporting each, until SIGKILL arrives."""
    oracle = build(kind, path)
    started.set()
    while True:
        trial = oracle.create_trial(tuner_id)
        if trial.status != "RUNNING":
            time.sleep(0.01)  # pacing only, not synchronisation: nothing waits on it
            continue
        oracle.update_trial(trial.trial_id, {"loss": score_of(trial.hyperparameters.values)})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        progress.put(trial.trial_id)


def forked_child(oracle: Oracle, results: Any) -> None:
    """Use an oracle inherited through fork: it must reconnect and take its own trial."""
    try:
        trial = oracle.create_trial("child")
        oracle.update_trial(trial.trial_id, {"loss": 2.0})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        results.put(("ok", trial.trial_id, os.getpid()))
    except BaseException as exc:
        results.put(("error", f"{type(exc).__name__}: {exc}", os.getpid()))


def hold(path: str, tuner_id: str) -> tuple[Any, str, dict[str, Any]]:
    """A live spawned process holding a running trial: (process, trial_id, values)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    holding, info = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=hold_trial, args=(path, tuner_id, holding, info), daemon=True)
    proc.start()
    assert holding.wait(DEADLINE)
    trial_id, values, pid = info.get(timeout=DEADLINE)
    assert pid == proc.pid
    return proc, trial_id, values


def tuner_trial(trial: Any) -> float:
    """run_trial for Tuner tests in child processes: the test space's objective."""
    return objective_value(trial.hyperparameters.values)


def make_tuner(path: str, max_trials: int) -> Any:
    oracle = open_oracle(path, max_trials=max_trials, seed=4)
    return hpstore.Tuner(oracle, run_trial=tuner_trial, verbose=0)


# -- steering -------------------------------------------------------------------------------
STEERED = [{"x": 1.5, "y": 2, "c": "a"}, {"x": -4.0}, {"y": 9, "c": "b"}]


def enqueue_then_search(path: str, tuner_id: str, barrier: Any, results: Any) -> None:
    """What every worker script does at start-up: enqueue the same configurations, then
    search; reports (tuner id, [(trial id, values)] it ran, error)."""
    ran: list[tuple[str, dict[str, Any]]] = []
    error = None
    try:
        oracle = open_oracle(path, max_trials=12)
        barrier.wait(DEADLINE)
        for values in STEERED:
            oracle.enqueue_trial(values)
        while (trial := oracle.create_trial(tuner_id)).status == "RUNNING":
            ran.append((trial.trial_id, trial.hyperparameters.values))
            oracle.update_trial(trial.trial_id,
                                {"loss": objective_value(trial.hyperparameters.values)})
            trial.status = "COMPLETED"
            oracle.end_trial(trial)
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
    results.put((tuner_id, ran, error))


def retire_and_restore_forever(path: str, trial_id: str, started: Any, done: Any) -> None:
    """Retire and restore one trial over and over, counting the steps, until killed."""
    oracle = open_oracle(path)
    started.set()
    while True:
        oracle.retire_trial(trial_id, "flaky")
        oracle.restore_trial(trial_id, "fine after all")
        with done.get_lock():
            done.value += 1


def close_and_go_on(path: str, tuner_id: str, holding: Any, looked: Any, closed: Any,
                    go: Any, outcome: Any) -> None:
    """Take a trial; once another worker has looked at this one, close the search (its
    liveness session ends) and go on with the same oracle, as ``Oracle.close`` allows:
    end the trial when told, and say how that went ("ended", or an error's class name)."""
    oracle = open_oracle(path, max_trials=50)
    trial = oracle.create_trial(tuner_id)
    oracle.update_trial(trial.trial_id, {"loss": 1.0}, step=0)
    outcome.put(trial.trial_id)
    holding.set()
    looked.wait(DEADLINE)
    oracle.close()
    closed.set()
    go.wait(DEADLINE)
    end_and_say(oracle, trial, outcome)


def lock_files_open(folder: str, results: Any) -> None:
    """Say which files in the lock folder ``folder`` this (forked) process has open."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if os.path.dirname(target) == folder:
            found.append(os.path.basename(target))
    results.put(sorted(found))


class PausedOracle(RandomTestOracle):
    """Decides under the decision lock (not quickly), pausing in its first decision until
    told to go on."""

    paused: tuple[Any, Any] | None = None

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        if self.paused is not None:
            deciding, go = self.paused
            self.paused = None
            deciding.set()
            go.wait(DEADLINE)
        return super().populate_space(trial_id)


def decide_paused(path: str, deciding: Any, go: Any, results: Any) -> None:
    """Create and complete one trial, its decision paused as above; reports ("ok", trial
    id) or ("error", what was raised)."""
    try:
        oracle = PausedOracle(objective="loss", hyperparameters=space(), database=path)
        oracle.paused = (deciding, go)
        trial = oracle.create_trial("paused")
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        oracle.close()
        results.put(("ok", trial.trial_id))
    except BaseException as exc:
        results.put(("error", f"{type(exc).__name__}: {exc}"))
