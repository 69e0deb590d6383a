"""Inputs a person types or a terminal imposes, taken by every tool without a traceback:
numbers beyond 64 bits, a terminal that cannot show a name, columns with one name, files
to enqueue with a repeated column, and retired trials left out of the ranking."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import hpstore

ROOT = Path(__file__).resolve().parent.parent
HUGE = str(2**64)


def hpstore_command(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hpstore", *args], capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


@pytest.fixture(scope="module")
def search(tmp_path_factory) -> str:
    """Five completed trials of a space with names beyond ASCII."""
    path = str(tmp_path_factory.mktemp("inputs") / "search.db")
    hp = hpstore.HyperParameters()
    hp.Float("størrelse", -10, 10)
    hp.Choice("kind", ["å", "ø"])
    oracle = hpstore.RandomSearchOracle("loss", max_trials=5, hyperparameters=hp, seed=3,
                                        database=path)
    while (trial := oracle.create_trial("w")).status == "RUNNING":
        oracle.update_trial(trial.trial_id, {"loss": trial.hyperparameters["størrelse"] ** 2})
        oracle.end_trial(trial)
    oracle.close()
    return path


@pytest.mark.parametrize("args", [
    ["show", "{db}", HUGE], ["history", "{db}", "--trial", HUGE], ["trials", "{db}", "--limit",
    HUGE], ["best", "{db}", "-n", HUGE], ["watch", "{db}", "--once", "--interval", "1e300"],
    ["retire", "{db}", HUGE], ["note", "{db}", HUGE, "text"]])
def test_a_number_too_large_for_the_file_is_one_error_line(search, args):
    done = hpstore_command(*[a.replace("{db}", search) for a in args])
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    # one error line (after argparse's usage, for an option's value)
    assert "error:" in done.stderr.splitlines()[-1], done.stderr


def test_a_terminal_that_cannot_show_a_name_gets_it_escaped(search, tmp_path):
    for args in (["summary", search], ["trials", search], ["best", search]):
        done = hpstore_command(*args, PYTHONIOENCODING="ascii")
        assert done.returncode == 0, done.stderr
        assert "st\\xf8rrelse" in done.stdout, done.stdout  # escaped, not dropped
    report = tmp_path / "r.html"
    done = hpstore_command("report", search, "-o", str(report), PYTHONIOENCODING="ascii")
    assert done.returncode == 0 and report.exists(), done.stderr  # written, and said so


def test_columns_with_one_name_are_all_kept_in_json(search):
    done = hpstore_command("sql", search, "SELECT 1 AS a, 2 AS a, 3 AS a", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"a": 1, "a:2": 2, "a:3": 3}]


def test_best_leaves_out_retired_trials_as_get_best_trials_does(search, tmp_path):
    path = str(tmp_path / "copy.db")
    hpstore_command("backup", search, path)
    oracle = hpstore.RandomSearchOracle("loss", database=path)
    ranked = [t.trial_id for t in oracle.get_best_trials(5)]
    oracle.close()
    assert hpstore_command("retire", path, ranked[0]).returncode == 0
    done = hpstore_command("best", path, "-n", "5", "--format", "json")
    assert [row["trial_id"] for row in json.loads(done.stdout)] == ranked[1:]


@pytest.mark.parametrize("content, message", [
    (b"x,kind,x\n1,\xc3\xa5,2\n", "column 'x' appears more than once"),
    (b"x,kind\n", "has a header but no configuration"),
    (b"\xff\xfex,kind\n1,a\n", "is not UTF-8 text"),
])
def test_a_file_to_enqueue_that_is_not_a_table_of_configurations_is_refused(
        search, tmp_path, content, message):
    path = str(tmp_path / "copy.db")
    hpstore_command("backup", search, path)
    given = tmp_path / "configs.csv"
    given.write_bytes(content)
    done = hpstore_command("enqueue", path, "--file", str(given))
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert str(given) in done.stderr
    oracle = hpstore.RandomSearchOracle("loss", database=path)
    assert oracle.enqueued() == [] and len(oracle.trials) == 5  # nothing enqueued
    oracle.close()


@pytest.mark.parametrize("change, where", [
    ("UPDATE trials SET hp_values = '[1,2]' WHERE number = 2", "trials.hp_values"),
    ("UPDATE trials SET score = 'NaN' WHERE number = 1", "trials.score"),
    ("UPDATE observations SET value = 'abc' WHERE id = 1", "observations.value"),
])
def test_a_row_rewritten_by_another_program_after_a_tool_looked_is_found(
        search, tmp_path, change, where):
    import sqlite3

    path = str(tmp_path / "copy.db")
    hpstore_command("backup", search, path)
    assert hpstore_command("summary", path).returncode == 0  # looked at: rows marked
    conn = sqlite3.connect(path)
    conn.execute(change)
    conn.commit()
    conn.close()
    done = hpstore_command("check", path)
    assert done.returncode == 1 and f"contents: The search's {where} holds" in done.stdout, (
        done.stdout)
    for tool in ("summary", "best", "trials"):  # refused naming it where it is read, or fine
        done = hpstore_command(tool, path)
        assert "Traceback" not in done.stderr and "format code" not in done.stderr, done.stderr
        assert done.returncode == 0 or where in done.stderr, done.stderr


def test_the_pace_of_a_stalled_search_falls_as_time_passes():
    from hpstore.queries import pace

    ends = [100.0 + 10 * i for i in range(7)]  # a trial every 10 s, the last at 160
    assert pace(ends, now=165.0) == pytest.approx(6.0)  # 6 per minute while it runs
    # no end for five minutes: its workers are gone; the pace says so
    assert pace(ends, now=460.0) == pytest.approx(6 / 360 * 60)
    assert pace(ends, now=460.0) < pace(ends, now=300.0) < 6.0


@pytest.mark.parametrize("args", [["retire", "{db}", "00"], ["note", "{db}", "00", "x"],
                                  ["enqueue", "{db}", "--values", '{"x": 1}'],
                                  ["show", "{db}", "00"], ["trials", "{db}"]])
def test_every_command_on_a_file_of_several_projects_asks_for_its_option_alike(tmp_path, args):
    path = str(tmp_path / "two.db")
    hp = hpstore.HyperParameters()
    hp.Float("x", -1, 1)
    for name in ("first", "second"):
        hpstore.RandomSearchOracle("loss", max_trials=3, hyperparameters=hp, database=path,
                                   project_name=name).close()
    done = hpstore_command(*[a.replace("{db}", path) for a in args])
    assert done.returncode == 2, done.stderr
    # the commands that change a search and those that read it say it in the same words
    assert "holds several projects (first, second): name the one to open with --project " \
        "NAME." in done.stderr, done.stderr
    assert "project_name=" not in done.stderr


def test_a_file_of_many_projects_lists_twenty_in_an_error_and_counts_the_rest(tmp_path):
    # a file of 200 projects named all 200 on one line of the error
    path = str(tmp_path / "many.db")
    names = [f"p{i:03d}" for i in range(45)]
    for name in names:
        hpstore.RandomSearchOracle("loss", max_trials=1, database=path,
                                   project_name=name).close()
    for args in (["trials", path], ["trials", path, "--project", "nope"]):
        done = hpstore_command(*args)
        assert done.returncode == 2, done.stderr
        assert ", ".join(names[:20]) + " and 25 more (`hpstore summary` lists them all)" \
            in done.stderr, done.stderr
        assert names[20] not in done.stderr and len(done.stderr.splitlines()) == 1
    listing = hpstore_command("summary", path)
    assert listing.returncode == 0 and all(n in listing.stdout for n in names)


def test_summary_of_a_project_that_is_not_there_is_the_error_alone(search):
    done = hpstore_command("summary", search, "--project", "nope")
    assert done.returncode == 2 and "No project 'nope'" in done.stderr, done.stderr
    assert done.stdout == ""  # not the projects line first, as if it had worked


def test_restoring_a_trial_never_retired_says_so(search, tmp_path):
    path = str(tmp_path / "copy.db")
    hpstore_command("backup", search, path)
    done = hpstore_command("restore", path, "0")  # (trial ids of a 5-trial search: 0 .. 4)
    assert done.returncode == 0 and done.stderr == "trial 0 is not retired; nothing changed\n"


@pytest.mark.parametrize("query", ["-- only a comment", "/* nothing */", " ; "])
def test_a_query_that_holds_no_statement_is_one_error_line(search, query):
    done = hpstore_command("sql", search, query)
    assert done.returncode == 2 and "error:" in done.stderr.splitlines()[-1], done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr


@pytest.mark.parametrize("query", ["BEGIN", "SAVEPOINT a", "/* why */ BEGIN DEFERRED"])
def test_a_statement_that_returns_no_rows_is_named_not_taken_for_an_empty_one(search, query):
    done = hpstore_command("sql", search, query)
    assert done.returncode == 2 and "returns no rows" in done.stderr, done.stderr
    assert query.split()[-1] in done.stderr and "holds no statement" not in done.stderr


def test_the_csv_of_export_enqueues_back_as_the_values_it_shows(tmp_path):
    # a spreadsheet's True / False, and string choices that read as numbers
    path = str(tmp_path / "typed.db")
    hp = hpstore.HyperParameters()
    hp.Boolean("b")
    hp.Choice("c", ["1", "2", "x"])
    hp.Choice("n", [1, 2])
    oracle = hpstore.RandomSearchOracle("loss", max_trials=20, hyperparameters=hp, seed=4,
                                        database=path)
    ran = []
    for _ in range(6):
        trial = oracle.create_trial("w")
        ran.append(dict(trial.hyperparameters.values))
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        oracle.end_trial(trial)
    oracle.close()
    assert {type(v["c"]) for v in ran} == {str} and any(v["c"] != "x" for v in ran)
    exported = hpstore_command("export", path, "--format", "csv")
    lines = exported.stdout.splitlines()
    header = lines[0].split(",")
    columns = [header.index(name) for name in ("b", "c", "n")]
    given = tmp_path / "again.csv"
    given.write_text("\n".join(",".join(line.split(",")[i] for i in columns)
                               for line in lines), encoding="utf-8")
    assert "True" in given.read_text() or "False" in given.read_text()
    done = hpstore_command("enqueue", path, "--file", str(given), "--again")
    assert done.returncode == 0, done.stderr
    oracle = hpstore.Oracle.attach(path)
    assert [t.values for t in oracle.enqueued()] == ran
    oracle.close()


@pytest.mark.parametrize("kind", ["csv", "json", "jsonl"])
def test_what_export_writes_enqueues_back_whole(tmp_path, kind):
    # the trial columns, a hyperparameter named like one (written hp:status), one inactive
    # in a trial (an empty cell, or null), and a choice a spreadsheet would run as a
    # formula (written '=x): every exported trial is one configuration again
    hp = hpstore.HyperParameters()
    hp.Choice("status", ["=x", "+y", "z"])
    with hp.conditional_scope("status", ["z"]):
        hp.Int("depth", 1, 5)
    hp.Float("lr", 0.001, 0.1)
    hp.Choice("act", ["relu", None], default="relu")  # None, written null or empty
    hp.Int("+n", 1, 3)  # a title a spreadsheet would run: written '+n
    hp.Choice("pad", ["", " a", "b"])  # "" and " a": an empty cell and one with a space

    def search(path, trials):
        oracle = hpstore.RandomSearchOracle("loss", max_trials=20, hyperparameters=hp, seed=3,
                                            database=str(path))
        ran = []
        for _ in range(trials):
            trial = oracle.create_trial("w")
            ran.append(dict(trial.hyperparameters.values))
            oracle.update_trial(trial.trial_id, {"loss": 1.0})
            oracle.end_trial(trial)
        oracle.close()
        return ran

    ran = search(tmp_path / "from.db", 12)
    assert {v["status"] for v in ran} == {"=x", "+y", "z"}
    assert {v["act"] for v in ran} == {"relu", None}
    assert {v["pad"] for v in ran} == {"", " a", "b"}
    assert any("depth" not in v for v in ran) and any("depth" in v for v in ran)
    written = tmp_path / f"trials.{kind}"
    done = hpstore_command("export", str(tmp_path / "from.db"), "--format", kind, "-o",
                           str(written))
    assert done.returncode == 0, done.stderr
    assert "hp:status" in written.read_text(encoding="utf-8")
    search(tmp_path / "to.db", 0)
    done = hpstore_command("enqueue", str(tmp_path / "to.db"), "--file", str(written))
    assert done.returncode == 0, done.stderr
    oracle = hpstore.Oracle.attach(str(tmp_path / "to.db"))
    assert [t.values for t in oracle.enqueued()] == ran
    oracle.close()


@pytest.mark.parametrize("kind", ["csv", "json", "jsonl"])
def test_values_a_spreadsheet_quote_or_a_line_end_would_change_enqueue_back_as_they_are(
        tmp_path, kind):
    # '=x and =x were both exported '=x and read back =x; a CR in a cell came back a
    # newline; names =cmd and '=cmd had one column title, and enqueue refused the file;
    # U+2028 in a JSON line split it in two
    hp = hpstore.HyperParameters()
    odd = ["=x", "'=x", "''=x", "'plain", "a\rb", "\rcr", "x\u2028y", "x\x85y", "z"]
    hp.Choice("c", odd)
    hp.Int("=cmd", 0, 3)  # titles '=cmd and ''=cmd
    hp.Int("'=cmd", 0, 9)

    def search(path):
        return hpstore.RandomSearchOracle("loss", max_trials=20, hyperparameters=hp, seed=3,
                                          database=str(path))

    source = search(tmp_path / "from.db")
    for n, value in enumerate(odd):
        source.enqueue_trial({"c": value, "=cmd": n % 4, "'=cmd": n + 1})
    given = [t.values for t in source.enqueued()]
    source.close()
    search(tmp_path / "to.db").close()
    written = tmp_path / f"trials.{kind}"
    done = hpstore_command("export", str(tmp_path / "from.db"), "--format", kind, "-o",
                           str(written))
    assert done.returncode == 0, done.stderr
    done = hpstore_command("enqueue", str(tmp_path / "to.db"), "--file", str(written))
    assert done.returncode == 0, done.stderr
    oracle = hpstore.Oracle.attach(str(tmp_path / "to.db"))
    assert [t.values for t in oracle.enqueued()] == given
    oracle.close()


@pytest.mark.parametrize("args", [["show", "{db}", "{x}"], ["note", "{db}", "0", "n{x}"],
                                  ["sql", "{db}", "SELECT '{x}'"],
                                  ["history", "{db}", "--worker", "{x}"]])
def test_an_argument_that_is_not_utf8_is_named(search, args):
    # bytes that are not UTF-8 (a terminal in Latin-1) said "'utf-8' codec can't encode
    # characters in position 0-1: surrogates not allowed", naming no argument
    bad = os.fsdecode(b"\xff\xfe")
    done = hpstore_command(*[a.replace("{db}", search).replace("{x}", bad) for a in args])
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("hpstore: error: The argument ") and done.stderr.count(
        "\n") == 1, done.stderr
    assert "\\udcff\\udcfe" in done.stderr and "not UTF-8" in done.stderr, done.stderr


def test_a_file_another_program_holds_locked_is_said_so_not_called_unreadable(
        search, tmp_path, monkeypatch, capsys):
    # a program of its own took an exclusive lock: every tool waited 30 s in silence and
    # said "cannot be read: database is locked", as of a file that is no search
    import shutil

    from hpstore.cli import main
    from hpstore.store.sqlite import checks, readonly

    def run(capsys, *argv):
        code = main(list(argv))
        return (code, *capsys.readouterr())

    search = shutil.copy(search, tmp_path / "locked.db")

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys\n"
         "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
         "c.execute('PRAGMA locking_mode=EXCLUSIVE'); c.execute('BEGIN EXCLUSIVE')\n"
         "c.execute('UPDATE trials SET note = note')\n"
         "print('held', flush=True); sys.stdin.read()", str(search)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        monkeypatch.setattr(checks, "READ_LOCK_WAIT", 1)
        monkeypatch.setattr(readonly, "READ_LOCK_WAIT", 1)
        for command in ("summary", "check"):
            code, _, err = run(capsys, command, str(search))
            assert code == 2 and "another program held it locked" in err, err
            assert "waited (1 s;" in err and "not damaged" in err
            assert "database is locked" not in err
        # a worker opening it was told "it is damaged or not a database"
        with pytest.raises(hpstore.LockTimeoutError, match="another program held it"):
            hpstore.Oracle.attach(search)
    finally:
        holder.kill()
        holder.wait()
    assert run(capsys, "check", str(search))[0] == 0  # let go: read as ever
