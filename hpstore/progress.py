"""What a running search prints: one line per finished trial and, on a terminal, a live
status line (done / max, running trials per worker, best so far, elapsed, time left).

Everything shown is read from the search file, so the same display works for one
process and for a parent watching its worker processes. When output is not a terminal
no control characters are written: logs get the per-trial lines only.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

from hpstore import queries
from hpstore.rendering import cut_to_width, message_line, redraws, terminal_text, write_text
from hpstore.store.contract import ProjectStore
from hpstore.store.records import BOOKKEEPING


def _fmt_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _fmt_score(score: float | None) -> str:
    return "-" if score is None else f"{score:.6g}"


_LONG_VALUE = 60  # a value longer than this is described by its length, not shown


def _fmt_value(name: str, value: Any) -> str:
    name = terminal_text(name)  # (a name is the script's, or another's in a shared file)
    if isinstance(value, float):
        return f"{name}={value:.4g}"
    text = str(value)
    if len(text) > _LONG_VALUE or not text.isprintable():
        text = repr(value)
        if len(text) > _LONG_VALUE:
            text = f"<{type(value).__name__} of {len(text)} characters>"
    return f"{name}={text}"


def _fmt_values(values: dict[str, Any], width: int = 70) -> str:
    """``name=value`` pairs up to about ``width`` characters, cut between two values, never
    inside one: what does not fit is counted (``... (+3 more)``)."""
    items = [_fmt_value(k, v) for k, v in values.items() if k not in BOOKKEEPING]
    shown: list[str] = []
    length = 0
    for item in items:
        # the first value is always shown, whatever its length, so a line names something
        if shown and length + 2 + len(item) > width:
            break
        shown.append(item)
        length += len(item) + (2 if len(shown) > 1 else 0)
    rest = len(items) - len(shown)
    return ", ".join(shown) + (f", ... (+{rest} more)" if rest else "")


def _clip(text: str, width: int) -> str:
    """``text``, or as much of it as takes ``width - 3`` columns of the terminal and "..."
    to show it was cut (a CJK character takes two: a line cut by characters would wrap,
    and clearing it would then leave its first row behind)."""
    return cut_to_width(text, width, "...")


#: reads of the log and the counts, while workers keep changing them, before one is used
_TRIES = 5


class OutputClosed(KeyboardInterrupt):
    """The reader of the display's pipe closed it, in a search told to stop then (``hpstore
    demo | head``): a KeyboardInterrupt, so the search stops as at Ctrl-C, its running
    trials handed back."""


class Progress:
    """Prints the progress of one project by reading its store.

    Args:
        store: the project's store (read only here).
        direction: "min" or "max", for "best so far".
        verbose: 0 prints nothing; 1 prints trial lines and the live line.
        stream: where to print (stdout by default).
    """

    def __init__(self, project: ProjectStore, direction: str, verbose: int = 1,
                 stream: TextIO | None = None, *, stop_when_closed: bool = False) -> None:
        self.project = project
        self.direction = direction
        #: raise OutputClosed when a reader closes the pipe the display writes to
        self.stop_when_closed = stop_when_closed
        self.verbose = verbose
        # sys.stdout is None in a script started with its output closed (`>&-`, a daemon):
        # nothing is shown then, and the search runs as usual
        self.stream: TextIO | None = stream or sys.stdout
        if self.stream is None:
            self.verbose = verbose = 0
        self.live = verbose > 0 and redraws(self.stream)
        self.started = time.monotonic()
        # Trials ended for good, as of log entry _counted_to: counted once here, then kept
        # from the log's changes (counted at every poll, twice a trial, it read every
        # trial: 18 ms a trial at 80,000, 50 times the trial itself)
        self._counted_to, self._done = self._count_as_of_one_moment()
        self._last_transition = self._counted_to
        self._done_at_start = self._finished()
        self._best_score, _ = self._best()
        self._status_shown = False
        #: the highest count of finished trials shown: what is shown never steps back
        self._shown = self._done_at_start

    def _finished(self) -> int:
        # trials added with a result that do not count towards max_trials are not shown
        return max(0, self._done - self.project.record().uncounted)

    def _count_as_of_one_moment(self) -> tuple[int, int]:
        """(the log's last entry, trials ended for good then), read again while the log
        moved under the reads."""
        for _ in range(_TRIES):
            before = self.project.last_transition()
            done = queries.done_count(self.project.counts_by_status())
            if self.project.last_transition() == before:
                break
        return before, done

    def _best(self) -> tuple[float | None, dict[str, Any]]:
        best = queries.best_trial(self.project, self.direction)
        return (None, {}) if best is None else (best.score, best.values)

    def _write(self, text: str) -> None:
        """Write and flush; a display that cannot show the text never stops the search.
        A character its encoding lacks (a name in a C locale, PYTHONIOENCODING=ascii) is
        shown as an escape, as the hpstore tools do; a closed or broken stream ends the
        display."""
        if self.stream is None:
            return
        try:
            write_text(self.stream, text)
            self.stream.flush()
        except BrokenPipeError:  # its reader is gone (piped into head, say)
            self.verbose, self.live = 0, False
            if self.stop_when_closed:
                raise OutputClosed from None
        except (OSError, ValueError):  # (ValueError: the stream was closed)
            self.verbose, self.live = 0, False

    def _print(self, text: str) -> None:
        if self.verbose <= 0:
            return
        if self._status_shown:
            self._write("\r\x1b[2K")  # clear the live line before a permanent one
            self._status_shown = False
        self._write(text + "\n")

    def message(self, text: str) -> None:
        """Print a line of its own (kept in logs), its control characters but line breaks
        escaped: it may quote the search's names or another worker's tuner id."""
        self._print(terminal_text(text, keep_newlines=True))

    def poll(self) -> None:
        """Print a line for each trial that ended since the last poll, then the live line."""
        if self.verbose <= 0:
            return
        events, finished = self._events_and_count()
        total = self.project.record().max_trials
        # Counts and best as they stood when each trial ended, not as they stand now.
        done = finished - sum(e.status in queries.DONE for e in events)
        for event in events:
            self._last_transition = max(self._last_transition, event.seq)
            status, score, message = event.status, event.score, event.message
            done += status in queries.DONE
            # never below a count shown before (a trial that left the results meanwhile)
            done = self._shown = max(done, self._shown)
            if status == "COMPLETED" and score is not None and queries.better(
                    score, self._best_score, self.direction):
                self._best_score = score
            best = self._best_score
            count = f"{done}/{total}" if total else f"{done}"
            line = (f"[{_fmt_seconds(time.monotonic() - self.started):>6}] trial "
                    f"{event.trial_id} {status:<9} "
                    f"score={_fmt_score(score if status in ('COMPLETED', 'STOPPED') else None)}"
                    f" best={_fmt_score(best)} ({count}) {terminal_text(event.tuner_id or '')}: "
                    f"{_fmt_values(dict(event.values))}")
            shown = message_line(message, 200)  # a traceback's exception, escaped
            if status in ("IDLE", "INVALID", "FAILED") and shown:
                line += f"\n         {shown}"
            self._print(line)
        if self.live:
            self._shown = max(finished, self._shown)
            self._status_line(self._shown)

    def _events_and_count(self) -> tuple[list[queries.Event], int]:
        """The status changes since the last poll and the count of finished trials after
        them, both from the same entries of the status log (read apart, a trial that ended
        between the two reads was in the count and not among the changes: the lines
        numbered from that count ran one ahead per such trial)."""
        changes = queries.status_changes(self.project, self._counted_to)
        if changes:
            self._done += queries.done_change(changes)
            self._counted_to = changes[-1].seq
        events = queries.events_of(
            self.project, [c for c in changes if c.seq > self._last_transition])
        return events, self._finished()

    def _status_line(self, done: int) -> None:
        total = self.project.record().max_trials
        running = self.project.running()
        best, values = self._best()
        elapsed = time.monotonic() - self.started
        made = done - self._done_at_start
        left = ""
        if total and made > 0 and done < total:
            left = f" | left ~{_fmt_seconds(elapsed / made * (total - done))}"
        workers = " ".join(terminal_text(f"{r.tuner_id}:{r.trial_id}") for r in running[:6])
        line = (f"{done}/{total or '?'} done | running {len(running)} [{workers}] | best "
                f"{_fmt_score(best)} {_fmt_values(values, 40)} | {_fmt_seconds(elapsed)}{left}")
        self._write("\r\x1b[2K" + _clip(line, self._columns()))
        self._status_shown = True

    def _columns(self) -> int:
        """The width the live line may take: one less than the terminal's (a line as wide
        as the terminal wraps, and clearing it then leaves its first row behind)."""
        try:
            assert self.stream is not None  # (live only with a stream)
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError, AttributeError):  # not a terminal after all, closed
            return 200
        if columns <= 0:  # a terminal that says no width (a pty before its first resize)
            return 200
        return max(20, min(200, columns - 1))

    def close(self) -> None:
        if self._status_shown:
            self._write("\r\x1b[2K")
            self._status_shown = False

    @contextlib.contextmanager
    def beside_output(self) -> Iterator[None]:
        """While a trial runs in this process: what it prints to ``sys.stdout`` or
        ``sys.stderr`` clears the live line first, so an epoch's line starts a line of its
        own rather than running on from the live line's end."""
        if not self.live:
            yield
            return
        saved = sys.stdout, sys.stderr
        if saved[0] is not None:
            sys.stdout = _ClearsLiveLine(saved[0], self)  # type: ignore[assignment]
        if saved[1] is not None:
            sys.stderr = _ClearsLiveLine(saved[1], self)  # type: ignore[assignment]
        try:
            yield
        finally:
            # (only ours are put back: a trial that set streams of its own keeps them)
            if isinstance(sys.stdout, _ClearsLiveLine):
                sys.stdout = saved[0]
            if isinstance(sys.stderr, _ClearsLiveLine):
                sys.stderr = saved[1]


class _ClearsLiveLine:
    """A stream that clears the live line of ``progress`` before it writes; anything else
    is the stream's own."""

    def __init__(self, stream: Any, progress: Progress) -> None:
        self._stream, self._progress = stream, progress

    def write(self, text: str) -> Any:
        if text and self._progress._status_shown:
            self._progress.close()
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
