"""`hpstore sql`: what it refuses, its time limit and Ctrl-C, and its output streamed in
bounded memory without holding a snapshot of the search."""

# ruff: noqa: F811 (the fixture imported from _tools is the tests' argument)

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from _tools import TOOL_ENV, run, shared_db  # noqa: F401 (a fixture)
from _workers import DEADLINE, end_trials, file_digest, open_oracle

import hpstore
from hpstore.cli import load_tool, main

# -- hpstore sql: what it refuses, and how long it runs ---------------------------------------

FOREVER = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
           "SELECT count(*) FROM c")


@pytest.mark.parametrize(("statement", "words"), [
    ("PRAGMA journal_mode = DELETE", "PRAGMA journal_mode = DELETE"),
    ("PRAGMA journal_mode=wal", "PRAGMA journal_mode = wal"),
    ("PRAGMA query_only = OFF", "PRAGMA query_only = OFF"),
    ("PRAGMA user_version = 7", "PRAGMA user_version = 7"),
    ("PRAGMA wal_checkpoint", "PRAGMA wal_checkpoint"),
    ("PRAGMA optimize", "PRAGMA optimize"),
    ("PRAGMA main.cache_size = 5", "PRAGMA cache_size = 5"),
    ("SELECT fts3_tokenizer('simple')", "the function fts3_tokenizer()"),
    ("SELECT hex(fts3_tokenizer('porter'))", "the function fts3_tokenizer()"),
    ("SELECT load_extension('x')", "the function load_extension()"),
    ("VACUUM", "ATTACH, DETACH and VACUUM"),
    ("ATTACH DATABASE 'other.db' AS other", "ATTACH, DETACH and VACUUM"),
])
def test_sql_refuses_settings_and_pointers_clearly(shared_db, capsys, statement, words):
    before = file_digest(shared_db)
    code, out, err = run(capsys, "sql", shared_db, statement)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"hpstore: error: hpstore sql refuses {words}"), err
    assert "disk I/O" not in err and file_digest(shared_db) == before


@pytest.mark.parametrize("statement", [
    "PRAGMA user_version", "PRAGMA journal_mode", "PRAGMA table_info(trials)",
    "PRAGMA index_list('trials')", "PRAGMA integrity_check(5)", "PRAGMA page_count",
    "SELECT name FROM pragma_table_info('trial_overview')", "PRAGMA compile_options",
])
def test_sql_still_reads_what_pragmas_report(shared_db, capsys, statement):
    code, out, err = run(capsys, "sql", shared_db, statement, "--format", "json")
    assert code == 0, err
    assert json.loads(out)


def test_sql_asks_for_one_statement(shared_db, capsys):
    code, out, err = run(capsys, "sql", shared_db, "SELECT 1; SELECT 2")
    assert (code, out, err) == (2, "", "hpstore: error: hpstore sql runs one statement at a "
                                       "time; give one.\n")


def test_sql_refuses_an_empty_query_and_a_project(shared_db, capsys):
    # a query reads the whole file: --project would be ignored, so it is not offered
    for argv, said in ((["  "], "the query is empty"),
                       (["SELECT 1", "--project", "p"], "--project")):
        with pytest.raises(SystemExit) as exc:
            run(capsys, "sql", shared_db, *argv)
        out, err = capsys.readouterr()
        assert exc.value.code == 2 and out == "" and said in err


def test_json_output_is_standard_json_whatever_the_floats(shared_db, capsys):
    query = "SELECT 1e999 AS up, -1e999 AS down, NULL AS missing, 0.5 AS half"
    code, out, _ = run(capsys, "sql", shared_db, query, "--format", "json")
    assert code == 0
    assert json.loads(out, parse_constant=lambda name: pytest.fail(f"not JSON: {name}")) == [
        {"up": "Infinity", "down": "-Infinity", "missing": None, "half": 0.5}]


def test_sql_stops_a_query_at_its_time_limit(shared_db, capsys):
    code, out, err = run(capsys, "sql", shared_db, FOREVER, "--timeout", "0.2")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "ran longer than 0.2 s" in err and "--timeout" in err


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_a_query_stopped_after_rows_were_read_prints_none_of_them(shared_db, capsys, fmt):
    # half a JSON document or CSV table on stdout would pass for the whole to a script
    endless = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
               "SELECT x FROM c")
    code, out, err = run(capsys, "sql", shared_db, endless, "--timeout", "0.2",
                         "--format", fmt)
    assert code == 2 and out == "" and "ran longer than 0.2 s" in err


def test_sql_timeout_must_be_a_number_of_seconds(shared_db, capsys):
    for bad, says in (("-1", "0 or more"), ("soon", "expected seconds"), ("nan", "0 or more"),
                      ("inf", "at most"), ("1e400", "at most")):
        with pytest.raises(SystemExit) as stopped:
            main(["sql", shared_db, "SELECT 1", "--timeout", bad])
        assert stopped.value.code == 2
        assert says in capsys.readouterr().err, bad  # (inf was "must be 0 or more")
    assert run(capsys, "sql", shared_db, "SELECT 1 AS one", "--timeout", "0")[0] == 0


_INTERRUPT_DURING_QUERY = """
import os, signal, sys, threading
from hpstore.store.sqlite import limits as query_limits
from hpstore.cli import main

in_query = threading.Event()
started = query_limits.QueryGuard.start
checked = query_limits.QueryGuard.__call__


def start(self):
    self.user_query = True
    return started(self)


def call(self):
    if getattr(self, "user_query", False):  # SQLite is running the user's query
        in_query.set()
    return checked(self)


def interrupt():
    if in_query.wait(60):
        os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends


query_limits.QueryGuard.start = start
query_limits.QueryGuard.__call__ = call
threading.Thread(target=interrupt, daemon=True).start()
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_stops_a_running_query_with_one_line(shared_db):
    done = subprocess.run([sys.executable, "-c", _INTERRUPT_DURING_QUERY, "sql", shared_db,
                           FOREVER, "--timeout", "0"], capture_output=True, text=True,
                          timeout=DEADLINE, env=TOOL_ENV)
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "hpstore: interrupted\n")




class _CountingOutput(io.TextIOBase):
    """A standard output that keeps only how much was written and its first lines."""

    def __init__(self) -> None:
        self.chars, self.head = 0, ""

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        self.chars += len(text)
        if len(self.head) < 2000:
            self.head += text[:2000]
        return len(text)


def peak_of_sql(monkeypatch, database, query, *args):
    """(exit code, output, peak bytes allocated) of hpstore sql run in-process."""
    import tracemalloc

    out = _CountingOutput()
    monkeypatch.setattr(sys, "stdout", out)
    tracemalloc.start()
    try:
        code = main(["sql", database, query, "--timeout", "0", *args])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        monkeypatch.undo()
    return code, out, peak


MANY_ROWS = 50_000
GENERATED = (f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < "
             f"{MANY_ROWS}) SELECT x, x * 0.5 AS half, 'row number ' || x AS label FROM c")


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_sql_streams_a_large_result_in_bounded_memory(shared_db, monkeypatch, fmt):
    # the whole result was fetched, then rendered into one string, before the first row
    # was printed: about 28 MB at 50,000 rows of three columns (560 MB at a million)
    code, out, peak = peak_of_sql(monkeypatch, shared_db, GENERATED, "--format", fmt)
    assert code == 0
    assert out.chars > MANY_ROWS * 20  # every row was printed
    assert peak < 5_000_000, f"{peak / 1e6:.1f} MB held for {MANY_ROWS} rows"
    if fmt == "json":
        assert out.head.startswith('[\n {\n  "x": 1,\n  "half": 0.5,\n  "label": "row number 1"')


def test_sql_streams_from_a_generator_before_the_query_ends(shared_db):
    # the first rows reach the output while the statement still has rows to give
    store = hpstore.store.open_store(shared_db, read_only=True)
    try:
        with store.sql_rows(GENERATED) as (columns, rows):
            from hpstore.rendering import render_stream

            pieces = render_stream(columns, rows, "csv")
            first = next(pieces)
            assert first.startswith("x,half,label\r\n1,0.5,row number 1\r\n")
            assert first.count("\r\n") < 1000  # one batch, not the whole result
    finally:
        store.close()


def test_a_streamed_table_is_aligned_on_its_first_rows_then_widens(shared_db, capsys):
    # up to the look-ahead, the same table as before; past it, a wider cell widens its
    # column from that row on, and each row stays whole on one line
    code, out, _ = run(capsys, "sql", shared_db,
                       "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                       "WHERE x < 1200) SELECT CASE WHEN x > 1100 THEN 'wide ' || x ELSE "
                       "'n' END AS a, x AS b FROM c")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "a  b" and lines[1] == "-  ----" and lines[2] == "n  1"
    assert len(lines) == 1202
    assert lines[1100 + 2] == "wide 1101  1101" and lines[-1] == "wide 1200  1200"
    code, out, _ = run(capsys, "sql", shared_db, "SELECT 'abc' AS a, 1 AS b UNION ALL "
                       "SELECT 'x', 22")
    assert out == "a    b\n---  --\nabc  1\nx    22\n"




class _CheckpointingOutput(_CountingOutput):
    """A standard output that, at each write, asks a writer's connection to fold the whole
    log into the file: it cannot while a reader still holds a snapshot of it."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path, self.busy = path, []

    def write(self, text: str) -> int:
        conn = sqlite3.connect(self.path, timeout=0)
        try:
            self.busy.append(conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0])
        finally:
            conn.close()
        return super().write(text)


def test_sql_holds_no_snapshot_while_its_output_waits(tmp_path, monkeypatch):
    # a pager read slowly waits on the output: were rows printed as read, the query's
    # snapshot would stay open all that time and the workers' -wal would grow unchecked
    path = str(tmp_path / "s.db")
    oracle = open_oracle(path, max_trials=5, seed=1)
    try:
        end_trials(oracle, ["COMPLETED"] * 3)  # (open: its log holds these writes)
        assert Path(path + "-wal").stat().st_size > 0
        out = _CheckpointingOutput(path)
        monkeypatch.setattr(sys, "stdout", out)
        code = main(["sql", path, GENERATED + ", (SELECT count(*) FROM trials) AS trials",
                     "--format", "csv"])
        monkeypatch.undo()
    finally:
        oracle.close()
    assert code == 0 and out.chars > MANY_ROWS * 20
    assert out.busy and not any(out.busy), out.busy[:5]


def test_sql_says_how_much_output_it_keeps_in_memory_as_it_does():
    # the --help and the README said "a temporary file past the first MB" while the
    # spool rolls over to a file at 256 KB (SpooledTemporaryFile counts encoded bytes)
    sql = load_tool("sql")
    said = f"past the first {sql.SPOOLED_IN_MEMORY // 1024} KB"
    assert said in " ".join(sql.__doc__.split())
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    assert said in readme


@pytest.mark.skipif(sys.platform != "linux" or not hasattr(os, "geteuid") or os.geteuid() != 0
                    or shutil.which("unshare") is None,
                    reason="makes every temporary folder read-only in a mount namespace of "
                           "its own, which needs root (as in CI)")
def test_a_sort_with_no_writable_temporary_folder_says_so_not_disk_io(tmp_path):
    # a container with a read-only root: "SQLite could not run the query: disk I/O error",
    # which reads as a damaged file or disk
    db = tmp_path / "s.db"
    end_trials(open_oracle(str(db), max_trials=2), ["COMPLETED", "COMPLETED"]).close()
    query = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 300000) "
             "SELECT x, hex(randomblob(20)) AS h FROM c ORDER BY h")
    script = (
        "set -e\n"  # (the working folder, the test's, read-only too)
        "for d in /tmp /var/tmp \"$1\"; do mount --bind \"$d\" \"$d\" && "
        "mount -o remount,ro,bind \"$d\"; done\n"
        "mount -t tmpfs none \"$1\"/ns && cp \"$1\"/s.db \"$1\"/ns/\n"
        "cd \"$1\" && unset TMPDIR SQLITE_TMPDIR\n"
        f"exec {shlex.quote(sys.executable)} -m hpstore sql --format csv \"$1\"/ns/s.db "
        f"{shlex.quote(query)}\n")
    (tmp_path / "ns").mkdir()
    done = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                           "sh", str(tmp_path)], capture_output=True, text=True,
                          env={**TOOL_ENV}, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "needs a temporary file" in done.stderr and "SQLITE_TMPDIR" in done.stderr, (
        done.stderr)
    assert "disk I/O error" not in done.stderr
