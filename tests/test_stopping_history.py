"""What a stopping rule reads of the completed trials at each report: kept by the process
from one report to the next and brought up to date from the status log, so that a report
costs the same at 500 completed trials as at 50, and always what a fresh read gives."""

from __future__ import annotations

import random

import hpstore
from hpstore.store.sqlite.history import CompletedValues, RungValues, SQLiteHistory


def _space() -> hpstore.HyperParameters:
    hp = hpstore.HyperParameters()
    hp.Float("x", 0.0, 1.0)
    return hp


def _oracle(path: str, percentile: float = 50.0, **kwargs):
    return hpstore.RandomSearchOracle(
        "loss", max_trials=10_000, hyperparameters=_space(), seed=5, database=path,
        early_stopping=hpstore.PercentileStopping(percentile, min_trials=1), **kwargs)


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


def _fresh_and_kept(oracle, step: int, rungs: bool = False
                    ) -> tuple[list[float], list[float]]:
    """What a fresh read and what the oracle's process keeps give at ``step``: the
    completed trials' values there, or (``rungs``) every trial's first value past it."""
    project = oracle.project
    conn = oracle.store.db.connect()
    if rungs:
        kept = {"rungs": project._rungs.setdefault("loss", RungValues())}
    else:
        kept = {"kept": project._completed.setdefault("loss", CompletedValues())}
    conn.execute("BEGIN")
    try:
        fresh = SQLiteHistory(conn, project.project_id, "loss", -1)
        with_kept = SQLiteHistory(conn, project.project_id, "loss", -1, **kept)
        if rungs:
            return sorted(fresh.values_from(step)), sorted(with_kept.values_from(step))
        assert fresh.completed_count() == with_kept.completed_count()
        return (sorted(fresh.completed_values_at(step)),
                sorted(with_kept.completed_values_at(step)))
    finally:
        conn.execute("ROLLBACK")


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


def test_another_projects_newest_log_rows_deleted_and_their_ids_taken_again(tmp_path):
    # the log's ids are taken again once its newest rows are deleted (another project of
    # the file made again by overwrite=True): trials of this project completed under those
    # ids were never seen, and the rule kept trials running that a fresh read stopped
    path = str(tmp_path / "two.db")
    # (a rule that stops none: more completed trials than the log grows by below, so
    # the count that would catch it is not taken)
    mine, worker = (_oracle(path, 100.0, project_name="P"),
                    _oracle(path, 100.0, project_name="P"))
    for _ in range(80):
        _run(worker, steps=1)
    _fresh_and_kept(mine, 0)  # (kept, as a report would)
    q = _oracle(path, project_name="Q")
    for _ in range(6):  # Q's rows are the log's newest
        _run(q)
    _fresh_and_kept(mine, 0)
    q.close()
    _oracle(path, project_name="Q", overwrite=True).close()  # Q's rows deleted
    for _ in range(3):  # P's trials completed under ids the log takes again
        _run(worker)
    q = _oracle(path, project_name="Q")
    for _ in range(6):  # the log past its old last id
        _run(q)
    fresh, kept = _fresh_and_kept(mine, 0)
    assert kept == fresh
    for oracle in (mine, worker, q):
        oracle.close()


def test_a_search_loaded_again_by_set_state_is_read_again(tmp_path):
    # set_state() deletes and writes the trials again under the same project, with the
    # same creation time and as many log rows: the values kept were those before the load
    path = str(tmp_path / "s.db")
    oracle = _oracle(path)
    for _ in range(4):
        _run(oracle, steps=1)
    _fresh_and_kept(oracle, 0)
    state = oracle.get_state()
    for trial in state["trials"]:
        trial["observations"] = [[r, m, d, s, v + 100.0, at]
                                 for r, m, d, s, v, at in trial["observations"]]
    oracle.set_state(state)
    fresh, kept = _fresh_and_kept(oracle, 0)
    assert kept == fresh and all(v > 100 for v in fresh)
    oracle.close()


def test_past_the_values_kept_the_steps_asked_least_recently_are_read_again(
        tmp_path, monkeypatch):
    from hpstore.store.sqlite import history

    monkeypatch.setattr(history, "KEPT_VALUES", 12)
    path = str(tmp_path / "s.db")
    oracle = _oracle(path)
    for _ in range(6):
        _run(oracle, steps=5)
    kept = oracle.project._completed.setdefault("loss", CompletedValues())
    for step in (0, 1, 2, 3, 4, 0, 4, 2):
        fresh, held = _fresh_and_kept(oracle, step)
        assert held == fresh and len(fresh) >= 1
        assert kept.kept == sum(len(v) for v in kept.tables.values())
        assert kept.kept <= 12 or len(kept.tables) == 1
    oracle.close()


def test_rung_values_kept_are_what_a_fresh_read_gives_through_every_change(tmp_path):
    # a rung a report first reaches read every trial of the project afresh, inside the
    # write transaction (283 ms at 20,000 trials): what is kept follows the status log and
    # the reported values, and must answer as a fresh read does
    path = str(tmp_path / "h.db")
    rule = hpstore.SuccessiveHalving(min_resource=1, reduction_factor=2)

    def make(**kwargs):
        return hpstore.RandomSearchOracle("loss", max_trials=10_000, hyperparameters=_space(),
                                          seed=5, database=path, early_stopping=rule,
                                          max_retries_per_trial=3, **kwargs)

    mine, other = make(), make()
    rng = random.Random(7)
    running: list[tuple[object, object, int]] = []  # (oracle, trial, next step)
    ended: list[str] = []
    for round_ in range(120):
        action = rng.random()
        actor = rng.choice([mine, other])
        if action < 0.3 or not running:
            trial = actor.create_trial(f"w{round_}")  # (a worker of its own each)
            if trial.status == "RUNNING":
                running.append((actor, trial, 0))
        elif action < 0.7:  # a running trial reports its next step (twice at times)
            i = rng.randrange(len(running))
            owner, trial, step = running[i]
            for _ in range(rng.randint(1, 2)):
                owner.update_trial(trial.trial_id, {"loss": rng.random()}, step=step)
            running[i] = (owner, trial, step + rng.randint(1, 3))
        elif action < 0.85:  # one ends: completed, or invalid and run again
            owner, trial, _ = running.pop(rng.randrange(len(running)))
            trial.status = rng.choice(["COMPLETED", "COMPLETED", "INVALID", "FAILED"])
            owner.end_trial(trial)
            ended.append(trial.trial_id)
        elif ended:
            trial_id = rng.choice(ended)
            state = actor.project.trial(trial_id)
            if state.status in ("COMPLETED", "FAILED", "STOPPED") and state.queued is None:
                if state.retired:
                    actor.restore_trial(trial_id)
                else:
                    actor.retire_trial(trial_id, "bad run")
        for rung in (1, 2, 4):
            fresh, kept = _fresh_and_kept(mine, rung, rungs=True)
            assert kept == fresh, (round_, rung)
    state = mine.get_state()  # loaded again: what was kept is read again
    for trial in state["trials"]:
        trial["observations"] = [[r, m, d, s, v + 100.0, at]
                                 for r, m, d, s, v, at in trial["observations"]]
    mine.set_state(state)
    fresh, kept = _fresh_and_kept(mine, 1, rungs=True)
    assert kept == fresh
    other.close()
    mine.close()
