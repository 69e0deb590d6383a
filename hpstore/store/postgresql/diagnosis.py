"""What a failure means, asked of the server itself.

A lock timeout or a write refused as read-only says little by its SQLSTATE alone: who holds
the lock, and why the session is read-only (a hot standby, or a role made read-only), are
what a user needs to act; so is whether a table hpstore's statement did not find went with
its whole schema. A connection lost while its COMMIT was on the way leaves the
outcome unknown to the client: the server knows it by the transaction's id. Each is learnt
with autocommit reads through ``query`` (:meth:`database.Database.query`) on a connection
other than the failed one; when a read about a refusal fails too, the message says what it
can without it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from hpstore.errors import DatabaseError, ForeignSchemaError, ReadOnlyDatabaseError
from hpstore.store.postgresql.driver import schema_changed

Query = Callable[..., list[tuple[Any, ...]]]


#: where a setting of default_transaction_read_only came from (pg_settings.source): the
#: server's own configuration, for every role and database, not one ALTER ROLE can undo
_SERVER_WIDE = ("configuration file", "command line", "environment variable")


def why_read_only(query: Query, location: str, text: str,
                  failures: tuple[type[BaseException], ...]) -> ReadOnlyDatabaseError:
    """A write the server refused as read-only (``text``, the server's words), with the
    reason: the server is a hot standby, or the role, the database or the server's own
    configuration makes every transaction read-only (default_transaction_read_only), as a
    reporting role has. ``failures`` are the errors of the look-up that leave the reason
    unknown."""
    try:
        standby, default, source = query(
            "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only'), "
            "(SELECT source FROM pg_settings WHERE name = 'default_transaction_read_only')"
        )[0]
    except failures:
        standby, default, source = None, None, None
    if standby:
        return ReadOnlyDatabaseError(
            f"{location} is a hot standby (a replica in recovery), where nothing can "
            f"be written ({text}). Give the workers, and the commands that change a search, "
            "the primary server's URL (with several hosts in the URL, add "
            "target_session_attrs=read-write); the commands that only read (hpstore "
            "summary, watch, check, sql, report ...) may read the standby.")
    if default == "on" and source in _SERVER_WIDE:
        # (made read-only for every role and database: told to reset a role's setting,
        # an administrator would find none to reset)
        return ReadOnlyDatabaseError(
            f"{location}: the server's configuration makes every transaction read-only, for "
            f"every role and database (default_transaction_read_only is on in its "
            f"{source}), so nothing can be written ({text}). Ask the server's administrator "
            "to turn it off (ALTER SYSTEM RESET default_transaction_read_only, or "
            "postgresql.conf, then SELECT pg_reload_conf()), or add "
            "options=-cdefault_transaction_read_only%3Doff to the URL's parameters.")
    if default == "on":
        return ReadOnlyDatabaseError(
            f"{location}: the server makes every transaction of this role read-only "
            f"(default_transaction_read_only is on for the role or the database), so "
            f"nothing can be written ({text}). Connect as a role that may write, turn it "
            "off (ALTER ROLE name RESET default_transaction_read_only), or add "
            "options=-cdefault_transaction_read_only%3Doff to the URL's parameters.")
    return ReadOnlyDatabaseError(
        f"{location} refused a write as read-only ({text}): the server is a hot "
        "standby, or default_transaction_read_only is on for the role, the database or the "
        "server. Give the workers the primary server's URL, as a role that may write.")


#: table locks that hold up a statement of hpstore's: every mode from SHARE up conflicts
#: with the writes (ROW EXCLUSIVE), ACCESS EXCLUSIVE with every read too
_BLOCKING_MODES = ["ShareLock", "ShareRowExclusiveLock", "ExclusiveLock",
                   "AccessExclusiveLock"]


# the granted locks of other backends on tables of a schema (%s) named in a list (%s)
_ON_TABLES = (
    ", l.mode, c.relname::text FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = "
    "l.pid JOIN pg_class AS c ON c.oid = l.relation JOIN pg_namespace AS n ON n.oid = "
    "c.relnamespace WHERE l.locktype = 'relation' AND l.granted AND l.database = (SELECT oid "
    "FROM pg_database WHERE datname = current_database()) AND n.nspname = %s AND c.relname = "
    "ANY(%s) AND l.pid <> pg_backend_pid()")


def lock_holders(query: Query, keys: Sequence[int], schema: str = "",
                 tables: Sequence[str] = ()) -> str:
    """Who holds hpstore's advisory locks of classes ``keys`` on the server now, or else a
    lock on one of ``tables`` of ``schema`` that holds its statements up (LOCK TABLE, VACUUM
    FULL, ALTER TABLE), for a lock timeout's message ("" when that cannot be learnt)."""
    activity = ("SELECT a.pid, a.application_name, a.state, "
                "extract(epoch FROM now() - a.state_change)::int")
    try:
        found = query(
            f"{activity} FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
            "AND l.classid::bigint = ANY(%s) AND l.pid <> pg_backend_pid()",
            (list(keys),))
        tabled = [] if found or not tables else query(
            f"{activity}{_ON_TABLES} AND l.mode = ANY(%s) ORDER BY a.pid",
            (schema, list(tables), _BLOCKING_MODES))
        # else a session left open in a transaction that changed or locked rows of the
        # search (an UPDATE, a SELECT ... FOR UPDATE typed in psql): the statement waited
        # on a row, a lock pg_locks shows only as the holder's transaction, which the
        # cancelled statement no longer waits on; its lock on the table names it
        rowed = [] if found or tabled or not tables else query(
            f"{activity}{_ON_TABLES} AND l.mode IN ('RowExclusiveLock', 'RowShareLock') AND "
            "a.state LIKE 'idle in transaction%%' ORDER BY a.pid", (schema, list(tables)))
    except DatabaseError:
        return ""
    if rowed:
        said = "; ".join(f"{_backend(pid, app, state, seconds)} with {mode} on {table}"
                         for pid, app, state, seconds, mode, table in rowed[:3])
        return (f"Held, it seems, by {said}: a session left open in a transaction that "
                "changed or locked rows of the search (an UPDATE or SELECT ... FOR UPDATE in "
                "psql) holds up every worker that needs those rows until it ends. End it "
                "there (COMMIT or ROLLBACK), or with SELECT pg_terminate_backend(pid); then "
                "run again to resume.")
    if tabled:
        # (not a worker: an administrator's statement, or a session left open in a tool)
        said = "; ".join(f"{_backend(pid, app, state, seconds)} with {mode} on {table}"
                         for pid, app, state, seconds, mode, table in tabled[:3])
        return (f"Held by {said}: a table lock (LOCK TABLE, VACUUM FULL, ALTER TABLE, "
                "REINDEX) holds every worker up until its transaction ends. Let it end, or "
                "end it with SELECT pg_terminate_backend(pid); then run again to resume.")
    if not found:
        return "Nobody holds it now: run again."
    said = "; ".join(_backend(*row) for row in found[:3])
    return (f"Held by {said}. A stopped worker (Ctrl-Z, a debugger) holds the others up: "
            "resume it (kill -CONT) or stop it; a stuck backend can be ended with "
            "SELECT pg_terminate_backend(pid).")


def _backend(pid: int, app: str | None, state: str | None, seconds: int | None) -> str:
    """A backend as a lock timeout names it. (Another role's state and times are hidden
    from a role without pg_read_all_stats: its name and pid are what it may see.)"""
    name = app or "no application name"
    return (f"backend {pid} ({name}, {state} for {seconds} s)" if state is not None
            else f"backend {pid} ({name})")


def committed(query: Query, location: str, xid: int, wait: float) -> bool:
    """Whether transaction ``xid``, whose COMMIT was sent on a connection since lost,
    committed. One still in progress belongs to a backend that has not noticed yet (the
    network failed, not the server): it is ended, and its rollback waited for, up to
    ``wait`` seconds.

    Raises:
        DatabaseError: the outcome could not be learnt within ``wait`` seconds.
    """
    deadline = time.monotonic() + wait
    while True:
        status = query("SELECT txid_status(%s)", (xid,))[0][0]
        if status != "in progress":
            return bool(status == "committed")
        with contextlib.suppress(DatabaseError):
            query("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = "
                  "'transactionid' AND mode = 'ExclusiveLock' AND granted AND "
                  "transactionid::text::bigint = %s", (xid % 2**32,))
        if time.monotonic() >= deadline:
            raise DatabaseError(
                f"Lost the connection to {location} while committing, and the server "
                f"could not say within {wait:g} s whether the commit landed. Look at "
                "the search with `hpstore history` before running again.")
        time.sleep(0.05)  # the old backend rolling back


def schema_gone(query: Query, location: str, schema: str, why: str) -> ForeignSchemaError:
    """The refusal of a statement of hpstore's naming an object that is not there: the
    opening check found the schema whole, so someone dropped or renamed the schema, or
    one of its tables or columns, by hand (with the worker running, or since)."""
    try:
        here = bool(query("SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = %s)",
                          (schema,))[0][0])
    except DatabaseError:
        here = True  # (the question failed too: say what is sure)
    if not here:
        return ForeignSchemaError(
            f"The schema {schema!r} of {location} is gone ({why}): it was dropped or "
            "renamed while this process used it. Nothing of the failed step was recorded; "
            "rename it back (ALTER SCHEMA ... RENAME TO ...) and run again to resume, or "
            "restore it from a backup.")
    return schema_changed(f"The schema {schema!r} of {location}", why)
