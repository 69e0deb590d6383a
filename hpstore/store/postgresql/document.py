"""A PostgreSQL project as one document (``get_state()``) and back (``set_state()``).

The document is the one the SQLite engine writes (hpstore/store/sqlite/document.py), so a
search moves between engines unchanged: JSON comes back as the text that was stored, and
floats as the doubles they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hpstore.store.decode import (
    ANY_JSON,
    check_row,
    from_json,
    infinity_from_json,
    infinity_to_json,
)
from hpstore.store.postgresql.driver import storable
from hpstore.store.postgresql.names import check_state
from hpstore.store.postgresql.reading import TRIAL_COLUMNS
from hpstore.store.records import dumps
from hpstore.store.rows import (
    OBSERVATION_FIELDS,
    STATE_FORMAT,
    TRANSITION_FIELDS,
    TRIAL_FIELDS,
    check_state_document,
    decode_values,
    log_in_order,
    malformed,
    space_item,
    to_db_float,
    values_in_order,
)

if TYPE_CHECKING:
    from hpstore.errors import ProjectRemovedError

_TRIALS = f"SELECT {TRIAL_COLUMNS} FROM trials WHERE project_id = %s ORDER BY number"
_PROJECT = ("SELECT oracle_class, oracle_config::text, objective::text, max_trials, seed, "
            "space_version, queue_counter, created_at, updated_at, uncounted FROM projects "
            "WHERE project_id = %s")
# Loading a document: ids for its trials, then its rows by COPY (see load_into).
_DRAW_TRIAL_IDS = ("SELECT nextval(pg_get_serial_sequence('trials', 'id')) "
                   "FROM generate_series(1, %s)")
_COPY_TRIALS = ("COPY trials (id, project_id, number, trial_id, status, hp_values, values_key, "
                "score, best_step, tuner_id, session, message, run_count, invalid_runs, "
                "interruptions, queued, created_at, started_at, ended_at, pid, changed_at, "
                "origin, note, retired_at) FROM STDIN")
_COPY_OBSERVATIONS = ("COPY observations (trial, run, metric, direction, step, value, at) "
                      "FROM STDIN")
_COPY_TRANSITIONS = ("COPY transitions (trial, from_status, to_status, at, tuner_id, pid, "
                     "message) FROM STDIN")


class DocumentMixin:
    """``dump`` and ``load`` of :class:`hpstore.store.postgresql.project.PostgresProject`."""

    db: Any
    project_id: int
    name: str

    if TYPE_CHECKING:  # provided by the project class
        def removed(self) -> ProjectRemovedError: ...

    def dump(self, *, metrics: bool = True, log: bool = True) -> dict[str, Any]:
        """Everything the project holds, read in one snapshot, as JSON-ready data (without
        the reported values with ``metrics=False``, the status log with ``log=False``)."""
        def read(conn: Any) -> tuple[Any, ...]:
            p = conn.execute(_PROJECT, (self.project_id,)).fetchone()
            if p is None:
                raise self.removed()
            space = conn.execute(
                "SELECT class_name, config::text FROM hyperparameters WHERE project_id = %s "
                "ORDER BY position", (self.project_id,)).fetchall()
            trials = conn.execute(_TRIALS, (self.project_id,)).fetchall()
            obs = conn.execute(
                "SELECT o.trial, o.run, o.metric, o.direction, o.step, o.value, o.at FROM "
                "observations AS o JOIN trials AS t ON t.id = o.trial WHERE t.project_id = %s "
                "ORDER BY o.id", (self.project_id,)).fetchall() if metrics else []
            trans = conn.execute(
                "SELECT s.trial, s.from_status, s.to_status, s.at, s.tuner_id, s.pid, s.message "
                "FROM transitions AS s JOIN trials AS t ON t.id = s.trial WHERE t.project_id = "
                "%s ORDER BY s.id", (self.project_id,)).fetchall() if log else []
            state = conn.execute(
                "SELECT key, value::text FROM oracle_state WHERE project_id = %s ORDER BY key "
                'COLLATE "C"',  # byte order, as a file sorts: not the server's language
                (self.project_id,)).fetchall()
            return p, space, trials, obs, trans, state

        p, space, trial_rows, obs_rows, trans_rows, state_rows = self.db.transaction(
            read, begin="snapshot")
        observations: dict[int, list[list[Any]]] = {}
        number_of = {values[0]: values[1] for values in trial_rows}
        values_order: list[int] = []  # the trial number of each value, in order
        for t, *entry in obs_rows:
            observations.setdefault(t, []).append(entry)
            values_order.append(number_of[t])
        transitions: dict[int, list[list[Any]]] = {}
        order: list[int] = []  # the trial number of each row of the status log, in order
        for t, *entry in trans_rows:
            transitions.setdefault(t, []).append(entry)
            order.append(number_of[t])
        out_trials = []
        for values in trial_rows:
            row = dict(zip(TRIAL_FIELDS, values))
            pk = row.pop("id")
            row["hp_values"] = decode_values(row["hp_values"])
            row["score"] = infinity_to_json(row["score"])
            row["observations"] = [_observation_to_json(o) for o in observations.get(pk, [])]
            row["transitions"] = transitions.get(pk, [])
            for entry in row["transitions"]:
                check_row(entry, TRANSITION_FIELDS, "transitions")
            out_trials.append(row)
        return {
            "format": "hpstore.project",
            "version": STATE_FORMAT,
            "settings": {
                "oracle_class": p[0], "oracle_config": from_json(p[1], "projects.oracle_config"),
                "objective": from_json(p[2], "projects.objective"), "max_trials": p[3],
                "seed": p[4], "space_version": p[5], "queue_counter": p[6],
                "created_at": p[7], "updated_at": p[8], "uncounted": p[9],
            },
            "space": [space_item(c, j) for c, j in space],
            "trials": out_trials,
            "log": order,
            "values_log": values_order,
            "oracle_state": {k: from_json(v, "oracle_state.value", ANY_JSON)
                             for k, v in state_rows},
        }

    def load(self, state: Mapping[str, Any]) -> None:
        """Replace this project with ``state`` (from :meth:`dump`) in one transaction.

        Raises:
            HpStoreError: the state is not of that shape; the store is left as it was.
            NameTooLongError: it holds a name longer than the indexes take (a trial id, a
                metric name); nothing is written.
        """
        check_state_document(state)
        check_state(state)
        psycopg = self.db.psycopg
        try:
            self.db.transaction(lambda conn: self.load_into(conn, state))
        except (KeyError, TypeError, ValueError, IndexError, psycopg.IntegrityError,
                psycopg.DataError) as exc:
            raise malformed(exc) from None
        self.db.loaded(len(state["trials"]))

    def load_into(self, conn: Any, state: Mapping[str, Any]) -> None:
        """:meth:`load`'s statements, inside the caller's write transaction."""
        s = state["settings"]
        pid = self.project_id
        self.db.lock(conn, "decide", pid)
        self.db.lock(conn, "log", pid)
        if conn.execute("SELECT 1 FROM projects WHERE project_id = %s FOR UPDATE",
                        (pid,)).fetchone() is None:
            raise self.removed()
        conn.execute("DELETE FROM trials WHERE project_id = %s", (pid,))
        conn.execute("DELETE FROM hyperparameters WHERE project_id = %s", (pid,))
        conn.execute("DELETE FROM oracle_state WHERE project_id = %s", (pid,))
        conn.execute(
            "UPDATE projects SET oracle_class = %s, oracle_config = %s, objective = %s, "
            "max_trials = %s, seed = %s, space_version = %s, queue_counter = %s, created_at = %s,"
            " updated_at = %s, uncounted = %s WHERE project_id = %s",
            (s["oracle_class"], dumps(s["oracle_config"]), dumps(s["objective"]),
             s["max_trials"], int(s["seed"]), int(s["space_version"]) + 1,
             int(s["queue_counter"]), s["created_at"], self.db.now(),
             int(s.get("uncounted", 0)), pid))
        cursor = conn.cursor()
        cursor.executemany(
            "INSERT INTO hyperparameters (project_id, position, name, class_name, config) "
            "VALUES (%s, %s, %s, %s, %s)",
            [(pid, n, item["config"]["name"], item["class_name"], dumps(item["config"]))
             for n, item in enumerate(state["space"])])
        trials = list(state["trials"])
        for t in trials:  # the shape psycopg cannot check: rows of six values
            if any(len(o) != 6 for o in t["observations"]) or any(
                    len(tr) != 6 for tr in t["transitions"]):
                raise ValueError(f"trial {t['trial_id']!r} has an observation or transition "
                                 "that is not six values")
        if not trials:
            cursor.executemany(
                "INSERT INTO oracle_state (project_id, key, value) VALUES (%s, %s, %s)",
                [(pid, k, dumps(v)) for k, v in state["oracle_state"].items()])
            return
        # COPY, not INSERTs: a search of 100,000 trials is 400,000 rows, which a server
        # takes several times faster this way. The trials' ids are drawn first (COPY
        # returns none), so their observations and status log can point at them.
        keys = [r[0] for r in conn.execute(_DRAW_TRIAL_IDS, (len(trials),))]
        with cursor.copy(_COPY_TRIALS) as copy:
            for pk, t in zip(keys, trials):
                copy.write_row((
                    pk, pid, int(t["number"]), str(t["trial_id"]), t["status"],
                    dumps(t["hp_values"]), t["values_key"], _stored_float(t["score"]),
                    t["best_step"], t["tuner_id"], t["session"], storable(t["message"]),
                    t["run_count"], t["invalid_runs"], t["interruptions"], t["queued"],
                    t["created_at"], t["started_at"], t["ended_at"], t.get("pid"),
                    t.get("changed_at"), t.get("origin"), storable(t.get("note")),
                    t.get("retired_at")))
        # the saved log replaces the rows the insert trigger just wrote
        conn.execute("DELETE FROM transitions WHERE trial = ANY(%s)", (keys,))
        with cursor.copy(_COPY_OBSERVATIONS) as copy:  # in the order they were written
            for i, (run, m, d, step, v, at) in values_in_order(state):
                copy.write_row((keys[i], run, m, d, step, _stored_float(v), at))
        with cursor.copy(_COPY_TRANSITIONS) as copy:  # in the order it was written
            for i, tr in log_in_order(state):
                copy.write_row((keys[i], *tr[:5], storable(tr[5])))
        cursor.executemany(
            "INSERT INTO oracle_state (project_id, key, value) VALUES (%s, %s, %s)",
            [(pid, k, dumps(v)) for k, v in state["oracle_state"].items()])


def _stored_float(value: Any) -> Any:
    """A score or metric value of a document as the engines store it (see to_db_float);
    anything else passes, for the server to refuse."""
    value = infinity_from_json(value)
    return to_db_float(value) if isinstance(value, float) else value


def _observation_to_json(entry: list[Any]) -> list[Any]:
    check_row(entry, OBSERVATION_FIELDS, "observations")
    entry[4] = infinity_to_json(entry[4])
    return entry
