"""SVG pieces of the report's plots: elements, a plot frame with its axes, legends."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import Any, NamedTuple

from hpstore.report.scales import CHAR_PX, Axis, fit


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
