"""The PostgreSQL server the tests use, and a fresh store on it for each test.

By default a throwaway server of the test session's own (initdb + pg_ctl in a temporary
folder, on a free port; see hpstore.store.postgresql.throwaway), started on first use and
stopped when the session ends. ``HPSTORE_TEST_POSTGRESQL=postgresql://...`` points the
tests at a server of your own instead: each test then gets a schema of its own there, and
the tests that restart the server are skipped.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from hpstore.store.postgresql import admin
from hpstore.store.postgresql.throwaway import FAST, Server, free_port

ENV = "HPSTORE_TEST_POSTGRESQL"
_lock = threading.Lock()
_server: Server | None = None
_made: list[tuple[str, str, str]] = []  # (kind, url, name) to drop at the end


def server() -> Server | None:
    """The session's throwaway server (None when the tests use a server of your own)."""
    global _server
    if os.environ.get(ENV):
        return None
    with _lock:
        if _server is None:
            _server = Server(FAST).start()
            atexit.register(stop)
        return _server


def base_url() -> str:
    """The URL of the database the tests' schemas go into."""
    given = os.environ.get(ENV)
    if given:
        return given
    found = server()
    assert found is not None
    return found.url()


def fresh_url(prefix: str = "t") -> str:
    """The URL of a new, empty schema: a store of its own for one test."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    url = admin.create_schema(base_url(), name)
    _made.append(("schema", base_url(), name))
    return url


def fresh_database(prefix: str = "db") -> str:
    """The URL of a new, empty database (public schema) on the tests' server."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    url = admin.create_database(base_url(), name)
    _made.append(("database", base_url(), name))
    return url


def stop() -> None:
    """Drop what the tests made on a server of your own; stop the throwaway one."""
    global _server
    with _lock:
        if _server is not None:
            _server.stop()
            _server = None
            _made.clear()
            return
    while _made:
        kind, url, name = _made.pop()
        with contextlib.suppress(Exception):  # a server gone meanwhile keeps what it held
            (admin.drop_schema if kind == "schema" else admin.drop_database)(url, name)


def wait_until(condition: Any, timeout: float, what: str) -> None:
    """Poll ``condition()`` until it is true (the server reacting to a death), or fail."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.01)  # polling the server's state, with a deadline


def backend_pids(application_part: str) -> list[int]:
    """The server backends whose application name holds ``application_part`` (an hpstore
    process is named ``hpstore <role> <host>:<pid>``)."""
    import psycopg

    with psycopg.connect(base_url(), autocommit=True) as conn:
        return [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name LIKE %s",
            (f"%{application_part}%",))]


def terminate(pids: list[int]) -> None:
    """pg_terminate_backend each backend (what the server does to a vanished client)."""
    import psycopg

    with psycopg.connect(base_url(), autocommit=True) as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def standby_of(primary: Server, before_start: Callable[[Server], None] | None = None,
               **settings: str) -> Server:
    """A standby streaming from ``primary`` (pg_basebackup -R), started, with ``settings``
    beside the throwaway servers' own; ``before_start(standby)`` runs once its folder is
    the server user's. Stopped again if anything on the way fails (or skips)."""
    standby = Server({**FAST, **settings})
    try:
        standby.bin, standby.user = primary.bin, primary.user
        if standby.user is not None:
            os.chmod(standby.folder, 0o755)
            os.chown(standby.folder, os.stat(primary.folder).st_uid, -1)
        if before_start is not None:
            before_start(standby)
        standby._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U",
                     "postgres", "-D", str(standby.data), "-R", "-X", "stream")
        standby.port = free_port()
        standby._pg_ctl("start")
        standby.started = True
    except BaseException:
        standby.stop()
        raise
    return standby


@contextlib.contextmanager
def primary_and_standby(before_start: Callable[[Server], None] | None = None,
                        **settings: str) -> Iterator[tuple[Server, Server]]:
    """A throwaway primary and a standby of it (see :func:`standby_of`), both stopped
    and removed at the end."""
    primary = Server(FAST).start()
    try:
        standby = standby_of(primary, before_start, **settings)
        try:
            yield primary, standby
        finally:
            standby.stop()
    finally:
        primary.stop()


def complete(oracle: Any, count: int, tuner: str = "w") -> None:
    """Run ``count`` trials of ``oracle`` to COMPLETED (fewer when the search ends first),
    each reporting the loss (x - 3)^2 + y at step 0."""
    for _ in range(count):
        trial = oracle.create_trial(tuner)
        if trial.status != "RUNNING":
            return
        v = trial.hyperparameters.values
        oracle.update_trial(trial.trial_id, {"loss": (v["x"] - 3) ** 2 + v["y"]}, step=0)
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
