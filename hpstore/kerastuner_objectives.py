"""Which metrics a KerasTuner multi-objective search combined, told from its trial files.

KerasTuner writes a list of objectives down only as the metric ``multi_objective``: at each
step the sum of the objectives' values, each negated when it is maximised. It records the
objectives' directions nowhere (a trial.json gives ``multi_objective`` the direction min and
every other metric the direction guessed from its name). The objectives are therefore the
one set of reported metrics, each added or subtracted, whose sum is ``multi_objective`` at
every step of every trial. ``hpstore import-keras-tuner`` uses this so that the imported
search has the MultiObjective the user's script gives.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

#: the metric KerasTuner's MultiObjective reports (its name is fixed)
MULTI_OBJECTIVE = "multi_objective"

#: at most this many other metrics are tried (3**n sign choices: 3**10 is 59,049); a project
#: that logs more names its objectives with --objective
MAX_CANDIDATES = 10

# one trial's metrics: {name: [(step, mean value at that step), ...]}
Histories = Mapping[str, Sequence[tuple[int, float]]]


def combined_objectives(trials: Sequence[Histories]) -> list[list[tuple[str, str]]] | None:
    """Every set of ``(metric, direction)`` whose signed sum is ``multi_objective`` at every
    step where it was reported, in the order the metrics first appear (empty when none is;
    None when there are more than MAX_CANDIDATES other metrics to try).

    More than one set fits only when the files cannot tell them apart (a metric that is
    always 0, two metrics always equal); the caller asks the user to name the objectives.
    Raises nothing.
    """
    names: list[str] = []
    rows: list[tuple[float, dict[str, float]]] = []
    for metrics in trials:
        if MULTI_OBJECTIVE not in metrics:
            continue
        by_step: dict[int, dict[str, float]] = {}
        for name, steps in metrics.items():
            if name != MULTI_OBJECTIVE and name not in names:
                names.append(name)
            for step, value in steps:
                by_step.setdefault(step, {})[name] = value
        rows += [(logs.pop(MULTI_OBJECTIVE), logs) for logs in by_step.values()
                 if MULTI_OBJECTIVE in logs and math.isfinite(logs[MULTI_OBJECTIVE])]
    if len(names) > MAX_CANDIDATES:
        return None
    if not rows:
        return []
    found = []
    # 0: not an objective; 1: minimised (added); -1: maximised (subtracted)
    for signs in itertools.product((0, 1, -1), repeat=len(names)):
        chosen = [(n, s) for n, s in zip(names, signs) if s]
        if chosen and all(_sums_to(total, logs, chosen) for total, logs in rows):
            found.append([(n, "min" if s == 1 else "max") for n, s in chosen])
    return found


def _sums_to(total: float, logs: Mapping[str, float], chosen: list[tuple[str, int]]) -> bool:
    if not all(n in logs for n, _ in chosen):
        return False
    terms = [s * logs[n] for n, s in chosen]
    # KerasTuner adds the same floats, perhaps in another order: allow rounding only
    scale = math.fsum(abs(t) for t in terms) + abs(total)
    return math.isfinite(scale) and abs(math.fsum(terms) - total) <= 1e-9 * max(scale, 1.0)
