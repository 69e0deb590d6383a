"""The inspection tools, against real search files (one of them written by 3 processes);
`hpstore sql`'s own tests are test_tool_sql.py's."""

# ruff: noqa: F811 (the fixture imported from _tools is the tests' argument)

from __future__ import annotations

import csv
import io
import json
import multiprocessing as mp
import os
import sqlite3
import subprocess
import sys

import pytest
from _tools import TOOL_ENV, run, shared_db  # noqa: F401 (a fixture)
from _workers import DEADLINE, end_trials, file_digest, open_oracle, write_forever

import hpstore
from hpstore.cli import available_tools, load_tool, main
from hpstore.store.sqlite.schema import SCHEMA_VERSION


def test_every_listed_tool_has_a_script():
    tools = available_tools()
    assert {"summary", "trials", "show", "best", "history", "export", "watch", "check",
            "sql"} <= set(tools)
    for name in tools:
        assert callable(load_tool(name).main)


def test_help_lists_every_command(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and all(name in out for name in [*available_tools(), "demo"])


def test_summary(shared_db, capsys):
    code, out, _ = run(capsys, "summary", shared_db)
    assert code == 0
    assert "RandomTestOracle, objective loss (min), max_trials 32" in out
    assert "Trials: 32, COMPLETED 30, FAILED 1, INVALID 1" in out
    space = out.split("Search space:\n")[1].splitlines()
    assert [line.split() for line in space] == [["x", "Float", "-10", "..", "10"],
                                                ["y", "Int", "0", "..", "10"],
                                                ["c", "Choice", "a,", "b"]]
    conn = sqlite3.connect(shared_db)
    best_id = conn.execute("SELECT trial_id FROM trials WHERE status = 'COMPLETED' "
                           "ORDER BY score LIMIT 1").fetchone()[0]
    assert f"Best: trial {best_id}," in out


def test_trials_formats_and_filters(shared_db, capsys):
    code, out, _ = run(capsys, "trials", shared_db, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 32
    assert {"x", "y", "c", "score", "status"} <= set(rows[0])
    code, out, _ = run(capsys, "trials", shared_db, "--status", "FAILED", "--format", "json")
    failed = json.loads(out)
    assert [r["status"] for r in failed] == ["FAILED"]
    code, out, _ = run(capsys, "trials", shared_db, "--sort", "score", "--limit", "3",
                       "--format", "json")
    scores = [r["score"] for r in json.loads(out)]
    assert scores == sorted(scores) and len(scores) == 3
    code, out, _ = run(capsys, "trials", shared_db, "--limit", "2")
    assert out.splitlines()[0].split()[:3] == ["trial_id", "status", "score"]
    assert len(out.splitlines()) == 4


def test_best(shared_db, capsys):
    code, out, _ = run(capsys, "best", shared_db, "-n", "2", "--format", "json")
    assert code == 0
    best = json.loads(out)
    conn = sqlite3.connect(shared_db)
    expected = [r[0] for r in conn.execute("SELECT trial_id FROM trials WHERE status = "
                                           "'COMPLETED' ORDER BY score LIMIT 2")]
    assert [b["trial_id"] for b in best] == expected


def test_show_and_history(shared_db, capsys):
    conn = sqlite3.connect(shared_db)
    flaky = conn.execute("SELECT trial_id FROM trials WHERE status = 'INVALID'").fetchone()[0]
    code, out, _ = run(capsys, "show", shared_db, flaky)
    assert code == 0 and f"Trial {flaky}: INVALID" in out
    assert "loss" in out and "Status changes:" in out and "INVALID" in out
    code, out, _ = run(capsys, "history", shared_db, "--trial", flaky, "--format", "json")
    assert [r["to"] for r in json.loads(out)] == ["RUNNING", "INVALID"]
    code, out, _ = run(capsys, "history", shared_db, "--worker", "w-extra", "--format", "json")
    assert {r["tuner_id"] for r in json.loads(out)} == {"w-extra"} and len(json.loads(out)) == 4
    # a tuner id that made no change (mistyped, say) is said so beside the empty answer
    code, out, err = run(capsys, "history", shared_db, "--worker", "w-extr", "--format", "json")
    assert code == 0 and json.loads(out) == [] and "tuner id 'w-extr'" in err
    code, _, err = run(capsys, "show", shared_db, "nope")
    assert code == 2 and "No trial 'nope'" in err


def test_export(shared_db, capsys, tmp_path):
    code, out, _ = run(capsys, "export", shared_db, "--format", "jsonl")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 32 and {"trial_id", "x", "score"} <= set(lines[0])
    target = tmp_path / "out.csv"
    run(capsys, "export", shared_db, "-o", str(target))
    with open(target, newline="") as f:
        assert len(list(csv.DictReader(f))) == 32


def test_sql_reads_and_refuses_writes(shared_db, capsys):
    code, out, _ = run(capsys, "sql", shared_db, "SELECT status, count(*) AS n FROM "
                       "trial_overview GROUP BY status ORDER BY status", "--format", "json")
    assert json.loads(out) == [{"status": "COMPLETED", "n": 30}, {"status": "FAILED", "n": 1},
                               {"status": "INVALID", "n": 1}]
    before = file_digest(shared_db)
    for statement in ["DELETE FROM trials", "UPDATE trials SET score = 0",
                      "DROP TABLE trials", "CREATE TABLE x (y)"]:
        code, _, err = run(capsys, "sql", shared_db, statement)
        assert code == 2 and "read-only" in err
    assert file_digest(shared_db) == before


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_sql_shows_a_blob_as_sql_writes_it(shared_db, capsys, fmt):
    # Python's own form, "b'\\x00\\xff'", came out in every format
    code, out, _ = run(capsys, "sql", shared_db, "SELECT x'00ff' AS b, zeroblob(2) AS z",
                       "--format", fmt)
    assert code == 0 and "x'00ff'" in out and "x'0000'" in out and "\\x" not in out
    if fmt == "json":
        assert json.loads(out) == [{"b": "x'00ff'", "z": "x'0000'"}]


def test_check_tells_enqueued_trials_from_those_waiting_to_run_again(tmp_path, capsys):
    path = str(tmp_path / "queued.db")
    oracle = open_oracle(path, max_trials=6, max_retries_per_trial=1)
    end_trials(oracle, ["INVALID"])  # ran once, waits to run again
    oracle.enqueue_trial({"x": 1.0, "y": 2, "c": "a"})
    oracle.enqueue_trial({"x": 2.0, "y": 3, "c": "b"})
    oracle.close()
    code, out, _ = run(capsys, "check", path)
    assert code == 0
    assert "1 waiting to run again, 2 enqueued and not run yet" in out


def test_check_does_not_advise_a_worker_where_none_can_write(tmp_path, capsys):
    # a trial waits to run again, but the file is read-only (chmod 444; a read-only mount
    # is said the same way): check says why no worker can finish it here, and what to do
    path = str(tmp_path / "kept.db")
    oracle = open_oracle(path, max_trials=6, max_retries_per_trial=1)
    end_trials(oracle, ["INVALID"])
    oracle.close()
    os.chmod(path, 0o444)
    code, out, _ = run(capsys, "check", path)
    assert code == 0 and "1 waiting to run again" in out
    assert f"No worker can finish them here: {path} is read-only" in out
    assert "start any worker" not in out
    os.chmod(path, 0o644)
    code, out, _ = run(capsys, "check", path)
    assert "To finish them, start any worker on this file" in out


def test_check(shared_db, capsys):
    code, out, _ = run(capsys, "check", shared_db)
    assert code == 0 and "integrity: ok" in out
    assert f"schema version: {SCHEMA_VERSION} (this hpstore: {SCHEMA_VERSION})" in out
    assert "1 waiting to run again" in out
    # a project that does not exist is the whole answer, not a report and then an error
    code, out, err = run(capsys, "check", shared_db, "--project", "nope")
    assert (code, out) == (2, "") and "No project 'nope'" in err


def test_watch_once(shared_db, capsys):
    code, out, _ = run(capsys, "watch", shared_db, "--once")
    assert code == 0 and "trials done 31/32" in out and "running (0)" in out


def test_tools_change_nothing_and_create_nothing(shared_db, capsys, tmp_path):
    before = file_digest(shared_db)
    for argv in (["summary"], ["trials"], ["best"], ["history"], ["export"], ["check"],
                 ["watch", "--once"]):
        code, _, _ = run(capsys, argv[0], shared_db, *argv[1:])
        assert code == 0
    assert file_digest(shared_db) == before
    missing = tmp_path / "missing.db"
    code, _, err = run(capsys, "summary", str(missing))
    assert code == 2 and "does not exist" in err and not missing.exists()


@pytest.mark.parametrize("argv", [["trials"], ["best"], ["summary"], ["check"],
                                  ["export", "--format", "csv"], ["sql", "SELECT 1"]])
def test_a_tool_started_with_its_output_closed_says_so_in_one_line(shared_db, argv):
    # a job scheduler or a daemon may start a command with no standard output at all
    done = subprocess.run([sys.executable, "-m", "hpstore", argv[0], shared_db, *argv[1:]],
                          env=TOOL_ENV, capture_output=True, text=True, timeout=DEADLINE,
                          preexec_fn=lambda: os.close(1))
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("hpstore: error: standard output is closed")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize("argv", [["--help"], ["--version"], [], ["trials", "--help"],
                                  ["backup", "--help"], ["demo", "--help"]])
@pytest.mark.parametrize("output", ["closed", "full disk"])
def test_the_commands_own_help_and_version_fail_on_their_output_in_one_line(argv, output):
    # they printed a traceback (and a closed output exited 0 with nothing said); a
    # command's own --help, printed by argparse, which swallows the write's error, said
    # nothing and exited 0
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "hpstore", *argv], env=TOOL_ENV, stderr=subprocess.PIPE,
            text=True, timeout=DEADLINE,
            **({"preexec_fn": lambda: os.close(1)} if output == "closed" else
               {"stdout": full}))
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("hpstore: error: "), done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_a_tool_that_writes_only_files_runs_with_its_output_closed(shared_db, tmp_path):
    copy = tmp_path / "copy.db"
    done = subprocess.run([sys.executable, "-m", "hpstore", "backup", shared_db, str(copy)],
                          env=TOOL_ENV, capture_output=True, text=True, timeout=DEADLINE,
                          preexec_fn=lambda: os.close(1))
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT count(*) FROM trials").fetchone()[0] > 0


def test_several_projects_need_a_choice(tmp_path, capsys):
    path = str(tmp_path / "two.db")
    open_oracle(path, max_trials=2, project_name="first").close()
    open_oracle(path, max_trials=2, project_name="second").close()
    code, _, err = run(capsys, "trials", path)
    assert code == 2 and "first, second" in err and "--project" in err
    code, out, _ = run(capsys, "trials", path, "--project", "second")
    assert code == 0 and len(out.splitlines()) == 2  # the header and its rule: no trials


def test_tools_work_while_a_search_writes(tmp_path, capsys):
    path = str(tmp_path / "live.db")
    open_oracle(path, max_trials=100_000).close()
    ctx = mp.get_context("spawn")
    started, progress = ctx.Event(), ctx.Queue()
    writer = ctx.Process(target=write_forever, args=(path, "busy", started, progress),
                         daemon=True)
    writer.start()
    try:
        assert started.wait(DEADLINE)
        progress.get(timeout=DEADLINE)
        counts = []
        for _ in range(20):  # while the writer keeps committing
            code, out, _ = run(capsys, "sql", path, "SELECT count(*) AS n FROM trials",
                               "--format", "json")
            assert code == 0
            counts.append(json.loads(out)[0]["n"])
            code, _, err = run(capsys, "summary", path)
        assert code == 0, err
        assert counts == sorted(counts) and counts[-1] > counts[0]
        progress.get(timeout=DEADLINE)  # the writer was never blocked
    finally:
        writer.kill()
        writer.join(DEADLINE)


def test_python_helpers(shared_db):
    db = hpstore.open_database(shared_db)
    assert {"trial_overview", "trial_values", "metric_history", "status_log"} <= set(
        db.view_names())
    done = list(db["trial_overview"].rows_where("status = ?", ["COMPLETED"]))
    assert len(done) == 30
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        db.execute("DELETE FROM trials")
    pd = pytest.importorskip("pandas")
    frame = hpstore.trials_dataframe(shared_db)
    assert isinstance(frame, pd.DataFrame) and len(frame) == 32 and "x" in frame.columns


def test_trials_dataframe_names_its_own_argument_for_a_file_of_several_projects(tmp_path):
    pytest.importorskip("pandas")
    path = tmp_path / "two.db"
    for name in ("a", "b"):
        open_oracle(str(path), project_name=name).close()
    with pytest.raises(hpstore.ProjectChoiceError, match=r"project='a'") as raised:
        hpstore.trials_dataframe(path)
    assert "--project" not in str(raised.value)  # (a command-line option, not Python's)
    assert len(hpstore.trials_dataframe(path, project="b")) == 0


def stored(path, query):
    with sqlite3.connect(path) as conn:
        return conn.execute(query).fetchall()


def test_a_project_named_with_the_same_letters_written_otherwise_is_found(tmp_path, capsys):
    # "café" typed with one é was "No project 'café'; it holds: café" for a project
    # stored with an e and a combining accent (a name copied from a macOS file name)
    path = str(tmp_path / "accents.db")
    end_trials(open_oracle(path, project_name="cafe\u0301"), ["COMPLETED"])
    open_oracle(path, project_name="other").close()
    code, out, err = run(capsys, "trials", path, "--project", "caf\u00e9")
    assert code == 0 and len(out.splitlines()) == 3, err
    assert len(hpstore.trials_dataframe(path, project="caf\u00e9")) == 1
    code, _, err = run(capsys, "trials", path, "--project", "cafe")  # other letters: refused
    assert code == 2 and "No project 'cafe'" in err
    # so do the commands that write, and Oracle.attach (which they open the search with):
    # "has no project 'café'; it holds 'café', 'other'"
    first = hpstore.Oracle.attach(path, "caf\u00e9").get_best_trials(1)[0].trial_id
    assert main(["note", path, first, "seen", "--project", "caf\u00e9"]) == 0
    assert stored(path, "SELECT note FROM trials WHERE note IS NOT NULL") == [("seen",)]
    assert main(["copy", path, str(tmp_path / "copy.db"), "--project", "caf\u00e9"]) == 0
    assert hpstore.Oracle.attach(tmp_path / "copy.db").project_name == "cafe\u0301"
    capsys.readouterr()
    # and an oracle does not make a second project of the same look: a search split in two
    # between the scripts that spell it apart
    with pytest.raises(hpstore.ProjectMismatchError, match=r"give project_name='cafe\\u0301'"):
        open_oracle(path, project_name="caf\u00e9")
    assert stored(path, "SELECT name FROM projects") == [("cafe\u0301",), ("other",)]
    # nor does a copy into a file holding the other spelling: refused, or with --overwrite
    # the project replaced under the spelling the file holds ("remove one of them first",
    # it said, with no command that removes a project)
    nfc = str(tmp_path / "nfc.db")
    end_trials(open_oracle(nfc, project_name="caf\u00e9"), ["COMPLETED", "FAILED"])
    assert main(["copy", nfc, path]) == 2
    err = capsys.readouterr().err
    assert "the same letters with other code points" in err and "--overwrite" in err
    assert "remove" not in err
    assert stored(path, "SELECT name FROM projects") == [("cafe\u0301",), ("other",)]
    assert main(["copy", nfc, path, "--overwrite"]) == 0
    assert "copied project 'cafe\u0301': 2 trial(s)" in capsys.readouterr().err
    assert stored(path, "SELECT name FROM projects") == [("cafe\u0301",), ("other",)]
    assert hpstore.Oracle.attach(path, "cafe\u0301").get_state()["trials"][1]["status"] == (
        "FAILED")
    # a file holding both spellings (made before hpstore refused the second) would copy
    # them both onto that one project: refused
    with sqlite3.connect(nfc) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(projects)")
                   if r[1] not in ("project_id", "name")]
        conn.execute(f"INSERT INTO projects (name, {', '.join(columns)}) SELECT ?, "
                     f"{', '.join(columns)} FROM projects", ("cafe\u0301",))
    assert main(["copy", nfc, path, "--overwrite"]) == 2
    assert "would hold as one; nothing was copied" in capsys.readouterr().err
    # a project name missing from a file of many is listed as every command lists them
    for n in range(25):
        open_oracle(path, project_name=f"p{n}").close()
    assert main(["copy", path, str(tmp_path / "none.db"), "--project", "nope"]) == 2
    err = capsys.readouterr().err
    assert "has no project 'nope'" in err and "and 7 more" in err and "'p24'" not in err


def test_negative_numbers_in_csv_stay_numbers(shared_db, capsys):
    _, out, _ = run(capsys, "trials", shared_db, "--format", "csv")
    xs = [r["x"] for r in csv.DictReader(io.StringIO(out)) if r["x"].startswith("-")]
    assert xs and all(float(x) < 0 for x in xs)  # no quote in front


@pytest.mark.parametrize("direction", ["min", "max"])
def test_trials_sorted_best_follow_the_objectives_direction(tmp_path, capsys, direction):
    # --sort score listed a max objective's worst trial first, with no order that follows
    # the direction (the dashboard's "best" does)
    path = str(tmp_path / f"{direction}.db")
    oracle = open_oracle(path, objective=hpstore.Objective("acc", direction), max_trials=5)
    for acc in (0.2, 0.9, 0.5):
        trial = oracle.create_trial("w")
        oracle.update_trial(trial.trial_id, {"acc": acc})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    oracle.close()
    code, out, _ = run(capsys, "trials", path, "--sort", "best", "--format", "json")
    best_first = [0.9, 0.5, 0.2] if direction == "max" else [0.2, 0.5, 0.9]
    assert code == 0 and [r["score"] for r in json.loads(out)] == best_first
    code, out, _ = run(capsys, "trials", path, "--sort", "best", "--desc", "--format", "json")
    assert [r["score"] for r in json.loads(out)] == best_first[::-1]


# -- trial ids and numbers ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def extended_db(tmp_path_factory):
    """A search of 10 trials (ids 00..09) extended to 100: the next ids are 010, 011, which
    sort as text between 01 and 02."""
    path = str(tmp_path_factory.mktemp("extended") / "extended.db")
    for max_trials, count in ((10, 10), (100, 2)):
        oracle = open_oracle(path, max_trials=max_trials)
        for _ in range(count):
            trial = oracle.create_trial("w")
            oracle.update_trial(trial.trial_id, {"loss": 1.0})
            trial.status = "COMPLETED"
            oracle.end_trial(trial)
        oracle.close()
    return path


def test_tools_sort_by_number_not_by_trial_id_text(extended_db, capsys):
    ids = [f"{i:02d}" for i in range(10)] + ["010", "011"]
    assert sorted(ids) != ids  # the text order would mix them
    code, out, _ = run(capsys, "trials", extended_db, "--format", "json")
    assert code == 0 and [r["trial_id"] for r in json.loads(out)] == ids
    code, out, _ = run(capsys, "export", extended_db, "--format", "jsonl")
    assert code == 0 and [json.loads(line)["trial_id"] for line in out.splitlines()] == ids
    _, out, _ = run(capsys, "history", extended_db, "--format", "json")
    assert list(dict.fromkeys(r["trial_id"] for r in json.loads(out))) == ids


@pytest.mark.parametrize(("given", "found"), [("1", "01"), ("01", "01"), ("10", "010"),
                                              ("010", "010"), ("11", "011")])
def test_a_trial_number_is_taken_wherever_a_trial_id_is(extended_db, capsys, given, found):
    code, out, err = run(capsys, "show", extended_db, given)
    assert code == 0, err
    assert out.startswith(f"Trial {found}: COMPLETED")
    code, out, _ = run(capsys, "history", extended_db, "--trial", given, "--format", "json")
    assert {r["trial_id"] for r in json.loads(out)} == {found} and len(json.loads(out)) == 2


def test_an_exact_trial_id_comes_before_a_number(tmp_path, capsys):
    path = str(tmp_path / "ids.db")
    end_trials(open_oracle(path, max_trials=10), ["COMPLETED"] * 3).close()
    conn = sqlite3.connect(path)
    with conn:  # trial number 2 is given the id "1"; number 1 keeps "01"
        conn.execute("UPDATE trials SET trial_id = '1' WHERE number = 2")
    conn.close()
    code, out, _ = run(capsys, "show", path, "1")
    assert out.startswith("Trial 1: ")
    code, out, _ = run(capsys, "show", path, "01")
    assert out.startswith("Trial 01: ")
    code, _, err = run(capsys, "show", path, "7")
    assert code == 2 and "No trial '7'" in err


# -- smaller things -------------------------------------------------------------------------------

def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out == f"hpstore {hpstore.__version__}\n"


def test_a_mistyped_command_names_the_nearest_one(capsys):
    code, out, err = run(capsys, "sumary", "x.db")
    assert code == 2 and out == ""
    assert err.startswith("hpstore: unknown command 'sumary' (did you mean 'summary'?)\n")
    code, _, err = run(capsys, "enquee")
    assert code == 2 and "(did you mean 'enqueue'?)" in err
    code, _, err = run(capsys, "zzzz")  # nothing near: no guess
    assert code == 2 and err.startswith("hpstore: unknown command 'zzzz'\n")


def test_status_is_case_insensitive(shared_db, capsys):
    code, out, _ = run(capsys, "trials", shared_db, "--status", "failed", "--status",
                       "Invalid", "--format", "json")
    assert code == 0 and sorted(r["status"] for r in json.loads(out)) == ["FAILED", "INVALID"]


@pytest.mark.parametrize("argv", [["best", "-n", "-1"], ["best", "-n", "0"],
                                  ["trials", "--limit", "-1"], ["history", "--limit", "0"],
                                  ["best", "-n", "two"]])
def test_counts_below_one_are_refused(shared_db, capsys, argv):
    with pytest.raises(SystemExit) as stopped:
        main([argv[0], shared_db, *argv[1:]])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "must be at least 1" in err or "expected a whole number" in err


@pytest.mark.parametrize("interval", ["0", "-1", "nan", "1e-9"])
def test_a_watch_refreshed_without_a_pause_is_refused(shared_db, capsys, interval):
    # --interval 0 was taken: a processor kept busy reading the search, the view redrawn
    # without end; then -1 was told "0 or more", 0 "more than 0", and 1e-9 was taken
    with pytest.raises(SystemExit) as stopped:
        main(["watch", shared_db, "--interval", interval])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"--interval: must be at least 0.01 seconds, received {interval}" in err, err


def parser_of(tool: str):
    """The argparse parser a tool builds, caught as it parses."""
    import argparse

    class Caught(Exception):
        pass

    def catch(self, *args, **kwargs):
        raise Caught(self)

    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = catch
    try:
        load_tool(tool).main(["x"])
    except Caught as caught:
        return caught.args[0]
    finally:
        argparse.ArgumentParser.parse_args = original
    raise AssertionError(f"{tool} parsed no arguments")


@pytest.mark.parametrize("tool", list(available_tools()))
def test_every_option_of_every_command_has_help(tool):
    parser = parser_of(tool)
    assert parser.description
    missing = [a.option_strings or [a.dest] for a in parser._actions if not a.help]
    assert missing == []


def test_show_prints_no_empty_list_for_a_trial_without_message(shared_db, capsys):
    conn = sqlite3.connect(shared_db)
    plain = conn.execute("SELECT trial_id FROM trials WHERE status = 'COMPLETED' AND message "
                         "IS NULL LIMIT 1").fetchone()[0]
    code, out, _ = run(capsys, "show", shared_db, plain)
    assert code == 0 and "[]" not in out and "Message" not in out
    changes = out.split("Status changes:\n")[1].splitlines()[2:]
    assert len(changes) == 2 and all(line.split()[-1].isdigit() for line in changes)  # pid last


def test_show_gives_the_whole_traceback_once(shared_db, capsys):
    conn = sqlite3.connect(shared_db)
    failed = conn.execute("SELECT trial_id FROM trials WHERE status = 'FAILED'").fetchone()[0]
    _, out, _ = run(capsys, "show", shared_db, failed)
    assert "Message:\n  Traceback (most recent call last):\n  ValueError: nope\n" in out
    assert out.split("Status changes:")[1].count("ValueError: nope") == 1


def test_summary_shows_the_space_one_readable_line_each(tmp_path, capsys):
    path = str(tmp_path / "space.db")
    hp = hpstore.HyperParameters()
    hp.Choice("model", ["a", "b", "c"])
    with hp.conditional_scope("model", ["b", "c"]):
        hp.Float("lr", 1e-5, 0.1, sampling="log")
        hp.Int("units", 8, 64, step=8, default=16)
    hp.Boolean("flag")
    hp.Fixed("seed", 3)
    open_oracle(path, max_trials=2, hyperparameters=hp).close()
    code, out, _ = run(capsys, "summary", path)
    assert code == 0
    assert out.split("Search space:\n")[1] == (
        "  model  Choice   a, b, c\n"
        "  lr     Float    1e-05 .. 0.1 (log)          when model in [b, c]\n"
        "  units  Int      8 .. 64 step 8, default 16  when model in [b, c]\n"
        "  flag   Boolean  True, False; default False\n"
        "  seed   Fixed    3\n")
    assert "{" not in out  # no raw configs or dicts


def test_summary_and_show_print_values_that_read_back_as_stored(tmp_path, capsys):
    # 6 significant digits showed the range 1 .. 1 and three different values as 1
    path = str(tmp_path / "narrow.db")
    hp = hpstore.HyperParameters()
    hp.Float("x", 1.0, 1.0 + 1e-15)
    hp.Float("lr", 1e-4, 1e-3)
    oracle = open_oracle(path, max_trials=1, hyperparameters=hp)
    trial = oracle.create_trial("w")
    oracle.update_trial(trial.trial_id, {"loss": 1 / 3})
    oracle.end_trial(trial)
    values = trial.hyperparameters.values
    oracle.close()
    code, out, _ = run(capsys, "summary", path)
    assert code == 0 and "x   Float  1 .. 1.000000000000001\n" in out
    assert "lr  Float  0.0001 .. 0.001\n" in out  # (short where short reads back)
    code, out, _ = run(capsys, "show", path, trial.trial_id)
    assert code == 0 and f"score {1 / 3!r}," in out
    assert f"  x: {values['x']!r}\n" in out and f"  lr: {values['lr']!r}\n" in out
    assert float(out.split("  x: ")[1].split()[0]) == values["x"]


def test_a_tool_called_in_process_closes_the_search_it_opened(shared_db, capsys, monkeypatch):
    # (from a notebook, say): the read-only connections stayed open until collected, which
    # Python 3.13 reports as a ResourceWarning for each
    from hpstore import tooling

    opened = []
    real = tooling.open_store

    def kept(*args, **kwargs):
        opened.append(real(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(tooling, "open_store", kept)
    commands = [["summary"], ["trials"], ["best"], ["show", "0"], ["history"], ["check"],
                ["sql", "SELECT 1"]]
    for command in commands:
        code, _, err = run(capsys, command[0], shared_db, *command[1:])
        assert code in (0, 1), err  # (check: 1 when it finds something)
    assert len(opened) == len(commands)
    for store in opened:
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            store.db.connect().execute("SELECT 1")


def test_a_tool_called_in_process_closes_no_search_it_did_not_open(shared_db, capsys):
    # (a dashboard serving from a thread of the notebook, say): every store opened since
    # the last command was closed by the next one
    from hpstore import tooling

    outside = tooling.open_search(shared_db)
    try:
        assert run(capsys, "summary", shared_db)[0] == 0
        assert outside.db.connect().execute("SELECT count(*) FROM trials").fetchone()[0] > 0
    finally:
        outside.close()


def test_show_sums_up_a_trial_of_many_steps_and_prints_every_one_when_asked(tmp_path,
                                                                             capsys):
    # a trial of 500,000 metric values printed a table of every step (minutes, and a
    # screen no one reads); past 1000 means per step each metric gets one line
    path = str(tmp_path / "long.db")
    oracle = open_oracle(path, max_trials=2)
    trial = oracle.create_trial("w")
    oracle.project.record_metrics(trial.trial_id, [
        (m, "min", step, float(step) + k) for step in range(700)
        for k, m in enumerate(["loss", "val_loss"])])
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    oracle.close()
    code, out, _ = run(capsys, "show", path, trial.trial_id)
    assert code == 0
    assert "1400 means per step in all" in out and "--all-steps" in out
    lines = out.splitlines()
    loss = next(line for line in lines if line.startswith("1    loss "))
    assert loss.split() == ["1", "loss", "700", "0", "699", "0", "0", "699", "699", "699",
                            "700"]
    assert len(lines) < 30
    code, out, _ = run(capsys, "show", path, trial.trial_id, "--all-steps")
    assert code == 0 and "Metrics (mean per step):" in out
    assert sum(line.startswith("1    ") for line in out.splitlines()) == 1400


def test_a_choice_of_texts_that_read_as_numbers_is_shown_quoted(tmp_path, capsys):
    # summary showed Choice "1", "2" as the numbers 1, 2, and "when s in [2]"
    path = str(tmp_path / "texts.db")
    hp = hpstore.HyperParameters()
    hp.Choice("s", ["1", "2", "None", "plain"])
    with hp.conditional_scope("s", ["2"]):
        hp.Choice("n", [1, 2])
    hpstore.RandomSearchOracle("loss", max_trials=2, hyperparameters=hp,
                               database=path).close()
    code, out, _ = run(capsys, "summary", path)
    assert code == 0
    assert "'1', '2', 'None', plain" in out and "when s in ['2']" in out, out
    assert "1, 2" in out  # (n's numbers, bare)
