"""The read model: what people are shown of a search, over the store contract.

The progress display, ``Tuner.results_summary()``, ``trials_dataframe()``, the ``hpstore``
tools, the report and the dashboard all read a search through these functions, so each
question ("the best trial", "what changed since I last looked", "one row per trial") is
answered in one place, on any engine.
"""

from __future__ import annotations

import math
import struct
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hpstore.errors import ProjectChoiceError, TrialNotFoundError
from hpstore.objective import objective_from_config
from hpstore.rendering import iso_time
from hpstore.store.contract import ProjectStore, Store
from hpstore.store.records import Observation, ProjectRecord, Transition, TrialRecord
from hpstore.trial import TrialStatus, mean_of

#: statuses after which a trial will not run again
FINAL = TrialStatus.FINAL
#: statuses counted as "done" in progress lines (a STOPPED trial ended for good too)
DONE = (TrialStatus.COMPLETED, TrialStatus.FAILED, TrialStatus.STOPPED)


@dataclass(frozen=True)
class Event:
    """A status change, with what the trial holds now (for progress lines)."""

    seq: int
    trial_id: str
    status: str
    score: float | None
    values: Mapping[str, Any]
    tuner_id: str | None
    message: str | None
    at: float


def choose_project(store: Store, name: str | None, python: bool = False) -> ProjectStore:
    """The named project, or the only one.

    Raises:
        ProjectChoiceError: no such project, or several and no name given (the message
            lists them).
    """
    found = store.projects()
    names = [p.name for p in found]
    if name is not None:
        named = project_named(found, name)
        if named is not None:
            return store.open_project(named)
        raise ProjectChoiceError(f"No project {name!r} in this {store.holder}; it holds: "
                                 f"{listed(names) or '(none)'}.")
    if len(found) == 1:
        return store.open_project(found[0])
    if not found:
        raise ProjectChoiceError(f"This {store.holder} holds no project yet.")
    how = f"project={names[0]!r}" if python else "--project NAME"
    raise ProjectChoiceError(f"This {store.holder} holds several projects ({listed(names)}): "
                             f"name the one to open with {how}.")


def project_named(records: Sequence[ProjectRecord], name: str) -> ProjectRecord | None:
    """The project of that name among ``records``: written as stored, else the only one
    whose name is the same letters written otherwise ("é" typed as one character, stored
    as "e" and a combining accent, a name copied from a macOS file name, or the other
    way); None when there is none.

    Raises:
        TypeError: ``name`` is not a string.
    """
    if not isinstance(name, str):
        raise TypeError(f"A project's name must be a string, received {name!r} "
                        f"({type(name).__name__}).")
    for record in records:
        if record.name == name:
            return record
    alike = [r for r in records if _normal(r.name) == _normal(name)]
    return alike[0] if len(alike) == 1 else None


def same_look(records: Sequence[ProjectRecord], name: str, where: str
              ) -> tuple[str, str] | None:
    """(the stored name, what is wrong) when ``records`` hold no project ``name`` but one
    of the same letters written with other code points ("é" as one character, or as "e"
    and a combining accent), which a new project ``name`` would look the same as
    everywhere (scripts that spell it apart would split a search in two); else None.
    ``where``: the store, as a message names it."""
    if any(r.name == name for r in records):
        return None
    alike = project_named(records, name)
    if alike is None:
        return None
    return alike.name, (f"{where} holds the project {alike.name!r}, written {alike.name!a}; "
                        f"{name!r}, written {name!a}, is the same letters with other code "
                        "points, and two projects of that name would look the same everywhere.")


def _normal(name: str) -> str:
    return unicodedata.normalize("NFC", name)


_LISTED = 20  # names an error lists before "and N more"


def listed(names: list[str]) -> str:
    """Project names for one line of a message: the first 20, then how many more (`hpstore
    summary` lists them all)."""
    if len(names) <= _LISTED:
        return ", ".join(names)
    return (f"{', '.join(names[:_LISTED])} and {len(names) - _LISTED:,} more (`hpstore "
            "summary` lists them all)")


def direction_of(record: ProjectRecord) -> str:
    """The project's objective direction ("min" or "max")."""
    return objective_from_config(record.objective).direction


def objective_name(record: ProjectRecord) -> str:
    return objective_from_config(record.objective).name


def describe_objective(record: ProjectRecord) -> str:
    """``val_loss (min)``, or for several ``loss (min), acc (max): loss - acc, minimised``
    (what the combined score is: the "min" metrics less the "max" ones)."""
    return objective_text(record.objective)


def objective_text(objective: Mapping[str, Any]) -> str:
    """A stored objective as :func:`describe_objective` says it."""
    if "objectives" in objective:
        parts = objective["objectives"]
        formula = " ".join(("- " if o["direction"] == "max" else "+ " if i else "")
                           + str(o["name"]) for i, o in enumerate(parts))
        formula = "-" + formula[2:] if formula.startswith("- ") else formula
        listed = ", ".join(f"{o['name']} ({o['direction']})" for o in parts)
        return f"{listed}: {formula}, minimised"
    return f"{objective.get('name')} ({objective.get('direction')})"


def run_seconds(started_at: float | None, ended_at: float | None) -> float | None:
    """How long a run took, from the two wall-clock times stored with it; None when one is
    missing or the end comes before the start. (Each is the clock of the process that
    wrote it: the end may come from another machine whose clock is behind, or the clock
    may have been stepped back in between. A negative figure would be nonsense: there is
    no knowing the real one.)"""
    if started_at is None or ended_at is None or ended_at < started_at:
        return None
    return ended_at - started_at


def running_for(started_at: float | None, now: float) -> float:
    """Seconds since a run started, by this process's clock now; 0 when the start lies
    ahead of it (written by a worker whose clock is ahead of this one)."""
    return max(0.0, now - (now if started_at is None else started_at))


def done_count(counts: Mapping[str, int]) -> int:
    """Trials that ended for good."""
    return sum(counts.get(s, 0) for s in DONE)


def result_score(trial: TrialRecord) -> float | None:
    """The score a trial counts with in the results: its score, or None once it is retired
    (a retired trial is left out of every ranking, plot and fit, as the store leaves it
    out of :meth:`ProjectStore.best` and :meth:`ProjectStore.score_line`)."""
    return None if trial.retired else trial.score


def best_trial(project: ProjectStore, direction: str) -> TrialRecord | None:
    """The best COMPLETED trial, or None."""
    found = project.best(1, direction)
    return found[0] if found and found[0].status == TrialStatus.COMPLETED else None


def better(a: float, b: float | None, direction: str) -> bool:
    """Whether score ``a`` beats ``b`` (None is beaten by anything)."""
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return True
    return a < b if direction == "min" else a > b


def status_changes(project: ProjectStore, after: int) -> list[Transition]:
    """The entries of the status log after ``after`` that change a trial's status (a
    retirement, which keeps it, left out)."""
    return [t for t in project.transitions(after=after) if t.from_status != t.to_status]


def done_change(changes: Sequence[Transition]) -> int:
    """How many more trials ended for good after ``changes`` than before them."""
    return sum((t.to_status in DONE) - (t.from_status in DONE) for t in changes)


def events_of(project: ProjectStore, changes: Sequence[Transition], *,
              with_starts: bool = False) -> list[Event]:
    """``changes`` (see :func:`status_changes`) as events, starts of runs left out unless
    asked for."""
    changes = [t for t in changes if with_starts or t.to_status != TrialStatus.RUNNING]
    trials = project.trials_by_id([t.trial_id for t in changes])
    events = []
    for change in changes:
        trial = trials.get(change.trial_id)
        events.append(Event(change.seq, change.trial_id, change.to_status,
                            None if trial is None else trial.score,
                            {} if trial is None else trial.values,
                            change.tuner_id, change.message, change.at))
    return events


def find_trial(project: ProjectStore, given: str) -> TrialRecord:
    """The trial whose id is ``given``, else the trial numbered ``given``.

    Raises:
        TrialNotFoundError: neither.
    """
    try:
        return project.trial(given)
    except TrialNotFoundError:
        text = given.strip()
        if text.isdigit():
            try:
                return project.trial_by_number(int(text))
            except TrialNotFoundError:
                pass
        raise TrialNotFoundError(
            f"No trial {given!r} in project {project.name!r}: give a trial id as listed by "
            "`hpstore trials`, or its number.") from None


#: the columns of a trial table before its hyperparameters (`hpstore trials` and `export`)
TRIAL_COLUMNS = ("trial_id", "status", "score", "best_step", "tuner_id", "runs", "seconds",
                 "retired", "origin", "note")


def hp_titles(names: Sequence[str], taken: Sequence[str]) -> list[str]:
    """Column titles for hyperparameters in a table whose other columns are titled
    ``taken``: a name that is already a title ("status", "note", ...) is prefixed with
    "hp:" (as often as needed), so that a hyperparameter never hides a column of the
    trial's own, nor looks like one."""
    used, titles = set(taken), []
    for name in names:
        title = name
        while title in used:
            title = f"hp:{title}"
        used.add(title)
        titles.append(title)
    return titles


def trial_table(project: ProjectStore, space_names: Sequence[str],
                trials: Sequence[TrialRecord], after: Sequence[str] = ()
                ) -> tuple[list[str], list[list[Any]]]:
    """One row per trial with a column per hyperparameter: (columns, rows).

    Hyperparameter names become column titles here (see :func:`hp_titles`), clear of the
    trial's columns and of ``after``, the titles of columns the caller adds after them.
    """
    extra: list[str] = []
    for trial in trials:
        for name in trial.values:
            if name not in space_names and name not in extra:
                extra.append(name)
    names = list(dict.fromkeys([*space_names, *extra]))  # a same-name twin is one column
    columns = [*TRIAL_COLUMNS, *hp_titles(names, [*TRIAL_COLUMNS, *after])]
    rows = []
    for t in trials:
        took = run_seconds(t.started_at, t.ended_at)
        seconds = None if took is None else round(took, 3)
        base = [t.trial_id, t.status, t.score, t.best_step, t.tuner_id, t.run, seconds,
                None if t.retired_at is None else iso_time(t.retired_at), t.origin, t.note]
        rows.append(base + [t.values.get(n) for n in names])
    return columns, rows


def space_names(project: ProjectStore) -> list[str]:
    """The hyperparameter names of the project's space, in order (a twin once)."""
    _, items = project.space()
    return list(dict.fromkeys(item["config"]["name"] for item in items))


@dataclass(frozen=True)
class Stopping:
    """What early stopping did in a search: trials stopped, and steps they did not run.

    A stopped trial whose values give its own budget (Hyperband's ``tuner/epochs``: it
    trains up to that epoch, the epoch being the step it reports, so its last step is one
    less) is measured against that budget; any other against ``full_length``, the most
    steps a completed trial reported. ``own_budget`` counts the stopped trials measured
    against their own budget."""

    stopped: int
    steps_saved: int
    full_length: int
    own_budget: int = 0

    @property
    def counted(self) -> bool:
        """Whether the steps not run are measured: against a completed run, or a stopped
        trial's own budget (with neither, "about 0 steps not run" would read as if stopping
        had saved nothing)."""
        return bool(self.full_length or self.own_budget)

    def said(self) -> str:
        """The trials stopped and the steps they did not run, in words, as every tool and
        the dashboard say it."""
        if not self.counted:
            return (f"{self.stopped} trial(s); the steps they did not run are not counted "
                    "until a trial completes")
        return f"{self.stopped} trial(s), about {self.steps_saved} steps not run"


STOPPED_EARLY = "Stopped early"  # how the status log marks a trial a stopping rule stopped
#: the value a trial's own budget is in: it trains up to this epoch (Hyperband's)
BUDGET = "tuner/epochs"


def stopped_early(trial: TrialRecord) -> bool:
    """Whether a stopping rule stopped the trial (not a worker's own STOPPED)."""
    return trial.status == TrialStatus.STOPPED and (trial.message or "").startswith(
        STOPPED_EARLY)


def budget_end(values: Mapping[str, Any]) -> int | None:
    """The last step a trial's own budget runs to (``tuner/epochs`` less one: epochs are
    reported as steps from 0), or None when its values give it no budget."""
    epochs = values.get(BUDGET)
    if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 1:
        return epochs - 1
    return None


def stopping(project: ProjectStore) -> Stopping:
    """How many trials a stopping rule stopped, and how many steps that saved: of each
    stopped trial, the steps after the last it reported up to its own budget's last step,
    else the steps it reported fewer than the most a completed trial reported (none where
    it reached that)."""
    stopped = [t for t in project.trials(statuses=[TrialStatus.STOPPED]) if stopped_early(t)]
    if not stopped:
        return Stopping(0, 0, 0)
    # (only the stopped trials' steps, and the longest completed run as one number: read
    # for every trial, these took 2 s at 100,000 trials, at every `hpstore summary`)
    metric = objective_name(project.record())
    steps = project.steps_reported(metric, status=TrialStatus.STOPPED)
    full = project.most_steps_reported(metric, TrialStatus.COMPLETED)
    saved = budgeted = 0
    for t in stopped:
        count, last = steps.get(t.trial_id, (0, None))
        end = budget_end(t.values)
        if end is None:
            saved += max(0, full - count)
            continue
        budgeted += 1
        if last is None:  # nothing reported: none of its budget ran
            start = t.values.get("tuner/initial_epoch")
            last = start - 1 if isinstance(start, int) and not isinstance(start, bool) else -1
        saved += max(0, end - last)
    return Stopping(len(stopped), saved, full, budgeted)


def step_means(observations: Sequence[Observation]) -> list[list[Any]]:
    """[run, metric, step, mean value, reports] per (run, metric, step), sorted so."""
    groups: dict[tuple[int, str, int], list[float]] = {}
    for obs in observations:
        groups.setdefault((obs.run, obs.metric, obs.step), []).append(obs.value)
    rows = []
    for (run, metric, step), values in sorted(groups.items()):
        finite = [v for v in values if not math.isnan(v)]
        # NaN reports are left out of the mean; a step of NaN only has none
        # (one value is its own mean: most steps have one report, and this is fast)
        mean = (finite[0] if len(finite) == 1 else mean_of(finite)) if finite else None
        rows.append([run, metric, step, mean, len(values)])
    return rows


def trials_dataframe(path: Any, project: str | None = None) -> Any:
    """The trials of a search as a pandas DataFrame, a column per hyperparameter.

    Raises:
        ImportError: pandas is not installed (it is optional: ``pip install pandas``).
        DatabaseError, NotAnHpstoreFileError: the search cannot be read.
    """
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("trials_dataframe() needs pandas: pip install pandas") from None
    from hpstore.store import open_store

    store = open_store(path, read_only=True)
    try:
        chosen = choose_project(store, project, python=True)
        columns, rows = trial_table(chosen, space_names(chosen), chosen.trials())
    finally:
        store.close()
    return pd.DataFrame(rows, columns=columns)


@dataclass
class Overview:
    """Where a search stands: what ``hpstore watch``, the progress line and the dashboard
    show at a glance."""

    counts: dict[str, int]
    done: int
    queued: int
    running: list[TrialRecord]
    best: TrialRecord | None
    max_trials: int | None
    per_minute: float | None

    @property
    def minutes_left(self) -> float | None:
        if not self.per_minute or not self.max_trials:
            return None
        return max(0, self.max_trials - self.done) / self.per_minute


#: the window the pace of a search is measured over, in seconds
PACE_WINDOW = 600.0
#: the newest trial ends the pace is measured on (watch, summary and the dashboard alike)
PACE_ENDS = 500


_REREADS = 5  # looks at once-moving counts before showing the last (a busy search)


def overview(project: ProjectStore, *, now: float, ends: Sequence[float] | None = None
             ) -> Overview:
    """Counts per status, the running and queued trials, the best, and the pace (trials
    ended per minute over the last ten minutes, from ``ends``, the times trials ended, when
    the caller keeps them, else read from the newest status changes)."""
    record = project.record()
    for _ in range(_REREADS):
        # counts and trials read apart: read again while the status log moves between
        # them (a header of "running 4" above three running trials)
        before = project.last_transition()
        counts = project.counts_by_status()
        running = sorted(project.running(), key=lambda t: (t.tuner_id or "", t.number))
        queued = sum(1 for t in project.trials(
            statuses=[TrialStatus.IDLE, TrialStatus.INVALID]) if t.queued is not None)
        if project.last_transition() == before:
            break
    if ends is None:  # the newest PACE_ENDS ends (a trial's run is two changes or more)
        ends = [c.at for c in project.transitions(last=True, limit=3 * PACE_ENDS)
                if c.to_status in FINAL and c.from_status != c.to_status][-PACE_ENDS:]
    per_minute = pace(ends, now=now)
    done = max(0, done_count(counts) - record.uncounted)  # as max_trials counts them
    return Overview(counts, done, queued, running,
                    best_trial(project, direction_of(record)), record.max_trials, per_minute)


def finish_reason(store: Store, project: ProjectStore, view: Overview,
                  oracle_check: Any = None) -> str | None:
    """Why the search is finished, or None while it is not: nothing running or waiting,
    and either ``max_trials`` trials ended, or (no worker alive) the last
    ``max_consecutive_failed_trials`` trials failed or its oracle has nothing left to hand
    out (``oracle_check()``, asked of a copy: nothing is written)."""
    if view.running or view.queued:
        return None
    if view.max_trials is not None and view.done >= view.max_trials:
        return f"The search is finished: {view.done} of {view.max_trials} trials ended."
    if not sum(view.counts.values()) or store.live_workers():
        return None
    options = project.record().oracle_config.get("options") or {}
    limit = options.get("max_consecutive_failed_trials") if isinstance(options, dict) else None
    if isinstance(limit, int) and limit > 0:
        recent = project.recent_final_statuses(limit)
        if len(recent) == limit and set(recent) == {TrialStatus.FAILED}:
            return (f"The search stopped: its last {limit} trials failed "
                    "(max_consecutive_failed_trials).")
    if oracle_check is not None and oracle_check():
        return "The search is finished: its oracle has no more trials to hand out."
    return None


def pace(end_times: Sequence[float], *, now: float) -> float | None:
    """Trials ended per minute, from the times trials ended (any order), over the last
    :data:`PACE_WINDOW` seconds; None with fewer than two ends in it.

    Measured between the first and the last end, unless no trial has ended for longer than
    the ends were apart on average: then up to ``now``, so that a search that stalled (its
    workers gone) slows down on the screen instead of keeping its last pace.
    """
    # (an end ahead of ``now`` was written by a worker whose clock is ahead of this
    # process's: left out, it would stretch the span by as much as the clocks differ)
    ends = [at for at in end_times if now - PACE_WINDOW < at <= now]
    if len(ends) > 1 and max(ends) > min(ends):
        span = max(ends) - min(ends)
        if now - max(ends) > span / (len(ends) - 1):
            span = now - min(ends)
        return (len(ends) - 1) / span * 60
    return None


# -- the trials table and one trial (the dashboard) -------------------------------------------

#: what the trials table may be sorted by: the store's orders, and "best" (score in the
#: objective's direction)
ORDERS = ("number", "score", "ended", "best")


@dataclass(frozen=True)
class TrialsPage:
    """One page of the trials table, and how many trials match its filter in all."""

    total: int
    trials: list[TrialRecord]


def trials_page(project: ProjectStore, *, statuses: Sequence[str] | None = None,
                order: str = "number", descending: bool = False, limit: int = 50,
                offset: int = 0, direction: str = "min") -> TrialsPage:
    """The trials of ``statuses`` (every trial when None or empty) sorted by ``order``,
    ``limit`` of them from ``offset`` on; trials without a score sort last. "best" sorts by
    score in ``direction`` (``descending`` then puts the worst first).

    Raises:
        ValueError: an unknown status or order, a limit below 1 or a negative offset.
    """
    chosen = list(dict.fromkeys(statuses or ()))
    unknown = [s for s in chosen if s not in TrialStatus.ALL]
    if unknown:
        raise ValueError(f"Unknown status {unknown[0]!r}: give one of "
                         f"{', '.join(TrialStatus.ALL)}.")
    if order not in ORDERS:
        raise ValueError(f"Unknown order {order!r}: give one of {', '.join(ORDERS)}.")
    if limit < 1 or offset < 0:
        raise ValueError(f"A page needs a limit of at least 1 and an offset of 0 or more; "
                         f"received limit {limit}, offset {offset}.")
    counts = project.counts_by_status()
    total = sum(n for s, n in counts.items() if not chosen or s in chosen)
    if order == "best":
        order, descending = "score", descending != (direction == "max")
    trials = project.trials(statuses=chosen or None, order=order, descending=descending,
                            limit=limit, offset=offset) if offset < total else []
    return TrialsPage(total, trials)


@dataclass(frozen=True)
class TrialDetail:
    """One trial: its record, its metric history per step (see :func:`step_means`) and its
    status changes, oldest first."""

    trial: TrialRecord
    history: list[list[Any]]
    changes: list[Transition]


def trial_detail(project: ProjectStore, given: str) -> TrialDetail:
    """One trial by id or number (see :func:`find_trial`), with every run's metrics.

    Raises:
        TrialNotFoundError: no such trial.
    """
    trial = find_trial(project, given)
    return TrialDetail(trial, step_means(project.observations(trial, every_run=True)),
                       project.transitions(trial_id=trial.trial_id))


def oracle_would_stop(project: ProjectStore) -> bool | None:
    """Whether the project's oracle, asked for a trial now, would say the search is over;
    None when the store cannot tell (an oracle class of the user's own, or rows hpstore
    never writes). Asked of a copy of the project in memory: nothing is written."""
    from hpstore.errors import HpStoreError
    from hpstore.oracles import (
        BayesianOptimizationOracle,
        GridSearchOracle,
        HyperbandOracle,
        RandomSearchOracle,
    )

    classes: dict[str, Any] = {c.__name__: c for c in (
        RandomSearchOracle, GridSearchOracle, BayesianOptimizationOracle, HyperbandOracle)}
    record = project.record()
    cls = classes.get(record.oracle_class)
    if cls is None:
        return None
    if cls in (RandomSearchOracle, BayesianOptimizationOracle) and \
            _never_used_up(project.space()[1]):
        return False  # (without the copy, which takes seconds at 100,000 trials)
    try:
        # (the values reported and the status log are left out: no trial runs or waits
        # when this is asked, and the built-in oracles decide on scores and states; at
        # 100,000 trials of 20 epochs, reading them took minutes and GBs)
        state = project.dump(metrics=False, log=False)
        search = record.oracle_config.get("search") or {}
        memory = cls(objective=objective_from_config(record.objective),
                     max_trials=record.max_trials, seed=record.seed, database=None,
                     project_name=record.name, **search)
    except (HpStoreError, KeyError, TypeError, ValueError):  # rows hpstore never writes
        return None
    try:
        memory.set_state(state)
        return bool(memory.create_trial("hpstore-watch").status == TrialStatus.STOPPED)
    except (HpStoreError, KeyError, TypeError, ValueError):
        return None
    finally:
        memory.close()


#: floats a range on no grid must hold to be taken for endless (far more than any search
#: runs trials; [0.0001, 0.1] holds about 2**62)
_ENDLESS = 2 ** 40


def _never_used_up(entries: list[dict[str, Any]]) -> bool:
    """Whether a space holds more value sets than any search can try: a real number on no
    grid, over a range of more than :data:`_ENDLESS` floats, that every trial takes (no
    condition). Random and Bayesian search then stop only at their ``max_trials``. (A
    range of a few floats, [1, 1 + 2**-50] say, is used up like a short grid.)"""
    for entry in entries:
        config = entry.get("config") or {}
        if entry.get("class_name") == "Float" and config.get("step") is None \
                and not config.get("conditions") \
                and _floats_between(config.get("min_value"), config.get("max_value")) \
                > _ENDLESS:
            return True
    return False


def _floats_between(low: Any, high: Any) -> int:
    """How many floats lie in [low, high] (0 for anything but two finite numbers)."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        return 0
    low, high = float(low), float(high)
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        return 0

    def rank(x: float) -> int:  # floats in order as integers (-0.0 and 0.0 as one)
        bits = struct.unpack("<q", struct.pack("<d", x))[0]
        return bits if bits >= 0 else -(bits & 0x7FFFFFFFFFFFFFFF)

    return rank(high) - rank(low) + 1
