"""Schemas and databases of a PostgreSQL server, for tests and ``hpstore stress``: each
round or test gets a store of its own, and leaves nothing behind."""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from hpstore.errors import DatabaseError
from hpstore.store.postgresql.driver import (
    connect,
    explain,
    first_line,
    load_psycopg,
    redact,
    sqlstate,
)


def with_schema(url: str, schema: str) -> str:
    """``url`` with its search_path set to ``schema`` (replacing any options it had)."""
    parts = urlsplit(url)
    query = [q for q in parts.query.split("&") if q and not q.startswith("options=")]
    query.append("options=" + quote(f"-csearch_path={schema}", safe=""))
    return urlunsplit(parts._replace(query="&".join(query)))


def with_database(url: str, database: str) -> str:
    """``url`` naming another database of the same server."""
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


def _admin(url: str) -> Any:
    return connect(load_psycopg(url), url, redact(url))


def _sql(url: str) -> Any:
    """psycopg's sql module, or the error that names the extra to install.

    Raises:
        EngineUnavailableError: psycopg 3 is not installed.
    """
    load_psycopg(url)
    from psycopg import sql

    return sql


def _name(text: str) -> Any:
    from psycopg import sql

    return sql.Identifier(text)


def create_schema(url: str, schema: str) -> str:
    """Create ``schema`` in the database of ``url``; the URL of a store in it.

    Raises:
        DatabaseError: the server refused it (a role that may not create schemas there,
            as a worker's role granted only the rows it writes).
        EngineUnavailableError: psycopg 3 is not installed.
    """
    psycopg = load_psycopg(url)
    from psycopg import sql

    with contextlib.closing(_admin(url)) as conn:
        try:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(_name(schema)))
        except psycopg.Error as exc:
            if sqlstate(exc) != "42501":  # (insufficient_privilege)
                raise explain(exc, redact(url)) from None
            raise DatabaseError(
                f"The role connecting to {redact(url)} may not create a schema there "
                f"({first_line(exc)}), and each round of hpstore stress runs in a schema "
                "of its own, dropped after it. Grant it (GRANT CREATE ON DATABASE name TO "
                "role), or give --database the URL of a role that may.") from None
    return with_schema(url, schema)


def drop_schema(url: str, schema: str) -> None:
    """Drop ``schema`` and everything in it."""
    sql = _sql(url)

    with contextlib.closing(_admin(url)) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(_name(schema)))


def create_database(url: str, database: str) -> str:
    """Create an empty database on the server of ``url``; its URL."""
    sql = _sql(url)

    with contextlib.closing(_admin(url)) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(_name(database)))
    return with_database(url, database)


def drop_database(url: str, database: str) -> None:
    """Drop a database of the server of ``url`` (its connections are ended first)."""
    sql = _sql(url)

    with contextlib.closing(_admin(url)) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(_name(database)))
