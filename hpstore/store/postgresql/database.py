"""One process's connection to a PostgreSQL store: transactions that retry and reconnect.

A worker keeps one connection for its work (plus the idle one of its liveness lock, see
liveness.py): never a pool, so N workers hold 2N connections, whatever they do. A write is
either one statement (recording metrics, ending a trial: :meth:`Database.write`) or one
transaction (deciding a trial, reaping, copying: :meth:`Database.transaction`). Either

- is retried on a serialization failure or a deadlock (SQLSTATE 40001 / 40P01), a bounded
  number of times;
- survives a dropped connection (the server restarted, the backend was terminated, the
  network failed) by reconnecting once and running it again, unless it may have been
  committed already: a statement's caller then says how to recognise its effect, and a
  transaction's id, read when it began, lets the server say whether its COMMIT landed. So a
  step is neither lost nor recorded twice.

Reads outside a transaction are single autocommit statements, retried after a reconnect.
Inside a transaction (an oracle deciding under the project's lock) every read runs on the
same connection, in that transaction.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, TypeVar

from hpstore.errors import (
    DatabaseError,
    LockTimeoutError,
    ReadOnlyDatabaseError,
    ServerUnavailableError,
)
from hpstore.store.postgresql import closing
from hpstore.store.postgresql.diagnosis import committed, lock_holders, schema_gone, why_read_only
from hpstore.store.postgresql.driver import (
    NO_IDLE_TIMEOUT,
    POOLER,
    SESSION_SETTINGS,
    UNDEFINED,
    connect,
    connect_args,
    connection_lost,
    explain,
    first_line,
    load_psycopg,
    lock_timeout_given,
    redact,
    sqlstate,
    steady,
)
from hpstore.store.postgresql.schema import TABLES

T = TypeVar("T")


#: The trial numbers whose creator refreshes the planner's statistics (a project's trials
#: quadrupled since the last refresh): the first at 64 trials, when a look-up by
#: ``project_id`` alone starts to cost more than one by the full key.
STATISTICS_AT = frozenset(4 ** k for k in range(3, 16))


class Closing(NamedTuple):
    """A transaction body's last statement, returned instead of run: it is sent with the
    COMMIT, in one round trip. ``done(rows)`` makes the body's result of its rows. Should
    the connection drop after the COMMIT landed, the rows are read again with
    ``recover`` (a statement and its parameters) instead."""

    sql: str
    params: Sequence[Any]
    done: Callable[[list[tuple[Any, ...]]], Any]
    recover: tuple[str, Sequence[Any]]


#: SQLSTATEs of a transaction that may succeed when run again
RETRIED = {"40001": "a serialization failure", "40P01": "a deadlock"}
MAX_TRIES = 5
#: seconds a worker waits for the server to come back after its connection dropped
RECONNECT_WAIT = 30.0
#: the server versions hpstore runs on (txid_status: 10; tcp_user_timeout: 12)
MIN_SERVER_VERSION = 120000

# The kinds of advisory lock hpstore takes, each with a class id of its own per schema
# (two int4 keys: class, object), so two stores in one database never share one.
KINDS = ("schema", "mutex", "decide", "log", "live", "observe")

def lock_class(kind: str, schema: str) -> int:
    """The advisory-lock class id of ``kind`` in ``schema`` (a positive int4)."""
    return zlib.crc32(f"hpstore:{kind}:{schema}".encode()) & 0x7FFFFFFF


def _can_pipeline(psycopg: Any) -> bool:
    """Whether this psycopg and its libpq can send statements in a pipeline."""
    capabilities = getattr(psycopg, "capabilities", None)
    if capabilities is not None:  # psycopg 3.2 and newer
        return bool(capabilities.has_pipeline())
    return bool(psycopg.Pipeline.is_supported())


def rows(cursor: Any) -> list[tuple[Any, ...]]:
    """The rows of a cursor, or [] for a statement that returns none."""
    # the result's field count, not ``description``: that builds a Column per field
    result = cursor.pgresult
    return cursor.fetchall() if result is not None and result.nfields else []


class Database:
    """A PostgreSQL store as one process sees it: its URL, schema and connection.

    Args:
        url: a libpq URL (``postgresql://user@host:port/dbname``; ``?options=-csearch_path%3D
            name`` chooses a schema other than public).
        read_only: every transaction read-only (the tools): nothing can be written.
        timeout: seconds a lock is waited for (lock_timeout) before LockTimeoutError.

    Raises:
        EngineUnavailableError: psycopg is not installed.
        DatabaseError: the server cannot be reached, or is older than PostgreSQL 12.
    """

    def __init__(self, url: str, *, read_only: bool = False, timeout: float = 60.0,
                 application: str = "worker", settings: tuple[str, ...] = ()) -> None:
        self.psycopg = load_psycopg(url)
        self.settings = settings
        self.url = url
        self.location = redact(url, query=True)
        self.read_only = read_only
        self.timeout = float(timeout)
        self.application = "reader" if read_only else application
        self._conn: Any = None
        # [connection, pid that opened it]: what a Database dropped unclosed (an oracle
        # nobody closed, as KerasTuner code never does) closes as it goes, instead of
        # leaving psycopg to warn "deleted while still open"; never a parent's after fork
        self._opened: list[Any] = [None, -1]
        weakref.finalize(self, closing.close_dropped, self._opened)
        self._pid = -1
        self._lock = threading.RLock()
        self._depth = 0  # transactions open on this thread's connection (nested ones join)
        self._refusal: DatabaseError | None = None  # the last connection refused as it opened
        self._held = 0  # depth of the store mutex (a session lock on the connection)
        #: whether the client library can pipeline statements (libpq 14 and newer)
        self._pipelines = _can_pipeline(self.psycopg)
        #: the rows of the running transaction's opening statement, and of the statement
        #: sent ahead of its lock (see transaction)
        self.opened: list[tuple[Any, ...]] = []
        self.preceded: list[tuple[Any, ...]] = []
        #: how many reads, writes and transactions this process has sent (a caller can
        #: tell whether code it ran read the store)
        self.statements = 0
        self.schema = ""
        self.server_version = 0
        #: whether the server is a hot standby (a replica in recovery): it sees none of the
        #: primary's advisory locks, so whether a worker lives cannot be asked of it
        self.standby = False
        self.keys: dict[str, int] = {}
        self._idle: tuple[str, ...] = NO_IDLE_TIMEOUT
        #: (the server's clock, this machine's steady clock) read together on the last
        #: connection made (see now)
        self._clock = (time.time(), steady())
        #: called with each connection made again after one dropped (see store.session)
        self.reconnected: Callable[[Any], None] | None = None
        closing.track(self)
        self.connect()

    # -- connecting ---------------------------------------------------------------------
    def conninfo(self, application: str | None = None) -> str:
        """The conninfo of a new connection, with hpstore's settings added."""
        millis, application = max(1, int(self.timeout * 1000)), application or self.application
        return connect_args(self.url, application=application,
                            extra_options=(f"-c lock_timeout={millis}", *SESSION_SETTINGS,
                                           *self._idle, *self.settings))

    def open_connection(self, application: str | None = None) -> Any:
        """A new autocommit connection (for this process's work, or its liveness lock).

        Raises:
            DatabaseError: the server refused it or cannot be reached.
        """
        try:
            return connect(self.psycopg, self.conninfo(application), self.location)
        except DatabaseError as exc:
            if not self._idle or "idle_session_timeout" not in str(exc):
                raise
            self._idle = ()  # a server before PostgreSQL 14, which has no such setting
            return connect(self.psycopg, self.conninfo(application), self.location)

    def connect(self) -> Any:
        """This process's connection, opened on first use (and again in a forked child)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                return self._conn
            if self._conn is not None:  # inherited through fork: the parent's, not ours
                closing.ORPHANS.append(self._conn)
                self._conn, self._depth, self._held = None, 0, 0
            try:
                conn = self.open_connection()
            except DatabaseError as exc:
                # a refusal as the connection opened (not the server out of reach), which
                # _reconnect gives up on at once
                self._refusal = None if isinstance(exc, ServerUnavailableError) else exc
                raise
            try:
                self._read_clock(conn)
            except BaseException as exc:  # (dropped as it opened: see _reconnect; a pooler)
                with contextlib.suppress(Exception):
                    conn.close()
                if not isinstance(exc, self.psycopg.Error):
                    # (a pooler: a refusal, which _reconnect gives up on at once)
                    self._refusal = exc if isinstance(exc, DatabaseError) else None
                    raise
                raise self.explain(exc) from None
            self._conn, self._pid = conn, os.getpid()
            self._opened[:] = [conn, self._pid]
            if not self.schema:
                self._learn(conn)
            return conn

    def _read_clock(self, conn: Any) -> None:
        """Measure how far the server's clock is from this machine's (to within half a
        round trip), and whether it is a standby, on each new connection."""
        before = steady()
        # (in the same round trip: floats read exactly whatever a URL's options made of
        # extra_float_digits, as a run is told from another by its start, read back; whether
        # the server is a standby, as a connection made again after a failover, or to
        # another host of the URL, may reach the other kind; the schema this store was
        # found in (see _learn); a read-only store's session made read-only (see
        # driver.connect_args) before anything else runs on it.)
        server, _, standby, _, _, ours = conn.execute(
            "SELECT extract(epoch FROM clock_timestamp())::float8, set_config("
            "'extra_float_digits', '3', false), pg_is_in_recovery(), CASE WHEN %s = '' "
            "THEN NULL ELSE set_config('search_path', concat_ws(', ', quote_ident(%s), "
            "nullif(current_setting('search_path'), '')), false) END, CASE WHEN %s THEN "
            "set_config('default_transaction_read_only', 'on', false) END, "
            "current_setting('hpstore.session', true)",
            (self.schema, self.schema, self.read_only)).fetchone()
        if ours != "on":  # (a pooler dropped the options: see driver.SESSION_SETTINGS)
            raise DatabaseError(f"{self.location}: the session settings hpstore opens its "
                                f"connections with did not reach the server. {POOLER}")
        self._clock = (float(server), (before + steady()) / 2)
        self.standby = bool(standby)

    def now(self) -> float:
        """The time to store with a change, in seconds since the epoch by the server's
        clock: every worker of a search writes its times by the one clock, wherever it
        runs and whatever its own clock says. (Workers on machines whose clocks are
        minutes apart otherwise wrote runs that ended before they started, status logs
        out of order, and starts that the restart grace (see liveness.SESSION_LIVES)
        compares with the server's start: a live worker's trial was handed to another.)
        The server's clock is read when a connection is made, and carried on by this
        machine's steady clock, which no setting of its wall clock moves."""
        server, at = self._clock
        return server + (steady() - at)

    def _learn(self, conn: Any) -> None:
        """The server's version and the schema this store lives in, read once."""
        # The schema found is put first in the search_path, on this connection and every
        # one made again: the path may name another later (a schema named after the role,
        # "$user", created while the search runs, where a new worker starts a store of its
        # own), and the server resolves names anew as schemas appear, so hpstore's
        # statements would reach that store's tables with this one's locks and project ids.
        version, schema, _ = conn.execute(
            "SELECT current_setting('server_version_num')::int, current_schema(), "
            "set_config('search_path', concat_ws(', ', quote_ident(current_schema()), "
            "nullif(current_setting('search_path'), '')), false)").fetchone()
        if version < MIN_SERVER_VERSION:
            raise DatabaseError(f"{self.location} runs PostgreSQL {version // 10000}; hpstore "
                                "needs PostgreSQL 12 or newer.")
        if schema is None:
            path = conn.execute("SHOW search_path").fetchone()[0]
            names = [n.strip().strip('"') for n in str(path).split(",") if n.strip()]
            barred = [r[0] for r in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s) AND NOT "
                "has_schema_privilege(oid, 'USAGE')", (names,))]
            if barred:
                raise DatabaseError(
                    f"{self.location}: the role connecting lacks a privilege hpstore needs "
                    f"on the schema {barred[0]!r} (USAGE). Grant it (GRANT USAGE ON SCHEMA "
                    "... TO role), or connect as its owner.")
            raise DatabaseError(
                f"{self.location}: no schema of the search_path ({path}) exists. Create it "
                "(CREATE SCHEMA name), or name an existing one in the URL's options.")
        if str(schema).startswith(("pg_temp", "pg_toast", "pg_catalog")):
            # (pg_temp first in the path: the session's own temporary schema, which goes
            # with the connection; the system's: no place for a search)
            raise DatabaseError(
                f"{self.location}: the search_path's first schema is {schema!r}, a schema of "
                "PostgreSQL's own (a session's temporary schema goes with its connection): "
                "name a schema of your own first in the URL's options "
                "(options=-csearch_path%3Dname).")
        self.server_version, self.schema = int(version), str(schema)
        self.keys = {kind: lock_class(kind, self.schema) for kind in KINDS}

    def _reconnect(self, cause: BaseException) -> Any:
        """A new connection after ``cause`` dropped the old one, waiting up to
        RECONNECT_WAIT seconds for the server to come back.

        Raises:
            ServerUnavailableError: the server was still out of reach after that time.
            DatabaseError: it refused the connection (a role or password changed, say).
        """
        with contextlib.suppress(Exception):
            self._conn.close()
        self._conn = None
        deadline = time.monotonic() + RECONNECT_WAIT
        pause = 0.05
        while True:
            try:
                conn = self.connect()
            except DatabaseError as exc:
                if exc is self._refusal:
                    # refused as it opened (the database dropped or renamed, the role or its
                    # password changed, pg_hba.conf): an administrator's act, which waiting
                    # 30 s for does not undo
                    after = ("Nothing was written" if self.read_only else "Nothing of the "
                             "step in progress was recorded twice")
                    raise DatabaseError(
                        f"Lost the connection to {self.location} ({first_line(cause)}), and "
                        f"the server refused a new one ({exc}). {after}; once the database, "
                        "role or password the URL names is usable again (or given a URL "
                        "naming one that is), run again to resume.") from None
                if time.monotonic() >= deadline:
                    # still out of reach: the same step may succeed later (a refusal, such
                    # as a password changed meanwhile, stays a plain DatabaseError)
                    kind = (ServerUnavailableError if isinstance(exc, ServerUnavailableError)
                            else DatabaseError)
                    after = ("Nothing was written; run the command again once the server "
                             "is back." if self.read_only else "Nothing of the step in "
                             "progress was recorded twice; run again to resume.")
                    raise kind(
                        f"Lost the connection to {self.location} ({first_line(cause)}) and "
                        f"could not reconnect within {RECONNECT_WAIT:g} s ({exc}). {after}"
                    ) from None
            else:
                if self.reconnected is not None:
                    self.reconnected(conn)
                return conn
            time.sleep(pause)  # the server restarting: try again shortly
            pause = min(pause * 2, 1.0)

    def refresh_statistics(self) -> None:
        """ANALYZE the tables that grow with a search, so the planner knows their sizes.

        Without statistics (a schema just created, a table filled faster than autovacuum's
        minute-long naps), PostgreSQL takes ``project_id`` for selective and may pick an
        index that holds only it for a trial's look-ups: every look-up then reads all of a
        project's trials. It is an optimisation: a role that does not own the tables gets a
        warning from the server, and nothing fails; nor does it wait long for a VACUUM that
        holds a table (it is left to the next refresh, or to autovacuum).
        """
        if self.read_only:
            return

        def analyze(conn: Any) -> None:
            conn.execute("SET LOCAL lock_timeout = 200")  # milliseconds
            conn.execute("ANALYZE trials, observations, transitions")

        with contextlib.suppress(DatabaseError, self.psycopg.Error):
            self.transaction(analyze)

    def loaded(self, trials: int) -> None:
        """After ``trials`` trials were written at once (a whole search loaded): the
        statistics refreshed when they are enough to matter."""
        if trials >= min(STATISTICS_AT):
            self.refresh_statistics()

    # -- statements and transactions ----------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """One statement's rows: in the transaction this thread has open, else on its own
        (retried once after a reconnect)."""
        with self._lock:
            self.statements += 1
            if self._depth:
                return rows(self._conn.execute(sql, params))
            return self._run(lambda conn: rows(conn.execute(sql, params)), begin=None)

    def ask_once(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """One read on the connection as it is, never retried nor waiting to reconnect (a
        last question as the store closes: a server gone makes it fail at once).

        Raises:
            DatabaseError: not connected; psycopg.Error: the server failed to answer.
        """
        with self._lock:
            conn = self._conn
            if conn is None or conn.closed or conn.broken:
                raise DatabaseError(f"Not connected to {self.location}.")
            return rows(conn.execute(sql, params))

    def write(self, sql: str, params: Sequence[Any], landed: Callable[[], bool]
              ) -> list[tuple[Any, ...]] | None:
        """One write statement, committed on its own; its rows.

        ``landed()`` says, after a reconnect, whether the statement was committed before
        the connection dropped (by looking for its effect): then None is returned, and the
        caller reads what it needs again; else the statement runs again.

        Raises:
            DatabaseError and its subclasses: the server refused or failed, in words.
            psycopg.IntegrityError, psycopg.DataError: as :meth:`transaction`.
        """
        with self._lock:
            self.statements += 1
            if self._depth:
                return rows(self._conn.execute(sql, params))
            return self._run(lambda conn: rows(conn.execute(sql, params)), begin=None,
                             landed=landed)

    @property
    def in_transaction(self) -> bool:
        """Whether this process has a transaction open on the store."""
        return self._depth > 0

    def at_once(self, lock: tuple[str, int], last: Closing) -> Any:
        """``lock`` (a transaction-level advisory lock) and ``last`` in one transaction and
        one round trip; ``last.done`` of its rows. After a connection lost on the way,
        ``last.recover`` tells whether the transaction committed; if it did not, it is sent
        again.

        Raises:
            as :meth:`write`.
        """
        kind, number = self.keys[lock[0]], int(lock[1]) & 0x7FFFFFFF
        found: list[tuple[Any, ...]] = []

        statements = [("SELECT pg_advisory_xact_lock(%s, %s)", (kind, number)),
                      (last.sql, last.params)]
        if not self._pipelines:
            # A pipeline's statements up to its end (its Sync) are one transaction of their
            # own, committed there; sent one by one, they need BEGIN and COMMIT.
            statements = [("BEGIN", ()), *statements, ("COMMIT", ())]
        insert = 1 if self._pipelines else 2

        def send(conn: Any) -> tuple[Any]:
            return (last.done(rows(self._together(conn, statements)[insert])),)

        def landed() -> bool:
            found[:] = self.query(*last.recover)
            return bool(found)

        with self._lock:
            self.statements += 1
            if self._depth:
                raise RuntimeError("at_once() inside a transaction")
            sent = self._run(send, begin=None, landed=landed)
        # None: committed before the connection dropped; the rows read again
        return last.done(found) if sent is None else sent[0]

    def transaction(self, body: Callable[[Any], T], *, begin: str = "write",
                    lock: tuple[str, int] | None = None,
                    opening: tuple[str, Sequence[Any]] | None = None,
                    before: tuple[str, Sequence[Any]] | None = None) -> T:
        """``body(connection)`` in one transaction, committed when it returns.

        ``begin``: "write" (read committed, its id noted), "snapshot" (repeatable read,
        read only: one consistent view). ``lock``: (kind, number) of a transaction-level
        advisory lock taken as it begins. ``opening``: a statement (and its parameters)
        sent with the BEGIN and the lock, in the same round trip; its rows are then
        :attr:`opened` while ``body`` runs. ``before`` (with ``opening`` only): a statement
        sent in that round trip too, after the BEGIN but ahead of the lock, so it reads
        what was committed before the lock was asked for and the lock is not held while it
        runs; its rows are then :attr:`preceded`. ``body`` may return a :class:`Closing`, its
        last statement, to send it with the COMMIT. Called inside a transaction, ``body``
        joins it. ``body`` may run more than once (after a retried failure): it must only
        read and write through the connection.

        Raises:
            DatabaseError and its subclasses: the server refused or failed, in words.
            psycopg.IntegrityError, psycopg.DataError: the data written was refused (a
                constraint, a value of the wrong type): the caller's to explain.
        """
        if opening is not None and (begin != "write" or self.read_only):
            raise ValueError("An opening statement is sent with a write transaction's BEGIN "
                             "only (begin='write' on a writable store).")
        if before is not None and opening is None:
            raise ValueError("A statement ahead of the lock is sent with an opening one only.")
        with self._lock:
            self.statements += 1
            if self._depth:
                conn = self._conn
                outer = self.opened, self.preceded
                self.preceded = [] if before is None else rows(conn.execute(*before))
                if lock is not None:
                    self.lock(conn, *lock)
                self.opened = [] if opening is None else rows(conn.execute(*opening))
                try:
                    result: Any = body(conn)
                finally:
                    self.opened, self.preceded = outer
                if isinstance(result, Closing):
                    return result.done(rows(conn.execute(result.sql, result.params)))  # type: ignore[no-any-return]
                return result  # type: ignore[no-any-return]
            return self._run(body, begin=begin, lock=lock, opening=opening, before=before)

    def _run(self, body: Callable[[Any], T], *, begin: str | None,
             lock: tuple[str, int] | None = None,
             landed: Callable[[], bool] | None = None,
             opening: tuple[str, Sequence[Any]] | None = None,
             before: tuple[str, Sequence[Any]] | None = None) -> T:
        psycopg = self.psycopg
        tries = 0
        reconnected = False
        while True:
            conn = self.connect()
            xid: int | None = None
            committing = False
            try:
                if begin is None:
                    committing = landed is not None  # an autocommit write commits as it runs
                    return body(conn)
                if begin == "write" and not self.read_only:
                    # The transaction's id, so that after a connection lost during COMMIT
                    # the server can say whether the commit landed; the lock in the same
                    # round trip. Both numbers are ints: nothing else enters the text.
                    if opening is not None:
                        xid = self._open(conn, lock, opening, before)
                    else:
                        if lock is None:
                            cursor = conn.execute("BEGIN; SELECT txid_current()")
                        else:
                            kind, number = self.keys[lock[0]], int(lock[1]) & 0x7FFFFFFF
                            cursor = conn.execute(
                                "BEGIN; SELECT txid_current(), "
                                f"pg_advisory_xact_lock({int(kind)}, {int(number)})")
                        cursor.nextset()
                        xid = int(cursor.fetchone()[0])
                elif begin == "snapshot":
                    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                else:
                    conn.execute("BEGIN")
                self._depth += 1
                try:
                    result = body(conn)
                finally:
                    self._depth -= 1
                    self.opened, self.preceded = [], []
                committing = True
                if isinstance(result, Closing):
                    last, _ = self._together(conn, [(result.sql, result.params), ("COMMIT", ())])
                    return result.done(rows(last))  # type: ignore[no-any-return]
                conn.execute("COMMIT")
                return result
            except psycopg.Error as exc:
                if connection_lost(conn, exc):
                    if self._held:
                        raise DatabaseError(
                            f"Lost the connection to {self.location} while holding the "
                            f"search's lock ({first_line(exc)}); nothing more was done. "
                            "Run again to resume.") from None
                    if reconnected:
                        raise DatabaseError(
                            f"Lost the connection to {self.location} twice in one step "
                            f"({first_line(exc)}). Run again to resume.") from None
                    self._reconnect(exc)
                    reconnected = True
                    if committing and xid is not None and self._committed(xid):
                        # the commit landed before the connection dropped
                        if isinstance(result, Closing):
                            return result.done(self.query(*result.recover))  # type: ignore[no-any-return]
                        return result
                    if committing and landed is not None and landed():
                        return None  # type: ignore[return-value]  # see write()
                    continue  # nothing of it was kept: run it again
                self._rollback(conn)
                if isinstance(exc, (psycopg.IntegrityError, psycopg.DataError)) and (
                        begin is not None or landed is not None):
                    raise  # the data written was refused: the caller says what it means
                if sqlstate(exc) in RETRIED and tries + 1 < MAX_TRIES:
                    tries += 1
                    time.sleep(random.uniform(0, 0.01 * 2 ** tries))  # let the other finish
                    continue
                raise self.explain(exc) from None
            except BaseException:
                self._rollback(conn)
                raise

    def _open(self, conn: Any, lock: tuple[str, int] | None,
              opening: tuple[str, Sequence[Any]],
              before: tuple[str, Sequence[Any]] | None = None) -> int:
        """BEGIN, ``before``, the lock and the opening statement in one round trip (a
        pipeline: each statement still runs after the one before, so the opening one reads
        what was committed before the lock was granted); the transaction's id. The rows
        are left in :attr:`opened` and :attr:`preceded`."""
        if lock is None:
            began: tuple[str, Sequence[Any]] = ("SELECT txid_current()", ())
        else:
            began = ("SELECT txid_current(), pg_advisory_xact_lock(%s, %s)",
                     (self.keys[lock[0]], int(lock[1]) & 0x7FFFFFFF))
        ahead = [] if before is None else [before]
        sent = self._together(conn, [("BEGIN", ()), *ahead, began, opening])
        xid = int(sent[-2].fetchone()[0])
        self.preceded = rows(sent[1]) if ahead else []
        self.opened = rows(sent[-1])
        return xid

    def _together(self, conn: Any, statements: Sequence[tuple[str, Sequence[Any]]]
                  ) -> list[Any]:
        """The statements in order, sent in one round trip where libpq can pipeline
        (libpq 14 and newer), else one after the other; their cursors."""
        if not self._pipelines:
            return [conn.execute(sql, params or None) for sql, params in statements]
        # A statement's error is kept and raised once the pipeline is left: left with an
        # error in flight, psycopg logs the pipeline's own failure to end (the connection
        # lost) as a warning, a raw driver line on stderr before hpstore reconnects
        failed: BaseException | None = None
        try:
            with conn.pipeline():
                try:
                    return [conn.execute(sql, params or None) for sql, params in statements]
                except self.psycopg.Error as exc:
                    failed = exc
        except self.psycopg.Error:
            if failed is None:
                raise
        assert failed is not None
        raise failed

    def _rollback(self, conn: Any) -> None:
        if conn is None or conn.closed:
            return
        with contextlib.suppress(Exception):
            if conn.info.transaction_status != self.psycopg.pq.TransactionStatus.IDLE:
                conn.execute("ROLLBACK")

    def _committed(self, xid: int) -> bool:
        """Whether transaction ``xid``, whose COMMIT was sent on a connection since lost,
        committed (see :func:`diagnosis.committed`).

        Raises:
            DatabaseError: the outcome could not be learnt within the timeout.
        """
        return committed(self.query, self.location, xid, max(self.timeout, RECONNECT_WAIT))

    def explain(self, exc: BaseException) -> BaseException:
        """A server error in words; a lock timeout names who holds the lock, and a table,
        column or function of hpstore's that is gone names the schema changed by hand."""
        if sqlstate(exc) in UNDEFINED:
            return schema_gone(self.query, self.location, self.schema, first_line(exc))
        error = explain(exc, self.location)
        if isinstance(error, LockTimeoutError):
            held = lock_timeout_given(self.url, self.timeout) or lock_holders(
                self.query, [self.keys[k] for k in ("mutex", "decide", "log")], self.schema,
                TABLES)
            return LockTimeoutError(f"{error} {held}".strip())
        if isinstance(error, ReadOnlyDatabaseError) and not self.read_only:
            return why_read_only(self.query, self.location, first_line(exc),
                                 (DatabaseError, self.psycopg.Error))
        return error

    # -- locks ----------------------------------------------------------------------------
    def lock(self, conn: Any, kind: str, number: int = 0) -> None:
        """Take the transaction-level advisory lock ``kind`` (of project ``number``) in the
        transaction open on ``conn``; released at its end."""
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)",
                     (self.keys[kind], int(number) & 0x7FFFFFFF))

    @contextlib.contextmanager
    def mutex(self) -> Iterator[None]:
        """The store-wide lock (re-entrant): a session-level advisory lock on this
        process's connection, held across transactions, threads of this process waiting.

        Raises:
            LockTimeoutError: another process held it longer than the timeout.
        """
        with self._lock:
            if not self._held:
                self.query("SELECT pg_advisory_lock(%s, 0)", (self.keys["mutex"],))
            self._held += 1
            try:
                yield
            finally:
                self._held -= 1
                if not self._held:
                    conn = self._conn
                    if conn is not None and not conn.closed and self._pid == os.getpid():
                        with contextlib.suppress(self.psycopg.Error):
                            conn.execute("SELECT pg_advisory_unlock(%s, 0)",
                                         (self.keys["mutex"],))

    # -- closing ----------------------------------------------------------------------------
    def close(self) -> None:
        """Close this process's connection (never a parent's, after a fork)."""
        with self._lock:
            conn, self._conn = self._conn, None
            self._opened[:] = [None, -1]
            if conn is not None:
                closing.end(conn, self._pid)

    def after_fork(self) -> None:
        """In a forked child: this lock afresh (a parent's thread may have held it), and
        no connection: the parent's, mid-transaction in another of its threads maybe, is
        never used here (the next statement opens this process's own)."""
        self._lock = threading.RLock()
        if self._conn is not None:
            closing.ORPHANS.append(self._conn)
        self._conn, self._depth, self._held = None, 0, 0
