"""Trial, its status, and the per-metric histories it carries."""

from __future__ import annotations

import bisect
import heapq
import math
import numbers
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

from hpstore.errors import InvalidMetricError
from hpstore.hyperparameters import HyperParameters
from hpstore.hyperparameters.base import unicode_problem
from hpstore.objective import DIRECTIONS, infer_metric_direction
from hpstore.rendering import print_text, terminal_text


class TrialStatus:
    """The status of a trial: plain strings, so ``trial.status = "COMPLETED"`` works."""

    RUNNING = "RUNNING"
    IDLE = "IDLE"
    INVALID = "INVALID"
    STOPPED = "STOPPED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"

    ALL = (RUNNING, IDLE, INVALID, STOPPED, COMPLETED, FAILED)
    #: statuses a trial keeps once it has ended for good
    FINAL = (COMPLETED, FAILED, STOPPED)


def check_status(status: Any) -> str:
    """Return ``status`` if it is a known trial status.

    Raises:
        ValueError: anything else, naming the accepted statuses.
    """
    if status not in TrialStatus.ALL:
        raise ValueError(
            f"Unknown trial status {status!r}; expected one of {', '.join(TrialStatus.ALL)}."
        )
    return str(status)


def check_metric(name: Any, value: Any) -> float:
    """Validate one reported metric and return its value as a float.

    Raises:
        InvalidMetricError (a TypeError and a ValueError): the name is not a non-empty
            string, or the value is not a real number (bools, strings, None and complex are
            refused).
    """
    if not isinstance(name, str) or not name:
        raise InvalidMetricError(
            f"A metric name must be a non-empty string, received {name!r} "
            f"(type {type(name).__name__})."
        )
    if not name.isascii():
        problem = unicode_problem(name)
        if problem:
            raise InvalidMetricError(f"The metric name {name!r} cannot be stored: {problem}.")
    if type(value) is float:  # the usual report: numbers.Real's ABC check costs more
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        count = _element_count(value)
        if count == 1:
            # A numpy scalar, a 0-d or one-element array or tensor: .item() gives the
            # Python number inside (and a bool or string inside is refused below).
            return check_metric(name, cast(Any, value).item())
        if count is not None:
            shape = getattr(value, "shape", None)
            raise InvalidMetricError(
                f"The value of metric {name!r} holds {count} numbers (a "
                f"{type(value).__name__}{'' if shape is None else f' of shape {tuple(shape)}'}"
                "), not one: report a single number, e.g. its mean with float(value.mean())."
            )
        raise InvalidMetricError(
            f"The value of metric {name!r} must be a real number, received {_short(value)} "
            f"(type {type(value).__name__})."
        )
    try:
        return float(value)
    except OverflowError:  # e.g. 10**400: a real number, but beyond any float
        if isinstance(value, int):  # its repr may be longer than Python will print
            shown = f"an int of {value.bit_length()} bits ({str(value)[:20]}...)" \
                if value.bit_length() < 10_000 else f"an int of {value.bit_length()} bits"
        else:
            shown = repr(value)
        raise InvalidMetricError(
            f"The value of metric {name!r} is too large to be stored as a float: {shown} "
            f"(type {type(value).__name__})."
        ) from None


def _element_count(value: Any) -> int | None:
    """How many numbers an array-like value holds: numpy's ``size`` (an int), torch's
    ``numel()`` (its ``size`` is a method giving the shape); None when it is not one."""
    if not callable(getattr(value, "item", None)):
        return None
    size = getattr(value, "size", None)
    if isinstance(size, numbers.Integral):
        return int(size)
    numel = getattr(value, "numel", None)
    if callable(numel):
        try:
            count = numel()
        except Exception:  # not the numel we know; treat the value as no array at all
            return None
        return int(count) if isinstance(count, numbers.Integral) else None
    return None


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def mean_of(values: Sequence[float]) -> float:
    """The mean of ``values`` (not empty), correctly rounded, even where their sum would
    pass the float range (two reports of 1.7e308); NaN when +inf and -inf meet."""
    try:
        return math.fsum(values) / len(values)
    except OverflowError:  # the sum passed the range: each value divided first
        return math.fsum(v / len(values) for v in values)
    except ValueError:  # fsum refuses inf + -inf, which IEEE arithmetic makes NaN
        return math.nan


def mean_of_steps_values(values: Sequence[float]) -> float:
    """The value a stopping rule takes for one step reported several times: the mean of
    its values that are not NaN (by :func:`mean_of`), NaN only when every one is."""
    present = [v for v in values if not math.isnan(v)]
    return mean_of(present) if present else math.nan


def check_step_type(step: Any) -> int:
    """A step as a Python int.

    Raises:
        TypeError: not an int (a bool, a fraction, a string...).
        ValueError: outside 64 bits, which no store holds.
    """
    if type(step) is int and -2**63 <= step < 2**63:  # (numbers.Integral's check costs more)
        return step
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"`step` must be an int, received {step!r}: steps are whole "
                        "numbers (an epoch, a batch).")
    if not -2**63 <= int(step) < 2**63:
        raise ValueError(f"`step` must fit in 64 bits (-2**63 to 2**63 - 1), received "
                         f"{step!r}.")
    return int(step)


class MetricObservation:
    """All values reported for one metric at one step; their mean is the step's value."""

    __slots__ = ("step", "value")

    def __init__(self, value: float | list[float], step: Any) -> None:
        self.value: list[float] = list(value) if isinstance(value, list) else [float(value)]
        if isinstance(step, float) and step.is_integer():
            step = int(step)  # (1.0 in a stored configuration)
        self.step = check_step_type(step)

    def append(self, value: float | list[float]) -> None:
        """Add a value (or a list of values, as KerasTuner does) to the step."""
        if isinstance(value, list):
            self.value.extend(float(v) for v in value)
        else:
            self.value.append(float(value))

    def mean(self) -> float:
        """The mean of the values, correctly rounded; NaN when +inf and -inf meet."""
        if len(self.value) == 1:
            return self.value[0]
        return mean_of(self.value)

    def get_config(self) -> dict[str, Any]:
        return {"value": list(self.value), "step": self.step}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MetricObservation:
        return cls(list(config["value"]), config["step"])

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, MetricObservation)
            and self.step == other.step
            and _floats_equal(self.value, other.value)
        )

    def __repr__(self) -> str:
        return f"MetricObservation(value={self.value}, step={self.step})"


def _floats_equal(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b)
    )


class MetricHistory:
    """The observations of one metric, by step, with a direction for "best".

    Reporting a step costs O(log n) for n steps, whatever their order: the best step is
    kept in a heap of (step mean, step) entries. A step reported again changes its mean,
    which may make an earlier best worse; its old entry is then left in the heap, known to
    be stale by the number of values it was computed from, and dropped when it reaches the
    top. Steps are kept sorted as they arrive (appending when they come in order).
    """

    def __init__(self, direction: str = "min") -> None:
        if direction not in DIRECTIONS:
            raise ValueError(
                f'`direction` should be one of {{"min", "max"}}, but got: {direction!r}'
            )
        self.direction = direction
        self._observations: dict[int, MetricObservation] = {}
        self._steps: list[int] = []  # sorted
        # (key, step, count, mean): key orders best first (the mean, negated for "max"),
        # and among equal means the lowest step first; count = values behind the mean
        self._heap: list[tuple[float, int, int, float]] = []

    def update(self, value: float, step: int = 0) -> None:
        """Add ``value`` at ``step``.

        Raises:
            TypeError: ``step`` is not an int (a fraction would merge with the step below).
        """
        step = check_step_type(step)
        observation = self._observations.get(step)
        if observation is not None:
            observation.append(value)
        else:
            observation = self._observations[step] = MetricObservation(value, step)
            if not self._steps or step > self._steps[-1]:
                self._steps.append(step)
            else:
                bisect.insort(self._steps, step)
        mean = observation.mean()
        if not math.isnan(mean):  # a NaN step is never best; an earlier entry goes stale
            key = mean if self.direction == "min" else -mean
            heapq.heappush(self._heap, (key, step, len(observation.value), mean))

    def _top(self) -> tuple[float, int, int, float] | None:
        """The best current entry, after dropping stale ones from the top of the heap."""
        heap = self._heap
        while heap:
            _, step, count, _ = heap[0]
            if len(self._observations[step].value) == count:
                return heap[0]
            heapq.heappop(heap)
        return None

    def get_history(self) -> list[MetricObservation]:
        return [self._observations[s] for s in self._steps]

    def set_history(self, observations: Sequence[MetricObservation]) -> None:
        """Replace the history by these observations."""
        self._observations, self._steps, self._heap = {}, [], []
        for observation in observations:
            for value in observation.value:
                self.update(value, observation.step)

    def get_best_value(self) -> float | None:
        """The best step mean, ignoring NaN steps; NaN when every step is NaN; None if empty."""
        if not self._observations:
            return None
        top = self._top()
        return math.nan if top is None else top[3]

    def get_best_step(self) -> int | None:
        """The first (lowest) step whose mean is the best value; None when there is none."""
        top = self._top()
        return None if top is None else top[1]

    def get_last_value(self) -> float | None:
        return self._observations[self._steps[-1]].mean() if self._steps else None

    def get_statistics(self) -> dict[str, float]:
        means = [obs.mean() for obs in self.get_history()]
        if not means:
            return {}
        arr = [m for m in means if not math.isnan(m)] or means
        mean = mean_of(arr)
        var = mean_of([(x - mean) * (x - mean) for x in arr])  # (inf past the float range)
        ordered = sorted(arr)
        mid = len(ordered) // 2
        median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
        return {"min": min(arr), "max": max(arr), "mean": mean, "median": median,
                "var": var, "std": math.sqrt(var)}

    def get_config(self) -> dict[str, Any]:
        return {"direction": self.direction,
                "observations": [o.get_config() for o in self.get_history()]}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MetricHistory:
        history = cls(config["direction"])
        for obs in config.get("observations", []):
            o = MetricObservation.from_config(obs)
            for value in o.value:
                history.update(value, o.step)
        return history

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, MetricHistory)
            and self.direction == other.direction
            and self.get_history() == other.get_history()
        )


class MetricsTracker:
    """The histories of every metric a trial reported, by name."""

    def __init__(self, metrics: Mapping[str, str] | Sequence[Any] | None = None) -> None:
        self.metrics: dict[str, MetricHistory] = {}
        self.register_metrics(metrics)

    def register_metrics(self, metrics: Mapping[str, str] | Sequence[Any] | None = None
                         ) -> None:
        """Register each metric: a {name: direction} dict, or a list of names or of objects
        with a ``name`` (and maybe a ``direction``: an Objective, a Keras metric), as
        KerasTuner takes them.

        Raises:
            ValueError: a name already registered, or a direction not "min" or "max".
            TypeError: an item that is neither a name nor has one.
        """
        if metrics is None:  # (every Trial made: the Mapping ABC's check costs more)
            return
        if isinstance(metrics, Mapping):
            for name, direction in metrics.items():
                self.register(name, direction)
            return
        if isinstance(metrics, str):  # one name, not its letters
            metrics = [metrics]
        for metric in metrics or []:
            if isinstance(metric, str):
                self.register(metric)
            elif isinstance(getattr(metric, "name", None), str):
                self.register(metric.name, getattr(metric, "direction", None))
            else:
                raise TypeError(f"A metric to register is a name or has one (an Objective, a "
                                f"Keras metric); received {metric!r}.")

    def exists(self, name: str) -> bool:
        return name in self.metrics

    def register(self, name: str, direction: str | None = None) -> None:
        """Start a history for ``name``; its direction is inferred when not given, and
        "min" when the name says nothing.

        Raises:
            ValueError: ``name`` is already registered.
        """
        if name in self.metrics:
            raise ValueError(f"Metric already exists: {name}")
        if direction is None:
            direction = infer_metric_direction(name) or "min"
        self.metrics[name] = MetricHistory(direction)

    def update(self, name: str, value: Any, step: int = 0) -> bool:
        """Record ``value`` for ``name`` at ``step``; returns whether the best value changed.

        Raises:
            InvalidMetricError: a name that is not a string or a value that is not a number.
        """
        value = check_metric(name, value)
        if name not in self.metrics:
            self.register(name)
        history = self.metrics[name]
        before = history.get_best_value()
        history.update(value, step)
        after = history.get_best_value()
        return not (before == after or (before is not None and after is not None
                                        and math.isnan(before) and math.isnan(after)))

    def get_history(self, name: str) -> list[MetricObservation]:
        return self._get(name).get_history()

    def set_history(self, name: str, observations: Sequence[MetricObservation]) -> None:
        """Replace the history of ``name`` (registered first when new)."""
        if name not in self.metrics:
            self.register(name)
        self.metrics[name].set_history(observations)

    def get_best_value(self, name: str) -> float | None:
        return self._get(name).get_best_value()

    def get_best_step(self, name: str) -> int | None:
        return self._get(name).get_best_step()

    def get_last_value(self, name: str) -> float | None:
        return self._get(name).get_last_value()

    def get_direction(self, name: str) -> str:
        return self._get(name).direction

    def get_statistics(self, name: str) -> dict[str, float]:
        return self._get(name).get_statistics()

    def _get(self, name: str) -> MetricHistory:
        if name not in self.metrics:
            raise ValueError(f"Unknown metric: {name}")
        return self.metrics[name]

    def get_config(self) -> dict[str, Any]:
        return {"metrics": {name: h.get_config() for name, h in self.metrics.items()}}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MetricsTracker:
        tracker = cls()
        for name, history in config.get("metrics", {}).items():
            tracker.metrics[name] = MetricHistory.from_config(history)
        return tracker

    def __iter__(self) -> Iterator[str]:
        return iter(self.metrics)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MetricsTracker) and self.metrics == other.metrics


class Trial:
    """One set of hyperparameter values, run (and perhaps retried) to a score.

    Attributes:
        trial_id: the id, unique in its search.
        hyperparameters: a HyperParameters whose ``values`` are this trial's values.
        metrics: the MetricsTracker of the current run (a retry starts a fresh one).
        score: the objective's best value once COMPLETED and scored, else None.
        best_step: the step at which the score was reached.
        status: a TrialStatus string.
        message: why it failed or was interrupted, when it did.
        tuner_id: the worker that holds or last held it.
        run: how many times it has been started (1 for a first run).
    """

    def __init__(
        self,
        hyperparameters: HyperParameters,
        trial_id: str | None = None,
        status: str = TrialStatus.RUNNING,
        message: str | None = None,
    ) -> None:
        if not isinstance(hyperparameters, HyperParameters):
            raise TypeError(f"Trial takes a HyperParameters as its first argument, received "
                            f"{hyperparameters!r}.")
        self.hyperparameters = hyperparameters
        # a Trial made by hand gets an id of its own (as KerasTuner's); the oracle's are
        # numbers in the search
        self.trial_id = uuid.uuid4().hex if trial_id is None else str(trial_id)
        self.metrics = MetricsTracker()
        self.score: float | None = None
        self.best_step: int | None = None
        self.status = check_status(status)
        self.message = message
        self.tuner_id: str | None = None
        self.run = 0

    @property
    def status(self) -> str:
        """A TrialStatus string; setting anything else raises ValueError."""
        return self._status

    @status.setter
    def status(self, value: str) -> None:
        self._status = check_status(value)

    @property
    def values(self) -> dict[str, Any]:
        """The trial's hyperparameter values, by name (its ``hyperparameters.values``)."""
        return self.hyperparameters.values

    def summary(self) -> None:
        """Print the trial id, its values, its score and any message."""
        print_text(self.summary_text())

    def display_hyperparameters(self) -> None:
        """Print the trial's values, one per line."""
        print_text(self._values_text())

    def _values_text(self) -> str:
        if not self.hyperparameters.values:
            return "default configuration"
        # (escaped: a name or value is the search's, which another may have written, and
        # a control character in it would act on the terminal)
        return "\n".join(f"{terminal_text(name)}: {terminal_text(value)}"
                         for name, value in self.hyperparameters.values.items())

    def summary_text(self) -> str:
        lines = [f"Trial {terminal_text(self.trial_id)} summary", "Hyperparameters:",
                 self._values_text()]
        if self.score is not None:
            lines.append(f"Score: {self.score}")
        if self.message is not None:  # (a traceback keeps its lines)
            lines.append(terminal_text(self.message, keep_newlines=True))
        return "\n".join(lines)

    def get_state(self) -> dict[str, Any]:
        """The trial as a dict that ``json.dumps`` can write and :meth:`from_state` reads."""
        return {
            "trial_id": self.trial_id,
            "hyperparameters": self.hyperparameters.get_config(),
            "metrics": self.metrics.get_config(),
            "score": self.score,
            "best_step": self.best_step,
            "status": self.status,
            "message": self.message,
            "tuner_id": self.tuner_id,
            "run": self.run,
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Take the trial ``state`` (from :meth:`get_state`).

        Raises:
            ValueError: ``state`` is not such a dict (a key missing).
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"A trial's state is the dict Trial.get_state() returns, "
                            f"received {type(state).__name__}.")
        missing = [k for k in ("trial_id", "hyperparameters", "metrics", "status")
                   if k not in state]
        if missing:
            raise ValueError(f"A trial's state (from Trial.get_state()) holds 'trial_id', "
                             f"'hyperparameters', 'metrics' and 'status'; this one lacks "
                             f"{', '.join(map(repr, missing))}.")
        self.trial_id = str(state["trial_id"])
        self.hyperparameters = HyperParameters.from_config(state["hyperparameters"])
        self.metrics = MetricsTracker.from_config(state["metrics"])
        self.score = state.get("score")
        self.best_step = state.get("best_step")
        self.status = state["status"]
        self.message = state.get("message")
        self.tuner_id = state.get("tuner_id")
        self.run = int(state.get("run") or 0)

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Trial:
        """A Trial rebuilt from :meth:`get_state` output (as KerasTuner's is)."""
        trial = cls(HyperParameters())
        trial.set_state(state)
        return trial

    def __repr__(self) -> str:
        return (f"Trial(trial_id={self.trial_id!r}, status={self.status!r}, "
                f"score={self.score!r}, values={self.hyperparameters.values!r})")
