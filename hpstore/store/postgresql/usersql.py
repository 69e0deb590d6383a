"""What people ask of a PostgreSQL store directly: ``hpstore sql`` and ``hpstore check``.

``hpstore sql`` runs one statement a person wrote in a ``READ ONLY`` transaction (on a
connection whose every transaction is read-only), as a prepared statement, so it is one
statement and cannot end the transaction to run another; the transaction is rolled back
after it. What it may read is what the role in the URL may read.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from typing import Any

from hpstore.errors import HpStoreError, QueryTimeoutError
from hpstore.store.decode import damaged
from hpstore.store.postgresql import liveness, schema
from hpstore.store.postgresql.driver import first_line
from hpstore.store.statements import (
    QUERY_KEYWORDS,
    first_words,
    holds_nothing,
    leading_keyword,
)


@contextlib.contextmanager
def run_user_sql(db: Any, query: str, timeout: float | None
                 ) -> Iterator[tuple[list[str], Iterator[Any]]]:
    """One statement a person wrote, read-only: its columns, and its rows streamed from the
    server as they are iterated (a few in memory at a time). The transaction, and the
    statement's time limit, last until the block ends.

    Raises (also from iterating the rows):
        HpStoreError: a statement that is not a query (refused before the server sees it),
            a write, several statements, or anything the server refuses; said in words.
        QueryTimeoutError: it ran past ``timeout`` seconds.
        KeyboardInterrupt: Ctrl-C stopped it (the server cancels it).
        HpStoreError: the server cancelled it for another reason (an administrator).
    """
    keyword = leading_keyword(query)
    if keyword not in QUERY_KEYWORDS:
        # Refused before it reaches the server: a read-only transaction still runs COPY to
        # a server file or program, DO, SET, LISTEN...
        if holds_nothing(query):
            raise HpStoreError("The query holds no statement (only comments?): give one SQL "
                               "statement, such as \"SELECT * FROM trial_overview\".")
        what = keyword.upper() if keyword else repr(first_words(query))
        raise HpStoreError(
            f"hpstore sql runs one query that reads ({', '.join(QUERY_KEYWORDS).upper()}), "
            f"not {what}; nothing was sent to the server.")
    psycopg = db.psycopg
    conn = db.connect()
    millis = 0 if not timeout else max(1, int(timeout * 1000))
    rows = None
    try:
        conn.execute("BEGIN READ ONLY")
        # psycopg reads dates, times and intervals only in ISO DateStyle and the postgres
        # IntervalStyle: a role's or database's 'SQL, DMY' (or a URL's) made any query
        # returning a timestamp a raw NotImplementedError; the DMY/MDY order, which only
        # reads the query's own date literals, is kept
        conn.execute("SELECT set_config('statement_timeout', %s, true), set_config("
                     "'DateStyle', 'ISO', true), set_config('IntervalStyle', 'postgres', "
                     "true)", (str(millis),))
        cursor = conn.cursor()
        # JSON comes back as the text stored, as from a file (not parsed, written again)
        for name in ("json", "jsonb"):
            cursor.adapters.register_loader(name, psycopg.types.string.TextLoader)
        # streamed through the extended protocol: one statement, never a script
        rows = cursor.stream(query, size=_CHUNK if _chunked(psycopg) else 1)
        first = next(rows, None)  # (the columns are known once the first rows came)
        columns = [c.name for c in cursor.description or []]
        if first is None and cursor.description is None:
            columns = _described(psycopg, conn, query)  # (a stream of none keeps none)
        yield columns, itertools.chain([] if first is None else [first], rows)
    except psycopg.Error as exc:
        state = getattr(exc, "sqlstate", None) or ""
        text = first_line(exc)
        if state == "57014" and millis:
            raise QueryTimeoutError(
                f"The query ran longer than {timeout:g} s and was stopped. Give --timeout "
                "SECONDS for a longer limit (0: none).") from None
        if state == "57014":  # (Ctrl-C here is a KeyboardInterrupt psycopg raises itself)
            raise HpStoreError("The server cancelled the query (pg_cancel_backend, by an "
                               "administrator or a tool); nothing was changed. Run it again."
                               ) from None
        if state == "25006":
            raise HpStoreError("hpstore sql is read-only: it runs SELECT queries and never "
                               "changes the search. To change a search: hpstore enqueue, "
                               "retire, restore or note, or the library.") from None
        if state == "42601" and "multiple commands" in text:
            raise HpStoreError("hpstore sql runs one statement at a time; give one.") from None
        raise HpStoreError(f"PostgreSQL could not run the query: {text.rstrip('.')}.") from None
    finally:
        with contextlib.suppress(Exception):
            if rows is not None:  # rows not read (a closed pipe): the server cancels them
                rows.close()  # (and the connection is free for the ROLLBACK)
        with contextlib.suppress(Exception):
            conn.execute("ROLLBACK")


def _described(psycopg: Any, conn: Any, query: str) -> list[str]:
    """The columns of ``query`` as the server describes it, parsed again as the unnamed
    statement and not run: psycopg's stream of a result of no rows drops its description,
    and a table or CSV of no rows still has its titles, as from a file. [] if it cannot."""
    try:
        encoding = conn.info.encoding
        parsed = conn.pgconn.prepare(b"", query.encode(encoding))
        described = conn.pgconn.describe_prepared(b"")
        done = psycopg.pq.ExecStatus.COMMAND_OK
        if parsed.status != done or described.status != done:
            return []
        return [described.fname(i).decode(encoding) for i in range(described.nfields)]
    except Exception:  # (the query ran: only its titles are missing)
        return []


#: rows the server sends in one message, where libpq can (17 and later); else one
_CHUNK = 500


def _chunked(psycopg: Any) -> bool:
    try:
        return bool(psycopg.capabilities.has_stream_chunked())
    except AttributeError:  # (psycopg before 3.2)
        return False


# The first value hpstore never writes that the schema's types and checks let through: a
# JSON column holding no object, a status the log's table (no CHECK) does not know.
_CONTENTS = (
    "SELECT 'projects.oracle_config', oracle_config::text FROM projects "
    "WHERE json_typeof(oracle_config) <> 'object' "
    "UNION ALL SELECT 'projects.objective', objective::text FROM projects "
    "WHERE json_typeof(objective) <> 'object' "
    "UNION ALL SELECT 'hyperparameters.config', config::text FROM hyperparameters "
    "WHERE json_typeof(config) <> 'object' "
    "UNION ALL SELECT 'trials.hp_values', hp_values::text FROM trials "
    "WHERE json_typeof(hp_values) <> 'object' "
    "UNION ALL SELECT 'transitions.to_status', to_status FROM transitions "
    "WHERE to_status NOT IN ('RUNNING', 'IDLE', 'INVALID', 'STOPPED', 'COMPLETED', 'FAILED') "
    "UNION ALL SELECT 'transitions.from_status', from_status FROM transitions "
    "WHERE from_status NOT IN ('RUNNING', 'IDLE', 'INVALID', 'STOPPED', 'COMPLETED', "
    "'FAILED') LIMIT 1")


def health(db: Any) -> list[tuple[str, bool, str]]:
    """(what, fine, what it says) of the server and the schema, for ``hpstore check``."""
    version_text, database, user, connections, limit = db.query(
        "SELECT version(), current_database(), current_user, (SELECT count(*) FROM "
        "pg_stat_activity WHERE datname IS NOT NULL), current_setting('max_connections')::int"
    )[0]
    stored, _ = schema.inspect(db)
    if db.standby:  # the primary's liveness locks are not replicated
        workers_said = (
            f"not seen on a hot standby (a worker's liveness lock is held on the primary "
            f"only): {liveness.running_sessions(db)} worker session(s) have a trial running "
            "here, each taken for live; run hpstore check on the primary to tell the live "
            "workers from the dead")
    else:
        workers_said = f"{len(liveness.live_keys(db))} (each holds 2 connections)"
    findings = [
        ("server", True, f"{version_text.split(',')[0]}, database {database!r} as {user!r}, "
                         f"schema {db.schema!r}"),
        ("schema version", True, f"{stored} (this hpstore: {schema.SCHEMA_VERSION})"
         + ("" if stored == schema.SCHEMA_VERSION
            else f"; {schema.upgrade_advice(db)}")),
        ("live workers", True, workers_said),
    ]
    room = limit - connections
    findings.append(("connections", room > 0,
                     f"{connections} of max_connections {limit} in use"
                     + ("" if room > 0 else ": the server is full; raise max_connections")))
    found = db.query(_CONTENTS) if stored == schema.SCHEMA_VERSION else []
    findings.append(("contents", not found, "every value as hpstore writes it" if not found
                     else str(damaged(found[0][0], found[0][1])).replace(
                         "The search's", "The schema's", 1)))
    return findings
