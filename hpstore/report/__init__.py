"""The HTML report of a search: one self-contained page of inline SVG, loaded through the
store contract (``data``), drawn (``scales``, ``svg``) and laid out (``page``)."""

from hpstore.report.data import MAX_POINTS, Search, load_search
from hpstore.report.page import STATUS_COLOURS, TABLE_ROWS, WIDE, render_page
from hpstore.report.scales import axis_for, log_ticks, nice_ticks, score_axis
from hpstore.report.svg import esc

__all__ = ["MAX_POINTS", "STATUS_COLOURS", "TABLE_ROWS", "WIDE", "Search", "axis_for", "esc",
           "load_search", "log_ticks", "nice_ticks", "render_page", "score_axis"]
