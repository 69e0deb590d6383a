"""Get and set a project's whole state: part of :class:`hpstore.Oracle`.

``get_state`` reads the project as one JSON-serialisable document; ``set_state`` checks a
document as an oracle opening it would, then replaces the project with it in one
transaction. Every object on the project (in this process or another) follows the
settings it brings at its next look at the space (``_settings_may_have_changed``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hpstore.errors import ProjectMismatchError
from hpstore.hyperparameters import HyperParameters
from hpstore.objective import objective_from_config
from hpstore.oracle.opening import check_bool, check_int
from hpstore.oracle.trials import from_file
from hpstore.oracle.values import held_as
from hpstore.stopping import StoppingRule, rule_from_config
from hpstore.store.contract import ProjectStore, Store
from hpstore.store.rows import malformed, orphan_running

if TYPE_CHECKING:
    from hpstore.objective import Objective


class StateMixin:
    """``get_state`` / ``set_state`` and following settings another object set."""

    seed: int
    objective: Objective
    project_name: str
    early_stopping: StoppingRule | None
    _store: Store
    _project: ProjectStore
    _space_version: int

    if TYPE_CHECKING:  # provided by the Oracle
        def _refresh_space(self, version: int | None = None) -> None: ...
        def _search_config(self) -> dict[str, Any]: ...
        def _options(self) -> dict[str, Any]: ...

    def get_state(self) -> dict[str, Any]:
        """The whole project (settings, space, trials with metric histories, algorithm state)
        as a JSON-serialisable dict, read in one transaction."""
        state = self._project.dump()
        state["project_name"] = self.project_name
        return state

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Replace this project in the store with ``state`` (from :meth:`get_state`), in
        one transaction.

        Raises:
            ProjectMismatchError: the state was written by another oracle class.
            HpStoreError: the state is malformed; nothing was changed.
        """
        settings = state.get("settings") if isinstance(state, Mapping) else None
        if isinstance(settings, Mapping) and settings.get("oracle_class") not in (
                None, type(self).__name__):
            raise ProjectMismatchError(
                f"This state belongs to a {settings.get('oracle_class')}, not a "
                f"{type(self).__name__}.")
        rule: StoppingRule | None = self.early_stopping
        if isinstance(settings, Mapping):  # what would stop the project from opening again
            try:
                objective_from_config(settings["objective"])
                space = HyperParameters.from_config({"space": state["space"], "values": {}})
                config = settings.get("oracle_config")
                if isinstance(config, Mapping):
                    rule = rule_from_config(config.get("stopping"))
                    _check_options(config.get("options"))
                _check_trials_values(state.get("trials"), space)
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
                raise malformed(exc) from None
        # A trial running where the document was read keeps its worker there: here it has
        # none, and runs again as after that worker was killed (as `hpstore copy` does);
        # kept as it was, the copy waited for that process to end, maybe for ever.
        # (Loaded back into the project it was read from, a run this project holds
        # running with the same token keeps its worker.)
        if isinstance(state, Mapping) and isinstance(state.get("trials"), list) and all(
                isinstance(t, Mapping) for t in state["trials"]):
            state = orphan_running(state, keep={(r.trial_id, r.session)
                                                for r in self._project.running()})[0]
        with self._store.mutex():
            self._project.load(state)
        self._adopt_settings(state["settings"]["objective"], state["settings"]["seed"],
                             state["settings"].get("oracle_config"), rule)
        self._space_version = -1
        self._refresh_space()

    def _adopt_settings(self, objective: Any, seed: Any, config: Any,
                        rule: StoppingRule | None) -> None:
        """Run the search with the settings its project holds now, as an oracle opened on
        it would (its own, given when it was made, are gone): after ``set_state``, by
        this object or another one on the same project."""
        self.objective = objective_from_config(objective)
        self.seed = int(seed)
        if isinstance(config, Mapping):
            self.early_stopping = rule
            for group, known in (("search", self._search_config()),
                                 ("options", self._options())):
                stored = config.get(group)
                for key, value in (stored.items() if isinstance(stored, Mapping) else ()):
                    if key in known:
                        setattr(self, key, value)

    def _settings_may_have_changed(self) -> None:
        """After the space's version moved: a ``set_state`` through another object (or
        process) may have replaced the project's settings; follow them."""
        record = self._project.record()
        config = record.oracle_config
        stopping = config.get("stopping") if isinstance(config, Mapping) else None
        now = (record.seed, dict(record.objective), stopping)
        mine = (self.seed, self.objective.get_config(),
                None if self.early_stopping is None else self.early_stopping.get_config())
        if now != mine:
            self._adopt_settings(record.objective, record.seed, config,
                                 from_file(rule_from_config, stopping,
                                           "projects.oracle_config"))


def _check_options(options: Any) -> None:
    """Raises ValueError or TypeError for an option of a state document the constructor
    would refuse (an oracle opened on it would run with it)."""
    if not isinstance(options, Mapping):
        return
    for name, minimum in (("max_retries_per_trial", 0), ("max_consecutive_failed_trials", 1)):
        if name in options:
            check_int(f"options.{name}", options[name], minimum=minimum)
    for name in ("allow_new_entries", "tune_new_entries"):
        if name in options:
            check_bool(f"options.{name}", options[name])


def _check_trials_values(trials: Any, space: HyperParameters) -> None:
    """Raises ValueError for a trial of a state document holding a value that no
    hyperparameter of that name in ``space`` takes."""
    for t in trials if isinstance(trials, list) else ():
        values = t.get("hp_values") if isinstance(t, Mapping) else None
        for name, value in (values.items() if isinstance(values, Mapping) else ()):
            try:
                held_as(space.space, name, value)
            except ValueError as exc:
                raise ValueError(f"trial {t.get('trial_id')!r}: {name}={value!r} ({exc})"
                                 ) from None
