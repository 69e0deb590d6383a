"""Security: file data is never run as code, inspection never writes, the files hpstore
creates are not world-writable (that nothing a user typed is formatted into SQL text is
test_sql_text.py's).

The crafted-file tests write payloads that would create a marker file if anything
unpickled, eval'ed or exec'ed them (the first test proves they would) into every text
column of a real search file, then open it with the library and every inspection tool.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import html.parser
import io
import json
import os
import pickle
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _sources import ROOT, SOURCES, rel
from _workers import RandomTestOracle, open_oracle

import hpstore
from hpstore import cli

TESTS = Path(__file__).resolve().parent

# The read-only inspection commands (import-keras-tuner and other writers are not among them).
INSPECTION = [*cli.TOOLS, "report"]


def env() -> dict[str, str]:
    """The environment of a child `python -m hpstore`: this checkout first on the path."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), str(TESTS), os.environ.get("PYTHONPATH", "")])}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``folder``: relative name -> (sha256 or "dir", mtime_ns)."""
    found = {}
    for item in sorted(folder.rglob("*")):
        found[item.relative_to(folder).as_posix()] = (
            "dir" if item.is_dir() else digest(item), item.stat().st_mtime_ns)
    return found


def fold_wal(path: Path) -> None:
    """Checkpoint the WAL into the main file, so the file alone is the whole search."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def tool_args(tool: str, path: Path, out: Path, trial_id: str = "0") -> list[str]:
    extra = {"show": [trial_id], "watch": ["--once"], "sql": ["SELECT * FROM trial_overview"],
             "report": ["-o", str(out / "report.html"), "--force"]}
    return [tool, str(path), *extra.get(tool, [])]


def run_in_process(argv: list[str]) -> tuple[Any, str, str]:
    """(exit code, or the exception that escaped `hpstore`; stdout; stderr)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code: Any = cli.main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    except Exception as exc:  # what a user would see as a traceback
        code = exc
    return code, out.getvalue(), err.getvalue()


def run_subprocess(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hpstore", *argv], capture_output=True,
                          text=True, cwd=ROOT, env=env(), timeout=120)


# -- 1. no pickle, eval or exec anywhere in the code -----------------------------------------

RISKY_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "jsonpickle", "marshal",
                 "shelve", "yaml", "joblib", "runpy", "code", "codeop"}
RISKY_BUILTINS = {"eval", "exec", "compile", "__import__", "breakpoint"}
RISKY_METHODS = {"exec_module", "import_module", "run_path", "run_module", "load_extension",
                 "enable_load_extension", "read_pickle", "system", "popen"}
# Each allowed finding with the reason it cannot run data from a file.
ALLOWED_CODE_LOADING = {
    ("hpstore/cli.py", "spec.loader.exec_module(module)"):
        "runs hpstore's own tool scripts from its package folder, for command names found "
        "in the fixed TOOLS/READING/WRITING lists only (test_cli_runs_only_listed_tools)",
    ("hpstore/__init__.py", "importlib.import_module(module)"):
        "the public API imported on first use: modules of hpstore named in the fixed "
        "_LAZY_MODULES table only (test_package.py)",
    ("hpstore/__init__.py", "importlib.import_module(f'{__name__}.{name}')"):
        "hpstore's own subpackages, for names in the fixed _SUBMODULES set only "
        "(test_package.py)",
}


def code_loading_calls(path: Path) -> set[tuple[str, str]]:
    """Imports of deserialisers that can run code, and calls that run or load code."""
    module = ast.parse(path.read_text(encoding="utf-8"))
    numpy_names = {"numpy"}
    found = set()
    for node in ast.walk(module):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in RISKY_MODULES:
                    found.add((rel(path), f"import {alias.name}"))
                if alias.name == "numpy":
                    numpy_names.add(alias.asname or "numpy")
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in RISKY_MODULES:
                found.add((rel(path), f"from {node.module} import ..."))
        elif isinstance(node, ast.Call):
            func = node.func
            text = ast.unparse(node)
            if isinstance(func, ast.Name) and func.id in RISKY_BUILTINS:
                found.add((rel(path), text))
            elif isinstance(func, ast.Attribute):
                if func.attr in RISKY_METHODS:
                    found.add((rel(path), text))
                elif (func.attr == "load" and isinstance(func.value, ast.Name)
                      and func.value.id in numpy_names):
                    found.add((rel(path), text))  # numpy.load may unpickle
            if any(k.arg == "shell" and not (isinstance(k.value, ast.Constant)
                                             and k.value.value is False)
                   for k in node.keywords):
                found.add((rel(path), text))
    return found


def test_sources_never_unpickle_or_eval():
    found = set().union(*(code_loading_calls(p) for p in SOURCES))
    assert found - set(ALLOWED_CODE_LOADING) == set(), (
        "code that can run data as code; justify it in ALLOWED_CODE_LOADING or remove it")
    assert set(ALLOWED_CODE_LOADING) <= found, "an allowed entry is gone; drop it from the list"


def test_cli_runs_only_listed_tools(tmp_path):
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(tmp_path / 'PWNED')!r}, 'w')\n")
    for command in [str(evil), "../tests/_workers", "evil", "summary/../../x", "__init__"]:
        code, _, err = run_in_process([command])
        assert code == 2 and "unknown command" in err
    assert not (tmp_path / "PWNED").exists()


# -- 2. crafted files: payloads in every text column ------------------------------------------

class _Touch:
    """Unpickling this creates the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


def marker_in(folder: Path) -> Path:
    """The marker file, its path padded to a fixed length so that the pickled payload has the
    same bytes structure (lengths, line breaks) wherever the test runs."""
    assert len(str(folder)) < 150
    return folder / "PWNED".ljust(159 - len(str(folder)), "_")


def payloads(marker: Path) -> dict[str, Any]:
    """Values that create ``marker`` if they are unpickled, eval'ed or exec'ed."""
    pickled = pickle.dumps(_Touch(str(marker)))
    return {
        "code": f"__import__('builtins').open({str(marker)!r}, 'w')",
        "pickle": pickled,
        "pickle_text": pickled.decode("latin-1"),
        "yaml": f"!!python/object/apply:builtins.open [{str(marker)!r}, 'w']",
        "sql": "x'); DROP TABLE trials; --",
    }


def test_the_payloads_are_live(tmp_path):
    """The payloads do create the marker when run, so its absence below means something."""
    marker = marker_in(tmp_path)
    p = payloads(marker)
    pickle.loads(p["pickle"]).close()  # on purpose: proves the payload works
    assert marker.exists()
    marker.unlink()
    pickle.loads(p["pickle_text"].encode("latin-1")).close()
    assert marker.exists()
    marker.unlink()
    eval(p["code"]).close()
    assert marker.exists()


class PayloadOracle(RandomTestOracle):
    """Stores the payloads it finds in the values as algorithm state, keyed by one of them."""

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        response = super().populate_space(trial_id)
        if response.get("values"):
            found = response["values"]["payloads"]
            self._set_state_value(found["code"], {found["code"]: [found["pickle_text"]],
                                                  "yaml": found["yaml"]})
        return response


def hostile_search(path: Path, marker: Path) -> str:
    """A real search whose names, values, metrics, ids and messages are all payloads, with
    raw writes into the columns the library fills itself. Returns the project name."""
    p = payloads(marker)
    code, text, yaml, sql = p["code"], p["pickle_text"], p["yaml"], p["sql"]
    hp = hpstore.HyperParameters()
    hp.Choice(code, [code, text, yaml, sql])
    hp.Fixed("payloads", {k: v for k, v in p.items() if k != "pickle"})
    hp.Float(sql, 0, 1)
    hp.Boolean(yaml)
    oracle = PayloadOracle(objective=hpstore.Objective(code, "min"), hyperparameters=hp,
                           max_trials=10, database=str(path), project_name=code)
    for i, status in enumerate(["COMPLETED", "FAILED", "INVALID", "COMPLETED"]):
        trial = oracle.create_trial(tuner_id=[code, text, yaml, sql][i])
        for step in range(2):
            oracle.update_trial(trial.trial_id, {code: float(i + step), text: 1.0, sql: 2.0},
                                step=step)
        trial.status = status
        if status != "COMPLETED":
            trial.message = f"Traceback (most recent call last):\n  {code}\n{text}\n{yaml}"
        oracle.end_trial(trial)
    oracle.create_trial(tuner_id=yaml)  # left running
    oracle.close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE trials SET values_key = ? || id WHERE session IS NULL", (code,))
        conn.execute("UPDATE transitions SET message = ? WHERE message IS NULL", (text,))
    conn.close()
    fold_wal(path)
    return code


def test_hostile_search_runs_nothing_and_reads_back(tmp_path):
    marker = marker_in(tmp_path)
    path = tmp_path / "hostile.db"
    project = hostile_search(path, marker)
    p = payloads(marker)

    oracle = PayloadOracle(database=str(path), project_name=project)
    state = oracle.get_state()
    text = json.dumps(state, allow_nan=False)
    assert p["code"] in json.loads(text)["oracle_state"]
    assert {t["tuner_id"] for t in state["trials"]} >= {p["code"], p["pickle_text"], p["sql"]}
    for trial in oracle.trials.values():
        if trial.status != "RUNNING":
            assert [o.step for o in trial.metrics.get_history(p["code"])] == [0, 1]
    best = oracle.get_best_trials(1)[0]
    assert best.status == "COMPLETED"
    assert best.values["payloads"]["pickle_text"] == p["pickle_text"]
    trial = oracle.create_trial("another")
    assert trial.status == "RUNNING" and trial.values[p["code"]] in (
        p["code"], p["pickle_text"], p["yaml"], p["sql"])
    oracle.close()

    copy = PayloadOracle(database=str(tmp_path / "copy.db"), project_name=project)
    copy.set_state(state)
    again = copy.get_state()
    for key in ("space", "oracle_state"):
        assert again[key] == state[key]
    # (a trial running in the original has no worker in the copy: its token and pid go)
    assert [{k: v for k, v in t.items() if k not in ("session", "pid")}
            for t in again["trials"]] == [
        {k: v for k, v in t.items() if k not in ("session", "pid")} for t in state["trials"]]
    copy.close()

    out = tmp_path / "out"
    out.mkdir()
    for tool in INSPECTION:
        argv = tool_args(tool, path, out, trial_id=state["trials"][0]["trial_id"])
        code, stdout, err = run_in_process(argv)
        assert code == 0, (tool, code, err)
        if tool in ("summary", "trials", "export", "history"):
            assert p["code"] in stdout, tool  # shown as the text it is
        done = run_subprocess(argv)
        assert done.returncode == 0, (tool, done.stderr)
        assert "Traceback" not in done.stderr
    assert not marker.exists()


# Every text column of the schema; the JSON ones also get JSON of the wrong shape.
TEXT_COLUMNS = [
    ("projects", "name"), ("projects", "oracle_class"), ("hyperparameters", "name"),
    ("hyperparameters", "class_name"), ("trials", "trial_id"), ("trials", "status"),
    ("trials", "values_key"), ("trials", "tuner_id"), ("trials", "session"),
    ("trials", "message"), ("observations", "metric"), ("observations", "direction"),
    ("transitions", "from_status"), ("transitions", "to_status"), ("transitions", "tuner_id"),
    ("transitions", "message"), ("oracle_state", "key"),
]
JSON_COLUMNS = [("projects", "oracle_config"), ("projects", "objective"),
                ("hyperparameters", "config"), ("trials", "hp_values"), ("oracle_state", "value")]
UNIQUE_SUFFIX = {("trials", "trial_id"): "id", ("oracle_state", "key"): "key"}



def crafted_cases() -> list[tuple[str, str, str]]:
    cases = [(t, c, kind) for t, c in TEXT_COLUMNS for kind in ("pickle", "code")]
    cases += [(t, c, kind) for t, c in JSON_COLUMNS
              for kind in ("pickle", "code", "json_string", "json_list")]
    return cases


def crafted_value(kind: str, marker: Path) -> Any:
    p = payloads(marker)
    return {"pickle": p["pickle"], "code": p["code"], "json_string": json.dumps(p["code"]),
            "json_list": "[1]"}[kind]


@pytest.fixture(scope="module")
def crafted_base(tmp_path_factory):
    """A small Hyperband search (it keeps oracle state): done, failed and running trials."""
    path = tmp_path_factory.mktemp("crafted") / "base.db"
    hp = hpstore.HyperParameters()
    hp.Choice("c", ["a", "b"])
    hp.Float("x", 0, 1)
    oracle = hpstore.HyperbandOracle("loss", max_epochs=3, factor=3, seed=1, database=str(path),
                                     project_name="proj", hyperparameters=hp)
    for i in range(3):
        trial = oracle.create_trial("w")
        oracle.update_trial(trial.trial_id, {"loss": 1.0 + i, "acc": 0.5}, step=0)
        trial.status = "FAILED" if i == 1 else "COMPLETED"
        trial.message = "Traceback (most recent call last):\nValueError: no" if i == 1 else None
        oracle.end_trial(trial)
    oracle.create_trial("w2")
    oracle.close()
    fold_wal(path)
    return path


_OUTCOMES: dict[tuple[str, str, str], dict[str, Any]] = {}


def crafted_outcome(case: tuple[str, str, str], base: Path, folder: Path) -> dict[str, Any]:
    """Write one payload into one column of a copy of ``base``, then run every inspection
    tool and the library on it; computed once per case for the tests below."""
    if case in _OUTCOMES:
        return _OUTCOMES[case]
    table, column, kind = case
    marker = marker_in(folder)
    path = folder / "crafted.db"
    shutil.copyfile(base, path)
    value = crafted_value(kind, marker)
    suffix = UNIQUE_SUFFIX.get((table, column))
    expr = "?" if suffix is None else (
        f"CAST(? || {suffix} AS BLOB)" if isinstance(value, bytes) else f"? || {suffix}")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA ignore_check_constraints = ON")  # to write what hpstore never would
    with conn:
        conn.execute(f"UPDATE {table} SET {column} = {expr}", (value,))
    trial_id, name = conn.execute(
        "SELECT trial_id, (SELECT name FROM projects) FROM trials ORDER BY id").fetchone()
    conn.close()

    tools = {}
    for tool in INSPECTION:
        argv = tool_args(tool, path, folder, trial_id if isinstance(trial_id, str) else "0")
        code, out, err = run_in_process(argv)
        if isinstance(code, BaseException):
            tools[tool] = f"crash: {type(code).__name__}: {code}"
        elif code == 0 and ((out and not err) or (
                tool == "report" and not out and err.startswith("Wrote ")
                and err.count("\n") == 1)):
            tools[tool] = "reads"  # (report -o says what it wrote on stderr)
        elif tool == "check" and code == 1 and not err and "hpstore never writes" in out:
            tools[tool] = "reports"
        elif code == 2 and not out and err.startswith("hpstore: error:") and \
                err.count("\n") == 1:
            tools[tool] = "refuses"
        else:
            tools[tool] = f"exit {code}: {out[-200:]} {err[-200:]}"
    try:
        oracle = hpstore.HyperbandOracle(max_epochs=3, factor=3, database=str(path),
                                         project_name=name if isinstance(name, str) else "proj")
        state = oracle.get_state()
        try:
            json.dumps(state, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise AssertionError(f"get_state() is not JSON: {exc}") from None
        for trial in oracle.trials.values():
            trial.metrics.get_config()
            dict(trial.values)
        oracle.get_best_trials(4)
        oracle.create_trial("crafted")
        oracle.close()
        library = "ok"
    except hpstore.HpStoreError as exc:
        library = f"clear: {exc}"
    except (ValueError, TypeError) as exc:
        fragments = ["__import__", "\\x80", "[1]"]
        clear = not isinstance(exc, (UnicodeError, json.JSONDecodeError)) and any(
            f in str(exc) for f in fragments)
        library = f"{'clear' if clear else 'unclear'}: {type(exc).__name__}: {exc}"
    except Exception as exc:
        library = f"unclear: {type(exc).__name__}: {exc}"
    _OUTCOMES[case] = {"marker": marker.exists(), "tools": tools, "library": library}
    return _OUTCOMES[case]


def case_id(case: tuple[str, str, str]) -> str:
    return ".".join(case)


@pytest.mark.parametrize("case", crafted_cases(), ids=case_id)
def test_crafted_file_runs_no_payload(case, crafted_base, tmp_path):
    outcome = crafted_outcome(case, crafted_base, tmp_path)
    assert not outcome["marker"]


def expected_tool_outcome(case: tuple[str, str, str], tool: str) -> str:
    """What each tool does with a crafted file. `hpstore sql` shows any file as it is. The
    others check every row first: text where hpstore writes text (Python code is text) is
    read and printed; a BLOB, or JSON that is not an object where hpstore writes one, is
    refused with one error line."""
    table, column, kind = case
    # a status is one of six words (the status log's table has no CHECK; a trial's status,
    # written past its CHECK, reaches the log through its trigger)
    status = (table, column) in (("trials", "status"), ("transitions", "from_status"),
                                 ("transitions", "to_status"))
    if tool == "sql" or (kind == "code" and (table, column) in TEXT_COLUMNS and not status):
        return "reads"
    if (table, column) == ("oracle_state", "value") and kind.startswith("json"):
        return "reads"  # an algorithm's state may be any JSON value
    if tool == "check":  # its findings, the value at fault among them, and exit code 1
        return "reports"
    return "refuses"


@pytest.mark.parametrize("case", crafted_cases(), ids=case_id)
def test_crafted_file_tools_fail_cleanly(case, crafted_base, tmp_path):
    outcome = crafted_outcome(case, crafted_base, tmp_path)
    assert outcome["tools"] == {tool: expected_tool_outcome(case, tool) for tool in INSPECTION}


@pytest.mark.parametrize("case", crafted_cases(), ids=case_id)
def test_crafted_file_library_fails_cleanly(case, crafted_base, tmp_path):
    outcome = crafted_outcome(case, crafted_base, tmp_path)
    assert not outcome["library"].startswith("unclear"), outcome["library"]


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.handlers += [name for name, _ in attrs if name.startswith("on")]


def test_report_escapes_hostile_text(tmp_path):
    """Names, values, ids and messages reach the HTML report as text, never as markup."""
    xss = '"><script>alert(1)</script><img src=x onerror=alert(2)><svg onload=alert(3)>'
    hp = hpstore.HyperParameters()
    hp.Choice(xss, [xss, "b"])
    hp.Float("f" + xss, 0, 1)
    hp.Fixed("fixed", {xss: [xss]})
    path = tmp_path / "xss.db"
    oracle = RandomTestOracle(objective=hpstore.Objective(xss, "min"), hyperparameters=hp,
                              max_trials=6, database=str(path), project_name=xss)
    for i in range(5):
        trial = oracle.create_trial(xss + str(i))
        for step in range(3):
            oracle.update_trial(trial.trial_id, {xss: float(i + step), "m" + xss: 1.0}, step)
        trial.status, trial.message = ("FAILED", xss) if i == 2 else ("COMPLETED", None)
        oracle.end_trial(trial)
    oracle.close()
    code, _, err = run_in_process(["report", str(path), "-o", str(tmp_path / "r.html")])
    assert code == 0, err
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(page)
    assert not parser.tags & {"script", "img", "iframe", "object", "embed", "a"}
    assert parser.handlers == []
    assert "&lt;script&gt;" in page  # the text is there, escaped


# -- 3. inspection never writes ---------------------------------------------------------------

@pytest.fixture(scope="module")
def inspected(tmp_path_factory):
    """Run every inspection tool as `python -m hpstore` on a quiet search file (the WAL folded
    in, as after a search ends), recording the folder before and after."""
    folder = tmp_path_factory.mktemp("inspected")
    path = folder / "search.db"
    oracle = open_oracle(str(path), max_trials=5, max_retries_per_trial=1)
    for i in range(4):
        trial = oracle.create_trial("w")
        oracle.update_trial(trial.trial_id, {"loss": float(i)}, step=0)
        trial.status = ["COMPLETED", "FAILED", "INVALID", "COMPLETED"][i]
        oracle.end_trial(trial)
    oracle.close()
    before = tree(folder)
    out = tmp_path_factory.mktemp("inspected-out")
    results = {tool: run_subprocess(tool_args(tool, path, out)) for tool in INSPECTION}
    return path, before, tree(folder), results


def test_inspection_tools_change_no_byte(inspected):
    _, before, after, results = inspected
    assert {t: (r.returncode, r.stderr) for t, r in results.items() if r.returncode} == {}
    assert sorted(n for n in before if "/" not in n) == ["search.db", "search.db.hpstore"]
    for name, (content, mtime) in before.items():  # the file, its folder of locks
        assert after[name] == (content, mtime), name


def test_inspection_tools_leave_only_sqlites_empty_log_which_the_next_writer_removes(
        inspected):
    # A reader of a WAL file no process has open makes SQLite create the -wal and -shm
    # beside it (a read-only connection cannot remove them). The log stays empty, and the
    # next hpstore process that opens and closes the search removes both (README).
    path, before, after, _ = inspected
    new = sorted(set(after) - set(before))
    assert new == ["search.db-shm", "search.db-wal"] or new == []
    wal = path.with_name("search.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    assert set(before) <= set(after)
    open_oracle(str(path)).close()
    assert sorted(n for n in tree(path.parent) if "/" not in n) == [
        "search.db", "search.db.hpstore"]


WRITES = [
    "DELETE FROM trials", "UPDATE trials SET score = 0", "INSERT INTO trials DEFAULT VALUES",
    "DROP TABLE trials", "CREATE TABLE x (y)", "CREATE TEMP TABLE x (y)", "DROP VIEW status_log",
    "PRAGMA user_version = 7", "PRAGMA journal_mode = DELETE", "VACUUM", "REINDEX", "ANALYZE",
    "VACUUM INTO '{folder}/copy.db'", "ATTACH DATABASE '{folder}/attached.db' AS x",
    "ATTACH DATABASE 'file:{folder}/rwc.db?mode=rwc' AS x",
    "DELETE FROM trials; SELECT 1", "SELECT 1; DELETE FROM trials",
    "SELECT load_extension('{folder}/x.so')",
]


def test_sql_refuses_every_write(tmp_path):
    path = tmp_path / "search.db"
    oracle = open_oracle(str(path), max_trials=3)
    trial = oracle.create_trial("w")
    oracle.update_trial(trial.trial_id, {"loss": 1.0})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    oracle.close()
    code, out, _ = run_in_process(["sql", str(path), "SELECT count(*) AS n FROM trials",
                                   "--format", "json"])
    assert code == 0 and json.loads(out) == [{"n": 1}]
    before = tree(tmp_path)
    for statement in WRITES:
        code, _, err = run_in_process(["sql", str(path), statement.format(folder=tmp_path)])
        assert code == 2 and err.startswith("hpstore: error:"), (statement, code, err)
    done = run_subprocess(["sql", str(path), "DELETE FROM trials"])
    assert done.returncode == 2 and "read-only" in done.stderr and "Traceback" not in done.stderr
    after = tree(tmp_path)
    assert sorted(after) == sorted(before)  # nothing deleted, nothing created
    for name in before:  # the -shm is shared memory that every reader writes to
        assert name.endswith("-shm") or after[name] == before[name], name
    assert sqlite3.connect(path).execute("SELECT count(*) FROM trials").fetchone()[0] == 1


# -- 4. file modes ----------------------------------------------------------------------------

_MODES_SCRIPT = """
import json, os, stat, sys
os.umask(0)
from _workers import open_oracle
path = sys.argv[1]
oracle = open_oracle(path, max_trials=3)
trial = oracle.create_trial("t")
oracle.update_trial(trial.trial_id, {"loss": 1.0})
trial.status = "COMPLETED"
oracle.end_trial(trial)
oracle.create_trial("t")  # still open: the -wal, -shm and liveness files exist
folder = os.path.dirname(path)
modes = {}
for root, dirs, files in os.walk(folder):
    for name in dirs + files:
        full = os.path.join(root, name)
        modes[os.path.relpath(full, folder)] = stat.S_IMODE(os.lstat(full).st_mode)
print(json.dumps(modes))
"""


@pytest.fixture(scope="module")
def modes_under_umask_zero(tmp_path_factory):
    """Modes of everything a search creates, made in a child whose umask is 0."""
    folder = tmp_path_factory.mktemp("umask")
    done = subprocess.run([sys.executable, "-c", _MODES_SCRIPT, str(folder / "search.db")],
                          capture_output=True, text=True, cwd=ROOT, env=env(), timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def world_writable(modes: dict[str, int]) -> dict[str, str]:
    return {name: oct(mode) for name, mode in modes.items() if mode & stat.S_IWOTH}


def test_database_files_not_world_writable(modes_under_umask_zero):
    files = {n: m for n, m in modes_under_umask_zero.items() if not n.startswith("search.db.")}
    assert sorted(files) == ["search.db", "search.db-shm", "search.db-wal"]
    assert world_writable(files) == {}


def test_sidecar_not_world_writable(modes_under_umask_zero):
    sidecar = {n: m for n, m in modes_under_umask_zero.items() if n.startswith("search.db.")}
    assert "search.db.hpstore" in sidecar and "search.db.hpstore/oracle.lock" in sidecar
    assert world_writable(sidecar) == {}
