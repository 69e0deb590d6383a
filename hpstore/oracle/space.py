"""The search space as the Oracle keeps it: stored, cached per process, revalidated cheaply,
and grown by what trials and hypermodels declare."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from hpstore.errors import HpStoreError
from hpstore.hyperparameters import Fixed, HyperParameter, HyperParameters
from hpstore.oracle.opening import check_definition, check_overlap, entry
from hpstore.oracle.trials import from_file
from hpstore.store import shown
from hpstore.store.contract import ProjectStore, Store


def parents_first(items: list[Any]) -> list[Any]:
    """The stored space's entries (``{"class_name", "config"}``), each after every entry
    of a name its conditions test, the stored order kept otherwise (nearly every space
    is so already, and is returned as it is).

    A name declared again under another branch that a later build found is stored after
    the children that test it (``depth`` for ``kind="y"`` after ``extra``, a child of
    ``depth``): the random draw, the grid and the Bayesian encoding, which settle the
    conditions in one pass in this order, took that parent as not set yet and the child
    as inactive, so a model ran again and again with the child at its default, never
    tuned. (Conditions in a circle keep their stored order.)
    """
    at: dict[str, list[int]] = {}
    try:
        for index, item in enumerate(items):
            at.setdefault(str(item["config"].get("name")), []).append(index)
        needs = [{j for condition in item["config"].get("conditions") or []
                  for j in at.get(str(condition.get("config", {}).get("name")), ())
                  if j != index} for index, item in enumerate(items)]
    except (AttributeError, KeyError, TypeError):
        return items  # (a space written otherwise: from_file says what is wrong with it)
    if all(all(j < index for j in need) for index, need in enumerate(needs)):
        return items
    placed: list[int] = []
    done: set[int] = set()
    waiting = list(range(len(items)))
    while waiting:
        index = next((i for i in waiting if needs[i] <= done), waiting[0])
        placed.append(index)
        done.add(index)
        waiting.remove(index)
    return [items[i] for i in placed]


class SpaceMixin:
    """The space of :class:`hpstore.Oracle`."""

    project_name: str
    allow_new_entries: bool
    tune_new_entries: bool
    _store: Store
    _project: ProjectStore
    _space: HyperParameters
    _space_version: int
    _space_held: int  # how many hyperparameters _space held as read from the store
    _given_space: HyperParameters | None
    _warm_from: Any  # warm_start_from, kept for when the space grows (see Oracle.__init__)
    _warm_names: frozenset[str] | None  # the names of the space it was last run with
    _curves: Any  # the stopping rule's kept curves (see Oracle._stop_check)
    _settings_may_have_changed: Callable[[], None]  # (the Oracle's)
    warm_start: Any

    _warm_start: Callable[..., Any]  # (the steering mixin's)

    def _refresh_space(self, version: int | None = None) -> None:
        """Read the space again when its stored version (``version`` when the caller read
        it already) is not the one this oracle holds."""
        if len(self._space._space) != self._space_held:  # (the list itself: no copy)
            self._keep_declared_here()
        if version is None:
            version = self._project.space_version()
        if version != self._space_version:
            # (a project replaced by set_state keeps its version's count going: the
            # stopping rule's kept curves may be of rows it no longer holds)
            self._curves.clear()
            if self._space_version >= 0:  # (not this object's first read)
                self._settings_may_have_changed()
            version, items = self._project.space()
            self._space = from_file(HyperParameters.from_config,
                                    {"space": parents_first(items), "values": {}},
                                    "hyperparameters.config")
            self._space_version = version
            self._space_held = len(self._space._space)

    def _keep_declared_here(self) -> None:
        """Store what a script declared on ``oracle.hyperparameters`` itself (``oracle.
        hyperparameters.Float("lr", ...)`` after the oracle was made, as KerasTuner's oracle
        keeps in its state): it joins the stored space as a trial's new hyperparameters do,
        so every worker, and this search resumed, runs with it (it was used by this object
        alone, and lost with it).

        Raises:
            RuntimeError: ``allow_new_entries`` is False.
            ProjectMismatchError: the space holds one of them under another definition.
        """
        declared = self._space
        # read the stored space afresh, then add what it lacks (update_space reads it)
        self._space, self._space_held, self._space_version = HyperParameters(), 0, -1
        self.update_space(declared)

    @property
    def hyperparameters(self) -> HyperParameters:
        """The search space as stored (read again when another process grew it)."""
        self._refresh_space()
        return self._space

    @property
    def given_hyperparameters(self) -> HyperParameters:
        """A copy of the ``hyperparameters=`` this oracle was given (empty if none): they
        override what a hypermodel declares."""
        given = self._given_space
        return given.copy() if given is not None else HyperParameters()

    def get_space(self) -> HyperParameters:
        """A copy of the search space, each active hyperparameter at its default (as a space
        declared in code holds them, and KerasTuner's oracle gives it)."""
        space = self.hyperparameters.copy()
        for hp in space.space:  # in order: a parent is settled before its children
            if hp.name not in space.values and space.is_active(hp):
                space.values[hp.name] = hp.default
        return space

    def update_space(self, hyperparameters: HyperParameters) -> None:
        """Add the hyperparameters of ``hyperparameters`` that the space does not hold yet.

        With ``tune_new_entries=False`` they are added as Fixed at their default. A
        hyperparameter the space holds under another definition (a range changed in the
        hypermodel since the search began) is refused, unless ``hyperparameters=`` given
        to this oracle overrides it.

        Raises:
            RuntimeError: there are new entries but ``allow_new_entries`` is False.
            ProjectMismatchError: a stored hyperparameter is declared differently.
        """
        if not isinstance(hyperparameters, HyperParameters):
            raise TypeError(f"update_space takes a HyperParameters (a trial's "
                            f"`hyperparameters`), received {type(hyperparameters).__name__}.")
        items = self._new_entries(hyperparameters, check=True)
        if items:
            self._project.extend_space(items)
            self._refresh_space()
        self._warm_up()

    def _warm_up(self) -> None:
        """Run ``warm_start_from`` once the space is declared, and again each time the
        space has grown since: a hypermodel declares a hyperparameter of a branch only
        once a trial takes it, and the source's trials that took that branch fit only
        then. Told once (the first time); ``warm_start`` gathers what each run added."""
        if self._warm_from is None or not self._space.space:
            return
        if self._warm_names is not None and all(
                hp.name in self._warm_names for hp in self._space.space):
            return
        first = self.warm_start is None
        names = frozenset(hp.name for hp in self._space.space)
        try:
            result = self._warm_start(self._warm_from, warn=first)
        except (HpStoreError, OSError) as exc:
            if first:
                raise
            # The trial that grew the space has ended: a source gone since the search
            # was opened must not fail it. Its trials are taken in at the next open.
            self._warm_names = names
            where = self._warm_from[0] if isinstance(self._warm_from, tuple) else self._warm_from
            warnings.warn(
                f"warm_start_from {shown(where)} could not be read again now that "
                f"the space has grown ({exc}); the search goes on without the source's "
                "trials of the new hyperparameters (an open of the search with a readable "
                "source takes them in).", UserWarning, stacklevel=3)
            return
        self._warm_names = frozenset(hp.name for hp in self._space.space)
        if not first:  # the source's trials left out now are the ones that still do not fit
            result.already -= len(self.warm_start.added)  # (held now: added by an earlier run)
            result.added[:0] = self.warm_start.added
        self.warm_start = result

    def _new_entries(self, hyperparameters: HyperParameters, *, check: bool
                     ) -> list[dict[str, Any]]:
        """The entries of ``hyperparameters`` to add to the space, as stored; with
        ``check``, also compare the ones already stored with their stored definition."""
        space = self._space
        if not check and _shares_entries(hyperparameters, space):
            return []  # the trial's space is this one's (with_values shares the objects)
        if check or any(not space._exists(hp.name, hp.conditions)
                        for hp in hyperparameters.space):
            # another process may have added them since: read the space again (not when
            # every one is known, as at the end of nearly every trial)
            space = self.hyperparameters
        overrides = self._given_space
        new: list[HyperParameter] = []
        stored_items: list[dict[str, Any]] | None = None
        for hp in hyperparameters.space:
            if not space._exists(hp.name, hp.conditions):
                new.append(hp)
                continue
            if not check or (overrides is not None and overrides._exists(hp.name,
                                                                         hp.conditions)):
                continue  # hyperparameters= overrides what the hypermodel declares
            if stored_items is None:
                stored_items = space.get_config()["space"]
            item = entry(hp)
            if not self.tune_new_entries:
                item = entry(Fixed(hp.name, hp.default, conditions=hp.conditions))
            check_definition(stored_items, item,
                             f"project {self.project_name!r} in {self._store.location}",
                             "the hypermodel now declares")
        if not new:
            return []
        if not self.allow_new_entries:
            raise RuntimeError(f"`allow_new_entries` is `False`, but found new entries {new}")
        if not self.tune_new_entries:
            new = [Fixed(hp.name, hp.default, conditions=hp.conditions) for hp in new]
        items = [entry(hp) for hp in new]
        if check and (overrides is None or not any(overrides._exists(hp.name, hp.conditions)
                                                   for hp in new)):
            stored_items = space.get_config()["space"] if stored_items is None else stored_items
            for item in items:
                check_overlap(stored_items, item,
                              f"project {self.project_name!r} in {self._store.location}",
                              "the hypermodel now declares it")
        return items


def _shares_entries(hyperparameters: HyperParameters, space: HyperParameters) -> bool:
    """Whether every entry of ``hyperparameters`` is one of ``space``'s own objects (a
    trial built from this space that declared nothing new): then none is new."""
    theirs, ours = hyperparameters._space, space._space  # (the lists themselves: no copy)
    if len(theirs) == len(ours) and list(map(id, theirs)) == list(map(id, ours)):
        return True  # the same objects in the same order (the usual case: no set built)
    known = {id(hp) for hp in ours}
    return all(id(hp) in known for hp in theirs)
