"""What the report draws, loaded through the store contract: the trials (a sample past a
few thousand), an axis per hyperparameter, the best trials' curves, the runs per worker."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from typing import Any, NamedTuple

from hpstore import queries
from hpstore.report.scales import Axis, axis_for, finite, real, score_colour
from hpstore.store.contract import ProjectStore
from hpstore.store.records import TrialRecord

MAX_CURVES = 5
MAX_POINTS = 2000  # trials drawn in the plots; past it the best and an even sample
BEST_KEPT = 500  # of which the best, always drawn
MAX_RUNS = 2000  # bars in the timeline; past it an even sample


class TrialInfo(NamedTuple):
    number: int
    trial_id: str
    status: str
    score: float | None  # the score it counts with (infinite ones too), or None (retired)
    best_step: int | None
    tuner_id: str | None
    runs: int
    seconds: float | None
    message: str | None
    values: dict[str, Any]
    retired: bool = False  # out of the results: its score is left out (None here)
    note: str | None = None
    own_score: float | None = None  # its score, retired or not (what its table row shows)


class Run(NamedTuple):
    """One run of a trial by one worker, from RUNNING to the status it ended in."""

    trial_id: str
    tuner_id: str
    start: float
    end: float
    status: str


class Overall(NamedTuple):
    """What the report says about every trial, however many there are, when it draws only a
    sample of them."""

    counts: dict[str, int]  # trials per status
    goodness: list[float]  # of every score (infinite ones too), sorted (lower is better)
    best_line: list[tuple[int, float]]  # (trial number, best score so far) at each new best
    last_number: int  # the highest trial number
    runs: int  # runs in the status log


class Search(NamedTuple):
    name: str
    metric: str  # the objective's metric in observations ("multi_objective" for several)
    direction: str
    objective_text: str
    axes: dict[str, Axis]
    trials: list[TrialInfo]  # every trial, or the sample drawn (see Overall), by number
    curves: dict[str, list[tuple[int, float | None]]]
    runs: list[Run]  # every run, or an even sample of them
    overall: Overall
    stopped_early: str | None = None  # trials a stopping rule stopped, steps saved: in words

    @property
    def total(self) -> int:
        return sum(self.overall.counts.values())

    @property
    def sampled(self) -> bool:
        return len(self.trials) < self.total

    def goodness(self, score: float) -> float:
        """Lower is better."""
        return score if self.direction == "min" else -score

    def ranked(self) -> list[TrialInfo]:
        """The trials drawn that have a score, best first."""
        scored = [t for t in self.trials if t.score is not None]
        return sorted(scored, key=lambda t: (self.goodness(t.score or 0.0), t.number))

    def best(self) -> TrialInfo | None:
        """The best COMPLETED trial drawn (a stopped trial's partial score never competes
        with full ones, as in get_best_trials)."""
        return next((t for t in self.ranked() if t.status == "COMPLETED"), None)

    def colours(self) -> dict[str, str]:
        """A colour per scored trial by its rank among every score (ties share one)."""
        keys = self.overall.goodness
        top = max(len(keys) - 1, 1)
        return {t.trial_id: score_colour(bisect.bisect_left(keys, self.goodness(t.score or 0.0))
                                         / top) for t in self.ranked()}


def describe_objective(objective: dict[str, Any]) -> tuple[str, str, str]:
    """(metric name in observations, direction, text) of a stored objective."""
    if "objectives" in objective:
        return "multi_objective", "min", f"multi_objective: {queries.objective_text(objective)}"
    return objective["name"], objective["direction"], (
        f"{objective['name']} ({objective['direction']})")


def choose_sample(rows: list[tuple[int, str, float | None]], direction: str,
                  limit: int = MAX_POINTS) -> set[int]:
    """The numbers of the trials to draw: all of them up to ``limit``; past it the
    ``BEST_KEPT`` best and an even spread of the others (by trial number)."""
    if len(rows) <= limit:
        return {n for n, _, _ in rows}
    sign = 1.0 if direction == "min" else -1.0
    scored = sorted((sign * sc, n) for n, _, sc in rows if sc is not None)
    keep = {n for _, n in scored[:BEST_KEPT]}
    rest = [n for n, _, _ in rows if n not in keep]
    step = len(rest) / (limit - len(keep))
    keep.update(rest[int(i * step)] for i in range(limit - len(keep)))
    return keep


def summarise(rows: list[tuple[int, str, float | None]], direction: str, runs: int) -> Overall:
    """Counts, every score and the best-so-far line, from (number, status, score) rows in
    number order. The line follows the completed trials: a stopped trial's partial score
    never competes with full ones (as in ``get_best_trials``)."""
    counts: dict[str, int] = {}
    goodness, line, best = [], [], None
    sign = 1.0 if direction == "min" else -1.0
    for number, status, score in rows:
        counts[status] = counts.get(status, 0) + 1
        if score is None:
            continue
        goodness.append(sign * score)
        if status == "COMPLETED" and (best is None or sign * score < sign * best):
            best = score
            line.append((number, score))
    return Overall(counts, sorted(goodness), line, max((r[0] for r in rows), default=0), runs)


def load_search(project: ProjectStore, status: Callable[[str], None] = lambda text: None
                ) -> Search:
    """Everything the report draws. Past MAX_POINTS trials only a sample is read in full
    (see :func:`choose_sample`). ``status`` is told what is read at each step (a search of
    a million trials takes seconds)."""
    record = project.record()
    metric, direction, text = describe_objective(dict(record.objective))
    status("Reading the score of every trial")
    light = [(n, st, real(sc)) for n, _, st, sc in project.score_line()]
    drawn = choose_sample(light, direction)
    status(f"Reading the {len(drawn):,} trials drawn, of {len(light):,}")
    if len(drawn) == len(light):
        chosen = project.trials()
    else:
        numbers = sorted(drawn)
        chosen = [t for t in project.trials_by_number(numbers).values()]
        chosen.sort(key=lambda t: t.number)
    trials = [TrialInfo(t.number, t.trial_id, t.status,
                        real(queries.result_score(t)), t.best_step,
                        t.tuner_id, t.run,
                        queries.run_seconds(t.started_at, t.ended_at), t.message,
                        t.values, t.retired, t.note, real(t.score))
              for t in chosen]
    status("Reading the runs of the status log")
    runs, run_count = load_runs(project)
    status("Counting the steps early stopping saved")
    stopping = queries.stopping(project)
    search = Search(record.name, metric, direction, text, load_axes(project, trials), trials,
                    {}, runs, summarise(light, direction, run_count),
                    stopping.said() if stopping.stopped else None)
    best_ids = {b.trial_id for b in search.ranked()[:MAX_CURVES]}  # (once: a sort)
    best = [t for t in chosen if t.trial_id in best_ids]
    status("Reading the best trials' metric values")
    return search._replace(curves=load_curves(project, best, metric))


def load_axes(project: ProjectStore, trials: list[TrialInfo]) -> dict[str, Axis]:
    """An axis per hyperparameter of the space, then per other name found in the values."""
    axes: dict[str, Axis] = {}
    _, items = project.space()
    defined = [(item["config"].get("name"), item["class_name"], item["config"])
               for item in items]
    names = dict.fromkeys(n for t in trials for n in t.values)
    extra: list[tuple[str, str, dict[str, Any]]] = [(n, "", {}) for n in names]
    for name, class_name, config in [*defined, *extra]:
        if name in axes and not class_name:
            continue
        seen = [t.values[name] for t in trials if name in t.values]
        # a same-name twin (under other conditions) is drawn as its values say
        axes[name] = axis_for("" if name in axes else class_name, config, seen)
    return axes


def load_curves(project: ProjectStore, trials: list[TrialRecord],
                metric: str) -> dict[str, list[tuple[int, float | None]]]:
    """(step, mean value) of ``metric`` in the last run of each trial that reported it;
    None for NaN."""
    curves = {}
    for trial in trials:
        observed = [o for o in project.observations(trial, every_run=True)
                    if o.metric == metric]
        if not observed:
            continue
        last_run = max(o.run for o in observed)
        steps: dict[int, list[float]] = {}
        for o in observed:
            if o.run == last_run and not math.isnan(o.value):
                steps.setdefault(o.step, []).append(o.value)
            elif o.run == last_run:
                steps.setdefault(o.step, [])
        curves[trial.trial_id] = [
            (step, finite(math.fsum(vs) / len(vs)) if vs else None)
            for step, vs in sorted(steps.items())]
    return curves


def load_runs(project: ProjectStore) -> tuple[list[Run], int]:
    """The runs of the status log, and how many there are; past MAX_RUNS an even sample of
    each worker's, in order of start (see :meth:`ProjectStore.runs`: the store reads only
    the runs drawn). A run still open ends at the last sign of life in the store."""
    found, total = project.runs(MAX_RUNS)
    now = 0.0
    if any(r.end is None for r in found):  # a scan of every value reported: only when needed
        now = project.last_activity() or 0.0
    return [Run(r.trial_id, r.tuner_id, r.start, now if r.end is None else r.end, r.status)
            for r in found], total
