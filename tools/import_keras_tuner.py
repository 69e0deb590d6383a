"""hpstore import-keras-tuner DIR DB: bring a KerasTuner project directory into a search file.

DIR is KerasTuner's ``directory/project_name`` folder: its ``oracle.json`` (the space, seed
and oracle state) and every ``trial_*/trial.json`` (values, metric histories, score, best
step, status and message) become one project in DB, trial ids and creation order kept, so
the matching hpstore oracle can resume the search. Checkpoints are not read.

Times: KerasTuner records only when each trial started (in oracle.json, when its display
was on), never when one ended, and file times change with every copy. So a trial's start
is the recorded one or empty, its end is empty, and the time it was created (and its
status changes and metric rows) is its start, else the search's recorded start, else the
time of the import.

Everything is checked before DB is opened, and written in one transaction: a directory
that cannot be imported leaves DB exactly as it was (or not created at all).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from hpstore import queries
from hpstore.errors import HpStoreError, KerasTunerImportError
from hpstore.kerastuner_objectives import (
    MAX_CANDIDATES,
    MULTI_OBJECTIVE,
    combined_objectives,
)
from hpstore.kerastuner_project import (
    BAYESIAN_KEYS,
    HYPERBAND_KEYS,
    KNOWN_KEYS,
    KerasTunerProject,
    KerasTunerTrial,
    fail,
)
from hpstore.objective import (
    DefaultObjective,
    MultiObjective,
    Objective,
    infer_metric_direction,
)
from hpstore.oracle import Oracle
from hpstore.oracles import (
    BayesianOptimizationOracle,
    GridSearchOracle,
    HyperbandOracle,
    RandomSearchOracle,
)
from hpstore.rendering import terminal_text
from hpstore.store import NewProject, open_store, shown
from hpstore.store.postgresql import is_url
from hpstore.tooling import at_least, command_parser, help_text, run_tool
from hpstore.trial import MetricHistory, TrialStatus

# KerasTuner's tuner (and oracle) names -> the hpstore oracle that continues that search
ORACLES: dict[str, type[Oracle]] = {
    "RandomSearch": RandomSearchOracle,
    "GridSearch": GridSearchOracle,
    "BayesianOptimization": BayesianOptimizationOracle,
    "Hyperband": HyperbandOracle,
}
_ALIASES = {"random": "RandomSearch", "grid": "GridSearch", "bayesian": "BayesianOptimization",
            "hyperband": "Hyperband"}
_WAITING = "Was {} in the KerasTuner project when it was imported; queued to run again."


# -- the objective -------------------------------------------------------------------------
def _objective(name: str, direction: str) -> Objective:
    if name == "default_objective" and direction == "min":
        return DefaultObjective()  # what run_trial returning a float reports
    return Objective(name, direction)


def parse_objectives(given: list[str], project: KerasTunerProject) -> Objective:
    """``NAME`` or ``NAME:min|max`` options as an objective (several: a MultiObjective)."""
    parts = []
    for text in given:
        head, colon, tail = text.rpartition(":")
        name, direction = (head, tail.lower()) if colon and tail.lower() in ("min", "max") \
            else (text, "")
        found: str | None = direction
        if not found:
            seen = [t.metrics[name][0] for t in project.trials if name in t.metrics]
            found = seen[0] if seen else infer_metric_direction(name)
        if found is None:
            not_a_direction = (f" ({tail!r} after the ':' is not a direction)" if colon
                               else "")
            raise KerasTunerImportError(
                f"--objective {text}: the direction of {name!r} is not known{not_a_direction}"
                f"; write {head if colon else name}:min or {head if colon else name}:max.")
        parts.append(_objective(name, found))
    return parts[0] if len(parts) == 1 else MultiObjective(parts)


def infer_objective(project: KerasTunerProject) -> Objective:
    """The metric whose best value is the score of every scored trial (KerasTuner does not
    write its objective down)."""
    scored = [t for t in project.trials if t.status == TrialStatus.COMPLETED
              and t.score is not None]
    where = project.directory
    if not scored:
        names = list(dict.fromkeys(n for t in project.trials for n in t.metrics))
        if MULTI_OBJECTIVE in names:
            return _multi_objective(project)
        if not names:
            return DefaultObjective()
        if len(names) == 1:
            direction = next(t.metrics[names[0]][0] for t in project.trials
                             if names[0] in t.metrics)
            return _objective(names[0], direction)
        raise KerasTunerImportError(
            f"{where}: no completed trial has a score, so the objective cannot be told from "
            f"the metrics {', '.join(names)}; give it with --objective NAME[:min|max].")
    names = [n for n in scored[0].metrics if all(n in t.metrics for t in scored)]

    def matches(name: str, steps: bool) -> bool:
        for t in scored:
            best = t.best(name)
            if best is None or t.score is None or not math.isclose(
                    best[0], t.score, rel_tol=1e-9, abs_tol=1e-12):
                return False
            if steps and t.best_step is not None and best[1] != t.best_step:
                return False
        return True

    found = [n for n in names if matches(n, steps=False)]
    if len(found) > 1:
        found = [n for n in found if matches(n, steps=True)] or found
    if len(found) != 1:
        what = ("no metric's best value is the score of every completed trial" if not found
                else f"several metrics fit the scores ({', '.join(found)})")
        raise KerasTunerImportError(
            f"{where}: KerasTuner does not record the objective and {what}; give it with "
            "--objective NAME[:min|max].")
    name = found[0]
    if name == MULTI_OBJECTIVE:
        return _multi_objective(project)
    return _objective(name, scored[0].metrics[name][0])


def _multi_objective(project: KerasTunerProject) -> MultiObjective:
    """The list of objectives a KerasTuner search combined into ``multi_objective`` (it
    writes neither their names nor their directions down), so that the script's own list
    resumes the imported search."""
    histories = [{name: [(step, math.fsum(v) / len(v)) for step, v in steps]
                  for name, (_, steps) in t.metrics.items()} for t in project.trials]
    found = combined_objectives(histories)
    if found is None or len(found) != 1:
        what = (f"they report more than {MAX_CANDIDATES} other metrics, too many to find "
                "the ones that add up to it" if found is None
                else "no set of its other metrics adds up to it" if not found
                else "several sets of its other metrics add up to it ("
                + "; ".join(" + ".join(f"{n}:{d}" for n, d in f) for f in found[:3]) + ")")
        raise KerasTunerImportError(
            f"{project.directory}: the trials report KerasTuner's {MULTI_OBJECTIVE!r} (a list "
            f"of objectives) and {what}; give the objectives with one --objective NAME:min|max "
            "each, as the script lists them.")
    return MultiObjective([Objective(name, direction) for name, direction in found[0]])


# -- the project document ---------------------------------------------------------------------
def _oracle_class(name: str | None, project: KerasTunerProject) -> tuple[str, type[Oracle]]:
    if name is None:
        tuner = project.detected_oracle()
        return tuner, ORACLES[tuner]
    key = name.removesuffix("Oracle") if name.endswith("Oracle") else name
    key = _ALIASES.get(key.lower(), key)
    for tuner, cls in ORACLES.items():
        if key.lower() == tuner.lower():
            return tuner, cls
    raise KerasTunerImportError(
        f"--oracle {name}: not one of {', '.join(ORACLES)} (or their hpstore names "
        f"{', '.join(c.__name__ for c in ORACLES.values())}).")


def _search_args(tuner: str, project: KerasTunerProject) -> dict[str, Any]:
    """The constructor arguments of the hpstore oracle that define this search."""
    state = project.state
    if tuner == "BayesianOptimization" and all(k in state for k in BAYESIAN_KEYS):
        return {k: state[k] for k in BAYESIAN_KEYS}
    if tuner == "Hyperband":
        if not all(k in state for k in HYPERBAND_KEYS):
            fail(project.oracle_file, "a Hyperband import needs the oracle state KerasTuner's "
                                       "Hyperband saves (max_epochs, factor, brackets, ...), "
                                       "and this oracle.json has none")
        return {k: state[k] for k in ("max_epochs", "factor", "hyperband_iterations")}
    return {}


def _hyperband_state(project: KerasTunerProject) -> dict[str, Any]:
    state = project.state
    try:
        brackets = [{"bracket": int(b["bracket_num"]),
                     "rounds": [[{"past_id": e["past_id"], "id": e["id"]} for e in r]
                                for r in b["rounds"]]}
                    for b in state["brackets"]]
        return {"bracket": int(state["current_bracket"]),
                "iteration": int(state["current_iteration"]), "brackets": brackets}
    except (KeyError, TypeError, ValueError) as exc:
        fail(project.oracle_file, f"the Hyperband brackets cannot be read "
                                   f"({type(exc).__name__}: {exc})")


def _when(text: Any) -> float | None:
    """A time KerasTuner's display wrote (local time, ISO) as Unix seconds."""
    try:
        return datetime.fromisoformat(text).timestamp() if isinstance(text, str) else None
    except ValueError:
        return None


def _numbers(trials: list[KerasTunerTrial]) -> list[int]:
    """KerasTuner's trial ids are its creation counter, zero-padded; keep them as numbers so
    the hpstore oracle goes on with the next one."""
    ids = [t.trial_id for t in trials]
    if all(i.isdigit() for i in ids) and len({int(i) for i in ids}) == len(ids):
        return [int(i) for i in ids]
    # other ids (a custom oracle's): numbered past every numeric id, so the ids hpstore
    # makes from the numbers that follow can never be taken already
    start = max((int(i) + 1 for i in ids if i.isdigit()), default=0)
    return list(range(start, start + len(ids)))


def _observations(t: KerasTunerTrial, objective: Objective) -> list[tuple[str, str, int, float]]:
    """(metric, direction, step, value) rows, as hpstore's update_trial writes them: a row
    per reported value, and for several objectives their combined value at each step."""
    rows = []
    for name, (direction, steps) in t.metrics.items():
        direction = objective.direction_of(name) or direction
        rows += [(name, direction, step, v) for step, values in steps for v in values]
    if isinstance(objective, MultiObjective) and objective.name not in t.metrics:
        logs: dict[int, dict[str, float]] = {}
        for name, (_, steps) in t.metrics.items():
            for step, values in steps:
                logs.setdefault(step, {})[name] = math.fsum(values) / len(values)
        rows += [(objective.name, objective.direction, step, objective.get_value(found))
                 for step, found in sorted(logs.items()) if objective.has_value(found)]
    return rows


def _score(t: KerasTunerTrial, rows: list[tuple[str, str, int, float]],
           objective: Objective) -> tuple[float, int | None]:
    """A completed trial's score and best step, as hpstore scores it; KerasTuner's own
    numbers when they agree (they differ when --objective names another metric)."""
    history = MetricHistory(objective.direction)
    for name, _, step, value in rows:
        if name == objective.name:
            history.update(value, step)
    best = history.get_best_value()
    if best is None or math.isnan(best):
        fail(t.path, f"the trial is COMPLETED but never reported a value of the objective "
                      f"{objective.name!r}; choose another with --objective")
    if t.score is not None and math.isclose(t.score, best, rel_tol=1e-9, abs_tol=1e-12):
        return t.score, t.best_step if t.best_step is not None else history.get_best_step()
    return best, history.get_best_step()


def build_trials(project: KerasTunerProject, objective: Objective,
                 now: float) -> tuple[list[dict[str, Any]], int]:
    """The trials of the state document, and the length of the retry queue."""
    queue = list(dict.fromkeys(project.retry_queue))
    running = [t.trial_id for t in project.trials if t.status in (
        TrialStatus.RUNNING, TrialStatus.IDLE) and t.trial_id not in queue]
    queue += running
    tuner_of = {tid: tuner for tuner, tid in project.ongoing.items()}
    out = []
    # KerasTuner's trial.json records no time. Its display writes when each trial started
    # (oracle.json, when verbose); nothing records when one ended. A file's mtime says when
    # it was last copied as much as when it was written, so it is not used: an unknown start
    # stays empty, as does every end. created_at, the status log and the metric rows need a
    # time: the start when known, else the search's start, else the time of the import.
    search_start = _when(project.search_start)
    for number, t in zip(_numbers(project.trials), project.trials):
        started = _when(project.trial_start.get(t.trial_id))
        known = started or search_start or now
        ended_runs = project.run_times.get(t.trial_id, 0)
        status, message, queued, interruptions = t.status, t.message, None, 0
        if status in (TrialStatus.RUNNING, TrialStatus.IDLE):
            message = _WAITING.format(status)
            status, interruptions = TrialStatus.IDLE, 1
            run_count, invalid_runs = ended_runs + 1, ended_runs
        elif status == TrialStatus.INVALID:
            run_count = max(ended_runs, 1)
            invalid_runs = run_count
        else:
            run_count = max(ended_runs, 1)
            invalid_runs = run_count - 1
        if t.trial_id in queue:
            queued = queue.index(t.trial_id) + 1
        changed = now if status == TrialStatus.IDLE else known
        tuner_id = tuner_of.get(t.trial_id)
        rows = _observations(t, objective)
        score, best_step = _score(t, rows, objective) if status == TrialStatus.COMPLETED \
            else (None, None)
        observations = [[run_count, name, direction, step, None if math.isnan(v) else v,
                         known] for name, direction, step, v in rows]
        transitions = [[None, TrialStatus.RUNNING, known, tuner_id, None, None],
                       [TrialStatus.RUNNING, status, changed, tuner_id, None, message]]
        out.append({
            "number": number, "trial_id": t.trial_id, "status": status,
            "hp_values": t.values, "values_key": t.key, "score": score,
            "best_step": best_step, "tuner_id": tuner_id,
            "session": None, "message": message, "run_count": run_count,
            "invalid_runs": invalid_runs, "interruptions": interruptions, "queued": queued,
            "created_at": known, "started_at": started, "ended_at": None, "pid": None,
            "changed_at": changed, "observations": observations, "transitions": transitions,
        })
    return out, len(queue)


class Plan:
    """What an import writes: the hpstore oracle class and arguments, and the project
    document, already loaded into an in-memory search to prove it reads back."""

    def __init__(self, project: KerasTunerProject, name: str, *, oracle: str | None = None,
                 objective: list[str] | None = None, max_trials: int | None = None) -> None:
        self.project, self.name = project, name
        self.tuner, self.cls = _oracle_class(oracle, project)
        self.told = oracle is None  # the oracle told from oracle.json, not given
        # a KerasTuner Oracle subclass's get_state() adds keys of its own: said, not lost
        # silently, since the hpstore oracle that resumes the search knows nothing of them
        self.custom_state = [k for k in project.state if k not in KNOWN_KEYS]
        self.objective = (parse_objectives(objective, project) if objective
                          else infer_objective(project))
        self.search = _search_args(self.tuner, project)
        numbers = _numbers(project.trials)
        if max_trials is None and self.cls in (RandomSearchOracle, BayesianOptimizationOracle):
            max_trials = max(numbers, default=-1) + 1 or None  # the search as it stands
        now = time.time()
        trials, queued = build_trials(project, self.objective, now)
        try:
            self.memory = self.cls(objective=self.objective, max_trials=max_trials,
                                   hyperparameters=project.space, seed=project.seed,
                                   **self.search, database=None, project_name=name)
        except (HpStoreError, TypeError, ValueError) as exc:
            fail(project.oracle_file, f"its settings do not make a {self.cls.__name__} "
                                       f"({exc})")
        self.max_trials = self.memory.max_trials
        state = self.memory.get_state()
        state.pop("project_name", None)
        starts = [t["created_at"] for t in trials]
        state["settings"].update(
            queue_counter=queued, updated_at=now,
            created_at=_when(project.search_start) or min(starts, default=now))
        state["trials"] = trials
        # (the empty search's): the status log goes in time order, the values trial by trial
        state.pop("log", None)
        state.pop("values_log", None)
        state["oracle_state"] = {"imported_from": {
            "format": "keras_tuner", "directory": str(project.directory),
            "tuner": self.tuner, "at": now, "seed": project.seed}}
        if self.tuner == "Hyperband":
            state["oracle_state"]["hyperband"] = _hyperband_state(project)
        self.state = state
        try:  # a dry run: the same document into an in-memory search, and read back
            self.memory.set_state(state)
            for tid in self.memory.trials:
                self.memory.get_trial(tid).metrics.get_config()
        except (HpStoreError, KeyError, TypeError, ValueError) as exc:
            raise KerasTunerImportError(
                f"{project.directory}: the project does not make a valid hpstore search "
                f"({type(exc).__name__}: {exc}); nothing was imported.") from None


# -- writing -----------------------------------------------------------------------------------
def write(plan: Plan, database: str | os.PathLike[str], *, overwrite: bool = False) -> None:
    """Write the plan's project into ``database`` in one transaction (the file is created if
    missing, and removed again if the import fails)."""
    # a postgresql:// URL is a database, not a path (as a path it named a folder
    # "postgresql:" that does not exist)
    url = is_url(database)
    path = Path(database).expanduser()
    # only a file this import creates is removed again: a companion of an existing file
    # may hold another process's work
    fresh = [] if url or path.exists() else [
        p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"),
                    path.with_name(path.name + ".hpstore")) if not p.exists()]
    store = None
    try:
        store = open_store(database if url else path)
        settings = plan.state["settings"]
        with store.mutex():
            found = queries.same_look(store.projects(), plan.name, shown(database))
            if found is not None:
                raise KerasTunerImportError(f"{found[1]} Nothing was imported; give another "
                                            "name with --project NAME.")
            if store.find_project(plan.name) is not None and not overwrite:
                raise KerasTunerImportError(
                    f"{shown(database)} already holds a project {plan.name!r}; nothing was "
                    "imported. "
                    "Give another name with --project NAME, or replace it with --overwrite.")
            # one step: the project and every trial, or nothing; a replaced project's id is
            # never given again, so a process still searching it finds it gone
            store.import_project(
                NewProject(plan.name, settings["oracle_class"], {}, {},
                           settings["max_trials"], settings["seed"]),
                plan.state, replace=overwrite)
    except BaseException:
        if store is not None:
            store.close()
            store = None
        _remove(fresh)
        raise
    finally:
        if store is not None:
            store.close()


def _remove(paths: list[Path]) -> None:
    """Remove what a failed import created (a new search file and its companions)."""
    import shutil

    for p in paths:
        try:
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
        except OSError:
            pass


def import_project(directory: str | os.PathLike[str], database: str | os.PathLike[str], *,
                   project: str | None = None, overwrite: bool = False,
                   oracle: str | None = None, objective: list[str] | None = None,
                   max_trials: int | None = None) -> Plan:
    """Import a KerasTuner project directory into ``database``; returns what was written.

    Raises:
        KerasTunerImportError: the directory cannot be imported (the message names the file
            and the problem), or the project exists and ``overwrite`` is False.
        DatabaseError: ``database`` cannot be used. In every case nothing was written.
    """
    kt = KerasTunerProject(directory)
    name = project or kt.directory.name
    plan = Plan(kt, name, oracle=oracle, objective=objective, max_trials=max_trials)
    write(plan, database, overwrite=overwrite)
    return plan


def describe(plan: Plan, database: str) -> str:
    oracle = plan.memory
    counts: dict[str, int] = {}
    for t in plan.state["trials"]:
        counts[t["status"]] = counts.get(t["status"], 0) + 1
    objective = plan.objective
    text = queries.objective_text(objective.get_config())
    lines = [
        f"Imported {len(plan.state['trials'])} trial(s) from {plan.project.directory} into "
        f"{shown(database)} as project {plan.name!r}.",
        f"  oracle: {plan.cls.__name__} (KerasTuner {plan.tuner}), objective {text}, "
        f"max_trials {plan.max_trials if plan.max_trials is not None else 'none'}, "
        f"seed {plan.state['settings']['seed']}"
        + "".join(f", {k}={v}" for k, v in plan.search.items()),
        *(["  (told from oracle.json, where KerasTuner's GridSearch reads as RandomSearch: "
           "import a GridSearch project with --oracle GridSearch)"]
          if plan.told and plan.tuner == "RandomSearch" else []),
        *([f"  oracle.json also holds {', '.join(map(repr, plan.custom_state))}: a custom "
           f"oracle's own state, which is not imported (the search goes on as "
           f"{plan.tuner})"] if plan.custom_state else []),
        "  trials: " + (", ".join(f"{s} {n}" for s, n in sorted(counts.items())) or "none"),
    ]
    best = [t for t in oracle.get_best_trials(1) if t.status == TrialStatus.COMPLETED
            and t.score is not None]
    if best:
        b = best[0]
        lines.append(f"  best: trial {b.trial_id}, score {b.score:.6g} at step {b.best_step}, "
                     f"values {b.hyperparameters.values}")
    queued = sum(1 for t in plan.state["trials"] if t["queued"] is not None)
    if queued:
        lines.append(f"  {queued} trial(s) queued to run again when the search resumes")
    args = "".join(f", {k}={v!r}" for k, v in plan.search.items())
    more = ", max_trials=N" if plan.max_trials is not None else ""
    lines.append(f"Resume it with hpstore.{plan.cls.__name__}(database={shown(database)!r}, "
                 f"project_name={plan.name!r}{args}{more})"
                 + (f", N above {plan.max_trials} to run more trials." if more else "."))
    if plan.tuner == "Hyperband":
        # (a trial continued from an imported one loads that one's model from its folder)
        folder = Path(plan.project.directory).resolve()
        lines.append(f"  With hpstore.keras.Hyperband, give it directory={str(folder.parent)!r} "
                     f"as well: the imported trials' models stay in {folder}, where the trials "
                     "that continue them load them.")
    # (the folder's name and the values are the KerasTuner project's: another's tarball
    # may hold a sequence that acts on the terminal)
    return terminal_text("\n".join(lines), keep_newlines=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = command_parser(prog="hpstore import-keras-tuner",
                                     description=help_text(__doc__, __file__),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", help="KerasTuner's project folder (directory/project_name)")
    parser.add_argument("database", help="the search file (created if missing), or a "
                                         "postgresql:// URL")
    parser.add_argument("--project", default=None,
                        help="the project name in the file; default: the folder's name")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a project of that name already in the file")
    parser.add_argument("--oracle", default=None,
                        help="RandomSearch, GridSearch, BayesianOptimization or Hyperband; "
                             "default: told from oracle.json (GridSearch cannot be told)")
    parser.add_argument("--objective", action="append", default=None, metavar="NAME[:DIR]",
                        help="the objective metric, with :min or :max when its direction is "
                             "not in the files; repeat for several; default: the metric the "
                             "scores come from (for KerasTuner's multi_objective, the "
                             "metrics that add up to it)")
    parser.add_argument("--max-trials", type=at_least(1), default=None,
                        help="max_trials of the imported search; default: the trials imported "
                             "(random and Bayesian), none (grid and Hyperband)")
    args = parser.parse_args(argv)
    plan = import_project(args.directory, args.database, project=args.project,
                          overwrite=args.overwrite, oracle=args.oracle,
                          objective=args.objective, max_trials=args.max_trials)
    sys.stdout.write(describe(plan, args.database))
    plan.memory.close()
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
