"""python -m benchmarks [throughput|scale|quality|steps|keras|stopping|dashboard|postgres|
                      floor] [OPTIONS]
(the first three when none is named)

Each of the first three runs the peers that are installed (`pip install -e ".[bench]"`) on
the same work in the same run and prints Markdown; `--quick` gives a CI smoke of the
throughput part (`quality --quick` that of the quality part; `quality --suite full` runs
the broad suite). `steps` measures hpstore alone: the cost per step of a trial that reports
up to 100,000 steps. `keras` times hpstore.keras beside KerasTuner's own tuner on real
(tiny) Keras training. `stopping` compares the stopping rules with Optuna's pruners on
synthetic learning curves. `dashboard` times the dashboard on a 100,000-trial search and the
workers of a search it watches. `postgres` runs hpstore on PostgreSQL beside Optuna's
RDBStorage on the same server (a throwaway one unless `--url` names yours). `floor` measures
hpstore's schema with no library code: its growth with and without the indexes whose keys
land at random places, and several processes with other work outside the transactions.
"""

from __future__ import annotations

import importlib
import sys

PARTS = ("throughput", "scale", "quality")
#: parts run only when named, and the module of each
NAMED = {"steps": "steps", "keras": "keras_tuners", "stopping": "stopping",
         "dashboard": "dashboard", "postgres": "postgres", "floor": "floor"}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if args and args[0] in PARTS:
        return int(importlib.import_module(f"benchmarks.{args[0]}").main(args[1:]) or 0)
    if args and args[0] in NAMED:
        return int(importlib.import_module(f"benchmarks.{NAMED[args[0]]}").main(args[1:]) or 0)
    if "--quick" in args:  # the CI smoke is the throughput part's (scale has no --quick)
        return int(importlib.import_module("benchmarks.throughput").main(args) or 0)
    if args:  # the parts take different options; one set cannot serve all three
        print(f"Options {args} need a part: python -m benchmarks "
              f"{{{'|'.join([*PARTS, *NAMED])}}} [OPTIONS] (or --quick alone).",
              file=sys.stderr)
        return 2
    status = 0
    for part in PARTS:
        print(f"\n## {part}\n", flush=True)
        status |= int(importlib.import_module(f"benchmarks.{part}").main(args) or 0)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
