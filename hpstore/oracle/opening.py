"""Opening a project: a new search is created, an existing one resumed after its stored
settings are checked against the arguments given. Every refusal comes before any write."""

from __future__ import annotations

import contextlib
import difflib
import inspect
import os
import random
import shlex
import warnings
from collections.abc import Mapping
from typing import Any

from hpstore.errors import (
    DatabaseError,
    MissingObjectiveError,
    ProjectMismatchError,
    ProjectRemovedError,
)
from hpstore.hyperparameters import HyperParameter, HyperParameters
from hpstore.hyperparameters.base import numpy_scalar
from hpstore.objective import (
    DefaultObjective,
    MultiObjective,
    Objective,
    create_objective,
    objective_from_config,
)
from hpstore.oracle.trials import from_file
from hpstore.oracle.warm import callers_level
from hpstore.stopping import StoppingRule, rule_from_config
from hpstore.store.contract import ProjectStore, Store
from hpstore.store.decode import damaged
from hpstore.store.records import NewProject, ProjectRecord, fits_int64
from hpstore.store.rows import same_entry


class OpeningMixin:
    """How :class:`hpstore.Oracle` creates or resumes its project."""

    project_name: str
    objective: Objective
    seed: int
    allow_new_entries: bool
    tune_new_entries: bool
    max_retries_per_trial: int
    max_consecutive_failed_trials: int
    default_max_trials: int | None
    early_stopping: StoppingRule | None
    _store: Store
    _project: ProjectStore

    def _search_config(self) -> dict[str, Any]:
        """The constructor arguments of a subclass that define its search, each kept on
        the oracle under its own name; a resumed project must be opened with the same ones,
        or with None for one, which then takes the stored value."""
        return {}

    def _given_arguments(self) -> set[str]:
        """The names of the constructor arguments the caller gave (not left at defaults)."""
        args, kwargs = getattr(self, "_init_args", ((), {}))
        try:
            bound = inspect.signature(type(self).__init__).bind(self, *args, **kwargs)
        except TypeError:  # (a subclass's own signature: every name given by keyword)
            return set(kwargs)
        return set(bound.arguments)

    def _options(self) -> dict[str, Any]:
        return {"allow_new_entries": self.allow_new_entries,
                "tune_new_entries": self.tune_new_entries,
                "max_retries_per_trial": self.max_retries_per_trial,
                "max_consecutive_failed_trials": self.max_consecutive_failed_trials}

    def _open_project(self, objective: Objective | None, max_trials: int | None,
                      space: HyperParameters | None, seed: int | None,
                      overwrite: bool) -> None:
        """Create or resume the project, under the store's lock so that processes opening
        one new project at once agree on it."""
        with self._store.mutex():
            stored = None if overwrite else self._store.find_project(self.project_name)
            if stored is None and getattr(self, "_copied", False):
                raise ProjectRemovedError(
                    f"The search this oracle is a copy of is gone: "
                    f"{self._store.location} no longer holds the project "
                    f"{self.project_name!r} (removed since the oracle was copied or sent). "
                    "Nothing was made.")
            if stored is None:
                if not self.project_name.isascii():
                    self._refuse_a_name_written_otherwise()
                try:
                    self._create(objective, max_trials, space, seed, replace=overwrite)
                    return
                except DatabaseError:
                    # Another process created it since the look: the lock keeps others out
                    # only while its file stays (a lock folder deleted by hand lets one
                    # lock a new file). Resume theirs, as after waiting for the lock.
                    stored = None if overwrite else self._store.find_project(
                        self.project_name)
                    if stored is None:
                        raise
            self._resume(stored, objective, max_trials, space, seed)

    def _refuse_a_name_written_otherwise(self) -> None:
        """A new project whose name is another's letters written with other code points
        ("é" as one character, or as "e" and a combining accent: names copied from a macOS
        file name) would look the same everywhere, and split a search in two between
        scripts that spell it apart: refused. (Looked for when the name given is not all
        ASCII: an ASCII name is written one way only, and the stored names that read as
        one, a Kelvin sign for a K, are too rare to read every project's name for at each
        new project's start.)

        Raises:
            ProjectMismatchError: such a project is stored.
        """
        from hpstore.queries import same_look

        found = same_look(self._store.projects(), self.project_name, self._store.location)
        if found is not None:
            stored, said = found
            raise ProjectMismatchError(f"{said} To open the stored one, give project_name="
                                       f"{stored!a}; for a new project, another name.")

    def _create(self, objective: Objective | None, max_trials: int | None,
                space: HyperParameters | None, seed: int | None, replace: bool) -> None:
        self.objective = objective or create_objective(None)
        if max_trials is None:
            max_trials = self.default_max_trials
        # Drawn from the random module, as KerasTuner does, so random.seed() before the
        # search makes it repeatable; stored, so a resumed search keeps it.
        self.seed = seed if seed is not None else random.randrange(2**31)
        self._project = self._store.create_project(NewProject(
            self.project_name, type(self).__name__,
            {"search": self._search_config(), "options": self._options(),
             "stopping": None if self.early_stopping is None
             else self.early_stopping.get_config()},
            self.objective.get_config(), max_trials, self.seed,
            space.get_config()["space"] if space is not None else []), replace=replace)

    def _reimport(self, stored: ProjectRecord, what: str, options: str) -> str | None:
        """For a project imported from KerasTuner, the command that imports it again with
        ``options`` (what the import chose: the oracle, the objective). overwrite=True would
        throw the imported trials away, and hpstore.keras the KerasTuner folder with them;
        the import cannot tell everything from KerasTuner's files (a GridSearch reads as a
        RandomSearch), so importing again with the right choice is the way on. None for a
        project made otherwise."""
        imported = self._store.open_project(stored).get_value("imported_from")
        if not (isinstance(imported, Mapping) and imported.get("format") == "keras_tuner"):
            return None
        directory = str(imported.get("directory"))
        named = ("" if os.path.basename(directory) == self.project_name
                 else f" --project {shlex.quote(self.project_name)}")
        return (f"It was imported from the KerasTuner project {directory} with {what}; to go "
                f"on with yours, import it again: hpstore import-keras-tuner "
                f"{shlex.quote(directory)} {shlex.quote(self._store.location)}{named} "
                f"{options} --overwrite")

    def _resume(self, stored: ProjectRecord, objective: Objective | None,
                max_trials: int | None, space: HyperParameters | None,
                seed: int | None) -> None:
        where = f"project {self.project_name!r} in {self._store.location}"
        if stored.oracle_class != type(self).__name__:
            raise ProjectMismatchError(
                f"The {where} was made by {stored.oracle_class}, not {type(self).__name__}. "
                + (self._reimport(stored, f"the oracle {stored.oracle_class}",
                                  f"--oracle {type(self).__name__.removesuffix('Oracle')}")
                   or "Use that oracle, another project_name, or overwrite=True to start "
                      "afresh."))
        stored_objective = from_file(objective_from_config, stored.objective,
                                     "projects.objective")
        if objective is not None and objective != stored_objective:
            raise ProjectMismatchError(
                f"The {where} optimises {stored_objective!r}, but {objective!r} was given. "
                + (self._reimport(stored, "its objective", " ".join(
                    f"--objective {shlex.quote(f'{o.name}:{o.direction}')}"
                    for o in (objective.objectives if isinstance(objective, MultiObjective)
                              else [objective])))
                   or "Use another project_name, or overwrite=True to start afresh."))
        if seed is not None and seed != stored.seed:
            raise ProjectMismatchError(
                f"The {where} has seed {stored.seed}, but seed={seed} was given. Leave "
                "seed=None to resume with the stored one.")
        stored_search = stored.oracle_config.get("search", {})
        if not isinstance(stored_search, dict):
            raise damaged("projects.oracle_config", stored.oracle_config)
        given_search = self._search_config()
        differ = []
        for key, value in list(given_search.items()):
            if value is None and stored_search.get(key) is not None:
                # left at None (its default): the search goes on as it was made, as with
                # max_trials and seed (a second worker's script that leaves it out)
                setattr(self, key, stored_search[key])
                given_search[key] = stored_search[key]
            elif key in stored_search and stored_search[key] != value:
                differ.append(key)
        if differ:  # (every one at once: told one at a time, a script was run once each)
            given = self._given_arguments()
            said = "; ".join(
                f"{k}={stored_search[k]!r}, where {k}={given_search[k]!r} "
                + ("was given" if k in given else "is this oracle's default (none was given)")
                for k in differ)
            raise ProjectMismatchError(
                f"The {where} was made with {said}. Give the stored value"
                f"{'s' if len(differ) > 1 else ''} ("
                + ", ".join(f"{k}={stored_search[k]!r}" for k in differ)
                + "), another project_name, or overwrite=True.")
        stored_rule = from_file(rule_from_config, stored.oracle_config.get("stopping"),
                                "projects.oracle_config")
        if self.early_stopping is None:
            self.early_stopping = stored_rule  # the rule the search was made with
        elif stored_rule is None:
            # Each process judges with the rule it opened with: workers already on the
            # search would go on without this one, judging the same curves differently.
            raise ProjectMismatchError(
                f"The {where} was made without early stopping, but early_stopping="
                f"{self.early_stopping!r} was given: its other workers would go on without "
                "the rule. Start a search with the rule under another project_name "
                "(warm_start_from= brings this one's trials into it), or overwrite=True.")
        elif stored_rule != self.early_stopping:
            raise ProjectMismatchError(
                f"The {where} stops trials early with {stored_rule!r}, but "
                f"early_stopping={self.early_stopping!r} was given. Leave early_stopping=None "
                "to keep the stored rule, use another project_name, or overwrite=True.")
        self.objective = stored_objective
        self.seed = int(stored.seed)
        self._project = self._store.open_project(stored)
        if space is not None:  # every refusal comes before the first write
            _, stored_space = self._project.space()
            for item in space.get_config()["space"]:
                check_definition(stored_space, item, where, "`hyperparameters=` gives")
        config = {"search": {**stored_search, **given_search}, "options": self._options(),
                  "stopping": None if self.early_stopping is None
                  else self.early_stopping.get_config()}
        change_max = max_trials is not None and max_trials != stored.max_trials
        if change_max and max_trials is not None:
            counted = self._project.creation_facts().counted
            if counted > max_trials:
                # KerasTuner's rule (the given value wins) is kept, but a search given
                # fewer trials than it ran is over, which is seldom what was meant. Said
                # before the write: a warning made an error (-W error, pytest's
                # filterwarnings) refuses the open with nothing changed.
                warnings.warn(
                    f"max_trials={max_trials} is below the {counted} trials the {where} "
                    f"has already made (its max_trials was {stored.max_trials}): no new "
                    f"trial is made, for any of its workers; those made and not ended "
                    f"(queued, enqueued or interrupted) still run. To run more, give "
                    f"max_trials above {counted}; leave it out (None) to keep the stored "
                    "value.",
                    UserWarning, stacklevel=callers_level())
        self._project.update_settings(
            max_trials=max_trials, set_max_trials=change_max,
            oracle_config=config if config != dict(stored.oracle_config) else None)
        if space is not None:
            self._project.extend_space(space.get_config()["space"])


def entry(hp: HyperParameter) -> dict[str, Any]:
    """A hyperparameter as the space stores it."""
    return {"class_name": type(hp).__name__, "config": hp.get_config()}


def check_definition(stored: list[dict[str, Any]], item: dict[str, Any], where: str,
                     given: str) -> None:
    """Raises ProjectMismatchError when ``item`` is stored under another definition,
    naming only what differs."""
    for old in stored:
        if same_entry(old, item) and old != item:
            raise ProjectMismatchError(
                f"The {where} defines {item['config']['name']!r} differently than {given}: "
                f"{difference(old, item)}. Keep the stored definition, use another "
                "project_name, or overwrite=True to start afresh.")


def check_overlap(stored: list[dict[str, Any]], item: dict[str, Any], where: str,
                  given: str) -> None:
    """Raises ProjectMismatchError when ``item``, a new entry, can be active in one trial
    together with a stored entry of the same name defined otherwise: a name moved into a
    scope (or out of one) with a new range, or a scope's parent values changed with it.
    Accepted, the trials ran the old range where the code declared the new one, and the
    grid never tried the new one. Entries under disjoint values of a parent they share (a
    layer's units per model type) are separate hyperparameters, as before; so are entries
    under different parents, whose overlap cannot be told from their conditions."""
    name = item["config"]["name"]
    for old in stored:
        if old["config"]["name"] != name or same_entry(old, item):
            continue
        if _defined(old) == _defined(item) or not _together(_conditions(old),
                                                              _conditions(item)):
            continue
        raise ProjectMismatchError(
            f"The {where} holds {name!r} {_where_active(old)} as {_defined_text(old)}; "
            f"{given} {_where_active(item)} as {_defined_text(item)}, and in a trial where "
            "both apply one value must be both. Keep the stored definition (and scope), "
            "declare the new one under parent values the stored one does not take, use "
            "another project_name, or overwrite=True to start afresh.")


def _defined(entry: Mapping[str, Any]) -> tuple[Any, Any]:
    config = {k: v for k, v in entry["config"].items() if k != "conditions"}
    return entry["class_name"], config


def _defined_text(entry: Mapping[str, Any]) -> str:
    from hpstore.rendering import describe_hyperparameter

    return f"{entry['class_name']} {describe_hyperparameter(entry['class_name'], entry['config'])}"


def _conditions(entry: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Each parent an entry's conditions test, with the values that make it active."""
    found: dict[str, list[Any]] = {}
    for condition in entry["config"].get("conditions") or []:
        config = condition.get("config", {})
        found.setdefault(config.get("name"), []).extend(config.get("values") or [])
    return found


def _together(a: dict[str, list[Any]], b: dict[str, list[Any]]) -> bool:
    """Whether entries active under conditions ``a`` and ``b`` can be active together, as
    far as the conditions tell: one with none is active wherever the other is; two that
    test a parent in common, when every shared parent has a value both take."""
    if not a or not b:
        return True
    shared = set(a) & set(b)
    return bool(shared) and all(any(v == w and type(v) is type(w) for v in a[p] for w in b[p])
                                for p in shared)


def _where_active(entry: Mapping[str, Any]) -> str:
    conditions = _conditions(entry)
    if not conditions:
        return "in every trial"
    return "when " + " and ".join(f"{p} in {values!r}" for p, values in conditions.items())


def difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """What differs between two stored hyperparameter definitions, e.g.
    ``min_value -10 -> -20, max_value 10 -> 20``."""
    if old["class_name"] != new["class_name"]:
        return f"{old['class_name']} stored, {new['class_name']} now"
    a, b = old["config"], new["config"]
    changes = [f"{key} {a.get(key)!r} -> {b.get(key)!r}"
               for key in list(dict.fromkeys([*a, *b])) if a.get(key) != b.get(key)]
    return f"{old['class_name']} with " + ", ".join(changes)


def _integer(name: str, value: Any, wrong_type: type[Exception]) -> int:
    """``value`` as a Python int (a numpy integer too: the store gets a plain integer, never
    numpy's bytes) that fits in 64 bits; ``wrong_type`` is raised for anything else."""
    if isinstance(value, bool) or not (isinstance(value, int) or numpy_scalar(value, "integer")):
        raise wrong_type(f"`{name}` must be an int, received {value!r}.")
    number = int(value)
    if not fits_int64(number):
        raise ValueError(f"`{name}` must be between -2**63 and 2**63 - 1, received {number}.")
    return number


def check_int(name: str, value: Any, minimum: int | None) -> int:
    """``value`` as a Python int of at least ``minimum`` that fits in 64 bits.

    Raises:
        ValueError: anything else (a bool, a float, a string, ...), naming the value.
    """
    number = _integer(name, value, ValueError)
    if minimum is not None and number < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}, received {number}.")
    return number


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a bool: True or False (a numpy bool too), never a truthy string.

    Raises:
        TypeError: anything else, naming it (``overwrite="false"`` would otherwise delete
            the project).
    """
    if isinstance(value, bool) or numpy_scalar(value, "bool_"):
        return bool(value)
    raise TypeError(f"`{name}` must be True or False, received {value!r} (of type "
                    f"{type(value).__name__}).")


def check_optional_int(name: str, value: Any, minimum: int | None) -> int | None:
    """:func:`check_int`, or None for None."""
    return None if value is None else check_int(name, value, minimum)


def check_max_trials(value: Any) -> int | None:
    """``max_trials`` as given to an oracle: a whole number of at least 1, or None.

    Raises:
        ValueError, TypeError: anything else; 0 says what to give instead (KerasTuner
            takes it as no limit, a search here would run no trial).
    """
    if type(value) is int and value == 0:
        raise ValueError(
            "`max_trials` must be at least 1, received 0. KerasTuner takes 0 as no limit; "
            "here give None to GridSearchOracle or HyperbandOracle for no limit, or a "
            "large number for a search that runs until its space is used up.")
    return check_optional_int("max_trials", value, minimum=1)


def missing_objective(what: str, missing: list[str], given: list[str],
                      objective: Objective | None = None) -> MissingObjectiveError:
    """The error for metrics (``what``: whose) given without the objective's ``missing``
    names: what was given, a given name that looks like a misspelling of a missing one,
    that nothing was recorded, and what to do (``objective`` a DefaultObjective: to give
    the oracle one, as "default_objective" is no name the user wrote)."""
    if isinstance(objective, DefaultObjective):
        return MissingObjectiveError(
            f"{what} ({given}) cannot be scored: the oracle was given no objective. "
            "Nothing was recorded. Give the oracle objective=\"NAME\" (or "
            "hpstore.Objective(NAME, \"min\" or \"max\")) naming the metric to score.")
    near = [f"{close[0]!r} for {name!r}" for name in missing
            if (close := difflib.get_close_matches(name, given, n=1, cutoff=0.6))]
    hint = f" (a misspelling? {', '.join(near)})" if near else ""
    return MissingObjectiveError(
        f"{what} lack the objective {missing}: received {given}{hint}. Nothing was "
        "recorded. Report the objective's value under that name, or give the oracle the "
        "objective your code reports (objective=...).")


def check_step(step: Any) -> int:
    """A reported step as a Python int that fits in 64 bits.

    Raises:
        TypeError: not an integer (a bool, a float, a string, ...).
        ValueError: outside what the store holds.
    """
    if not isinstance(step, int) and getattr(step, "shape", None) == () and callable(
            getattr(step, "item", None)):
        # a 0-d tensor or array (a training loop's global step): its number, if whole
        with contextlib.suppress(Exception):
            number = step.item()
            if isinstance(number, int) and not isinstance(number, bool):
                step = number
    return _integer("step", step, TypeError)
