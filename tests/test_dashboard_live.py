"""The dashboard following a search as it is written: a poll hands out only what is newer
than the positions the page holds, in batches that lose nothing; the copy it keeps between
requests stays what a fresh read gives; a large search is sampled and paged."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from _dashboard import DEADLINE, api, insert_trials, space, write_search

import hpstore
from hpstore import queries
from hpstore.dashboard import live as live_module
from hpstore.dashboard import open_dashboard
from hpstore.dashboard.api import POLL_LIMIT
from hpstore.dashboard.live import LiveProject, RunLog
from hpstore.report.data import Run
from hpstore.store import open_store
from hpstore.store.records import Transition


def new_oracle(path: str, trials: int = 50) -> hpstore.RandomSearchOracle:
    return hpstore.RandomSearchOracle(objective="loss", max_trials=trials,
                                      database=path, project_name="p",
                                      hyperparameters=space())


def finish(oracle: hpstore.Oracle, trial: hpstore.Trial, status: str = "COMPLETED") -> None:
    trial.status = status
    oracle.end_trial(trial)


@pytest.fixture
def served(tmp_path):
    path = str(tmp_path / "search.db")
    write_search(path, "p", 3)
    with open_dashboard(path, port=0) as running:
        running.start()
        yield path, running.url


def positions(reply: dict) -> dict:
    return {"seq": reply["seq"], "obs": reply["obs"], "generation": reply["generation"]}


def test_a_poll_hands_out_only_the_changes_and_values_newer_than_the_page_has(served):
    path, url = served
    first = api(url, "/api/poll")
    oracle = new_oracle(path)
    trial = oracle.create_trial("writer")
    for step, value in enumerate([3.0, math.nan, math.inf]):
        oracle.update_trial(trial.trial_id, {"loss": value}, step=step)
    started = api(url, "/api/poll", {**positions(first), "trial": trial.trial_id})
    assert [(c["trial_id"], c["from"], c["to"]) for c in started["changes"]] == [
        (trial.trial_id, None, "RUNNING")]
    assert [v["value"] for v in started["values"]] == [3.0, "nan", "inf"]  # JSON has no NaN
    assert started["running"] == 1 and started["running_trials"][0]["tuner_id"] == "writer"
    assert started["finished"] is None and started["seq"] > first["seq"]
    finish(oracle, trial)
    ended = api(url, "/api/poll", {**positions(started), "trial": trial.trial_id})
    assert [(c["from"], c["to"], c["score"]) for c in ended["changes"]] == [
        ("RUNNING", "COMPLETED", 3.0)]
    assert ended["values"] == [] and ended["total"] == 4
    quiet = api(url, "/api/poll", positions(ended))
    assert quiet["changes"] == [] and quiet["seq"] == ended["seq"]
    # another page, still at the first positions, gets the same changes: positions are the
    # page's own, not the server's
    late = api(url, "/api/poll", positions(first))
    assert [c["seq"] for c in late["changes"]] == [
        c["seq"] for c in started["changes"] + ended["changes"]]
    # a page that follows no trial gets no values, only the new position
    other = new_oracle(path).create_trial("second-writer")
    oracle.update_trial(other.trial_id, {"loss": 1.0}, step=0)
    moved = api(url, "/api/poll", positions(quiet))
    assert moved["values"] == [] and moved["obs"] > quiet["obs"]
    oracle.close()


def test_polls_in_batches_lose_nothing_and_repeat_nothing(served):
    path, url = served
    first = api(url, "/api/poll")
    oracle = new_oracle(path, trials=400)
    for _ in range(POLL_LIMIT // 2 + 60):  # two changes each: more than one poll holds
        trial = oracle.create_trial("writer")
        oracle.update_trial(trial.trial_id, {"loss": 1.0}, step=0)
        finish(oracle, trial)
    oracle.close()
    seen, reply, polls = [], first, 0
    while True:
        reply = api(url, "/api/poll", positions(reply))
        polls += 1
        seen += [c["seq"] for c in reply["changes"]]
        if not reply["more"]:
            break
    assert polls == 2 and seen == sorted(set(seen))
    store = open_store(path, read_only=True)
    project = store.open_project(store.find_project("p"))
    assert seen == [t.seq for t in project.transitions(after=first["seq"])]
    store.close()


def test_the_followed_copy_stays_what_a_fresh_read_gives(tmp_path):
    path = str(tmp_path / "search.db")
    write_search(path, "p", 2)
    store = open_store(path, read_only=True)
    followed = LiveProject(store, store.find_project("p"))
    assert [n for n, _, _ in followed.light()] == [0, 1]  # read now, then followed
    oracle = new_oracle(path)
    for i in range(12):
        trial = oracle.create_trial(f"w{i % 3}")
        oracle.update_trial(trial.trial_id, {"loss": float(i)}, step=0)
        finish(oracle, trial, "INVALID" if i % 4 == 3 else "FAILED" if i % 5 == 4
               else "COMPLETED")
    running = oracle.create_trial("w9")  # still running
    assert followed.refresh() is True
    fresh = LiveProject(store, store.find_project("p"))
    assert followed.light() == fresh.light() and len(followed.light()) == 15
    assert followed.counts() == fresh.counts()
    assert (followed.seq, followed.obs) == (fresh.seq, fresh.obs)
    assert followed.last_activity == fresh.last_activity
    now = followed.last_activity
    assert followed.runs.runs(now) == fresh.runs.runs(now)
    assert followed.runs.open[running.trial_id][1] == "w9"
    assert followed.refresh() is False  # nothing new: nothing read again
    assert followed.overview().running[0].trial_id == running.trial_id
    oracle.close()
    store.close()


def test_watch_and_the_dashboard_measure_the_pace_on_the_same_ends(tmp_path):
    path = str(tmp_path / "search.db")
    oracle = new_oracle(path, trials=700)
    for i in range(700):  # more ends than half the changes read for them before
        trial = oracle.create_trial("w")
        oracle.update_trial(trial.trial_id, {"loss": float(i)}, step=0)
        finish(oracle, trial, "FAILED" if i % 7 == 3 else "COMPLETED")
    oracle.close()
    conn = sqlite3.connect(path)
    ends = [at for (at,) in conn.execute(
        "SELECT at FROM transitions WHERE to_status IN ('COMPLETED', 'FAILED', 'STOPPED') "
        "ORDER BY id")]
    conn.close()
    store = open_store(path, read_only=True)
    followed = LiveProject(store, store.find_project("p"))
    project = followed.project
    assert list(followed.ends) == ends[-queries.PACE_ENDS:]
    now = ends[-1] + 0.001
    expected = queries.pace(ends[-queries.PACE_ENDS:], now=now)
    assert expected is not None
    assert queries.overview(project, now=now).per_minute == expected  # watch, summary
    assert queries.overview(project, now=now, ends=followed.ends).per_minute == expected
    store.close()


def change(seq: int, trial: str, status: str, at: float, who: str = "w",
           was: str | None = None) -> Transition:
    return Transition(seq, trial, was, status, at, who, 1, None)


def test_the_run_log_reads_runs_as_the_report_does():
    log = RunLog(limit=4)
    log.feed([change(1, "a", "RUNNING", 1.0), change(2, "a", "STOPPED", 2.0, was="RUNNING"),
              change(3, "a", "FAILED", 3.0, was="STOPPED"),  # its worker failed after the stop
              change(4, "s", "RUNNING", 3.5), change(5, "s", "STOPPED", 3.75, was="RUNNING"),
              change(6, "s", "STOPPED", 3.8, was="STOPPED"),  # retired: no run
              change(7, "b", "RUNNING", 4.0), change(8, "b", "RUNNING", 5.0, "v")])
    log.feed([change(3, "a", "COMPLETED", 9.0)])  # taken in already: skipped
    assert log.runs(10.0) == [Run("a", "w", 1.0, 3.0, "FAILED"),
                              Run("s", "w", 3.5, 3.75, "STOPPED"),
                              Run("b", "w", 4.0, 5.0, "IDLE"),
                              Run("b", "v", 5.0, 10.0, "RUNNING")]
    assert not log.cut
    log.feed([change(9, "b", "COMPLETED", 6.0)] + [
        x for n in range(4) for x in (change(10 + 2 * n, f"c{n}", "RUNNING", 7.0 + n),
                                      change(11 + 2 * n, f"c{n}", "COMPLETED", 8.0 + n))])
    assert [r.trial_id for r in log.runs(20.0)] == ["c0", "c1", "c2", "c3"] and log.cut


def test_runs_that_started_before_the_part_of_the_log_read_start_at_their_trials_start(
        tmp_path):
    path = str(tmp_path / "search.db")
    write_search(path, "p", 4)
    store = open_store(path, read_only=True)
    project = store.open_project(store.find_project("p"))
    trials = project.trials()
    ends = [c for c in project.transitions() if c.to_status == "COMPLETED"]
    log = RunLog()
    log.whole = False
    log.feed(ends)  # the RUNNING entries lie before what was read
    assert log.runs(0.0) == [] and len(log.orphans) == len(ends)
    log.add_orphans(project.trials_by_id([c.trial_id for c in log.orphans]))
    assert log.runs(0.0) == [Run(t.trial_id, t.tuner_id, t.started_at, t.ended_at, "COMPLETED")
                             for t in trials if t.status == "COMPLETED"]
    assert log.orphans == [] and log.cut
    store.close()


def test_a_large_search_is_sampled_and_its_table_paged(tmp_path, monkeypatch):
    path = str(tmp_path / "big.db")
    insert_trials(path, "big", 2500)
    monkeypatch.setattr(live_module, "TAIL", 600)  # a status log longer than what is read
    with open_dashboard(path, port=0) as running:
        running.start()
        reply = api(running.url, "/api/poll")
        assert reply["total"] == 2500 and reply["counts"] == {"COMPLETED": 2250,
                                                              "FAILED": 250}
        assert reply["interval"] == 2.0
        sections = {s["key"]: s["html"] for s in api(running.url, "/api/plots")["sections"]}
        assert "Showing 2,000 of 2,500 trials" in sections["history"]
        assert "The last 600 runs that ended" in sections["timeline"]
        last = api(running.url, "/api/trials", {"size": 500, "page": 5, "sort": "number",
                                                "desc": 1})
        assert [r["number"] for r in last["rows"]] == list(range(499, -1, -1))


def test_a_search_whose_oracle_has_nothing_left_is_found_finished(tmp_path, monkeypatch):
    path = str(tmp_path / "grid.db")
    hp = hpstore.HyperParameters()
    hp.Choice("c", ["a", "b", "c"])
    oracle = hpstore.GridSearchOracle(objective="loss", database=path, project_name="grid",
                                      hyperparameters=hp)
    while (trial := oracle.create_trial("w")).status == "RUNNING":
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        finish(oracle, trial)
    oracle.close()  # no max_trials, no worker left: only the oracle can tell it is over
    with open_dashboard(path, port=0) as running:
        running.start()
        # asked off the reader thread: the page sees the answer at a later poll
        end = time.monotonic() + DEADLINE
        while (reply := api(running.url, "/api/poll"))["finished"] is None:
            assert time.monotonic() < end, "the oracle's answer never came"
            threading.Event().wait(0.05)
        assert reply["finished"] == ("The search is finished: its oracle has no more trials "
                                     "to hand out.")
        assert reply["total"] == 3 and reply["workers"] == 0
    # past ORACLE_LIMIT trials the oracle is not asked (it would load the whole search)
    monkeypatch.setattr(live_module, "ORACLE_LIMIT", 2)
    with open_dashboard(path, port=0) as running:
        running.start()
        assert api(running.url, "/api/poll")["finished"] is None
        dashboard = running.reader.dashboard
        assert dashboard.question is not None and dashboard.question._asking == set()
        assert api(running.url, "/api/projects")["projects"][0]["finished"] is None


_HOLDS_A_TRIAL = """
import sys
import hpstore
hp = hpstore.HyperParameters()
hp.Float("x", 0.0, 1.0)
oracle = hpstore.RandomSearchOracle(objective="loss", max_trials=5, database=sys.argv[1],
                                    project_name="p", hyperparameters=hp)
print(oracle.create_trial("held").trial_id, flush=True)
sys.stdin.read()  # until killed
"""


def test_a_trial_whose_worker_was_killed_shows_as_interrupted_as_watch_says(tmp_path):
    # After kill -9 of the only worker, the projects page said "running" and the project's
    # page counted the trial's seconds forever, where `hpstore watch` said it was interrupted
    path = str(tmp_path / "k.db")
    worker = subprocess.Popen([sys.executable, "-c", _HOLDS_A_TRIAL, path],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        held = worker.stdout.readline().strip()
        with open_dashboard(path, port=0) as running:
            running.start()
            [alive] = api(running.url, "/api/projects")["projects"]
            assert (alive["running"], alive["interrupted"]) == (1, 0)
            [trial] = api(running.url, "/api/poll", {"p": "p"})["running_trials"]
            assert (trial["trial_id"], trial["interrupted"]) == (held, False)
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(DEADLINE)
            [gone] = api(running.url, "/api/projects")["projects"]
            assert (gone["running"], gone["interrupted"], gone["workers"]) == (1, 1, 0)
            [trial] = api(running.url, "/api/poll", {"p": "p"})["running_trials"]
            assert (trial["trial_id"], trial["interrupted"]) == (held, True)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(DEADLINE)


def test_the_projects_page_reads_the_projects_once_however_many_there_are(tmp_path,
                                                                          monkeypatch):
    # each project was looked up by name, and each look-up read every project: at 1,000
    # projects the page (polled every second) took 10 s and held up every other request
    from hpstore.dashboard.api import Dashboard

    path = str(tmp_path / "many.db")
    for n in range(12):
        write_search(path, f"p{n:02d}", 1)
    store = open_store(path, read_only=True)
    reads = []
    every = store.projects
    monkeypatch.setattr(store, "projects", lambda: reads.append(1) or every())
    try:
        answer = Dashboard(store).projects({})
    finally:
        store.close()
    assert [p["name"] for p in answer["projects"]] == [f"p{n:02d}" for n in range(12)]
    assert len(reads) == 1


def test_the_oracles_are_asked_one_after_another_in_one_thread(tmp_path, monkeypatch):
    # A page of 1,000 finished projects started a thread per project at its first answer,
    # each start waiting on the others' work: 6 s of an 8 s answer.
    from hpstore.dashboard import finished

    path = str(tmp_path / "many.db")
    hp = hpstore.HyperParameters()
    hp.Choice("c", ["a"])
    for n in range(12):
        with hpstore.GridSearchOracle(objective="loss", database=path, project_name=f"g{n}",
                                      hyperparameters=hp) as oracle:
            while (trial := oracle.create_trial("w")).status == "RUNNING":
                oracle.update_trial(trial.trial_id, {"loss": 1.0})
                finish(oracle, trial)
    threads = set()
    ask = finished.OracleQuestion._ask

    def asked(self, key, name):
        threads.add(threading.current_thread())
        ask(self, key, name)

    monkeypatch.setattr(finished.OracleQuestion, "_ask", asked)
    monkeypatch.setattr(finished, "_IDLE", 0.01)  # (the thread ends sooner once idle)
    question = finished.OracleQuestion(lambda: open_store(path, read_only=True))
    store = open_store(path, read_only=True)
    records = store.projects()
    store.close()
    for _ in range(2):  # once more after the thread ended: a new one takes the questions
        assert [question.answer(r.name, r.project_id, 7) for r in records] == [None] * 12
        asking = question._thread
        assert asking is not None
        asking.join(DEADLINE)
        assert not asking.is_alive() and question._thread is None
        assert [question.answer(r.name, r.project_id, 7) for r in records] == [True] * 12
        question._answers.clear()
    assert len(threads) == 2
