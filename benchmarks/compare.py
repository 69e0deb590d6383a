"""Wins, ties and losses between the systems of a quality run, and the bars they meet.

Two median best values tie when they differ by no more than the problem's tolerance: 1% of
the distance from hpstore random search's median best after the first checkpoint (30 trials)
to the optimum (to the best value any system found, where the optimum is not known), or 0.1%
of the larger of the two values, whichever is more. The first scale is how much a search can
improve on a short random search, so a tie is a difference a user would not notice next to
what searching gains; the second keeps a problem where random search is already within a
hair of the optimum from turning differences in the fourth digit into wins and losses.
"""

from __future__ import annotations

import math
from typing import Any

OURS = "hpstore bayesian"
RANDOM = "hpstore random"
TPE = "Optuna TPE"
TIE_FRACTION = 0.01
TIE_RELATIVE = 0.001
BARS = {"tpe_last": 0.8, "tpe_first": 0.6, "random_from": 60, "latency_ms": 100.0,
        "latency_at": 1000}


def tie_tolerances(results: dict[str, Any]) -> dict[str, float]:
    """The tie tolerance of every problem in ``results``."""
    tolerances = {}
    for problem, systems in results["best"].items():
        optimum = results["problems"][problem]["optimum"]
        if optimum is None:
            optimum = min(min(s[-1] for s in r["per_seed"]) for r in systems.values())
        if RANDOM in systems:
            start = systems[RANDOM]["median"][0]
        else:
            start = max(r["median"][0] for r in systems.values())
        tolerances[problem] = max(TIE_FRACTION * abs(start - optimum), 1e-12)
    return tolerances


def outcome(ours: float, theirs: float, tolerance: float) -> str:
    """"W" (ours lower by more than the tolerance), "L" (higher) or "T"."""
    if math.isnan(ours) or math.isnan(theirs):
        return "-"
    tolerance = max(tolerance, TIE_RELATIVE * max(abs(ours), abs(theirs)))
    if ours < theirs - tolerance:
        return "W"
    if ours > theirs + tolerance:
        return "L"
    return "T"


def _outcomes(results: dict[str, Any], ours: str, theirs: str, i: int) -> dict[str, str]:
    found = {}
    for problem, systems in results["best"].items():
        if ours in systems and theirs in systems:
            found[problem] = outcome(systems[ours]["median"][i], systems[theirs]["median"][i],
                                     results["tolerance"][problem])
    return found


def _cell(value: float, best: bool) -> str:
    text = f"{value:.5g}" if abs(value) < 1e5 else f"{value:.3e}"
    return f"**{text}**" if best else text


def outcome_tables(results: dict[str, Any]) -> list[str]:
    """A table per checkpoint (problems by systems), then the win/tie/loss summary."""
    names = list(dict.fromkeys(n for s in results["best"].values() for n in s))
    lines: list[str] = []
    for i, checkpoint in enumerate(results["checkpoints"]):
        against = [n for n in (TPE, RANDOM) if n in names and OURS in names]
        lines += [f"After {checkpoint} trials:", "",
                  "| problem | kind | " + " | ".join(names)
                  + "".join(f" | vs {n}" for n in against) + " |",
                  "|---|---|" + "---:|" * len(names) + ":---:|" * len(against)]
        marks = {n: _outcomes(results, OURS, n, i) for n in against}
        for problem, systems in results["best"].items():
            meta = results["problems"][problem]
            label = problem if meta["optimum"] is None else f"{problem} ({meta['optimum']:g})"
            medians = {n: systems[n]["median"][i] for n in names if n in systems}
            low = min(medians.values())
            cells = [_cell(medians[n], medians[n] == low) if n in medians else "-"
                     for n in names]
            lines.append(f"| {label} | {meta['kind']} | " + " | ".join(cells)
                         + "".join(f" | {marks[n].get(problem, '-')}" for n in against) + " |")
        lines.append("")
    others = [n for n in names if n != OURS]
    if OURS in names and others:
        lines += ["Wins / ties / losses of hpstore bayesian, problem by problem:", "",
                  "| against | " + " | ".join(f"after {c}" for c in results["checkpoints"])
                  + " |", "|---|" + "---:|" * len(results["checkpoints"])]
        for theirs in others:
            cells = []
            for i in range(len(results["checkpoints"])):
                got = list(_outcomes(results, OURS, theirs, i).values())
                cells.append(f"{got.count('W')} / {got.count('T')} / {got.count('L')}")
            lines.append(f"| {theirs} | " + " | ".join(cells) + " |")
    return lines


def bars(results: dict[str, Any]) -> list[str]:
    """The bars the Bayesian oracle is held to, each "[met]" or "[missed]" with its figure."""
    found = []
    cps = results["checkpoints"]
    names = {n for s in results["best"].values() for n in s}
    if OURS in names and TPE in names:
        checks = {len(cps) - 1: "tpe_last", 0: "tpe_first"}  # one check when one checkpoint
        for i, key in checks.items():
            got = list(_outcomes(results, OURS, TPE, i).values())
            good = sum(o in ("W", "T") for o in got)
            share = good / len(got) if got else 0.0
            verdict = "met" if share >= BARS[key] else "missed"
            found.append(f"[{verdict}] after {cps[i]} trials hpstore bayesian is at least as "
                         f"good as Optuna TPE on {good} of {len(got)} problems ({share:.0%}; "
                         f"bar: {BARS[key]:.0%})")
    if OURS in names and RANDOM in names:
        # Judged at the run's own checkpoints from the bar's trial count on, and named by
        # them: a run whose checkpoints are 30 and 100 was never judged at 60.
        late = [i for i, c in enumerate(cps) if c >= BARS["random_from"]]
        losses = sorted({f"{p} after {cps[i]}" for i in late
                         for p, o in _outcomes(results, OURS, RANDOM, i).items() if o == "L"})
        if late:
            verdict = "missed" if losses else "met"
            judged = " and ".join(str(cps[i]) for i in late)
            found.append(f"[{verdict}] hpstore bayesian never worse than hpstore random after "
                         f"{judged} trials (losses: {', '.join(losses) or 'none'})")
    at = BARS["latency_at"]
    timing = results.get("latency", {}).get(at, {}).get(OURS)
    if timing is not None:
        ms = timing["median"] * 1000
        verdict = "met" if ms < BARS["latency_ms"] else "missed"
        found.append(f"[{verdict}] Bayesian create_trial at {at:,} completed trials: "
                     f"{ms:.0f} ms median (bar: under {BARS['latency_ms']:.0f} ms)")
    return found
