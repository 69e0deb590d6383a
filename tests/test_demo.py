"""`hpstore demo` with bad arguments or an unusable file: one error line, exit code 2, and
nothing written."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hpstore.demo import main


def bad_arguments(tmp_path):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    not_sqlite = tmp_path / "notes.db"
    not_sqlite.write_text("my notes, not a search\n")
    return {
        "a folder": (["--database", str(folder)], "is a folder"),
        "a missing folder": (["--database", str(tmp_path / "nowhere" / "d.db")],
                             "does not exist"),
        "not SQLite": (["--database", str(not_sqlite)], "notes.db"),
    }


@pytest.mark.parametrize("argv, words", [
    (["--trials", "0"], "argument --trials: must be at least 1, received 0"),
    (["--trials", "-3"], "argument --trials: must be at least 1, received -3"),
    (["--workers", "0"], "argument --workers: must be at least 1, received 0"),
    (["--workers", "abc"], "argument --workers: expected a whole number, received 'abc'")])
def test_an_argument_of_the_wrong_kind_is_said_as_every_command_says_it(tmp_path, capsys,
                                                                        argv, words):
    # the demo said "hpstore: error: --workers must be at least 1" where every other
    # command prints its usage and "hpstore NAME: error: argument ...", naming the option
    with pytest.raises(SystemExit) as stopped:
        main(["--database", str(tmp_path / "d.db"), *argv])
    assert stopped.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("usage: hpstore demo")
    assert err.splitlines()[-1] == f"hpstore demo: error: {words}", err
    assert os.listdir(tmp_path) == []  # nothing was made


@pytest.mark.parametrize("case", ["a folder", "a missing folder", "not SQLite"])
def test_bad_arguments_are_one_error_line_and_exit_2(tmp_path, capsys, case):
    argv, words = bad_arguments(tmp_path)[case]
    before = sorted(os.listdir(tmp_path))
    contents = (tmp_path / "notes.db").read_bytes()
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("hpstore: error: ") and words in err, err
    assert sorted(os.listdir(tmp_path)) == before  # no search file was made
    assert (tmp_path / "notes.db").read_bytes() == contents


def test_the_command_exits_2_with_one_line(tmp_path):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    proc = subprocess.run([sys.executable, "-m", "hpstore", "demo", "--database", str(folder)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [f"hpstore: error: {folder} is a folder, not a search "
                                        "file."]


def test_a_path_the_output_cannot_show_is_escaped_and_the_demo_runs(tmp_path):
    # PYTHONIOENCODING=ascii (or LANG=C): "hpstore: error: 'ascii' codec can't encode",
    # and no trial run, where every tool writes such a character as its escape
    path = tmp_path / "d\u00efr" / "s\u00f8g.db"
    path.parent.mkdir()
    proc = subprocess.run([sys.executable, "-m", "hpstore", "demo", "--database", str(path),
                           "--trials", "2", "--workers", "1"], capture_output=True,
                          timeout=300, env={**os.environ, "PYTHONIOENCODING": "ascii",
                                            "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 0, proc.stderr
    assert b"d\\xefr/s\\xf8g.db" in proc.stdout and b"COMPLETED" in proc.stdout


def test_a_postgresql_url_is_refused_in_words_that_say_what_to_do(tmp_path):
    # it was taken for a folder: "The folder .../postgresql:/u@h does not exist"
    proc = subprocess.run([sys.executable, "-m", "hpstore", "demo", "--database",
                           "postgresql://u:secret@db.example/x"], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 2 and "is a PostgreSQL URL" in proc.stderr
    assert "hpstore copy hpstore-demo.db postgresql://u@db.example/x" in proc.stderr
    assert "secret" not in proc.stderr and list(tmp_path.iterdir()) == []


def test_the_command_module_runs_as_a_script():
    # `python -m hpstore.cli` ran main() before the module had defined what it calls
    proc = subprocess.run([sys.executable, "-m", "hpstore.cli", "--help"], capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 0 and proc.stdout.startswith("usage: hpstore COMMAND")


def _demo(path, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "hpstore", "demo", "--database", str(path), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def _until_a_trial_ends(proc) -> None:
    for line in proc.stdout:
        if " trial " in line and " COMPLETED " in line:
            return
    raise AssertionError(f"no trial ended: {proc.stderr.read()}")


def test_two_demos_on_one_file_share_the_search(tmp_path):
    # both ran workers named demo-1 and demo-2: the second was refused ("Tuner id 'demo-1'
    # is running trial ... in another live process") with no option to name its own
    import signal
    import sqlite3

    path = tmp_path / "d.db"
    first = _demo(path, "--trials", "100000", "--workers", "1")
    second = None
    try:
        _until_a_trial_ends(first)
        second = _demo(path, "--trials", "100000", "--workers", "1")
        _until_a_trial_ends(second)
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.send_signal(signal.SIGINT)
                proc.communicate(timeout=120)
    assert first.returncode == second.returncode == 130
    with sqlite3.connect(path) as conn:
        tuners = {t for (t,) in conn.execute(
            "SELECT DISTINCT tuner_id FROM trials WHERE status = 'COMPLETED'")}
    assert tuners == {f"demo-{first.pid}", f"demo-{second.pid}"}


def test_the_demo_piped_into_head_before_its_search_starts_stops_quietly(tmp_path):
    proc = _demo(tmp_path / "d.db", "--trials", "100000", "--workers", "1")
    assert proc.stdout.readline().startswith("hpstore demo: a random search")
    proc.stdout.close()  # as head does once it has its lines
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0 and err == ""


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_demo_piped_into_head_stops_once_head_has_its_lines(tmp_path, workers):
    # the display swallowed the closed pipe and the search ran on to its last trial
    import sqlite3

    path = tmp_path / "d.db"
    proc = _demo(path, "--trials", "100000", "--workers", workers)
    _until_a_trial_ends(proc)
    proc.stdout.close()  # head has its lines
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0 and err == "", err
    with sqlite3.connect(path) as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM trials GROUP BY status"))
    assert "RUNNING" not in statuses and statuses["COMPLETED"] < 100000  # handed back


def test_a_demo_run_again_keeps_its_max_trials_and_prints_commands_that_run(tmp_path,
                                                                           capsys):
    # run again without --trials it cut the search to 40; the sqlite3 lines it printed
    # named the file without its folder, and counted other projects and retired trials
    import shlex
    import sqlite3

    import hpstore
    from hpstore.cli import main as cli

    path = tmp_path / "a folder" / "d.db"
    path.parent.mkdir()
    other = hpstore.RandomSearchOracle("loss", max_trials=1, database=str(path),
                                       project_name="other")
    trial = other.create_trial("w")
    other.update_trial(trial.trial_id, {"loss": -5.0})
    other.end_trial(trial)
    other.close()
    assert main(["--database", str(path), "--trials", "5", "--workers", "1",
                 "--verbose", "0"]) == 0
    capsys.readouterr()
    with sqlite3.connect(path) as conn:
        best = conn.execute("SELECT trial_id FROM trial_overview WHERE project = 'demo' "
                            "ORDER BY score LIMIT 1").fetchone()[0]
    assert cli(["retire", str(path), "--project", "demo", best]) == 0
    capsys.readouterr()
    assert main(["--database", str(path), "--workers", "1", "--verbose", "0"]) == 0
    out = capsys.readouterr().out
    assert "a random search of 5 trials" in out, out
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT max_trials FROM projects WHERE name = 'demo'"
                            ).fetchone() == (5,)
    commands = [line for line in out.splitlines() if line.startswith("sqlite3 ")]
    assert len(commands) == 3
    for line in commands:
        words = shlex.split(line)
        assert words[1] == str(path)
        with sqlite3.connect(words[1]) as conn:
            rows = conn.execute(words[2]).fetchall()
        assert rows and all(row[0] != "w" for row in rows)  # the other project's worker
    best_rows = sqlite3.connect(path).execute(shlex.split(commands[0])[2]).fetchall()
    assert best not in [row[0] for row in best_rows] and len(best_rows) == 4


def test_a_database_under_the_home_folder_written_with_a_tilde(tmp_path, monkeypatch, capsys):
    # `hpstore demo --database=~/d.db` (no shell expands that `~`) looked for a folder
    # named `~` in the current one, where the library and the other tools read the home
    # folder's file
    home = tmp_path / "home"
    home.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(elsewhere)
    assert main(["--database=~/d.db", "--trials", "2", "--workers", "1", "--verbose", "0"]) == 0
    out = capsys.readouterr().out
    assert f"into {home / 'd.db'}" in out, out
    assert (home / "d.db").is_file() and os.listdir(elsewhere) == []


def test_a_demo_run_again_with_fewer_trials_than_it_ran_says_so_in_its_own_words(
        tmp_path, capsys):
    path = str(tmp_path / "d.db")
    assert main(["--database", path, "--trials", "3", "--workers", "1", "--verbose", "0"]) == 0
    capsys.readouterr()
    assert main(["--database", path, "--trials", "2", "--workers", "1", "--verbose", "0"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("hpstore demo: max_trials=2 is below the 3 trials the project "
                          "'demo'"), err
    assert "UserWarning" not in err, err
