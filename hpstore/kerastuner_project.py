"""A KerasTuner project folder, read and checked in full: its ``oracle.json`` (the space,
seed and oracle state) and every ``trial_*/trial.json`` (values, metric histories, score,
best step, status and message), for ``hpstore import-keras-tuner`` to plan a search from.

Every problem is a :class:`KerasTunerImportError` naming the file and what is wrong with it,
raised before anything is written anywhere.
"""

from __future__ import annotations

import json
import math
import os
import reprlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from hpstore.errors import HpStoreError, KerasTunerImportError
from hpstore.hyperparameters import HyperParameters
from hpstore.objective import infer_metric_direction
from hpstore.oracle.values import values_key
from hpstore.store.records import BOOKKEEPING
from hpstore.trial import TrialStatus

HYPERBAND_KEYS = ("brackets", "current_bracket", "current_iteration", "max_epochs", "factor",
                   "hyperband_iterations")
BAYESIAN_KEYS = ("num_initial_points", "alpha", "beta")
# what KerasTuner's own oracles write to oracle.json; any other key is a custom oracle's
KNOWN_KEYS = frozenset(("ongoing_trials", "hyperparameters", "start_order", "end_order",
                         "run_times", "retry_queue", "seed", "seed_state", "tried_so_far",
                         "id_to_hash", "display", "min_epochs", *HYPERBAND_KEYS,
                         *BAYESIAN_KEYS))


def fail(path: Path | str, problem: str) -> NoReturn:
    raise KerasTunerImportError(f"{path}: {problem}; nothing was imported.")


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_json(path: Path) -> Any:
    """The JSON document in ``path``; KerasTuner writes NaN and Infinity as bare words."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        fail(path, "file not found")
    except (OSError, UnicodeDecodeError) as exc:
        fail(path, f"cannot be read ({exc})")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        what = "empty" if not text.strip() else "not valid JSON"
        fail(path, f"{what} (line {exc.lineno}, column {exc.colno}: {exc.msg}): the file "
                    "is truncated or damaged")


def find_project(directory: Path) -> Path:
    """The oracle.json of the KerasTuner project ``directory``."""
    if not directory.exists():
        fail(directory, "no such directory")
    if not directory.is_dir():
        fail(directory, "not a directory; give KerasTuner's project folder "
                         "(directory/project_name, the one holding oracle.json)")
    oracle_file = directory / "oracle.json"
    if oracle_file.is_file():
        return oracle_file
    inner = sorted(p.parent.name for p in directory.glob("*/oracle.json"))
    if inner:
        fail(directory, "not a KerasTuner project directory (no oracle.json), but it holds "
                         f"the project(s) {', '.join(inner)}: give one of them, e.g. "
                         f"{directory / inner[0]}")
    fail(directory, "not a KerasTuner project directory: there is no oracle.json in it "
                     "(KerasTuner writes directory/project_name/oracle.json and "
                     "trial_*/trial.json)")


class KerasTunerTrial:
    """One trial.json, checked."""

    def __init__(self, path: Path, doc: Any) -> None:
        self.path = path
        if not isinstance(doc, Mapping):
            fail(path, f"expected a JSON object (a KerasTuner trial), found "
                        f"{type(doc).__name__}")
        for key in ("trial_id", "hyperparameters", "metrics", "status"):
            if key not in doc:
                fail(path, f"the trial has no {key!r} (every KerasTuner trial.json holds "
                            "trial_id, hyperparameters, metrics, score, best_step and status)")
        self.trial_id = doc["trial_id"]
        if not isinstance(self.trial_id, str) or not self.trial_id:
            fail(path, f"'trial_id' must be a non-empty string, found {self.trial_id!r}")
        if path.parent.name != f"trial_{self.trial_id}":
            fail(path, f"holds trial {self.trial_id!r}, but its folder is "
                        f"{path.parent.name!r} (KerasTuner writes trial_<id>/trial.json)")
        hps = doc["hyperparameters"]
        if not isinstance(hps, Mapping) or not isinstance(hps.get("values"), Mapping):
            fail(path, "'hyperparameters' must be an object with the trial's 'values'")
        self.values = dict(hps["values"])
        try:
            self.key = values_key(self.values)
        except (TypeError, ValueError) as exc:
            fail(path, f"the hyperparameter values cannot be stored ({exc})")
        self.status = doc["status"]
        if self.status not in TrialStatus.ALL:
            fail(path, f"unknown status {self.status!r} (expected one of "
                        f"{', '.join(TrialStatus.ALL)})")
        score = doc.get("score")
        if score is not None and not is_number(score):
            fail(path, f"'score' must be a number or null, found {score!r}")
        self.score = None if score is None or math.isnan(score) else float(score)
        best_step = doc.get("best_step")
        if best_step is not None and not (is_number(best_step) and best_step == int(best_step)):
            fail(path, f"'best_step' must be an integer or null, found {best_step!r}")
        self.best_step = None if best_step is None else int(best_step)
        message = doc.get("message")
        if message is not None and not isinstance(message, str):
            fail(path, f"'message' must be a string or null, found {type(message).__name__}")
        self.message = message
        self.metrics = self._read_metrics(doc["metrics"])

    def _read_metrics(self, metrics: Any) -> dict[str, tuple[str, list[tuple[int, list[Any]]]]]:
        """{name: (direction, [(step, [values...]), ...])} in the file's order."""
        if not isinstance(metrics, Mapping) or not isinstance(metrics.get("metrics", {}),
                                                              Mapping):
            fail(self.path, "'metrics' must be an object {\"metrics\": {name: history}}")
        out: dict[str, tuple[str, list[tuple[int, list[Any]]]]] = {}
        for name, history in metrics.get("metrics", {}).items():
            where = f"metric {name!r}"
            if not isinstance(history, Mapping) or not isinstance(
                    history.get("observations"), list):
                fail(self.path, f"{where} must be an object with a list of 'observations'")
            direction = history.get("direction")
            if direction is None:
                direction = infer_metric_direction(name) or "min"
            if direction not in ("min", "max"):
                fail(self.path, f"{where} has direction {direction!r}; expected min or max")
            steps = []
            for obs in history["observations"]:
                if not isinstance(obs, Mapping) or "value" not in obs or "step" not in obs:
                    fail(self.path, f"{where}: an observation must be an object with 'value' "
                                     f"and 'step', found {reprlib.repr(obs)}")
                step, value = obs["step"], obs["value"]
                if not (is_number(step) and math.isfinite(step) and step == int(step)):
                    fail(self.path, f"{where}: step {step!r} is not an integer")
                values = value if isinstance(value, list) else [value]
                if not values or not all(is_number(v) for v in values):
                    fail(self.path, f"{where}: the value at step {step} must be a number or a "
                                     f"non-empty list of numbers, found {reprlib.repr(value)}")
                steps.append((int(step), [float(v) for v in values]))
            out[name] = (direction, steps)
        return out

    def best(self, name: str) -> tuple[float, int] | None:
        """(best step mean, its first step) of a metric, as KerasTuner scores it."""
        direction, steps = self.metrics[name]
        means = [(math.fsum(v) / len(v), s) for s, v in steps]
        finite = [(m, s) for m, s in means if not math.isnan(m)]
        if not finite:
            return None
        best = (min if direction == "min" else max)(m for m, _ in finite)
        return best, next(s for m, s in finite if m == best)


class KerasTunerProject:
    """A KerasTuner project directory, read and checked in full."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory).expanduser().resolve()
        self.oracle_file = find_project(self.directory)
        doc = read_json(self.oracle_file)
        if not isinstance(doc, Mapping) or not isinstance(doc.get("hyperparameters"), Mapping):
            fail(self.oracle_file, "not a KerasTuner oracle file: it has no 'hyperparameters' "
                                    "(the search space)")
        self.state = doc
        self.space = self._read_space(doc["hyperparameters"])
        seed = doc.get("seed")
        if seed is not None and not is_int(seed):
            fail(self.oracle_file, f"'seed' must be an integer, found {seed!r}")
        self.seed = seed
        self.start_order = self._ids("start_order")
        self.end_order = self._ids("end_order")
        self.retry_queue = self._ids("retry_queue")
        self.ongoing = self._mapping("ongoing_trials", str)
        self.run_times = self._mapping("run_times", int)
        # the display's record of when each trial started (written when verbose)
        display: Mapping[str, Any] = doc["display"] if isinstance(doc.get("display"),
                                                                 Mapping) else {}
        starts = display.get("trial_start")
        self.trial_start = dict(starts) if isinstance(starts, Mapping) else {}
        self.search_start = display.get("search_start")
        self.trials = self._read_trials()

    def _read_space(self, config: Mapping[str, Any]) -> HyperParameters:
        if not isinstance(config.get("space"), list):
            fail(self.oracle_file, "'hyperparameters' has no 'space' list")
        try:
            return HyperParameters.from_config({"space": config["space"], "values": {}})
        except (HpStoreError, KeyError, TypeError, ValueError) as exc:
            fail(self.oracle_file, f"the search space cannot be read "
                                    f"({type(exc).__name__}: {exc})")

    def _ids(self, key: str) -> list[str]:
        ids = self.state.get(key, [])
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            fail(self.oracle_file, f"{key!r} must be a list of trial ids, found "
                                    f"{reprlib.repr(ids)}")
        return ids

    def _mapping(self, key: str, kind: type) -> dict[str, Any]:
        found = self.state.get(key, {})
        if not isinstance(found, Mapping) or not all(
                isinstance(v, kind) and not isinstance(v, bool) for v in found.values()):
            fail(self.oracle_file, f"{key!r} must be an object of {kind.__name__} values, "
                                    f"found {reprlib.repr(found)}")
        return dict(found)

    def _read_trials(self) -> list[KerasTunerTrial]:
        trials: dict[str, KerasTunerTrial] = {}
        for path in sorted(self.directory.glob("trial_*/trial.json")):
            trial = KerasTunerTrial(path, read_json(path))
            trials[trial.trial_id] = trial
        for key, ids in (("start_order", self.start_order), ("end_order", self.end_order),
                         ("retry_queue", self.retry_queue),
                         ("ongoing_trials", list(self.ongoing.values()))):
            for tid in ids:
                if tid not in trials:
                    fail(self.oracle_file, f"{key} lists trial {tid!r}, but "
                                            f"{self.directory / f'trial_{tid}' / 'trial.json'} "
                                            "is missing")
        for trial in trials.values():
            self._check_values(trial)
        first_seen = {tid: n for n, tid in enumerate(dict.fromkeys(self.start_order))}
        return sorted(trials.values(), key=lambda t: (
            first_seen.get(t.trial_id, len(first_seen)),
            (0, int(t.trial_id), "") if t.trial_id.isdigit() else (1, 0, t.trial_id)))

    def _check_values(self, trial: KerasTunerTrial) -> None:
        """Refuse a trial whose values are not values of the space (a name it does not
        hold, a value out of range, off its grid, of another type), as enqueue and
        add_trial refuse them. Hyperband's own values (tuner/...) are not in the space."""
        for name, value in trial.values.items():
            if name in BOOKKEEPING:
                continue
            twins = [hp for hp in self.space.space if hp.name == name]
            if not twins:
                fail(trial.path, f"the value {reprlib.repr(value)} is given for {name!r}, "
                                  "which is not a hyperparameter of the project's space "
                                  f"({self.oracle_file.name})")
            problems = []
            for hp in twins:
                try:
                    hp.check_value(value)
                    break
                except (TypeError, ValueError) as exc:
                    problems.append(str(exc))
            else:
                fail(trial.path, f"its value of {name!r} is not in the project's space: "
                                  f"{problems[0].rstrip('.')}")

    def detected_oracle(self) -> str:
        """KerasTuner's tuner name, told by the state its oracle saved (GridSearch saves
        none of its own, so it reads as RandomSearch)."""
        if all(k in self.state for k in HYPERBAND_KEYS):
            return "Hyperband"
        if all(k in self.state for k in BAYESIAN_KEYS):
            return "BayesianOptimization"
        return "RandomSearch"
