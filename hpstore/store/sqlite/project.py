"""One project (search) in a SQLite file: the store contract's ProjectStore.

Every statement takes user-supplied names (hyperparameters, metrics, projects) as bound
parameters; nothing a user typed is ever formatted into SQL text. Reads for people and the
whole-project document live beside this module (reading.py, document.py).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from typing import Any

from hpstore.errors import (
    ProjectRemovedError,
    TrialNotFoundError,
    TrialNotRunningError,
    TunerIdInUseError,
)
from hpstore.store.contract import CreationFacts, Decider, Decision, StopCheck
from hpstore.store.decode import ANY_JSON, from_json
from hpstore.store.records import NewProject, ProjectRecord, TrialRecord, dumps
from hpstore.store.rows import (
    PROJECT_FIELDS,
    TRIAL_FIELDS,
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
from hpstore.store.sqlite.ahead import AheadMixin
from hpstore.store.sqlite.document import DocumentMixin
from hpstore.store.sqlite.history import CompletedValues, RungValues, SQLiteHistory
from hpstore.store.sqlite.reading import ReadingMixin
from hpstore.store.sqlite.readonly import AnyDatabase
from hpstore.store.sqlite.steering import SteeringMixin
from hpstore.trial import TrialStatus

TRIAL_COLUMNS = ", ".join(TRIAL_FIELDS)
PROJECT_COLUMNS = ", ".join(PROJECT_FIELDS)
# A run's points of one metric for a stopping rule: all of them, or (most reports) those
# from the last one the rule's checker holds on, found by the row id's range (the trial's
# index would walk every point of the run to filter them: the square of a run's length
# over its reports).
_ALL_POINTS = ("SELECT id, step, value FROM observations WHERE trial = ? AND run = ? "
               "AND metric = ? ORDER BY id")
# (plain ? placeholders: Python 3.12.0-3.12.3 warn of numbered ones bound from a tuple)
_POINTS_FROM = ("SELECT id, step, value FROM observations WHERE id >= ? AND +trial = ? "
                "AND run = ? AND metric = ? ORDER BY id")
# What deciding the next trial starts from (CreationFacts), in one statement.
_FACTS_COLUMNS = (
    "p.max_trials, (SELECT number + 1 FROM trials WHERE project_id = p.project_id ORDER BY "
    "number DESC LIMIT 1), EXISTS (SELECT 1 FROM trials WHERE project_id = p.project_id AND "
    "queued IS NOT NULL), p.uncounted, p.space_version")
_FACTS = f"SELECT {_FACTS_COLUMNS} FROM projects p WHERE p.project_id = ?"
_NEXT_NUMBER = ("SELECT number + 1 FROM trials WHERE project_id = ? ORDER BY number DESC "
                "LIMIT 1")
# ... and, for a decision made in the transaction that records it, whether the tuner id runs
# a trial in another session (one statement less under the write lock), and whether any
# trial runs at all (when none does, the running trials need no read of their own).
_DECISION_FACTS = (
    f"SELECT {_FACTS_COLUMNS}, EXISTS (SELECT 1 FROM trials WHERE project_id = p.project_id "
    "AND status = 'RUNNING' AND tuner_id = ? AND session IS NOT ?), EXISTS (SELECT 1 FROM "
    "trials WHERE project_id = p.project_id AND status = 'RUNNING') FROM projects p WHERE "
    "p.project_id = ?")


def new_project_id(conn: sqlite3.Connection, replacing: str | None = None) -> int:
    """The id of a project about to be inserted; deletes the project ``replacing`` names.

    Ids are never reused: a process still holding the id of a project that was replaced
    (``overwrite=True`` in another terminal) must find it gone, not find its successor.
    The new id is taken before the old project is deleted, so it is above every id ever
    given (hpstore never deletes a project without creating its successor first).
    """
    (top,) = conn.execute("SELECT coalesce(max(project_id), 0) FROM projects").fetchone()
    if replacing is not None:
        conn.execute("DELETE FROM projects WHERE name = ?", (replacing,))
    return int(top) + 1


def find_project(db: AnyDatabase, name: str) -> ProjectRecord | None:
    rows = db.query(f"SELECT {PROJECT_COLUMNS} FROM projects WHERE name = ?", (name,))
    return project_record(rows[0]) if rows else None


def all_projects(db: AnyDatabase) -> list[ProjectRecord]:
    return [project_record(r) for r in db.query(
        f"SELECT {PROJECT_COLUMNS} FROM projects ORDER BY project_id")]


def insert_project(conn: sqlite3.Connection, new: NewProject, *, replace: bool,
                   created_at: float | None = None) -> int:
    """Insert a project row (and its space) inside the caller's transaction; its id."""
    now = time.time()
    project_id = new_project_id(conn, replacing=new.name if replace else None)
    conn.execute(
        "INSERT INTO projects (project_id, name, oracle_class, oracle_config, objective,"
        " max_trials, seed, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (project_id, new.name, new.oracle_class, dumps(dict(new.oracle_config)),
         dumps(dict(new.objective)), new.max_trials, new.seed,
         now if created_at is None else created_at, now))
    _insert_space(conn, project_id, new.space, start=0)
    return project_id


def _insert_space(conn: sqlite3.Connection, project_id: int,
                  space: Iterable[Mapping[str, Any]], start: int) -> int:
    n = start
    for item in space:
        conn.execute(
            "INSERT INTO hyperparameters (project_id, position, name, class_name, config) "
            "VALUES (?, ?, ?, ?, ?)",
            (project_id, n, item["config"]["name"], item["class_name"],
             dumps(item["config"])))
        n += 1
    return n



# The end of a run, written only if the trial is still in the status and run it was read in
# (the run's start time tells it from a run of a trial created since in the same row, after
# the one read was lost).
_END = ("UPDATE trials SET status = ?, message = ?, score = ?, best_step = ?, queued = ?, "
        "invalid_runs = invalid_runs + ?, session = NULL, ended_at = ?, pid = ?, "
        "changed_at = ? WHERE id = ? AND status = ? AND run_count = ? AND started_at IS ?")
# ... and, for an end computed from the values the worker kept, only if nothing else about
# the trial changed and its run still holds exactly those values (metric values are only
# ever added, so their number says whether any came from elsewhere).
_END_AS_SEEN = _END + (
    " AND message IS ? AND invalid_runs = ? AND values_key = ? AND (SELECT count(*) "
    "FROM observations WHERE trial = ? AND run = ?) = ?")
_OBSERVE = ("INSERT INTO observations (trial, run, metric, direction, step, value, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)")
# ... one value, added only if the trial (its row id in this project: project ids are never
# reused, row ids may be) is RUNNING in the given run, started when that run did (a trial
# created since in a reused row, after the one known was lost, has a run of its own).
_OBSERVE_IF_RUNNING = (
    "INSERT INTO observations (trial, run, metric, direction, step, value, at) "
    "SELECT id, run_count, ?, ?, ?, ?, ? FROM trials WHERE id = ? AND project_id = ? AND "
    "run_count = ? AND started_at = ? AND status = 'RUNNING'")


class SQLiteProject(AheadMixin, ReadingMixin, DocumentMixin, SteeringMixin):
    """One project of a SQLite search file (see :class:`hpstore.store.contract.ProjectStore`)."""

    remote = False

    def __init__(self, db: AnyDatabase, project_id: int, name: str) -> None:
        self.db = db
        self.project_id = project_id
        self.name = name
        #: metric -> the completed trials' values a stopping rule asked about (see
        #: CompletedValues), kept from one report to the next
        self._completed: dict[str, CompletedValues] = {}
        self._rungs: dict[str, RungValues] = {}  # (successive halving's, alike)

    def removed(self) -> ProjectRemovedError:
        return ProjectRemovedError(
            f"The project {self.name!r} was removed from {self.db.path or 'memory'} or "
            "replaced since this oracle opened it (overwrite=True in another process, or in "
            "another tuner or oracle of this one, or `hpstore copy` or `hpstore "
            "import-keras-tuner` with --overwrite); this oracle stopped writing to it. Open "
            "the project again to work on the new one."
        )

    def check_exists(self, conn: sqlite3.Connection) -> None:
        """Raises ProjectRemovedError when this project is no longer in the file."""
        if conn.execute("SELECT 1 FROM projects WHERE project_id = ?",
                        (self.project_id,)).fetchone() is None:
            raise self.removed()

    # -- settings and space ---------------------------------------------------------------
    def record(self) -> ProjectRecord:
        rows = self.db.query(f"SELECT {PROJECT_COLUMNS} FROM projects WHERE project_id = ?",
                             (self.project_id,))
        if not rows:
            raise self.removed()
        return project_record(rows[0])

    def update_settings(self, *, max_trials: int | None = None,
                        oracle_config: Mapping[str, Any] | None = None,
                        set_max_trials: bool = False) -> None:
        if not set_max_trials and oracle_config is None:
            return
        with self.db.write() as conn:
            self.check_exists(conn)
            if set_max_trials:
                conn.execute("UPDATE projects SET max_trials = ?, updated_at = ? "
                             "WHERE project_id = ?", (max_trials, time.time(), self.project_id))
            if oracle_config is not None:
                conn.execute("UPDATE projects SET oracle_config = ?, updated_at = ? "
                             "WHERE project_id = ?",
                             (dumps(dict(oracle_config)), time.time(), self.project_id))

    def space_version(self) -> int:
        rows = self.db.query("SELECT space_version FROM projects WHERE project_id = ?",
                             (self.project_id,))
        if not rows:
            raise self.removed()
        return int(rows[0][0])

    def space(self) -> tuple[int, list[dict[str, Any]]]:
        with self.db.read() as conn:
            version = conn.execute("SELECT space_version FROM projects WHERE project_id = ?",
                                   (self.project_id,)).fetchone()
            rows = conn.execute(
                "SELECT class_name, config FROM hyperparameters WHERE project_id = ? "
                "ORDER BY position", (self.project_id,)).fetchall()
        if version is None:
            raise self.removed()
        return int(version[0]), [space_item(c, j) for c, j in rows]

    def extend_space(self, entries: list[dict[str, Any]]) -> int:
        with self.db.write() as conn:
            return self._extend_space(conn, entries)

    def _extend_space(self, conn: sqlite3.Connection, entries: list[dict[str, Any]]) -> int:
        rows = conn.execute(
            "SELECT class_name, config FROM hyperparameters WHERE project_id = ? "
            "ORDER BY position", (self.project_id,)).fetchall()
        stored = [space_item(c, j) for c, j in rows]
        new = [e for e in entries if not any(same_entry(s, e) for s in stored)]
        found = conn.execute("SELECT space_version FROM projects WHERE project_id = ?",
                             (self.project_id,)).fetchone()
        if found is None:
            raise self.removed()
        version = int(found[0])
        if new:
            _insert_space(conn, self.project_id, new, start=len(stored))
            version += 1
            conn.execute("UPDATE projects SET space_version = ?, updated_at = ? "
                         "WHERE project_id = ?", (version, time.time(), self.project_id))
        return version

    # -- creating trials --------------------------------------------------------------------
    def running(self) -> list[TrialRecord]:
        rows = self.db.query(
            # no ORDER BY: it would steer SQLite off the status index onto a full scan
            f"SELECT {TRIAL_COLUMNS} FROM trials WHERE project_id = ? AND status = 'RUNNING'",
            (self.project_id,))
        return sorted((trial_record(r) for r in rows), key=lambda t: t.number)

    def creation_facts(self) -> CreationFacts:
        """What deciding the next trial needs, read in one statement (so one snapshot):
        create_trial needs it every time."""
        return self._facts_from(self.db.query(_FACTS, (self.project_id,)))

    def _facts(self, conn: sqlite3.Connection) -> CreationFacts:
        return self._facts_from(conn.execute(_FACTS, (self.project_id,)).fetchall())

    def _facts_from(self, rows: list[Any], running: tuple[TrialRecord, ...] | None = None
                    ) -> CreationFacts:
        if not rows:
            raise self.removed()
        row = rows[0]
        return CreationFacts(row[0], int(row[1] or 0), bool(row[2]), int(row[3]), int(row[4]),
                             running)

    def reap(self, sessions: Iterable[str], max_interruptions: int) -> list[str]:
        """Hand back the running trials of dead workers; returns their trial ids.

        A trial is queued again with the same values (IDLE) unless its workers have now died
        ``max_interruptions`` times, in which case it is FAILED.
        """
        reaped: list[str] = []
        with self.db.write() as conn:
            now = time.time()  # (holding the write lock: the log's times follow its order)
            # handed back in trial order, whatever order the tokens come in (a set's, which
            # moves with PYTHONHASHSEED: a resumed search queued them differently each time)
            found = [trial_record(r) for token in dict.fromkeys(sessions)
                     for r in conn.execute(
                         f"SELECT {TRIAL_COLUMNS} FROM trials WHERE project_id = ? AND "
                         "status = 'RUNNING' AND session = ?", (self.project_id, token))]
            for trial in sorted(found, key=lambda t: t.number):
                count, failed, message = reaped_as(trial, max_interruptions)
                if failed:
                    conn.execute(
                        "UPDATE trials SET status = 'FAILED', interruptions = ?, message = ?,"
                        " ended_at = ?, session = NULL, pid = ?, changed_at = ? WHERE id = ?",
                        (count, message, now, os.getpid(), now, trial.key))
                else:
                    queued = self._next_queue_position(conn)
                    conn.execute(
                        "UPDATE trials SET status = 'IDLE', interruptions = ?, message = ?, "
                        "queued = ?, session = NULL, pid = ?, changed_at = ? WHERE id = ?",
                        (count, message, queued, os.getpid(), now, trial.key))
                reaped.append(trial.trial_id)
        return reaped

    def adopt(self, trial: TrialRecord, session: str | None) -> TrialRecord:
        with self.db.write() as conn:
            conn.execute("UPDATE trials SET session = ? WHERE id = ? AND status = 'RUNNING' "
                         "AND session IS ?", (session, trial.key, trial.session))
            self.db.started_here(trial.key)
            return self._trial(conn, trial.trial_id)

    def take_queued(self, tuner_id: str, session: str | None) -> TrialRecord | None:
        """Start the trial at the head of the retry queue for ``tuner_id``; a trial this
        tuner was running when it was interrupted comes first."""
        with self.db.write() as conn:
            return self._take_queued(conn, tuner_id, session)

    def _take_queued(self, conn: sqlite3.Connection, tuner_id: str, session: str | None
                     ) -> TrialRecord | None:
        now = time.time()
        row = conn.execute(
            f"SELECT {TRIAL_COLUMNS} FROM trials WHERE project_id = ? AND queued IS NOT "
            "NULL ORDER BY (tuner_id IS ? AND status = 'IDLE') DESC, queued LIMIT 1",
            (self.project_id, tuner_id)).fetchone()
        if row is None:
            return None
        conn.execute(
            "UPDATE trials SET status = 'RUNNING', queued = NULL, tuner_id = ?, session = ?,"
            " run_count = run_count + 1, started_at = ?, ended_at = NULL, score = NULL, "
            "best_step = NULL, message = NULL, pid = ?, changed_at = ? WHERE id = ?",
            (tuner_id, session, now, os.getpid(), now, row[0]))
        trial = trial_record(row)
        self.db.started_here(trial.key)
        trial.status, trial.queued, trial.tuner_id, trial.session = (
            TrialStatus.RUNNING, None, tuner_id, session)
        trial.run += 1
        trial.started_at, trial.ended_at, trial.score, trial.best_step = now, None, None, None
        trial.message, trial.pid, trial.changed_at = None, os.getpid(), now
        return trial

    def decide(self, decider: Decider, *, tuner_id: str, session: str | None,
               quick: bool = False, running: bool = False,
               draws_ahead: bool = False) -> TrialRecord | Decision | None:
        if quick:
            # A cheap decision is made inside the transaction that records it: SQLite's
            # write lock is the only lock taken, its reads see exactly what it records
            # against, and a worker never waits for a lock held across someone's thinking.
            # Or, on the facts its last decision left, ahead of it (see ahead.py).
            ahead = self._decide_ahead(decider) if running and draws_ahead else None
            with self.db.write() as conn:
                if ahead is not None:
                    made = self._insert_ahead(conn, *ahead, tuner_id, session)
                    if made is not None:
                        return made
                found = conn.execute(_DECISION_FACTS,
                                     (tuner_id, session, self.project_id)).fetchall()
                # (running=(): none runs, as the facts' statement says, unless read below)
                facts = self._facts_from(found, () if running else None)
                in_use = bool(found[0][5])
                # found as the last decision left them: the next is made ahead of the lock
                self._foreseen = facts == self._expected
                if running and found[0][6]:  # some run: to hand back or reap, maybe
                    with_running = self._with_running(facts, tuner_id, session)
                    if with_running is None:
                        return None
                    facts = with_running
                if facts.queued:
                    taken = self._take_queued(conn, tuner_id, session)
                    if taken is not None:
                        return taken
                decision = decider(facts)
                if decision.status != TrialStatus.RUNNING:
                    if decision.state:
                        self._write_state(conn, decision.state)
                    return decision
                return self._insert(conn, facts, decision, tuner_id, session, in_use)
        # An algorithm that thinks for long (a model to fit) decides under the file lock,
        # outside any write transaction, so other workers' writes go on meanwhile; its
        # decision is recorded in one short write transaction.
        while True:
            with self.db.lock(tuner_id):
                facts = self.creation_facts()
                if running:
                    with_running = self._with_running(facts, tuner_id, session)
                    if with_running is None:
                        return None
                    facts = with_running
                if facts.queued:  # a trial waiting to run comes before any new one
                    taken = self.take_queued(tuner_id, session)
                    if taken is not None:
                        return taken
                decision = decider(facts)
                if decision.status != TrialStatus.RUNNING:
                    if decision.state:
                        with self.db.write() as conn:
                            self._write_state(conn, decision.state)
                    return decision
                with self.db.write() as conn:
                    # The lock keeps other deciders out only while its file stays: with
                    # the lock folder deleted by hand, another worker locks a new file and
                    # may have recorded a trial since the facts were read. Then decide
                    # again, on the facts as they are now.
                    latest = conn.execute(_NEXT_NUMBER, (self.project_id,)).fetchone()
                    if (int(latest[0]) if latest else 0) == facts.number:
                        return self._insert(conn, facts, decision, tuner_id, session)

    def _with_running(self, facts: CreationFacts, tuner_id: str, session: str | None
                      ) -> CreationFacts | None:
        """``facts`` with the running trials; None when one is this tuner's or its worker
        is gone (see ``decide``)."""
        trials = self.running()
        for t in trials:
            # A look only, its file left in place: the caller reaps a dead worker's trial
            # after looking again, and with the file gone that look would rest on the pid,
            # which a killed process keeps until its parent collects it.
            if t.tuner_id == tuner_id or (t.session is not None and t.session != session
                                          and not self.db.is_alive(t.session, t.pid,
                                                                   tidy=False)):
                return None
        return facts._replace(running=tuple(trials))

    def _insert(self, conn: sqlite3.Connection, facts: CreationFacts, decision: Decision,
                tuner_id: str, session: str | None, in_use: bool | None = None
                ) -> TrialRecord:
        """The trial decided on ``facts`` (its row, and the decider's state), in the write
        transaction ``conn``; ``in_use``: whether the tuner id runs a trial in another
        session, when already read in this transaction (None: read it here).

        Raises:
            TunerIdInUseError: it does.
        """
        now = time.time()
        text = dumps(decision.values)
        if in_use is None:
            in_use = conn.execute(
                "SELECT 1 FROM trials WHERE project_id = ? AND status = 'RUNNING' AND "
                "tuner_id = ? AND session IS NOT ?",
                (self.project_id, tuner_id, session)).fetchone() is not None
        if in_use:
            raise TunerIdInUseError(
                f"Tuner id {tuner_id!r} is running a trial in another live process. Give "
                "each process its own tuner_id.")
        if decision.state:
            self._write_state(conn, decision.state)
        pid = os.getpid()
        # the trials_log_insert trigger records the first transition
        cur = conn.execute(
            "INSERT INTO trials (project_id, number, trial_id, status, hp_values, values_key,"
            " tuner_id, session, run_count, created_at, started_at, pid, changed_at) "
            "VALUES (?, ?, ?, 'RUNNING', ?, ?, ?, ?, 1, ?, ?, ?, ?)",
            (self.project_id, facts.number, decision.trial_id, text, decision.key, tuner_id,
             session, now, now, pid, now))
        return self._new_trial(int(cur.lastrowid or 0), facts, decision, text, tuner_id,
                               session, now, pid)

    def _next_queue_position(self, conn: sqlite3.Connection) -> int:
        conn.execute("UPDATE projects SET queue_counter = queue_counter + 1 "
                     "WHERE project_id = ?", (self.project_id,))
        return int(conn.execute("SELECT queue_counter FROM projects WHERE project_id = ?",
                                (self.project_id,)).fetchone()[0])

    def _write_state(self, conn: sqlite3.Connection, values: Mapping[str, Any]) -> None:
        conn.executemany(
            "INSERT INTO oracle_state (project_id, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (project_id, key) DO UPDATE SET value = excluded.value",
            [(self.project_id, key, dumps(value)) for key, value in values.items()])

    def get_value(self, key: str, default: Any = None) -> Any:
        rows = self.db.query("SELECT value FROM oracle_state WHERE project_id = ? AND key = ?",
                             (self.project_id, key))
        return from_json(rows[0][0], "oracle_state.value", ANY_JSON) if rows else default

    # -- changing trials ------------------------------------------------------------------
    def _trial(self, conn: sqlite3.Connection, trial_id: str) -> TrialRecord:
        row = conn.execute(
            f"SELECT {TRIAL_COLUMNS} FROM trials WHERE project_id = ? AND trial_id = ?",
            (self.project_id, str(trial_id))).fetchone()
        if row is None:
            self.check_exists(conn)
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
        With ``known`` (the trial as the caller had it in ``run``), the rows are written
        only if it is still RUNNING in that run, and ``known`` is the answer; else the
        trial is read, as without it.

        Raises:
            TrialNotFoundError, ProjectRemovedError: no such trial, or no such project.
            TrialNotRunningError: the trial is not RUNNING or STOPPED, or (``run`` given)
                no longer in that run.
            TrialLostError: its run ``run`` started at another time than ``started``.
        """
        now = time.time()
        if (known is not None and stop is None and rows and run == known.run
                and known.status == TrialStatus.RUNNING and known.trial_id == str(trial_id)
                and started in (None, known.started_at)):
            # The usual report: the trial's row is checked by the statement that adds the
            # first value, and not read back (one index probe less inside the write lock).
            first, *rest = [(m, d, s, to_db_float(v), now) for m, d, s, v in rows]
            with self.db.write() as conn:
                if conn.execute(_OBSERVE_IF_RUNNING, (*first, known.key, self.project_id,
                                                      run, known.started_at)).rowcount:
                    if rest:
                        conn.executemany(_OBSERVE, [(known.key, run, *r) for r in rest])
                    return known
            # not RUNNING in that run any more (stopped, ended, handed on): nothing was
            # written; read it, and record or refuse as below
        with self.db.write() as conn:
            now = time.time()  # (holding the write lock: a stop's time follows the log's order)
            trial = self._trial(conn, trial_id)
            check_running(trial, run, started=started, logged=self.run_started)
            conn.executemany(
                _OBSERVE,
                [(trial.key, trial.run, m, d, s, to_db_float(v), now) for m, d, s, v in rows])
            if stop is not None and trial.status == TrialStatus.RUNNING and any(
                    m == stop.metric for m, _, _, _ in rows):
                last = stop.last(trial.key, trial.run)
                points = None if last is None else points_after(last, [
                    (i, s, from_db_float(v)) for i, s, v in conn.execute(
                        _POINTS_FROM, (last[0], trial.key, trial.run, stop.metric)
                    ).fetchall()])
                if points is None:  # (nothing kept, or not what the store holds now)
                    last, points = None, [(i, s, from_db_float(v)) for i, s, v in conn.execute(
                        _ALL_POINTS, (trial.key, trial.run, stop.metric)).fetchall()]
                verdict = stop.decide(trial.key, trial.run, last, points, SQLiteHistory(
                    conn, self.project_id, stop.metric, trial.key,
                    self._completed.setdefault(stop.metric, CompletedValues()),
                    self._rungs.setdefault(stop.metric, RungValues())))
                if verdict is not None:
                    # The run ends here, as far as the store goes (its time, its worker
                    # let go): a worker that dies, or meets a full disk, before it ends
                    # the trial leaves it whole. Its end, when written, has the last word.
                    conn.execute(
                        "UPDATE trials SET status = 'STOPPED', message = ?, score = ?, "
                        "best_step = ?, session = NULL, ended_at = ?, pid = ?, "
                        "changed_at = ? WHERE id = ? AND status = 'RUNNING'",
                        (verdict.message, None if verdict.score is None
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
        """
        sql, params = _END, [
            status, message, None if score is None else to_db_float(score), best_step, None,
            1 if invalid else 0, None, os.getpid(), None, trial.key, trial.status, trial.run,
            trial.started_at]
        if seen is not None:
            sql = _END_AS_SEEN
            params += [trial.message, trial.invalid_runs, trial.values_key, trial.key,
                       trial.run, seen]
        with self.db.write() as conn:
            # The time taken holding the write lock, not before waiting for it: the status
            # log's times then follow its order (a "newest first" list reads back in time).
            params[8] = now = time.time()
            if status in TrialStatus.FINAL:
                params[6] = now
            if requeue:
                params[4] = self._next_queue_position(conn)
            # Only if nobody else moved the trial since it was read: the check and the
            # change are one statement.
            if not conn.execute(sql, params).rowcount:
                if seen is not None:
                    return False
                current = self._trial(conn, trial.trial_id)
                check_running(current, trial.run, (trial.status,), trial.started_at,
                              self.run_started)
                raise TrialNotRunningError(f"Trial {trial.trial_id} changed while it was "
                                           "being ended; nothing was recorded.")
            if not isinstance(values, str):
                # Only when the worker changed them: SQLite rewrites the index entries of
                # every column an UPDATE sets, changed or not.
                conn.execute("UPDATE trials SET hp_values = ?, values_key = ? WHERE id = ?",
                             (dumps(dict(values)), key, trial.key))
            if space:
                self._extend_space(conn, space)
        self.db.ended_here(trial.key)
        return True

    def set_status(self, trial_id: str, status: str, message: str | None) -> str:
        """Change a trial's status from outside its run (e.g. STOPPED); returns the old one."""
        with self.db.write() as conn:
            now = time.time()  # (holding the write lock: the log's times follow its order)
            trial = self._trial(conn, trial_id)
            conn.execute("UPDATE trials SET status = ?, message = ?, pid = ?, changed_at = ? "
                         "WHERE id = ?", (status, message, os.getpid(), now, trial.key))
        return trial.status
