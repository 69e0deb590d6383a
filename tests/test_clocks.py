"""Clocks that disagree: a worker's clock stepped back (NTP) or ahead of the reader's.

Each time in a search is the clock of the process that wrote it. Nothing that orders,
chooses or measures may take two of them to agree: the status log and metric history are
ordered by the order rows were written, a warm start takes the run created last, a run
whose end lies before its start has no duration, and a reader never shows a negative
one. (A step is made by replacing time.time in this process, as NTP moves the clock
under a running worker.)
"""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from _workers import objective_value, open_oracle

from hpstore import queries
from hpstore.cli import load_tool
from hpstore.cli import main as cli
from hpstore.store import open_store

HOUR = 3600.0


@pytest.fixture
def clock(monkeypatch):
    """The wall clock of this process, to step: ``clock.step(-HOUR)``."""
    real = time.time

    class Clock:
        offset = 0.0

        def step(self, seconds: float) -> None:
            self.offset += seconds

    c = Clock()
    monkeypatch.setattr(time, "time", lambda: real() + c.offset)
    return c


def _end(oracle, trial, loss):
    oracle.update_trial(trial.trial_id, {"loss": loss})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)


def test_a_run_ended_after_the_clock_was_stepped_back_has_no_duration(tmp_path, clock,
                                                                      capsys):
    path = str(tmp_path / "s.db")
    oracle = open_oracle(path, max_trials=5)
    steady = oracle.create_trial("w")
    _end(oracle, steady, 1.0)
    stepped = oracle.create_trial("w")
    clock.step(-HOUR)  # NTP steps the clock back while the trial runs
    _end(oracle, stepped, 2.0)
    oracle.close()
    conn = sqlite3.connect(path)
    seconds = dict(conn.execute("SELECT trial_id, seconds FROM trial_overview").fetchall())
    conn.close()
    assert seconds[stepped.trial_id] is None  # was -3600
    assert seconds[steady.trial_id] is not None and seconds[steady.trial_id] >= 0
    capsys.readouterr()
    assert cli(["trials", path, "--format", "json"]) == 0
    shown = {row["trial_id"]: row["seconds"] for row in json.loads(capsys.readouterr().out)}
    assert shown[stepped.trial_id] is None and shown[steady.trial_id] >= 0
    # the report drew its timeline (it raised StopIteration on a span below zero)
    assert cli(["report", path, "-o", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert f"trial {stepped.trial_id} on w: COMPLETED after an unknown time" in page
    assert f"trial {steady.trial_id} on w: COMPLETED after " in page


def test_the_logs_say_the_order_rows_were_written_in_whatever_the_clock_did(tmp_path, clock):
    path = str(tmp_path / "s.db")
    oracle = open_oracle(path, max_trials=5)
    written = []
    for step in (0.0, -HOUR, 0.0):
        clock.step(step)
        trial = oracle.create_trial("w")
        _end(oracle, trial, objective_value(trial.hyperparameters.values))
        written += [(trial.trial_id, "RUNNING"), (trial.trial_id, "COMPLETED")]
    oracle.close()
    conn = sqlite3.connect(path)
    by_seq = conn.execute("SELECT trial_id, to_status FROM status_log ORDER BY seq").fetchall()
    by_time = conn.execute("SELECT trial_id, to_status FROM status_log ORDER BY at_unix"
                           ).fetchall()
    steps = conn.execute("SELECT trial_id FROM metric_history ORDER BY seq").fetchall()
    conn.close()
    assert by_seq == written
    assert by_time != written  # what the times alone would say
    assert [s[0] for s in steps] == [t for t, status in written if status == "COMPLETED"]


def test_a_warm_start_takes_the_run_created_last_when_its_end_time_is_earlier(tmp_path, clock):
    # of two runs of the same values it took the one whose end time was the latest: the
    # shorter run, when the later one ran after the clock was stepped back
    source = open_oracle(str(tmp_path / "old.db"), max_trials=5, seed=3)
    first = source.create_trial("w")
    _end(source, first, 5.0)
    clock.step(-HOUR)
    again = source.enqueue_trial(first.hyperparameters.values, skip_if_exists=False)
    second = source.create_trial("w")
    assert second.trial_id == again
    _end(source, second, 1.0)
    source.close()
    clock.step(HOUR)
    with pytest.warns(UserWarning, match="left out"):
        oracle = open_oracle(str(tmp_path / "new.db"), max_trials=5,
                             warm_start_from=tmp_path / "old.db")
    assert dict(oracle.warm_start.skipped) == {first.trial_id: (
        f"same values as trial {second.trial_id}, a later run of them, which was taken in "
        "instead")}
    assert [t.score for t in oracle.trials.values()] == [1.0]
    oracle.close()


def test_watch_shows_no_negative_running_time_for_a_worker_whose_clock_is_ahead(
        tmp_path, clock):
    path = str(tmp_path / "s.db")
    oracle = open_oracle(path, max_trials=5)
    clock.step(HOUR)
    trial = oracle.create_trial("ahead")  # started by a worker an hour ahead of the viewer
    clock.step(-HOUR)
    watch = load_tool("watch")
    store = open_store(path, read_only=True)
    try:
        text, _ = watch.Watcher(store, queries.choose_project(store, None)).frame()
    finally:
        store.close()
        oracle.close()
    assert f"ahead: trial {trial.trial_id} for 0s" in text  # was "for -3600s"


def test_the_pace_leaves_out_ends_written_by_a_clock_ahead_of_the_reader():
    now = 1_000_000.0
    ends = [now - 60.0 + i for i in range(60)]  # a trial a second for the last minute
    assert queries.pace(ends, now=now) == pytest.approx(60.0, rel=0.05)
    # a worker an hour ahead stretched the span to an hour: one trial a minute
    assert queries.pace([*ends, now + HOUR], now=now) == pytest.approx(60.0, rel=0.05)


def test_a_run_time_is_never_negative():
    assert queries.run_seconds(10.0, 12.5) == 2.5
    assert queries.run_seconds(10.0, 9.0) is None
    assert queries.run_seconds(None, 9.0) is None and queries.run_seconds(10.0, None) is None
    assert queries.running_for(100.0, now=90.0) == 0.0
    assert queries.running_for(80.0, now=90.0) == 10.0


def test_a_store_says_the_time_by_the_clock_its_times_are_written_with(tmp_path):
    store = open_store(str(tmp_path / "s.db"))
    try:
        before = time.time()
        assert before <= store.now() <= time.time()
    finally:
        store.close()
