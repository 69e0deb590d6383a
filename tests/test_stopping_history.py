"""What a stopping rule reads of the completed trials at each report: kept by the process
from one report to the next and brought up to date from the status log, so that a report
costs the same at 500 completed trials as at 50, and always what a fresh read gives."""

from __future__ import annotations

import random

import hpstore
from hpstore.store.sqlite.history import CompletedValues, SQLiteHistory


def _space() -> hpstore.HyperParameters:
    hp = hpstore.HyperParameters()
    hp.Float("x", 0.0, 1.0)
    return hp


def _oracle(path: str, **kwargs):
    return hpstore.RandomSearchOracle(
        "loss", max_trials=10_000, hyperparameters=_space(), seed=5, database=path,
        early_stopping=hpstore.PercentileStopping(50.0, min_trials=1), **kwargs)


def _run(oracle, steps: int = 4, executions: int = 1) -> str:
    trial = oracle.create_trial("w")
    x = trial.hyperparameters.values["x"]
    for step in range(steps):
        for _ in range(executions):
            oracle.update_trial(trial.trial_id, {"loss": x + 1.0 / (step + 1)}, step=step)
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    return trial.trial_id


def _fill(path: str, trials: int) -> None:
    """``trials`` completed trials, of one report each (the rule judges each report)."""
    oracle = _oracle(path)
    for _ in range(trials):
        _run(oracle, steps=1)
    oracle.close()


def _work_of_a_report(oracle, step: int) -> int:
    """SQLite's virtual-machine instructions (in hundreds) one report at ``step`` runs."""
    trial = oracle.create_trial("w")
    conn = oracle.store.db.connect()
    for s in range(step):  # (the steps before it, as a run reports them)
        oracle.update_trial(trial.trial_id, {"loss": 5.0}, step=s)
    counted = [0]

    def count() -> int:
        counted[0] += 1
        return 0
    conn.set_progress_handler(count, 100)
    try:
        oracle.update_trial(trial.trial_id, {"loss": 5.0}, step=step)
    finally:
        conn.set_progress_handler(None, 100)
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    return counted[0]


def test_a_reports_work_does_not_grow_with_the_completed_trials(tmp_path):
    # every report read each completed trial's value at its step afresh, in the write
    # transaction: 21 ms a report at 4,000 trials while the other workers waited, and
    # minutes of lock waits (one worker died at 60 s) once a search had thousands
    work = {}
    for n in (50, 500):
        path = str(tmp_path / f"{n}.db")
        _fill(path, n)
        oracle = _oracle(path)
        _work_of_a_report(oracle, 0)  # (the first report at each step reads them all once)
        work[n] = _work_of_a_report(oracle, 0)
        oracle.close()
    assert work[500] <= work[50] + 3, work


def _fresh_and_kept(oracle, step: int) -> tuple[list[float], list[float]]:
    project = oracle.project
    conn = oracle.store.db.connect()
    kept = project._completed.setdefault("loss", CompletedValues())
    conn.execute("BEGIN")
    try:
        fresh = SQLiteHistory(conn, project.project_id, "loss", -1)
        with_kept = SQLiteHistory(conn, project.project_id, "loss", -1, kept)
        values = (sorted(fresh.completed_values_at(step)),
                  sorted(with_kept.completed_values_at(step)))
        assert fresh.completed_count() == with_kept.completed_count()
    finally:
        conn.execute("ROLLBACK")
    return values


def test_what_is_kept_is_what_a_fresh_read_gives_through_every_change(tmp_path):
    path = str(tmp_path / "s.db")
    mine, other = _oracle(path), _oracle(path)  # (another process's writes, as a file sees)
    rng = random.Random(3)
    ended: list[str] = []
    for round_ in range(60):
        actor = rng.choice([mine, other])
        action = rng.random()
        if action < 0.5 or not ended:
            ended.append(_run(actor, steps=rng.randint(1, 5), executions=rng.randint(1, 2)))
        elif action < 0.7:
            actor.retire_trial(rng.choice(ended), "bad run")
        elif action < 0.8:
            trial = rng.choice(ended)
            if actor.project.trial(trial).retired:
                actor.restore_trial(trial)
        else:  # a trial stopped by the rule, or failed: never among the completed
            trial = actor.create_trial("w")
            actor.update_trial(trial.trial_id, {"loss": 9.0}, step=0)
            trial.status = "FAILED"
            actor.end_trial(trial)
        fresh, kept = _fresh_and_kept(mine, rng.randint(0, 4))
        assert kept == fresh, round_
    other.close()
    mine.close()
