"""A ported KerasTuner script whose trial's end cannot be written (a full disk under the
search file) or raises (a score_trial of the user's oracle, an on_trial_end of the user's
Tuner): the error the script sees says what becomes of the trial, and the next search()
runs it again from its start, in a run of its own, scored on that run alone.

The full disk is real: a small tmpfs, mounted in a mount namespace of the child's own
(tests/_faults.py's in_a_mount), filled by the child as its trial ends. Real Keras,
training a tiny model on a CPU.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from typing import Any

import keras
import pytest
from _faults import _use_up, a_trial_left_running, in_a_mount
from _keras_models import build, data

import hpstore
import hpstore.keras as kt

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")

X, Y = data()
EPOCHS = 3


def rows(path: Any, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, args).fetchall()


def observed(path: Any, trial_id: str) -> list[tuple[int, int, float]]:
    """(run, step, value) of each val_loss the file holds for ``trial_id``, in order."""
    return rows(path, "SELECT o.run, o.step, o.value FROM observations AS o JOIN trials AS t "
                      "ON t.id = o.trial WHERE t.trial_id = ? AND o.metric = 'val_loss' "
                      "ORDER BY o.id", trial_id)


def search(tuner: Any, **kwargs: Any) -> None:
    tuner.search(X, Y, epochs=EPOCHS, validation_data=(X, Y), verbose=0, **kwargs)


# -- a full disk as the trial ends -----------------------------------------------------------------
def a_keras_tuner_on_a_full_disk(folder: str, models: str, when: str, resume: str) -> None:
    """Run alone in a mount namespace where ``folder`` is a small tmpfs holding the search
    file (the checkpoints go to ``models``, elsewhere): a ported script's RandomSearch,
    whose third trial fills the disk (another program) once it has trained its epochs
    (``when`` "end": its end cannot be written) or at the end of its second epoch ("epoch":
    that epoch cannot be recorded). Then the space is freed and the search resumed
    (``resume``): by search() again on the same tuner, or by a new tuner in the same
    process (a notebook cell run again). Prints what happened, as JSON."""
    path = os.path.join(folder, "s.db")
    junk: list[str] = []
    ran: list[str] = []

    class Filling(kt.RandomSearch):
        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
            ran.append(trial.trial_id)
            histories = super().run_trial(trial, *args, **kwargs)
            if len(ran) == 3 and when == "end":
                junk.extend(_use_up(folder, "bytes"))
            return histories

    class FillingAtAnEpoch(keras.callbacks.Callback):
        # (before the tuner's own recorder, which comes last)
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if len(ran) == 3 and epoch == 1 and when == "epoch" and not junk:
                junk.extend(_use_up(folder, "bytes"))

    def new_tuner() -> Any:
        return Filling(build, objective="val_loss", max_trials=5, seed=3, directory=models,
                       project_name="p", database=path)

    tuner = new_tuner()
    report: dict[str, Any] = {}
    try:
        search(tuner, callbacks=[FillingAtAnEpoch()])
        report["error"] = ["none", "", False]
    except Exception as exc:
        report["error"] = [type(exc).__name__, str(exc), isinstance(exc, hpstore.DatabaseError)]
    report["failed"] = ran[-1]
    report["seen"] = rows(path, "SELECT status, run_count FROM trials WHERE trial_id = ?",
                          ran[-1])
    for name in junk:
        os.remove(name)
    if resume == "new tuner":
        tuner = new_tuner()
    search(tuner)
    report["ran"] = ran
    report["trials"] = rows(path, "SELECT trial_id, status, run_count, score FROM trials "
                                  "ORDER BY number")
    report["values"] = observed(path, ran[2])
    report["integrity"] = rows(path, "PRAGMA integrity_check")
    print(json.dumps(report))


@pytest.mark.parametrize(("when", "resume"), [("end", "search again"), ("end", "new tuner"),
                                              ("epoch", "search again")])
def test_a_keras_trial_that_meets_a_full_disk_runs_again_afresh(tmp_path, when, resume):
    # The disk filled up as a ported script's trial ended (or recorded an epoch): the error
    # did not say what became of the trial, which stayed RUNNING under the live process,
    # and search() again in that process was handed it in the same run, whose epochs from
    # 0 then reported on top of the first run's (a score made of both runs)
    disk = tmp_path / "disk"
    disk.mkdir()
    done = in_a_mount(disk, 'mount -t tmpfs -o size=1m tmpfs "$1"', sys.executable, "-c",
                      "import sys, test_keras_ends as t; "
                      "t.a_keras_tuner_on_a_full_disk(*sys.argv[1:])",
                      str(disk), str(tmp_path / "models"), when, resume)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    trial, trials = a_trial_left_running(report, disk)
    assert report["ran"].count(trial) == 2
    # run again in a run of its own; the first run's epochs kept with that run, once
    values = report["values"]
    first = [(1, 0), (1, 1), (1, 2)] if when == "end" else [(1, 0)]
    assert [(run, step) for run, step, _ in values] == [*first, (2, 0), (2, 1), (2, 2)]
    assert trials[trial][1] == 2
    assert trials[trial][2] == min(v for run, _, v in values if run == 2)  # this run alone


# -- an end that raises --------------------------------------------------------------------------
class ScoredOnSecondThought(hpstore.RandomSearchOracle):
    """A user's oracle whose score_trial raises at the first end it scores."""

    raised: list[Exception]

    def score_trial(self, trial: Any) -> None:
        if not self.raised:
            self.raised.append(ValueError("no score for this one"))
            raise self.raised[0]
        super().score_trial(trial)


class EndHookRaises(kt.RandomSearch):
    """A script's Tuner whose on_trial_end raises at the first end, before KerasTuner's."""

    raised: list[Exception]

    def on_trial_end(self, trial: Any) -> None:
        if not self.raised:
            self.raised.append(RuntimeError("the script's own end of trial"))
            raise self.raised[0]
        super().on_trial_end(trial)


def score_raises(folder: Any) -> Any:
    oracle = ScoredOnSecondThought(objective="val_loss", max_trials=3, seed=1,
                                   database=str(folder / "p.db"))
    oracle.raised = []
    tuner = kt.Tuner(oracle=oracle, hypermodel=build, directory=str(folder),
                     project_name="p")
    return tuner, oracle.raised


def hook_raises(folder: Any) -> Any:
    tuner = EndHookRaises(build, objective="val_loss", max_trials=3, seed=1,
                          directory=str(folder), project_name="p")
    tuner.raised = []
    return tuner, tuner.raised


@pytest.mark.parametrize(("make", "message"), [
    (score_raises, "end_trial raised; queued to run again."),
    (hook_raises, "search() stopped on RuntimeError before this run ended; queued to run "
                  "again.")])
def test_a_keras_trial_whose_end_raises_is_handed_back_and_runs_again_afresh(
        tmp_path, make, message):
    # end_trial raising (a score_trial of the user's oracle) or the script's on_trial_end
    # raising before it: search() stopped on that error, as KerasTuner's does, and left the
    # trial RUNNING under the live process, for other workers to wait on
    tuner, raised = make(tmp_path)
    with pytest.raises(Exception) as caught:
        search(tuner)
    assert caught.value is raised[0]  # the error KerasTuner would raise, as it was raised
    db = tmp_path / "p.db"
    assert rows(db, "SELECT trial_id, status, run_count, message FROM trials") == [
        ("0", "IDLE", 1, message)]
    search(tuner)
    trials = rows(db, "SELECT trial_id, status, run_count, score FROM trials ORDER BY number")
    assert [t[:3] for t in trials] == [("0", "COMPLETED", 2), ("1", "COMPLETED", 1),
                                       ("2", "COMPLETED", 1)]
    values = observed(db, "0")
    assert [(run, step) for run, step, _ in values] == [
        (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]
    assert trials[0][3] == min(v for run, _, v in values if run == 2)  # its new run alone


def test_tuner_id_read_after_a_search_in_another_thread_is_the_one_it_ran_under(
        tmp_path: Any) -> None:
    # as hpstore.Tuner's: the trials were recorded as worker-<pid>-t<thread>, and
    # tuner.tuner_id read on the main thread said worker-<pid>
    import threading

    tuner = kt.RandomSearch(build, objective="val_loss", max_trials=1, seed=1,
                            directory=str(tmp_path), project_name="p")
    thread = threading.Thread(target=lambda: tuner.search(
        X, Y, epochs=1, validation_data=(X, Y), verbose=0))
    thread.start()
    thread.join()
    recorded = {t.tuner_id for t in tuner.oracle.hpstore_oracle.trials.values()}
    assert recorded == {tuner.tuner_id} and tuner.tuner_id.endswith(f"-t{thread.native_id}")
