"""A search script the tests start as separate processes.

usage: search.py DB TRIALS [--workers N] [--hold-first] [--block] [--barrier DIR N]
                 [--fail-at-exit] [--no-threads] [--hooks DIR]

--hold-first   whoever gets trial 0 on its first run holds it until killed
--block        every trial waits until the process is interrupted (for Ctrl-C tests)
--barrier D N  wait until N scripts have arrived in folder D before searching
--fail-at-exit each worker process exits with code 134 at its very end (a native library
               crashing at interpreter teardown)
--no-threads   a worker process cannot start a thread (the limit on processes, ulimit -u,
               counts threads, and root is never held to it: so the limit is played here)
--hooks DIR    KerasTuner's hooks each leave a file in DIR, named by the hook, the trial
               and the process
"""

from __future__ import annotations

import argparse
import atexit
import faulthandler
import os
import signal
import sys
import threading
import time

import hpstore


def build(hp):
    hp.Float("x", -5, 5)
    hp.Choice("kind", ["a", "b"])
    with hp.conditional_scope("kind", ["b"]):
        hp.Int("n", 1, 4)


class ScriptTuner(hpstore.Tuner):
    hold_first = False
    block = False
    hooks = None

    def _called(self, *name):
        if self.hooks:
            open(os.path.join(self.hooks, "-".join(map(str, [*name, os.getpid()]))),
                 "x").close()

    def on_search_begin(self):
        self._called("search_begin")

    def on_trial_begin(self, trial):
        self._called("trial_begin", trial.trial_id)

    def on_trial_end(self, trial):
        self._called("trial_end", trial.trial_id, trial.status)

    def on_search_end(self):
        self._called("search_end")

    def run_trial(self, trial, offset):
        self.hypermodel.build(trial.hyperparameters)  # as a KerasTuner subclass builds
        print(f"RUNNING {trial.trial_id} {os.getpid()} {self.tuner_id}", flush=True)
        if self.block or (self.hold_first and int(trial.trial_id) == 0 and trial.run == 1):
            print(f"HOLD {trial.trial_id} {os.getpid()}", flush=True)
            while True:  # until the test kills or interrupts this process
                time.sleep(0.05)
        v = trial.hyperparameters.values
        for step in range(3):
            if self.report(trial, {"loss": (v["x"] - offset) ** 2 + step}, step=step):
                break
        return None


if __name__ == "__mp_main__" and "--no-threads" in sys.argv:  # a worker (spawn)
    def _refused(self):
        raise RuntimeError("can't start new thread")

    threading.Thread.start = _refused  # type: ignore[method-assign]

if __name__ == "__mp_main__" and "--fail-at-exit" in sys.argv:  # a worker (spawn)
    atexit.register(os._exit, 134)  # registered first: run last, after the worker's end


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("trials", type=int)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--hold-first", action="store_true")
    parser.add_argument("--barrier", nargs=2, default=None)
    parser.add_argument("--block", action="store_true")
    parser.add_argument("--tuner-id", default=None)
    parser.add_argument("--fail-at-exit", action="store_true")
    parser.add_argument("--no-threads", action="store_true")
    parser.add_argument("--hooks", default=None)
    args = parser.parse_args()
    oracle = hpstore.RandomSearchOracle("loss", max_trials=args.trials, seed=3,
                                        database=args.db)
    tuner = ScriptTuner(oracle, hypermodel=build, tuner_id=args.tuner_id, verbose=1)
    # instance attributes, so that spawned workers get them too
    tuner.hold_first, tuner.block, tuner.hooks = args.hold_first, args.block, args.hooks
    if args.barrier:
        folder, count = args.barrier[0], int(args.barrier[1])
        open(os.path.join(folder, f"arrived-{os.getpid()}"), "w").close()
        deadline = time.monotonic() + 60
        while len(os.listdir(folder)) < count:  # a start line: wait for the others
            if time.monotonic() > deadline:
                return 3
            time.sleep(0.01)
    try:
        tuner.search(1.0, workers=args.workers)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    # a test whose search does not end in time asks for every thread's stack (SIGUSR1)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    sys.exit(main())
