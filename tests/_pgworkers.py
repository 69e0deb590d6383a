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


class Held(hpstore.Oracle):
    """Decides on the main thread at once; on another thread, only once ``go`` is set,
    having set ``inside`` (its decision's transaction open, the search's lock held)."""

    inside: Any = None
    go: Any = None

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        import threading

        if threading.current_thread() is not threading.main_thread():
            self.inside.set()
            self.go.wait(120)
        values = self.random_values()
        return {"status": "RUNNING", "values": values} if values else self.exhausted()


def fork_inside_a_transaction(url: str, results: Any) -> None:
    """In a fresh process: a thread's decision holds its transaction open while this thread
    forks a child (the fork waits a moment for it, then goes past), and the child asks
    for a trial on the same oracle. Puts ("ok", the child's answer, the thread's) or
    ("error", text)."""
    import multiprocessing as mp
    import threading

    try:
        hp = hpstore.HyperParameters()
        hp.Float("x", 0, 1)
        oracle = Held("loss", max_trials=10, hyperparameters=hp, seed=1, database=url)
        oracle.inside, oracle.go = threading.Event(), threading.Event()
        oracle.store.db.timeout = 0.2  # (how long a fork waits for the transaction)
        _one(oracle, "main")  # (a search under way: the thread's decision reads it)
        thread_got: list[Any] = []
        thread = threading.Thread(target=lambda: thread_got.append(_one(oracle, "thread")))
        thread.start()
        if not oracle.inside.wait(120):
            raise RuntimeError("the thread never decided")
        ctx = mp.get_context("fork")
        answers = ctx.Queue()

        def in_the_child() -> None:
            oracle.store.db.timeout = 120  # (its own connection waits for the search's lock)
            answers.put(_one(oracle, "child"))

        child = ctx.Process(target=in_the_child)
        child.start()  # forked past the thread's open decision
        # the thread goes on once the child waits for the search's lock, which the thread
        # holds (or, had it gone on in the parent's transaction, once it has answered)
        deadline = time.monotonic() + 120
        while answers.empty() and not _waiting_for_a_lock(url):
            if time.monotonic() > deadline:
                raise RuntimeError("the child neither answered nor waited")
            time.sleep(0.02)  # a pause between two looks at the server, not a synchronisation
        oracle.go.set()
        child_got = answers.get(timeout=120)
        child.join(120)
        thread.join(120)
        results.put(("ok", child_got, thread_got[0] if thread_got else None))
    except BaseException as exc:
        results.put(("error", f"{type(exc).__name__}: {exc}", None))


def _waiting_for_a_lock(url: str) -> bool:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return bool(conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                 "AND NOT granted").fetchone()[0])


def _one(oracle: hpstore.Oracle, tuner_id: str) -> Any:
    """A trial run to its end: (trial id, status), or the error's text."""
    try:
        trial = oracle.create_trial(tuner_id)
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        return trial.trial_id, trial.status
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def blind_worker(url: str, ready: Any, info: Any, go: Any, outcome: Any) -> None:
    """A worker whose liveness thread never sees its lock's connection drop by itself (as
    if not scheduled while the server restarted): it wakes only when told, through its
    pipe. Runs a trial, sets ``ready``, and once ``go`` is set (the server restarted
    meanwhile) starts a trial and says which, with its token; once ``go`` is set again,
    finishes it and says how that went."""
    import select
    import types

    from hpstore.store.postgresql import liveness

    real = select.select
    liveness.select = types.SimpleNamespace(  # type: ignore[attr-defined]
        select=lambda r, w, x: real(r[1:], w, x))  # (r: the connection, the wake pipe)
    try:
        oracle = oracle_on(url, 10)
        _one(oracle, "blind")
        ready.set()
        go.wait(120)
        go.clear()
        trial = oracle.create_trial("blind")
        info.put((trial.trial_id, oracle.store.session()))
        go.wait(120)
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        outcome.put("finished")
        oracle.close()
    except BaseException as exc:  # report everything to the parent
        info.put(None)
        outcome.put(f"{type(exc).__name__}: {exc}")
