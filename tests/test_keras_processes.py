"""The same ported KerasTuner script started several times: one search, no chief.

Real processes, real training; they are held in the middle of an epoch through a pipe
(the script prints ``@gate`` and waits for a line), then released, interrupted with
SIGINT or killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from _keras_models import build, data

import hpstore
import hpstore.keras as kt

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "scripts" / "keras_search.py"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
DEADLINE = 120.0  # seconds a child may take to reach a point (it imports keras and torch)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings(
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"),
]


class Script:
    """The test script in a child process, its stdout read line by line."""

    def __init__(self, directory: Path, *args: str) -> None:
        self.log = directory.parent / f"stderr-{len(list(directory.parent.glob('stderr-*')))}"
        with open(self.log, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(SCRIPT), str(directory), *args], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=err, text=True, env=ENV)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def expect(self, prefix: str) -> str:
        """The next line starting with ``prefix``; fails at EOF or after DEADLINE."""
        while True:
            try:
                line = self.lines.get(timeout=DEADLINE)
            except queue.Empty:
                self.proc.kill()
                raise AssertionError(f"no {prefix!r} within {DEADLINE} s") from None
            if line is None:
                raise AssertionError(f"exited before {prefix!r}: {self.output}\n"
                                     f"{self.log.read_text()[-3000:]}")
            self.output.append(line)
            if line.startswith(prefix):
                return line

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def finish(self) -> int:
        code = self.proc.wait(DEADLINE)
        while (line := self.lines.get(timeout=DEADLINE)) is not None:
            self.output.append(line)
        return code

    def succeed(self) -> None:
        code = self.finish()
        assert code == 0, f"{self.output}\n{self.log.read_text()[-3000:]}"


def rows(path, query, *args):
    with sqlite3.connect(path) as conn:
        return conn.execute(query, args).fetchall()


def transitions(path, trial_id):
    return rows(path, "SELECT from_status, to_status, tuner_id, message FROM status_log "
                      "WHERE trial_id = ? ORDER BY at_unix, rowid", trial_id)


def steps(path, trial_id, run, metric="val_accuracy"):
    return [s for (s,) in rows(path, "SELECT step FROM metric_history WHERE trial_id = ? AND "
                                     "run = ? AND metric = ? ORDER BY step", trial_id, run,
                               metric)]


def fresh_values(path):
    """The values of each trial, Hyperband's bookkeeping left out, for the trials that
    are not a promoted continuation of another."""
    out = []
    for (text,) in rows(path, "SELECT hp_values FROM trials ORDER BY number"):
        values = json.loads(text)
        if "tuner/trial_id" not in values:
            out.append({k: v for k, v in values.items() if not k.startswith("tuner/")})
    return out


@pytest.mark.parametrize("kind", ["random", "hyperband"])
def test_two_processes_share_one_search(tmp_path, kind):
    runs = tmp_path / "runs"
    first = Script(runs, kind, "--gate-epoch", "0")
    second = Script(runs, kind, "--gate-epoch", "0")
    # both hold a trial at the same moment: neither can run the whole search alone
    first.expect("@gate")
    second.expect("@gate")
    first.release()
    second.release()
    first.succeed()
    second.succeed()
    db = runs / "p.db"
    trials = rows(db, "SELECT trial_id, status, tuner_id, run_count, hp_values FROM trials")
    assert len(trials) == 6  # max_trials, or the Hyperband schedule for max_epochs=3
    assert {status for _, status, _, _, _ in trials} == {"COMPLETED"}
    assert {runs_ for _, _, _, runs_, _ in trials} == {1}  # none ran twice
    by_worker = {tuner for _, _, tuner, _, _ in trials}
    assert len(by_worker) == 2  # KerasTuner would call both "tuner0"
    values = fresh_values(db)
    assert len({json.dumps(v, sort_keys=True) for v in values}) == len(values)
    for trial_id, *_ in trials:
        assert steps(db, trial_id, 1)  # every trial's epochs are in the file
    # each process loads the best model, whichever trained it: it scores the best score
    (best,) = rows(db, "SELECT max(score) FROM trials")[0]
    for script in (first, second):
        loaded = [float(line.split()[1]) for line in script.output if line.startswith("@best")]
        assert loaded == [pytest.approx(best, abs=1e-6)]


def test_a_worker_killed_mid_epoch_has_its_trial_run_again(tmp_path):
    runs = tmp_path / "runs"
    doomed = Script(runs, "random", "--trials", "3", "--gate-epoch", "1")
    doomed.expect("@gate")  # trial 0, epoch 0 recorded, epoch 1 half trained
    db = runs / "p.db"
    assert steps(db, "0", 1) == [0]
    os.kill(doomed.proc.pid, signal.SIGKILL)
    assert doomed.finish() == -signal.SIGKILL
    x, y = data()
    tuner = kt.RandomSearch(build, objective="val_accuracy", max_trials=3,
                            directory=str(runs), project_name="p")
    tuner.search(x, y, epochs=2, validation_data=(x, y), verbose=0)
    assert rows(db, "SELECT trial_id, status, run_count FROM trials ORDER BY number") == [
        ("0", "COMPLETED", 2), ("1", "COMPLETED", 1), ("2", "COMPLETED", 1)]
    log = transitions(db, "0")
    assert [(a, b) for a, b, _, _ in log] == [(None, "RUNNING"), ("RUNNING", "IDLE"),
                                             ("IDLE", "RUNNING"), ("RUNNING", "COMPLETED")]
    assert "died" in log[1][3] and log[2][2] == tuner.tuner_id
    assert steps(db, "0", 2) == [0, 1]  # run again from scratch, every epoch recorded


def test_ctrl_c_hands_the_trial_back_and_the_next_run_continues_from_its_checkpoints(
        tmp_path):
    runs = tmp_path / "runs"
    # Hyperband, max_epochs=3: round 0 trains trials 0-2 for one epoch; the first epoch
    # numbered 1 is that of the promoted trial 0003, continuing the best of them.
    first = Script(runs, "hyperband", "--gate-epoch", "1")
    first.expect("@gate")
    first.proc.send_signal(signal.SIGINT)
    assert first.finish() != 0
    assert any("was handed back to run again" in line for line in first.output)
    db = runs / "p.db"
    assert rows(db, "SELECT status FROM trials WHERE trial_id = '0003'") == [("IDLE",)]
    interrupted = transitions(db, "0003")[-1]
    assert interrupted[:2] == ("RUNNING", "IDLE") and "Ctrl-C" in interrupted[3]

    second = Script(runs, "hyperband")  # the same command again
    second.succeed()
    assert rows(db, "SELECT count(*) FROM trials WHERE status = 'COMPLETED'") == [(6,)]
    child = json.loads(rows(db, "SELECT hp_values FROM trials WHERE trial_id = '0003'")[0][0])
    parent = child["tuner/trial_id"]
    (parent_worker,) = rows(db, "SELECT tuner_id FROM trials WHERE trial_id = ?", parent)[0]
    (child_worker,) = rows(db, "SELECT tuner_id FROM trials WHERE trial_id = '0003'")[0]
    # the second process continued a model from the checkpoint the first one wrote
    assert parent_worker != child_worker
    assert (runs / "p" / f"trial_{parent}" / "checkpoint.weights.h5").exists()
    assert steps(db, "0003", 2) == [1, 2]


def test_sigterm_hands_the_trial_back_as_ctrl_c_does(tmp_path):
    # a job scheduler preempting the job, docker stop, timeout: not a crash of the worker
    runs = tmp_path / "runs"
    first = Script(runs, "random", "--trials", "2", "--epochs", "1", "--gate-epoch", "0")
    first.expect("@gate")
    first.proc.send_signal(signal.SIGTERM)
    assert first.finish() != 0
    assert any("was handed back to run again" in line for line in first.output)
    db = runs / "p.db"
    assert rows(db, "SELECT status FROM trials WHERE trial_id = '0'") == [("IDLE",)]
    assert transitions(db, "0")[-1][:2] == ("RUNNING", "IDLE")
    Script(runs, "random", "--trials", "2", "--epochs", "1").succeed()
    assert rows(db, "SELECT count(*) FROM trials WHERE status = 'COMPLETED'") == [(2,)]


def test_a_process_whose_project_was_replaced_writes_no_checkpoint_into_the_new_one(
        tmp_path):
    # overwrite=True elsewhere numbers the new project's trials from 0 again, in the same
    # folders: the old process saved its epoch's checkpoint over the new trial 0's (then
    # stopped with ProjectRemovedError), and get_best_models loaded the wrong weights
    runs = tmp_path / "runs"
    old = Script(runs, "random", "--trials", "2", "--epochs", "1", "--gate-epoch", "0")
    old.expect("@gate")  # trial 0 of the old project, in the middle of its epoch
    x, y = data()
    kt.RandomSearch(build, objective="val_accuracy", max_trials=2, directory=str(runs),
                    project_name="p", overwrite=True).search(
        x, y, epochs=1, validation_data=(x, y), verbose=0)
    checkpoint = runs / "p" / "trial_0" / "checkpoint.weights.h5"
    written = checkpoint.read_bytes()
    old.release()
    assert old.finish() != 0
    assert "ProjectRemovedError" in old.log.read_text()
    assert checkpoint.read_bytes() == written  # the new project's, untouched


def test_a_process_whose_trial_another_ended_writes_no_checkpoint_over_the_recorded_run(
        tmp_path):
    # A worker cut off from the store past its liveness (a network partition, on
    # PostgreSQL) has its trial run and ended by another worker. Back, it saved its epoch's
    # checkpoint over the recorded run's, then was told its results were not recorded, and
    # get_best_models() loaded weights that were not the best trial's, in every process.
    runs = tmp_path / "runs"
    cut_off = Script(runs, "random", "--trials", "2", "--epochs", "1", "--gate-epoch", "0")
    cut_off.expect("@gate")  # trial 0, in the middle of its epoch
    other = hpstore.Oracle.attach(runs / "p.db")
    trial = other.get_trial("0")
    # (scored below any run: the script ends loading the best trial's checkpoint)
    other.update_trial("0", {"val_accuracy": -1.0})
    trial.status = "COMPLETED"
    other.end_trial(trial)
    other.close()
    checkpoint = runs / "p" / "trial_0" / "checkpoint.weights.h5"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.write_bytes(b"the recorded run's weights")
    cut_off.release()
    cut_off.succeed()  # it goes on with the next trial
    assert any("not running" in line for line in [*cut_off.output, cut_off.log.read_text()])
    assert checkpoint.read_bytes() == b"the recorded run's weights"
    assert rows(runs / "p.db", "SELECT status, score FROM trials WHERE trial_id = '0'") == [
        ("COMPLETED", -1.0)]
