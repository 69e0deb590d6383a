"""A search whose worker processes record the thread limits they run under.

usage: threads.py DB OUT WORKERS

Each trial appends one JSON line to OUT: the worker's pid, its BLAS/OpenMP environment
variables and, where threadpoolctl is installed, the thread count of every thread pool
loaded in it. numpy is imported at the top, as a user's script does: in a spawned worker
that import runs before any code of hpstore's.
"""

from __future__ import annotations

import json
import os
import sys

import numpy  # noqa: F401  (loads OpenBLAS, which reads its thread count now)

import hpstore
from hpstore.workers import THREAD_VARIABLES


def run_trial(trial, out):
    try:
        from threadpoolctl import threadpool_info

        pools = {p["internal_api"]: p["num_threads"] for p in threadpool_info()}
    except ImportError:
        pools = None
    with open(out, "a", encoding="utf-8") as f:
        f.write(json.dumps({"pid": os.getpid(), "pools": pools,
                            "env": {k: os.environ.get(k) for k in THREAD_VARIABLES}}) + "\n")
    return trial.hyperparameters["x"]


def main() -> int:
    db, out, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 1)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=6, hyperparameters=hp, seed=1,
                                        database=db)
    hpstore.Tuner(oracle, run_trial=run_trial, verbose=0).search(out, workers=workers)
    # this process's own environment, after the search: left as it was
    print(json.dumps({k: os.environ.get(k) for k in THREAD_VARIABLES}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
