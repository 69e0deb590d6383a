"""Ctrl-C and SIGTERM to a ported KerasTuner script at moments other than training: while
it waits for another process's last trial, just after the file recorded the trial it
takes, while a finished trial's end is written, and a second one while a trial is handed
back.

Real processes on one search file: the script (tests/scripts/keras_search.py) says where
it is on stdout and, at a pause point, waits for a line on stdin; the test signals it
there, then reads the exit, the message and the file.
"""

from __future__ import annotations

import signal

import pytest
from test_keras_processes import Script, rows, transitions

from hpstore.handing_back import RESUME_HINT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings(
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"),
]

NOTHING_RUNNING = f"Search interrupted; no trial was running. {RESUME_HINT}"


def handed_back(trial_id: str) -> str:
    return f"Search interrupted; trial {trial_id} was handed back to run again. {RESUME_HINT}"


def interrupted(script: Script) -> str:
    """The script's stdout, once it has stopped as KerasTuner's does on Ctrl-C: by the
    KeyboardInterrupt that search() raised, uncaught."""
    code = script.finish()
    err = script.log.read_text()
    assert code != 0, f"{code}\n{script.output}\n{err[-3000:]}"
    assert err.rstrip().endswith("KeyboardInterrupt"), err[-3000:]
    return "".join(script.output)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_while_waiting_for_another_process_says_so_and_takes_nothing(
        tmp_path, signum):
    runs = tmp_path / "runs"
    db = runs / "p.db"
    holder = Script(runs, "random", "--trials", "1", "--epochs", "1", "--gate-epoch", "0")
    holder.expect("@gate")  # the only trial, RUNNING in the middle of its epoch
    waiter = Script(runs, "random", "--trials", "1", "--epochs", "1", "--say-idle")
    waiter.expect("@idle")  # nothing to start: it asks again and again
    waiter.proc.send_signal(signum)
    out = interrupted(waiter)
    assert NOTHING_RUNNING in out, out
    # the other process's trial is untouched, and it finishes the search
    assert rows(db, "SELECT trial_id, status FROM trials") == [("0", "RUNNING")]
    holder.release()
    holder.succeed()
    assert rows(db, "SELECT trial_id, status, run_count FROM trials") == [
        ("0", "COMPLETED", 1)]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_just_after_taking_a_trial_hands_it_back(tmp_path, signum):
    runs = tmp_path / "runs"
    db = runs / "p.db"
    first = Script(runs, "random", "--trials", "2", "--epochs", "1", "--pause-after-taking")
    first.expect("@taken 0")  # recorded RUNNING for this process; KerasTuner has not got it
    assert rows(db, "SELECT status FROM trials WHERE trial_id = '0'") == [("RUNNING",)]
    first.proc.send_signal(signum)
    out = interrupted(first)
    assert handed_back("0") in out, out
    assert rows(db, "SELECT status FROM trials WHERE trial_id = '0'") == [("IDLE",)]
    last = transitions(db, "0")[-1]
    assert last[:2] == ("RUNNING", "IDLE") and "Ctrl-C" in last[3]
    Script(runs, "random", "--trials", "2", "--epochs", "1").succeed()  # the same again
    assert rows(db, "SELECT trial_id, status FROM trials ORDER BY number") == [
        ("0", "COMPLETED"), ("1", "COMPLETED")]


def test_ctrl_c_while_a_finished_trial_is_ended_waits_for_its_end(tmp_path):
    runs = tmp_path / "runs"
    db = runs / "p.db"
    first = Script(runs, "random", "--trials", "2", "--epochs", "1",
                   "--pause-before-ending", "COMPLETED")
    first.expect("@ending 0")  # trained; its end not written yet
    first.proc.send_signal(signal.SIGINT)
    first.release()
    out = interrupted(first)
    assert NOTHING_RUNNING in out, out
    # the result is kept, not left RUNNING nor run again
    assert rows(db, "SELECT trial_id, status, run_count FROM trials") == [
        ("0", "COMPLETED", 1)]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_while_the_trial_is_handed_back_waits_for_the_hand_back(
        tmp_path, signum):
    runs = tmp_path / "runs"
    db = runs / "p.db"
    first = Script(runs, "random", "--trials", "2", "--epochs", "1", "--gate-epoch", "0",
                   "--pause-before-ending", "IDLE")
    first.expect("@gate")
    first.proc.send_signal(signal.SIGINT)
    first.expect("@ending 0")  # the hand-back is about to be written
    first.proc.send_signal(signum)
    first.release()
    out = interrupted(first)
    assert handed_back("0") in out, out
    assert rows(db, "SELECT status FROM trials WHERE trial_id = '0'") == [("IDLE",)]
    assert transitions(db, "0")[-1][:2] == ("RUNNING", "IDLE")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_between_a_stop_and_its_end_says_the_trial_stays_stopped(
        tmp_path, signum):
    # the trial, stopped by the rule, ended STOPPED (rightly), but the search said it "was
    # handed back to run again"
    runs = tmp_path / "runs"
    db = runs / "p.db"
    first = Script(runs, "random", "--trials", "2", "--epochs", "3", "--stop-at-once",
                   "--pause-after-stop")
    assert first.expect("@stopped").split() == ["@stopped", "0", "running", "0"]
    first.proc.send_signal(signum)
    out = interrupted(first)
    assert "handed back" not in out, out
    assert (f"Search interrupted; trial 0 was stopped early and stays STOPPED. "
            f"{RESUME_HINT}") in out, out
    assert [t[:2] for t in transitions(db, "0")] == [(None, "RUNNING"), ("RUNNING", "STOPPED")]
    Script(runs, "random", "--trials", "2", "--epochs", "3", "--stop-at-once").succeed()
    assert rows(db, "SELECT trial_id, status, run_count FROM trials ORDER BY number") == [
        ("0", "STOPPED", 1), ("1", "STOPPED", 1)]
