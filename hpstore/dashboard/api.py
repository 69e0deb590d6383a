"""The dashboard's endpoints: each answers one question about the search as JSON (or, for a
download, a file), read through :mod:`hpstore.queries` and the followed projects of
:mod:`hpstore.dashboard.live`.

Every endpoint only reads. Parameters are checked here; a bad one is a :class:`Refused`
with the HTTP status and a sentence saying what to give instead.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hpstore import queries
from hpstore.dashboard import plots
from hpstore.dashboard.finished import OracleQuestion
from hpstore.dashboard.live import LiveProject
from hpstore.errors import (
    HpStoreError,
    ProjectChoiceError,
    ProjectRemovedError,
    TrialNotFoundError,
)
from hpstore.rendering import iso_time, message_line, render
from hpstore.report.page import TITLE_CHARS
from hpstore.report.scales import fit, fmt_value
from hpstore.store import file_stamp, shown
from hpstore.store.contract import Store
from hpstore.store.postgresql import is_url
from hpstore.store.records import ProjectRecord, Transition, TrialRecord
from hpstore.trial import TrialStatus

#: status changes and metric values a poll hands out at most (the page asks again at once)
POLL_LIMIT = 500
#: a project's generation grows by this with each file found at the dashboard's name (a
#: project's id stays below it; a page's number, up to 2**53, holds it exactly)
GENERATION_STRIDE = 2**32
#: rows of a page of the trials table at most
MAX_PAGE = 500
#: rows of one trial's metric history sent to the page (the plot draws every step)
HISTORY_ROWS = 2000
#: curves of selected trials drawn at most
MAX_SELECTED = 5
CELL_CHARS = 200
#: a store reading a copy of its file looks at the file at most every this many seconds,
#: and after a copy that took long, at most every SNAPSHOT_COST times what it took
SNAPSHOT_EVERY = 1.0
SNAPSHOT_COST = 20.0
#: the origin shown for a trial the search's algorithm proposed (its origin is None)
ORIGIN_ORACLE = "proposed by the search's oracle"

Params = Mapping[str, Sequence[str]]


class Refused(Exception):
    """A request the dashboard does not answer: the HTTP status and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def latest_rows(history: list[Any]) -> list[Any]:
    """At most :data:`HISTORY_ROWS` of a trial's history rows (run, metric, step, ...),
    in their order: those of its latest steps, every metric alike (the table's last rows
    were all of the metric named last)."""
    if len(history) <= HISTORY_ROWS:
        return history
    newest = sorted(range(len(history)), key=lambda i: (history[i][0], history[i][2], i))
    return [history[i] for i in sorted(newest[-HISTORY_ROWS:])]


def interval(total: int) -> float:
    """Seconds between two polls of the page: faster for small searches, whose changes
    people watch one by one."""
    return 1.0 if total < 1_000 else 2.0 if total < 10_000 else 5.0


def cell(value: Any) -> str:
    """A value as the text of a table cell."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    return fit(fmt_value(value), CELL_CHARS)


def plain(value: Any) -> Any:
    """``value`` with every non-finite float as text ("nan", "inf", "-inf"): JSON has no
    such numbers, and a browser refuses a reply that holds them."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def to_json(payload: Any) -> bytes:
    return json.dumps(plain(payload), ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode("utf-8")


def one(params: Params, name: str, default: str | None = None) -> str | None:
    values = params.get(name)
    return values[0] if values else default


def number(params: Params, name: str, default: int, *, low: int = 0,
           high: int | None = None) -> int:
    text = one(params, name)
    if text is None or text == "":
        return default
    if not re.fullmatch(r"\d{1,18}", text.strip()):
        raise Refused(400, f"{name} must be a whole number, received {text!r}.")
    value = int(text)
    if value < low or (high is not None and value > high):
        raise Refused(400, f"{name} must be between {low} and {high}, received {value}."
                      if high is not None else f"{name} must be at least {low}, "
                      f"received {value}.")
    return value


def flag(params: Params, name: str) -> bool:
    return (one(params, name) or "0").strip().lower() in ("1", "true", "yes", "on")


class Dashboard:
    """The endpoints over one open store. Not thread-safe: the server calls every method
    from the one thread that opened the store."""

    def __init__(self, store: Store, project: str | None = None,
                 opener: Callable[[], Store] | None = None) -> None:
        self.store = store
        self.default = project  # --project: the project of a request that names none
        self.opener = opener
        # whether an oracle would stop is asked of a store of its own (see finished.py)
        self.question = None if opener is None else OracleQuestion(opener)
        self._live: dict[str, LiveProject] = {}
        self._plots: dict[tuple[str, int], tuple[Any, dict[str, str]]] = {}
        # a store that reads a copy: when its file was last seen, and when to look again
        self._stamp: tuple[Any, ...] | None = None
        self._look_at = 0.0
        # the file the store reads (None for a server: its name cannot be moved), and how
        # many times the name was found naming another
        self._identity = None if is_url(store.location) else store.identity()
        self._let_go = False  # the store was closed when its file was found gone
        self._files = 0

    # -- a file of an older schema ----------------------------------------------------------
    @property
    def snapshot(self) -> bool:
        """Whether the store reads a copy made when it was opened (a file written by an
        older hpstore, upgraded in memory): it does not see what is written later."""
        return bool(getattr(self.store, "snapshot", False))  # only a SQLite file has copies

    def renew(self) -> None:
        """Before each request: a store reading a copy is opened again once its file
        changed (see :data:`SNAPSHOT_EVERY`), so the page follows a search that an hpstore
        of today resumes (its first write upgrades the file, and the store opened again
        reads the file itself) or an older one goes on writing. The positions the page
        holds stay valid: they are the file's."""
        if self.opener is not None and self._identity is not None and (
                self._let_go or self.store.identity() != self._identity):
            self._follow_the_name()
            return
        if not self.snapshot or self.opener is None or time.monotonic() < self._look_at:
            return
        stamp = file_stamp(self.store.location)  # before opening: a later write is seen next
        if stamp == self._stamp:
            self._look_at = time.monotonic() + SNAPSHOT_EVERY
            return
        begin = time.monotonic()
        fresh = self.opener()
        old, self.store = self.store, fresh
        old.close()
        self._live.clear()
        self._plots.clear()
        self._stamp = stamp
        self._look_at = time.monotonic() + max(SNAPSHOT_EVERY,
                                               SNAPSHOT_COST * (time.monotonic() - begin))

    def _follow_the_name(self) -> None:
        """The file was moved, replaced or deleted while shown: show the search now at its
        name (its projects' generations change, so every page starts from its positions).

        Raises:
            Refused: 410, there is no search at that name (until there is one again).
        """
        assert self.opener is not None
        where = self.store.location
        try:
            fresh = self.opener()
        except HpStoreError as exc:  # none there, or not a search (yet)
            # Let the old file go: open, it kept its log and index in use under the name,
            # and no new search could be made there while the dashboard ran. Closed, it is
            # opened again at the next request (the file may come back, as it was).
            self.store.close()
            self._let_go = True
            raise Refused(410, f"{where} was moved, replaced or deleted while the dashboard "
                               f"showed it ({exc}); the dashboard shows the search at that "
                               "name again once there is one.") from None
        old, self.store = self.store, fresh
        old.close()
        self._live.clear()
        self._plots.clear()
        self._stamp = None
        self._identity = fresh.identity()
        self._let_go = False
        self._files += 1

    def generation(self, live: LiveProject) -> int:
        """What a page compares to tell the project it follows from a new one: the
        project's id (a project started afresh has a new one), and the file's turn."""
        return live.record.project_id + self._files * GENERATION_STRIDE

    # -- projects -------------------------------------------------------------------------------
    def live(self, name: str | None) -> LiveProject:
        """The named project (or --project's, or the only one), followed and up to date.

        Raises:
            Refused: 404, no such project (the message lists them).
        """
        try:
            chosen = queries.choose_project(self.store, name or self.default).name
        except ProjectChoiceError as exc:
            raise Refused(404, str(exc)) from None
        return self._follow(chosen)

    def _follow(self, chosen: str, record: ProjectRecord | None = None) -> LiveProject:
        """The project named ``chosen`` (its ``record`` when just read), followed and up
        to date.

        Raises:
            Refused: 404, it was removed.
        """
        live = self._live.get(chosen)
        if live is not None:
            try:
                live.refresh()
                return live
            except ProjectRemovedError:  # started afresh: follow the new one
                del self._live[chosen]
        record = record or self.store.find_project(chosen)
        if record is None:
            raise Refused(404, f"Project {chosen!r} was removed from this "
                               f"{self.store.holder}.")
        live = self._live[chosen] = LiveProject(self.store, record, self.question)
        return live

    def summary(self, live: LiveProject, workers: int | None = None,
                gone: set[str] | None = None) -> dict[str, Any]:
        """Where a project stands, counted as ``hpstore summary`` and ``hpstore watch``
        count it: ``done`` leaves out the trials added without counting towards max_trials
        (``uncounted``), the best leaves out retired trials. ``workers`` and ``gone``: the
        file's live workers and :meth:`gone`, when already known."""
        view = live.overview()
        best = view.best
        finished = live.finished(view)
        gone = self.gone(view.running) if gone is None else gone
        stopping = live.stopping(now=finished is not None)
        return {
            "name": live.record.name, "generation": self.generation(live),
            "objective": live.objective_text, "direction": live.direction,
            "oracle": live.record.oracle_class, "max_trials": view.max_trials,
            "total": sum(view.counts.values()), "counts": view.counts, "done": view.done,
            "uncounted": live.record.uncounted, "steered": live.steered(),
            "running": len(view.running), "interrupted": len(gone), "queued": view.queued,
            "best": None if best is None else {"trial_id": best.trial_id,
                                               "score": best.score},
            "last_activity": live.last_activity,
            "stopped_early": None if not stopping.stopped else {
                "trials": stopping.stopped, "steps_saved": stopping.steps_saved,
                "said": stopping.said(),
                "full_length": stopping.full_length, "own_budget": stopping.own_budget},
            "workers": self.store.live_workers() if workers is None else workers,
            "finished": finished,
        }

    def gone(self, running: Sequence[TrialRecord]) -> set[str]:
        """The ids of the running trials whose worker is gone (killed: interrupted, run
        again when a worker asks), as ``hpstore watch`` and ``check`` tell them."""
        tokens = {t.session: t.pid for t in running if t.session is not None}
        alive = self.store.alive(tokens) if tokens else set()
        return {t.trial_id for t in running if t.session is not None and t.session not in alive}

    def projects(self, params: Params) -> dict[str, Any]:
        # each project followed from the records read here: looked up by name one by one,
        # each look-up read every project (a file of 1,000 projects answered in 10 s)
        found = [self._follow(record.name, record) for record in self.store.projects()]
        workers = self.store.live_workers()
        summaries = [self.summary(live, workers) for live in found]
        total = max([s["total"] for s in summaries] or [0])
        # (shown: a path whose bytes are not UTF-8 cannot be JSON)
        return {"location": shown(self.store.location), "now": self.store.now(),
                "projects": summaries,
                "interval": interval(total),
                "finished": bool(summaries) and all(s["finished"] for s in summaries)}

    # -- one project, live --------------------------------------------------------------------
    def poll(self, params: Params) -> dict[str, Any]:
        """Where the project stands, and what is newer than the positions the page holds:
        status changes after ``seq``, and (with ``trial``) that trial's metric values after
        ``obs``. Without positions (or with those of a project since started afresh) the
        page starts from the current ones."""
        live = self.live(one(params, "p"))
        generation = self.generation(live)
        fresh = (one(params, "seq") in (None, "") or number(params, "generation", -1)
                 != generation)
        seq = live.seq if fresh else number(params, "seq", 0)
        obs = live.obs if fresh else number(params, "obs", 0)
        changes = [] if fresh else live.project.transitions(after=seq, limit=POLL_LIMIT)
        watched = one(params, "trial")
        values: list[Any] = []
        new_obs = live.obs
        if watched and not fresh and obs < live.obs:
            batch = live.project.observations_since(obs, limit=POLL_LIMIT)
            new_obs = batch[-1][0] if batch else obs
            values = [{"trial_id": t, "run": o.run, "metric": o.metric, "step": o.step,
                       "value": o.value} for _, t, o in batch if t == watched]
            more_values = len(batch) == POLL_LIMIT
        else:
            more_values = False
        trials = live.project.trials_by_id([c.trial_id for c in changes])
        view = live.overview()
        gone = self.gone(view.running)
        summary = self.summary(live, gone=gone)
        return {
            **summary,
            "location": shown(self.store.location), "now": self.store.now(), "fresh": fresh,
            "seq": changes[-1].seq if changes else (live.seq if fresh else seq),
            "obs": new_obs, "more": len(changes) == POLL_LIMIT or more_values,
            "changes": [self.change(c, trials.get(c.trial_id)) for c in changes],
            "values": values,
            "per_minute": view.per_minute, "minutes_left": view.minutes_left,
            "running_trials": [{"trial_id": t.trial_id, "tuner_id": t.tuner_id,
                                "started": t.started_at, "values": cell(t.values),
                                "interrupted": t.trial_id in gone}
                               for t in view.running],
            "best_trial": None if view.best is None else {
                "trial_id": view.best.trial_id, "number": view.best.number,
                "score": view.best.score, "values": [[k, cell(v)] for k, v in
                                                      view.best.values.items()]},
            "statuses": list(TrialStatus.ALL),
            "interval": interval(summary["total"]),
            "version": live.version,
        }

    @staticmethod
    def change(c: Transition, trial: TrialRecord | None) -> dict[str, Any]:
        return {"seq": c.seq, "trial_id": c.trial_id, "from": c.from_status, "to": c.to_status,
                "at": c.at, "time": iso_time(c.at), "tuner_id": c.tuner_id,
                "message": message_line(c.message),
                "score": None if trial is None else trial.score}

    # -- the trials table -----------------------------------------------------------------------
    def trials(self, params: Params) -> dict[str, Any]:
        live = self.live(one(params, "p"))
        size = number(params, "size", 50, low=1, high=MAX_PAGE)
        page = number(params, "page", 1, low=1)
        order = one(params, "sort", "number") or "number"
        statuses = [s.upper() for s in params.get("status", []) if s]
        try:
            found = queries.trials_page(
                live.project, statuses=statuses, order=order, descending=flag(params, "desc"),
                limit=size, offset=(page - 1) * size, direction=live.direction)
        except ValueError as exc:
            raise Refused(400, str(exc)) from None
        columns, rows = queries.trial_table(live.project, queries.space_names(live.project),
                                            found.trials, after=("message",))
        status = columns.index("status")
        out = []
        for t, row in zip(found.trials, rows):
            cells = [cell(v) for v in row]
            if t.retired:  # as the report marks it: out of the results, its row kept
                cells[status] = f"{t.status} (retired)"
            out.append({"trial_id": t.trial_id, "number": t.number, "status": t.status,
                        "retired": t.retired, "origin": t.origin, "cells": cells,
                        "message": message_line(t.message) or "",
                        "title": fit(t.message or "", TITLE_CHARS)})
        return {"name": live.record.name, "total": found.total, "page": page, "size": size,
                "pages": max(1, -(-found.total // size)), "columns": [*columns, "message"],
                "rows": out, "sort": order, "statuses": statuses}

    # -- plots ------------------------------------------------------------------------------------
    def plots(self, params: Params) -> dict[str, Any]:
        live = self.live(one(params, "p"))
        chosen = [t for t in params.get("select", []) if t][:MAX_SELECTED]
        # a trial the project no longer holds (replaced, say, under an open page) is left
        # out, and the answer's "selected" tells the page so
        selected = [t for t in (self.found(live, given) for given in chosen) if t is not None]
        key = (live.record.name, live.record.project_id)
        # drawn again only after a change (metric values move the curves)
        version = (live.version, live.obs, tuple(t.trial_id for t in selected))
        held = self._plots.get(key)
        took = 0.0
        if held is None or held[0] != version:
            begin = time.perf_counter()
            held = self._plots[key] = (version, plots.project_plots(live, selected))
            took = time.perf_counter() - begin
        return {"name": live.record.name, "version": live.version,
                "selected": [t.trial_id for t in selected], "seconds": took,
                "sections": [{"key": k, "title": title, "html": held[1][k]}
                             for k, title, _ in plots.SECTIONS]}

    def compare(self, params: Params) -> dict[str, Any]:
        names = [one(params, "a"), one(params, "b")]
        if not all(names):
            raise Refused(400, "Give two projects to compare: compare?a=NAME&b=NAME.")
        first, second = (self.live(n) for n in names)
        return {"location": shown(self.store.location),
                "projects": [self.summary(first), self.summary(second)],
                "html": plots.compare_plot(first, second), "now": self.store.now(),
                "interval": interval(max(first.total(), second.total()))}

    # -- one trial ---------------------------------------------------------------------------------
    @staticmethod
    def found(live: LiveProject, given: str) -> TrialRecord | None:
        try:
            return queries.find_trial(live.project, given)
        except TrialNotFoundError:
            return None

    def trial(self, params: Params) -> dict[str, Any]:
        live = self.live(one(params, "p"))
        given = one(params, "t")
        if not given:
            raise Refused(400, "Give a trial: trial?p=PROJECT&t=TRIAL_ID.")
        try:
            detail = queries.trial_detail(live.project, given)
        except TrialNotFoundError as exc:
            raise Refused(404, str(exc)) from None
        t = detail.trial
        history = detail.history
        facts: list[tuple[str, str]] = [
            ("status", t.status), ("score", cell(t.score)), ("best step", cell(t.best_step)),
            ("origin", t.origin or ORIGIN_ORACLE)]
        if t.retired_at is not None:
            facts.append(("retired", f"{iso_time(t.retired_at)} (out of the results; the "
                                      "status changes say who retired it and why)"))
        if queries.stopped_early(t):
            facts.append(("stopped early", "yes: by a stopping rule, scored on what it "
                                           "reached"))
        facts += [
            ("worker", cell(t.tuner_id)), ("runs", str(t.run)),
            ("interrupted runs", str(t.interruptions)), ("invalid runs", str(t.invalid_runs)),
            ("created", cell(iso_time(t.created_at))), ("started", cell(iso_time(t.started_at))),
            ("ended", cell(iso_time(t.ended_at))),
            ("seconds", "" if (took := queries.run_seconds(t.started_at, t.ended_at)) is None
             else f"{took:.3f}")]
        return {
            "name": live.record.name, "generation": self.generation(live),
            "trial_id": t.trial_id, "number": t.number, "status": t.status,
            "retired": t.retired, "origin": t.origin, "note": t.note,
            "objective": live.objective_text, "facts": [list(f) for f in facts],
            "values": [[k, cell(v)] for k, v in t.values.items()],
            "message": t.message,
            "history": {"columns": ["run", "metric", "step", "mean", "reports"],
                        "rows": [[str(r), m, str(s), cell(v), str(n)]
                                 for r, m, s, v, n in latest_rows(history)],
                        "total": len(history)},
            "plot": plots.trial_plot(history),
            "changes": [self.change(c, None) | {"message_full": c.message, "pid": c.pid}
                        for c in detail.changes],
            "seq": live.seq, "obs": live.obs, "finished": self.summary(live)["finished"],
            "interval": interval(live.total()),
        }

    # -- downloads ---------------------------------------------------------------------------------
    def download(self, params: Params) -> tuple[str, str, bytes]:
        """(file name, content type, body) of every trial, as ``hpstore export`` writes it."""
        fmt = one(params, "format", "csv")
        if fmt not in ("csv", "json"):
            raise Refused(400, f"format must be csv or json, received {fmt!r}.")
        live = self.live(one(params, "p"))
        columns, rows = queries.trial_table(live.project, queries.space_names(live.project),
                                            live.project.trials())
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", live.record.name).strip("._") or "trials"
        kind = "text/csv" if fmt == "csv" else "application/json"
        return f"{stem[:80]}.{fmt}", kind, render(columns, rows, fmt).encode("utf-8")


#: the JSON endpoints, by path
ENDPOINTS = {
    "/api/projects": Dashboard.projects,
    "/api/poll": Dashboard.poll,
    "/api/trials": Dashboard.trials,
    "/api/plots": Dashboard.plots,
    "/api/trial": Dashboard.trial,
    "/api/compare": Dashboard.compare,
}


def explain(exc: BaseException) -> tuple[int, str]:
    """The HTTP status and sentence of an error met while answering."""
    if isinstance(exc, Refused):
        return exc.status, str(exc)
    if isinstance(exc, HpStoreError):
        return 503, f"The search could not be read: {exc}"
    return 500, f"The dashboard failed: {type(exc).__name__}: {exc}"
