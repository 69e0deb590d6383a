"""Reading a search file without ever writing it: for the tools, notebooks and scripts.

Every connection here is opened with ``mode=ro`` and ``PRAGMA query_only``, so it cannot
write, never creates a file that is not there, and (the file being in WAL mode) never
blocks the processes that are writing the search.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hpstore.errors import (
    DatabaseError,
    HpStoreError,
    NotAnHpstoreFileError,
    TrialNotFoundError,
)
from hpstore.query_limits import guard_queries, is_interruption
from hpstore.rendering import render, terminal_text
from hpstore.store.sqlite.database import APPLICATION_ID, _inspect_header, check_schema
from hpstore.store.decode import ANY_JSON, check_row, from_json

__all__ = ["ProjectChoiceError", "check_contents", "choose_project", "connect_readonly",
           "find_trial", "open_database", "projects", "render", "run_tool", "tool_parser",
           "trial_rows", "trials_dataframe"]


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
    if path.is_dir():
        raise DatabaseError(f"{path} is a folder, not a search file; give the path of the "
                            "search file itself (such as search.db).")
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
        guard_queries(conn)  # Ctrl-C stops a long query (the contents check too)
        conn.execute("PRAGMA query_only = ON")
        _forbid_attach(conn)
        if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            raise NotAnHpstoreFileError(f"{path} is a SQLite file, but not an hpstore search.")
        check_schema(conn, path)  # before any query: a crafted view or trigger runs nothing
        if check:
            check_contents(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if is_interruption(exc):
            raise KeyboardInterrupt from None
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
        # an algorithm's state may be any JSON value (a number, a list, an object)
        "SELECT key, value FROM oracle_state WHERE typeof(key) = 'blob' OR "
        "typeof(value) <> 'text' OR NOT json_valid(value) LIMIT 1",
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
                shape = ANY_JSON if table == "oracle_state" else dict
                from_json(value, f"{table}.{column}", shape)
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
    where = "project_id = ?"
    params: list[Any] = [project_id]
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


def find_trial(conn: sqlite3.Connection, project_id: int, text: str) -> tuple[int, str]:
    """(row id, trial_id) of the trial ``text`` names: its trial id exactly, else its trial
    number (``1`` finds trial ``01``, ``40`` finds ``040``).

    Raises:
        TrialNotFoundError: neither matches.
    """
    row = conn.execute("SELECT id, trial_id FROM trials WHERE project_id = ? AND trial_id = ?",
                       (project_id, text)).fetchone()
    if row is None and text.strip().isdigit() and text.strip().isascii():
        row = conn.execute("SELECT id, trial_id FROM trials WHERE project_id = ? AND number = ?",
                           (project_id, int(text))).fetchone()
    if row is None:
        raise TrialNotFoundError(f"No trial {text!r} (by trial id or number) in this project; "
                                 "`hpstore trials DB` lists them.")
    return int(row[0]), str(row[1])


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, received {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, received {value}")
    return value


def seconds(text: str) -> float:
    """An argparse type: a number of seconds, 0 or more."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, received {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, received {text}")
    return value


def tool_parser(name: str, description: str | None) -> Any:
    """The argument parser every inspection tool starts from: DB and --project."""
    import argparse

    parser = argparse.ArgumentParser(prog=f"hpstore {name}", description=description)
    parser.add_argument("database", help="the search file (opened read-only)")
    parser.add_argument("--project", default=None,
                        help="the project (search) in the file; default: the only one")
    return parser


def add_output_options(parser: Any, default: str | None) -> None:
    """-o/--output and --force, for the tools that write a file."""
    parser.add_argument("-o", "--output", default=default,
                        help="the file to write" + (f" (default: {default})" if default else
                                                    "; default: standard output")
                        + "; never the search file, its companions or any SQLite file")
    parser.add_argument("--force", action="store_true",
                        help="replace the output file if it exists (never a SQLite file)")


def add_format_options(parser: Any, formats: Sequence[str], default: str) -> None:
    """--format and --raw, for the tools that print rows."""
    parser.add_argument("--format", choices=list(formats), default=default,
                        help=f"how to print the rows (default: {default})")
    if "csv" in formats:
        parser.add_argument("--raw", action="store_true",
                            help="CSV cells exactly as stored: without it, text starting with "
                                 "=, +, -, @, a tab or CR gets a leading ' so that a "
                                 "spreadsheet does not run it as a formula")


def error_line(message: Any) -> str:
    """The one line a tool prints for an error: control characters and line breaks of the
    file's contents shown as escapes."""
    return f"hpstore: error: {terminal_text(str(message).strip())}"


def run_tool(main: Any, argv: Sequence[str] | None = None) -> int:
    """Run a tool's ``main``. An error becomes one line on stderr and exit code 2; Ctrl-C
    (also during a long query) one line and exit code 130; a closed pipe exit code 0."""
    try:
        return int(main(argv) or 0)
    except KeyboardInterrupt:
        print("hpstore: interrupted", file=sys.stderr)
        return 130
    except (HpStoreError, ValueError) as exc:
        print(error_line(exc), file=sys.stderr)
        return 2
    except sqlite3.Error as exc:  # a query SQLite refused, or a file damaged past its header
        if is_interruption(exc):  # Ctrl-C reached SQLite through the progress handler
            print("hpstore: interrupted", file=sys.stderr)
            return 130
        print(error_line(f"SQLite failed: {str(exc).rstrip('.')}."), file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into head: stop quietly
        _silence_stdout()
        return 0
    except OSError as exc:  # a file or folder given on the command line
        where = f"{exc.filename}: " if exc.filename else ""
        print(error_line(f"{where}{exc.strerror or exc}."), file=sys.stderr)
        return 2


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's final flush into the closed pipe does not
    print a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
