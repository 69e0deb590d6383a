"""The dashboard's plots, drawn by the report's drawing (``hpstore.report``): its sections for
one project, and two more made of the same pieces: two projects' histories overlaid, and
one trial's metrics per step.

Everything the file holds (names, values, messages) goes through the report's ``esc`` into
text and attributes, never into markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hpstore.dashboard.live import LiveProject
from hpstore.report import page
from hpstore.report.data import summarise
from hpstore.report.scales import finite, fmt_value, numeric_axis, score_axis
from hpstore.report.svg import Frame, circle, esc, legend, marker, path, path_d, svg
from hpstore.store.records import TrialRecord

#: (key, title, drawing) of each plot of a project, in page order
SECTIONS = [
    ("history", "Optimisation history", page.history_section),
    ("hyperparameters", "Score against each hyperparameter", page.hyperparameter_section),
    ("parallel", "Parallel coordinates", page.parallel_section),
    ("curves", "Learning curves", page.curves_section),
    ("timeline", "Runs per worker", page.timeline_section),
]
PAIR_COLOURS = ("#1f77b4", "#e6550d")
COMPARE_POINTS = 1500  # score dots of each project in the overlaid history
CURVE_POINTS = 1000  # points of one line of a trial's metric


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def project_plots(live: LiveProject, selected: Sequence[TrialRecord] = ()) -> dict[str, str]:
    """Each section's HTML (inline SVG, legends, notes), by key."""
    search = live.search(selected)
    out = {key: draw(search) for key, _, draw in SECTIONS}
    if selected:
        out["curves"] = note("The trials selected in the table (at most five).") + out["curves"]
    elif search.curves:
        out["curves"] = note("The best trials; select trials in the table to draw theirs.") + \
            out["curves"]
    if live.runs.cut and search.runs:
        out["timeline"] += note(f"The last {len(live.runs.done):,} runs that ended, and the "
                                "running ones; `hpstore report` draws every run.")
    return out


def spread(points: list[Any], limit: int) -> list[Any]:
    """At most ``limit`` of ``points``, evenly spread, the first and last kept."""
    if len(points) <= limit:
        return points
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def compare_plot(first: LiveProject, second: LiveProject) -> str:
    """Two projects' optimisation histories on one plot: each trial's score (a sample past
    COMPARE_POINTS) and the best so far, by trial number."""
    series = []
    for live in (first, second):
        light = live.light()
        scored = [(n, sc) for n, _, sc in light if sc is not None]
        series.append((live, spread(scored, COMPARE_POINTS),
                       summarise(light, live.direction, 0).best_line))
    if not any(len(dots) >= 2 for _, dots, _ in series):
        return page.sentence("Neither project has two scored trials yet.")
    values = [sc for _, dots, line in series for sc in [*(v for _, v in dots),
                                                       *(v for _, v in line)]]
    last = max(max((n for _, dots, _ in series for n, _ in dots), default=0), 1)
    direction = first.direction if first.direction == second.direction else "min"
    f = Frame(numeric_axis(-0.5, last + 0.5, integer=True), score_axis(values, direction),
              width=page.WIDE)
    out = [f.axes("trial number", "score")]
    keys = []
    for colour, (live, dots, line) in zip(PAIR_COLOURS, series):
        name = live.record.name
        for n, sc in dots:
            x, y, edge = f.point(n, sc)
            tip = f"{name}: trial number {n}, score {sc:.6g}"
            out.append(circle(x, y, 2.5, colour, tip) if edge is None
                       else marker(x, y, colour, tip, edge))
        if line:
            steps: list[tuple[float, float]] = []
            for n, best in line:
                x, y, _ = f.point(n, best)
                y = min(max(y, f.top), f.height - f.bottom)
                steps += [(x, steps[-1][1]), (x, y)] if steps else [(x, y)]
            steps.append((f.px(1.0), steps[-1][1]))
            out.append(path(path_d(steps), colour, 2.5, f"{name}: best so far"))
        keys.append((colour, f"{name} ({live.objective_text}): "
                             f"{live.total():,} trials, best so far as a line"))
    body = svg(f.width, f.height, out, "optimisation histories compared") + legend(keys)
    if first.direction != second.direction:
        body += note("The two objectives point in different directions; each line is the "
                     "best so far in its own direction.")
    if any(len(dots) < sum(1 for _, _, sc in live.light() if sc is not None)
           for live, dots, _ in series):
        body += note(f"Each project's dots are an even sample of at most {COMPARE_POINTS:,} "
                     "scores; the lines follow every trial.")
    return body


def trial_plot(history: Sequence[Sequence[Any]]) -> str:
    """One trial's metrics per step (rows of ``queries.step_means``): a plot per metric, a
    line per run, the last run drawn last."""
    metrics: dict[str, dict[int, list[tuple[int, float | None]]]] = {}
    for run, metric, step, mean, _ in history:
        metrics.setdefault(metric, {}).setdefault(run, []).append((step, finite(mean)))
    if not metrics:
        return page.sentence("This trial has reported no metric yet.")
    figures = []
    for metric, runs in metrics.items():
        points = [(s, v) for line in runs.values() for s, v in line if v is not None]
        if not points:
            figures.append(f"<figure><figcaption>{esc(metric)}</figcaption>"
                           + page.sentence("No finite value.") + "</figure>")
            continue
        f = Frame(numeric_axis(min(s for s, _ in points), max(s for s, _ in points), pad=0.02,
                               integer=True),
                  numeric_axis(min(v for _, v in points), max(v for _, v in points), pad=0.06),
                  width=520, height=240)
        out, keys = [f.axes("step", metric)], []
        for i, (run, line) in enumerate(sorted(runs.items())):
            colour = page.LINE_COLOURS[i % len(page.LINE_COLOURS)]
            shown = spread(line, CURVE_POINTS)
            pts = [None if v is None else f.point(s, v)[:2] for s, v in shown]
            out.append(path(path_d(pts), colour, 2, f"run {run}"))
            if len(shown) <= 40:
                out += [circle(*p, 2.5, colour, f"run {run}, step {s}: {fmt_value(v)}")
                        for (s, v), p in zip(shown, pts) if p is not None]
            keys.append((colour, f"run {run}" + ("" if len(shown) == len(line) else
                                                 f" ({len(shown):,} of {len(line):,} steps)")))
        figures.append(f"<figure><figcaption>{esc(metric)}</figcaption>"
                       f"{svg(f.width, f.height, out, f'{metric} per step')}"
                       f"{legend(keys)}</figure>")
    return f'<div class="plots">{"".join(figures)}</div>'
