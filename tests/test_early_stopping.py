"""Early stopping inside the search: every oracle with every rule, across processes, after a
kill -9, in the Tuner, in the tools."""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import multiprocessing as mp
import os
import re
import signal
import sqlite3
import subprocess
import sys

import pytest
from _workers import DEADLINE

import hpstore
from hpstore.trial import TrialStatus

CTX = mp.get_context("spawn")
RULES = {
    "median": lambda: hpstore.MedianStopping(min_trials=3),
    "percentile": lambda: hpstore.PercentileStopping(25.0, min_trials=3),
    "halving": lambda: hpstore.SuccessiveHalving(min_resource=1, reduction_factor=3),
    "patience": lambda: hpstore.Patience(patience=2),
    "patience+median": lambda: hpstore.Patience(hpstore.MedianStopping(min_trials=2),
                                                patience=1),
    "threshold": lambda: hpstore.Threshold(upper=1.2),
}
STEPS = 12


def space() -> hpstore.HyperParameters:
    hp = hpstore.HyperParameters()
    hp.Float("lr", 0.0, 1.0)
    hp.Int("width", 1, 4)
    return hp


def curve(values: dict, step: int) -> float:
    """A learning curve: better (lower) with training, and better for a small lr; a
    wide model plateaus early (the patience rule's case)."""
    lr, width = values["lr"], values["width"]
    reach = step if width < 4 else min(step, 3)
    return lr + 1.0 / (reach + 1) + 0.01 * width


def make(kind: str, path: str, rule, **kwargs):
    if kind == "random":
        return hpstore.RandomSearchOracle("loss", max_trials=18, hyperparameters=space(),
                                          seed=3, database=path, early_stopping=rule, **kwargs)
    if kind == "grid":
        hp = hpstore.HyperParameters()
        hp.Float("lr", 0.0, 1.0, step=0.25)
        hp.Int("width", 1, 4, step=3)
        return hpstore.GridSearchOracle("loss", hyperparameters=hp, database=path,
                                        early_stopping=rule, **kwargs)
    if kind == "bayesian":
        return hpstore.BayesianOptimizationOracle("loss", max_trials=14, num_initial_points=4,
                                                  hyperparameters=space(), seed=3,
                                                  database=path, early_stopping=rule, **kwargs)
    return hpstore.HyperbandOracle("loss", max_epochs=9, factor=3, hyperparameters=space(),
                                   seed=3, database=path, early_stopping=rule, **kwargs)


def run_search(oracle, steps: int = STEPS, tuner_id: str = "w") -> dict[str, int]:
    """Every trial reports step by step until told to stop; the count of stops seen."""
    seen = {"stopped": 0}
    while True:
        trial = oracle.create_trial(tuner_id)
        if trial.status == "STOPPED":
            return seen
        if trial.status == "IDLE":
            continue
        values = trial.hyperparameters.values
        for step in range(values.get("tuner/initial_epoch", 0),
                          values.get("tuner/epochs", steps)):
            if oracle.update_trial(trial.trial_id, {"loss": curve(values, step)},
                                   step=step).status == "STOPPED":
                seen["stopped"] += 1
                break
        trial.status = "COMPLETED"
        oracle.end_trial(trial)


@pytest.mark.parametrize("rule", list(RULES))
@pytest.mark.parametrize("kind", ["random", "grid", "bayesian", "hyperband"])
def test_every_oracle_with_every_rule_runs_to_the_end(tmp_path, kind, rule):
    oracle = make(kind, str(tmp_path / "s.db"), RULES[rule]())
    seen = run_search(oracle)
    trials = list(oracle.trials.values())
    statuses = {t.status for t in trials}
    assert statuses <= set(TrialStatus.FINAL), statuses
    stopped = [t for t in trials if t.status == "STOPPED"]
    assert len(stopped) == seen["stopped"]
    for t in stopped:  # marked, and scored on the best value it reached
        assert t.message.startswith("Stopped early at step ") and t.score is not None
        reported = [o.mean() for o in t.metrics.get_history("loss")]
        assert t.score == pytest.approx(min(reported))
    best = oracle.get_best_trials(1)[0]
    assert best.status == "COMPLETED"  # a partial score never wins
    if kind in ("random", "grid") and rule in ("median", "percentile", "halving", "threshold"):
        assert stopped, "these curves give every rule something to stop"


def test_a_stopped_trials_partial_score_is_fitted_no_better_than_the_worst_completed(
        tmp_path):
    oracle = make("bayesian", str(tmp_path / "b.db"),
                  hpstore.SuccessiveHalving(min_resource=1, reduction_factor=3))
    run_search(oracle)
    trials = list(oracle.trials.values())
    stopped = [t for t in trials if t.status == "STOPPED"]
    worst = max(t.score for t in trials if t.status == "COMPLETED")
    assert stopped and any(t.score < worst for t in stopped)  # partial scores that look good
    values, scores = oracle._observations()  # what the Gaussian process is fitted on
    def key(v):
        return tuple(sorted(v.items()))

    fitted = dict(zip((key(hpstore.store.rows.decode_values(v)) for v in values), scores))
    assert len(fitted) == len(trials)
    for t in trials:
        expected = t.score if t.status == "COMPLETED" else max(t.score, worst)
        assert fitted[key(t.hyperparameters.values)] == expected


def test_the_rule_is_kept_with_the_search(tmp_path):
    path = str(tmp_path / "k.db")
    make("random", path, hpstore.MedianStopping(min_trials=4, warmup_steps=2)).close()
    again = make("random", path, None)
    assert again.early_stopping == hpstore.MedianStopping(min_trials=4, warmup_steps=2)
    again.close()
    with pytest.raises(hpstore.ProjectMismatchError, match="MedianStopping"):
        make("random", path, hpstore.SuccessiveHalving())
    with pytest.raises(TypeError, match="stopping rule"):
        make("random", str(tmp_path / "x.db"), "median")


class _OwnRule(hpstore.StoppingRule):
    def decide(self, curve, history):
        return None

    def _config(self):
        return {}


class _OwnMedian(hpstore.MedianStopping):
    pass


@pytest.mark.parametrize("rule", [_OwnRule(), _OwnMedian()], ids=["own", "subclass"])
def test_a_rule_of_ones_own_is_refused_before_anything_is_stored(tmp_path, rule):
    """Every worker, a resumed search and the tools rebuild the stored rule without the
    script's code: a rule of one's own would make the search impossible to open again."""
    path = tmp_path / "own.db"
    with pytest.raises(TypeError, match=type(rule).__qualname__) as refused:
        make("random", str(path), rule)
    assert "hpstore.MedianStopping" in str(refused.value)
    assert not path.exists()
    make("random", str(path), hpstore.MedianStopping()).close()  # the path is still free


def test_a_rule_given_to_a_search_made_without_one_is_refused(tmp_path):
    # its workers already running would go on without it: one curve, two verdicts
    path = str(tmp_path / "n.db")
    running = make("random", path, None)
    with pytest.raises(hpstore.ProjectMismatchError, match="made without early stopping"
                       ) as refused:
        make("random", path, hpstore.MedianStopping(min_trials=1))
    # the arguments its advice names are the oracle's own
    advice = str(refused.value).split("Start a search")[1]
    advised = {*re.findall(r"(\w+)=", advice), "project_name"}
    assert advised == {"project_name", "warm_start_from", "overwrite"}
    assert advised <= set(inspect.signature(hpstore.Oracle.__init__).parameters)
    assert running.early_stopping is None
    again = make("random", path, None)  # nothing was stored by the refused one
    assert again.early_stopping is None and again.get_state()["settings"]["oracle_config"].get(
        "stopping") is None
    again.close()
    running.close()


def test_the_tuner_reports_until_told_to_stop(tmp_path):
    oracle = make("random", str(tmp_path / "t.db"), RULES["median"]())
    told = []

    class Loop(hpstore.Tuner):
        def run_trial(self, trial):
            for step in range(STEPS):
                if self.report(trial, {"loss": curve(trial.hyperparameters.values, step)},
                               step=step):
                    told.append(trial.trial_id)
                    return None  # its metrics are recorded; the trial was told to stop

    Loop(oracle, verbose=0).search()
    stopped = [t.trial_id for t in oracle.trials.values() if t.status == "STOPPED"]
    assert stopped and sorted(stopped) == sorted(told)


def test_several_objectives_are_decided_on_their_combined_value(tmp_path):
    oracle = hpstore.RandomSearchOracle(
        ["loss", "accuracy"], max_trials=12, hyperparameters=space(), seed=1,
        database=str(tmp_path / "m.db"), early_stopping=hpstore.Threshold(upper=0.5))
    trial = oracle.create_trial("w")
    assert oracle.update_trial(trial.trial_id, {"loss": 0.9, "accuracy": 0.6}).status == (
        "RUNNING")  # 0.9 - 0.6 = 0.3: within the bound
    assert oracle.update_trial(trial.trial_id, {"loss": 0.9, "accuracy": 0.2},
                               step=1).status == "STOPPED"  # 0.7


# -- several processes, and kill -9 ---------------------------------------------------------------

def _worker(path: str, name: str, start, results) -> None:
    try:
        oracle = make("random", path, None)
        start.wait()
        results.put(("ok", run_search(oracle, tuner_id=name)))
    except BaseException as exc:
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def test_processes_reporting_at_once_stop_each_trial_once(tmp_path):
    path = str(tmp_path / "p.db")
    make("random", path, RULES["median"]()).close()
    start, results = CTX.Barrier(5, timeout=DEADLINE), CTX.Queue()
    procs = [CTX.Process(target=_worker, args=(path, f"w{i}", start, results))
             for i in range(4)]
    for p in procs:
        p.start()
    start.wait()
    reports = [results.get(timeout=DEADLINE * 2) for _ in procs]
    for p in procs:
        p.join(DEADLINE)
    assert all(kind == "ok" for kind, _ in reports), reports
    conn = sqlite3.connect(path)
    logs = conn.execute(
        "SELECT trial_id, group_concat(coalesce(from_status, '-') || '>' || to_status, ' ') "
        "FROM (SELECT * FROM status_log ORDER BY at_unix) GROUP BY trial_id").fetchall()
    conn.close()
    stops = sum(log.count(">STOPPED") for _, log in logs)
    assert stops == sum(r["stopped"] for _, r in reports)
    for trial_id, log in logs:  # never stopped twice, never running again once stopped
        assert log.count("RUNNING>STOPPED") <= 1, (trial_id, log)
        assert "STOPPED>RUNNING" not in log, (trial_id, log)


def _stop_then_wait(path: str, stopped_event, info) -> None:
    oracle = make("random", path, hpstore.Threshold(upper=0.5))
    trial = oracle.create_trial("doomed")
    result = oracle.update_trial(trial.trial_id, {"loss": 3.0}, step=0)
    info.put((trial.trial_id, result.status))
    stopped_event.set()
    signal.pause()  # killed before it ends the trial


def kill_9_right_after_a_stop(path: str) -> str:
    """A worker process whose trial a rule stops is killed with SIGKILL before it ends the
    trial; returns the trial's id."""
    make("random", path, hpstore.Threshold(upper=0.5)).close()
    stopped_event, info = CTX.Event(), CTX.Queue()
    proc = CTX.Process(target=_stop_then_wait, args=(path, stopped_event, info))
    proc.start()
    assert stopped_event.wait(DEADLINE)
    trial_id, status = info.get(timeout=DEADLINE)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(DEADLINE)
    assert status == "STOPPED"
    return trial_id


def the_stopped_run_ended(database: str, trial_id: str, row: tuple) -> None:
    """Check a stopped trial whose worker never ended it: ``row`` is its (session,
    started_at, ended_at, time of its change to STOPPED in the status log); the run ended
    at the stop, no worker holds it, and the tools give its duration."""
    session, started, ended, stopped_at = row
    assert session is None and ended is not None
    assert ended == pytest.approx(stopped_at, abs=1e-3) and ended >= started
    done = subprocess.run([sys.executable, "-m", "hpstore", "trials", database, "--format",
                           "json"], capture_output=True, text=True, timeout=DEADLINE)
    assert done.returncode == 0, done.stderr
    [shown] = [t for t in json.loads(done.stdout) if t["trial_id"] == trial_id]
    assert shown["status"] == "STOPPED" and shown["seconds"] is not None


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_kill_9_between_a_stop_and_its_end_leaves_the_run_ended_at_the_stop(tmp_path):
    # The trial stayed STOPPED under its dead worker's session with no end time: no
    # duration in the tools, and a run that looked never ended, for good.
    path = str(tmp_path / "k.db")
    trial_id = kill_9_right_after_a_stop(path)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        row = conn.execute(
            "SELECT t.session, t.started_at, t.ended_at, s.at_unix FROM trials AS t JOIN "
            "status_log AS s ON s.trial_id = t.trial_id AND s.to_status = 'STOPPED' "
            "WHERE t.trial_id = ?", (trial_id,)).fetchone()
    the_stopped_run_ended(path, trial_id, row)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_kill_9_right_after_a_stop_leaves_it_stopped_and_scored(tmp_path):
    path = str(tmp_path / "k.db")
    trial_id = kill_9_right_after_a_stop(path)
    oracle = make("random", path, None)
    fresh = oracle.create_trial("next")  # reaps the dead worker's trials
    assert fresh.trial_id != trial_id  # the stopped trial is not run again
    stored = oracle.get_trial(trial_id)
    assert stored.status == "STOPPED" and stored.score == 3.0
    assert stored.message.startswith("Stopped early at step 0 by Threshold")


def test_the_tools_show_what_stopping_saved(tmp_path):
    path = str(tmp_path / "tools.db")
    oracle = make("random", path, RULES["median"]())
    run_search(oracle)
    oracle.close()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-m", "hpstore", "summary", path],
                         capture_output=True, text=True, timeout=DEADLINE, env=env).stdout
    assert "Stopped early:" in out and "steps not run" in out
    out = subprocess.run([sys.executable, "-m", "hpstore", "trials", path],
                         capture_output=True, text=True, timeout=DEADLINE, env=env).stdout
    assert "stopped early" in out
    report = tmp_path / "r.html"
    subprocess.run([sys.executable, "-m", "hpstore", "report", path, "-o", str(report)],
                   check=True, capture_output=True, timeout=DEADLINE, env=env)
    assert "Stopped early:" in report.read_text()


def run_hyperband_stopping_some(oracle) -> dict[str, int]:
    """A Hyperband search whose trials report each epoch of their budget (the epoch is the
    step, from ``tuner/initial_epoch`` up to ``tuner/epochs``), a quarter of them running to
    the end and the rest stopped by the rule (Threshold(upper=1.0)) at a planned step: the
    first of their budget, its middle, or its last. The last step each stopped trial
    reported, by id."""
    last = {}
    handed = 0
    while True:
        trial = oracle.create_trial("w")
        if trial.status == "STOPPED":
            return last
        if trial.status == "IDLE":
            continue
        values = trial.hyperparameters.values
        first, end = values["tuner/initial_epoch"], values["tuner/epochs"]
        plan = handed % 4
        handed += 1
        stop_at = {0: None, 1: first, 2: end - 1, 3: (first + end - 1) // 2}[plan]
        for step in range(first, end):
            loss = 5.0 if step == stop_at else 0.1 + 0.1 * values["lr"]
            if oracle.update_trial(trial.trial_id, {"loss": loss},
                                   step=step).status == "STOPPED":
                last[trial.trial_id] = step
                break
        trial.status = "COMPLETED"
        oracle.end_trial(trial)


@pytest.mark.parametrize("engine", ["sqlite-file", "postgresql"])
def test_steps_not_run_are_counted_against_each_hyperband_trials_own_budget(
        tmp_path, engine):
    from hpstore import queries
    from hpstore.store import open_store

    if engine == "postgresql":
        from _postgres import fresh_url

        where = fresh_url()
    else:
        where = str(tmp_path / "hb.db")
    oracle = hpstore.HyperbandOracle("loss", max_epochs=9, factor=3, hyperparameters=space(),
                                     seed=3, database=where,
                                     early_stopping=hpstore.Threshold(upper=1.0))
    last = run_hyperband_stopping_some(oracle)
    trials = {t.trial_id: t for t in oracle.trials.values()}
    oracle.close()
    budgets = {tid: trials[tid].hyperparameters.values["tuner/epochs"] for tid in last}
    starts = {tid: trials[tid].hyperparameters.values["tuner/initial_epoch"] for tid in last}
    assert {trials[tid].status for tid in last} == {"STOPPED"}
    # the search has what the measure must get right: trials stopped at the last step of
    # their budget (saving nothing), a long one among them, and promoted ones (resumed from
    # a later epoch) stopped before it
    at_end = [tid for tid in last if last[tid] == budgets[tid] - 1]
    assert any(budgets[tid] - starts[tid] > 1 for tid in at_end)
    assert any(starts[tid] > 0 and last[tid] < budgets[tid] - 1 for tid in last)
    expected = sum(budgets[tid] - 1 - last[tid] for tid in last)
    assert expected > 0
    store = open_store(where, read_only=True)
    try:
        found = queries.stopping(queries.choose_project(store, None))
    finally:
        store.close()
    assert (found.stopped, found.steps_saved, found.own_budget) == (
        len(last), expected, len(last))


@pytest.mark.parametrize("engine", ["sqlite-file", "postgresql"])
@pytest.mark.parametrize("through", ["its oracle", "another oracle"])
def test_a_rung_passed_is_not_judged_again_by_a_late_report_of_an_earlier_step(
        tmp_path, engine, through):
    """Successive halving judges a rung when the run first reaches it: a report of an
    earlier step afterwards (another execution's, say) judges nothing again, whether the
    oracle keeps the trial's curve or reads it whole (another oracle's report)."""
    if engine == "postgresql":
        from _postgres import fresh_url

        where = fresh_url()
    else:
        where = str(tmp_path / "rung.db")

    def oracle():
        return hpstore.RandomSearchOracle(
            "loss", max_trials=10, hyperparameters=space(), seed=3, database=where,
            early_stopping=hpstore.SuccessiveHalving(min_resource=3, reduction_factor=2))

    first = oracle()
    passed = first.create_trial("a")
    assert first.update_trial(passed.trial_id, {"loss": 0.5}, step=3).status == "RUNNING"
    verdicts = []
    for value in (0.1, 0.2, 0.3):  # better ones reach the rung since: 0.5 is not in the best 2
        other = first.create_trial("b")
        verdicts.append(first.update_trial(other.trial_id, {"loss": value}, step=3).status)
        other.status = "COMPLETED"
        first.end_trial(other)
    assert verdicts == ["RUNNING", "STOPPED", "STOPPED"]  # the rung does judge
    late = first if through == "its oracle" else oracle()
    assert late.update_trial(passed.trial_id, {"loss": 0.4}, step=1).status == "RUNNING"
    assert late.update_trial(passed.trial_id, {"loss": 0.6}, step=3).status == "RUNNING"
    assert first.update_trial(passed.trial_id, {"loss": 0.05}, step=6).status == "RUNNING"
    for o in {id(first): first, id(late): late}.values():
        o.close()


def test_a_stopped_trial_its_worker_ended_takes_no_more_reports_nor_ends(tmp_path):
    """A STOPPED trial takes reports until its worker ends it; after that, a report (an
    on_trial_end of one's own that reports, say) or a second end changed its score at a
    step after its end, where an ended trial's are refused."""
    oracle = make("random", str(tmp_path / "s.db"), hpstore.Threshold(upper=1.0))
    trial = oracle.create_trial("w")
    oracle.update_trial(trial.trial_id, {"loss": 0.5}, step=0)
    assert oracle.update_trial(trial.trial_id, {"loss": 5.0}, step=1).status == "STOPPED"
    oracle.update_trial(trial.trial_id, {"loss": 0.4}, step=2)  # (before its end: taken)
    oracle.end_trial(trial)
    assert (trial.status, trial.score, trial.best_step) == ("STOPPED", 0.4, 2)
    with pytest.raises(hpstore.TrialNotRunningError, match="has already ended"):
        oracle.update_trial(trial.trial_id, {"loss": 0.001}, step=9)
    with pytest.raises(hpstore.TrialNotRunningError, match="has already ended"):
        oracle.end_trial(trial)
    stored = oracle.get_trial(trial.trial_id)
    assert (stored.status, stored.score, stored.best_step) == ("STOPPED", 0.4, 2)
    assert sorted(stored.metrics.get_history("loss"), key=lambda o: o.step)[-1].step == 2
    oracle.close()


def test_the_tools_say_the_steps_hyperband_trials_did_not_run_of_their_own_budgets(tmp_path):
    path = str(tmp_path / "hb.db")
    oracle = hpstore.HyperbandOracle("loss", max_epochs=9, factor=3, hyperparameters=space(),
                                     seed=3, database=path,
                                     early_stopping=hpstore.Threshold(upper=1.0))
    last = run_hyperband_stopping_some(oracle)
    budgets = {tid: oracle.get_trial(tid).hyperparameters.values["tuner/epochs"]
               for tid in last}
    oracle.close()
    expected = sum(budgets[tid] - 1 - last[tid] for tid in last)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-m", "hpstore", "summary", path],
                         capture_output=True, text=True, timeout=DEADLINE, env=env).stdout
    assert (f"Stopped early: {len(last)} trial(s), about {expected} steps not run (each "
            "against its own budget, tuner/epochs)\n") in out
    out = subprocess.run([sys.executable, "-m", "hpstore", "trials", path],
                         capture_output=True, text=True, timeout=DEADLINE, env=env).stdout
    assert f"(stopped early: {len(last)} trial(s), about {expected} steps not run)" in out
    report = tmp_path / "r.html"
    subprocess.run([sys.executable, "-m", "hpstore", "report", path, "-o", str(report)],
                   check=True, capture_output=True, timeout=DEADLINE, env=env)
    assert (f"Stopped early: {len(last)} trial(s), about {expected} steps not run."
            in report.read_text())


def test_steps_not_run_without_budgets_are_counted_against_the_longest_completed_run(
        tmp_path):
    from hpstore import queries
    from hpstore.store import open_store

    path = str(tmp_path / "plain.db")
    oracle = make("random", path, hpstore.Threshold(upper=1.0))
    # (steps to report, the step to report a value out of bounds at: stopped there)
    plans = [(5, None), (8, None), (8, 2), (8, 6), (8, 0), (3, None)]
    counts = {}
    for length, stop_at in plans:
        trial = oracle.create_trial("w")
        assert "tuner/epochs" not in trial.hyperparameters.values
        for step in range(length):
            loss = 5.0 if step == stop_at else 0.5
            if oracle.update_trial(trial.trial_id, {"loss": loss},
                                   step=step).status == "STOPPED":
                counts[trial.trial_id] = step + 1
                break
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    oracle.close()
    full = 8  # the most steps a completed trial reported
    expected = sum(full - n for n in counts.values())
    assert expected == 5 + 1 + 7
    store = open_store(path, read_only=True)
    try:
        found = queries.stopping(queries.choose_project(store, None))
    finally:
        store.close()
    assert (found.stopped, found.steps_saved, found.full_length, found.own_budget) == (
        3, expected, full, 0)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-m", "hpstore", "summary", path],
                         capture_output=True, text=True, timeout=DEADLINE, env=env).stdout
    assert (f"Stopped early: 3 trial(s), about {expected} steps not run (against {full} "
            "steps of a completed trial)\n") in out


def test_the_summary_says_steps_not_run_are_not_counted_while_none_has_completed(tmp_path):
    """Every trial stopped, none completed: there is no run to measure the steps not run
    against, and the summary says so rather than "about 0 steps not run (against 0 steps
    of a completed trial)"."""
    path = str(tmp_path / "none.db")
    oracle = make("random", path, hpstore.Threshold(upper=1.0))
    for _ in range(2):
        trial = oracle.create_trial("w")
        assert oracle.update_trial(trial.trial_id, {"loss": 5.0}, step=0).status == "STOPPED"
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    oracle.close()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-m", "hpstore", "summary", path],
                         capture_output=True, text=True, timeout=DEADLINE, env=env).stdout
    words = "2 trial(s); the steps they did not run are not counted until a trial completes"
    assert f"Stopped early: {words}\n" in out
    # the trials table, the report and the dashboard say the same (each said "about 0
    # steps not run")
    out = subprocess.run([sys.executable, "-m", "hpstore", "trials", path],
                         capture_output=True, text=True, timeout=DEADLINE, env=env).stdout
    assert f"(stopped early: {words})" in out and "about 0 steps" not in out, out
    report = tmp_path / "r.html"
    subprocess.run([sys.executable, "-m", "hpstore", "report", path, "-o", str(report)],
                   check=True, capture_output=True, timeout=DEADLINE, env=env)
    assert f"Stopped early: {words}." in report.read_text()
    from hpstore import queries
    from hpstore.store import open_store

    store = open_store(path, read_only=True)
    try:
        assert queries.stopping(queries.choose_project(store, None)).said() == words
    finally:
        store.close()


def test_nan_curves_are_stopped(tmp_path):
    oracle = make("random", str(tmp_path / "n.db"), hpstore.Threshold(upper=10.0))
    trial = oracle.create_trial("w")
    result = oracle.update_trial(trial.trial_id, {"loss": math.nan}, step=0)
    assert result.status == "STOPPED" and "NaN" in result.message
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    assert oracle.get_trial(trial.trial_id).status == "STOPPED"


@pytest.mark.parametrize("rule", ["threshold", "median", "halving"])
def test_a_nan_beside_a_value_at_one_step_is_left_out_of_the_trials_own_curve(tmp_path, rule):
    """A step reported as 0.3 and as NaN counts as 0.3, as it does when another trial's
    rule reads it (the README's "NaN values left out unless all are NaN"): a NaN in one
    batch of an epoch does not stop a good trial."""
    rules = {"threshold": hpstore.Threshold(upper=5.0),
             "median": hpstore.MedianStopping(min_trials=1),
             "halving": hpstore.SuccessiveHalving(min_resource=1, reduction_factor=2)}
    oracle = make("random", str(tmp_path / "n.db"), rules[rule])
    first = oracle.create_trial("w")
    oracle.update_trial(first.trial_id, {"loss": 1.0}, step=0)
    oracle.update_trial(first.trial_id, {"loss": 1.0}, step=1)
    first.status = "COMPLETED"
    oracle.end_trial(first)
    trial = oracle.create_trial("w")
    assert oracle.update_trial(trial.trial_id, {"loss": 0.3}, step=1).status == "RUNNING"
    result = oracle.update_trial(trial.trial_id, {"loss": math.nan}, step=1)
    assert result.status == "RUNNING", result.message
    # the same judgement when the run is read whole (another process's oracle)
    again = make("random", str(tmp_path / "n.db"), rules[rule])
    assert again.update_trial(trial.trial_id, {"loss": math.nan}, step=1).status == "RUNNING"


def test_hyperband_promotes_from_what_completed_when_the_rest_was_stopped(tmp_path):
    """A round whose trials were mostly stopped early still promotes its completed ones
    to the next round (the stopped ones count as thrown out)."""
    oracle = hpstore.HyperbandOracle("loss", max_epochs=9, factor=3, hyperparameters=space(),
                                     seed=3, database=str(tmp_path / "h.db"),
                                     early_stopping=hpstore.Threshold(upper=1.3))
    run_search(oracle)
    trials = list(oracle.trials.values())
    first = [t for t in trials if t.hyperparameters.values["tuner/round"] == 0]
    promoted = [t for t in trials if t.hyperparameters.values["tuner/round"] > 0]
    stopped = [t for t in first if t.status == "STOPPED"]
    assert stopped and len(stopped) > len(first) // 2  # most were stopped...
    assert promoted  # ...and the completed ones went on all the same
    for t in promoted:
        parent = oracle.get_trial(t.hyperparameters.values["tuner/trial_id"])
        assert parent.status == "COMPLETED"


def test_a_result_run_trial_returns_is_never_judged_as_a_curve(tmp_path):
    # trials that train to the end and return their final loss: none was stopped early
    hp = hpstore.HyperParameters()
    hp.Int("x", 0, 100)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=10, hyperparameters=hp, seed=3,
                                        database=str(tmp_path / "final.db"),
                                        early_stopping=hpstore.MedianStopping(min_trials=2))
    hpstore.Tuner(oracle, run_trial=lambda t: float(t.hyperparameters["x"]),
                  verbose=0).search()
    trials = list(oracle.trials.values())
    assert len(trials) == 10 and {t.status for t in trials} == {"COMPLETED"}
    assert [t.score for t in oracle.get_best_trials(10)] == sorted(
        float(t.hyperparameters["x"]) for t in trials)
    # a report while training is still judged: the same rule stops a bad curve
    oracle.max_trials = 11
    trial = oracle.create_trial("reporter")
    assert oracle.update_trial(trial.trial_id, {"loss": 1e6}).status == "STOPPED"
    oracle.close()


@pytest.mark.parametrize("database", ["file", "memory"])
def test_a_long_run_is_judged_on_its_whole_curve_reported_step_by_step(tmp_path, database):
    # the rule's curve is kept as reports arrive (it was read whole at each one): it must
    # stop where the rule stops on the whole curve read at once, a step reported twice
    # (averaged) included
    from hpstore.stopping import curve_from

    rule = hpstore.Patience(patience=50, min_delta=0.0)
    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 1)
    oracle = hpstore.RandomSearchOracle(
        "loss", max_trials=2, hyperparameters=hp, early_stopping=rule,
        database=str(tmp_path / "s.db") if database == "file" else None)
    trial = oracle.create_trial("w")
    reports = [(s, 1.0 / (s + 1)) for s in range(300)] + [(299, 1.0)] + [
        (s, 0.5) for s in range(300, 500)]
    expected = next(n for n in range(1, len(reports) + 1)
                    if rule.decide(curve_from(reports[:n], "min"), None) is not None)
    for n, (step, value) in enumerate(reports, start=1):
        status = oracle.update_trial(trial.trial_id, {"loss": value}, step=step).status
        assert status == ("STOPPED" if n >= expected else "RUNNING"), n
        if status == "STOPPED":
            break
    whole = curve_from(reports[:expected], "min")
    assert oracle.get_trial(trial.trial_id).score == pytest.approx(whole.best())


def test_a_rule_judges_the_curve_the_store_holds_after_another_object_replaced_it(tmp_path):
    # a curve kept as reports arrive outlived a set_state made through another object:
    # the rule judged points the store no longer held, and not the one just reported
    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 1)
    path = tmp_path / "s.db"
    worker = hpstore.RandomSearchOracle("loss", max_trials=3, hyperparameters=hp,
                                        database=path, early_stopping=hpstore.Patience(
                                            patience=2, min_delta=0.0))
    trial = worker.create_trial("w")
    for step, value in enumerate((10.0, 9.0, 8.0, 8.5, 8.6)):
        assert worker.update_trial(trial.trial_id, {"loss": value}, step=step).status == (
            "RUNNING")
    other = hpstore.RandomSearchOracle(database=path)
    state = other.get_state()
    for step, value in zip(range(5, 10), (4.0, 3.0, 2.0, 1.0, 0.5)):  # improving
        assert worker.update_trial(trial.trial_id, {"loss": value}, step=step).status == (
            "RUNNING")
    other.set_state(state)  # the store holds steps 0 .. 4 again
    # the whole curve: 10, 9, 8, 8.5, 8.6, then 50: its last 3 steps no better than the
    # best before them (judged on the points kept, 2, 1, 0.5 would have gone on)
    assert worker.update_trial(trial.trial_id, {"loss": 50.0}, step=10).status == "STOPPED"


def test_a_stopped_trial_its_worker_ends_failed_is_failed_and_any_other_end_stays_stopped(
        tmp_path):
    """The README's exception to "it stays STOPPED": an error after the stop."""
    oracle = make("random", str(tmp_path / "f.db"), hpstore.Threshold(upper=1.0))
    ended = {}
    for given in ("COMPLETED", "IDLE", "FAILED"):
        trial = oracle.create_trial("w")
        assert oracle.update_trial(trial.trial_id, {"loss": 5.0}, step=0).status == "STOPPED"
        trial.status, trial.message = given, f"the worker says {given}"
        oracle.end_trial(trial)
        stored = oracle.get_trial(trial.trial_id)
        ended[given] = (stored.status, stored.score, stored.message.startswith("Stopped early"))
    assert ended == {"COMPLETED": ("STOPPED", 5.0, True), "IDLE": ("STOPPED", 5.0, True),
                     "FAILED": ("FAILED", None, False)}
