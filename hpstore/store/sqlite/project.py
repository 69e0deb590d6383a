"""The SQL of one search (project) in the file: settings, space, trials, metrics, state.

Every statement takes user-supplied names (hyperparameters, metrics, projects) as bound
parameters; nothing a user typed is ever formatted into SQL text.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from typing import Any

from hpstore.errors import (
    HpStoreError,
    ProjectRemovedError,
    TrialNotFoundError,
    TrialNotRunningError,
)
from hpstore.store.sqlite.database import Database
from hpstore.store.decode import (
    ANY_JSON,
    check_row,
    from_json,
    infinity_from_json,
    infinity_to_json,
)
from hpstore.trial import TrialStatus

STATE_FORMAT = 1

_TRIAL_COLUMNS = (
    "id, number, trial_id, status, hp_values, values_key, score, best_step, tuner_id, "
    "session, message, run_count, invalid_runs, interruptions, queued, created_at, "
    "started_at, ended_at, pid, changed_at"
)
_TRIAL_FIELDS = [c.strip() for c in _TRIAL_COLUMNS.split(",")]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


_PROJECT_FIELDS = ("oracle_class", "oracle_config", "objective", "max_trials", "seed",
                   "space_version", "queue_counter", "created_at", "updated_at")
_OBSERVATION_FIELDS = ("run", "metric", "direction", "step", "value", "at")
_TRANSITION_FIELDS = ("from_status", "to_status", "at", "tuner_id", "pid", "message")


def same_entry(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two space entries ({"class_name", "config"}) are the same hyperparameter:
    the same name under the same conditions."""
    return (a["config"]["name"] == b["config"]["name"]
            and a["config"].get("conditions", []) == b["config"].get("conditions", []))


def decode_values(text: Any) -> dict[str, Any]:
    """A trial's hyperparameter values from its ``hp_values`` column.

    Raises:
        NotAnHpstoreFileError: the column does not hold a JSON object.
    """
    values: dict[str, Any] = from_json(text, "trials.hp_values")
    return values


def _space_item(class_name: Any, config: Any) -> dict[str, Any]:
    check_row((class_name,), ("class_name",), "hyperparameters")
    return {"class_name": class_name, "config": from_json(config, "hyperparameters.config")}


def _observation_to_json(entry: list[Any]) -> list[Any]:
    check_row(entry, _OBSERVATION_FIELDS, "observations")
    entry[4] = infinity_to_json(entry[4])
    return entry


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


def _row(cursor_row: tuple[Any, ...] | None) -> dict[str, Any] | None:
    return None if cursor_row is None else dict(zip(_TRIAL_FIELDS, cursor_row))


def _to_db_float(value: float | None) -> float | None:
    # SQLite stores NaN as NULL; say so explicitly rather than rely on the driver.
    return None if value is None or math.isnan(value) else value


def _from_db_float(value: float | None) -> float:
    return math.nan if value is None else value


class ProjectStore:
    """Reads and writes of one project (``project_name``) in a :class:`Database`."""

    def __init__(self, db: Database, project_id: int, name: str) -> None:
        self.db = db
        self.project_id = project_id
        self.name = name

    # -- projects ------------------------------------------------------------------------------
    @staticmethod
    def find(db: Database, name: str) -> dict[str, Any] | None:
        rows = db.query(
            "SELECT project_id, name, oracle_class, oracle_config, objective, max_trials, seed, "
            "space_version, created_at FROM projects WHERE name = ?", (name,))
        if not rows:
            return None
        keys = ("project_id", "name", "oracle_class", "oracle_config", "objective",
                "max_trials", "seed", "space_version", "created_at")
        check_row(rows[0], keys, "projects")
        found = dict(zip(keys, rows[0]))
        found["oracle_config"] = from_json(found["oracle_config"], "projects.oracle_config")
        found["objective"] = from_json(found["objective"], "projects.objective")
        return found

    @staticmethod
    def names(db: Database) -> list[str]:
        return [r[0] for r in db.query("SELECT name FROM projects ORDER BY project_id")]

    @staticmethod
    def create(db: Database, name: str, *, oracle_class: str, oracle_config: Mapping[str, Any],
               objective: Mapping[str, Any], max_trials: int | None, seed: int,
               space: Iterable[Mapping[str, Any]], replace: bool = False) -> ProjectStore:
        """A new project; with ``replace``, one of that name is deleted in the same step."""
        now = time.time()
        with db.write() as conn:
            project_id = new_project_id(conn, replacing=name if replace else None)
            conn.execute(
                "INSERT INTO projects (project_id, name, oracle_class, oracle_config, objective,"
                " max_trials, seed, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (project_id, name, oracle_class, _dumps(dict(oracle_config)),
                 _dumps(dict(objective)), max_trials, seed, now, now))
            project = ProjectStore(db, project_id, name)
            project._insert_space(conn, space, start=0)
        return project

    def removed(self) -> ProjectRemovedError:
        return ProjectRemovedError(
            f"The project {self.name!r} was removed from {self.db.path or 'memory'} or "
            "replaced by another process (overwrite=True or an import with --overwrite); "
            "this process stopped writing to it. Open the project again to work on the new one."
        )

    def check_exists(self, conn: sqlite3.Connection) -> None:
        """Raises ProjectRemovedError when this project is no longer in the file."""
        if conn.execute("SELECT 1 FROM projects WHERE project_id = ?",
                        (self.project_id,)).fetchone() is None:
            raise self.removed()

    def update_settings(self, **fields: Any) -> None:
        allowed = {"max_trials", "oracle_config"}
        if not fields:
            return
        assignments, params = [], []
        for key, value in fields.items():
            if key not in allowed:
                raise ValueError(f"not a changeable setting: {key}")
            assignments.append(f"{key} = ?")  # key is one of the fixed names above
            params.append(_dumps(value) if key == "oracle_config" else value)
        with self.db.write() as conn:
            conn.execute(
                f"UPDATE projects SET {', '.join(assignments)}, updated_at = ? "
                "WHERE project_id = ?", (*params, time.time(), self.project_id))

    def max_trials(self) -> int | None:
        rows = self.db.query("SELECT max_trials FROM projects WHERE project_id = ?",
                             (self.project_id,))
        return rows[0][0] if rows else None

    # -- the search space ---------------------------------------------------------------------
    def space_version(self) -> int:
        """Raises ProjectRemovedError when the project is no longer in the file."""
        rows = self.db.query("SELECT space_version FROM projects WHERE project_id = ?",
                             (self.project_id,))
        if not rows:
            raise self.removed()
        return int(rows[0][0])

    def load_space(self) -> tuple[int, list[dict[str, Any]]]:
        """(space_version, [{"class_name", "config"}, ...]) read in one snapshot."""
        with self.db.read() as conn:
            version = conn.execute("SELECT space_version FROM projects WHERE project_id = ?",
                                   (self.project_id,)).fetchone()
            rows = conn.execute(
                "SELECT class_name, config FROM hyperparameters WHERE project_id = ? "
                "ORDER BY position", (self.project_id,)).fetchall()
        if version is None:
            raise self.removed()
        return int(version[0]), [_space_item(c, j) for c, j in rows]

    def _insert_space(self, conn: sqlite3.Connection, space: Iterable[Mapping[str, Any]],
                      start: int) -> int:
        n = start
        for item in space:
            conn.execute(
                "INSERT INTO hyperparameters (project_id, position, name, class_name, config) "
                "VALUES (?, ?, ?, ?, ?)",
                (self.project_id, n, item["config"]["name"], item["class_name"],
                 _dumps(item["config"])))
            n += 1
        return n

    def extend_space(self, entries: list[dict[str, Any]]) -> int:
        """Append the entries not stored yet (same name and conditions); returns the new
        space version."""
        with self.db.write() as conn:
            return self._extend_space(conn, entries)

    def _extend_space(self, conn: sqlite3.Connection, entries: list[dict[str, Any]]) -> int:
        rows = conn.execute(
            "SELECT class_name, config FROM hyperparameters WHERE project_id = ? "
            "ORDER BY position", (self.project_id,)).fetchall()
        stored = [_space_item(c, j) for c, j in rows]
        new = [e for e in entries if not any(same_entry(s, e) for s in stored)]
        found = conn.execute("SELECT space_version FROM projects WHERE project_id = ?",
                             (self.project_id,)).fetchone()
        if found is None:
            raise self.removed()
        version = int(found[0])
        if new:
            self._insert_space(conn, new, start=len(stored))
            version += 1
            conn.execute("UPDATE projects SET space_version = ?, updated_at = ? "
                         "WHERE project_id = ?", (version, time.time(), self.project_id))
        return version

    # -- reading trials ------------------------------------------------------------------------
    def trial_row(self, trial_id: str) -> dict[str, Any]:
        """Raises TrialNotFoundError when the project has no such trial, and
        ProjectRemovedError when the project itself is gone."""
        with self.db.read() as conn:
            return self._trial_row(conn, trial_id)

    def _trial_row(self, conn: sqlite3.Connection, trial_id: str) -> dict[str, Any]:
        row = conn.execute(
            f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE project_id = ? AND trial_id = ?",
            (self.project_id, str(trial_id))).fetchone()
        if row is None:
            self.check_exists(conn)
            raise TrialNotFoundError(
                f"No trial {trial_id!r} in project {self.name!r}; trial ids are strings such "
                "as those in `oracle.trials`."
            )
        return _row(row)  # type: ignore[return-value]

    @staticmethod
    def check_running(row: Mapping[str, Any], run: int | None,
                      statuses: tuple[str, ...] = (TrialStatus.RUNNING, TrialStatus.STOPPED)
                      ) -> None:
        """Raises TrialNotRunningError unless the trial is in one of ``statuses`` and, when
        ``run`` is given, still in that run (not handed to another worker since)."""
        if row["status"] not in statuses:
            raise TrialNotRunningError(
                f"Trial {row['trial_id']} is {row['status']}, not running: it has already "
                "ended (or was handed back to be run again). Nothing was recorded.")
        if run is not None and row["run_count"] != run:
            raise TrialNotRunningError(
                f"Trial {row['trial_id']} was handed to another worker ({row['tuner_id']!r}, "
                f"run {row['run_count']}) after this process ran it (run {run}); this "
                "process's results for it were not recorded.")

    def observations(self, pk: int, run: int) -> list[tuple[str, str, int, float]]:
        rows = self.db.connect().execute(
            "SELECT metric, direction, step, value FROM observations WHERE trial = ? AND run = ?"
            " ORDER BY id", (pk, run)).fetchall()
        return [(m, d, s, _from_db_float(v)) for m, d, s, v in rows]

    def running(self) -> list[dict[str, Any]]:
        """The RUNNING trials, in creation order (there are about as many as workers)."""
        rows = self.db.query(
            # no ORDER BY: it would steer SQLite off the status index onto a full scan
            f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE project_id = ? AND status = 'RUNNING'",
            (self.project_id,))
        return sorted((_row(r) for r in rows), key=lambda r: r["number"])  # type: ignore

    def next_number(self) -> int:
        return self.creation_facts()[1]

    def count(self) -> int:
        return int(self.db.query("SELECT count(*) FROM trials WHERE project_id = ?",
                                 (self.project_id,))[0][0])

    def counts_by_status(self) -> dict[str, int]:
        rows = self.db.query("SELECT status, count(*) FROM trials WHERE project_id = ? "
                             "GROUP BY status", (self.project_id,))
        return {s: int(n) for s, n in rows}

    def trial_ids(self) -> list[str]:
        return [r[0] for r in self.db.query(
            "SELECT trial_id FROM trials WHERE project_id = ? ORDER BY number",
            (self.project_id,))]

    def has_trial(self, trial_id: str) -> bool:
        return bool(self.db.query(
            "SELECT 1 FROM trials WHERE project_id = ? AND trial_id = ?",
            (self.project_id, str(trial_id))))

    def has_values(self, key: str) -> bool:
        return bool(self.db.query(
            "SELECT 1 FROM trials WHERE project_id = ? AND values_key = ? LIMIT 1",
            (self.project_id, key)))

    def values_keys(self) -> set[str]:
        return {r[0] for r in self.db.query(
            "SELECT values_key FROM trials WHERE project_id = ?", (self.project_id,))}

    def best_rows(self, n: int, direction: str) -> list[dict[str, Any]]:
        order = "DESC" if direction == "max" else "ASC"  # one of two fixed words
        rows = self.db.query(
            f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE project_id = ? AND status = 'COMPLETED' "
            f"AND score IS NOT NULL ORDER BY score {order}, number LIMIT ?",
            (self.project_id, n))
        found = [_row(r) for r in rows]
        if len(found) < n:
            rows = self.db.query(
                f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE project_id = ? AND NOT "
                "(status = 'COMPLETED' AND score IS NOT NULL) ORDER BY number LIMIT ?",
                (self.project_id, n - len(found)))
            found += [_row(r) for r in rows]
        return found  # type: ignore[return-value]

    def scores(self, trial_ids: list[str]) -> list[tuple[str, float]]:
        """(trial_id, score) of the COMPLETED trials among ``trial_ids``, in creation order."""
        found: list[tuple[str, float]] = []
        for start in range(0, len(trial_ids), 500):  # keep under SQLite's parameter limit
            chunk = trial_ids[start:start + 500]
            marks = ", ".join("?" for _ in chunk)  # placeholders only; ids stay parameters
            found += self.db.query(
                f"SELECT trial_id, score, number FROM trials WHERE project_id = ? AND status = "
                f"'COMPLETED' AND score IS NOT NULL AND trial_id IN ({marks})",
                (self.project_id, *chunk))
        return [(t, s) for t, s, _ in sorted(found, key=lambda r: r[2])]

    def values_of(self, trial_id: str) -> dict[str, Any]:
        return decode_values(self.trial_row(trial_id)["hp_values"])

    def completed(self) -> list[tuple[str, float]]:
        """(hp_values JSON, score) of every completed trial, in creation order."""
        return [(v, s) for v, s in self.db.query(
            "SELECT hp_values, score FROM trials WHERE project_id = ? AND status = 'COMPLETED' "
            "AND score IS NOT NULL ORDER BY number", (self.project_id,))]

    def recent_final_statuses(self, n: int) -> list[str]:
        """The final statuses of the ``n`` trials that ended last, last first."""
        # The status log is in commit order: reading it backwards stops after n rows, with
        # no index on the end time to keep up on every commit.
        return [r[0] for r in self.db.query(
            "SELECT x.to_status FROM transitions x JOIN trials t ON t.id = x.trial "
            "WHERE t.project_id = ? AND x.to_status IN ('COMPLETED', 'FAILED', 'STOPPED') "
            "ORDER BY x.id DESC LIMIT ?", (self.project_id, n))]

    # -- writing trials ------------------------------------------------------------------------
    def insert_trial(self, number: int, trial_id: str, values: Mapping[str, Any], key: str,
                     tuner_id: str, session: str | None,
                     state: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Record a new RUNNING trial, and the algorithm state that decided it, at once."""
        now = time.time()
        text = _dumps(dict(values))
        with self.db.write() as conn:
            if state:
                self._write_values(conn, state)
            # the trials_log_insert trigger records the first transition
            cur = conn.execute(
                "INSERT INTO trials (project_id, number, trial_id, status, hp_values, values_key,"
                " tuner_id, session, run_count, created_at, started_at, pid, changed_at) "
                "VALUES (?, ?, ?, 'RUNNING', ?, ?, ?, ?, 1, ?, ?, ?, ?)",
                (self.project_id, number, trial_id, text, key, tuner_id,
                 session, now, now, os.getpid(), now))
            pk = int(cur.lastrowid or 0)
        return {"id": pk, "number": number, "trial_id": trial_id, "status": "RUNNING",
                "hp_values": text, "values_key": key, "score": None,
                "best_step": None, "tuner_id": tuner_id, "session": session, "message": None,
                "run_count": 1, "invalid_runs": 0, "interruptions": 0, "queued": None,
                "created_at": now, "started_at": now, "ended_at": None, "pid": os.getpid(),
                "changed_at": now}

    def creation_facts(self) -> tuple[int | None, int, bool]:
        """(max_trials, next trial number, whether a trial waits in the retry queue), read
        in one statement: create_trial needs all three every time."""
        row = self.db.connect().execute(
            "SELECT p.max_trials, "
            "(SELECT number + 1 FROM trials WHERE project_id = p.project_id "
            "ORDER BY number DESC LIMIT 1),"
            " EXISTS (SELECT 1 FROM trials WHERE project_id = p.project_id AND queued IS NOT "
            "NULL) FROM projects p WHERE p.project_id = ?", (self.project_id,)).fetchone()
        if row is None:
            raise self.removed()
        return row[0], int(row[1] or 0), bool(row[2])

    def take_queued(self, tuner_id: str, session: str | None) -> dict[str, Any] | None:
        """Start the trial at the head of the retry queue for ``tuner_id``; a trial this
        tuner was running when it was interrupted comes first."""
        now = time.time()
        with self.db.write() as conn:
            row = _row(conn.execute(
                f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE project_id = ? AND queued IS NOT "
                "NULL ORDER BY (tuner_id IS ? AND status = 'IDLE') DESC, queued LIMIT 1",
                (self.project_id, tuner_id)).fetchone())
            if row is None:
                return None
            conn.execute(
                "UPDATE trials SET status = 'RUNNING', queued = NULL, tuner_id = ?, session = ?,"
                " run_count = run_count + 1, started_at = ?, ended_at = NULL, score = NULL, "
                "best_step = NULL, message = NULL, pid = ?, changed_at = ? WHERE id = ?",
                (tuner_id, session, now, os.getpid(), now, row["id"]))
        row.update(status="RUNNING", queued=None, tuner_id=tuner_id, session=session,
                   run_count=row["run_count"] + 1, started_at=now, ended_at=None, score=None,
                   best_step=None, message=None, pid=os.getpid(), changed_at=now)
        return row

    def adopt(self, row: Mapping[str, Any], session: str | None) -> dict[str, Any]:
        """Move a running trial to another liveness session of the same process (a second
        Oracle on the file in the process that runs it); returns the updated row."""
        with self.db.write() as conn:
            conn.execute("UPDATE trials SET session = ? WHERE id = ? AND status = 'RUNNING' "
                         "AND session IS ?", (session, row["id"], row["session"]))
            return self._trial_row(conn, row["trial_id"])

    def reap(self, tokens: Iterable[str], max_interruptions: int) -> list[str]:
        """Hand back the running trials of dead workers; returns their trial ids.

        A trial is queued again with the same values (IDLE) unless its workers have now died
        ``max_interruptions`` times, in which case it is FAILED.
        """
        reaped: list[str] = []
        now = time.time()
        with self.db.write() as conn:
            for token in tokens:
                rows = conn.execute(
                    f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE project_id = ? AND status = "
                    "'RUNNING' AND session = ?", (self.project_id, token)).fetchall()
                for r in rows:
                    row = _row(r)
                    assert row is not None
                    count = row["interruptions"] + 1
                    who = f"worker {row['tuner_id']!r}"
                    if count >= max_interruptions:
                        message = (f"Its worker died {count} times while running it (last: "
                                   f"{who}); not retried again.")
                        conn.execute(
                            "UPDATE trials SET status = 'FAILED', interruptions = ?, message = ?,"
                            " ended_at = ?, session = NULL, pid = ?, changed_at = ? WHERE id = ?",
                            (count, message, now, os.getpid(), now, row["id"]))
                    else:
                        message = (f"Interrupted: {who} died during run {row['run_count']}; "
                                   "queued to run again with the same values.")
                        queued = self._next_queue_position(conn)
                        conn.execute(
                            "UPDATE trials SET status = 'IDLE', interruptions = ?, message = ?, "
                            "queued = ?, session = NULL, pid = ?, changed_at = ? WHERE id = ?",
                            (count, message, queued, os.getpid(), now, row["id"]))
                    reaped.append(row["trial_id"])
        return reaped

    def _next_queue_position(self, conn: sqlite3.Connection) -> int:
        conn.execute("UPDATE projects SET queue_counter = queue_counter + 1 "
                     "WHERE project_id = ?", (self.project_id,))
        return int(conn.execute("SELECT queue_counter FROM projects WHERE project_id = ?",
                                (self.project_id,)).fetchone()[0])

    def record_metrics(self, trial_id: str, observations: list[tuple[str, str, int, float]],
                       run: int | None = None) -> dict[str, Any]:
        """Append (metric, direction, step, value) rows to the trial's current run.

        Raises:
            TrialNotFoundError, ProjectRemovedError: no such trial, or no such project.
            TrialNotRunningError: the trial is not RUNNING or STOPPED, or (``run`` given)
                no longer in that run.
        """
        now = time.time()
        with self.db.write() as conn:
            row = self._trial_row(conn, trial_id)
            self.check_running(row, run)
            conn.executemany(
                "INSERT INTO observations (trial, run, metric, direction, step, value, at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(row["id"], row["run_count"], m, d, s, _to_db_float(v), now)
                 for m, d, s, v in observations])
        return row

    def finish(self, row: Mapping[str, Any], status: str, message: str | None,
               values: Mapping[str, Any] | str, key: str, score: float | None,
               best_step: int | None, *, invalid: bool, requeue: bool,
               space: list[dict[str, Any]] | None = None) -> None:
        """Write the end of a run: the status, message, values (a dict, or the JSON text
        already stored) and score, in one step, with the hyperparameters the run added to
        the space (``space``, appended when not stored yet).

        Raises:
            TrialNotRunningError: the trial changed since ``row`` was read (another process
                ended it, or handed it to another worker); nothing was written.
        """
        now = time.time()
        pk = row["id"]
        with self.db.write() as conn:
            queued = self._next_queue_position(conn) if requeue else None
            final = status in TrialStatus.FINAL
            # Only if nobody else moved the trial since it was read: the check and the
            # change are one statement.
            changed = conn.execute(
                "UPDATE trials SET status = ?, message = ?, score = ?, best_step = ?, "
                "queued = ?, invalid_runs = invalid_runs + ?, session = NULL, ended_at = ?, "
                "pid = ?, changed_at = ? WHERE id = ? AND status = ? AND run_count = ?",
                (status, message, None if score is None else _to_db_float(score), best_step,
                 queued, 1 if invalid else 0, now if final else None, os.getpid(), now, pk,
                 row["status"], row["run_count"])).rowcount
            if not changed:
                current = self._trial_row(conn, row["trial_id"])
                self.check_running(current, row["run_count"], (row["status"],))
                raise TrialNotRunningError(f"Trial {row['trial_id']} changed while it was "
                                           "being ended; nothing was recorded.")
            if space:
                self._extend_space(conn, space)
            if not isinstance(values, str):
                # Only when the worker changed them: SQLite rewrites the index entries of
                # every column an UPDATE sets, changed or not.
                conn.execute("UPDATE trials SET hp_values = ?, values_key = ? WHERE id = ?",
                             (_dumps(dict(values)), key, pk))

    def set_status(self, trial_id: str, status: str, message: str | None) -> str:
        """Change a trial's status from outside its run (e.g. STOPPED); returns the old one."""
        now = time.time()
        with self.db.write() as conn:
            row = _row(conn.execute(
                f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE project_id = ? AND trial_id = ?",
                (self.project_id, str(trial_id))).fetchone())
            if row is None:
                raise TrialNotFoundError(f"No trial {trial_id!r} in project {self.name!r}.")
            conn.execute("UPDATE trials SET status = ?, message = ?, pid = ?, changed_at = ? "
                         "WHERE id = ?", (status, message, os.getpid(), now, row["id"]))
        return str(row["status"])

    # -- the algorithm's own state ----------------------------------------------------------------
    def get_value(self, key: str, default: Any = None) -> Any:
        rows = self.db.query("SELECT value FROM oracle_state WHERE project_id = ? AND key = ?",
                             (self.project_id, key))
        return from_json(rows[0][0], "oracle_state.value", ANY_JSON) if rows else default

    def set_values(self, values: Mapping[str, Any]) -> None:
        with self.db.write() as conn:
            self._write_values(conn, values)

    def _write_values(self, conn: sqlite3.Connection, values: Mapping[str, Any]) -> None:
        conn.executemany(
            "INSERT INTO oracle_state (project_id, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (project_id, key) DO UPDATE SET value = excluded.value",
            [(self.project_id, key, _dumps(value)) for key, value in values.items()])

    # -- the whole project as one document --------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        """Everything the project holds, read in one snapshot, as JSON-ready data."""
        with self.db.read() as conn:
            p = conn.execute(
                "SELECT oracle_class, oracle_config, objective, max_trials, seed, space_version,"
                " queue_counter, created_at, updated_at FROM projects WHERE project_id = ?",
                (self.project_id,)).fetchone()
            if p is None:
                raise self.removed()
            space = conn.execute(
                "SELECT class_name, config FROM hyperparameters WHERE project_id = ? "
                "ORDER BY position", (self.project_id,)).fetchall()
            trials = [_row(r) for r in conn.execute(
                f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE project_id = ? ORDER BY number",
                (self.project_id,))]
            obs: dict[int, list[list[Any]]] = {}
            for t, run, m, d, s, v, at in conn.execute(
                    "SELECT o.trial, o.run, o.metric, o.direction, o.step, o.value, o.at FROM "
                    "observations o JOIN trials t ON t.id = o.trial WHERE t.project_id = ? "
                    "ORDER BY o.id", (self.project_id,)):
                obs.setdefault(t, []).append([run, m, d, s, v, at])
            trans: dict[int, list[list[Any]]] = {}
            for t, a, b, at, tid, pid, msg in conn.execute(
                    "SELECT s.trial, s.from_status, s.to_status, s.at, s.tuner_id, s.pid, "
                    "s.message FROM transitions s JOIN trials t ON t.id = s.trial WHERE "
                    "t.project_id = ? ORDER BY s.id", (self.project_id,)):
                trans.setdefault(t, []).append([a, b, at, tid, pid, msg])
            state_rows = conn.execute(
                "SELECT key, value FROM oracle_state WHERE project_id = ? ORDER BY key",
                (self.project_id,)).fetchall()
        check_row(p, _PROJECT_FIELDS, "projects")
        state = {}
        for key, value in state_rows:
            check_row((key,), ("key",), "oracle_state")
            state[key] = from_json(value, "oracle_state.value", ANY_JSON)
        out_trials = []
        for row in trials:
            assert row is not None
            check_row(list(row.values()), list(row), "trials")
            pk = row.pop("id")
            row["hp_values"] = decode_values(row["hp_values"])
            row["score"] = infinity_to_json(row["score"])
            row["observations"] = [_observation_to_json(o) for o in obs.get(pk, [])]
            row["transitions"] = trans.get(pk, [])
            for entry in row["transitions"]:
                check_row(entry, _TRANSITION_FIELDS, "transitions")
            out_trials.append(row)
        return {
            "format": "hpstore.project",
            "version": STATE_FORMAT,
            "settings": {
                "oracle_class": p[0], "oracle_config": from_json(p[1], "projects.oracle_config"),
                "objective": from_json(p[2], "projects.objective"), "max_trials": p[3],
                "seed": p[4],
                "space_version": p[5], "queue_counter": p[6], "created_at": p[7],
                "updated_at": p[8],
            },
            "space": [_space_item(c, j) for c, j in space],
            "trials": out_trials,
            "oracle_state": state,
        }

    def load(self, state: Mapping[str, Any]) -> None:
        """Replace this project with ``state`` (from :meth:`dump`) in one transaction.

        Raises:
            HpStoreError: the state is not of that shape; the file is left as it was.
        """
        if not isinstance(state, Mapping) or state.get("format") != "hpstore.project":
            raise HpStoreError(
                "set_state() takes the dict returned by get_state() of an hpstore Oracle; "
                f"received {type(state).__name__} without format 'hpstore.project'."
            )
        if state.get("version") != STATE_FORMAT:
            raise HpStoreError(
                f"This state has format version {state.get('version')!r}; this hpstore reads "
                f"version {STATE_FORMAT}."
            )
        try:
            with self.db.write() as conn:
                try:
                    self._load(conn, state)
                except sqlite3.IntegrityError as exc:  # before write() turns it into words
                    raise ValueError(str(exc)) from None
        except (KeyError, TypeError, ValueError, IndexError, sqlite3.IntegrityError) as exc:
            raise HpStoreError(
                f"The state given to set_state() is malformed ({type(exc).__name__}: {exc}); "
                "nothing was changed."
            ) from None

    def _load(self, conn: sqlite3.Connection, state: Mapping[str, Any]) -> None:
        s = state["settings"]
        pid = self.project_id
        conn.execute("DELETE FROM trials WHERE project_id = ?", (pid,))
        conn.execute("DELETE FROM hyperparameters WHERE project_id = ?", (pid,))
        conn.execute("DELETE FROM oracle_state WHERE project_id = ?", (pid,))
        conn.execute(
            "UPDATE projects SET oracle_class = ?, oracle_config = ?, objective = ?, "
            "max_trials = ?, seed = ?, space_version = ?, queue_counter = ?, created_at = ?, "
            "updated_at = ? WHERE project_id = ?",
            (s["oracle_class"], _dumps(s["oracle_config"]), _dumps(s["objective"]),
             s["max_trials"], int(s["seed"]), int(s["space_version"]) + 1,
             int(s["queue_counter"]), s["created_at"], time.time(), pid))
        self._insert_space(conn, state["space"], start=0)
        for t in state["trials"]:
            cur = conn.execute(
                "INSERT INTO trials (project_id, number, trial_id, status, hp_values, values_key,"
                " score, best_step, tuner_id, session, message, run_count, invalid_runs, "
                "interruptions, queued, created_at, started_at, ended_at, pid, changed_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (pid, int(t["number"]), str(t["trial_id"]), t["status"], _dumps(t["hp_values"]),
                 t["values_key"], infinity_from_json(t["score"]), t["best_step"], t["tuner_id"],
                 t["session"],
                 t["message"], t["run_count"], t["invalid_runs"], t["interruptions"],
                 t["queued"], t["created_at"], t["started_at"], t["ended_at"], t.get("pid"),
                 t.get("changed_at")))
            pk = cur.lastrowid
            # the saved log replaces the row the insert trigger just wrote
            conn.execute("DELETE FROM transitions WHERE trial = ?", (pk,))
            conn.executemany(
                "INSERT INTO observations (trial, run, metric, direction, step, value, at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(pk, run, m, d, step, infinity_from_json(v), at)
                 for run, m, d, step, v, at in t["observations"]])
            conn.executemany(
                "INSERT INTO transitions (trial, from_status, to_status, at, tuner_id, pid, "
                "message) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(pk, *tr) for tr in t["transitions"]])
        conn.executemany(
            "INSERT INTO oracle_state (project_id, key, value) VALUES (?, ?, ?)",
            [(pid, k, _dumps(v)) for k, v in state["oracle_state"].items()])
