"""Many oracles of one process on one PostgreSQL database: a notebook builds oracle after
oracle (a cell run again and again), and drops each without closing it. They share the
process's liveness lock; each keeps only its own connection, collected with it."""

from __future__ import annotations

import subprocess
import sys

from _pg_oracles import ORACLES, another_worker, finish
from _postgres import fresh_url

SCRIPT = r"""
import gc, os, sys
import psycopg
import hpstore
url, count = sys.argv[1], int(sys.argv[2])
mine = "%:" + str(os.getpid())  # the application name of this process's connections


def connections():
    with psycopg.connect(url, autocommit=True, application_name="counting") as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name "
                            "LIKE %s", (mine,)).fetchone()[0]


hp = hpstore.HyperParameters()
hp.Float("x", -1, 1)
most = 0
for i in range(count):
    oracle = hpstore.RandomSearchOracle("loss", max_trials=10_000, hyperparameters=hp,
                                        seed=1, database=url)
    trial = oracle.create_trial(f"cell-{i % 3}")
    oracle.update_trial(trial.trial_id, {"loss": 1.0})
    if i % 5:  # now and then a trial is left running, as an interrupted cell leaves it
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    del oracle, trial
    if i % 25 == 0:
        gc.collect()
        most = max(most, connections())
        if most > 10:
            break  # (growing: not worth filling the server's connections to prove it)
print(most)
"""


def test_a_notebook_building_oracles_on_a_server_holds_two_connections_at_most():
    import psycopg

    url = fresh_url()
    done = subprocess.run([sys.executable, "-c", SCRIPT, url, "200"], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    # the liveness lock's connection, and the work connection of an oracle not yet
    # collected (one each per dropped oracle before, until the server refused more)
    assert int(done.stdout.split()[-1]) <= 2
    with psycopg.connect(url, autocommit=True) as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM trials GROUP BY status"))
        interrupted = conn.execute("SELECT count(*) FROM trials WHERE interruptions > 0"
                                   ).fetchone()[0]
    # a trial a dropped oracle left running went on with the next oracle of the same cell
    # (the process's own, not a dead worker's): nothing was interrupted or lost
    assert statuses.get("FAILED", 0) == 0 and interrupted == 0
    assert statuses["COMPLETED"] == 160 and sum(statuses.values()) <= 200


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
    assert not other.store.is_alive(session)
    reaped = {other.create_trial(tuner).trial_id for tuner in ("third", "fourth")}
    assert reaped == {running.trial_id, left.trial_id}
    other.close()
