"""The stress tool in small: real worker processes SIGKILLed at every point of their work,
then every invariant of the file checked; and the checker shown to catch each violation."""

from __future__ import annotations

import argparse
import shutil
import signal
import sqlite3
from pathlib import Path

import pytest
from _ctrl_c import stop_a_run_with_ctrl_c

from hpstore.cli import load_tool

stress = load_tool("stress")


def options(tmp_path: Path, oracle: str, **changes: object) -> argparse.Namespace:
    opts = stress.parser().parse_args(["--oracle", oracle, "--processes", "3", "--trials",
                                       "40", "--kill-every", "0.1", "--seed", "7",
                                       "--step-time", "0.01", "--keep", str(tmp_path)])
    for name, value in changes.items():
        setattr(opts, name, value)
    return opts


@pytest.mark.parametrize("early_stopping", [False, True], ids=["plain", "early-stopping"])
@pytest.mark.parametrize("oracle", stress.ORACLES)
def test_every_invariant_holds_under_kill_9(tmp_path, oracle, early_stopping):
    opts = options(tmp_path, oracle, early_stopping=early_stopping)
    kills = stopped = 0
    stops_expected = early_stopping and oracle != "hyperband"  # its first rounds: one step
    # A round's kills (and a rule's stops) depend on how fast its workers go: rounds (each
    # a new file) until the chaos loop has really killed workers twice and, with a rule,
    # the rule has stopped a trial, every round checked whole.
    for number in range(4):
        result = stress.run_round(opts, oracle, tmp_path, number)
        assert result["violations"] == []
        assert result["trials"] == stress.expected_trials(oracle, 40)
        assert result["completed_by_workers"] > 0
        kills += sum(result["kills"].values())
        conn = sqlite3.connect(result["file"])
        stopped += conn.execute("SELECT count(*) FROM status_log WHERE to_status = 'STOPPED' "
                                "AND message LIKE 'Stopped early%'").fetchone()[0]
        conn.close()
        if kills >= 2 and (stopped > 0 or not stops_expected):
            break
    assert kills >= 2  # the chaos loop really killed workers
    if stops_expected:
        assert stopped > 0  # the rule really stopped trials while workers were killed


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished stress round: its file and what the chaos loop knew."""
    folder = tmp_path_factory.mktemp("finished")
    opts = options(folder, "random", trials=30)
    for number in range(10):  # until a kill lands on a worker holding a trial
        rnd = stress.Round(opts, "random", folder, number)
        rnd.run()
        assert rnd.errors == []
        if stress.interruptions(rnd.path):
            return rnd
    pytest.fail("ten rounds without a single interrupted trial")


@pytest.fixture
def copy(finished, tmp_path):
    """A copy of the finished file to damage, with what it must satisfy."""
    target = tmp_path / "copy.db"
    src = sqlite3.connect(finished.path)
    dst = sqlite3.connect(target)
    src.backup(dst)
    src.close()
    conn = dst
    reported = finished.reported()
    expected = stress.expected_trials("random", 30)
    assert stress.check(target, expected, reported, finished.killed) == []
    return target, conn, expected, reported, finished.killed


def test_checker_sees_a_changed_score(copy):
    path, conn, expected, reported, killed = copy
    trial_id = next(t for t, status, _ in reported if status == "COMPLETED")
    conn.execute("UPDATE trials SET score = score + 1 WHERE trial_id = ?", (trial_id,))
    conn.commit()
    found = stress.check(path, expected, reported, killed)
    assert any(f"trial {trial_id} scored" in v for v in found)


def test_checker_sees_a_lost_completion(copy):
    path, conn, expected, reported, killed = copy
    trial_id = next(t for t, status, _ in reported if status == "COMPLETED")
    conn.execute("UPDATE trials SET status = 'RUNNING' WHERE trial_id = ?", (trial_id,))
    conn.commit()
    found = stress.check(path, expected, reported, killed)
    assert any("was COMPLETED by a worker" in v for v in found)
    assert any("not finished" in v for v in found)


def test_checker_sees_values_run_twice_and_a_missing_trial(copy):
    path, conn, expected, reported, killed = copy
    first = conn.execute("SELECT values_key FROM trials WHERE number = 0").fetchone()[0]
    conn.execute("UPDATE trials SET values_key = ? WHERE number = 1", (first,))
    conn.execute("DELETE FROM trials WHERE number = (SELECT max(number) FROM trials)")
    conn.commit()
    found = stress.check(path, expected, reported, killed)
    assert any("run twice" in v for v in found)
    assert any(f"expected {expected}" in v for v in found)


def test_checker_sees_interruptions_miscounted_or_taken_from_the_living(copy):
    path, conn, expected, reported, killed = copy
    cut = conn.execute("SELECT trial_id FROM trials WHERE interruptions > 0").fetchone()
    assert cut is not None, "the round should have interrupted at least one trial"
    # a worker that was not killed must never lose its trial
    found = stress.check(path, expected, reported, set())
    assert any("taken from live worker" in v for v in found)
    conn.execute("UPDATE trials SET interruptions = interruptions + 1 WHERE number = 0")
    conn.commit()
    found = stress.check(path, expected, reported, killed)
    assert any("interruptions in the log" in v for v in found)


def test_checker_replays_the_status_log(copy):
    path, conn, expected, reported, killed = copy
    conn.execute("DELETE FROM transitions WHERE id = (SELECT max(id) FROM transitions)")
    conn.commit()
    found = stress.check(path, expected, reported, killed)
    assert any("log replays to" in v for v in found)


def test_checker_sees_a_damaged_file(copy, tmp_path):
    path, conn, expected, reported, killed = copy
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    raw = bytearray(path.read_bytes())
    # scribble over the middle of the file's pages, leaving the header alone
    for at in range(len(raw) // 2, len(raw) // 2 + 2048):
        raw[at] ^= 0x5A
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(bytes(raw))
    # A damaged file is a finding of the round, reported like any other violation; the
    # checker must not crash on it (a crash would end `hpstore stress` with a traceback).
    found = stress.check(damaged, expected, reported, killed)
    assert isinstance(found, list) and found
    assert any("integrity" in v or "malformed" in v for v in found), found


def test_command_line_runs_a_round_and_reports(tmp_path, capsys):
    (tmp_path / "r.json").write_text("an earlier run")
    code = stress.main(["--oracle", "random", "--processes", "2", "--trials", "12",
                        "--kill-every", "0.2", "--json", str(tmp_path / "r.json"), "--force"])
    out = capsys.readouterr().out
    assert code == 0
    assert "| random | 1 | 2 | 12 |" in out
    assert (tmp_path / "r.json").read_text().count('"violations": []') == 1


@pytest.mark.parametrize(("argv", "named"), [
    (["--processes", "0"], "argument --processes: must be at least 1, received 0"),
    (["--trials", "x"], "argument --trials: expected a whole number, received 'x'"),
    (["--step-time", "-1"], "argument --step-time: must be 0 or more"),  # (workers crashed)
    (["--kill-every", "0"], "argument --kill-every: must be a number of seconds above 0"),
    (["--minutes", "nan"], "argument --minutes: must be 0 or more minutes, received nan"),
    (["--json", "/no/such/folder/r.json"], "--json"),  # (said after the whole run)
])
def test_bad_arguments_are_refused(capsys, argv, named):
    # each option's error named that option alone ("--processes and --trials must be at
    # least 1, --kill-every above 0, ..." for any of them)
    with pytest.raises(SystemExit) as exc:
        stress.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert named in err, err
    if argv[0] == "--json":  # an output file's problem: one line, as every tool says it
        assert err.startswith("hpstore: error: ") and err.count("\n") == 1, err


def test_the_json_file_never_replaces_a_search_nor_a_file_without_force(tmp_path, capsys):
    search, notes = tmp_path / "search.db", tmp_path / "notes.txt"
    connection = sqlite3.connect(search)
    connection.execute("CREATE TABLE kept (x)")
    connection.close()
    notes.write_text("mine")
    before = search.read_bytes()
    for target, says in ((search, "SQLite database"), (notes, "--force")):
        for force in ([], ["--force"]) if target == search else ([],):
            with pytest.raises(SystemExit) as exc:  # before any round runs
                stress.main(["--trials", "4", "--json", str(target), *force])
            assert exc.value.code == 2 and says in capsys.readouterr().err
    assert search.read_bytes() == before and notes.read_text() == "mine"


def test_cleanup_leaves_no_files(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    opts = options(folder, "random", trials=10, keep=None)
    result = stress.run_round(opts, "random", folder, 0)
    assert result["violations"] == []
    assert list(folder.iterdir()) == []
    shutil.rmtree(folder)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_run_stopped_with_ctrl_c_stops_its_workers_and_leaves_no_files(tmp_path, sig):
    # (SIGTERM, from kill or a job scheduler, ended the command at once: its workers ran
    # on, and its files stayed)
    scratch, _ = stop_a_run_with_ctrl_c(tmp_path, sig=sig)
    assert list(scratch.iterdir()) == []


def test_keep_refuses_a_folder_holding_an_earlier_runs_rounds(tmp_path, capsys):
    # the rounds' files are named by oracle and number: a second run kept in the same
    # folder opened the first one's finished search and reported false violations
    opts = options(tmp_path, "random", trials=6)
    assert stress.run_round(opts, "random", tmp_path, 0)["violations"] == []
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(SystemExit) as exc:
        stress.main(["--oracle", "random", "--trials", "6", "--keep", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "random-000.db" in err and "--keep" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_keep_under_the_home_folder_written_with_a_tilde(tmp_path, monkeypatch, capsys):
    # `--keep=~/rounds` (no shell expands that `~`) was a folder named `~` in the current
    # one: the home folder's earlier rounds were not seen, and a folder `~` was made
    home = tmp_path / "home"
    (home / "rounds").mkdir(parents=True)
    (home / "rounds" / "random-000.db").write_bytes(b"")
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(here)
    with pytest.raises(SystemExit) as exc:
        stress.main(["--oracle", "random", "--trials", "6", "--keep=~/rounds"])
    assert exc.value.code == 2
    assert "random-000.db" in capsys.readouterr().err
    assert list(here.iterdir()) == []
