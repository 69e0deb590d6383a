"""A server that takes no writes: a hot standby (a streaming replica) read by the tools
while its primary runs a search, and a database whose every transaction is read-only."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import psycopg
import pytest
from _postgres import ENV, fresh_database, primary_and_standby, server, wait_until
from _workers import open_oracle

from hpstore.cli import main as cli
from hpstore.errors import ReadOnlyDatabaseError
from hpstore.store import open_store

DEADLINE = 60.0

pytestmark = pytest.mark.skipif(server() is None, reason=f"starts servers of its own ({ENV} "
                                "is set)")

# A worker on the primary that starts a trial and keeps it running until its stdin closes.
_WORKER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from _workers import open_oracle
    oracle = open_oracle({url!r}, max_trials=10)
    trial = oracle.create_trial("holder")
    print(trial.trial_id, flush=True)
    sys.stdin.read()
""")


@pytest.fixture(scope="module")
def pair():
    with primary_and_standby() as servers:
        yield servers


def _replicated(url: str, trial_id: str) -> bool:
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            return bool(conn.execute("SELECT 1 FROM trials WHERE trial_id = %s AND status = "
                                     "'RUNNING'", (trial_id,)).fetchall())
    except psycopg.Error:  # the tables not replicated yet
        return False


def test_the_tools_on_a_standby_never_call_a_primarys_live_worker_gone(pair, capsys):
    # The primary's liveness locks are not replicated: on the standby every running trial
    # read as its worker's death ("1 interrupted", "its worker is gone"), while it ran
    primary, standby = pair
    tests = os.path.dirname(os.path.abspath(__file__))
    worker = subprocess.Popen([sys.executable, "-c", _WORKER.format(tests=tests,
                                                                    url=primary.url())],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        trial_id = worker.stdout.readline().strip()
        assert trial_id, "the worker started no trial"
        wait_until(lambda: _replicated(standby.url(), trial_id), DEADLINE,
                   "the running trial reaching the standby")
        assert cli(["check", standby.url()]) == 0
        out = capsys.readouterr().out
        assert "0 interrupted" in out, out
        assert "is gone" not in out, out
        assert "live workers: not seen on a hot standby" in out, out
        assert cli(["watch", standby.url(), "--once"]) == 0
        out = capsys.readouterr().out
        assert f"trial {trial_id}" in out and "worker is gone" not in out, out
        store = open_store(standby.url(), read_only=True)
        try:
            assert store.live_workers() == 1
        finally:
            store.close()
        # the primary, which holds the lock, says the same
        assert cli(["check", primary.url()]) == 0
        out = capsys.readouterr().out
        assert "live workers: 1 " in out and "1 trial(s) running in live workers" in out, out
    finally:
        worker.stdin.close()
        worker.wait(timeout=DEADLINE)


def test_a_worker_given_a_standby_is_told_to_use_the_primary(pair):
    _, standby = pair
    with pytest.raises(ReadOnlyDatabaseError) as raised:
        open_oracle(standby.url(), max_trials=3)
    said = str(raised.value)
    assert "hot standby" in said and "primary" in said, said
    assert "target_session_attrs=read-write" in said, said


def refused_write(url: str) -> str:
    """What a worker asking for a trial on ``url`` is told when the server refuses writes."""
    with pytest.raises(ReadOnlyDatabaseError) as raised:
        open_oracle(url, max_trials=3).create_trial("w")
    return str(raised.value)


def test_a_database_read_only_by_default_is_named_to_a_worker():
    url = fresh_database()
    open_oracle(url, max_trials=3).close()
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = "
                                     "on").format(psycopg.sql.Identifier(name)))
    said = refused_write(url)
    assert "default_transaction_read_only is on" in said, said
    assert "RESET default_transaction_read_only" in said, said


def test_a_server_made_read_only_for_everyone_is_named_to_a_worker_as_such():
    # an administrator froze writes on the whole server (ALTER SYSTEM, a maintenance
    # window): the worker was told the role or the database sets it, and to ALTER ROLE
    # ... RESET, which finds nothing to reset
    from hpstore.store.postgresql.throwaway import FAST, Server

    with Server(FAST) as own:
        url = own.url()
        open_oracle(url, max_trials=3).close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET default_transaction_read_only = on")
            conn.execute("SELECT pg_reload_conf()")

        def reloaded() -> bool:  # (the postmaster reads its configuration on its own time)
            with psycopg.connect(url, autocommit=True) as conn:
                return conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"

        wait_until(reloaded, DEADLINE, "the server reading its configuration again")
        said = refused_write(url)
        assert "every role and database" in said, said
        assert "ALTER SYSTEM RESET default_transaction_read_only" in said, said
        assert "ALTER ROLE" not in said, said


def test_a_reader_whose_standby_is_promoted_sees_liveness_again(pair):
    # A failover promotes the standby: a dashboard or watch reading it, once its connection
    # is made again, must ask the (now primary) server whether workers live, not go on
    # calling every worker alive. (Last in this file: the pair's standby is a primary after.)
    primary, standby = pair
    open_oracle(primary.url(), max_trials=3).close()
    wait_until(lambda: _has_tables(standby.url()), DEADLINE, "the schema reaching the standby")
    store = open_store(standby.url(), read_only=True)
    try:
        assert store.projects() and store.db.standby
        with psycopg.connect(standby.url(), autocommit=True) as admin:
            assert admin.execute("SELECT pg_promote(true, 60)").fetchone()[0]
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid "
                          "<> pg_backend_pid() AND backend_type = 'client backend'")
        assert store.projects()  # (its connection made again)
        assert not store.db.standby
    finally:
        store.close()


def _has_tables(url: str) -> bool:
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            return bool(conn.execute("SELECT 1 FROM projects").fetchall())
    except psycopg.Error:
        return False
