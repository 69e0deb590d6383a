"""Many oracles of one process on one PostgreSQL database share the process's liveness
lock; each keeps only its own connection for its work (a notebook dropping oracle after
oracle: test_many_oracles.py)."""

from __future__ import annotations

import time

from _pg_oracles import ORACLES, another_worker, finish
from _postgres import fresh_url

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
    second.close()  # the last of the process's oracles gives the lock up
    # (its connection closed, the server's backend ends and frees it a moment later)
    assert wait_released(other.store.db, session, time.monotonic() + 30)
    reaped = {other.create_trial(tuner).trial_id for tuner in ("third", "fourth")}
    assert reaped == {running.trial_id, left.trial_id}
    other.close()
