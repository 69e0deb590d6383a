"""What hpstore's schema allows, with no library code: why growth and processes stop where
they do.

    python -m benchmarks floor [--size 100000] [--work 0:0 100:0 100:100 100:90+reads 200:0 hpstore]
                               [--processes 1 2 4] [--repeats 3] [--json floor.json]

Growth: the schema's statements sent by hand (benchmarks/by_hand.py) over a ``--size``
search (its last twentieth against its first), on hpstore's schema and on the same without
each index whose keys land at random places (the score order of the trials' status index,
the never-twice digest index), so that what the slowdown comes from is measured, not
guessed. Processes: the same statements
in 1, 2, 4 processes sharing one file, each writer taking hpstore's turnstile, with
``--work OUT:IN``: microseconds of other work per trial outside the transactions and inside
them (hpstore's own code takes about 100 µs a trial outside its write lock and holds the
lock about 100 µs longer than its statements alone): what more processes can gain from
the work that runs side by side, and what work inside the lock costs them. ``OUT:IN+reads``
also makes the reads hpstore makes for a trial (its checks: the decision's facts, the
never-twice look-up, the trial's run, the file's identity), and ``hpstore`` runs hpstore
itself in the same session. Each row's workers also time their turns through the
turnstile in one more run (benchmarks/lock_time.py): a trial's processor time split into
holding the write lock, waiting for it and outside it, beside the wall time the lock is
held, which is what tells a row held back by the lock from one held back by the cores.
Every speed is the median of ``--repeats`` runs, the variants interleaved.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from typing import Any

from benchmarks import add_json_option, at_least, by_hand, check_json, scale
from benchmarks.throughput import machine

HPSTORE = "hpstore"
READS = "+reads"


def _work(text: str) -> str:
    """``OUT:IN`` microseconds (each a number of at least 0), ``OUT:IN+reads``, or
    ``hpstore``; given back as the row's name (``100:90+reads``)."""
    if text == HPSTORE:
        return text
    spec = text.removesuffix(READS)
    out, sep, inside = spec.partition(":")
    try:
        found = (float(out), float(inside if sep else 0.0))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not OUT:IN (two numbers of "
                                         "microseconds, such as 90:0), OUT:IN+reads or "
                                         "hpstore") from None
    if not all(0 <= v < 1e6 for v in found):
        raise argparse.ArgumentTypeError(f"{text!r}: each number must be 0 or more "
                                         "microseconds, below a second")
    return f"{found[0]:g}:{found[1]:g}" + (READS if spec != text else "")


def _processes(work: str, count: int, trials: int, folder: str, timed: bool = False
               ) -> dict[str, Any]:
    """One run of the row ``work`` (see ``_work``) in ``count`` processes; ``timed``: with
    its turns timed (see benchmarks.lock_time)."""
    if work == HPSTORE:
        return scale.processes(count, trials, folder, timed)
    spec = work.removesuffix(READS)
    out, _, inside = spec.partition(":")
    return by_hand.processes(count, trials, folder, (float(out), float(inside)),
                             reads=spec != work, timed=timed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks floor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=at_least(2), default=100_000,
                        help="trials in the growth runs (the last 1,000 against the first)")
    parser.add_argument("--work", type=_work, nargs="+",
                        default=["0:0", "100:0", "100:100", "100:90+reads", "200:0", HPSTORE],
                        metavar="OUT:IN", help="microseconds of other work per trial, outside "
                        "the transactions and inside them; +reads: with the reads hpstore "
                        "makes; hpstore: hpstore itself, in the same session")
    parser.add_argument("--processes", type=at_least(1), nargs="+", default=[1, 2, 4])
    parser.add_argument("--process-trials", type=at_least(1), default=4000)
    parser.add_argument("--repeats", type=at_least(1), default=3)
    add_json_option(parser, "write the results here")
    args = parser.parse_args(argv)
    check_json(parser, args)
    results: dict[str, Any] = {"machine": machine(), "size": args.size, "growth": {},
                               "processes": {}}
    with tempfile.TemporaryDirectory(prefix="hpstore-floor-") as folder:
        runs: dict[str, list[float]] = {v: [] for v in by_hand.INDEX_VARIANTS}
        for _ in range(args.repeats):
            for variant in by_hand.INDEX_VARIANTS:
                # a twentieth of the search at each end: a 1,000-trial window lasts a
                # tenth of a second, and this machine's pace moves more than the slowdown
                found = by_hand.growth(args.size, folder, variant, window=args.size // 20)
                runs[variant].append(found["last_per_s"] / found["first_per_s"])
                print(f"growth {variant}: {runs[variant][-1]:.2f}", file=sys.stderr,
                      flush=True)
        results["growth"] = {v: statistics.median(r) for v, r in runs.items()}
        per_s: dict[tuple[str, int], list[float]] = {}
        for _ in range(args.repeats):
            for work in args.work:
                for count in args.processes:
                    found = _processes(work, count, args.process_trials, folder)
                    if found["errors"] or found["duplicates"]:
                        print(f"errors: {found['error_messages']}", file=sys.stderr)
                        return 1
                    per_s.setdefault((work, count), []).append(found["per_s"])
        results["processes"] = {work: {str(count): statistics.median(
            per_s[work, count]) for count in args.processes} for work in args.work}
        # One more run of each, its turns timed: the timing costs a little speed, so these
        # runs give the split of a trial's time only (µs a trial, see benchmarks.lock_time)
        results["lock"] = {work: {str(count): _processes(
            work, count, args.process_trials, folder, timed=True)["lock"]
            for count in args.processes} for work in args.work}
    print(f"{machine()}; each figure the median of {args.repeats} runs\n")
    print(markdown(results, args.processes))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    return 0


def markdown(results: dict[str, Any], counts: list[int]) -> str:
    window = max(1, results["size"] // 20)
    lines = [f"The schema by hand, last {window:,} of {results['size']:,} trials against the "
             f"first {window:,}:", "", "| schema | last / first |", "|---|---:|"]
    lines += [f"| {variant} | {ratio:.2f} |" for variant, ratio in results["growth"].items()]
    lines += ["", "The schema by hand in several processes, each writer taking hpstore's "
              "turnstile, with other work per trial outside the transactions and inside "
              "them:", "", *_table_head(counts)]
    for outside, row in results["processes"].items():
        one = row[str(counts[0])] or 1.0
        lines.append(f"| {outside} | " + " | ".join(
            f"{row[str(c)]:,.0f}/s ({row[str(c)] / one:.2f}x)" for c in counts) + " |")
    if results.get("lock"):
        lines += ["", "A trial's processor time, µs: all of it / holding the write lock / "
                  "waiting for it / outside it; and the write lock's wall time held a trial "
                  "(what the other processes wait for); from one more run of each, its "
                  "turns timed:", "", *_table_head(counts)]
        for work, row in results["lock"].items():
            lines.append(f"| {work} | " + " | ".join(
                "{cpu:,.0f} / {held_cpu:,.0f} / {waiting_cpu:,.0f} / {outside:,.0f}; "
                "{held:,.0f}".format(**row[str(c)])
                if str(c) in row else "-" for c in counts) + " |")
    return "\n".join(lines)


def _table_head(counts: list[int]) -> list[str]:
    return ["| work outside:inside (µs a trial) | " + " | ".join(
        f"{c} process{'es' if c > 1 else ''}" for c in counts) + " |",
        "|---:|" + "---:|" * len(counts)]


if __name__ == "__main__":
    raise SystemExit(main())
