"""Trials as objects: built from the store's records, decoded only when read."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hpstore.errors import TrialNotFoundError
from hpstore.hyperparameters import HyperParameters
from hpstore.hyperparameters.base import unicode_problem
from hpstore.store.contract import ProjectStore
from hpstore.store.decode import damaged
from hpstore.store.records import Observation, TrialRecord
from hpstore.trial import MetricHistory, MetricsTracker, Trial, check_status, mean_of

#: one reported value: (metric, direction, step, value)
MetricRow = tuple[str, str, int, float]


class StoredTrial(Trial):
    """A Trial read from the store whose values and metric histories are decoded only when
    first used: update_trial's returned trial and end_trial's scoring never need them."""

    _loader: Any = None
    _hp_loader: Any = None
    project_of: tuple[int, str] | None = None

    # A loader is dropped only once what it loaded is in place (the value first, then
    # the loader: one assignment each), so a thread reading while another loads loads it
    # too, or finds it in place; it never finds neither. (A thread that found the loader
    # gone before the value was set got the empty tracker the Trial was made with, or no
    # attribute at all.) Set meanwhile through the setter, the value set is kept.
    @property  # type: ignore[override]
    def hyperparameters(self) -> HyperParameters:
        loader = self._hp_loader
        if loader is not None:
            loaded = loader()
            if self._hp_loader is loader:
                self._hyperparameters = loaded
                self._hp_loader = None
        return self._hyperparameters

    @hyperparameters.setter
    def hyperparameters(self, value: HyperParameters) -> None:
        self._hp_loader = None
        self._hyperparameters = value

    @property  # type: ignore[override]
    def metrics(self) -> MetricsTracker:
        loader = self._loader
        if loader is not None:
            loaded = loader()
            if self._loader is loader:
                self._metrics = loaded
                self._loader = None
        return self._metrics

    @metrics.setter
    def metrics(self, value: MetricsTracker) -> None:
        self._loader = None
        self._metrics = value

    def __reduce__(self) -> tuple[Any, ...]:
        # A plain Trial on the other side (pickle, copy.deepcopy, a process of a pool),
        # with the project it belongs to: without it, another project's oracle ended the
        # copy as its own trial of the same id, writing this one's values into it.
        return (_rebuilt, (self.get_state(), self.project_of))


def _rebuilt(state: Mapping[str, Any], project_of: tuple[int, str] | None) -> Trial:
    """A StoredTrial's copy: a Trial of its state, that knows its project."""
    trial = Trial.from_state(state)
    trial.project_of = project_of  # type: ignore[attr-defined]
    return trial


def trial_from(record: TrialRecord, space: HyperParameters, project: ProjectStore,
               metrics: bool = True, rows: list[MetricRow] | None = None) -> StoredTrial:
    """A Trial for ``record``: the space as it is now (a later version only adds entries)
    with the record's values; its metrics (of the current run) are ``rows`` when given
    (already known), else they load when first read."""
    # Built without Trial.__init__ (three of these a trial): it would check that ``space``
    # is a HyperParameters, set the status through its property twice and make an empty
    # MetricsTracker that the loader below replaces; the attributes are those it sets.
    trial = StoredTrial.__new__(StoredTrial)
    trial._hyperparameters = space
    trial._hp_loader = lambda: space.with_values(record.values)
    trial.trial_id = str(record.trial_id)
    trial._status = check_status(record.status)
    trial.message = record.message
    #: (project id, name) the trial belongs to: ended by another project's oracle, it
    #: would end that project's trial of the same id (kept by its copies too)
    trial.project_of = (project.project_id, project.name)
    trial.score = record.score
    trial.best_step = record.best_step
    trial.tuner_id = record.tuner_id
    trial.run = record.run
    if rows is not None:
        trial._loader = lambda: tracker_of(rows)
    elif metrics and record.run:
        trial._loader = lambda: metrics_of(project, record)
    else:
        trial._loader = MetricsTracker  # none yet: an empty tracker, made when first read
    return trial


def metrics_of(project: ProjectStore, record: TrialRecord) -> MetricsTracker:
    """The metric histories of the record's current run."""
    return tracker_of(rows_of(project.observations(record)))


def rows_of(observations: Iterable[Observation]) -> list[MetricRow]:
    """The (metric, direction, step, value) rows of stored metric values."""
    return [(o.metric, o.direction, o.step, o.value) for o in observations]


def tracker_of(rows: Iterable[MetricRow]) -> MetricsTracker:
    """The metric histories of these (metric, direction, step, value) rows, in the order
    reported."""
    tracker = MetricsTracker()
    for metric, direction, step, value in rows:
        if metric not in tracker.metrics:
            tracker.metrics[metric] = MetricHistory(direction)
        tracker.metrics[metric].update(value, step)
    return tracker


def best_of(rows: Sequence[MetricRow], name: str) -> tuple[float | None, int | None]:
    """``(get_best_value(name), get_best_step(name))`` of the tracker these rows make,
    worked out without making it (the score of nearly every trial): the best step mean
    (NaN steps left out; NaN when each is), the lowest such step; (None, None) without a
    row of ``name``."""
    if len(rows) == 1 and rows[0][0] == name:  # (one report, the usual trial of a loop)
        value = rows[0][3]
        return (math.nan, None) if math.isnan(value) else (value, rows[0][2])
    steps: dict[int, list[float]] = {}
    direction = None
    for metric, metric_direction, step, value in rows:
        if metric == name:
            if direction is None:  # (the first row's, as tracker_of keeps it)
                direction = metric_direction
            if step in steps:
                steps[step].append(value)
            else:
                steps[step] = [value]
    if direction is None:
        return None, None
    best: tuple[float, int, float] | None = None
    for step, values in steps.items():
        mean = values[0] if len(values) == 1 else mean_of(values)
        if math.isnan(mean):
            continue
        key = mean if direction == "min" else -mean
        if best is None or key < best[0] or (key == best[0] and step < best[1]):
            best = (key, step, mean)
    return (math.nan, None) if best is None else (best[2], best[1])


@dataclass
class KeptRun:
    """A run this process started, as the store last answered about it, with the metric
    values reported since, in order: enough to end it without reading it back (the store
    checks, as the end is written, that this is still all there is)."""

    record: TrialRecord
    rows: list[MetricRow] = field(default_factory=list)


class TrialsView(Mapping[str, Trial]):
    """``oracle.trials``: a read-only mapping of trial id to Trial, read from the store."""

    def __init__(self, get: Callable[[str], Trial], project: ProjectStore) -> None:
        self._get = get
        self._project = project

    def __getitem__(self, trial_id: str) -> Trial:
        return self._get(trial_id)

    def __iter__(self) -> Iterator[str]:
        return iter(self._project.trial_ids())

    def __len__(self) -> int:
        return self._project.count()

    def __contains__(self, trial_id: object) -> bool:
        return isinstance(trial_id, str) and self._project.has_trial(trial_id)


def from_file(build: Any, config: Any, where: str) -> Any:
    """``build(config)`` for a config read from the store; a config that cannot be built
    was not written by hpstore.

    Raises:
        NotAnHpstoreFileError: naming ``where`` ("table.column").
    """
    try:
        return build(config)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        raise damaged(where, config) from None


def trial_id_given(trial_id: Any, project: ProjectStore) -> str:
    """``trial_id`` as the text the store looks up.

    Raises:
        TrialNotFoundError: it cannot be one (a lone surrogate, which no trial id holds
            and no store can be asked for).
    """
    text = str(trial_id)
    if unicode_problem(text) is not None:
        raise TrialNotFoundError(
            f"No trial {text!r} in project {project.name!r}; trial ids are strings such as "
            "those in `oracle.trials`.")
    return text
