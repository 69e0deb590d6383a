"""A SQLite project as one document (``get_state()``) and back (``set_state()``)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hpstore.store.decode import (
    ANY_JSON,
    check_row,
    from_json,
    infinity_from_json,
    infinity_to_json,
)
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
    values_in_order,
)

if TYPE_CHECKING:
    from hpstore.errors import ProjectRemovedError
    from hpstore.store.sqlite.readonly import AnyDatabase

_COLUMNS = ", ".join(TRIAL_FIELDS)
_PROJECT_FIELDS = ("oracle_class", "oracle_config", "objective", "max_trials", "seed",
                   "space_version", "queue_counter", "created_at", "updated_at", "uncounted")


def _observation_to_json(entry: list[Any]) -> list[Any]:
    check_row(entry, OBSERVATION_FIELDS, "observations")
    entry[4] = infinity_to_json(entry[4])
    return entry


class DocumentMixin:
    """``dump`` and ``load`` of :class:`hpstore.store.sqlite.project.SQLiteProject`."""

    db: AnyDatabase
    project_id: int
    name: str

    if TYPE_CHECKING:  # provided by the project class
        def removed(self) -> ProjectRemovedError: ...

    def dump(self, *, metrics: bool = True, log: bool = True) -> dict[str, Any]:
        """Everything the project holds, read in one snapshot, as JSON-ready data (without
        the reported values with ``metrics=False``, the status log with ``log=False``)."""
        with self.db.read() as conn:
            p = conn.execute(
                "SELECT oracle_class, oracle_config, objective, max_trials, seed, space_version,"
                " queue_counter, created_at, updated_at, uncounted FROM projects WHERE "
                "project_id = ?",
                (self.project_id,)).fetchone()
            if p is None:
                raise self.removed()
            space = conn.execute(
                "SELECT class_name, config FROM hyperparameters WHERE project_id = ? "
                "ORDER BY position", (self.project_id,)).fetchall()
            trials = [dict(zip(TRIAL_FIELDS, r)) for r in conn.execute(
                f"SELECT {_COLUMNS} FROM trials WHERE project_id = ? ORDER BY number",
                (self.project_id,))]
            obs: dict[int, list[list[Any]]] = {}
            number_of = {row["id"]: row["number"] for row in trials}
            values_order: list[int] = []  # the trial number of each value, in order
            for t, run, m, d, s, v, at in conn.execute(
                    "SELECT o.trial, o.run, o.metric, o.direction, o.step, o.value, o.at FROM "
                    "observations o JOIN trials t ON t.id = o.trial WHERE t.project_id = ? "
                    "ORDER BY o.id", (self.project_id,)) if metrics else ():
                obs.setdefault(t, []).append([run, m, d, s, v, at])
                values_order.append(number_of[t])
            trans: dict[int, list[list[Any]]] = {}
            order: list[int] = []  # the trial number of each row of the status log, in order
            for t, a, b, at, tid, pid, msg in conn.execute(
                    "SELECT s.trial, s.from_status, s.to_status, s.at, s.tuner_id, s.pid, "
                    "s.message FROM transitions s JOIN trials t ON t.id = s.trial WHERE "
                    "t.project_id = ? ORDER BY s.id", (self.project_id,)) if log else ():
                trans.setdefault(t, []).append([a, b, at, tid, pid, msg])
                order.append(number_of[t])
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
            check_row(list(row.values()), list(row), "trials")
            pk = row.pop("id")
            row["hp_values"] = decode_values(row["hp_values"])
            row["score"] = infinity_to_json(row["score"])
            row["observations"] = [_observation_to_json(o) for o in obs.get(pk, [])]
            row["transitions"] = trans.get(pk, [])
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
            "oracle_state": state,
        }

    def load(self, state: Mapping[str, Any]) -> None:
        """Replace this project with ``state`` (from :meth:`dump`) in one transaction.

        Raises:
            HpStoreError: the state is not of that shape; the file is left as it was.
        """
        check_state_document(state)
        try:
            with self.db.write() as conn:
                try:
                    self.load_into(conn, state)
                except sqlite3.IntegrityError as exc:  # before write() turns it into words
                    raise ValueError(str(exc)) from None
        except (KeyError, TypeError, ValueError, IndexError, sqlite3.IntegrityError) as exc:
            raise malformed(exc) from None

    def load_into(self, conn: sqlite3.Connection, state: Mapping[str, Any]) -> None:
        """:meth:`load`'s statements, inside the caller's write transaction."""
        s = state["settings"]
        pid = self.project_id
        conn.execute("DELETE FROM trials WHERE project_id = ?", (pid,))
        conn.execute("DELETE FROM hyperparameters WHERE project_id = ?", (pid,))
        conn.execute("DELETE FROM oracle_state WHERE project_id = ?", (pid,))
        conn.execute(
            "UPDATE projects SET oracle_class = ?, oracle_config = ?, objective = ?, "
            "max_trials = ?, seed = ?, space_version = ?, queue_counter = ?, created_at = ?, "
            "updated_at = ?, uncounted = ? WHERE project_id = ?",
            (s["oracle_class"], dumps(s["oracle_config"]), dumps(s["objective"]),
             s["max_trials"], int(s["seed"]), int(s["space_version"]) + 1,
             int(s["queue_counter"]), s["created_at"], time.time(),
             int(s.get("uncounted", 0)), pid))
        for n, item in enumerate(state["space"]):
            conn.execute(
                "INSERT INTO hyperparameters (project_id, position, name, class_name, config) "
                "VALUES (?, ?, ?, ?, ?)",
                (pid, n, item["config"]["name"], item["class_name"], dumps(item["config"])))
        keys = []
        for t in state["trials"]:
            cur = conn.execute(
                "INSERT INTO trials (project_id, number, trial_id, status, hp_values, values_key,"
                " score, best_step, tuner_id, session, message, run_count, invalid_runs, "
                "interruptions, queued, created_at, started_at, ended_at, pid, changed_at, "
                "origin, note, retired_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (pid, int(t["number"]), str(t["trial_id"]), t["status"], dumps(t["hp_values"]),
                 t["values_key"], infinity_from_json(t["score"]), t["best_step"], t["tuner_id"],
                 t["session"], t["message"], t["run_count"], t["invalid_runs"],
                 t["interruptions"], t["queued"], t["created_at"], t["started_at"],
                 t["ended_at"], t.get("pid"), t.get("changed_at"), t.get("origin"),
                 t.get("note"), t.get("retired_at")))
            pk = cur.lastrowid
            keys.append(pk)
            # the saved log replaces the row the insert trigger just wrote
            conn.execute("DELETE FROM transitions WHERE trial = ?", (pk,))
        # the values in the order they were written, as the log below (their seq)
        conn.executemany(
            "INSERT INTO observations (trial, run, metric, direction, step, value, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(keys[i], run, m, d, step, infinity_from_json(v), at)
             for i, (run, m, d, step, v, at) in values_in_order(state)])
        # the whole project's log in the order it was written, not trial by trial
        conn.executemany(
            "INSERT INTO transitions (trial, from_status, to_status, at, tuner_id, pid, "
            "message) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(keys[i], *tr) for i, tr in log_in_order(state)])
        conn.executemany(
            "INSERT INTO oracle_state (project_id, key, value) VALUES (?, ?, ?)",
            [(pid, k, dumps(v)) for k, v in state["oracle_state"].items()])
