"""Reading a search file without ever writing it: for the tools, notebooks and scripts.

Every connection here is opened with ``mode=ro`` and ``PRAGMA query_only``, so it cannot
write, never creates a file that is not there, and (the file being in WAL mode) never
blocks the processes that are writing the search.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hpstore.errors import DatabaseError, HpStoreError, NotAnHpstoreFileError
from hpstore.store.database import APPLICATION_ID, _inspect_header, check_schema
from hpstore.store.decode import check_row, from_json


class ProjectChoiceError(HpStoreError):
    """The file holds several projects (or none of that name) and one must be chosen."""


def connect_readonly(path: str | os.PathLike[str], *, check: bool = True
                     ) -> sqlite3.Connection:
    """A read-only sqlite3 connection to a search file.

    With ``check`` (the tools that interpret the contents), every text and JSON column is
    first checked to hold what hpstore writes (see :func:`check_contents`); ``hpstore sql``
    and notebooks read the file as it is.

    Raises:
        DatabaseError: the file does not exist (it is not created).
        NotAnHpstoreFileError: not SQLite, damaged, not written by hpstore, or (with
            ``check``) holding a value hpstore never writes.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DatabaseError(f"{path} does not exist (or is not a file); give the path of a "
                            "search file.")
    if not _inspect_header(path):
        raise NotAnHpstoreFileError(f"{path} is empty: no search has been written to it yet.")
    uri = f"{path.resolve().as_uri()}?mode=ro"
    if not path.with_name(path.name + "-wal").exists() and not (
            os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        # SQLite would create -wal and -shm for a WAL file even read-only: impossible in a
        # read-only folder, and files of ours would stop the file's owner. With no log there
        # is nothing but the file to read.
        uri += "&immutable=1"
    conn = sqlite3.connect(uri, uri=True, timeout=30)
    try:
        conn.execute("PRAGMA query_only = ON")
        _forbid_attach(conn)
        if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            raise NotAnHpstoreFileError(f"{path} is a SQLite file, but not an hpstore search.")
        check_schema(conn, path)  # before any query: a crafted view or trigger runs nothing
        if check:
            check_contents(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise NotAnHpstoreFileError(f"{path} cannot be read: {exc}.") from None
    except BaseException:
        conn.close()
        raise
    return conn


def _forbid_attach(conn: sqlite3.Connection) -> None:
    """Refuse ATTACH (and VACUUM INTO, which attaches its target) on a read-only connection.

    ``mode=ro`` and ``query_only`` cover the search file only: a database attached later is
    opened read-write, so ``ATTACH 'x.db'`` or ``VACUUM INTO 'copy.db'`` would create files
    wherever the user can write.
    """
    if hasattr(conn, "setlimit"):  # Python 3.11+: "too many attached databases - max 0"
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        return
    attach = (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH)
    conn.set_authorizer(
        lambda action, *_: sqlite3.SQLITE_DENY if action in attach else sqlite3.SQLITE_OK)


def open_database(path: str | os.PathLike[str]) -> Any:
    """The search file as a read-only ``sqlite_utils.Database``, for notebooks:
    ``open_database("search.db")["trial_overview"].rows_where("status = ?", ["COMPLETED"])``.

    Raises:
        DatabaseError, NotAnHpstoreFileError: as :func:`connect_readonly`.
    """
    import sqlite_utils

    return sqlite_utils.Database(connect_readonly(path, check=False))


# For each table of hpstore's own schema, its text columns and the query for the first row
# holding what hpstore never writes: a BLOB (hpstore writes text, numbers and NULL) or, in a
# JSON column, anything but a JSON object. Written out in full: no name is read from the file.
_CONTENT_CHECKS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "projects": (
        ("name", "oracle_class", "oracle_config", "objective"),
        ("oracle_config", "objective"),
        "SELECT name, oracle_class, oracle_config, objective FROM projects WHERE "
        "typeof(name) = 'blob' OR typeof(oracle_class) = 'blob' OR CASE WHEN "
        "typeof(oracle_config) <> 'text' OR NOT json_valid(oracle_config) THEN 1 ELSE "
        "json_type(oracle_config) <> 'object' END OR CASE WHEN typeof(objective) <> "
        "'text' OR NOT json_valid(objective) THEN 1 ELSE json_type(objective) <> "
        "'object' END LIMIT 1",
    ),
    "hyperparameters": (
        ("name", "class_name", "config"),
        ("config",),
        "SELECT name, class_name, config FROM hyperparameters WHERE typeof(name) = "
        "'blob' OR typeof(class_name) = 'blob' OR CASE WHEN typeof(config) <> 'text' OR "
        "NOT json_valid(config) THEN 1 ELSE json_type(config) <> 'object' END LIMIT 1",
    ),
    "trials": (
        ("trial_id", "status", "hp_values", "values_key", "tuner_id", "session", "message"),
        ("hp_values",),
        "SELECT trial_id, status, hp_values, values_key, tuner_id, session, message "
        "FROM trials WHERE typeof(trial_id) = 'blob' OR typeof(status) = 'blob' OR "
        "typeof(values_key) = 'blob' OR typeof(tuner_id) = 'blob' OR typeof(session) = "
        "'blob' OR typeof(message) = 'blob' OR CASE WHEN typeof(hp_values) <> 'text' OR "
        "NOT json_valid(hp_values) THEN 1 ELSE json_type(hp_values) <> 'object' END "
        "LIMIT 1",
    ),
    "observations": (
        ("metric", "direction"),
        (),
        "SELECT metric, direction FROM observations WHERE typeof(metric) = 'blob' OR "
        "typeof(direction) = 'blob' LIMIT 1",
    ),
    "transitions": (
        ("from_status", "to_status", "tuner_id", "message"),
        (),
        "SELECT from_status, to_status, tuner_id, message FROM transitions WHERE "
        "typeof(from_status) = 'blob' OR typeof(to_status) = 'blob' OR typeof(tuner_id) "
        "= 'blob' OR typeof(message) = 'blob' LIMIT 1",
    ),
    "oracle_state": (
        ("key", "value"),
        ("value",),
        "SELECT key, value FROM oracle_state WHERE typeof(key) = 'blob' OR CASE WHEN "
        "typeof(value) <> 'text' OR NOT json_valid(value) THEN 1 ELSE json_type(value) "
        "<> 'object' END LIMIT 1",
    ),
}


def check_contents(conn: sqlite3.Connection) -> None:
    """Check that every text column holds text and every JSON column a JSON object, as
    hpstore writes them, so a damaged or crafted file is refused before a tool reads it.

    Raises:
        NotAnHpstoreFileError: naming the first table and column at fault.
    """
    for table in _CONTENT_CHECKS:
        columns, objects, query = _CONTENT_CHECKS[table]
        row = conn.execute(query).fetchone()
        if row is None:
            continue
        for column, value in zip(columns, row):
            if column in objects:
                from_json(value, f"{table}.{column}")
            else:
                check_row((value,), (column,), table)


def projects(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM projects ORDER BY project_id")]


def choose_project(conn: sqlite3.Connection, name: str | None) -> tuple[int, str]:
    """(project_id, name): the named project, or the only one.

    Raises:
        ProjectChoiceError: no such project, or several and no name given (the message
            lists them).
    """
    found = conn.execute("SELECT project_id, name FROM projects ORDER BY project_id").fetchall()
    names = [n for _, n in found]
    if name is not None:
        for pid, n in found:
            if n == name:
                return pid, n
        raise ProjectChoiceError(f"No project {name!r} in this file; it holds: "
                                 f"{', '.join(names) or '(none)'}.")
    if len(found) == 1:
        return found[0][0], found[0][1]
    if not found:
        raise ProjectChoiceError("This file holds no project yet.")
    raise ProjectChoiceError("This file holds several projects; choose one with --project: "
                             + ", ".join(names) + ".")


def trial_rows(conn: sqlite3.Connection, project_id: int, *,
               statuses: Sequence[str] | None = None, order: str = "number",
               descending: bool = False, limit: int | None = None) -> tuple[list[str],
                                                                           list[list[Any]]]:
    """One row per trial with a column per hyperparameter: (columns, rows).

    ``order`` is "number", "score" or "ended". Hyperparameter names become column titles
    here, in Python; they never enter SQL text. A name that is already a column title
    ("status", "score", ...) is prefixed with "hp:".
    """
    orders = {"number": "number", "score": "score IS NULL, score", "ended": "ended_at"}
    if order not in orders:
        raise ValueError(f"order must be one of {sorted(orders)}, received {order!r}.")
    where, params = "project_id = ?", [project_id]
    if statuses:
        where += f" AND status IN ({', '.join('?' for _ in statuses)})"
        params += list(statuses)
    direction = "DESC" if descending else "ASC"
    sql = (f"SELECT trial_id, status, score, best_step, tuner_id, run_count, hp_values, "
           f"started_at, ended_at FROM trials WHERE {where} ORDER BY {orders[order]} "
           f"{direction}, number")
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    space = [r[0] for r in conn.execute(
        "SELECT name FROM hyperparameters WHERE project_id = ? ORDER BY position", (project_id,))]
    for name in space:
        if not isinstance(name, str):
            raise NotAnHpstoreFileError(
                f"A hyperparameter name in this file is {name!r}, not text: the file was not "
                "written by hpstore, or was changed by another program.")
    rows, extra = [], []
    for tid, status, score, best_step, tuner, runs, values, started, ended in conn.execute(
            sql, params):
        v = json.loads(values)
        if not isinstance(v, dict):
            raise NotAnHpstoreFileError(
                f"Trial {tid!r} holds the values {values[:200]!r}, not a JSON object: the file "
                "was not written by hpstore, or was changed by another program.")
        for k in v:
            if k not in space and k not in extra:
                extra.append(k)
        seconds = None if started is None or ended is None else round(ended - started, 3)
        rows.append(([tid, status, score, best_step, tuner, runs, seconds], v))
    names = list(dict.fromkeys(space + extra))  # a same-name twin is one column
    columns = ["trial_id", "status", "score", "best_step", "tuner_id", "runs", "seconds"]
    for name in names:  # a hyperparameter called "status" must not hide the trial's status
        title = name
        while title in columns:
            title = f"hp:{title}"
        columns.append(title)
    return columns, [base + [v.get(n) for n in names] for base, v in rows]


def trials_dataframe(path: str | os.PathLike[str], project: str | None = None) -> Any:
    """The trials of a search as a pandas DataFrame, a column per hyperparameter.

    Raises:
        ImportError: pandas is not installed (it is optional: ``pip install pandas``).
    """
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("trials_dataframe() needs pandas: pip install pandas") from None
    conn = connect_readonly(path)
    try:
        pid, _ = choose_project(conn, project)
        columns, rows = trial_rows(conn, pid)
    finally:
        conn.close()
    return pd.DataFrame(rows, columns=columns)


def render(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "table") -> str:
    """Rows as an aligned text table, CSV, JSON (a list of objects) or JSON lines."""
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return out.getvalue()
    if fmt == "json":
        return json.dumps([dict(zip(columns, r)) for r in rows], indent=1, default=str) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(dict(zip(columns, r)), default=str) + "\n" for r in rows)
    if fmt != "table":
        raise ValueError(f"format must be table, csv, json or jsonl; received {fmt!r}.")
    cells = [[_cell(v) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def tool_parser(name: str, description: str) -> Any:
    """The argument parser every inspection tool starts from: DB and --project."""
    import argparse

    parser = argparse.ArgumentParser(prog=f"hpstore {name}", description=description)
    parser.add_argument("database", help="the search file (opened read-only)")
    parser.add_argument("--project", default=None,
                        help="the project (search) in the file; default: the only one")
    return parser


def run_tool(main: Any, argv: Sequence[str] | None = None) -> int:
    """Run a tool's ``main``; an hpstore error becomes one line on stderr and exit code 2."""
    import sys

    try:
        return int(main(argv) or 0)
    except (HpStoreError, ValueError) as exc:
        print(f"hpstore: error: {exc}", file=sys.stderr)
        return 2
    except sqlite3.Error as exc:  # a query SQLite refused, or a file damaged past its header
        print(f"hpstore: error: SQLite failed: {str(exc).rstrip('.')}.", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into head
        return 0
