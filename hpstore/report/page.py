"""The report page: one section per plot, the trials table, and the page around them."""

from __future__ import annotations

import shlex
import time

from hpstore.queries import hp_titles
from hpstore.rendering import message_line
from hpstore.report.data import BEST_KEPT, Search, TrialInfo
from hpstore.report.scales import (
    CHAR_PX,
    Axis,
    category_axis,
    fit,
    fmt_value,
    numeric_axis,
    score_axis,
    score_colour,
)
from hpstore.report.svg import (
    Frame,
    circle,
    esc,
    jitter,
    legend,
    line,
    marker,
    natural,
    path,
    path_d,
    rect,
    svg,
    text,
)

STATUS_COLOURS = {"COMPLETED": "#2ca02c", "FAILED": "#d62728", "INVALID": "#ff7f0e",
                  "IDLE": "#8c8c8c", "STOPPED": "#9467bd", "RUNNING": "#1f77b4"}
RUN_ENDS = {"IDLE": "IDLE (interrupted, runs again)", "INVALID": "INVALID (retried or failed)",
            "RUNNING": "RUNNING (drawn up to the last value recorded)"}
LINE_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]
DOT, BEST_LINE = "#1f77b4", "#e6550d"
TABLE_ROWS = 200  # rows of the trials table past MAX_POINTS trials: the best
#: cells of the trials table at most, however many hyperparameters (2,000 trials of 600
#: made a page of 24 MB): past them, the best TABLE_ROWS rows or as many as fit
TABLE_CELLS = 100_000
SCATTER_MARKERS = 8000  # markers in all the score-against-hyperparameter plots together
PARALLEL_VERTICES = 40_000  # points of all the lines of the parallel coordinates together
CELL_CHARS, TITLE_CHARS = 120, 2000  # a table cell's text, a message's tooltip
WIDE = 1080  # px, the wide plots




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
    if steps:  # (no line while no trial has completed: stopped ones do not compete)
        steps.append((f.px(1.0), steps[-1][1]))
        out.append(path(path_d(steps), BEST_LINE, 2))
    for t in search.trials:
        if t.score is not None:
            x, y, edge = f.point(t.number, t.score)
            out.append(marker(x, y, DOT, f"trial {t.trial_id}: {t.score:.6g}", edge))
        elif not t.retired:  # no score: a status-coloured tick under the plot
            x, y = f.px(f.x.unit(t.number) or 0.0), f.height - f.bottom
            out.append(path(f"M{x:.1f},{y - 7:.1f}V{y:.1f}", STATUS_COLOURS.get(t.status, "#000"),
                            2.5, f"trial {t.trial_id}: {t.status}, no score"))
    unscored = sorted({t.status for t in search.trials if t.score is None and not t.retired})
    note = sample_note(search)
    if note:
        note = note[:-4] + " The best-so-far line follows every completed trial.</p>"
    return svg(f.width, f.height, out, "optimisation history") + legend(
        [(DOT, "score of a trial"), (BEST_LINE, "best so far (completed trials)")]
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
    # the best kept: a quarter of each plot when cut here, else those of the trials loaded
    best_kept = (per_plot // 4 if len(scored) > per_plot
                 else min(BEST_KEPT, len(search.overall.goodness)))
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
                 f"{best_kept:,} best and an even sample of the rest.</p>")
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
    # (an end can come before its start, or before t0, when workers' clocks disagree or
    # one was stepped back: the span is never below 0)
    span = max(0.0, max(r.end for r in search.runs) - t0)
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
                        + (f"{r.end - r.start:.3g} s" if r.end > r.start else
                           "an unknown time (its end was written by a clock behind its "
                           "start's)" if r.end < r.start else
                           # (a run imported from KerasTuner, whose ends are not recorded:
                           # its log gives the end its start; a real run takes some time)
                           "an unknown time (its end was not recorded)")))
        if w > CHAR_PX * len(r.trial_id) + 4:
            out.append(text(x0 + w / 2, yc + 4, r.trial_id, extra=' class="inbar"'))
    statuses = sorted({r.status for r in search.runs})
    shown = "" if len(search.runs) == search.overall.runs else (
        f" Showing {len(search.runs):,} of {search.overall.runs:,} runs, an even sample of "
        "each worker's in order of start.")
    return svg(f.width, f.height, out, "status timeline") + legend(
        [(STATUS_COLOURS.get(s, "#000"), RUN_ENDS.get(s, s)) for s in statuses], "bar") + (
        '<p class="note">One bar per run of a trial, coloured by how that run ended.'
        f"{shown}</p>")


def trials_section(search: Search, database: str = "DB") -> str:
    if not search.trials:
        return sentence("This project has no trials yet.")
    names = list(search.axes)
    best = top.trial_id if (top := search.best()) is not None else None
    own = ["trial", "status", "score", "best step", "worker", "runs", "seconds", "note",
           "message"]
    head = [*own[:7], *hp_titles(names, own), *own[7:]]
    shown, note = search.trials, ""
    limit = TABLE_ROWS if search.sampled else max(TABLE_ROWS, TABLE_CELLS // len(head))
    if len(shown) > limit:  # the best, and the way to every trial
        shown = search.ranked()[:limit]
        command = f"hpstore export {shlex.quote(database)} -o trials.csv"
        note = (f'<p class="note">The {len(shown):,} best of {search.total:,} trials, best '
                f"first. Every trial: <code>{esc(command)}</code> (CSV; --format json or "
                "jsonl), or <code>hpstore trials</code> and <code>hpstore sql</code>.</p>")
    rows = []
    for t in shown:
        status = f"{t.status} (retired)" if t.retired else t.status
        cells = [t.trial_id, status, "" if t.own_score is None else f"{t.own_score:.6g}",
                 t.best_step, t.tuner_id, t.runs, None if t.seconds is None else
                 f"{t.seconds:.3g}", *(fmt_value(t.values[n]) if n in t.values else None
                                       for n in names), t.note]
        tds = "".join(f"<td>{'' if c is None else esc(fit(str(c), CELL_CHARS))}</td>"
                      for c in cells)
        msg = (f'<td title="{esc(fit(t.message, TITLE_CHARS))}">'
               f"{esc(message_line(t.message) or '')}</td>") if t.message else "<td></td>"
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
    ranked, top = search.ranked(), search.best()
    best = (f"Best: trial {top.trial_id}, score {top.score:.6g}, "
            + ", ".join(f"{k}={fmt_value(v)}" for k, v in top.values.items())
            if top is not None and top.score is not None else
            "No trial has completed with a score yet.")
    body = [f"<h1>hpstore report: {esc(search.name)}</h1>",
            f'<p class="meta">File {esc(database)}; objective {esc(search.objective_text)}; '
            f"generated {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}.</p>",
            f'<p class="meta">Trials: {search.total}'
            + esc("".join(f", {s} {n}" for s, n in sorted(counts.items()))) + ".</p>",
            f'<p class="meta">{esc(fit(best, TITLE_CHARS))}</p>']
    if search.stopped_early:
        body.append(f'<p class="meta">Stopped early: {esc(search.stopped_early)}.</p>')
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
