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


def run_workers(path: str, project: str, trials: int, workers: int,
                before: Any = None) -> list[int]:
    """``trials`` trials of a new project written by ``workers`` processes started together
    (each writes as tuner ``w<pid>``); ``before()`` runs once the project exists, before
    they start. The process ids that took part.

    Raises:
        AssertionError: a worker failed, or not every one took part.
    """
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    hpstore.RandomSearchOracle(objective="loss", max_trials=trials, seed=11, database=path,
                               project_name=project, hyperparameters=space()).close()
    start, results = ctx.Barrier(workers + 1, timeout=DEADLINE), ctx.Queue()
    holding = ctx.Barrier(workers, timeout=DEADLINE)
    procs = [ctx.Process(target=run_worker,
                         args=(path, project, trials, start, results, holding))
             for _ in range(workers)]
    for p in procs:
        p.start()
    if before is not None:
        before()
    start.wait()
    outcomes = [results.get(timeout=DEADLINE) for _ in procs]
    for p in procs:
        p.join(DEADLINE)
    assert all(kind == "ok" for kind, _, _ in outcomes), outcomes
    store = open_store(path, read_only=True)
    record = store.find_project(project)
    assert record is not None
    tuners = {t.tuner_id for t in store.open_project(record).trials()}
    store.close()
    assert len(tuners) == workers, tuners
    return [pid for _, pid, _ in outcomes]


def run_worker(path: str, project: str, trials: int, start: Any, results: Any,
               holding: Any = None) -> None:
    """One worker of a shared search, started by ``start``; puts ("ok"|"error", pid, text).
    With ``holding``, it first takes a trial and waits until every worker holds one, so
    that each takes part however fast the others are (its Tuner then gets that trial back
    first)."""
    try:
        oracle = hpstore.RandomSearchOracle(
            objective="loss", max_trials=trials, seed=11, database=path,
            project_name=project, hyperparameters=space(), max_consecutive_failed_trials=100)
        tuner = CurveTuner(oracle, tuner_id=f"w{os.getpid()}", verbose=0)
        start.wait(DEADLINE)
        if holding is not None:
            oracle.create_trial(tuner.tuner_id)
            holding.wait(DEADLINE)
        tuner.search()
        oracle.close()
        results.put(("ok", os.getpid(), ""))
    except BaseException as exc:  # report everything to the parent
        results.put(("error", os.getpid(), f"{type(exc).__name__}: {exc}"))


# -- talking to a dashboard ----------------------------------------------------------------------

def fetch(url: str, path: str, params: Any = (), *, method: str = "GET",
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request; ``params`` as (name, value) pairs."""
    import urllib.error
    import urllib.parse
    import urllib.request

    query = urllib.parse.urlencode(list(params.items()) if isinstance(params, dict)
                                   else list(params))
    request = urllib.request.Request(url.rstrip("/") + path + (f"?{query}" if query else ""),
                                     method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=DEADLINE) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def strict_json(body: bytes) -> Any:
    """JSON as a browser reads it: NaN and Infinity are not JSON."""
    import json

    def refuse(token: str) -> Any:
        raise ValueError(f"{token} is not JSON")

    return json.loads(body, parse_constant=refuse)


def api(url: str, path: str, params: Any = ()) -> Any:
    """The JSON answer of an endpoint that must succeed."""
    status, _, body = fetch(url, path, params)
    assert status == 200, (status, body[:500])
    return strict_json(body)


def comparable(dump: dict[str, Any]) -> dict[str, Any]:
    """A project's ``dump()`` without what differs from run to run: times, process ids,
    tuner ids and sessions, and the order the status log interleaves trials in."""
    def trial(t: dict[str, Any]) -> dict[str, Any]:
        kept = {k: v for k, v in t.items() if not k.endswith("_at")
                and k not in ("pid", "tuner_id", "session", "observations", "transitions")}
        kept["observations"] = [o[:5] for o in t["observations"]]  # (run, metric, dir, step, v)
        kept["transitions"] = [(s[0], s[1], s[5]) for s in t["transitions"]]  # from, to, msg
        return kept

    settings = {k: v for k, v in dump["settings"].items() if not k.endswith("_at")}
    rest = {k: v for k, v in dump.items()
            if k not in ("log", "values_log")}  # (the interleaving, run to run)
    return {**rest, "settings": settings,
            "trials": sorted((trial(t) for t in dump["trials"]), key=lambda t: t["number"])}


def insert_trials(path: str, project: str, trials: int) -> None:
    """A project of ``trials`` ended trials written straight into the file as hpstore writes
    them (the status log's triggers fill the log): a large search in a second."""
    import sqlite3

    hp = hpstore.HyperParameters()
    hp.Float("x", -1, 1)
    hp.Int("y", 0, 9)
    oracle = hpstore.RandomSearchOracle(objective="loss", max_trials=trials, seed=1,
                                        database=path, project_name=project,
                                        hyperparameters=hp)
    record = oracle.store.find_project(project)
    assert record is not None
    project_id = record.project_id
    oracle.close()
    conn = sqlite3.connect(path)
    rows = [(project_id, n, f"{n:05d}", f'{{"x": {((n * 7919) % 2000) / 1000 - 1}, "y": {n % 10}}}',
             f"k{n}", f"w{n % 4}", 1000.0 + n) for n in range(trials)]
    with conn:
        conn.executemany(
            "INSERT INTO trials (project_id, number, trial_id, status, hp_values, values_key, "
            "tuner_id, run_count, created_at, started_at, changed_at) VALUES "
            "(?, ?, ?, 'RUNNING', ?, ?, ?, 1, ?, ?, ?)", [(*row, row[-1], row[-1]) for row in rows])
        conn.execute(
            "UPDATE trials SET status = CASE WHEN number % 10 = 9 THEN 'FAILED' ELSE "
            "'COMPLETED' END, score = CASE WHEN number % 10 = 9 THEN NULL ELSE "
            "((number * 7919) % 1000) / 100.0 + 100.0 / (number + 1) END, "
            "ended_at = started_at + 0.5, changed_at = started_at + 0.5 WHERE project_id = ?",
            (project_id,))
    conn.close()


# -- a steered search ----------------------------------------------------------------------------

HOSTILE_NOTE = "<img src=x onerror=alert('note')> from the paper"


def steer_space() -> hpstore.HyperParameters:
    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 10)
    hp.Int("y", 0, 4)
    return hp


def run_one(oracle: hpstore.Oracle, losses: list[float], status: str = "COMPLETED") -> str:
    """The next trial of ``oracle``, reporting ``losses`` step by step (until a stopping
    rule stops it) and ended with ``status``; its id."""
    trial = oracle.create_trial("w")
    assert trial.status == "RUNNING", trial.status
    for step, loss in enumerate(losses):
        if oracle.update_trial(trial.trial_id, {"loss": loss}, step=step).status == "STOPPED":
            break
    trial.status = status
    oracle.end_trial(trial)
    return trial.trial_id


def write_steered(path: str, source: str) -> dict[str, Any]:
    """Project "steered" (max_trials 6) steered every way: two trials warm-started from
    ``source`` (project HOSTILE_PROJECT), one enqueued and run, one stopped early by a
    stopping rule, one completed, one failed, one result added without counting towards
    max_trials (the best score, then retired) and one added counting; a note holding markup.
    Its trial ids by role."""
    donor = hpstore.RandomSearchOracle(objective="loss", max_trials=2, seed=9, database=source,
                                       project_name=HOSTILE_PROJECT,
                                       hyperparameters=steer_space())
    for loss in (4.0, 4.5):
        run_one(donor, [loss])
    donor.close()
    oracle = hpstore.RandomSearchOracle(
        objective="loss", max_trials=6, seed=2, database=path, project_name="steered",
        hyperparameters=steer_space(), early_stopping=hpstore.Threshold(upper=50.0),
        warm_start_from=(source, HOSTILE_PROJECT))
    ids: dict[str, Any] = {"warm": list(oracle.warm_start.added)}
    oracle.enqueue_trial({"x": 1.0, "y": 1})
    ids["enqueued"] = run_one(oracle, [3.0, 2.0])
    ids["stopped"] = run_one(oracle, [100.0, 90.0])
    ids["completed"] = run_one(oracle, [2.0, 1.0])
    ids["failed"] = run_one(oracle, [], "FAILED")
    ids["added"] = oracle.add_trial({"x": 5.0, "y": 2}, {"loss": 0.5}).trial_id
    ids["counted"] = oracle.add_trial({"x": 6.0, "y": 3}, {"loss": 3.0},
                                      count_towards_max_trials=True).trial_id
    oracle.retire_trial(ids["added"], "measured on the training set", by="tester")
    oracle.set_trial_note(ids["enqueued"], HOSTILE_NOTE)
    oracle.close()
    return ids


# -- files -------------------------------------------------------------------------------------

def write_old_file(path: str, version: int) -> None:
    """A search file as an hpstore of schema ``version`` wrote it: project "p" of a random
    search, two completed trials."""
    import sqlite3

    from hpstore.store.sqlite.schema import migrations

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    for number, migration in migrations():
        if number <= version:
            conn.executescript(f"BEGIN;\n{migration.read_text(encoding='utf-8')}\n"
                               f"PRAGMA user_version = {number};\nCOMMIT;")
    conn.execute("INSERT INTO projects (project_id, name, oracle_class, oracle_config, "
                 "objective, max_trials, seed, created_at, updated_at) VALUES (1, 'p', "
                 "'RandomSearchOracle', '{}', '{\"name\": \"loss\", \"direction\": \"min\"}', "
                 "5, 1, 0, 0)")
    conn.execute("INSERT INTO hyperparameters VALUES (1, 0, 'x', 'Float', '{\"name\": \"x\", "
                 "\"default\": 0.0, \"conditions\": [], \"min_value\": 0.0, \"max_value\": "
                 "10.0, \"step\": null, \"sampling\": \"linear\"}')")
    for number, score in ((0, 0.5), (1, 0.25)):
        conn.execute("INSERT INTO trials (project_id, number, trial_id, status, hp_values, "
                     "values_key, score, run_count, created_at, started_at, ended_at) VALUES "
                     "(1, ?, ?, 'COMPLETED', ?, ?, ?, 1, 0, 0, 1)",
                     (number, str(number), f'{{"x": {number + 1.0}}}', f"k{number}", score))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def columns_search(path: str) -> None:
    """A one-trial search whose hyperparameters are named like columns of the trial
    tables (status, note, message, best step)."""
    hp = hpstore.HyperParameters()
    for name in ("status", "note", "message", "best step"):
        hp.Choice(name, [f"{name}-value"])
    oracle = hpstore.RandomSearchOracle("loss", max_trials=1, database=path,
                                        hyperparameters=hp)
    trial = oracle.create_trial("w")
    oracle.update_trial(trial.trial_id, {"loss": 1.0})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    oracle.close()
