"""What the spawned children of the file-identity, lock and log tests run.

Spawned children import this module by name, so it holds no tests itself.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from _workers import DEADLINE, RandomTestOracle, objective_value, open_oracle

import hpstore


def complete_until_stopped(path: str, tuner_id: str, start: Any, progress: Any,
                           results: Any) -> None:
    """Complete trials, reporting each on ``progress``, until an error stops the worker (as
    a Tuner stops on one); then close, and report (tuner_id, error class, message)."""
    error: tuple[str, str] = ("", "")
    try:
        with open_oracle(path, max_trials=100_000) as oracle:
            if not start.wait(DEADLINE):
                raise RuntimeError("start signal never came")
            while True:
                trial = oracle.create_trial(tuner_id)
                if trial.status != "RUNNING":
                    raise RuntimeError(f"the search ended ({trial.status})")
                oracle.update_trial(trial.trial_id,
                                    {"loss": objective_value(trial.hyperparameters.values)})
                trial.status = "COMPLETED"
                oracle.end_trial(trial)
                progress.put((tuner_id, trial.trial_id, trial.score))
    except BaseException as exc:  # report everything to the parent
        error = (type(exc).__name__, str(exc))
    results.put((tuner_id, *error))


def run_n(path: str, tuner_id: str, n: int, results: Any) -> None:
    """Open ``path`` (max_trials n) and complete trials until STOPPED, closing at the end;
    report (tuner_id, [(trial_id, score)], error class or None, message)."""
    done: list[tuple[str, float]] = []
    try:
        with open_oracle(path, max_trials=n) as oracle:
            while True:
                trial = oracle.create_trial(tuner_id)
                if trial.status != "RUNNING":
                    break
                oracle.update_trial(trial.trial_id,
                                    {"loss": objective_value(trial.hyperparameters.values)})
                trial.status = "COMPLETED"
                oracle.end_trial(trial)
                done.append((trial.trial_id, trial.score))
        results.put((tuner_id, done, None, ""))
    except BaseException as exc:
        results.put((tuner_id, done, type(exc).__name__, str(exc)))


class StallingOracle(RandomTestOracle):
    """An oracle whose populate_space says it has started, then never returns: a worker
    stopped (by SIGSTOP here) in the middle of create_trial, holding the oracle's lock."""

    inside: Any = None

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        self.inside.set()
        threading.Event().wait()  # until the test ends this process
        raise AssertionError("unreachable")


def stall_in_create_trial(path: str, tuner_id: str, inside: Any) -> None:
    from _workers import space

    # a project of its own: the oracle's lock is the file's, whatever the project
    oracle = StallingOracle(objective="loss", hyperparameters=space(), database=path,
                            project_name="stalling", max_trials=5)
    oracle.inside = inside
    oracle.create_trial(tuner_id)


class ThinkingOracle(RandomTestOracle):
    """An oracle whose populate_space says it has started, then thinks (alive, running)
    until ``release`` is set: a slow decision, holding the oracle's lock."""

    inside: Any = None
    release: Any = None

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        self.inside.set()
        self.release.wait()
        return super().populate_space(trial_id)


def think_in_create_trial(path: str, tuner_id: str, inside: Any, release: Any) -> None:
    from _workers import space

    oracle = ThinkingOracle(objective="loss", hyperparameters=space(), database=path,
                            project_name="thinking", max_trials=5)
    oracle.inside, oracle.release = inside, release
    oracle.create_trial(tuner_id)
    oracle.close()


def grid_oracle(path: str) -> hpstore.GridSearchOracle:
    """A grid search of four values: used up (IDLE while trials run) after four trials."""
    hp = hpstore.HyperParameters()
    hp.Choice("c", ["a", "b", "c", "d"])
    return hpstore.GridSearchOracle("loss", hyperparameters=hp, database=path)


def hold_a_trial(path: str, tuner_id: str, inside: Any, kind: str = "random") -> None:
    """Start a trial and run it until this process is killed (a long trial)."""
    oracle = grid_oracle(path) if kind == "grid" else open_oracle(path)
    oracle.create_trial(tuner_id)
    inside.set()
    threading.Event().wait()


def reported_by(target: Any, *args: Any) -> tuple[Any, ...]:
    """What ``target(*args, results)`` puts on ``results``, run in a spawned process of its
    own (not a daemon: it may fork children), killed if it does not end in time."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    parent = ctx.Process(target=target, args=(*args, results))
    parent.start()
    try:
        return tuple(results.get(timeout=DEADLINE * 3))
    finally:
        parent.join(DEADLINE)
        if parent.exitcode is None:
            parent.kill()


def fork_children_while_a_thread_runs_trials(path: str, children: int, results: Any) -> None:
    """In a fresh process: one thread loops create_trial / end_trial on an oracle while this
    thread forks ``children`` processes that each run trials on the same oracle object.
    Reports ("ok", [each child's report]) or ("error", text)."""
    import multiprocessing as mp

    try:
        oracle = open_oracle(path, max_trials=100_000)
        stop, looping = threading.Event(), threading.Event()
        loop_errors: list[str] = []

        def loop() -> None:
            try:
                while not stop.is_set():
                    trial = oracle.create_trial("looper")
                    looping.set()
                    oracle.update_trial(trial.trial_id, {"loss": 1.0})
                    trial.status = "COMPLETED"
                    oracle.end_trial(trial)
            except BaseException as exc:
                loop_errors.append(f"{type(exc).__name__}: {exc}")

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        if not looping.wait(DEADLINE):
            raise RuntimeError("the looping thread never ran a trial")
        ctx = mp.get_context("fork")
        queue = ctx.Queue()
        procs = []
        for i in range(children):
            proc = ctx.Process(target=_forked_trials, args=(oracle, f"child-{i}", 3, queue))
            proc.start()  # forks while the other thread is in the middle of its loop
            procs.append(proc)
        reports = []
        try:
            reports = [queue.get(timeout=DEADLINE) for _ in procs]
        finally:
            stop.set()
            for proc in procs:
                proc.join(5)
                if proc.is_alive():
                    proc.kill()
        thread.join(DEADLINE)
        results.put(("ok", reports, loop_errors))
    except BaseException as exc:
        results.put(("error", f"{type(exc).__name__}: {exc}", []))


def _forked_trials(oracle: hpstore.Oracle, tuner_id: str, n: int, queue: Any) -> None:
    try:
        ids = []
        for _ in range(n):
            trial = oracle.create_trial(tuner_id)
            oracle.update_trial(trial.trial_id, {"loss": 2.0})
            trial.status = "COMPLETED"
            oracle.end_trial(trial)
            ids.append(trial.trial_id)
        queue.put((tuner_id, ids, None, os.getpid()))
    except BaseException as exc:
        queue.put((tuner_id, [], f"{type(exc).__name__}: {exc}", os.getpid()))


def finish_one_then_wait(path: str, tuner_id: str, ready: Any) -> None:
    """Complete one trial (so this process has a liveness file), say so, and wait to be
    killed between trials."""
    oracle = open_oracle(path)
    trial = oracle.create_trial(tuner_id)
    oracle.update_trial(trial.trial_id, {"loss": 1.0})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    ready.set()
    threading.Event().wait()  # until SIGKILL


def run_one(path: str, tuner_id: str, results: Any) -> None:
    """Open ``path`` as it is, complete one trial, close; report as :func:`run_n` does."""
    try:
        with open_oracle(path) as oracle:
            trial = oracle.create_trial(tuner_id)
            oracle.update_trial(trial.trial_id, {"loss": 1.0})
            trial.status = "COMPLETED"
            oracle.end_trial(trial)
        results.put((tuner_id, [(trial.trial_id, trial.score)], None, ""))
    except BaseException as exc:
        results.put((tuner_id, [], type(exc).__name__, str(exc)))
