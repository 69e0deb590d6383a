"""hpstore report DB -o report.html: one self-contained HTML page with plots of a search.

The page shows the optimisation history, the score against each hyperparameter, parallel
coordinates, the metric curves of the best trials, a timeline of every run per worker and
the trials table. It loads nothing and runs no script: the plots are inline SVG drawn here.
"""

from __future__ import annotations

import bisect
import html
import json
import math
import re
import shlex
import sqlite3
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from hpstore.inspection import (
    add_output_options,
    choose_project,
    connect_readonly,
    run_tool,
    tool_parser,
)
from hpstore.output_file import check_output, write_output
from hpstore.rendering import last_line, terminal_text

STATUS_COLOURS = {"COMPLETED": "#2ca02c", "FAILED": "#d62728", "INVALID": "#ff7f0e",
                  "IDLE": "#8c8c8c", "STOPPED": "#9467bd", "RUNNING": "#1f77b4"}
RUN_ENDS = {"IDLE": "IDLE (interrupted, runs again)", "INVALID": "INVALID (retried or failed)",
            "RUNNING": "RUNNING (drawn up to the last record in the file)"}
SCORE_STOPS = ["#440154", "#3b528b", "#21918c", "#5ec962", "#d8e219"]  # best .. worst
LINE_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]
DOT, BEST_LINE = "#1f77b4", "#e6550d"
CHAR_PX = 6.3  # width of one character of the 11px plot font, for fitting labels
MAX_CURVES = 5
MAX_POINTS = 2000  # trials drawn in the plots; past it the best and an even sample
BEST_KEPT = 500  # of which the best, always drawn
MAX_RUNS = 2000  # bars in the timeline; past it an even sample
TABLE_ROWS = 200  # rows of the trials table past MAX_POINTS trials: the best
SCATTER_MARKERS = 8000  # markers in all the score-against-hyperparameter plots together
PARALLEL_VERTICES = 40_000  # points of all the lines of the parallel coordinates together
CELL_CHARS, TITLE_CHARS = 120, 2000  # a table cell's text, a message's tooltip
WIDE = 1080  # px, the wide plots


# -- values, numbers and scales --------------------------------------------------------------

def finite(value: Any) -> float | None:
    """``value`` as a float if it is a finite real number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def value_key(value: Any) -> str:
    """A key telling apart 1, 1.0-as-text "1" and True, for categories."""
    return json.dumps(value, sort_keys=True, default=str)


def fmt_value(value: Any) -> str:
    """A hyperparameter value or score as a person reads it."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def fmt_tick(value: float, step: float = 0.0) -> str:
    """A tick label with just the digits that tell it from its neighbours ``step`` away."""
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    if step <= 0 or value == 0:
        return f"{value:.3g}"
    digits = math.floor(math.log10(abs(value))) - math.floor(math.log10(step) + 1e-9) + 1
    return f"{value:.{min(max(digits, 1), 12)}g}"


def fit(label: str, chars: float) -> str:
    """``label`` cut to ``chars`` characters, with an ellipsis when cut."""
    chars = max(int(chars), 2)
    return label if len(label) <= chars else label[:chars - 1] + "\u2026"


def nice_ticks(lo: float, hi: float, count: int, integer: bool = False) -> list[float]:
    """About ``count`` round values (1, 2 or 5 times a power of ten apart) in [lo, hi];
    whole numbers only when ``integer``."""
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw * 0.75)
    step = max(step, 1.0) if integer else step
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    return [float(f"{i * step:.12g}") for i in range(first, last + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten in [lo, hi], with 2 and 5 times them when there are few."""
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    inside = [v for v in (10.0**k for k in decades) if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9)]
    if len(inside) < 3:
        inside = sorted(v for k in decades for v in (10.0**k, 2 * 10.0**k, 5 * 10.0**k)
                        if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9))
    return inside if len(inside) >= 2 else nice_ticks(lo, hi, 4)


def thin(values: list[float], count: int) -> list[float]:
    """Every k-th value, so that at most about ``count`` remain."""
    k = max(1, math.ceil(len(values) / max(count, 1)))
    return values[::k]


class Axis(NamedTuple):
    """Maps values to 0..1 along a plot axis: linear, log or evenly spaced categories."""

    kind: str = "linear"  # "linear", "log" or "category"
    lo: float = 0.0
    hi: float = 1.0
    keys: Sequence[str] = ()  # value_key of each category, in order
    labels: Sequence[str] = ()
    integer: bool = False  # ticks on whole numbers only

    def unit(self, value: Any) -> float | None:
        """Where ``value`` falls (0 to 1 inside the axis, beyond for values outside it), or
        None for a value the axis cannot place (missing, NaN, not positive on a log axis)."""
        if self.kind == "category":
            key = value_key(value)
            return (self.keys.index(key) + 0.5) / len(self.keys) if key in self.keys else None
        v, lo, hi = finite(value), self.lo, self.hi
        if v is None or (self.kind == "log" and v <= 0):
            return None
        if self.kind == "log":
            v, lo, hi = math.log10(v), math.log10(lo), math.log10(hi)
        return 0.5 if hi <= lo else (v - lo) / (hi - lo)

    def ticks(self, count: int = 5) -> list[tuple[float, str]]:
        """(position 0..1, label) of the tick marks."""
        if self.kind == "category":
            return [((i + 0.5) / len(self.keys), lab) for i, lab in enumerate(self.labels)]
        if self.kind == "log":
            return [(u, f"{v:g}") for v in thin(log_ticks(self.lo, self.hi), count)
                    if (u := self.unit(v)) is not None]
        values = nice_ticks(self.lo, self.hi, count, self.integer)
        step = values[1] - values[0] if len(values) > 1 else 0.0
        return [(u, fmt_tick(v, step)) for v in values if (u := self.unit(v)) is not None]


def category_axis(values: Iterable[Any]) -> Axis:
    keys: dict[str, str] = {}
    for v in values:
        keys.setdefault(value_key(v), fmt_value(v))
    return Axis("category", keys=list(keys), labels=list(keys.values()))


def numeric_axis(lo: float, hi: float, log: bool = False, pad: float = 0.0,
                 integer: bool = False) -> Axis:
    """A linear or log axis over [lo, hi], widened by ``pad`` of its length each side."""
    if hi <= lo:  # one value: give it some room
        room = abs(lo) * 0.1 or 1.0
        lo, hi = (lo / 2, lo * 2) if log else (lo - room, hi + room)
    elif log:
        lo, hi = lo * (hi / lo) ** -pad, hi * (hi / lo) ** pad
    else:
        lo, hi = lo - (hi - lo) * pad, hi + (hi - lo) * pad
    return Axis("log" if log else "linear", lo, hi, integer=integer)


def axis_for(class_name: str, config: dict[str, Any], seen: Sequence[Any]) -> Axis:
    """The axis of one hyperparameter: from its definition, widened by the values seen."""
    numbers = [v for v in map(finite, seen) if v is not None]
    if class_name in ("Int", "Float") and finite(config.get("min_value")) is not None:
        lo = min([config["min_value"], *numbers])
        hi = max([config["max_value"], *numbers])
        return numeric_axis(lo, hi, config.get("sampling") == "log" and lo > 0, 0.04,
                            integer=class_name == "Int")
    if class_name == "Choice":
        return category_axis([*config.get("values", []), *seen])
    if class_name == "Boolean":
        return category_axis([False, True, *seen])
    if class_name == "Fixed":
        return category_axis([config.get("value"), *seen])
    if seen and len(numbers) == len(seen):  # not in the space (e.g. tuner/epochs)
        return numeric_axis(min(numbers), max(numbers), pad=0.04,
                            integer=all(isinstance(v, int) for v in seen))
    return category_axis(seen)


def quantile(values: Sequence[float], q: float) -> float:
    pos = (len(values) - 1) * q
    low = math.floor(pos)
    return values[low] + (values[min(low + 1, len(values) - 1)] - values[low]) * (pos - low)


def score_axis(scores: Sequence[float], direction: str) -> Axis:
    """A linear axis for scores. A few very bad scores that would squeeze the others into a
    quarter of the height are left beyond it (drawn at its edge)."""
    values = sorted(scores)
    kept = values
    if len(values) >= 8:
        q1, q3 = quantile(values, 0.25), quantile(values, 0.75)
        spread = 4 * max(q3 - q1, 1e-12)
        trimmed = ([v for v in values if v <= q3 + spread] if direction == "min"
                   else [v for v in values if v >= q1 - spread])
        if 0 < trimmed[-1] - trimmed[0] < 0.25 * (values[-1] - values[0]):
            kept = trimmed
    return numeric_axis(kept[0], kept[-1], pad=0.06)


def score_colour(fraction: float) -> str:
    """Colour for a score ranked ``fraction`` of the way from the best (0) to the worst (1)."""
    pos = min(max(fraction, 0.0), 1.0) * (len(SCORE_STOPS) - 1)
    i = min(int(pos), len(SCORE_STOPS) - 2)
    a, b = (tuple(int(c[k:k + 2], 16) for k in (1, 3, 5)) for c in SCORE_STOPS[i:i + 2])
    return "#" + "".join(f"{round(x + (y - x) * (pos - i)):02x}" for x, y in zip(a, b))


# -- what the report shows, read from the file -----------------------------------------------

class TrialInfo(NamedTuple):
    number: int
    trial_id: str
    status: str
    score: float | None  # finite, or None
    best_step: int | None
    tuner_id: str | None
    runs: int
    seconds: float | None
    message: str | None
    values: dict[str, Any]


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
    goodness: list[float]  # of every finite score, sorted (lower is better)
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

    def colours(self) -> dict[str, str]:
        """A colour per scored trial by its rank among every score (ties share one)."""
        keys = self.overall.goodness
        top = max(len(keys) - 1, 1)
        return {t.trial_id: score_colour(bisect.bisect_left(keys, self.goodness(t.score or 0.0))
                                         / top) for t in self.ranked()}


def describe_objective(objective: dict[str, Any]) -> tuple[str, str, str]:
    """(metric name in observations, direction, text) of a stored objective."""
    if "objectives" in objective:
        text = " + ".join(f"{o['name']} ({o['direction']})" for o in objective["objectives"])
        return "multi_objective", "min", f"multi_objective = {text}"
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
    number order."""
    counts: dict[str, int] = {}
    goodness, line, best = [], [], None
    sign = 1.0 if direction == "min" else -1.0
    for number, status, score in rows:
        counts[status] = counts.get(status, 0) + 1
        if score is None:
            continue
        goodness.append(sign * score)
        if best is None or sign * score < sign * best:
            best = score
            line.append((number, score))
    return Overall(counts, sorted(goodness), line, max((r[0] for r in rows), default=0), runs)


def load_search(conn: sqlite3.Connection, project: str | None) -> Search:
    """Everything the report draws, read in one snapshot of the file. Past MAX_POINTS
    trials only a sample is read in full (see :func:`choose_sample`)."""
    conn.execute("BEGIN")  # one consistent view while workers keep writing
    try:
        pid, name = choose_project(conn, project)
        (objective,) = conn.execute("SELECT objective FROM projects WHERE project_id = ?",
                                    (pid,)).fetchone()
        metric, direction, text = describe_objective(json.loads(objective))
        light = [(n, st, finite(sc)) for n, st, sc in conn.execute(
            "SELECT number, status, score FROM trials WHERE project_id = ? ORDER BY number",
            (pid,))]
        drawn = choose_sample(light, direction)
        trials = [TrialInfo(n, tid, st, finite(sc), bs, tu, runs,
                            None if s0 is None or s1 is None else s1 - s0, msg,
                            v if isinstance(v := json.loads(vals), dict) else {})
                  for n, tid, st, sc, bs, tu, runs, s0, s1, msg, vals in conn.execute(
                      "SELECT number, trial_id, status, score, best_step, tuner_id, run_count, "
                      "started_at, ended_at, message, hp_values FROM trials "
                      "WHERE project_id = ? ORDER BY number", (pid,)) if n in drawn]
        runs, run_count = load_runs(conn, pid)
        search = Search(name, metric, direction, text, load_axes(conn, pid, trials), trials,
                        {}, runs, summarise(light, direction, run_count))
        best = [t.trial_id for t in search.ranked()[:MAX_CURVES]]
        search = search._replace(curves=load_curves(conn, pid, best, metric))
    finally:
        conn.rollback()
    return search


def load_axes(conn: sqlite3.Connection, pid: int, trials: list[TrialInfo]) -> dict[str, Axis]:
    """An axis per hyperparameter of the space, then per other name found in the values."""
    axes: dict[str, Axis] = {}
    defined = conn.execute("SELECT name, class_name, config FROM hyperparameters "
                           "WHERE project_id = ? ORDER BY position", (pid,)).fetchall()
    extra = [(n, "", "{}") for n in dict.fromkeys(n for t in trials for n in t.values)]
    for name, class_name, config in [*defined, *extra]:
        if name in axes and not class_name:
            continue
        seen = [t.values[name] for t in trials if name in t.values]
        # a same-name twin (under other conditions) is drawn as its values say
        axes[name] = axis_for("" if name in axes else class_name, json.loads(config), seen)
    return axes


def load_curves(conn: sqlite3.Connection, pid: int, trial_ids: list[str],
                metric: str) -> dict[str, list[tuple[int, float | None]]]:
    """(step, mean value) of ``metric`` in the last run of each trial; None for NaN."""
    curves = {}
    for tid in trial_ids:
        rows = conn.execute(
            "SELECT o.step, avg(o.value) FROM observations o JOIN trials t ON t.id = o.trial "
            "WHERE t.project_id = ? AND t.trial_id = ? AND o.metric = ? AND o.run = "
            "(SELECT max(run) FROM observations WHERE trial = t.id AND metric = ?) "
            "GROUP BY o.step ORDER BY o.step", (pid, tid, metric, metric)).fetchall()
        if rows:
            curves[tid] = [(step, finite(v)) for step, v in rows]
    return curves


def load_runs(conn: sqlite3.Connection, pid: int) -> tuple[list[Run], int]:
    """The runs from the status log, and how many there are; past MAX_RUNS an even sample
    of them (in order of start). A run starts at a change to RUNNING and ends at the next
    change to anything but RUNNING or STOPPED (a stopped trial is still finishing). A run
    still open ends at the last sign of life in the file."""
    last = conn.execute("SELECT max(o.at) FROM observations o JOIN trials t ON t.id = o.trial "
                        "WHERE t.project_id = ?", (pid,)).fetchone()[0]
    now = last or 0.0
    started: dict[str, tuple[float, str]] = {}
    runs = []
    for tid, status, at, tuner in conn.execute(
            "SELECT t.trial_id, s.to_status, s.at, s.tuner_id FROM transitions s "
            "JOIN trials t ON t.id = s.trial WHERE t.project_id = ? ORDER BY s.id", (pid,)):
        now = max(now, at)
        if status == "RUNNING":
            if tid in started:  # started again without an end: the earlier run was lost
                runs.append(Run(tid, started[tid][1], started[tid][0], at, "IDLE"))
            started[tid] = (at, tuner or "(unknown)")
        elif status != "STOPPED" and tid in started:
            begin, who = started.pop(tid)
            runs.append(Run(tid, who, begin, at, status))
    runs += [Run(tid, who, begin, now, "RUNNING") for tid, (begin, who) in started.items()]
    total = len(runs)
    if total > MAX_RUNS:
        runs.sort(key=lambda r: r.start)
        runs = [runs[int(i * total / MAX_RUNS)] for i in range(MAX_RUNS)]
    return runs, total


# -- SVG elements ----------------------------------------------------------------------------

def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def tip(text: str) -> str:
    return f"<title>{esc(text)}</title>" if text else ""


def svg(width: float, height: float, body: Iterable[str], label: str) -> str:
    return (f'<svg class="plot" width="{width:.0f}" height="{height:.0f}" viewBox="0 0 '
            f'{width:.0f} {height:.0f}" role="img" aria-label="{esc(label)}">'
            + "".join(body) + "</svg>")


def circle(x: float, y: float, r: float, fill: str, tooltip: str = "") -> str:
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{fill}">{tip(tooltip)}</circle>'


def rect(x: float, y: float, w: float, h: float, fill: str, tooltip: str = "") -> str:
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill}">'
            f"{tip(tooltip)}</rect>")


def line(x1: float, y1: float, x2: float, y2: float, cls: str = "grid") -> str:
    return f'<line class="{cls}" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}"/>'


def path(d: str, stroke: str, width: float = 1.5, tooltip: str = "", extra: str = "") -> str:
    return (f'<path d="{d}" fill="none" stroke="{stroke}" stroke-width="{width}"{extra}>'
            f"{tip(tooltip)}</path>")


def path_d(points: Iterable[tuple[float, float] | None]) -> str:
    """Path data through ``points``; a None breaks the line."""
    out, pen = [], "M"
    for p in points:
        if p is None:
            pen = "M"
            continue
        out.append(f"{pen}{p[0]:.1f},{p[1]:.1f}")
        pen = "L"
    return "".join(out)


def marker(x: float, y: float, fill: str, tooltip: str, up: bool | None = None) -> str:
    """A dot, or a triangle pointing up/down for a value beyond the edge of the axis."""
    if up is None:
        return circle(x, y, 3.5, fill, tooltip)
    s = -6 if up else 6
    return (f'<path class="off" d="M{x - 4:.1f},{y:.1f}L{x + 4:.1f},{y:.1f}L{x:.1f},'
            f'{y + s:.1f}Z" fill="{fill}">{tip(tooltip)}</path>')


def text(x: float, y: float, s: str, anchor: str = "middle", full: str = "",
         extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{esc(s)}'
            f"{tip(full if full != s else '')}</text>")


class Frame(NamedTuple):
    """The plotting area of one SVG: its size and margins, and an axis each way."""

    x: Axis
    y: Axis
    width: float = 640
    height: float = 300
    top: float = 12
    right: float = 16
    bottom: float = 40
    left: float = 70

    def px(self, u: float) -> float:
        return self.left + u * (self.width - self.left - self.right)

    def py(self, u: float) -> float:
        return self.height - self.bottom - u * (self.height - self.top - self.bottom)

    def point(self, xv: Any, yv: Any, jitter: float = 0.0) -> tuple[float, float, bool | None]:
        """Pixels of a value pair; the third item says whether y was beyond the top (True)
        or bottom (False) and was put on the edge, None when inside."""
        ux, uy = self.x.unit(xv), self.y.unit(yv)
        assert ux is not None and uy is not None
        edge = True if uy > 1 else False if uy < 0 else None
        return self.px(ux + jitter), self.py(min(max(uy, 0.0), 1.0)), edge

    def axes(self, xlabel: str, ylabel: str) -> str:
        """Grid, tick labels, border and axis titles."""
        out = []
        band = (self.width - self.left - self.right) / max(len(self.x.keys), 1)
        for u, label in self.x.ticks(max(3, int((self.width - self.left - self.right) / 100))):
            x = self.px(u)
            out += [line(x, self.top, x, self.height - self.bottom),
                    text(x, self.height - self.bottom + 14,
                         fit(label, band / CHAR_PX) if self.x.keys else label, full=label)]
        for u, label in self.y.ticks(max(2, int((self.height - self.top) / 50))):
            y = self.py(u)
            out += [line(self.left, y, self.width - self.right, y),
                    text(self.left - 5, y + 4, fit(label, (self.left - 8) / CHAR_PX), "end",
                         full=label)]
        out.append(f'<rect class="frame" x="{self.left}" y="{self.top}" width='
                   f'"{self.width - self.left - self.right}" height='
                   f'"{self.height - self.top - self.bottom}"/>')
        out.append(text((self.left + self.width - self.right) / 2, self.height - 6,
                        fit(xlabel, (self.width - self.left) / CHAR_PX), full=xlabel,
                        extra=' class="title"'))
        if ylabel:
            mid = (self.top + self.height - self.bottom) / 2
            out.append(text(12, mid, fit(ylabel, (self.height - self.top) / CHAR_PX),
                            full=ylabel, extra=f' class="title" transform="rotate(-90 12 {mid})"'))
        return "".join(out)


def natural(name: str) -> list[Any]:
    """Sort key putting "w-2" before "w-10"."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", name)]


def jitter(number: int, categories: int) -> float:
    """A small fixed offset inside a category's band, so equal values do not hide."""
    return ((number * 0.6180339887) % 1 - 0.5) * 0.5 / max(categories, 1)


def legend(items: Iterable[tuple[str, str]], shape: str = "dot") -> str:
    return '<div class="legend">' + "".join(
        f'<span><i class="{shape}" style="background:{colour}"></i>{esc(label)}</span>'
        for colour, label in items) + "</div>"


def sentence(s: str) -> str:
    """What a section says instead of an empty plot."""
    return f'<p class="empty">{esc(s)}</p>'


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def too_few(search: Search, needs_space: bool = True) -> str | None:
    """Why a plot of scores cannot be drawn (fewer than two scores, no space), or None."""
    scored = len(search.overall.goodness)
    if scored < 2:
        return (f"{count(search.total, 'trial')}, {count(scored, 'score')}: a plot needs "
                "at least two scored trials.")
    if needs_space and not search.axes:
        return "The search space has no hyperparameters."
    return None


def sample_note(search: Search) -> str:
    """What a plot of a sample leaves out, or nothing when every trial is drawn."""
    if not search.sampled:
        return ""
    return (f'<p class="note">Showing {len(search.trials):,} of {search.total:,} trials: the '
            f"{min(BEST_KEPT, len(search.overall.goodness)):,} best and an even sample of the "
            "rest.</p>")


# -- the six sections ------------------------------------------------------------------------

def history_section(search: Search) -> str:
    if reason := too_few(search, needs_space=False):
        return sentence(reason)
    scored = [t for t in search.trials if t.score is not None]
    line = search.overall.best_line
    f = Frame(numeric_axis(-0.5, search.overall.last_number + 0.5, integer=True),
              score_axis([t.score or 0.0 for t in scored] + [b for _, b in line],
                         search.direction), width=WIDE)
    out = [f.axes("trial number", f"score ({search.metric})")]
    steps: list[tuple[float, float]] = []
    for number, best in line:  # every new best of every trial, drawn or not
        x, y, _ = f.point(number, best)
        if len(steps) > 1 and round(steps[-1][0]) == round(x):  # same pixel: drops further
            steps[-1] = (steps[-1][0], y)
            continue
        steps += [(x, steps[-1][1]), (x, y)] if steps else [(x, y)]
    steps.append((f.px(1.0), steps[-1][1]))
    out.append(path(path_d(steps), BEST_LINE, 2))
    for t in search.trials:
        if t.score is not None:
            x, y, edge = f.point(t.number, t.score)
            out.append(marker(x, y, DOT, f"trial {t.trial_id}: {t.score:.6g}", edge))
        else:  # no score: a status-coloured tick under the plot
            x, y = f.px(f.x.unit(t.number) or 0.0), f.height - f.bottom
            out.append(path(f"M{x:.1f},{y - 7:.1f}V{y:.1f}", STATUS_COLOURS.get(t.status, "#000"),
                            2.5, f"trial {t.trial_id}: {t.status}, no score"))
    unscored = sorted({t.status for t in search.trials if t.score is None})
    note = sample_note(search)
    if note:
        note = note[:-4] + " The best-so-far line follows every trial.</p>"
    return svg(f.width, f.height, out, "optimisation history") + legend(
        [(DOT, "score of a trial"), (BEST_LINE, "best so far")]
        + [(STATUS_COLOURS.get(s, "#000"), f"{s}, no score (tick at the bottom)")
           for s in unscored]) + clipped_note(f.y, scored) + note


def clipped_note(axis: Axis, scored: list[TrialInfo]) -> str:
    beyond = [t for t in scored if not 0 <= (axis.unit(t.score) or 0.0) <= 1]
    if not beyond:
        return ""
    return (f'<p class="note">{len(beyond)} score(s) far from the others ('
            + esc(", ".join(f"trial {t.trial_id}: {t.score:.6g}" for t in beyond[:5]))
            + (", \u2026" if len(beyond) > 5 else "") + ") drawn as triangles at the edge.</p>")


def best_and_spread(search: Search, scored: list[TrialInfo], limit: int) -> list[TrialInfo]:
    """At most ``limit`` of ``scored`` (in number order): a quarter the best, the rest an
    even spread of the others."""
    if len(scored) <= limit:
        return scored
    kept = {t.number for t in search.ranked()[:limit // 4]}
    rest = [t for t in scored if t.number not in kept]
    step = len(rest) / (limit - len(kept))
    kept.update(rest[int(i * step)].number for i in range(limit - len(kept)))
    return [t for t in scored if t.number in kept]


def hyperparameter_section(search: Search) -> str:
    if reason := too_few(search):
        return sentence(reason)
    scored = [t for t in search.trials if t.score is not None]
    y = score_axis([t.score or 0.0 for t in scored], search.direction)
    # the markers of all the plots together stay within SCATTER_MARKERS
    per_plot = max(SCATTER_MARKERS // max(len(search.axes), 1), 20)
    scored = best_and_spread(search, scored, per_plot)
    plots = []
    for name, axis in search.axes.items():
        f = Frame(axis, y, width=300, height=220, left=54, bottom=36)
        out, missing = [f.axes(name + (" (log)" if axis.kind == "log" else ""), "score")], 0
        for t in scored:
            if name not in t.values or axis.unit(t.values[name]) is None:
                missing += 1
                continue
            shift = jitter(t.number, len(axis.keys)) if axis.kind == "category" else 0.0
            x, yy, edge = f.point(t.values[name], t.score, shift)
            out.append(marker(x, yy, DOT, f"trial {t.trial_id}: {name} = "
                              f"{fmt_value(t.values[name])}, score {t.score:.6g}", edge))
        note = f"{missing} scored trial(s) without a value here (inactive)" if missing else ""
        plots.append(f'<figure><figcaption>{esc(name)}</figcaption>'
                     f'{svg(f.width, f.height, out, f"score against {name}")}'
                     f'<div class="note">{esc(note) or "&#160;"}</div></figure>')
    shown = ""
    if len(scored) < len(search.overall.goodness):
        shown = (f'<p class="note">Each plot shows {len(scored):,} of the '
                 f"{len(search.overall.goodness):,} scored trials: the "
                 f"{len(scored) // 4:,} best and an even sample of the rest.</p>")
    return f'<div class="plots">{"".join(plots)}</div>{shown}'


def parallel_section(search: Search) -> str:
    if reason := too_few(search):
        return sentence(reason)
    ranked = search.ranked()
    lines = max(PARALLEL_VERTICES // (len(search.axes) + 1), 20)
    if len(ranked) > lines:  # the best and a spread of the rest, still best first
        kept = {t.number for t in best_and_spread(search, sorted(ranked, key=lambda t: t.number),
                                                  lines)}
        ranked = [t for t in ranked if t.number in kept]
    axes = [*search.axes.items(),
            (f"score ({search.metric})", score_axis([t.score or 0.0 for t in ranked],
                                                    search.direction))]
    width, height, top, low, na = max(float(WIDE), 130.0 * len(axes)), 380.0, 36.0, 320.0, 350.0
    step = (width - 120) / (len(axes) - 1)
    xs = [70 + i * step for i in range(len(axes))]

    def y_of(u: float | None) -> float:
        return na if u is None else low - min(max(u, 0.0), 1.0) * (low - top)

    units = {t.trial_id: [a.unit(t.values[n]) if n in t.values else None
                          for n, a in axes[:-1]] + [axes[-1][1].unit(t.score)] for t in ranked}
    colours, out = search.colours(), []
    for t in reversed(ranked):  # the best drawn last, on top
        pts = [(x, y_of(u)) for x, u in zip(xs, units[t.trial_id])]
        out.append(path(path_d(pts), colours[t.trial_id], 1.4, f"trial {t.trial_id}: score "
                        f"{t.score:.6g}", ' stroke-opacity="0.75"'))
    for i, (x, (name, axis)) in enumerate(zip(xs, axes)):
        out += [line(x, top, x, low, "axis"),
                text(x, top - 14, fit(name, step / CHAR_PX), full=name, extra=' class="title"')]
        for u, label in axis.ticks(5):
            out.append(text(x - 4, y_of(u) + 4, fit(label, 12), "end", full=label,
                            extra=' class="tick"'))
        if any(u[i] is None for u in units.values()):
            out.append(text(x - 4, na + 4, "n/a", "end", extra=' class="tick"'))
    best, worst = ranked[0].score or 0.0, ranked[-1].score or 0.0
    return svg(width, height, out, "parallel coordinates") + legend(
        [(score_colour(i / 4), label) for i, label in enumerate(
            [f"best ({best:.4g})", "", "median rank", "", f"worst ({worst:.4g})"])], "bar") + (
        '<p class="note">Colour: rank by score. "n/a": the hyperparameter was inactive in '
        "that trial.</p>") + (sample_note(search) if len(ranked) == len(
            [t for t in search.trials if t.score is not None]) else
            f'<p class="note">Showing {len(ranked):,} of {len(search.overall.goodness):,} '
            "scored trials: the best and an even sample of the rest.</p>")


def curves_section(search: Search) -> str:
    if not any(sum(v is not None for _, v in c) >= 2 for c in search.curves.values()):
        return sentence(f"No curve to draw: none of the best trials has values of "
                        f"{search.metric} at two or more steps.")
    points = [(s, v) for curve in search.curves.values() for s, v in curve]
    values = [v for _, v in points if v is not None]
    f = Frame(numeric_axis(min(s for s, _ in points), max(s for s, _ in points), pad=0.01,
                           integer=True),
              numeric_axis(min(values), max(values), pad=0.05), width=WIDE)
    out, keys = [f.axes("step", search.metric)], []
    by_id = {t.trial_id: t for t in search.trials}
    for colour, (tid, curve) in zip(LINE_COLOURS, search.curves.items()):
        trial = by_id[tid]
        label = f"trial {tid} (score {fmt_value(trial.score)})"
        pts = [None if v is None else f.point(s, v)[:2] for s, v in curve]
        out.append(path(path_d(pts), colour, 2, label))
        for (s, v), p in zip(curve, pts):
            if p is not None and (len(curve) <= 25 or s == trial.best_step):
                out.append(circle(*p, 4 if s == trial.best_step else 2.5, colour,
                                  f"{label}: step {s}, {v:.6g}"))
        keys.append((colour, label))
    return svg(f.width, f.height, out, "metric curves") + legend(keys) + (
        f'<p class="note">Mean {esc(search.metric)} per step in each trial\'s last run; the '
        "larger dot marks its best step.</p>")


def timeline_section(search: Search) -> str:
    if not search.runs:
        return sentence("No trial has started yet.")
    t0 = min(r.start for r in search.runs)
    span = max(r.end for r in search.runs) - t0
    unit, scale = next((u, s) for u, s, over in [("hours", 3600.0, 7200), ("minutes", 60.0, 180),
                                                 ("seconds", 1.0, 1), ("milliseconds", 1e-3, -1)]
                       if span > over)
    workers = sorted({r.tuner_id for r in search.runs}, key=natural)
    y = category_axis(reversed(workers))
    left = min(190.0, 16 + CHAR_PX * max(len(w) for w in workers))
    f = Frame(numeric_axis(0, span / scale if span > 0 else 1), y, width=WIDE, left=left,
              height=58 + 30 * len(workers))
    out = [f.axes(f"{unit} since the first run started ("
                  f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(t0))} UTC)", "")]
    for r in sorted(search.runs, key=lambda r: r.status != "COMPLETED"):  # short fails on top
        x0, yc, _ = f.point((r.start - t0) / scale, r.tuner_id)
        x1 = f.px(f.x.unit((r.end - t0) / scale) or 0.0)
        w = max(x1 - x0, 3.0)
        out.append(rect(x0, yc - 9, w, 18, STATUS_COLOURS.get(r.status, "#000"),
                        f"trial {r.trial_id} on {r.tuner_id}: {r.status} after "
                        f"{r.end - r.start:.3g} s"))
        if w > CHAR_PX * len(r.trial_id) + 4:
            out.append(text(x0 + w / 2, yc + 4, r.trial_id, extra=' class="inbar"'))
    statuses = sorted({r.status for r in search.runs})
    shown = "" if len(search.runs) == search.overall.runs else (
        f" Showing {len(search.runs):,} of {search.overall.runs:,} runs, an even sample in "
        "order of start.")
    return svg(f.width, f.height, out, "status timeline") + legend(
        [(STATUS_COLOURS.get(s, "#000"), RUN_ENDS.get(s, s)) for s in statuses], "bar") + (
        '<p class="note">One bar per run of a trial, coloured by how that run ended.'
        f"{shown}</p>")


def trials_section(search: Search, database: str = "DB") -> str:
    if not search.trials:
        return sentence("This project has no trials yet.")
    names = list(search.axes)
    best = search.ranked()[0].trial_id if search.ranked() else None
    head = ["trial", "status", "score", "best step", "worker", "runs", "seconds", *names,
            "message"]
    shown, note = search.trials, ""
    if search.sampled:  # the best, and the way to every trial
        shown = search.ranked()[:TABLE_ROWS]
        command = f"hpstore export {shlex.quote(database)} -o trials.csv"
        note = (f'<p class="note">The {len(shown):,} best of {search.total:,} trials, best '
                f"first. Every trial: <code>{esc(command)}</code> (CSV; --format json or "
                "jsonl), or <code>hpstore trials</code> and <code>hpstore sql</code>.</p>")
    rows = []
    for t in shown:
        cells = [t.trial_id, t.status, "" if t.score is None else f"{t.score:.6g}",
                 t.best_step, t.tuner_id, t.runs, None if t.seconds is None else
                 f"{t.seconds:.3g}", *(fmt_value(t.values[n]) if n in t.values else None
                                       for n in names)]
        tds = "".join(f"<td>{'' if c is None else esc(fit(str(c), CELL_CHARS))}</td>"
                      for c in cells)
        msg = (f'<td title="{esc(fit(t.message, TITLE_CHARS))}">'
               f"{esc(last_line(t.message) or '')}</td>") if t.message else "<td></td>"
        cls = f' class="best s-{esc(t.status)}"' if t.trial_id == best else \
            f' class="s-{esc(t.status)}"'
        rows.append(f"<tr{cls}>{tds}{msg}</tr>")
    return (note + "<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


SECTIONS = [
    ("history", "Optimisation history", history_section),
    ("hyperparameters", "Score against each hyperparameter", hyperparameter_section),
    ("parallel", "Parallel coordinates", parallel_section),
    ("curves", "Metric per step of the best trials", curves_section),
    ("timeline", "Runs per worker", timeline_section),
    ("trials", "Trials", trials_section),
]

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;
 margin:24px auto;max-width:1240px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;
 border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555;margin:2px 0}.empty{color:#777;font-style:italic}.note{color:#666;font-size:12px}
svg.plot{display:block;max-width:100%;height:auto;overflow:visible}
svg text{font:11px sans-serif;fill:#333}svg text.title{font-weight:600}
svg text.tick{font-size:10px;fill:#555;paint-order:stroke;stroke:#fff;stroke-width:3px}
svg text.inbar{fill:#fff;font-size:10px}
.grid{stroke:#ececec}.axis{stroke:#999}.frame{fill:none;stroke:#aaa}
div.plots{display:flex;flex-wrap:wrap;gap:10px}figure{margin:0}
figcaption{font-weight:600;font-size:13px;max-width:300px;overflow-wrap:anywhere}
.legend{display:flex;flex-wrap:wrap;gap:14px;font-size:12px;margin:4px 0 0 8px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:5px}
.legend i.bar{width:18px;border-radius:2px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:12px}th,td{padding:3px 8px;border-bottom:1px solid
 #eee;text-align:left;white-space:nowrap;max-width:360px;overflow:hidden;text-overflow:ellipsis}
th{background:#f4f4f4;position:sticky;top:0}tr.best{background:#fff6d5}
tr.s-FAILED td:nth-child(2){color:#d62728}tr.s-INVALID td:nth-child(2){color:#d9730d}
"""


def render_page(search: Search, database: str) -> str:
    """The whole HTML document."""
    counts = search.overall.counts
    ranked = search.ranked()
    best = (f"Best: trial {ranked[0].trial_id}, score {ranked[0].score:.6g}, "
            + ", ".join(f"{k}={fmt_value(v)}" for k, v in ranked[0].values.items())
            if ranked else "No trial has a score yet.")
    body = [f"<h1>hpstore report: {esc(search.name)}</h1>",
            f'<p class="meta">File {esc(database)}; objective {esc(search.objective_text)}; '
            f"generated {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}.</p>",
            f'<p class="meta">Trials: {search.total}'
            + esc("".join(f", {s} {n}" for s, n in sorted(counts.items()))) + ".</p>",
            f'<p class="meta">{esc(fit(best, TITLE_CHARS))}</p>']
    if search.sampled:
        body.append(f'<p class="meta">Showing {len(search.trials):,} of {search.total:,} '
                    f"trials in the plots (the best and an even sample of the rest) and the "
                    f"{min(TABLE_ROWS, len(ranked)):,} best in the table; `hpstore export` "
                    "writes every trial.</p>")
    for i, (key, title, build) in enumerate(SECTIONS, 1):
        part = trials_section(search, database) if key == "trials" else build(search)
        body.append(f'<section id="{key}"><h2>{i}. {title}</h2><div class="scroll">'
                    f"{part}</div></section>")
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>hpstore report: {esc(search.name)}</title><style>{STYLE}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")


def main(argv: list[str] | None = None) -> int:
    parser = tool_parser("report", __doc__)
    add_output_options(parser, "report.html")
    args = parser.parse_args(argv)
    check_output(args.output, database=args.database, force=args.force)  # before the work
    conn = connect_readonly(args.database)
    try:
        search = load_search(conn, args.project)
    finally:
        conn.close()
    write_output(args.output, render_page(search, args.database), database=args.database,
                 force=args.force)
    print(terminal_text(f"Wrote {args.output}: project {search.name!r}, "
                        f"{search.total} trial(s)."))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
