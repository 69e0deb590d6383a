"""Early stopping: rules that stop a hopeless trial on the values it reports as it trains.

A rule is a strategy beside the search algorithm: every oracle takes one as
``early_stopping=``. It is asked inside ``update_trial``'s transaction, after the reported
values are recorded, and sees two things: the trial's own curve (its objective value at
each step of this run, several reports at one step averaged) and the history of the other
trials as the store holds it at that moment. So every process sees the same decision, and
a decision, once recorded, survives a crash.

The rules follow Optuna's pruners (MedianPruner, PercentilePruner, SuccessiveHalvingPruner,
PatientPruner, ThresholdPruner); where hpstore differs it says so in the rule's docstring.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from hpstore.hyperparameters.base import numpy_scalar
from hpstore.trial import mean_of_steps_values


@dataclass(frozen=True)
class Curve:
    """The trial being decided: its objective's mean value at each step of this run.

    Attributes:
        steps: the steps reported, ascending.
        values: the mean value at each of them (NaN where NaN was reported).
        direction: "min" or "max".
    """

    steps: tuple[int, ...]
    values: tuple[float, ...]
    direction: str
    #: the best value, when the one who built the curve kept it (see CurvesSoFar)
    known_best: float | None = field(default=None, compare=False, repr=False)
    #: the last step the run had reached before this report (None: none), when the one
    #: who built the curve knew it (see :meth:`reached_before`)
    reached: int | None = field(default=None, compare=False, repr=False)
    knows_reached: bool = field(default=False, compare=False, repr=False)

    @property
    def step(self) -> int:
        """The last step reported (the one being decided)."""
        return self.steps[-1]

    @property
    def last(self) -> float:
        return self.values[-1]

    def best(self) -> float:
        """The best value so far (NaN steps ignored; NaN when every step is NaN)."""
        if self.known_best is not None:
            return self.known_best
        finite = [v for v in self.values if not math.isnan(v)]
        if not finite:
            return math.nan
        return min(finite) if self.direction == "min" else max(finite)

    def previous_step(self) -> int | None:
        return self.steps[-2] if len(self.steps) > 1 else None

    def reached_before(self) -> int | None:
        """The last step the run had reached before this report: the step before the last,
        unless this report was of a step already passed (a late report of an earlier step,
        another execution's report of a step reached), which leaves it the last."""
        return self.reached if self.knows_reached else self.previous_step()


class History(Protocol):
    """What a rule may know of the other trials, read in the deciding transaction."""

    def completed_count(self) -> int:
        """How many trials have COMPLETED (a trial stopped early does not count)."""

    def completed_values_at(self, step: int) -> list[float]:
        """The objective value at ``step`` of each COMPLETED trial that reported it."""

    def values_from(self, step: int) -> list[float]:
        """For every other trial (of any status) that reported a step at or after ``step``
        in its current run: its value at the first such step."""


def better(a: float, b: float, direction: str) -> bool:
    """Whether ``a`` is strictly better than ``b``."""
    return a < b if direction == "min" else a > b


class StoppingRule:
    """Base of the rules: ``decide`` returns None to go on, or why the trial should stop."""

    def decide(self, curve: Curve, history: History) -> str | None:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """The rule as JSON, stored with the project (a resumed search keeps its rule)."""
        return {"class_name": type(self).__name__, "config": dict(self._config())}

    def _config(self) -> Mapping[str, Any]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StoppingRule) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash(repr(self.get_config()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._config().items())
        return f"{type(self).__name__}({args})"


#: the largest step a report can be at (a 64-bit integer, as the store holds it)
_MAX_STEP = 2**63 - 1


def _check_int(name: str, value: Any, low: int) -> int:
    # (bounded above too: a step past 64 bits no report reaches, and a power of one to
    # compute at every report, inside the write transaction, ran for minutes)
    if isinstance(value, bool) or not (isinstance(value, int) or numpy_scalar(value, "integer")) \
            or not low <= value <= _MAX_STEP:
        raise ValueError(f"`{name}` must be an int of at least {low} and at most 2**63 - 1 "
                         f"(64 bits, as steps are), received {value!r}.")
    return int(value)


def _check_number(name: str, value: Any, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    number = isinstance(value, (int, float)) or numpy_scalar(value, "number")
    try:  # (an int past a float's range: not finite as a float either)
        finite = number and math.isfinite(float(value))
    except OverflowError:
        finite = False
    if isinstance(value, bool) or not finite:
        # (an infinite bound has no JSON form to be stored with the search; leaving the
        # bound out says the same)
        raise ValueError(f"`{name}` must be a finite number"
                         f"{' (or left out)' if optional else ''}, received {value!r}.")
    return float(value)


def _on_check_step(curve: Curve, warmup_steps: int, interval_steps: int) -> bool:
    """Whether this report is the first one in its interval after the warm-up: rules that
    compare with other trials decide once per interval, not at every report."""
    step = curve.step
    if step < warmup_steps:
        return False
    window = (step - warmup_steps) // interval_steps * interval_steps + warmup_steps
    previous = curve.previous_step()
    return previous is None or previous < window


class PercentileStopping(StoppingRule):
    """Stop a trial whose best value so far is worse than the ``percentile``-th best of
    the COMPLETED trials' values at the same step (Optuna's PercentilePruner).

    Args:
        percentile: 0-100; 25 keeps the trials in the best quarter at each step.
        min_trials: no decision before this many trials have COMPLETED.
        warmup_steps: no decision before this step.
        interval_steps: decide at most once per this many steps (after the warm-up).
        min_trials_at_step: no decision when fewer completed trials reported this step.

    An all-NaN curve is stopped. A trial whose best equals the percentile goes on.

    Raises:
        ValueError: an argument out of range.
    """

    def __init__(self, percentile: float, min_trials: int = 5, warmup_steps: int = 0,
                 interval_steps: int = 1, min_trials_at_step: int = 1) -> None:
        value = _check_number("percentile", percentile)
        assert value is not None
        if not 0 <= value <= 100:
            raise ValueError(f"`percentile` must be between 0 and 100, received {percentile!r}.")
        self.percentile = value
        self.min_trials = _check_int("min_trials", min_trials, 0)
        self.warmup_steps = _check_int("warmup_steps", warmup_steps, 0)
        self.interval_steps = _check_int("interval_steps", interval_steps, 1)
        self.min_trials_at_step = _check_int("min_trials_at_step", min_trials_at_step, 1)

    def _config(self) -> Mapping[str, Any]:
        return {"percentile": self.percentile, "min_trials": self.min_trials,
                "warmup_steps": self.warmup_steps, "interval_steps": self.interval_steps,
                "min_trials_at_step": self.min_trials_at_step}

    def _name(self) -> str:
        return f"the {self.percentile:g}th percentile"

    def decide(self, curve: Curve, history: History) -> str | None:
        if not _on_check_step(curve, self.warmup_steps, self.interval_steps):
            return None
        completed = history.completed_count()
        if completed == 0 or completed < self.min_trials:
            return None
        best = curve.best()
        if math.isnan(best):
            return f"every value it reported up to step {curve.step} is NaN"
        others = history.completed_values_at(curve.step)
        if len(others) < self.min_trials_at_step:
            return None
        # the percentile of the best ones: for a maximised objective, counted from the top
        q = self.percentile if curve.direction == "min" else 100 - self.percentile
        # NaN values say nothing of where the others stand: left out here, not by numpy,
        # which warns in the worker's output when nothing is left
        known = [value for value in others if not math.isnan(value)]
        if not known:
            return None
        import numpy as np  # here: the tools that read a search never load it

        threshold = float(np.percentile(np.asarray(known, dtype=float), q))
        if not better(threshold, best, curve.direction):
            return None
        return (f"its best value so far, {best:.6g}, is worse than {self._name()} "
                f"{threshold:.6g} of {len(others)} completed trials at step {curve.step}")


class MedianStopping(PercentileStopping):
    """Stop a trial whose best value so far is worse than the median of the COMPLETED
    trials' values at the same step (Optuna's MedianPruner, its default).

    Args:
        min_trials, warmup_steps, interval_steps, min_trials_at_step: as for
            :class:`PercentileStopping`.
    """

    def __init__(self, min_trials: int = 5, warmup_steps: int = 0, interval_steps: int = 1,
                 min_trials_at_step: int = 1) -> None:
        super().__init__(50.0, min_trials, warmup_steps, interval_steps, min_trials_at_step)

    def _config(self) -> Mapping[str, Any]:
        config = dict(super()._config())
        del config["percentile"]
        return config

    def _name(self) -> str:
        return "the median"


class SuccessiveHalving(StoppingRule):
    """Asynchronous successive halving (ASHA; Optuna's SuccessiveHalvingPruner).

    Rung k is at step ``min_resource * reduction_factor ** (min_early_stopping_rate + k)``.
    When a trial first reports a step at or past a rung, its value there is compared with
    the values every other trial had at that rung (any status); it goes on only if it is in
    the best ``1 / reduction_factor`` of them (with fewer than ``reduction_factor`` trials
    at the rung, only the best goes on).

    Differs from Optuna: a trial's rung value is read from its reported values (the first
    step at or past the rung), not kept as a separate attribute, so it is the same whichever
    process asks; ``min_resource`` has no "auto" setting.

    Raises:
        ValueError: an argument out of range.
    """

    def __init__(self, min_resource: int = 1, reduction_factor: int = 3,
                 min_early_stopping_rate: int = 0) -> None:
        self.min_resource = _check_int("min_resource", min_resource, 1)
        self.reduction_factor = _check_int("reduction_factor", reduction_factor, 2)
        self.min_early_stopping_rate = _check_int("min_early_stopping_rate",
                                                  min_early_stopping_rate, 0)
        step = self.min_resource  # (multiplied out, never raised to a power of millions)
        for _ in range(self.min_early_stopping_rate):
            step *= self.reduction_factor
            if step > _MAX_STEP:
                raise ValueError(
                    f"The first rung, at min_resource * reduction_factor ** "
                    f"min_early_stopping_rate = {self.min_resource} * "
                    f"{self.reduction_factor} ** {self.min_early_stopping_rate}, is past any "
                    "step a report can be at (2**63 - 1); give a smaller "
                    "min_early_stopping_rate.")

    def _config(self) -> Mapping[str, Any]:
        return {"min_resource": self.min_resource, "reduction_factor": self.reduction_factor,
                "min_early_stopping_rate": self.min_early_stopping_rate}

    def rung_steps(self, up_to: int) -> list[int]:
        """The rung steps up to and including ``up_to``."""
        steps: list[int] = []
        k = 0
        while True:
            step = self.min_resource * self.reduction_factor ** (
                self.min_early_stopping_rate + k)
            if step > up_to:
                return steps
            steps.append(step)
            k += 1

    def decide(self, curve: Curve, history: History) -> str | None:
        # a rung is judged once, when the run first reaches it: a report of a step already
        # passed judges none again (competition grown since would stop a trial it passed)
        previous = curve.reached_before()
        value = curve.last
        for rung, rung_step in enumerate(self.rung_steps(curve.step)):
            if previous is not None and previous >= rung_step:
                continue  # this rung was passed (and judged) at an earlier report
            if math.isnan(value):
                return f"its value at rung {rung} (step {rung_step}) is NaN"
            competing = sorted(v for v in history.values_from(rung_step) if not math.isnan(v))
            competing.append(value)
            competing.sort(reverse=curve.direction == "max")
            keep = max(len(competing) // self.reduction_factor, 1)
            cutoff = competing[keep - 1]
            if better(cutoff, value, curve.direction):
                return (f"its value {value:.6g} at rung {rung} (step {rung_step}) is not in "
                        f"the best {keep} of {len(competing)} trials there (cut-off "
                        f"{cutoff:.6g})")
        return None


class Patience(StoppingRule):
    """Stop a trial whose best value of its last ``patience + 1`` steps does not improve
    by more than ``min_delta`` on its best before them. With a ``rule``, that rule decides
    instead whenever the trial has stalled so (Optuna's PatientPruner).

    Differs from Optuna: ``min_delta`` is what Keras's EarlyStopping calls it, the least
    change that counts as an improvement (Optuna's is a tolerance for getting worse), so
    ``Patience(patience=5, min_delta=1e-3)`` means what a Keras user expects.

    Raises:
        ValueError: ``patience`` below 0 or ``min_delta`` negative.
        TypeError: ``rule`` is not a stopping rule.
    """

    def __init__(self, rule: StoppingRule | None = None, patience: int = 3,
                 min_delta: float = 0.0) -> None:
        if rule is not None and not isinstance(rule, StoppingRule):
            raise TypeError(f"`rule` must be a stopping rule or None, received {rule!r}.")
        self.rule = rule
        self.patience = _check_int("patience", patience, 0)
        delta = _check_number("min_delta", min_delta)
        assert delta is not None
        if delta < 0:
            raise ValueError(f"`min_delta` must be at least 0, received {min_delta!r}.")
        self.min_delta = delta

    def _config(self) -> Mapping[str, Any]:
        return {"rule": None if self.rule is None else self.rule.get_config(),
                "patience": self.patience, "min_delta": self.min_delta}

    def decide(self, curve: Curve, history: History) -> str | None:
        if len(curve.values) <= self.patience + 1:
            return None
        split = len(curve.values) - self.patience - 1
        before = Curve(curve.steps[:split], curve.values[:split], curve.direction).best()
        after = Curve(curve.steps[split:], curve.values[split:], curve.direction).best()
        if math.isnan(before) or math.isnan(after):
            return None
        sign = 1.0 if curve.direction == "min" else -1.0
        if sign * (before - after) > self.min_delta:
            return None  # improved
        if self.rule is not None:
            return self.rule.decide(curve, history)
        return (f"it has not improved on {before:.6g} by more than {self.min_delta:g} in its "
                f"last {self.patience + 1} steps")


class Threshold(StoppingRule):
    """Stop a trial whose latest value is NaN, below ``lower`` or above ``upper``
    (Optuna's ThresholdPruner).

    Raises:
        ValueError: neither bound given, or ``lower`` above ``upper``.
    """

    def __init__(self, lower: float | None = None, upper: float | None = None,
                 warmup_steps: int = 0, interval_steps: int = 1) -> None:
        self.lower = _check_number("lower", lower, optional=True)
        self.upper = _check_number("upper", upper, optional=True)
        if self.lower is None and self.upper is None:
            raise ValueError("Threshold needs `lower`, `upper` or both.")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValueError(f"`lower` ({lower}) must not be above `upper` ({upper}).")
        self.warmup_steps = _check_int("warmup_steps", warmup_steps, 0)
        self.interval_steps = _check_int("interval_steps", interval_steps, 1)

    def _config(self) -> Mapping[str, Any]:
        return {"lower": self.lower, "upper": self.upper, "warmup_steps": self.warmup_steps,
                "interval_steps": self.interval_steps}

    def decide(self, curve: Curve, history: History) -> str | None:
        if not _on_check_step(curve, self.warmup_steps, self.interval_steps):
            return None
        value = curve.last
        if math.isnan(value):
            return f"its value at step {curve.step} is NaN"
        if self.lower is not None and value < self.lower:
            return f"its value {value:.6g} at step {curve.step} is below {self.lower:g}"
        if self.upper is not None and value > self.upper:
            return f"its value {value:.6g} at step {curve.step} is above {self.upper:g}"
        return None


RULES: dict[str, type[StoppingRule]] = {
    cls.__name__: cls for cls in (PercentileStopping, MedianStopping, SuccessiveHalving,
                                  Patience, Threshold)
}


def check_rule(rule: Any) -> None:
    """Refuse what cannot be a search's stopping rule.

    A rule is stored with the search and rebuilt from its config by every worker, a resumed
    search and the tools, none of which holds the code of a rule of one's own: only
    hpstore's rules (not subclasses, whose code is theirs) can be rebuilt.

    Raises:
        TypeError: not one of hpstore's rules.
    """
    if rule is None or type(rule) in RULES.values():
        return
    names = ", ".join(f"hpstore.{name}" for name in RULES)
    if isinstance(rule, StoppingRule):
        raise TypeError(
            f"`early_stopping` {type(rule).__qualname__} is a rule of one's own: a search "
            "stores its rule, and every worker, a resumed search and the tools rebuild it "
            f"from what is stored, without one's own code. Use one of {names}.")
    raise TypeError(f"`early_stopping` must be a stopping rule ({names}) or None; "
                    f"received {rule!r}.")


def rule_from_config(config: Mapping[str, Any] | None) -> StoppingRule | None:
    """Rebuild a rule from :meth:`StoppingRule.get_config` (None stays None).

    Raises:
        ValueError: an unknown rule or a config that does not describe one.
    """
    if config is None:
        return None
    if not isinstance(config, Mapping) or config.get("class_name") not in RULES:
        raise ValueError(f"Not a stopping rule's config: {config!r}.")
    args = dict(config.get("config") or {})
    if config["class_name"] == "Patience":
        args["rule"] = rule_from_config(args.get("rule"))
    return RULES[config["class_name"]](**args)


#: the last point a run's kept curve holds: (observation id, step, value)
Point = tuple[int, int, float]


class CurvesSoFar:
    """The objective's points of the runs this process reports, kept as they arrive, so
    that a report does not read and average the whole run again (which made a run's
    reports cost the square of its length).

    The store looks for the last point kept (:meth:`last`) where it was read: found as
    it was (the same id, step and value), it gives only the points after it; else (the
    project replaced meanwhile, nothing kept) every point of the run, with None for the
    last. :meth:`curve` builds the rule's Curve from those and what is kept, changing
    nothing; :meth:`keep` adds them once the transaction that read them has committed (a
    transaction rolled back or retried leaves nothing here), and only to the very curve
    they followed. Each thread keeps its own curves: a thread's reports never wait for,
    nor change, another's.
    """

    LIMIT = 64  # runs kept per thread (the least recently kept forgotten first)

    def __init__(self) -> None:
        self._local = threading.local()
        self._generation = 0

    def _runs(self) -> dict[tuple[int, int], list[Any]]:
        # (trial key, run) -> [last point, {step: values}, steps ascending, means, the best
        # mean (NaN while none)]
        local = self._local
        if getattr(local, "generation", None) != self._generation:
            local.runs, local.generation = {}, self._generation
        runs: dict[tuple[int, int], list[Any]] = local.runs
        return runs

    def last(self, key: int, run: int) -> Point | None:
        """The last point kept of the run (None: none)."""
        entry = self._runs().get((key, run))
        return None if entry is None else entry[0]

    def curve(self, key: int, run: int, after: Point | None, points: Sequence[Point],
              direction: str) -> Curve | None:
        """The run's curve: the points kept up to ``after`` and ``points`` after it (when
        ``after`` is None, ``points`` is the whole run); None when the curve kept is no
        longer the one ``after`` ends (forgotten meanwhile: this report goes unjudged, the
        next one reads the run whole)."""
        entry = self._runs().get((key, run)) if after is not None else None
        if after is not None and (entry is None or not same_point(entry[0], after)):
            return None
        by_step: dict[int, list[float]] = {} if entry is None else entry[1]
        steps: list[int] = [] if entry is None else entry[2]
        means: list[float] = [] if entry is None else entry[3]
        if after is not None:
            reached = steps[-1] if steps else None
        else:  # the whole run: this report's point is the newest (one a report, a metric)
            newest = max(points, key=lambda p: p[0]) if points else None
            reached = max((int(p[1]) for p in points if p is not newest), default=None)
        touched: dict[int, list[float]] = {}
        for _, step, value in points:
            step = int(step)
            if step not in touched:
                touched[step] = list(by_step.get(step, ()))
            touched[step].append(float(value))
        new = sorted(touched)
        if not steps or (new and new[0] > steps[-1]):  # the usual case: later steps only
            added = [mean_of_steps_values(touched[s]) for s in new]
            best = _best_of(math.nan if entry is None else entry[4], added, direction)
            return Curve((*steps, *new), (*means, *added), direction, known_best=best,
                         reached=reached, knows_reached=True)
        merged = dict(zip(steps, means))
        merged.update((s, mean_of_steps_values(v)) for s, v in touched.items())
        order = sorted(merged)
        return Curve(tuple(order), tuple(merged[s] for s in order), direction,
                     reached=reached, knows_reached=True)

    def keep(self, key: int, run: int, after: Point | None, points: Sequence[Point],
             direction: str) -> None:
        """Add ``points`` (committed; read after ``after``, or the whole run when None) to
        the run's curve. Points that followed another curve than the one kept are not
        added to it: the run is then read whole at its next report."""
        runs = self._runs()
        entry = runs.pop((key, run), None)  # (put back last: the most recently kept)
        if after is None:
            entry = [None, {}, [], [], math.nan]
        elif entry is None or not same_point(entry[0], after):
            return
        if not points:
            runs[(key, run)] = entry
            return
        while len(runs) >= self.LIMIT:
            del runs[next(iter(runs))]
        _, by_step, steps, means, _ = entry
        later = not steps or min(int(s) for _, s, _ in points) > steps[-1]
        for _, step, value in points:
            step = int(step)
            if step in by_step:
                by_step[step].append(float(value))
                at = bisect.bisect_left(steps, step)
                means[at] = mean_of_steps_values(by_step[step])
            else:
                by_step[step] = [float(value)]
                at = bisect.bisect_left(steps, step)
                steps.insert(at, step)
                means.insert(at, mean_of_steps_values(by_step[step]))
        entry[0] = max(points, key=lambda p: p[0])
        # a later step only adds to the best; an earlier step's mean may have changed
        entry[4] = (_best_of(entry[4], means[-len({int(s) for _, s, _ in points}):], direction)
                    if later else _best_of(math.nan, means, direction))
        runs[(key, run)] = entry

    def clear(self) -> None:
        """Forget every thread's curves (the project may have been replaced)."""
        self._generation += 1


def same_point(a: Point | None, b: Point | None) -> bool:
    """Whether two points are the same observation as read (NaN equal to NaN)."""
    if a is None or b is None:
        return a is b
    return a[0] == b[0] and a[1] == b[1] and (
        a[2] == b[2] or (math.isnan(a[2]) and math.isnan(b[2])))


def _best_of(best: float, values: Sequence[float], direction: str) -> float:
    """The best of ``best`` and ``values``, NaN ignored (NaN when all are)."""
    finite = [v for v in values if not math.isnan(v)]
    if not math.isnan(best):
        finite.append(best)
    if not finite:
        return math.nan
    return min(finite) if direction == "min" else max(finite)


def curve_from(observations: Sequence[tuple[int, float]], direction: str) -> Curve:
    """A Curve from (step, value) observations: several at one step are averaged."""
    by_step: dict[int, list[float]] = {}
    for step, value in observations:
        by_step.setdefault(int(step), []).append(float(value))
    steps = tuple(sorted(by_step))
    values = tuple(mean_of_steps_values(by_step[s]) for s in steps)
    return Curve(steps, values, direction)
