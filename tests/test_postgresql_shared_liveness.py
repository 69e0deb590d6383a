"""Many oracles of one process on one PostgreSQL database share the process's liveness
lock; each keeps only its own connection for its work (a notebook dropping oracle after
oracle: test_many_oracles.py)."""

from __future__ import annotations

import time

from _pg_oracles import ORACLES, another_worker, finish
from _postgres import base_url, fresh_url

from hpstore.store.postgresql.liveness import wait_released


def test_closing_one_oracle_keeps_the_lock_its_neighbours_share():
    url = fresh_url()
    first, second = ORACLES["random"](url), ORACLES["random"](url)
    running = second.create_trial("second")
    left = first.create_trial("first")
    session = second.store.session()
    assert first.store.session() == session  # one lock for the process
    first.close()
    # a worker of another process finds the process alive: its trials are not reaped
    other = another_worker(ORACLES["random"](url))
    assert other.store.is_alive(session)
    assert finish(other, stop_after=2) == 2
    record = second._project.trial(running.trial_id)
    assert (record.status, record.interruptions) == ("RUNNING", 0)
    second.close()  # the last of the process's oracles, with trials running: kept
    assert other.store.is_alive(session)
    for oracle, trial in ((first, left), (second, running)):  # (each opened again)
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        oracle.close()
    # nothing runs under it now: the last close gave it up (its connection closed, the
    # server's backend ends and frees it a moment later)
    assert wait_released(other.store.db, session, time.monotonic() + 30)
    other.close()


def test_asking_whether_a_worker_lives_never_makes_a_dead_one_look_alive():
    # Whether a worker lives is asked of its lock: a shared try, kept until the asking
    # transaction ends (a reaper deciding about the trial). While one is kept, the worker
    # asked about still reads as dead to everyone, and the count of live workers does not
    # grow; asked about a live worker, the try fails and the worker keeps its lock.
    import psycopg

    url = fresh_url()
    worker = ORACLES["random"](url)
    worker.create_trial("w")  # holds this process's liveness lock from here
    live = worker.store.session()
    other = another_worker(ORACLES["random"](url))
    workers = other.store.live_workers()
    assert workers == 2  # the process's lock and the other worker's
    gone_key = 0x7FFFFFF0
    gone = f"pg-{gone_key:08x}"
    live_class = other.store.db.keys["live"]
    ask = "SELECT pg_try_advisory_xact_lock_shared(%s, %s)"
    with psycopg.connect(base_url()) as reaper:  # (not autocommit: a transaction stays open)
        assert reaper.execute(ask, (live_class, gone_key)).fetchone()[0]
        assert other.store.alive({gone: None, live: None}) == {live}
        assert not other.store.is_alive(gone)
        assert other.store.live_workers() == workers
        assert not reaper.execute(ask, (live_class, int(live[3:], 16))).fetchone()[0]
        reaper.rollback()
    assert other.store.alive({gone: None, live: None}) == {live}
    assert other.store.live_workers() == workers
    other.close()
    worker.close()


def test_an_oracle_closed_while_its_trial_runs_keeps_the_lock_for_the_processs_next():
    from _cells import cells_closing_their_oracle, trial_left_to_the_next_cell

    import hpstore

    url = fresh_url()
    got, oracle = cells_closing_their_oracle(hpstore.RandomSearchOracle, url)
    # meanwhile the lock was kept: a worker of another process finds this one alive
    other = another_worker(ORACLES["random"](url))
    assert other.store.is_alive(oracle._project.trial(got[0]).session)
    other.close()
    trial_left_to_the_next_cell(got, oracle)


def test_closing_with_its_connection_gone_never_waits_to_reconnect(monkeypatch):
    # whether a trial still runs under the lock is asked once as the store closes: a
    # server gone (here, its backend ended) is not waited for, 30 s, to answer
    import psycopg

    from hpstore.store.postgresql.database import Database

    url = fresh_url()
    oracle = ORACLES["random"](url)
    running = oracle.create_trial("w")
    token = oracle._project.trial(running.trial_id).session
    reconnects = []
    real = Database._reconnect
    monkeypatch.setattr(Database, "_reconnect",
                        lambda db, cause: reconnects.append(cause) or real(db, cause))
    with psycopg.connect(base_url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)",
                      (oracle.store.db._conn.info.backend_pid,))
        oracle.close()
        assert reconnects == []
        # not told that a trial runs under it, the last close gave the lock up
        other = ORACLES["random"](url)
        assert wait_released(other.store.db, token, time.monotonic() + 30)
        other.close()
