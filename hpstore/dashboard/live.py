"""What the dashboard keeps of one project between requests, brought up to date from what
is newer than it holds.

A search of 100,000 trials is read in full once (one light row per trial: number, id,
status, score) and then followed: each refresh reads the status log after the last entry
seen and the metric values after the last one seen, and re-reads only the trials those
entries name. The plots are drawn from this copy (a sample past a few thousand trials, as
the report draws them), so a poll costs what changed, not the size of the search.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from hpstore import queries
from hpstore.dashboard.finished import ORACLE_LIMIT, OracleQuestion
from hpstore.errors import ProjectRemovedError
from hpstore.report.data import (
    MAX_CURVES,
    MAX_RUNS,
    Run,
    Search,
    TrialInfo,
    choose_sample,
    describe_objective,
    load_axes,
    load_curves,
    summarise,
)
from hpstore.report.scales import real
from hpstore.store.contract import ProjectStore, Store
from hpstore.store.records import ProjectRecord, Transition, TrialRecord
from hpstore.trial import TrialStatus

#: status-log entries read when a project is first opened: enough for the last MAX_RUNS runs
TAIL = 3 * MAX_RUNS
#: entries and metric values read per query while catching up
BATCH = 5000
#: metric values read per refresh before skipping to the newest (only their position and
#: time are kept)
MAX_VALUES_READ = 20_000


class RunLog:
    """The runs of the status log from where it was first read, kept current. A run starts
    at a change to RUNNING and ends at the next change of status, as the report draws them
    (a trial stopped early ends STOPPED there; one its worker then failed ends FAILED)."""

    def __init__(self, limit: int = MAX_RUNS) -> None:
        self.position = 0
        self.open: dict[str, tuple[float, str]] = {}
        self.done: deque[Run] = deque(maxlen=limit)
        self.seen = 0  # runs ended since the log was first read
        self.whole = True  # whether the log was read from its first entry
        self.orphans: list[Transition] = []  # ends whose start lies before what was read

    def feed(self, changes: Iterable[Transition]) -> None:
        """Take in status changes; entries at or before the last one taken are skipped."""
        for change in changes:
            if change.seq <= self.position:
                continue
            self.position = change.seq
            if change.from_status == change.to_status:  # retired or restored: no run
                continue
            tid, status, at = change.trial_id, change.to_status, change.at
            if status == TrialStatus.RUNNING:
                if tid in self.open:  # started again without an end: that run was lost
                    self._end(tid, at, TrialStatus.IDLE)
                self.open[tid] = (at, change.tuner_id or "(unknown)")
            elif tid in self.open:
                self._end(tid, at, status)
            elif change.from_status == TrialStatus.STOPPED and self._failed_after_stop(change):
                continue
            elif change.from_status is not None:
                self.orphans.append(change)

    def _end(self, trial_id: str, at: float, status: str) -> None:
        begin, who = self.open.pop(trial_id)
        self.done.append(Run(trial_id, who, begin, at, status))
        self.seen += 1

    def _failed_after_stop(self, change: Transition) -> bool:
        """Moves the end of the trial's run that ended STOPPED to ``change``; whether it
        was among the kept runs."""
        for i in range(len(self.done) - 1, -1, -1):
            run = self.done[i]
            if run.trial_id == change.trial_id:
                if run.status != TrialStatus.STOPPED:
                    return False
                self.done[i] = run._replace(end=change.at, status=change.to_status)
                return True
        return False

    def add_orphans(self, trials: dict[str, TrialRecord]) -> None:
        """Runs that ended in the part of the log read but started before it: started when
        their trial last started, if that was before the end (``trials`` by id)."""
        found = []
        for change in self.orphans:
            t = trials.get(change.trial_id)
            if t is not None and t.started_at is not None and t.started_at <= change.at:
                found.append(Run(change.trial_id, change.tuner_id or t.tuner_id or "(unknown)",
                                 t.started_at, change.at, change.to_status))
        kept = sorted([*found, *self.done], key=lambda r: r.end)
        self.done = deque(kept, maxlen=self.done.maxlen)
        self.seen += len(found)
        self.orphans = []

    def add_running(self, trials: Iterable[TrialRecord]) -> None:
        """Running trials whose start lies before the part of the log that was read."""
        for t in trials:
            if t.trial_id not in self.open and t.started_at is not None:
                self.open[t.trial_id] = (t.started_at, t.tuner_id or "(unknown)")

    def runs(self, now: float) -> list[Run]:
        """The kept runs, those still open drawn up to ``now``."""
        return [*self.done, *(Run(tid, who, begin, max(now, begin), TrialStatus.RUNNING)
                              for tid, (begin, who) in self.open.items())]

    @property
    def cut(self) -> bool:
        """Whether runs before the kept ones exist (an older part of the log, or more runs
        than are kept)."""
        return not self.whole or self.seen > len(self.done)


def _info(t: TrialRecord) -> TrialInfo:
    return TrialInfo(t.number, t.trial_id, t.status, real(queries.result_score(t)),
                     t.best_step, t.tuner_id, t.run,
                     queries.run_seconds(t.started_at, t.ended_at), t.message, t.values,
                     t.retired, t.note, real(t.score))


def _ended(changes: Iterable[Transition]) -> list[float]:
    """When trials ended, among ``changes`` (a trial retired or restored did not end)."""
    return [c.at for c in changes
            if c.to_status in TrialStatus.FINAL and c.from_status != c.to_status]


class LiveProject:
    """One project, followed. Every method reads through the store contract; the dashboard
    calls them from one thread.

    Raises (every method):
        ProjectRemovedError: the project is gone, or was replaced (``overwrite=True``).
    """

    def __init__(self, store: Store, record: ProjectRecord,
                 question: OracleQuestion | None = None) -> None:
        self.store = store
        self.question = question
        self.record = record
        self.project: ProjectStore = store.open_project(record)
        self.metric, self.direction, self.objective_text = describe_objective(
            dict(record.objective))
        # The positions are read first: what is committed while the rest is read is then
        # read again by the next refresh, and taking in a change twice changes nothing.
        self.seq = self.project.last_transition()
        self.obs = self.project.last_observation()
        self.version = 0  # grows whenever a trial changed
        # number -> (status, score) of every trial: read when a plot first needs it
        self._rows: dict[int, tuple[str, float | None]] | None = None
        self._ordered = True
        # The last TAIL entries of the file's status log (fewer of this project's when the
        # file holds several): reading after a position costs less than asking for the
        # project's last entries, which sorts them all.
        start = max(0, self.seq - TAIL)
        tail = self.project.transitions(after=start)
        self.runs = RunLog()
        self.runs.whole = start == 0
        self.runs.feed(tail)
        self.runs.add_orphans(self.project.trials_by_id([c.trial_id for c in self.runs.orphans]))
        self.runs.add_running(self.project.running())
        self.ends: deque[float] = deque(_ended(tail), maxlen=queries.PACE_ENDS)
        # the newest entry and value are those at the newest positions: the only ones after
        # the position before
        change = tail[-1:] or (self.project.transitions(after=self.seq - 1) if self.seq else [])
        value = self.project.observations_since(self.obs - 1, limit=1) if self.obs else []
        self.last_activity = max([*(c.at for c in change), *(o.at for _, _, o in value)],
                                 default=None)
        self._records: dict[int, TrialRecord] = {}  # trials read in full, for the plots
        self._memo: dict[str, tuple[Any, Any]] = {}

    # -- following ----------------------------------------------------------------------------
    def check(self) -> None:
        """Raises ProjectRemovedError when the project is no longer the one followed."""
        found = self.store.find_project(self.record.name)
        if found is None or found.project_id != self.record.project_id:
            raise ProjectRemovedError(
                f"Project {self.record.name!r} was removed or started afresh since it was "
                "opened; reload the page.")
        self.record = found

    def refresh(self) -> bool:
        """Take in what was written since the last refresh; whether anything was."""
        self.check()
        changed = False
        while True:
            changes = self.project.transitions(after=self.seq, limit=BATCH)
            if not changes:
                break
            self._take(changes)
            changed = True
            if len(changes) < BATCH:
                break
        read = 0
        while read < MAX_VALUES_READ:
            values = self.project.observations_since(self.obs, limit=BATCH)
            if not values:
                break
            read += len(values)
            self.obs = values[-1][0]
            self.last_activity = max(self.last_activity or 0.0, values[-1][2].at)
            changed = True
            if len(values) < BATCH:
                break
        else:  # far behind: only the position matters here
            self.obs = max(self.obs, self.project.last_observation())
        if changed:
            self.version += 1
        return changed

    @property
    def rows(self) -> dict[int, tuple[str, float | None]]:
        """(status, score) of every trial, by number."""
        if self._rows is None:
            # read after the positions: what changed since is taken in again at the next
            # refresh, which changes nothing
            self._rows = {n: (st, real(sc)) for n, _, st, sc in self.project.score_line()}
            self._ordered = True
        return self._rows

    def _take(self, changes: Sequence[Transition]) -> None:
        trials = self.project.trials_by_id([c.trial_id for c in changes])
        rows = self._rows
        for t in trials.values():
            if rows is not None:
                if rows and t.number not in rows and t.number < next(reversed(rows)):
                    self._ordered = False
                rows[t.number] = (t.status, real(queries.result_score(t)))
            self._records.pop(t.number, None)
        self.runs.feed(changes)
        self.ends.extend(_ended(changes))
        self.last_activity = max([self.last_activity or 0.0, *(c.at for c in changes)])
        self.seq = changes[-1].seq

    def _memoised(self, key: str, version: Any, make: Any) -> Any:
        held = self._memo.get(key)
        if held is not None and held[0] == version:
            return held[1]
        value = make()
        self._memo[key] = (version, value)
        return value

    # -- at a glance --------------------------------------------------------------------------
    def overview(self) -> queries.Overview:
        """Where the search stands, as ``hpstore watch`` and ``hpstore summary`` count it
        (:func:`hpstore.queries.overview`), read again after a change."""
        view: queries.Overview = self._memoised("overview", self.version, lambda: (
            queries.overview(self.project, now=self.store.now(), ends=self.ends)))
        view.per_minute = queries.pace(self.ends, now=self.store.now())  # time moves on
        view.max_trials = self.record.max_trials  # may be raised while the search runs
        return view

    def counts(self) -> dict[str, int]:
        """Trials per status."""
        return dict(self.overview().counts)

    def total(self) -> int:
        return sum(self.overview().counts.values())

    def steered(self) -> dict[str, int]:
        """Trials enqueued, added, warm-started and retired (see ``hpstore summary``)."""
        # changed only by a status-log entry (a trial added or enqueued, retired, restored)
        return dict(self._memoised("steered", self.seq, self.project.steering_counts))

    def stopping(self, *, now: bool = False) -> queries.Stopping:
        """What early stopping did (:func:`hpstore.queries.stopping`). It counts the steps
        of every trial, so while the search runs it is read again after a status change at
        most every 20 times what it took (``now``: after any change, for a finished
        search's last answer)."""
        held = self._memo.get("stopping")
        if held is not None and (held[0][0] == self.seq or (
                not now and time.monotonic() < held[0][1])):
            return held[1]
        begin = time.monotonic()
        found = queries.stopping(self.project)
        took = time.monotonic() - begin
        self._memo["stopping"] = ((self.seq, begin + max(1.0, 20 * took)), found)
        return found

    def finished(self, view: queries.Overview) -> str | None:
        """Why the search is finished, or None while it may still change."""
        # the same answer until the log moves, a worker comes or goes, or the oracle answers
        key = (self.seq, self.store.live_workers(), view.max_trials, self._asked())
        return str(self._memoised("finished", key, lambda: queries.finish_reason(
            self.store, self.project, view, self._oracle_would_stop) or "")) or None

    def _asking(self) -> bool:
        return self.question is not None and self.total() <= ORACLE_LIMIT

    def _asked(self) -> bool | None:
        if not self._asking() or self.question is None:
            return None
        return self.question.known(self.record.project_id, self.seq)

    def _oracle_would_stop(self) -> bool | None:
        # asked off the reader thread, once per change, of searches small enough to load
        if not self._asking() or self.question is None:
            return None
        return self.question.answer(self.record.name, self.record.project_id, self.seq)

    # -- the plots ----------------------------------------------------------------------------
    def light(self) -> list[tuple[int, str, float | None]]:
        """(number, status, score) of every trial, by number."""
        def make() -> list[tuple[int, str, float | None]]:
            rows = self.rows
            if not self._ordered:
                rows = self._rows = dict(sorted(rows.items()))
                self._ordered = True
            return [(n, st, sc) for n, (st, sc) in rows.items()]

        return list(self._memoised("light", self.version, make))

    def records(self, numbers: Iterable[int]) -> list[TrialRecord]:
        """The trials numbered ``numbers`` (in that order), read in full once until they
        change."""
        wanted = list(dict.fromkeys(numbers))
        missing = [n for n in wanted if n not in self._records]
        if missing:
            self._records.update(self.project.trials_by_number(missing))
        if len(self._records) > 4 * MAX_RUNS:  # the sample moves on: forget the old one
            keep = set(wanted)
            self._records = {n: t for n, t in self._records.items() if n in keep}
        return [self._records[n] for n in wanted if n in self._records]

    def search(self, selected: Sequence[TrialRecord] = ()) -> Search:
        """What the report's plots draw, from this copy: a sample of the trials past a few
        thousand, the runs of the status log's kept part, and the curves of ``selected``
        trials (the best ones when none is given)."""
        light = self.light()
        chosen = self.records(sorted(choose_sample(light, self.direction)))
        numbers = {t.number for t in chosen}
        chosen += [t for t in selected if t.number not in numbers]
        chosen.sort(key=lambda t: t.number)
        trials = [_info(t) for t in chosen]
        runs = self.runs.runs(max(self.store.now(), self.last_activity or 0.0))
        overall = summarise(light, self.direction, len(runs))
        search = Search(self.record.name, self.metric, self.direction, self.objective_text,
                        load_axes(self.project, trials), trials, {}, runs, overall)
        if selected:
            shown = list(selected)[:MAX_CURVES]
        else:
            best = [t.number for t in search.ranked()[:MAX_CURVES]]
            shown = self.records(best)
        return search._replace(curves=load_curves(self.project, shown, self.metric))
