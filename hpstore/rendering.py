"""Rows read from a search file as text: aligned tables for a terminal, CSV for
spreadsheets, JSON for programs.

Everything here treats the file's contents as hostile. Names, values and messages may hold
escape sequences (``ESC [ 2 J`` clears a terminal, ``ESC ] 8`` makes links) or line breaks
that would break a table: on a terminal each control character is shown as an escape such
as ``\\x1b``. A CSV cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return is a formula to a spreadsheet: it gets a leading ``'`` (OWASP's rule for CSV
injection) unless ``raw`` output is asked for. JSON escapes control characters itself.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import io
import itertools
import json
import math
import os
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

# C0 and C1 controls, DEL, the line and paragraph separators, and the bidirectional
# overrides and isolates that make a terminal show text in another order than it is.
# (Unicode's Bidi_Control characters among them: the marks too, which reorder what
# follows as the overrides do)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                      "\u2066-\u2069]")
_CONTROL_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028"
                                  "\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# A spreadsheet reads a cell starting with one of these as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# ...but a plain number such as -1.5 or +3e-4 is a number to it, never a formula.
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    code = ord(ch)
    return _NAMED.get(ch) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def terminal_text(text: Any, *, keep_newlines: bool = False) -> str:
    """``text`` safe to print on a terminal: every control character shown as an escape
    (``\\x1b``, ``\\n``...). With ``keep_newlines``, line breaks stay line breaks (for a
    traceback printed on its own lines)."""
    pattern = _CONTROL_BUT_NEWLINE if keep_newlines else _CONTROL
    return pattern.sub(_escape, str(text))


_TRACEBACK = re.compile(r"(  \+ Exception Group )?Traceback \(most recent call last\):")


def message_line(message: Any, width: int = 80) -> str | None:
    """What one line of a table shows of a message, or None for no message: a
    traceback's exception (its type and message, with any further lines of that message
    and its notes), or a message of another kind whole; control characters and line
    breaks escaped (``\\n``), cut to ``width`` columns of a terminal."""
    if message is None:
        return None
    # split at line feeds only: a stray CR, form feed or separator inside a line is text
    # (escaped when shown), not the end of it
    lines = [line.rstrip("\r") for line in str(message).split("\n") if line.strip()]
    if not lines:
        return None
    text = terminal_text("\n".join(_exception(lines) or lines).strip())
    return cut_to_width(text, width)


def _exception(lines: list[str]) -> list[str] | None:
    """The lines of a traceback's own exception, from its ``Type: message`` line on (the
    last traceback's, where exceptions were chained), or None when ``lines`` is no
    traceback."""
    headers = [i for i, line in enumerate(lines) if _TRACEBACK.fullmatch(line.rstrip())]
    if not headers:
        return None
    start = headers[-1]
    if lines[start].startswith("  +"):  # an exception group: its own line, "  | Type: ..."
        for line in lines[start + 1:]:
            inner = line[4:] if line.startswith("  | ") else None
            if inner is not None and inner[:1] not in ("", " "):
                return [inner]
        return None
    for i in range(start + 1, len(lines)):  # frames are indented; the exception is not
        if not lines[i][:1].isspace():
            return lines[i:]
    return None


def _char_width(ch: str) -> int:
    """The columns a terminal gives one character alone: 0 for a combining mark, a format
    character or a Hangul vowel or final joined to its syllable, 2 for a wide or full-width
    one (CJK, most emoji), 1 for the rest."""
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 1 if ch == "\u00ad" else 0  # (a soft hyphen is shown)
    if "\u1160" <= ch <= "\u11ff":  # (Hangul jungseong and jongseong: part of a syllable)
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


_ZWJ, _EMOJI_STYLE = "\u200d", "\ufe0f"


def _clusters(text: str) -> Iterator[tuple[int, int]]:
    """(where each character a terminal draws as one ends, its columns): a character with
    the marks after it, an emoji joined to others by zero-width joiners (a family: two
    columns), one turned to an emoji by U+FE0F (two)."""
    i, n = 0, len(text)
    while i < n:
        width = _char_width(text[i])
        i += 1
        while i < n:
            ch = text[i]
            if ch == _ZWJ and i + 1 < n:
                width = max(width, _char_width(text[i + 1]))
                i += 2
            elif ch == _EMOJI_STYLE:
                width, i = 2, i + 1
            elif _char_width(ch) == 0:
                i += 1
            else:
                break
        yield i, width


def display_width(text: str) -> int:
    """The columns ``text`` (one line, controls escaped) takes on a terminal."""
    if text.isascii():  # (the commonest case, and len() is its width)
        return len(text)
    return sum(width for _, width in _clusters(text))


def pad(text: str, width: int) -> str:
    """``text`` with spaces after it to take ``width`` columns (str.ljust counts
    characters, and a column of wide or combining ones would fall out of line)."""
    return text + " " * (width - display_width(text))


def cut_to_width(text: str, width: int, mark: str = "\u2026") -> str:
    """``text``, or as much of it as takes ``width`` columns with ``mark`` after it to
    show it was cut (nothing when even the mark does not fit). A wide character is never
    halved, and what a terminal draws as one character (a letter and its accents, an
    emoji sequence) is never cut apart."""
    if display_width(text) <= width:
        return text
    room = width - display_width(mark)
    if room < 0:
        return ""
    used, kept = 0, 0
    for end, columns in _clusters(text):
        if used + columns > room:
            break
        used, kept = used + columns, end
    return text[:kept] + mark


def cut_middle(text: str, width: int, mark: str = "\u2026") -> str:
    """``text``, or its start and its end with ``mark`` between them, in ``width``
    columns: a status line keeps what it does (its start) and how far it is (its end),
    a third of the room to the start. Cut between characters as a terminal draws them, as
    :func:`cut_to_width` cuts."""
    if display_width(text) <= width:
        return text
    room = width - display_width(mark)
    if room < 0:
        return ""
    head = cut_to_width(text, room // 3, mark="")
    room -= display_width(head)
    clusters = list(_clusters(text))
    used, start = 0, len(text)
    for k in range(len(clusters) - 1, -1, -1):
        if used + clusters[k][1] > room or (k and clusters[k - 1][0] < len(head)):
            break
        used, start = used + clusters[k][1], clusters[k - 1][0] if k else 0
    return head + mark + text[start:]


def print_text(text: str, *, flush: bool = False) -> None:
    """``print(text)``, to the standard output of the moment, a character its encoding
    cannot hold (a C locale, ``PYTHONIOENCODING=ascii``) written as its escape
    (``\\xf8``) rather than a UnicodeEncodeError after the work is done.

    Raises:
        OSError: the output cannot be written (a full disk, a closed pipe), as for print.
    """
    stream = sys.stdout
    if stream is None:  # (started with no standard output: print writes nothing either)
        return
    write_text(stream, text + "\n")
    if flush:
        stream.flush()


def write_text(stream: Any, text: str) -> None:
    """Write ``text`` to ``stream``, a character its encoding cannot hold written as its
    escape (``\\xf8``).

    Raises:
        OSError, ValueError: the stream cannot be written (a closed pipe, a closed file).
    """
    try:
        stream.write(text)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "ascii"
        stream.write(text.encode(encoding, "backslashreplace").decode(encoding))


def redraws(stream: Any) -> bool:
    """Whether ``stream`` is a terminal that takes the sequences that rewrite a line or
    clear the screen. A terminal whose ``TERM`` is ``dumb`` or unset (Emacs' shell, a CI
    job's pseudo-terminal) shows them as text: it gets plain lines, as a pipe does."""
    try:
        terminal = stream is not None and bool(stream.isatty())
    except (AttributeError, ValueError):  # (no isatty, or closed)
        return False
    term = os.environ.get("TERM")
    # (a Windows console sets no TERM, and takes the sequences since Windows 10)
    return terminal and (term not in ("", "dumb", None) or (term is None and os.name == "nt"))


def csv_cell(value: Any, *, raw: bool = False) -> Any:
    """One value as a CSV cell: numbers stay numbers, JSON values become JSON text, and
    (unless ``raw``) text a spreadsheet would run as a formula gets a leading ``'``."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        value = json.dumps(value)
    elif not isinstance(value, str):
        return value  # int, float, bool: written by the csv module as numbers
    if not raw and formula_like(value):
        return "'" + value
    return value


def formula_like(text: str) -> bool:
    """Whether an export gives ``text`` a leading ``'``: text a spreadsheet would run as a
    formula (not a plain number such as -1.5), or text that is already a ``'`` (or
    several) before one, so that reading the cell back takes exactly one away (``'=x``
    and ``=x`` were both written ``'=x``, and read back as ``=x``)."""
    bare = text.lstrip("'")
    return bare.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(bare)


def unescaped(cell: str) -> str | None:
    """A cell's text as it was before an export's leading ``'`` (see
    :func:`formula_like`), or None when the cell has none."""
    return cell[1:] if cell[:1] == "'" and formula_like(cell[1:]) else None


def unique_keys(columns: Sequence[str]) -> list[str]:
    """Column names as keys of one JSON object: a name seen before gets ``:2``, ``:3``
    (``SELECT 1 AS a, 2 AS a`` gives ``a`` and ``a:2``; nothing is dropped)."""
    seen: set[str] = set()
    keys = []
    for name in columns:
        key, n = name, 1
        while key in seen:
            n += 1
            key = f"{name}:{n}"
        seen.add(key)
        keys.append(key)
    return keys


def json_value(value: Any) -> Any:
    """A cell as standard JSON holds it: NaN as null, an infinity as "Infinity" or
    "-Infinity" (as get_state() writes them); JSON has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, (list, tuple)):  # a server's array (array_agg of a curve, say)
        return [json_value(v) for v in value]
    if isinstance(value, dict):  # a server's json column, decoded
        return {k: json_value(v) for k, v in value.items()}
    return value


def render(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "table", *,
           raw: bool = False) -> str:
    """Rows as an aligned text table, CSV, JSON (a list of objects) or JSON lines.

    A table shows control characters as escapes; CSV neutralises formulas unless ``raw``.

    Raises:
        ValueError: an unknown format.
    """
    return "".join(render_stream(columns, rows, fmt, raw=raw, lookahead=None))


#: rows a streamed table reads before it prints, to align its columns on them
LOOKAHEAD = 1_000
#: rows rendered into one piece of text (one write) when streaming
_BATCH = 500


def render_stream(columns: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str = "table",
                  *, raw: bool = False, lookahead: int | None = LOOKAHEAD) -> Iterator[str]:
    """What :func:`render` prints, in pieces, reading ``rows`` as it goes: memory holds
    about ``lookahead`` rows at most, whatever the number of rows.

    CSV, JSON and JSON lines come out exactly as :func:`render` writes them. A table is
    aligned on its titles and its first ``lookahead`` rows (None: every row, as
    :func:`render`), so a result that short is the same table; past them a wider cell
    widens its column from that row on (columns never narrow), the row staying whole on
    one line. Nothing is yielded before the first rows are read (or the last, for a
    result shorter than a batch).

    Raises:
        ValueError: an unknown format.
    """
    if fmt not in ("table", "csv", "json", "jsonl"):
        raise ValueError(f"format must be table, csv, json or jsonl; received {fmt!r}.")
    batches = _batches(rows, _BATCH)
    if fmt == "csv":
        out = io.StringIO()
        # CRLF line ends (RFC 4180): Python's writer quotes a cell holding a lone CR only
        # when CR is part of the line end, and a reader would split the row there.
        writer = csv.writer(out, lineterminator="\r\n")
        first = next(batches, [])
        writer.writerow([csv_cell(c, raw=raw) for c in columns])
        for batch in itertools.chain([first], batches):
            writer.writerows([csv_cell(v, raw=raw) for v in r] for r in batch)
            yield out.getvalue()
            out.seek(0)
            out.truncate()
        return
    if fmt in ("json", "jsonl"):
        keys = unique_keys(columns)  # a JSON object cannot hold a name twice
        indent = 1 if fmt == "json" else None
        opened = False
        for batch in batches:
            objects = [json.dumps(dict(zip(keys, map(json_value, r))), indent=indent,
                                  default=str, allow_nan=False) for r in batch]
            if fmt == "jsonl":
                yield "".join(o + "\n" for o in objects)
                continue
            # each object as json.dumps(indent=1) writes it inside a list: one space in
            text = ",\n".join(" " + o.replace("\n", "\n ") for o in objects)
            yield ("[\n" if not opened else ",\n") + text
            opened = True
        if fmt == "json":
            yield "\n]\n" if opened else "[]\n"
        return
    fit = _held_by_output()
    titles = [fit(terminal_text(c)) for c in columns]
    # a cell is cut to TABLE_CELL characters: every row is padded to the longest, so one
    # long note would make each line of the table that long (CSV and JSON keep it whole)
    ahead: list[list[str]] = []
    for batch in batches:
        ahead += ([fit(_cut(table_cell(v))) for v in r] for r in batch)
        if lookahead is not None and len(ahead) >= lookahead:
            break
    widths = [max([display_width(c)] + [display_width(r[i]) for r in ahead])
              for i, c in enumerate(titles)]
    lines = ["  ".join(pad(c, w) for c, w in zip(titles, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(pad(v, w) for v, w in zip(r, widths)).rstrip() for r in ahead]
    yield "\n".join(lines) + "\n"
    del ahead, lines
    for batch in batches:  # past the look-ahead: a wider cell widens its column from here
        lines = []
        for r in batch:
            cells = [fit(_cut(table_cell(v))) for v in r]
            widths = [max(w, display_width(v)) for w, v in zip(widths, cells)]
            lines.append("  ".join(pad(v, w) for v, w in zip(cells, widths)).rstrip())
        yield "\n".join(lines) + "\n"


def _same(text: str) -> str:
    return text


def _held_by_output() -> Callable[[str], str]:
    """What a table's cell becomes on the standard output: itself, or, in an encoding
    that cannot hold all of it (``LANG=C``, ``PYTHONIOENCODING=ascii``), with the escapes
    the stream would write, so that the columns are padded to what is shown (``日本``
    padded as two characters and shown as twelve pushed every later column along)."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    if codecs.lookup(encoding).name in ("utf-8", "utf-16", "utf-32", "gb18030"):
        return _same

    def held(text: str) -> str:
        return text.encode(encoding, "backslashreplace").decode(encoding)
    return held


def _batches(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    """``rows`` in lists of ``size``, a BLOB shown as SQL writes it (``x'00ff'``; only SQL
    a user writes makes one), in every format."""
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, size)):
        if any(type(v) is bytes for r in batch for v in r):
            batch = [[f"x'{v.hex()}'" if type(v) is bytes else v for v in r] for r in batch]
        yield batch


#: columns of a table cell at most (the rest is in --format csv or json)
TABLE_CELL = 1_000


def _cut(text: str) -> str:
    return text if len(text) <= TABLE_CELL // 2 else cut_to_width(text, TABLE_CELL)


def table_cell(value: Any, *, exact: bool = False) -> str:
    """One value as the text of a table cell, on one line, control characters escaped; a
    float to 6 significant digits, or with ``exact`` (one trial's detail) in as many as
    read back as it."""
    if value is None:
        return ""
    if type(value) is int:  # (no control character to escape: the commonest cell, fast)
        return str(value)
    if isinstance(value, float):
        return exact_number(value) if exact else f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return terminal_text(json.dumps(value, ensure_ascii=False))
    return terminal_text(value)


_JULIAN_MS = 210866760000000.0  # the Unix epoch as a Julian day, in milliseconds


def iso_time(at: float | None) -> str | None:
    """A Unix time as a file's views show it: ``2026-11-30T03:44:48.123Z`` (UTC), to the
    nearest millisecond, as SQLite's ``strftime`` rounds it (so a tool's times join with
    the views'; a server's views cut to the millisecond below)."""
    if at is None:
        return None
    # SQLite's own arithmetic (date.c, "unixepoch"): milliseconds of the Julian day, in
    # doubles, rounded half up; the offset's rounding decides the cases near a half
    millis = math.floor(at * 1000.0 + _JULIAN_MS + 0.5) - int(_JULIAN_MS)
    moment = datetime.datetime.fromtimestamp(millis // 1000, tz=datetime.UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis % 1000:03d}Z"


def exact_number(value: float) -> str:
    """A float as short as it reads back as itself: 0.001, 1e-05, but 1.0000000000000002
    and 0.0006291382312674642 in full (6 digits would show 1 and 0.000629138)."""
    short = f"{value:g}"
    return short if float(short) == value or value != value else repr(value)


# -- a search's settings and space, in words ------------------------------------------------
#: the values of a Choice that a summary line lists before "... (n values)"
SHOWN_CHOICES = 20


def show_value(value: Any) -> str:
    """A hyperparameter value as a person writes it: 0.001, relu, True (a float in the
    digits that tell it apart, as :func:`exact_number`)."""
    if isinstance(value, float):
        return exact_number(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def show_values(values: Mapping[str, Any]) -> str:
    """name=value pairs, in the order stored."""
    return ", ".join(f"{k}={show_value(v)}" for k, v in values.items()) or "(none)"


def _space_value(value: Any) -> str:
    """A value in a space's description: as :func:`show_value`, but a text that reads
    as a number, None, a bool or nothing quoted (a Choice of "1", "2" was shown as the
    numbers 1, 2, its conditions alike)."""
    if isinstance(value, str) and (value.strip() != value or not value or value in (
            "None", "True", "False") or reads_as_a_number(value)):
        return repr(value)
    return show_value(value)


def reads_as_a_number(text: str) -> bool:
    """Whether a text reads as a number (``"1"``, ``"1e3"``, ``"nan"``)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def describe_hyperparameter(class_name: str, config: Mapping[str, Any]) -> str:
    """What a hyperparameter ranges over: ``1e-05 .. 0.1 (log)``, ``a, b, c`` or ``3``."""
    default = config.get("default")
    if class_name in ("Int", "Float"):
        lo, hi = config.get("min_value"), config.get("max_value")
        text = f"{_space_value(lo)} .. {_space_value(hi)}"
        if config.get("step") is not None and not (class_name == "Int" and
                                                    config["step"] == 1):
            text += f" step {_space_value(config['step'])}"
        if config.get("sampling") not in (None, "linear"):
            text += f" ({config['sampling']})"
        if default is not None and default != lo:
            text += f", default {_space_value(default)}"
        return text
    if class_name == "Choice":
        values = list(config.get("values") or [])
        text = ", ".join(_space_value(v) for v in values[:SHOWN_CHOICES])
        if len(values) > SHOWN_CHOICES:  # (a Choice of 20,000 ids: one line of them)
            text += f", ... ({len(values):,} values)"
        if values and default is not None and default != values[0]:
            text += f"; default {_space_value(default)}"
        return text
    if class_name == "Boolean":
        return f"True, False; default {_space_value(bool(default))}"
    if class_name == "Fixed":
        return _space_value(config.get("value"))
    rest = {k: v for k, v in config.items() if k not in ("name", "conditions")}
    return ", ".join(f"{k}={_space_value(v)}" for k, v in rest.items())


def describe_conditions(conditions: Any) -> str:
    """``when model in [mlp, cnn]`` for each condition, joined by "and"."""
    parts = []
    for cond in conditions if isinstance(conditions, list) else []:
        inner = cond.get("config", {}) if isinstance(cond, Mapping) else {}
        values = inner.get("values", [])
        listed = ", ".join(_space_value(v) for v in (values if isinstance(values, list)
                                                    else [values]))
        parts.append(f"when {inner.get('name')} in [{listed}]")
    return " and ".join(parts)


_ALIGNED = 40  # the widest column space_lines aligns


def space_lines(items: Sequence[Mapping[str, Any]]) -> list[str]:
    """One aligned line per hyperparameter (a stored space entry, {"class_name",
    "config"}): name, class, range, conditions."""
    table = []
    for item in items:
        class_name, config = item["class_name"], item["config"]
        name = config.get("name", "")
        when = describe_conditions(config.get("conditions"))
        table.append([terminal_text(name), terminal_text(class_name),
                      terminal_text(describe_hyperparameter(class_name, config)),
                      terminal_text(when)])
    if not table:
        return ["  (no hyperparameters yet)"]
    # aligned up to a width: one long entry (a Choice of a hundred values) runs past it
    # alone, rather than pushing every other line's conditions hundreds of columns right
    widths = [min(max(display_width(r[i]) for r in table), _ALIGNED) for i in range(3)]
    return ["  " + "  ".join(pad(c, w) for c, w in zip(r, [*widths, 0])).rstrip()
            for r in table]
