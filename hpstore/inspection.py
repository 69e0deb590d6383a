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
from hpstore.store.database import APPLICATION_ID, _inspect_header


class ProjectChoiceError(HpStoreError):
    """The file holds several projects (or none of that name) and one must be chosen."""


def connect_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A read-only sqlite3 connection to a search file.

    Raises:
        DatabaseError: the file does not exist (it is not created).
        NotAnHpstoreFileError: not SQLite, damaged, or not written by hpstore.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DatabaseError(f"{path} does not exist (or is not a file); give the path of a "
                            "search file.")
    if not _inspect_header(path):
        raise NotAnHpstoreFileError(f"{path} is empty: no search has been written to it yet.")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        conn.execute("PRAGMA query_only = ON")
        if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            raise NotAnHpstoreFileError(f"{path} is a SQLite file, but not an hpstore search.")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise NotAnHpstoreFileError(f"{path} cannot be read: {exc}.") from None
    except BaseException:
        conn.close()
        raise
    return conn


def open_database(path: str | os.PathLike[str]) -> Any:
    """The search file as a read-only ``sqlite_utils.Database``, for notebooks:
    ``open_database("search.db")["trial_overview"].rows_where("status = ?", ["COMPLETED"])``.

    Raises:
        DatabaseError, NotAnHpstoreFileError: as :func:`connect_readonly`.
    """
    import sqlite_utils

    return sqlite_utils.Database(connect_readonly(path))


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
    here, in Python; they never enter SQL text.
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
    rows, extra = [], []
    for tid, status, score, best_step, tuner, runs, values, started, ended in conn.execute(
            sql, params):
        v = json.loads(values)
        for k in v:
            if k not in space and k not in extra:
                extra.append(k)
        seconds = None if started is None or ended is None else round(ended - started, 3)
        rows.append(([tid, status, score, best_step, tuner, runs, seconds], v))
    names = space + extra
    columns = ["trial_id", "status", "score", "best_step", "tuner_id", "runs", "seconds", *names]
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
    except BrokenPipeError:  # e.g. piped into head
        return 0
