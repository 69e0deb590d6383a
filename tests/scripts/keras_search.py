"""An ordinary KerasTuner script, ported by its import line, that the tests start as
separate processes (several at once share one search).

usage: keras_search.py DIRECTORY {random,hyperband} [--trials N] [--epochs N]
                       [--max-epochs N] [--gate-epoch E] [--say-idle]
                       [--pause-after-taking] [--pause-before-ending STATUS]
                       [--stop-at-once] [--pause-after-stop]

--gate-epoch E  after the first batch of the first epoch numbered E (of any trial), print
                "@gate <pid>" and wait for a line on stdin before training on: the test
                then releases, interrupts or kills the process in the middle of an epoch.
--say-idle      print "@idle" the first time the search has nothing to start (another
                process runs the last trial): the process is then asking again and waiting.
--pause-after-taking
                once the file has recorded the first trial this process takes, before
                KerasTuner gets it, print "@taken <trial id>" and wait for a line on stdin.
--pause-before-ending STATUS
                before the first end of a trial with STATUS (COMPLETED: a finished trial's
                end; IDLE: a hand-back) is written, print "@ending <trial id>" and wait
                for a line on stdin.
--stop-at-once  a stopping rule stops every trial at its first epoch (val_accuracy is
                never 2 or more).
--pause-after-stop
                once training of the first trial the search stopped has ended (its end
                not written yet), print "@stopped <trial id>" and wait for a line on stdin.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

import keras
from _keras_models import build, data

import hpstore
import hpstore.keras as kt

_gated = False


class Gate(keras.callbacks.Callback):
    """Holds the first batch of the first epoch numbered ``epoch`` (mid-epoch: the epoch
    has begun, its logs are not recorded yet) until the test says go."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch
        self.current = -1

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        global _gated
        if _gated or self.current != self.epoch:
            return
        _gated = True
        print(f"@gate {os.getpid()}", flush=True)
        sys.stdin.readline()  # the test answers, interrupts (SIGINT) or kills (SIGKILL)


class AfterStop(keras.callbacks.Callback):
    """Holds the end of training of the first trial the search stopped until the test says
    go: the stop is recorded, the trial's end is not."""

    def __init__(self, tuner) -> None:
        super().__init__()
        self.tuner = tuner
        self.done = False

    def on_train_end(self, logs=None):
        if self.done or not self.model.stop_training:
            return
        self.done = True
        held = self.tuner.oracle.hpstore_oracle.ongoing_trials
        stopped = [t.trial_id for t in self.tuner.oracle.hpstore_oracle.trials.values()
                   if t.status == "STOPPED"]
        print(f"@stopped {','.join(stopped)} running {len(held)}", flush=True)
        sys.stdin.readline()  # the test interrupts (SIGINT, SIGTERM)


def pause_after_taking(tuner) -> None:
    inner = tuner.oracle.hpstore_oracle
    create_trial = inner.create_trial

    def taking(tuner_id):
        trial = create_trial(tuner_id)
        if trial.status == "RUNNING" and not getattr(taking, "done", False):
            taking.done = True
            print(f"@taken {trial.trial_id}", flush=True)
            sys.stdin.readline()
        return trial

    inner.create_trial = taking


def pause_before_ending(tuner, status) -> None:
    inner = tuner.oracle.hpstore_oracle
    end_trial = inner.end_trial

    def ending(trial):
        if trial.status == status and not getattr(ending, "done", False):
            ending.done = True
            print(f"@ending {trial.trial_id}", flush=True)
            sys.stdin.readline()
        return end_trial(trial)

    inner.end_trial = ending


def say_idle(tuner) -> None:
    create_trial = tuner.oracle.create_trial

    def asking(tuner_id):
        trial = create_trial(tuner_id)
        if trial.status == "IDLE" and not getattr(asking, "done", False):
            asking.done = True
            print("@idle", flush=True)
        return trial

    tuner.oracle.create_trial = asking


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("tuner", choices=["random", "hyperband"])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-epochs", type=int, default=3)
    parser.add_argument("--gate-epoch", type=int, default=None)
    parser.add_argument("--say-idle", action="store_true")
    parser.add_argument("--pause-after-taking", action="store_true")
    parser.add_argument("--pause-before-ending", choices=["COMPLETED", "IDLE"])
    parser.add_argument("--stop-at-once", action="store_true")
    parser.add_argument("--pause-after-stop", action="store_true")
    args = parser.parse_args()
    x, y = data()
    if args.tuner == "random":
        rule = hpstore.Threshold(lower=2.0) if args.stop_at_once else None
        tuner = kt.RandomSearch(build, objective="val_accuracy", max_trials=args.trials,
                                directory=args.directory, project_name="p",
                                early_stopping=rule)
    else:
        tuner = kt.Hyperband(build, objective="val_accuracy", max_epochs=args.max_epochs,
                             factor=3, directory=args.directory, project_name="p")
    if args.say_idle:
        say_idle(tuner)
    if args.pause_after_taking:
        pause_after_taking(tuner)
    if args.pause_before_ending:
        pause_before_ending(tuner, args.pause_before_ending)
    callbacks = [Gate(args.gate_epoch)] if args.gate_epoch is not None else []
    if args.pause_after_stop:
        callbacks.append(AfterStop(tuner))
    tuner.search(x, y, epochs=args.epochs, validation_data=(x, y), callbacks=callbacks,
                 verbose=0)
    print(f"@done {os.getpid()} {tuner.tuner_id}", flush=True)
    best = tuner.get_best_models(1)[0]  # whichever process trained it
    accuracy = best.evaluate(x, y, verbose=0, return_dict=True)["accuracy"]
    print(f"@best {accuracy!r}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
