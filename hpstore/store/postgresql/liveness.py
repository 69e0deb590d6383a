"""Liveness on PostgreSQL: each worker holds a session-level advisory lock while it lives.

The lock is held on a connection of its own that runs no statement after taking it: the
server releases it the moment that connection ends, whether the process was killed
(``kill -9``: the kernel closes its socket), its backend terminated, or its machine
vanished (the server's TCP keepalives drop the connection after about
``driver.VANISHED_AFTER`` seconds). A lock held by a backend in the middle of a long query
would outlive its client until the query ends, hence the idle connection.

A thread watches that connection. When it drops while the process lives (the server
restarted, the backend was terminated, the network failed for a moment), the thread
reconnects and takes the same lock again, so a worker that is alive keeps its token. When
the server restarted, every lock went at once: for a while after the server's start, a
trial that started before it is taken for live (see ``SESSION_LIVES``), and a worker whose
work reconnects first starts nothing until its lock is held again (see
:meth:`Liveness.confirm`). Otherwise (its lock's backend alone ended), in the
moment before the lock is taken again, another worker may find the token free and hand the
trial back; the late worker's writes to it are then refused (its run is over), never
recorded twice, and a Tuner goes on with its next trial.

Whether a token lives is asked of its lock: a shared try on the key fails while the worker
holds it, and succeeds once its connection is gone. That is a fact the server keeps, not a
guess from elapsed time, and costs the same however many workers and locks the server has
(reading ``pg_locks`` copies every lock on the server and holds up its lock traffic while
it does). A try that succeeds keeps the key until the asking transaction ends, so a worker
whose connection dropped cannot take its key again while another decides about its trial.
Only ``hpstore``'s count of live workers still reads ``pg_locks``, where a worker's lock is
the only exclusive one under its class.

Every open store of one database (schema) in a process shares one liveness lock: a
notebook may build a thousand oracles on one URL (a cell run again and again), and one
dropped without ``close()`` is never collected while a thread of its own watches its
lock. So the lock and its thread are started once per process and store, and end when the
last store that used them closes (or with the process): a trial one oracle left running
is still this process's own, and the next oracle hands it back instead of finding it
interrupted. Each store keeps its own connection for its work, closed with it (or when
it is collected).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import threading
import time
from collections.abc import Callable
from typing import Any

from hpstore.errors import DatabaseError, LockTimeoutError, ServerUnavailableError
from hpstore.store.postgresql.diagnosis import lock_holders
from hpstore.store.postgresql.driver import POOLER, connect, explain
from hpstore.store.postgresql.schema import TABLES

#: tokens of the liveness locks this process holds (on any store), by token
_HELD: dict[str, int] = {}
_PREFIX = "pg-"
#: the liveness lock of each store (by server location and schema) in this process
_SHARED: dict[tuple[int, str, str], Liveness] = {}
_LOCK = threading.Lock()

# Every worker's lock on the store (exclusive: the shared ones are others' questions).
LIVE_TOKENS = (
    "SELECT l.objid::bigint FROM pg_locks AS l WHERE l.locktype = 'advisory' AND l.granted "
    "AND l.mode = 'ExclusiveLock' AND l.objsubid = 2 AND l.classid::bigint = %s AND "
    "l.database = (SELECT oid FROM pg_database WHERE datname = current_database())")
# Whether the worker holding a key (class, key) lives; which keys of an array live.
IS_LIVE = "SELECT NOT pg_try_advisory_xact_lock_shared(%s::int, %s::int)"
LIVE_AMONG = ("SELECT k FROM unnest(%s::int[]) AS k "
              "WHERE NOT pg_try_advisory_xact_lock_shared(%s::int, k)")
#: seconds after the server starts during which a trial started before that start counts
#: as live without its lock (written out in SESSION_LIVES)
RESTART_GRACE = 30
#: SQL for "the worker of a trial's session lives", for a trials row in a statement given
#: the liveness class as its next parameter (a session of another engine never does). A
#: restart of the server drops every worker's lock at once, and each takes it again on
#: its next connection: until then, for RESTART_GRACE seconds after the server started,
#: a run that began before that start is taken for live (its worker was, as the server
#: went down), or the first worker back would hand back the trials of all the others.
#: A crash restart (a backend killed: the server ends every session and recovers) keeps
#: the postmaster's start time; its checkpointer starts again, and its start is the
#: restart's (a role that may not see it gets the postmaster's: no grace after a crash).
#: Read only for a token whose lock is free (OR stops at a live one).
SESSION_LIVES = (
    "CASE WHEN session ~* '^pg-[0-9a-f]{8}$' THEN NOT pg_try_advisory_xact_lock_shared("
    "%s::int, ('x' || substr(session, 4))::bit(32)::int) OR (SELECT started_at < extract("
    "epoch FROM s.at) AND now() < s.at + interval '30 seconds' FROM (SELECT greatest("
    "pg_postmaster_start_time(), (SELECT max(backend_start) FROM pg_stat_activity WHERE "
    "backend_type = 'checkpointer')) AS at) AS s) ELSE false END")


def token_key(token: str | None) -> int | None:
    """The lock key a token stands for, or None for a token of another engine."""
    if not token or not token.startswith(_PREFIX) or len(token) != len(_PREFIX) + 8:
        return None
    try:
        return int(token[len(_PREFIX):], 16)
    except ValueError:
        return None


def held_here(token: str | None) -> bool:
    return token is not None and _HELD.get(token) == os.getpid()


def shared(db: Any) -> Liveness:
    """This process's liveness lock on ``db``'s store, taken on first use, counting one
    more store that uses it (each calls :func:`release` once, when it closes).

    Raises:
        DatabaseError: the lock could not be taken (the server cannot be reached).
    """
    key = _share_key(db)
    with _LOCK:
        mine = _SHARED.get(key)
        if mine is None:
            mine = _SHARED[key] = Liveness(db)
        mine.users += 1
        return mine


def kept(db: Any) -> Liveness | None:
    """This process's lock on ``db``'s store when it was kept, with no store using it, for
    a trial still running under it (see :func:`release`): counting one more store, which
    calls :func:`release` as it closes; else None."""
    with _LOCK:
        mine = _SHARED.get(_share_key(db))
        if mine is None or mine.users:
            return None
        mine.users += 1
        return mine


def _share_key(db: Any) -> tuple[int, str, str]:
    return os.getpid(), db.location, db.schema  # a forked child takes its own


def release(mine: Liveness, running: Callable[[str], bool]) -> None:
    """A store that used ``mine`` closed: the last one gives the lock up, unless
    ``running(token)`` says a trial still runs under it (a store dropped without closing
    stays counted, so its trials stay this process's own). Such a trial is this live
    process's too, which may yet end it: the lock is kept for the next store of the process
    (that store's oracle hands the trial back rather than find it interrupted), or until
    the process ends."""
    with _LOCK:
        last = mine.users == 1
    # (asked of the server outside the process-wide lock; a failure to ask gives it up)
    keep = False
    if last:
        with contextlib.suppress(Exception):
            keep = running(mine.token)
    with _LOCK:
        mine.users -= 1
        if mine.users > 0 or keep:
            return
        if _SHARED.get(mine.share_key) is mine:
            del _SHARED[mine.share_key]
    mine.end()


def _after_fork_in_child() -> None:
    global _LOCK
    _LOCK = threading.Lock()  # a parent's thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Liveness:
    """This process's liveness lock on one store, and the thread that keeps it. It keeps
    what it needs to connect, not the store's Database: a dropped store is collected.

    Raises:
        DatabaseError: the lock could not be taken (the server cannot be reached); a
            LockTimeoutError naming the holder when a table lock held up its look-up of the
            trials past the timeout.
    """

    def __init__(self, db: Any) -> None:
        self.pid = os.getpid()
        self.share_key = _share_key(db)
        self.users = 0
        self.cls = db.keys["live"]
        self.location, self.timeout, self.psycopg = db.location, db.timeout, db.psycopg
        self.schema = db.schema
        self._conninfo = db.conninfo("liveness")
        self._conn: Any = None
        self.backend = -1  # the server session holding the lock (its pid)
        self._held = threading.Event()
        #: why the last try to take the lock again failed, when the server refused the
        #: connection (a role made NOLOGIN, a password changed): no wait undoes that
        self._refused: DatabaseError | None = None
        self._stop = threading.Event()
        #: guards the lock's connection as the thread replaces it and :meth:`confirm`
        #: marks it dropped; ``_dropped``: the connection found no longer holding the lock
        self._swap = threading.Lock()
        self._dropped: Any = None
        self.key = self._take_new()
        self._wake_r, self._wake_w = os.pipe()  # (after: a refusal above leaks none)
        self.token = f"{_PREFIX}{self.key:08x}"
        _HELD[self.token] = self.pid
        self._thread = threading.Thread(target=self._watch, name="hpstore-liveness",
                                        daemon=True)
        self._thread.start()

    def _connect(self) -> Any:
        """A new connection for the lock (given up once the lock is being given up).

        Raises:
            DatabaseError: the server refused it or cannot be reached.
        """
        return connect(self.psycopg, self._conninfo, self.location, self._stop)

    def _take_new(self) -> int:
        """Take the lock under a fresh random key that no trial of this store names."""
        conn = self._connect()
        try:
            while True:
                key = secrets.randbelow(2**31 - 1) + 1
                got, self.backend = conn.execute(
                    "SELECT pg_try_advisory_lock(%s, %s), pg_backend_pid()",
                    (self.cls, key)).fetchone()
                if not got:
                    continue  # another live worker's
                # a dead worker's token whose trial is still to be handed back: not this one
                taken, backend = conn.execute(
                    "SELECT EXISTS (SELECT 1 FROM trials WHERE session = %s), "
                    "pg_backend_pid()", (f"{_PREFIX}{key:08x}",)).fetchone()
                if backend != self.backend:
                    conn.close()
                    raise DatabaseError(f"{self.location}: one connection of this worker "
                                        "was served by two server sessions in turn: a "
                                        f"connection pooler stands between. {POOLER}")
                if taken:
                    conn.execute("SELECT pg_advisory_unlock(%s, %s)", (self.cls, key))
                    continue
                break
        except self.psycopg.Error as exc:
            error = explain(exc, self.location)
            if isinstance(error, LockTimeoutError):
                # (the look-up of the trials waited behind a table lock, an administrator's
                # LOCK TABLE or VACUUM FULL: named as a step's lock timeout names it)
                held = lock_holders(lambda sql, args=(): conn.execute(sql, args).fetchall(),
                                    [], self.schema, TABLES)
                error = LockTimeoutError(f"{error} {held}".strip())
            with contextlib.suppress(Exception):
                conn.close()
            raise error from None
        self._conn = conn
        self._held.set()
        return key

    def check_own_session(self, ask: Callable[..., Any]) -> None:
        """Refuse a store whose work is served by the server session holding this lock: a
        connection pooler in transaction or statement mode, which hands each transaction
        whichever server session is free (the one the lock's statement just left, in
        PgBouncer's default order; another order shows in :meth:`_take_new`). Asked once,
        with ``ask``, the store's query (and no read of pg_locks, whose cost grows with
        every lock on the server).

        Raises:
            DatabaseError: saying so, and to connect to the server itself.
        """
        if ask("SELECT pg_backend_pid()", ())[0][0] == self.backend:
            raise DatabaseError(f"{self.location}: this worker's work and its liveness lock "
                                "were served by one server session: a connection pooler "
                                f"stands between. {POOLER}")

    def _take_again(self) -> bool:
        """After the liveness connection dropped: a new one, holding the same key."""
        try:
            conn = self._connect()
        except ServerUnavailableError:
            return False  # (the server restarting, or out of reach: it is waited for)
        except DatabaseError as exc:
            self._refused = exc
            return False
        self._refused = None
        try:
            got, backend = conn.execute("SELECT pg_try_advisory_lock(%s, %s), "
                                        "pg_backend_pid()", (self.cls, self.key)).fetchone()
        except self.psycopg.Error:
            got = False
        if not got or self._stop.is_set():
            # (not got: cannot happen unless the key was drawn anew by another worker;
            # stopping: the lock was given up meanwhile, and a connection taken now would
            # hold it for as long as the process lives)
            with contextlib.suppress(Exception):
                conn.close()
            return False
        with self._swap:
            self._conn, self.backend = conn, backend  # (a new session: see check_own_session)
            self._held.set()
        return True

    def _watch(self) -> None:
        """Notice at once when the idle connection drops, and take the lock again."""
        pause = 0.05
        while not self._stop.is_set():
            conn = self._conn
            if conn is None:
                if self._take_again():
                    pause = 0.05
                else:
                    self._stop.wait(pause)  # the server is not back yet
                    pause = min(pause * 2, 1.0)
                continue
            try:
                ready, _, _ = select.select([conn.fileno(), self._wake_r], [], [])
            except (OSError, ValueError):
                ready = [None]
            if self._stop.is_set():
                return
            if self._wake_r in ready:
                with contextlib.suppress(OSError):
                    os.read(self._wake_r, 64)
                if self._dropped is not conn:
                    continue
                alive = False  # (confirm found the server holds no lock for it)
            else:
                alive = self._still_open(conn)
            if not alive:
                with self._swap:
                    self._held.clear()
                    self._conn = self._dropped = None
                with contextlib.suppress(Exception):
                    conn.close()

    def _still_open(self, conn: Any) -> bool:
        """Whether the connection lives, once something arrived on it that sent nothing: a
        notice, or the server (or the network) ending it."""
        try:
            conn.pgconn.consume_input()
            alive = conn.pgconn.status == self.psycopg.pq.ConnStatus.OK
            conn.pgconn.notifies()  # nothing is listened to; drop whatever came
        except Exception:
            return False
        return bool(alive)

    def confirm(self, work: Any) -> None:
        """On a connection of this process's work made again (``work``, after the last one
        dropped): wait, if the server holds no lock for this worker, until the thread has
        taken it again. A restart of the server drops both connections, and the thread may
        not have noticed yet as the work goes on: a trial started meanwhile would name a
        token whose lock is free on a server started before the trial, which no grace
        covers, and the next worker to ask would hand it back while it runs.

        Raises:
            DatabaseError: as :meth:`ensure`.
        """
        if self.pid != os.getpid() or self._stop.is_set():
            return  # a parent's, inherited through fork; or given up (its pipe closed)
        before = self._conn
        try:
            free = work.execute("SELECT pg_try_advisory_xact_lock_shared(%s, %s)",
                                (self.cls, self.key)).fetchone()[0]
        except self.psycopg.Error:
            return  # dropped again: the step's own statement says so next
        if not free:
            return  # held (only this worker takes its key)
        with self._swap:
            if before is not None and self._conn is before:
                self._held.clear()
                self._dropped = before
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        self.ensure()

    def ensure(self) -> str:
        """The token, once the lock is held (waiting for the thread to take it again after
        a dropped connection).

        Raises:
            DatabaseError: the lock could not be taken again within the timeout, or the
                server refused the connection to take it on.
        """
        deadline = time.monotonic() + self.timeout
        while not self._held.wait(min(0.1, max(0.0, deadline - time.monotonic()))):
            refused = self._refused
            if refused is not None:
                raise DatabaseError(
                    f"This worker lost its liveness lock on {self.location} (its connection "
                    f"dropped), and the server refused a new connection ({refused}). Its "
                    "running trial may be run again by another worker. Once the role, "
                    "password or database the URL names is usable again (or given a URL "
                    "naming one that is), run again to resume.")
            if time.monotonic() >= deadline:
                raise DatabaseError(
                    f"This worker lost its liveness lock on {self.location} (its connection "
                    f"dropped) and could not take it again within {self.timeout:g} s. Is "
                    "the server up? Run again to resume.")
        return self.token

    @property
    def holding(self) -> bool:
        return self._held.is_set()

    def end(self) -> None:
        """Give the lock up (close its connection) and stop the thread."""
        if self.pid != os.getpid():
            return  # a parent's, inherited through fork: its connection is not ours
        self._stop.set()
        self._held.clear()  # (a store still pointing at it never takes it for held)
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
        _HELD.pop(self.token, None)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)


def live_keys(db: Any) -> set[int]:
    """The keys of every liveness lock held on this store now."""
    return {int(r[0]) for r in db.query(LIVE_TOKENS, (db.keys["live"],))}


def running_sessions(db: Any) -> int:
    """How many worker sessions have a trial running on this store, by its rows alone:
    what a hot standby, which sees none of the primary's locks, can tell of its workers."""
    return int(db.query("SELECT count(DISTINCT session) FROM trials WHERE status = 'RUNNING'"
                        )[0][0])


def live_among(db: Any, keys: list[int]) -> set[int]:
    """Which of ``keys`` are held by a live worker now, in one statement."""
    return {int(r[0]) for r in db.query(LIVE_AMONG, (keys, db.keys["live"]))}


def is_live(db: Any, token: str) -> bool:
    key = token_key(token)
    if key is None:
        return False
    return bool(db.query(IS_LIVE, (db.keys["live"], key))[0][0])


def wait_released(db: Any, token: str, deadline: float) -> bool:
    """Whether ``token`` is free by ``deadline`` (monotonic seconds); for tests and tools
    that must see a killed worker's lock released."""
    while is_live(db, token):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)  # the server ending the dead client's backend
    return True
