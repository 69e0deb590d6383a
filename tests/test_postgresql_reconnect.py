"""A dropped connection to PostgreSQL loses no step and records none twice.

The network is cut by a proxy at the worst moments: with the request lost on its way, or
after the server did it (and committed) but before its answer came back. Each time the
worker reconnects once and carries on, and the store holds the step exactly once.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from _netcut import Proxy
from _postgres import (
    ENV,
    backend_pids,
    base_url,
    fresh_database,
    fresh_url,
    server,
    terminate,
    wait_until,
)

import hpstore
from hpstore.store import open_store
from hpstore.store.postgresql import admin

DEADLINE = 60.0

pytestmark = pytest.mark.skipif(
    server() is None, reason=f"the proxy needs the tests' own server ({ENV} is set)")


@pytest.fixture
def proxied():
    """(URL through a proxy that can cut the network, the proxy) for a fresh schema."""
    found = server()
    assert found is not None
    schema = fresh_url().rsplit("%3D", 1)[1]
    proxy = Proxy(found.port)
    yield admin.with_schema(proxy.url(), schema), proxy
    proxy.close()


def oracle_on(url):
    hp = hpstore.HyperParameters()
    hp.Int("x", 0, 1000)
    return hpstore.RandomSearchOracle("loss", max_trials=10, hyperparameters=hp, seed=1,
                                      database=url)


@pytest.mark.parametrize("deliver", [True, False], ids=["answer-lost", "request-lost"])
def test_metrics_are_recorded_once_when_the_connection_drops(proxied, deliver):
    url, proxy = proxied
    oracle = oracle_on(url)
    trial = oracle.create_trial("w")
    proxy.cut(b"INSERT INTO observations", deliver=deliver)
    answer = oracle.update_trial(trial.trial_id, {"loss": 1.5}, step=3)
    assert proxy.done.is_set() and answer.status == "RUNNING"
    observations = oracle.project.observations(oracle.project.trial(trial.trial_id))
    assert [(o.metric, o.step, o.value) for o in observations] == [("loss", 3, 1.5)]
    oracle.close()


@pytest.mark.parametrize("deliver", [True, False], ids=["answer-lost", "request-lost"])
def test_an_end_is_recorded_once_when_the_connection_drops(proxied, deliver):
    url, proxy = proxied
    oracle = oracle_on(url)
    trial = oracle.create_trial("w")
    oracle.update_trial(trial.trial_id, {"loss": 2.0})
    trial.status = "COMPLETED"
    proxy.cut(b"UPDATE trials SET status", deliver=deliver)
    oracle.end_trial(trial)  # no TrialNotRunningError from its own landed write
    assert proxy.done.is_set()
    stored = oracle.project.trial(trial.trial_id)
    assert (stored.status, stored.score) == ("COMPLETED", 2.0)
    assert [t.to_status for t in oracle.project.transitions(trial_id=trial.trial_id)] == [
        "RUNNING", "COMPLETED"]
    oracle.close()


@pytest.mark.parametrize("deliver", [True, False], ids=["answer-lost", "request-lost"])
def test_a_decision_is_recorded_once_when_its_commit_is_cut(proxied, deliver):
    url, proxy = proxied
    oracle = oracle_on(url)
    proxy.cut(b"COMMIT", deliver=deliver)  # the decision's transaction
    trial = oracle.create_trial("w")
    assert proxy.done.is_set() and trial.status == "RUNNING"
    assert [t.trial_id for t in oracle.project.trials()] == [trial.trial_id]
    assert oracle.project.trial(trial.trial_id).values == trial.hyperparameters.values
    second = oracle.create_trial("v")
    assert second.trial_id != trial.trial_id and oracle.project.count() == 2
    oracle.close()


@pytest.mark.parametrize("deliver", [True, False], ids=["answer-lost", "request-lost"])
def test_what_a_script_declared_on_the_oracle_survives_a_cut_first_decision(proxied, deliver):
    # oracle.hyperparameters.Float(...) after the oracle was made (KerasTuner's way) was
    # stored in the first decision's transaction, and kept as stored in memory: cut and
    # made again, the decision read the stored space back without it, and the search ran
    # a trial of no values, then said it was finished
    url, proxy = proxied
    oracle = oracle_on(url)
    oracle.hyperparameters.Float("lr", 1e-4, 1e-1, sampling="log")
    proxy.cut(b"COMMIT", deliver=deliver)
    trial = oracle.create_trial("w")
    assert proxy.done.is_set() and trial.status == "RUNNING"
    assert set(trial.hyperparameters.values) == {"x", "lr"}
    assert [hp.name for hp in hpstore.Oracle.attach(url).hyperparameters.space] == ["x", "lr"]
    assert set(oracle.create_trial("v").hyperparameters.values) == {"x", "lr"}
    oracle.close()


@pytest.mark.parametrize("deliver", [True, False], ids=["answer-lost", "request-lost"])
def test_a_decision_made_ahead_is_recorded_once_when_its_round_trip_is_cut(proxied, deliver):
    # A lone worker's third trial is decided ahead and sent in one round trip (BEGIN, the
    # lock, the insert, COMMIT): cut there, the worker reconnects, finds out whether it
    # landed, and records it once.
    url, proxy = proxied
    oracle = oracle_on(url)
    for _ in range(2):
        trial = oracle.create_trial("w")
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        oracle.end_trial(trial)
    assert oracle._project._foreseen  # the next decision is made ahead
    proxy.cut(b"INSERT INTO trials", deliver=deliver)
    trial = oracle.create_trial("w")
    assert proxy.done.is_set() and trial.status == "RUNNING" and trial.trial_id == "02"
    assert oracle._project._foreseen  # recorded as made ahead, not made again
    stored = oracle.project.trials()
    assert [t.trial_id for t in stored] == ["00", "01", "02"]
    assert stored[2].values == trial.hyperparameters.values
    assert [t.to_status for t in oracle.project.transitions(trial_id="02")] == ["RUNNING"]
    oracle.close()


@pytest.mark.parametrize("deliver", [True, False], ids=["answer-lost", "request-lost"])
def test_a_decision_sent_with_the_numbers_near_is_recorded_once_when_cut(proxied, deliver):
    # Another worker takes the number a lone worker foresaw, twice: the second time the
    # lone worker's decision goes with the numbers near it (see
    # test_postgresql_deciding), and its round trip is cut. It finds out which of them
    # landed, if any, and records that one once.
    from _pg_oracles import another_worker

    url, proxy = proxied
    oracle, other = oracle_on(url), another_worker(oracle_on(url))

    def run(worker):
        trial = worker.create_trial("w" if worker is oracle else "v")
        worker.update_trial(trial.trial_id, {"loss": 1.0})
        worker.end_trial(trial)
        return trial

    for who in (oracle, oracle, oracle, other, oracle, other):
        run(who)
    assert [t.tuner_id for t in oracle.project.trials()] == ["w", "w", "w", "v", "w", "v"]
    proxy.cut(b"AS c(number", deliver=deliver)
    trial = oracle.create_trial("w")
    assert proxy.done.is_set() and trial.status == "RUNNING" and trial.trial_id == "06"
    assert oracle._project._foreseen  # recorded as made ahead, not made again
    stored = oracle.project.trials()
    assert [t.trial_id for t in stored] == [f"{n:02d}" for n in range(7)]
    assert stored[6].values == trial.hyperparameters.values
    assert [t.to_status for t in oracle.project.transitions(trial_id="06")] == ["RUNNING"]
    # the values any way of deciding gives number 6
    reference = oracle_on(admin.with_schema(server().url(), fresh_url().rsplit("%3D", 1)[1]))
    for _ in range(7):
        last = run(reference)
    assert last.hyperparameters.values == trial.hyperparameters.values
    for worker in (oracle, other, reference):
        worker.close()


def test_a_refused_decision_whose_answer_was_lost_never_takes_another_workers_trial(proxied):
    # A quick decision proposes values already run: its insert is refused, the COMMIT
    # lands, the answer is lost. While it reconnects another worker records the same
    # trial number. Looking for what landed must not find that worker's row: the decision
    # is made again, under its own number.
    from _stores import first_free, new_project

    url, proxy = proxied
    schema = url.rsplit("%3D", 1)[1]
    other = open_store(admin.with_schema(server().url(), schema))
    theirs = other.create_project(new_project())
    first = theirs.decide(first_free(theirs, range(5)), tuner_id="b0", session=other.session())
    store = open_store(url)
    project = store.open_project(store.find_project("p"))
    asked = store.db._committed

    def committed(xid):
        landed = asked(xid)
        theirs.decide(first_free(theirs, range(5)), tuner_id="b1", session=other.session())
        return landed

    store.db._committed = committed
    proxy.cut(b"INSERT INTO trials", deliver=True)
    mine = project.decide(first_free(project, range(5)), tuner_id="a", session=store.session(),
                          quick=True)
    assert proxy.done.is_set()
    rows = {t.trial_id: (t.key, t.tuner_id, t.values) for t in theirs.trials()}
    assert rows[mine.trial_id] == (mine.key, "a", mine.values)
    assert sorted(x["x"] for _, _, x in rows.values()) == [0, 1, 2]  # no values twice
    assert first.values == {"x": 0} and mine.values == {"x": 2} and mine.number == 2
    store.close()
    other.close()


def test_a_terminated_backend_is_replaced_between_steps():
    oracle = oracle_on(fresh_url())
    trial = oracle.create_trial("w")
    main = oracle.store.db.connect().info.backend_pid
    terminate([main])
    oracle.update_trial(trial.trial_id, {"loss": 1.0})  # reconnects once
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    assert oracle.store.db.connect().info.backend_pid != main
    assert oracle.project.counts_by_status() == {"COMPLETED": 1}
    oracle.close()


def test_a_connection_dropped_as_it_opens_is_made_again(monkeypatch):
    # the first statement of a new connection (reading the server's clock) let the
    # driver's own error through, where a connection lost is made again
    oracle = oracle_on(fresh_url())
    trial = oracle.create_trial("w")
    db = oracle.store.db
    opened = db.open_connection
    dropped = []

    def dropped_once(*args, **kwargs):
        conn = opened(*args, **kwargs)
        if not dropped:
            dropped.append(conn.info.backend_pid)
            terminate(dropped)
        return conn

    monkeypatch.setattr(db, "open_connection", dropped_once)
    main = db.connect().info.backend_pid
    terminate([main])
    oracle.update_trial(trial.trial_id, {"loss": 1.0})  # reconnects, twice
    assert dropped and db.connect().info.backend_pid not in (main, *dropped)
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    assert oracle.project.counts_by_status() == {"COMPLETED": 1}
    oracle.close()


def test_a_worker_whose_liveness_connection_drops_takes_its_lock_again():
    url = fresh_url()
    oracle = oracle_on(url)
    token = oracle.store.session()
    liveness = oracle.store._liveness._conn.info.backend_pid
    terminate([liveness])
    reader = hpstore.store.open_store(url, read_only=True)
    # the server releases it, then the worker's watcher takes the same lock again
    wait_until(lambda: liveness not in backend_pids("hpstore liveness"), DEADLINE,
               "the terminated backend's exit")
    wait_until(lambda: reader.is_alive(token), DEADLINE, "the lock taken again")
    assert oracle.store.session() == token
    # another oracle of the process shares the lock, now on another server session: it
    # was taken for a pooler's ("not held by the server session that took it")
    again = oracle_on(url)
    assert again.store.session() == token
    assert again.create_trial("again").status == "RUNNING"
    again.close()
    reader.close()
    oracle.close()


def test_a_trial_started_as_the_server_comes_back_waits_for_its_workers_lock():
    """A restart drops a worker's two connections. Its work may reconnect before its
    liveness thread has noticed the other: a trial it started then named a token whose lock
    the new server did not hold, and the next worker to ask handed the running trial back
    ("gone: Trial 046 is IDLE", now and then under load). Here the thread never notices
    by itself: the trial starts only once the lock is held again."""
    import multiprocessing as mp

    import _pgworkers

    ctx = mp.get_context("spawn")
    url = fresh_url()
    ready, info, go, outcome = ctx.Event(), ctx.Queue(), ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_pgworkers.blind_worker, args=(url, ready, info, go, outcome))
    proc.start()
    try:
        assert ready.wait(DEADLINE)
        found = server()
        assert found is not None
        found.restart("fast")
        go.set()
        started = info.get(timeout=DEADLINE)
        assert started is not None, outcome.get(timeout=DEADLINE)
        trial_id, token = started
        other = _pgworkers.oracle_on(url, 10)
        assert other.store.is_alive(token)  # its lock held on the new server
        fresh = other.create_trial("other")
        assert fresh.trial_id != trial_id  # the blind worker's trial was not handed back
        other.update_trial(fresh.trial_id, {"loss": 2.0})
        fresh.status = "COMPLETED"
        other.end_trial(fresh)
    finally:
        go.set()
    assert outcome.get(timeout=DEADLINE) == "finished"
    proc.join(DEADLINE)
    record = other.project.trial(trial_id)
    assert (record.status, record.run, record.interruptions) == ("COMPLETED", 1, 0)
    other.close()


def test_a_liveness_connection_the_server_refuses_to_make_again_is_said_at_once():
    # an administrator made the workers' role NOLOGIN (a password rotated, say) and ended
    # its idle connections: the worker waited its whole timeout for the lock, then asked
    # "Is the server up?" of a server that was up and had refused it
    from psycopg import sql

    from hpstore.errors import DatabaseError

    url = fresh_url()
    role = f"worker_{secrets.token_hex(4)}"
    name = url.rsplit("%3D", 1)[1]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    open_store(url).close()  # (the tables, made by their owner)
    with psycopg.connect(url, autocommit=True) as conn:
        for grant in ("GRANT USAGE ON SCHEMA {} TO {}",
                      "GRANT ALL ON ALL TABLES IN SCHEMA {} TO {}",
                      "GRANT ALL ON ALL SEQUENCES IN SCHEMA {} TO {}"):
            conn.execute(sql.SQL(grant).format(sql.Identifier(name), sql.Identifier(role)))
    parts = urlsplit(url)
    store = open_store(urlunsplit(parts._replace(
        netloc=f"{role}@{parts.netloc.split('@')[1]}")), timeout=30)
    try:
        store.session()
        liveness = store._liveness._conn.info.backend_pid
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(role)))
        terminate([liveness])
        wait_until(lambda: not store._liveness.holding, DEADLINE, "the lock's loss noticed")
        with pytest.raises(DatabaseError) as raised:
            store.session()
        said = str(raised.value)
        assert "refused a new connection" in said and "not permitted to log in" in said, said
        assert "Is the server up" not in said, said
    finally:
        store.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_server_still_out_of_reach_after_the_wait_is_a_server_unavailable_error(
        proxied, monkeypatch):
    # the README's promise: a step that may succeed later says so by its class (it was a
    # plain DatabaseError)
    from hpstore.store.postgresql import database

    url, proxy = proxied
    oracle = oracle_on(url)
    trial = oracle.create_trial("w")
    monkeypatch.setattr(database, "RECONNECT_WAIT", 0.5)
    proxy.cut(b"INSERT INTO observations", deliver=False)
    proxy.close()  # and no new connection gets through
    with pytest.raises(hpstore.ServerUnavailableError, match="could not reconnect"):
        oracle.update_trial(trial.trial_id, {"loss": 1.5})


def test_a_database_dropped_under_a_worker_is_a_refusal_said_at_once():
    # DROP DATABASE ... WITH (FORCE) by an administrator: the worker waited out the 30 s
    # of a server restart for a database that no wait brings back, then said "could not
    # reconnect within 30 s ... run again to resume"
    from psycopg import sql

    from hpstore.errors import DatabaseError, ServerUnavailableError

    url = fresh_database()
    oracle = oracle_on(url)
    trial = oracle.create_trial("w")
    with psycopg.connect(base_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(
            sql.Identifier(url.rsplit("/", 1)[1])))
    with pytest.raises(DatabaseError) as raised:
        oracle.update_trial(trial.trial_id, {"loss": 1.5})
    said = str(raised.value)
    assert not isinstance(raised.value, ServerUnavailableError), said
    assert "refused a new one" in said and "does not exist" in said, said
    assert "could not reconnect within" not in said, said
    oracle.close()


def test_watch_waits_out_a_server_down_longer_than_the_reconnect_wait(proxied, monkeypatch):
    # `hpstore watch URL` ended (exit 2) after 30 s of a server down, with a message for
    # workers ("Nothing of the step in progress was recorded twice; run again to resume")
    import io
    import threading

    from hpstore.cli import load_tool
    from hpstore.store.postgresql import database

    url, proxy = proxied
    direct = admin.with_schema(server().url(), url.rsplit("%3D", 1)[1])
    oracle = oracle_on(direct)
    trial = oracle.create_trial("w")  # the search runs: watch goes on
    monkeypatch.setattr(database, "RECONNECT_WAIT", 0.3)
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    watch = load_tool("watch").main
    ended: list[int] = []
    thread = threading.Thread(target=lambda: ended.append(watch([url, "--interval", "0.05"])),
                              daemon=True)
    thread.start()
    wait_until(lambda: "trials done 0/10" in out.getvalue(), DEADLINE, "the first view")
    proxy.down()
    wait_until(lambda: "Waiting for the server" in out.getvalue(), DEADLINE, "a waiting line")
    said = out.getvalue()
    assert "cannot be reached (the server is down or restarting)" in said
    assert "recorded twice" not in said and "run the command again" not in said
    proxy.up()
    oracle.update_trial(trial.trial_id, {"loss": 1.0})
    oracle.end_trial(trial)
    oracle.max_trials = 1  # finished: watch ends on its own
    thread.join(DEADLINE)
    assert ended == [0], out.getvalue()[-500:]
    assert "The search is finished" in out.getvalue()
    oracle.close()



def test_a_backend_terminated_before_a_pipelined_decision_leaves_no_driver_warning(caplog):
    # the decision's opening statements go in one pipeline: on a connection the server had
    # ended, psycopg logged "error ignored terminating <psycopg.Pipeline [BAD] ...>: the
    # connection is lost" to stderr (through logging's last resort) before hpstore
    # reconnected and went on, a raw driver line in a search's output
    oracle = oracle_on(fresh_url())
    try:
        first = oracle.create_trial("w")
        oracle.update_trial(first.trial_id, {"loss": 1.0})
        first.status = "COMPLETED"
        oracle.end_trial(first)
        mine = f"hpstore worker {socket.gethostname()}:{os.getpid()}"
        assert len(backend_pids(mine)) == 1
        terminate(backend_pids(mine))
        wait_until(lambda: not backend_pids(mine), 60, "the backend ending")
        with caplog.at_level(logging.WARNING, logger="psycopg"):
            second = oracle.create_trial("w")
        assert second.status == "RUNNING" and second.trial_id != first.trial_id
        assert [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")] == []
    finally:
        oracle.close()
