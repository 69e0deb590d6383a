"""A PostgreSQL database (one schema of it) as a store: the contract's Store.

Many machines share it: each worker process holds one connection for its work and one idle
connection for its liveness lock. One database may hold many projects, as one file does;
a schema other than public is chosen in the URL (``?options=-csearch_path%3Dname``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

from hpstore.errors import DatabaseError, HpStoreError, NoSearchYetError
from hpstore.store.postgresql import liveness, names, schema
from hpstore.store.postgresql.database import Database
from hpstore.store.postgresql.project import (
    PostgresProject,
    all_projects,
    find_project,
    insert_project,
)
from hpstore.store.postgresql.usersql import health, run_user_sql
from hpstore.store.records import NewProject, ProjectRecord
from hpstore.store.rows import check_state_document, malformed

# Liveness locks inherited through fork: kept alive here, never used or closed by the child.
_ORPHANS: list[Any] = []

# Whether a trial runs under a liveness token: project by project, each an index probe of
# its running trials (no index leads with the session)
_RUNS_UNDER = ("SELECT EXISTS (SELECT 1 FROM projects AS p CROSS JOIN LATERAL (SELECT 1 "
               "FROM trials AS t WHERE t.project_id = p.project_id AND t.status = 'RUNNING' "
               "AND t.session = %s LIMIT 1) AS r)")


class PostgresStore:
    """One PostgreSQL database (schema); see :class:`hpstore.store.contract.Store`.

    Args:
        url: a ``postgresql://`` (or ``postgres://``) libpq URL.
        read_only: open it to read only (the tools): nothing is created or written, and a
            schema without hpstore's tables is an error instead of being set up.
        timeout: seconds a lock is waited for before LockTimeoutError.
        durability: "normal" (synchronous_commit=off: a worker killed loses nothing it
            committed; a crash of the server or its machine may lose the commits of its
            last moments, at most about 0.6 s of them, and never corrupts anything: the
            promise SQLite's "normal" makes for a file) or "full" (synchronous_commit=on:
            each commit is on the server's disk before it returns; slower).
        check: False for a reader that looks at the schema itself (``hpstore check``,
            ``hpstore sql``): a schema of an older hpstore whose tables are today's (see
            schema.SAME_TABLES_SINCE) is opened as it is, where other readers are asked
            to have a worker upgrade it first. (The server keeps JSON
            columns valid itself: there are no contents to check.)

    Raises:
        EngineUnavailableError: psycopg is not installed.
        DatabaseError and its subclasses: the server cannot be reached, the schema is
            another application's or a newer hpstore's, or (read-only) holds no search.
        ValueError: an unknown durability.
    """

    memory = False

    def __init__(self, url: str, *, read_only: bool = False, timeout: float = 60.0,
                 durability: str = "normal", check: bool = True) -> None:
        if durability not in ("normal", "full"):
            raise ValueError(f"`durability` must be one of ['full', 'normal'], received "
                             f"{durability!r}.")
        self.read_only = read_only
        settings = (f"-c synchronous_commit={'on' if durability == 'full' else 'off'}",)
        self.db = Database(url, read_only=read_only, timeout=timeout, settings=settings)
        # the schema too, when not the default: two schemas of one database are two stores
        self.location = (self.db.location if self.db.schema == "public"
                         else f"{self.db.location} (schema {self.db.schema})")
        self.path = None
        self.holder = "schema"
        self._liveness: liveness.Liveness | None = None
        try:
            if read_only:
                version, _ = schema.inspect(self.db)
                if version == 0:
                    raise NoSearchYetError(
                        f"{self.db.location} holds no hpstore search (schema {self.db.schema!r} "
                        "has no hpstore tables yet).")
                if version < schema.SAME_VIEWS_SINCE and (
                        check or version < schema.SAME_TABLES_SINCE):
                    # a reader writes nothing, the upgrade included: a worker makes it
                    raise DatabaseError(
                        f"The schema {self.db.schema!r} of {self.db.location} was written by an "
                        f"older hpstore (schema version {version}; this one reads version "
                        f"{schema.SCHEMA_VERSION}). To read it, "
                        f"{schema.upgrade_advice(self.db)}, then run this again.")
            else:
                schema.migrate(self.db)
        except BaseException:
            self.db.close()
            raise

    def unwritable(self) -> str | None:
        """None: workers write through the server, whatever this reader's own role or
        server (a hot standby's readers are told so where they read)."""
        return None

    def identity(self) -> tuple[Any, ...]:
        """The server's cluster (its system identifier, or where it listens and since
        when for a role that may not read it), the database and the schema."""
        found = self.db.query(
            "SELECT (SELECT oid FROM pg_database WHERE datname = current_database()), "
            "current_schema(), pg_postmaster_start_time()::text, inet_server_port()")
        database, schema, started, port = found[0]
        try:
            cluster = self.db.query("SELECT system_identifier FROM pg_control_system()")[0][0]
        except DatabaseError:  # (a privilege revoked)
            cluster = (started, port)
        return ("postgresql", cluster, int(database), schema)

    def projects(self) -> list[ProjectRecord]:
        return all_projects(self.db)

    def find_project(self, name: str) -> ProjectRecord | None:
        return find_project(self.db, name)

    def check_new(self, new: NewProject, state: Mapping[str, Any] | None = None) -> None:
        """Refuse a project (with its ``get_state()`` document) holding a name longer than
        the indexes take (:data:`hpstore.store.postgresql.names.NAME_BYTES`), or a name
        holding a NUL character, which PostgreSQL's text cannot hold.

        Raises:
            NameTooLongError: a project name, metric name, trial id or hyperparameter name;
                nothing is written.
        """
        names.check_project(new.name, new.objective, state, new.space)

    def check_space(self, entries: Iterable[Mapping[str, Any]]) -> None:
        """Refuse space entries whose hyperparameter name holds a NUL character.

        Raises:
            NameTooLongError: saying which; nothing is written.
        """
        names.check_text("hyperparameter name", names.space_names(entries))

    def create_project(self, new: NewProject, *, replace: bool = False) -> PostgresProject:
        """A new project (see the contract).

        Raises:
            NameTooLongError: see :meth:`check_new`; nothing is written.
        """
        self.check_new(new)
        project_id = self._insert(new, replace, None)
        return PostgresProject(self.db, project_id, new.name)

    def import_project(self, new: NewProject, state: Mapping[str, Any], *,
                       replace: bool = False) -> PostgresProject:
        """A new project holding ``state`` (a ``get_state()`` document), in one step.

        Raises:
            HpStoreError: the state is malformed, or a project of that name exists (and
                ``replace`` is False); nothing was written.
            NameTooLongError: see :meth:`check_new`; nothing is written.
        """
        check_state_document(state)
        self.check_new(new, state)
        psycopg = self.db.psycopg
        try:
            project_id = self._insert(new, replace, state)
        except psycopg.errors.UntranslatableCharacter as exc:
            # a text the database's encoding has not (a name in a LATIN1 database): the
            # store's limit, said as an oracle is told it, not the document's fault
            raise self.db.explain(exc) from None
        except (KeyError, TypeError, ValueError, IndexError, psycopg.IntegrityError,
                psycopg.DataError) as exc:
            raise malformed(exc) from None
        self.db.loaded(len(state["trials"]))
        return PostgresProject(self.db, project_id, new.name)

    def _insert(self, new: NewProject, replace: bool, state: Mapping[str, Any] | None) -> int:
        def insert(conn: Any) -> int:
            project_id = insert_project(self.db, conn, new, replace=replace)
            if state is not None:
                PostgresProject(self.db, project_id, new.name).load_into(conn, state)
            return project_id

        psycopg = self.db.psycopg
        try:
            return int(self.db.transaction(insert))
        except psycopg.errors.UniqueViolation as exc:
            if getattr(exc.diag, "constraint_name", "") != "projects_name_key" or state:
                raise
            raise HpStoreError(
                f"A project named {new.name!r} was created in {self.location} by another "
                "process meanwhile; open it, or replace it.") from None
        except psycopg.DataError as exc:
            if state is not None:
                raise  # a malformed document: import_project says so
            raise self.db.explain(exc) from None

    def open_project(self, record: ProjectRecord) -> PostgresProject:
        return PostgresProject(self.db, record.project_id, record.name)

    # -- liveness and mutual exclusion ----------------------------------------------------
    def session(self) -> str | None:
        """This process's liveness token, its lock taken on first use."""
        if self.read_only:
            return None
        mine = self._liveness
        if mine is not None and mine.pid != os.getpid():
            # a parent's, inherited through fork: dropping it would close the parent's
            # connection, so it is kept and never used
            _ORPHANS.append(mine)
            mine = None
        if mine is None:
            # one lock for every store of this database in the process (see liveness.py)
            mine = self._liveness = liveness.shared(self.db)
            self.db.reconnected = mine.confirm
            if not self.db.standby:  # (a standby sees none of the primary's locks)
                try:
                    mine.check_own_session(self.db.query)
                except DatabaseError:
                    self._liveness, self.db.reconnected = None, None
                    liveness.release(mine, lambda token: False)
                    raise
        return mine.ensure()

    def now(self) -> float:
        return self.db.now()

    def is_alive(self, token: str, pid: int | None = None) -> bool:
        """Whether a worker holds ``token``'s lock now (``pid`` is not needed: the server
        knows)."""
        mine = self._liveness
        if mine is not None and mine.token == token and liveness.held_here(token):
            return True
        if self.db.standby:  # the primary's locks are not seen here: never called dead
            return True
        return liveness.is_live(self.db, token)

    def contended(self) -> bool:
        """Not tracked: a remote store's oracle never draws ahead of its lock."""
        return False

    def alive(self, tokens: Mapping[str, int | None]) -> set[str]:
        """One statement for them all, asking each token's lock (see liveness.py)."""
        found = set(tokens)
        if self.db.standby:  # (as is_alive)
            return found
        mine = self._liveness
        here = {t for t in found if mine is not None and mine.token == t
                and liveness.held_here(t)}
        keys = {t: k for t in found - here if (k := liveness.token_key(t)) is not None}
        if not keys:
            return here
        held = liveness.live_among(self.db, sorted(set(keys.values())))
        return here | {t for t, k in keys.items() if k in held}

    def owns(self, token: str | None) -> bool:
        return liveness.held_here(token)

    @contextlib.contextmanager
    def mutex(self, holder: str | None = None) -> Iterator[None]:
        with self.db.mutex():
            yield

    def live_workers(self) -> int:
        """How many worker processes hold a liveness lock on this store right now (on a
        hot standby, which sees none of the primary's locks: how many run a trial)."""
        if self.db.standby:
            return liveness.running_sessions(self.db)
        return len(liveness.live_keys(self.db))

    def checkpoint(self) -> None:
        """Nothing to fold: the server makes commits durable itself."""

    def health(self) -> list[tuple[str, bool, str]]:
        """What ``hpstore check`` reports of the server and the schema."""
        return health(self.db)

    def sql(self, query: str, *, timeout: float | None = None) -> tuple[list[str], list[Any]]:
        """One read-only statement a person wrote: (columns, rows). See ``hpstore sql``."""
        with self.sql_rows(query, timeout=timeout) as (columns, rows):
            return columns, list(rows)

    def sql_rows(self, query: str, *, timeout: float | None = None
                 ) -> AbstractContextManager[tuple[list[str], Iterator[Any]]]:
        """One read-only statement a person wrote: its columns and its rows, read as they
        are iterated, within the block. See ``hpstore sql``."""
        return run_user_sql(self.db, query, timeout)

    def close(self) -> None:
        mine, self._liveness = self._liveness, None
        self.db.reconnected = None
        if mine is None and not self.read_only:
            # (a store that wrote without taking the lock, ending a trial another store
            # of the process started: the last closer gives up a lock kept for it)
            mine = liveness.kept(self.db)
        if mine is not None and mine.pid == os.getpid():
            liveness.release(mine, self._runs_under)
        self.db.close()

    def _runs_under(self, token: str) -> bool:
        """Whether a trial of any project of this store runs under liveness ``token`` (asked
        once: a close never waits for a server gone, whose lock is gone with it anyway)."""
        return bool(self.db.ask_once(_RUNS_UNDER, (token,))[0][0])
