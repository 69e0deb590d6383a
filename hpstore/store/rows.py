"""What every engine shares about turning stored values into records and back.

Engines differ in SQL, not in what a project holds: the JSON of values and configs, NaN
kept as NULL, the identity of a space entry, the shape of ``get_state()``. Those live
here so each engine writes only its own statements.
"""

from __future__ import annotations

import heapq
import math
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from hpstore.errors import HpStoreError, TrialLostError, TrialNotRunningError
from hpstore.stopping import same_point
from hpstore.store.decode import check_row, damaged, from_json
from hpstore.store.records import Observation, ProjectRecord, Transition, TrialRecord, dumps
from hpstore.trial import TrialStatus, mean_of_steps_values

#: the version of the document ``get_state()`` returns and ``set_state()`` reads
STATE_FORMAT = 1

#: the columns of a trial, in the order TrialRecord takes them
TRIAL_FIELDS = ("id", "number", "trial_id", "status", "hp_values", "values_key", "score",
                "best_step", "tuner_id", "session", "message", "run_count", "invalid_runs",
                "interruptions", "queued", "created_at", "started_at", "ended_at", "pid",
                "changed_at", "origin", "note", "retired_at")
PROJECT_FIELDS = ("project_id", "name", "oracle_class", "oracle_config", "objective",
                  "max_trials", "seed", "space_version", "created_at", "updated_at",
                  "uncounted")
#: the positions of a trial's whole-number columns, and of its other number columns (times)
_TRIAL_WHOLE = tuple(TRIAL_FIELDS.index(name) for name in (
    "number", "best_step", "run_count", "invalid_runs", "interruptions", "queued", "pid"))
_TRIAL_NUMBERS = tuple(TRIAL_FIELDS.index(name) for name in (
    "score", "created_at", "started_at", "ended_at", "changed_at", "retired_at"))
OBSERVATION_FIELDS = ("run", "metric", "direction", "step", "value", "at")
TRANSITION_FIELDS = ("from_status", "to_status", "at", "tuner_id", "pid", "message")


def trial_record(row: Sequence[Any]) -> TrialRecord:
    """A TrialRecord from a row in TRIAL_FIELDS order.

    Raises:
        NotAnHpstoreFileError: a score, step, count or time that is not a number (text
            written into the file by another program since a tool last checked it), which
            every ranking, duration and sort would trip over.
    """
    for i in _TRIAL_WHOLE:
        value = row[i]
        if value is not None and type(value) is not int:
            raise damaged(f"trials.{TRIAL_FIELDS[i]}", value)
    for i in _TRIAL_NUMBERS:
        value = row[i]
        if value is not None and type(value) is not float and type(value) is not int:
            raise damaged(f"trials.{TRIAL_FIELDS[i]}", value)
    return TrialRecord(*row)


def observation(run: Any, metric: str, direction: str, step: Any, value: Any, at: Any
                ) -> Observation:
    """An Observation from its stored columns (a NULL value is NaN).

    Raises:
        NotAnHpstoreFileError: a run or step that is not a whole number, or a value or
            time that is not a number (changed by hand since a tool last checked).
    """
    if type(run) is not int:
        raise damaged("observations.run", run)
    if type(step) is not int:
        raise damaged("observations.step", step)
    if type(at) is not float and type(at) is not int:
        raise damaged("observations.at", at)
    return Observation(run, metric, direction, step, from_db_float(value), at)


def transition(seq: int, trial_id: str, from_status: Any, to_status: Any, at: Any,
               tuner_id: str | None, pid: Any, message: str | None) -> Transition:
    """A Transition from its stored columns.

    Raises:
        NotAnHpstoreFileError: a status hpstore never writes, or a time or process id
            that is not a number (changed by hand since a tool last checked).
    """
    if to_status not in TrialStatus.ALL:
        raise damaged("transitions.to_status", to_status)
    if from_status is not None and from_status not in TrialStatus.ALL:
        raise damaged("transitions.from_status", from_status)
    if type(at) is not float and type(at) is not int:
        raise damaged("transitions.at", at)
    if pid is not None and type(pid) is not int:
        raise damaged("transitions.pid", pid)
    return Transition(seq, trial_id, from_status, to_status, at, tuner_id, pid, message)


def project_record(row: Sequence[Any]) -> ProjectRecord:
    """A ProjectRecord from a row in PROJECT_FIELDS order (JSON columns decoded).

    Raises:
        NotAnHpstoreFileError: a column holds what hpstore never writes.
    """
    check_row(row, PROJECT_FIELDS, "projects")
    values = dict(zip(PROJECT_FIELDS, row))
    values["oracle_config"] = from_json(values["oracle_config"], "projects.oracle_config")
    values["objective"] = from_json(values["objective"], "projects.objective")
    return ProjectRecord(**values)


def same_entry(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two space entries ({"class_name", "config"}) are the same hyperparameter:
    the same name under the same conditions."""
    return (a["config"]["name"] == b["config"]["name"]
            and a["config"].get("conditions", []) == b["config"].get("conditions", []))


def space_item(class_name: Any, config: Any) -> dict[str, Any]:
    check_row((class_name,), ("class_name",), "hyperparameters")
    return {"class_name": class_name, "config": from_json(config, "hyperparameters.config")}


def decode_values(text: Any) -> dict[str, Any]:
    """A trial's hyperparameter values from their stored JSON.

    Raises:
        NotAnHpstoreFileError: the column does not hold a JSON object.
    """
    values: dict[str, Any] = from_json(text, "trials.hp_values")
    return values


def to_db_float(value: float | None) -> float | None:
    # NaN is stored as NULL (SQLite has no NaN); say so explicitly rather than rely on
    # the driver. -0.0 as 0.0, as SQLite stores it: every engine gives the same back.
    return None if value is None or math.isnan(value) else value + 0.0


def from_db_float(value: float | None) -> float:
    """A metric value as stored: NULL is NaN.

    Raises:
        NotAnHpstoreFileError: a value that is no number (changed by hand since a tool
            last checked the file), named, rather than a TypeError deep in a tool.
    """
    if value is None:
        return math.nan
    if type(value) is not float and (isinstance(value, bool)
                                     or not isinstance(value, (int, float))):
        raise damaged("observations.value", value)
    return value


def points_after(last: Any, found: list[tuple[int, int, float]]
                 ) -> list[tuple[int, int, float]] | None:
    """The points after ``last`` when ``found`` (the points from ``last``'s id on, read
    from the store) starts with it as it was read; None when it does not (the run must
    be read whole)."""
    if not found or not same_point(found[0], last):
        return None
    return found[1:]


def mean_of_stored(values: Sequence[float | None]) -> float:
    """The mean a stopping rule takes of one step's stored values: of those not NaN (NULL
    in the store), by :func:`hpstore.trial.mean_of` (no overflow where the sum passes the
    float range); NaN when every value is NaN.

    SQL's ``avg`` is not used for several values: a server refuses a sum past the range
    ("value out of range") and a file makes it inf.
    """
    return mean_of_steps_values([math.nan if v is None else v for v in values])


def check_running(trial: TrialRecord, run: int | None,
                  statuses: tuple[str, ...] = (TrialStatus.RUNNING, TrialStatus.STOPPED),
                  started: float | None = None,
                  logged: Callable[[TrialRecord, float], bool] | None = None) -> None:
    """Raises TrialNotRunningError unless the trial is in one of ``statuses`` and, when
    ``run`` is given, still in that run (not handed to another worker since).

    ``started`` is the time run ``run`` started, as the store gave it with the run (the
    caller was handed that run): a trial in that run that started at another time is not
    the one the caller ran, but a trial created since under the same id; a trial in an
    earlier run never had the caller's start (run numbers only grow); a trial in a later
    run whose status log holds no run started then (``logged``, the store's look-up, says
    whether it does) is one created since too, which another worker then took over. Each
    time the caller's run was lost with the store's last commits, or the store was
    restored from an earlier copy: TrialLostError.
    """
    if started is not None and run is not None and (
            trial.run < run or (trial.run == run and trial.started_at != started)
            # (a later run is looked up only here, on the way to an error: a run handed
            # on is refused all the same, only in other words)
            or (trial.run > run and logged is not None and not logged(trial, started))):
        raise TrialLostError(
            f"Trial {trial.trial_id} run {run}, started at {started!r}, is no longer in the "
            f"store: it holds trial {trial.trial_id} in run {trial.run}, started at "
            f"{trial.started_at!r}, with no run started at {started!r} (its last commits "
            "were lost, or it was restored from an earlier copy, and another trial took "
            "its id since). Nothing was recorded.")
    if trial.status not in statuses:
        raise TrialNotRunningError(
            f"Trial {trial.trial_id} is {trial.status}, not running: it has already ended "
            "(or was handed back to be run again). Nothing was recorded.")
    if run is not None and trial.run != run:
        raise TrialNotRunningError(
            f"Trial {trial.trial_id} was handed to another worker ({trial.tuner_id!r}, run "
            f"{trial.run}) after this process ran it (run {run}); this process's results "
            "for it were not recorded.")


def check_state_document(state: Any) -> None:
    """Refuse what is not a ``get_state()`` document of this version.

    Raises:
        HpStoreError: not of that shape; nothing is changed.
    """
    if not isinstance(state, Mapping) or state.get("format") != "hpstore.project":
        raise HpStoreError(
            "set_state() takes the dict returned by get_state() of an hpstore Oracle; "
            f"received {type(state).__name__} without format 'hpstore.project'.")
    if state.get("version") != STATE_FORMAT:
        raise HpStoreError(
            f"This state has format version {state.get('version')!r}; this hpstore reads "
            f"version {STATE_FORMAT}.")
    try:
        _check_numbers(state)
    except ValueError as exc:
        raise malformed(exc) from None


def orphan_running(state: Mapping[str, Any], keep: Iterable[tuple[str, str | None]] = ()
                   ) -> tuple[dict[str, Any], int]:
    """``state`` as another store must hold it, and how many of its trials were running.

    A trial running in the store the document was read from keeps its worker there: in
    the copy it has none, and must run again as after that worker was killed. Its liveness
    token is replaced by one no process holds (the source's worker may hold its own in the
    same store: a copy between schemas of one server, or to another name in one file) and
    its process id is left out (a file takes a live process of that id, on this machine,
    for the worker); nothing else changes. A run in ``keep`` (trial id, token), which the
    target holds running already (a project's document loaded back into itself), keeps
    its worker.
    """
    kept = set(keep)  # (trial id, token) of runs the target holds already: left as they are
    trials = []
    running = 0
    for trial in state["trials"]:
        if trial.get("status") == TrialStatus.RUNNING and trial.get("session") is not None \
                and (trial.get("trial_id"), trial.get("session")) not in kept:
            trial = {**trial, "session": secrets.token_hex(8), "pid": None}
            running += 1
        trials.append(trial)
    return {**state, "trials": trials}, running


# The numbers of a document, which a file would otherwise keep whatever their type (SQLite
# stores 'abc' in a REAL column) where a server refuses them: each engine refuses them alike.
_INTEGERS = ("number",)
_COUNTS = ("run_count", "invalid_runs", "interruptions")  # 32-bit on a server
_INTEGERS_OR_NONE = ("best_step", "queued", "pid")
_TIMES = ("created_at", "started_at", "ended_at", "changed_at", "retired_at")


def _integer(value: Any, what: str, *, none: bool = False, bits: int = 64) -> None:
    if value is None and none:
        return
    limit = 2 ** (bits - 1)
    if isinstance(value, bool) or not isinstance(value, int) or not -limit <= value < limit:
        raise ValueError(f"{what} must be a {bits}-bit integer{' or null' if none else ''}, "
                         f"not {value!r}")


def _real(value: Any, what: str, *, infinite: bool = False) -> None:
    if value is None or (infinite and value in ("Infinity", "-Infinity")):
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number or null, not {value!r}")


def _check_numbers(state: Mapping[str, Any]) -> None:
    """Raises ValueError for a number of the wrong type or size (other faults of shape are
    found as the document is loaded)."""
    settings = state.get("settings")
    if isinstance(settings, Mapping):
        for name in ("max_trials", "seed"):
            _integer(settings.get(name), f"settings.{name}", none=True)
        if settings.get("max_trials") is not None and settings["max_trials"] < 1:
            raise ValueError(f"settings.max_trials must be at least 1 or null, not "
                             f"{settings['max_trials']!r}")
        for name in ("space_version", "queue_counter", "uncounted"):
            if name in settings:
                _integer(settings[name], f"settings.{name}")
                if settings[name] < 0:
                    raise ValueError(f"settings.{name} must be 0 or more, not "
                                     f"{settings[name]!r}")
        for name in ("oracle_config", "objective"):
            if not isinstance(settings.get(name), Mapping):
                raise ValueError(f"settings.{name} must be an object, not "
                                 f"{settings.get(name)!r}")
    if not isinstance(state.get("oracle_state", {}), Mapping):
        raise ValueError(f"oracle_state must be an object, not {state.get('oracle_state')!r}")
    trials = state.get("trials")
    for t in trials if isinstance(trials, list) else ():
        if not isinstance(t, Mapping):
            continue
        where = f"trial {t.get('trial_id')!r}"
        if not isinstance(t.get("trial_id"), str):
            raise ValueError(f"{where}: trial_id must be a string")
        if not isinstance(t.get("hp_values"), Mapping) or not all(
                isinstance(k, str) for k in t["hp_values"]):
            raise ValueError(f"{where}: hp_values must be an object of name to value, not "
                             f"{t.get('hp_values')!r}")
        for name in _INTEGERS:
            _integer(t.get(name), f"{where}: {name}")
        for name in _COUNTS:
            _integer(t.get(name), f"{where}: {name}", bits=32)
        for name in _INTEGERS_OR_NONE:
            _integer(t.get(name), f"{where}: {name}", none=True)
        for name in _TIMES:
            _real(t.get(name), f"{where}: {name}")
        _real(t.get("score"), f"{where}: score", infinite=True)
        for entry in t.get("observations") or ():
            if isinstance(entry, (list, tuple)) and len(entry) == len(OBSERVATION_FIELDS):
                _integer(entry[0], f"{where}: an observation's run")
                _integer(entry[3], f"{where}: an observation's step")
                _real(entry[4], f"{where}: an observation's value", infinite=True)
                _real(entry[5], f"{where}: an observation's time")
        for entry in t.get("transitions") or ():
            if isinstance(entry, (list, tuple)) and len(entry) == len(TRANSITION_FIELDS):
                _real(entry[2], f"{where}: a transition's time")
                _integer(entry[4], f"{where}: a transition's pid", none=True)
    for key in ("log", "values_log"):
        order = state.get(key)
        for number in order if isinstance(order, list) else ():
            _integer(number, f"{key}: a trial number")


def log_in_order(state: Mapping[str, Any]) -> list[tuple[int, list[Any]]]:
    """The status log of a ``get_state()`` document in the order it was written, as
    (position of the trial in ``state["trials"]``, row) pairs.

    The order is the document's ``log`` (the trial number of each row, in order), so that a
    copy reads the log as its source does (``history``, the last trials' statuses that
    ``max_consecutive_failed_trials`` counts). A document without one (written by hand, or
    by an earlier hpstore) is ordered by time, each trial's rows kept in their own order.

    Raises:
        ValueError: ``log`` does not name every row of every trial exactly once.
    """
    return _in_written_order(state, "log", "transitions", 2)


def values_in_order(state: Mapping[str, Any]) -> list[tuple[int, list[Any]]]:
    """The reported values of a ``get_state()`` document in the order they were written,
    as (position of the trial in ``state["trials"]``, row) pairs: by the document's
    ``values_log`` as :func:`log_in_order` goes by its ``log``, so that a copy's values
    have their ``seq`` in the source's order (several trials reporting in turn). A document
    without one (by hand, or by an earlier hpstore) gives them trial by trial.

    Raises:
        ValueError: ``values_log`` does not name every value of every trial exactly once.
    """
    return _in_written_order(state, "values_log", "observations", None)


def _in_written_order(state: Mapping[str, Any], key: str, rows: str, at: int | None
                      ) -> list[tuple[int, list[Any]]]:
    """The ``rows`` of every trial of ``state`` in the order ``state[key]`` gives (the trial
    number of each row, in order), else in the order of their times (column ``at``), else
    (``at`` None) trial by trial."""
    trials = state["trials"]
    order = state.get(key)
    if order is None and at is None:
        return [(i, r) for i, t in enumerate(trials) for r in t[rows]]
    if order is None:
        runs = [[(r[at], i, r) for r in t[rows]] for i, t in enumerate(trials)]
        return [(i, r) for _, i, r in heapq.merge(*runs, key=lambda e: (e[0], e[1]))]
    if not isinstance(order, list):
        raise ValueError(f"{key} must be a list of trial numbers, not {type(order).__name__}")
    position = {t["number"]: i for i, t in enumerate(trials)}
    taken = [0] * len(trials)
    out = []
    for number in order:
        i = position.get(number)
        if i is None or taken[i] >= len(trials[i][rows]):
            raise ValueError(f"{key} names trial number {number!r} more often than it has "
                             f"rows in its {rows}")
        out.append((i, trials[i][rows][taken[i]]))
        taken[i] += 1
    for i, t in enumerate(trials):
        if taken[i] != len(t[rows]):
            raise ValueError(f"{key} leaves out rows of trial {t.get('trial_id')!r}")
    return out


def reaped(trial: TrialRecord, max_interruptions: int) -> tuple[int, bool, str]:
    """What becomes of a dead worker's running trial: (its interruptions now, whether it
    fails, the message), the same for every engine."""
    count = trial.interruptions + 1
    who = f"worker {trial.tuner_id!r}"
    if count >= max_interruptions:
        return count, True, (f"Its worker died {count} times while running it (last: {who});"
                             " not retried again.")
    return count, False, (f"Interrupted: {who} died during run {trial.run}; queued to run "
                          "again with the same values.")


def malformed(exc: BaseException) -> HpStoreError:
    return HpStoreError(
        f"The state given to set_state() is malformed ({type(exc).__name__}: {exc}); "
        "nothing was changed.")


__all__ = ["OBSERVATION_FIELDS", "PROJECT_FIELDS", "STATE_FORMAT", "TRANSITION_FIELDS",
           "TRIAL_FIELDS", "check_running", "check_state_document", "decode_values",
           "dumps", "from_db_float", "log_in_order", "malformed", "observation",
           "points_after", "project_record", "reaped", "same_entry", "space_item",
           "to_db_float", "transition", "trial_record", "values_in_order"]
