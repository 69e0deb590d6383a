"""One project (search) in a PostgreSQL store: the store contract's ProjectStore.

The same semantics as the SQLite engine (hpstore/store/sqlite/project.py), with PostgreSQL's
own means of serialising: a decision is one transaction under a transaction-level advisory
lock of the project, with the oracle's reads on the same connection inside it; a status
change takes the project's status-log lock first (so the log's ids grow in commit order,
and every transaction takes its locks in one order: decision, log, rows; the one exception,
a stop a rule decides while the trial's row is share-locked, is explained in
``_record_and_check``); a check followed by a write locks the row it checks. Every
user-supplied name is a bound parameter.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from hpstore.errors import (
    ProjectRemovedError,
    TrialNotFoundError,
    TrialNotRunningError,
)
from hpstore.store.contract import StopCheck
from hpstore.store.decode import ANY_JSON, from_json
from hpstore.store.postgresql.deciding import DecidingMixin
from hpstore.store.postgresql.document import DocumentMixin
from hpstore.store.postgresql.driver import storable
from hpstore.store.postgresql.history import PostgresHistory
from hpstore.store.postgresql.liveness import SESSION_LIVES
from hpstore.store.postgresql.names import check_names, check_text, space_names
from hpstore.store.postgresql.reading import TRIAL_COLUMNS, ReadingMixin
from hpstore.store.postgresql.steering import SteeringMixin
from hpstore.store.records import NewProject, ProjectRecord, TrialRecord, dumps
from hpstore.store.rows import (
    check_running,
    from_db_float,
    points_after,
    project_record,
    same_entry,
    space_item,
    to_db_float,
    trial_record,
)
from hpstore.store.rows import (
    reaped as reaped_as,
)
from hpstore.trial import TrialStatus

#: the columns of a project in PROJECT_FIELDS order (hpstore.store.rows), JSON as its text
PROJECT_COLUMNS = ("project_id, name, oracle_class, oracle_config::text, objective::text, "
                   "max_trials, seed, space_version, created_at, updated_at, uncounted")

# A run's points of one metric for a stopping rule: all of them, or (most reports) those
# from the last one the rule's checker holds on, by the key's range (``trial + 0``
# keeps the planner off the trial's index, which would walk every point of the run).
_ALL_POINTS = ("SELECT id, step, value FROM observations WHERE trial = %s AND run = %s "
               "AND metric = %s ORDER BY id")
_POINTS_FROM = ("SELECT id, step, value FROM observations WHERE id >= %s AND trial + 0 = %s "
                "AND run = %s AND metric = %s ORDER BY id")
_TRIAL = f"SELECT {TRIAL_COLUMNS} FROM trials WHERE project_id = %s AND trial_id = %s"
# A session's running trials whose worker is dead now (see liveness.SESSION_LIVES).
_DEAD_RUNS = (f"SELECT {TRIAL_COLUMNS} FROM trials WHERE project_id = %s AND status = "
              f"'RUNNING' AND session = %s AND NOT {SESSION_LIVES} ORDER BY number FOR UPDATE")
#: the locks a read of a trial may take on its row until the transaction ends
_TRIAL_LOCKED = {"": _TRIAL, "share": _TRIAL + " FOR SHARE", "update": _TRIAL + " FOR UPDATE"}

# Metrics, in one statement: the trial's row is read and share-locked, and the rows are
# added only if it is still running in the run expected, started when that run did (the
# check record_metrics makes: a trial created since under the same id, after the one
# expected was lost, has a run 1 of its own).
# The values are added under the project's "observe" lock, taken before their ids are:
# a project's values then become visible in the order of their ids (observations_since).
_RECORD = (
    "WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock(%s, %s)), "
    f"t AS (SELECT {TRIAL_COLUMNS} FROM lock, trials WHERE project_id = %s AND trial_id = %s "
    "FOR SHARE OF trials), "
    "added AS (INSERT INTO observations (trial, run, metric, "
    "direction, step, value, at) SELECT t.id, t.run_count, m.metric, m.direction, m.step, "
    "m.value, %s FROM t, unnest(%s::text[], %s::text[], %s::bigint[], %s::float8[]) WITH "
    "ORDINALITY AS m(metric, direction, step, value, n) WHERE t.status IN ('RUNNING', "
    "'STOPPED') AND (%s::int IS NULL OR t.run_count = %s::int) AND (%s::float8 IS NULL OR "
    "t.started_at = %s::float8) ORDER BY m.n RETURNING 1) "
    "SELECT t.* FROM t")
_RECORDED = (
    "SELECT EXISTS (SELECT 1 FROM observations AS o JOIN trials AS t ON t.id = o.trial "
    "WHERE t.project_id = %s AND t.trial_id = %s AND o.at = %s AND o.metric = %s)")

# The end of a run, in one statement, under the status-log lock: written only if nobody
# moved the trial since it was read (nor lost it: its run started when it was read).
_END_OF_RUN = (
    "WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock(%s, %s)), changed AS (UPDATE "
    "trials SET status = %s, message = %s, score = %s, best_step = %s, queued = NULL, "
    "invalid_runs = invalid_runs + %s, session = NULL, ended_at = %s, pid = %s, changed_at "
    "= %s, hp_values = coalesce(%s::json, hp_values), values_key = coalesce(%s, values_key) "
    "FROM lock WHERE id = %s AND status = %s AND run_count = %s AND started_at IS NOT "
    "DISTINCT FROM %s::float8")
_CHANGED = " RETURNING 1) SELECT count(*) FROM changed"
_FINISH = _END_OF_RUN + _CHANGED
# ... and, for an end computed from the values the worker kept, only if nothing else about
# the trial changed and its run still holds exactly those values (metric values are only
# ever added, so their number says whether any came from elsewhere).
_AS_SEEN = (" AND message IS NOT DISTINCT FROM %s AND invalid_runs = %s AND values_key = %s "
            "AND (SELECT count(*) FROM observations WHERE trial = %s AND run = %s) = %s")
_FINISH_SEEN = _END_OF_RUN + _AS_SEEN + _CHANGED
_FINISHED = ("SELECT EXISTS (SELECT 1 FROM transitions WHERE trial = %s AND at = %s AND "
             "pid = %s AND to_status = %s)")


# A stop decided by a rule: only a trial still RUNNING (the trigger logs the change, with
# the rule's message). The run ends here as far as the store goes (its time, its worker
# let go): a worker that dies, or whose end fails, before it ends the trial leaves it
# whole; its end, when written, has the last word.
_STOP = ("UPDATE trials SET status = 'STOPPED', message = %s, score = %s, best_step = %s, "
         "session = NULL, ended_at = %s, pid = %s, changed_at = %s WHERE id = %s AND "
         "status = 'RUNNING'")


class _Unseen(Exception):
    """An end computed from the values the worker kept found the trial changed: rolled
    back, and ended again from what the store holds."""


def find_project(db: Any, name: str) -> ProjectRecord | None:
    if "\x00" in name:  # (no text column holds one: no project has such a name)
        return None
    rows = db.query(f"SELECT {PROJECT_COLUMNS} FROM projects WHERE name = %s", (name,))
    return project_record(rows[0]) if rows else None


def all_projects(db: Any) -> list[ProjectRecord]:
    return [project_record(r) for r in db.query(
        f"SELECT {PROJECT_COLUMNS} FROM projects ORDER BY project_id")]


def insert_project(db: Any, conn: Any, new: NewProject, *, replace: bool) -> int:
    """Insert a project row (and its space) in the transaction open on ``conn``; its id.
    Ids come from a sequence: a process holding the id of a replaced project finds it
    gone, never its successor."""
    now = db.now()
    if replace:
        conn.execute("DELETE FROM projects WHERE name = %s", (new.name,))
    project_id = int(conn.execute(
        "INSERT INTO projects (name, oracle_class, oracle_config, objective, max_trials, seed,"
        " created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING project_id",
        (new.name, new.oracle_class, dumps(dict(new.oracle_config)), dumps(dict(new.objective)),
         new.max_trials, new.seed, now, now)).fetchone()[0])
    insert_space(conn, project_id, new.space, start=0)
    return project_id


def insert_space(conn: Any, project_id: int, space: Iterable[Mapping[str, Any]],
                 start: int) -> int:
    items = list(space)
    if items:
        # one statement, not executemany: psycopg pipelines that, and a row the server
        # refuses (a name a LATIN1 database cannot store) then also printed a raw driver
        # line ("error ignored terminating <psycopg.Pipeline ...>") beside hpstore's error
        conn.execute(
            "INSERT INTO hyperparameters (project_id, position, name, class_name, config) "
            "SELECT %s, position, name, class_name, config::json FROM unnest(%s::integer[], "
            "%s::text[], %s::text[], %s::text[]) AS i(position, name, class_name, config)",
            (project_id, [start + n for n in range(len(items))],
             [item["config"]["name"] for item in items],
             [item["class_name"] for item in items],
             [dumps(item["config"]) for item in items]))
    return start + len(items)


class PostgresProject(ReadingMixin, DocumentMixin, SteeringMixin, DecidingMixin):
    """One project of a PostgreSQL store (see :class:`hpstore.store.contract.ProjectStore`)."""

    remote = True

    def __init__(self, db: Any, project_id: int, name: str) -> None:
        self.db = db
        self.project_id = project_id
        self.name = name

    def removed(self) -> ProjectRemovedError:
        return ProjectRemovedError(
            f"The project {self.name!r} was removed from {self.db.location} or replaced "
            "since this oracle opened it (overwrite=True in another process, or in another "
            "tuner or oracle of this one, or a copy with --overwrite); this oracle stopped "
            "writing to it. Open the project again to work on the new one.")

    def check_exists(self, conn: Any = None) -> None:
        """Raises ProjectRemovedError when this project is no longer in the store."""
        if not self.db.query("SELECT 1 FROM projects WHERE project_id = %s",
                             (self.project_id,)):
            raise self.removed()

    def _write(self, body: Any, lock: tuple[str, int] | None = None) -> Any:
        """``body(conn)`` in one write transaction (``lock`` taken as it begins)."""
        return self._guard(lambda: self.db.transaction(body, lock=lock))

    def _write_statement(self, sql: str, params: Any, landed: Any) -> Any:
        """One write statement (see Database.write)."""
        return self._guard(lambda: self.db.write(sql, params, landed))

    def _guard(self, call: Any) -> Any:
        """``call()``, a refusal of the data it writes said in words.

        Raises:
            ProjectRemovedError: the project was deleted meanwhile (a row pointing at it
                was refused).
            DatabaseError: any other refusal (a NUL character in a name, say).
        """
        psycopg = self.db.psycopg
        try:
            return call()
        except psycopg.errors.ForeignKeyViolation:
            raise self.removed() from None
        except (psycopg.IntegrityError, psycopg.DataError) as exc:
            raise self.db.explain(exc) from None

    # -- settings and space ---------------------------------------------------------------
    def record(self) -> ProjectRecord:
        rows = self.db.query(f"SELECT {PROJECT_COLUMNS} FROM projects WHERE project_id = %s",
                             (self.project_id,))
        if not rows:
            raise self.removed()
        return project_record(rows[0])

    def update_settings(self, *, max_trials: int | None = None,
                        oracle_config: Mapping[str, Any] | None = None,
                        set_max_trials: bool = False) -> None:
        if not set_max_trials and oracle_config is None:
            return

        def update(conn: Any) -> None:
            self._lock_project_row(conn)
            if set_max_trials:
                conn.execute("UPDATE projects SET max_trials = %s, updated_at = %s "
                             "WHERE project_id = %s", (max_trials, self.db.now(), self.project_id))
            if oracle_config is not None:
                conn.execute("UPDATE projects SET oracle_config = %s, updated_at = %s "
                             "WHERE project_id = %s",
                             (dumps(dict(oracle_config)), self.db.now(), self.project_id))

        self._write(update)

    def _lock_project_row(self, conn: Any) -> int:
        """Lock the project's row for this transaction; its space version."""
        # NO KEY UPDATE: trials may still be inserted meanwhile (their foreign key check
        # takes a KEY SHARE lock, which this one does not block)
        found = conn.execute("SELECT space_version FROM projects WHERE project_id = %s "
                             "FOR NO KEY UPDATE", (self.project_id,)).fetchone()
        if found is None:
            raise self.removed()
        return int(found[0])

    def space_version(self) -> int:
        rows = self.db.query("SELECT space_version FROM projects WHERE project_id = %s",
                             (self.project_id,))
        if not rows:
            raise self.removed()
        return int(rows[0][0])

    def space(self) -> tuple[int, list[dict[str, Any]]]:
        # one statement, so one snapshot: the version and the entries it counts
        rows = self.db.query(
            "SELECT p.space_version, h.class_name, h.config::text FROM projects AS p LEFT JOIN "
            "hyperparameters AS h ON h.project_id = p.project_id WHERE p.project_id = %s "
            "ORDER BY h.position", (self.project_id,))
        if not rows:
            raise self.removed()
        return int(rows[0][0]), [space_item(c, j) for _, c, j in rows if c is not None]

    def extend_space(self, entries: list[dict[str, Any]]) -> int:
        """See the contract.

        Raises:
            NameTooLongError: a hyperparameter name holding a NUL; nothing is written.
        """
        check_text("hyperparameter name", space_names(entries))
        return int(self._write(lambda conn: self._extend_space(conn, entries)))

    def _extend_space(self, conn: Any, entries: list[dict[str, Any]]) -> int:
        version = self._lock_project_row(conn)  # one extender at a time
        stored = [space_item(c, j) for c, j in conn.execute(
            "SELECT class_name, config::text FROM hyperparameters WHERE project_id = %s "
            "ORDER BY position", (self.project_id,))]
        new = [e for e in entries if not any(same_entry(s, e) for s in stored)]
        if new:
            insert_space(conn, self.project_id, new, start=len(stored))
            version += 1
            conn.execute("UPDATE projects SET space_version = %s, updated_at = %s "
                         "WHERE project_id = %s", (version, self.db.now(), self.project_id))
            self._grew_space(version)
        return version

    # -- creating trials --------------------------------------------------------------------
    def running(self) -> list[TrialRecord]:
        return [trial_record(r) for r in self.db.query(
            f"SELECT {TRIAL_COLUMNS} FROM trials WHERE project_id = %s AND status = 'RUNNING' "
            "ORDER BY number", (self.project_id,))]

    def reap(self, sessions: Iterable[str], max_interruptions: int) -> list[str]:
        """Hand back the running trials of dead workers; returns their trial ids.

        Under the project's decision lock, and only for tokens whose lock nobody holds at
        that moment: a worker that took its lock again after a dropped connection keeps its
        trial.
        """
        tokens = list(dict.fromkeys(sessions))

        def reap(conn: Any) -> list[str]:
            self.db.lock(conn, "log", self.project_id)
            return self._reap(conn, tokens, max_interruptions)

        return list(self._write(reap, lock=("decide", self.project_id)))

    def _reap(self, conn: Any, tokens: list[str], max_interruptions: int) -> list[str]:
        reaped: list[str] = []
        now = self.db.now()
        # only the runs whose worker is dead now (alive after all: it took its lock again),
        # handed back in trial order whatever order the tokens come in
        found = [trial_record(row) for token in tokens for row in conn.execute(
            _DEAD_RUNS, (self.project_id, token, self.db.keys["live"])).fetchall()]
        for trial in sorted(found, key=lambda t: t.number):
            count, failed, message = reaped_as(trial, max_interruptions)
            if failed:
                conn.execute(
                    "UPDATE trials SET status = 'FAILED', interruptions = %s, message = %s,"
                    " ended_at = %s, session = NULL, pid = %s, changed_at = %s WHERE id = %s",
                    (count, message, now, os.getpid(), now, trial.key))
            else:
                conn.execute(
                    "UPDATE trials SET status = 'IDLE', interruptions = %s, message = %s, "
                    "queued = %s, session = NULL, pid = %s, changed_at = %s WHERE id = %s",
                    (count, message, self._next_queue_position(conn), os.getpid(), now,
                     trial.key))
            reaped.append(trial.trial_id)
        return reaped

    def adopt(self, trial: TrialRecord, session: str | None) -> TrialRecord:
        def adopt(conn: Any) -> TrialRecord:
            conn.execute("UPDATE trials SET session = %s WHERE id = %s AND status = 'RUNNING' "
                         "AND session IS NOT DISTINCT FROM %s",
                         (session, trial.key, trial.session))
            return self._trial(conn, trial.trial_id)

        return self._write(adopt)  # type: ignore[no-any-return]

    def take_queued(self, tuner_id: str, session: str | None) -> TrialRecord | None:
        """Start the trial at the head of the retry queue for ``tuner_id``; a trial this
        tuner was running when it was interrupted comes first."""
        return self._write(  # type: ignore[no-any-return]
            lambda conn: self._take_queued(conn, tuner_id, session),
            lock=("decide", self.project_id))

    def _take_queued(self, conn: Any, tuner_id: str, session: str | None
                     ) -> TrialRecord | None:
        self.db.lock(conn, "log", self.project_id)  # before any row: see the module's doc
        row = conn.execute(
            f"SELECT {TRIAL_COLUMNS} FROM trials WHERE project_id = %s AND queued IS NOT NULL "
            "ORDER BY (tuner_id IS NOT DISTINCT FROM %s AND status = 'IDLE') DESC, queued "
            "LIMIT 1 FOR UPDATE", (self.project_id, tuner_id)).fetchone()
        if row is None:
            return None
        now = self.db.now()
        updated = conn.execute(
            f"UPDATE trials SET status = 'RUNNING', queued = NULL, tuner_id = %s, session = %s,"
            " run_count = run_count + 1, started_at = %s, ended_at = NULL, score = NULL, "
            "best_step = NULL, message = NULL, pid = %s, changed_at = %s WHERE id = %s "
            f"RETURNING {TRIAL_COLUMNS}", (tuner_id, session, now, os.getpid(), now, row[0])
        ).fetchone()
        return trial_record(updated)

    def _next_queue_position(self, conn: Any) -> int:
        found = conn.execute("UPDATE projects SET queue_counter = queue_counter + 1 "
                             "WHERE project_id = %s RETURNING queue_counter",
                             (self.project_id,)).fetchone()
        if found is None:
            raise self.removed()
        return int(found[0])

    def get_value(self, key: str, default: Any = None) -> Any:
        rows = self.db.query("SELECT value::text FROM oracle_state WHERE project_id = %s AND "
                             "key = %s", (self.project_id, key))
        return from_json(rows[0][0], "oracle_state.value", ANY_JSON) if rows else default

    # -- changing trials ------------------------------------------------------------------
    def _trial(self, conn: Any, trial_id: str, lock: str = "") -> TrialRecord:
        row = conn.execute(_TRIAL_LOCKED[lock], (self.project_id, str(trial_id))).fetchone()
        if row is None:
            self.check_exists()
            raise TrialNotFoundError(
                f"No trial {trial_id!r} in project {self.name!r}; trial ids are strings such "
                "as those in `oracle.trials`.")
        return trial_record(row)

    def record_metrics(self, trial_id: str, rows: list[tuple[str, str, int, float]],
                       run: int | None = None, stop: StopCheck | None = None,
                       known: TrialRecord | None = None, started: float | None = None
                       ) -> TrialRecord:
        """Append (metric, direction, step, value) rows to the trial's current run; with
        ``stop``, a RUNNING trial the check stops becomes STOPPED in the same transaction.
        (``known`` is not needed here: the one statement that adds the rows returns the
        trial as it is, in the same round trip.)

        Raises:
            TrialNotFoundError, ProjectRemovedError: no such trial, or no such project.
            TrialNotRunningError: the trial is not RUNNING or STOPPED, or (``run`` given)
                no longer in that run.
            TrialLostError: its run ``run`` started at another time than ``started``.
            NameTooLongError: a metric name longer than the index takes; nothing is added.
        """
        now = self.db.now()
        metrics, directions, steps, values = (list(c) for c in zip(*rows)) if rows else (
            [], [], [], [])
        check_names("metric name", dict.fromkeys(metrics))
        params = (self.db.keys["observe"], self.project_id & 0x7FFFFFFF, self.project_id,
                  str(trial_id),
                  now, metrics, directions, [int(x) for x in steps],
                  [to_db_float(v) for v in values], run, run, started, started)
        if stop is not None and stop.metric in metrics:
            # a rule asked: the values, its reads and its verdict in one transaction
            return self._write(  # type: ignore[no-any-return]
                lambda conn: self._record_and_check(conn, trial_id, params, run, started,
                                                    stop, now))
        found = self._write_statement(
            _RECORD, params,
            # after a reconnect: were these rows added before the connection dropped?
            lambda: bool(rows) and bool(self.db.query(_RECORDED, (
                self.project_id, str(trial_id), now, rows[0][0]))[0][0]))
        if found is None:  # added before a dropped connection: the trial as it is now
            return self.trial(trial_id)
        return self._recorded(trial_id, found[0] if found else None, run, started)

    def _recorded(self, trial_id: str, row: Any, run: int | None, started: float | None
                  ) -> TrialRecord:
        """The trial _RECORD read (None: no such trial), checked to be running.

        Raises:
            TrialNotFoundError, ProjectRemovedError, TrialNotRunningError, TrialLostError:
                as :meth:`record_metrics`; the statement then added nothing.
        """
        if row is None:
            self.check_exists()
            raise TrialNotFoundError(
                f"No trial {trial_id!r} in project {self.name!r}; trial ids are strings such "
                "as those in `oracle.trials`.")
        trial = trial_record(row)
        check_running(trial, run, started=started, logged=self.run_started)
        return trial

    def _record_and_check(self, conn: Any, trial_id: str, params: tuple[Any, ...],
                          run: int | None, started: float | None, stop: StopCheck,
                          now: float) -> TrialRecord:
        trial = self._recorded(trial_id, conn.execute(_RECORD, params).fetchone(), run,
                               started)
        if trial.status != TrialStatus.RUNNING:
            return trial
        # (a sequence's ids: another session's report to this very run could commit
        # below one already seen; only the run's own worker reports to it)
        last = stop.last(trial.key, trial.run)
        points = None if last is None else points_after(last, [
            (i, s, from_db_float(v)) for i, s, v in conn.execute(
                _POINTS_FROM, (last[0], trial.key, trial.run, stop.metric))])
        if points is None:  # (nothing kept, or not what the store holds now)
            last, points = None, [(i, s, from_db_float(v)) for i, s, v in conn.execute(
                _ALL_POINTS, (trial.key, trial.run, stop.metric))]
        verdict = stop.decide(trial.key, trial.run, last, points, PostgresHistory(
            conn, self.project_id, stop.metric, trial.key))
        if verdict is None:
            return trial
        # The status log's lock before the change the trigger logs. Taken only now, with
        # the row share-locked, so that reports the rule lets go on never wait for the
        # log: only a stop does. Another process changing this trial's status meanwhile
        # (it takes the log lock, then the row: a reap after this worker was cut off, a
        # set_status) makes a deadlock, which the server breaks within deadlock_timeout;
        # the loser is retried, and a trial handed on is then refused as not running.
        self.db.lock(conn, "log", self.project_id)
        conn.execute(_STOP, (verdict.message, None if verdict.score is None
                             else to_db_float(verdict.score), verdict.best_step, now,
                             os.getpid(), now, trial.key))
        trial.status, trial.message = TrialStatus.STOPPED, verdict.message
        trial.score, trial.best_step = verdict.score, verdict.best_step
        trial.session, trial.ended_at = None, now
        return trial

    def finish(self, trial: TrialRecord, status: str, message: str | None,
               values: Mapping[str, Any] | str, key: str, score: float | None,
               best_step: int | None, *, invalid: bool, requeue: bool,
               space: list[dict[str, Any]] | None = None, seen: int | None = None
               ) -> bool:
        """Write the end of a run (see the store contract): the status, message, values (a
        dict, or the JSON text already stored) and score, with the hyperparameters the run
        added to the space. Returns False only when ``seen`` is given and the trial or its
        metric values are no longer what the end was computed from; nothing is then written.

        Raises:
            TrialNotRunningError: the trial changed since ``trial`` was read (another process
                ended it, or handed it to another worker); nothing was written.
            NameTooLongError: a hyperparameter of ``space`` named with a NUL; nothing was
                written.
        """
        check_text("hyperparameter name", space_names(space or ()))
        final = status in TrialStatus.FINAL
        message = storable(message)
        new_values = (None, None) if isinstance(values, str) else (dumps(dict(values)), key)
        guard = () if seen is None else (trial.message, trial.invalid_runs, trial.values_key,
                                         trial.key, trial.run, seen)
        if not requeue and not space:  # the usual end: one statement
            now = self.db.now()
            changed = self._write_statement(_FINISH if seen is None else _FINISH_SEEN, (
                self.db.keys["log"], self.project_id & 0x7FFFFFFF, status, message,
                None if score is None else to_db_float(score), best_step, 1 if invalid else 0,
                now if final else None, os.getpid(), now, *new_values, trial.key, trial.status,
                trial.run, trial.started_at, *guard), lambda: bool(self.db.query(_FINISHED, (
                    trial.key, now, os.getpid(), status))[0][0]))
            if changed is not None and not changed[0][0]:
                if seen is not None:
                    return False
                current = self.trial(trial.trial_id)
                check_running(current, trial.run, (trial.status,), trial.started_at,
                              self.run_started)
                raise TrialNotRunningError(f"Trial {trial.trial_id} changed while it was "
                                           "being ended; nothing was recorded.")
            return True

        def finish(conn: Any) -> None:
            self.db.lock(conn, "log", self.project_id)
            queued = self._next_queue_position(conn) if requeue else None
            now = self.db.now()
            # Only if nobody else moved the trial since it was read: the check and the
            # change are one statement.
            changed = conn.execute(
                "UPDATE trials SET status = %s, message = %s, score = %s, best_step = %s, "
                "queued = %s, invalid_runs = invalid_runs + %s, session = NULL, ended_at = %s, "
                "pid = %s, changed_at = %s, hp_values = coalesce(%s::json, hp_values), "
                "values_key = coalesce(%s, values_key) "
                "WHERE id = %s AND status = %s AND run_count = %s AND started_at IS NOT "
                "DISTINCT FROM %s::float8" + ("" if seen is None else _AS_SEEN),
                (status, message, None if score is None else to_db_float(score), best_step,
                 queued, 1 if invalid else 0, now if final else None, os.getpid(), now,
                 *new_values, trial.key, trial.status, trial.run, trial.started_at,
                 *guard)).rowcount
            if not changed:
                if seen is not None:
                    raise _Unseen  # rolled back: nothing of this end is written
                current = self._trial(conn, trial.trial_id)
                check_running(current, trial.run, (trial.status,), trial.started_at,
                              self.run_started)
                raise TrialNotRunningError(f"Trial {trial.trial_id} changed while it was "
                                           "being ended; nothing was recorded.")
            if space:
                self._extend_space(conn, space)

        try:
            # Under the decision lock too, as a reap is: a trial to run again, or a space
            # grown, is then never committed between a decision's reading of the facts
            # (nothing queued, the space's version) and the commit of the trial it decides,
            # which would log a new trial after a trial waiting to run again (the file's
            # single writer gives the same order).
            self._write(finish, lock=("decide", self.project_id))
        except _Unseen:
            return False
        return True

    def set_status(self, trial_id: str, status: str, message: str | None) -> str:
        """Change a trial's status from outside its run (e.g. STOPPED); returns the old one."""
        message = storable(message)

        def change(conn: Any) -> str:
            self.db.lock(conn, "log", self.project_id)
            trial = self._trial(conn, trial_id, "update")
            now = self.db.now()
            conn.execute("UPDATE trials SET status = %s, message = %s, pid = %s, changed_at = %s"
                         " WHERE id = %s", (status, message, os.getpid(), now, trial.key))
            return trial.status

        return str(self._write(change))
