"""On PostgreSQL every worker writes its times by the server's clock, whatever its own
says: workers on machines minutes apart write one consistent log, and the grace after a
server restart (a run started before it counts as live) compares the server's start with
a start written by the same clock."""

from __future__ import annotations

import time

import psycopg
from _postgres import fresh_url
from _workers import open_oracle

from hpstore.store import open_store

HOUR = 3600.0


def _server_time(url):
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8"
                            ).fetchone()[0]


def test_a_worker_whose_clock_is_an_hour_ahead_writes_the_servers_time(monkeypatch):
    url = fresh_url()
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + HOUR)  # this worker's clock
    oracle = open_oracle(url, max_trials=3)
    trial = oracle.create_trial("ahead")
    oracle.update_trial(trial.trial_id, {"loss": 1.0})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    oracle.close()
    monkeypatch.undo()
    server = _server_time(url)
    with psycopg.connect(url) as conn:
        (started, ended), = conn.execute("SELECT started_at, ended_at FROM trials").fetchall()
        logged = [r[0] for r in conn.execute("SELECT at_unix FROM status_log ORDER BY seq")]
        observed = [r[0] for r in conn.execute("SELECT o.at FROM observations o")]
    # within a minute of the server's clock (a slow machine's whole test), not an hour ahead
    for at in (started, ended, *logged, *observed):
        assert server - 60 < at <= server + 1
    assert ended >= started


def test_a_reader_compares_the_stored_times_with_the_servers_clock(monkeypatch):
    url = fresh_url()
    open_oracle(url, max_trials=3).close()
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - HOUR)  # the reader's clock is behind
    store = open_store(url, read_only=True)
    try:
        now = store.now()
    finally:
        store.close()
    monkeypatch.undo()
    assert abs(now - _server_time(url)) < 60
