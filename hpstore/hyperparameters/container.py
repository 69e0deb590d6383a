"""HyperParameters: the search space together with the values of one trial."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from hpstore.hyperparameters.base import Condition, HyperParameter, Parent
from hpstore.hyperparameters.discrete import Boolean, Choice, Fixed
from hpstore.hyperparameters.numerical import Float, Int

HP_CLASSES: dict[str, type[HyperParameter]] = {
    cls.__name__: cls for cls in (Boolean, Choice, Fixed, Float, Int)
}


def hyperparameter_from_config(config: dict[str, Any]) -> HyperParameter:
    """Rebuild one hyperparameter from ``{"class_name": ..., "config": {...}}``.

    Raises:
        ValueError: an unknown class name or a config that does not describe one.
    """
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        raise ValueError(
            f"A hyperparameter config must be {{'class_name': ..., 'config': {{...}}}}, "
            f"received {config!r}."
        )
    name = config["class_name"]
    if name not in HP_CLASSES:
        raise ValueError(
            f"Unknown hyperparameter class {name!r}; expected one of {sorted(HP_CLASSES)}."
        )
    return HP_CLASSES[name].from_config(config["config"])


#: ``check(hp)`` for each container being watched, by ``id`` (see
#: ``discover.watch_declarations``); called at each declaration on that container. Kept
#: here, not on the container, so that a watched container copies and pickles as ever.
DECLARATION_WATCHERS: dict[int, Callable[[Any], None]] = {}


class HyperParameters:
    """Container for a hyperparameter space and the current values of one trial.

    ``space`` lists every hyperparameter registered, active or not, in the order they
    were first asked for; ``values`` maps the names of the active ones to their values.
    Asking for a hyperparameter that is already registered under the same conditions
    returns its current value and ignores the new arguments.
    """

    def __init__(self) -> None:
        self._name_scopes: list[str] = []
        self._conditions: list[Condition] = []
        self._hps: dict[str, list[HyperParameter]] = {}
        self._space: list[HyperParameter] = []
        self.values: dict[str, Any] = {}

    # -- scopes --------------------------------------------------------------------------
    @contextlib.contextmanager
    def name_scope(self, name: str) -> Iterator[None]:
        """Prefix the names created inside with ``name/``.

        Raises:
            TypeError: ``name`` is not a string.
        """
        if not isinstance(name, str):
            raise TypeError(f"name_scope takes a string, received {name!r}.")
        self._name_scopes.append(name)
        try:
            yield
        finally:
            self._name_scopes.pop()

    @contextlib.contextmanager
    def conditional_scope(self, parent_name: str, parent_values: Any) -> Iterator[None]:
        """Make the hyperparameters created inside active only while ``parent_name``
        holds one of ``parent_values``; inactive ones are registered and return None.

        Raises:
            ValueError: no hyperparameter named ``parent_name`` exists yet.
        """
        full_name = self._get_name(parent_name)
        if not self._exists(full_name):
            raise ValueError(f"`HyperParameter` named: {full_name} not defined.")
        self._conditions.append(Parent(full_name, parent_values))
        try:
            yield
        finally:
            self._conditions.pop()

    @contextlib.contextmanager
    def _maybe_conditional_scope(
        self, parent_name: str | None, parent_values: Any
    ) -> Iterator[None]:
        if not parent_name:  # None or "" : no condition
            yield
            return
        if parent_values is None:  # left out, as KerasTuner refuses it (not a value)
            raise TypeError(f"`parent_name={parent_name!r}` needs `parent_values`: the "
                            "values of the parent that make this hyperparameter active "
                            "([None] for a Choice's None).")
        with self.conditional_scope(parent_name, parent_values):
            yield

    def _get_name(self, name: str, scopes: Sequence[str] | None = None) -> str:
        scopes = self._name_scopes if scopes is None else scopes
        return "/".join([*scopes, name]) if scopes else name

    # -- registration --------------------------------------------------------------------
    def _exists(self, name: str, conditions: Sequence[Condition] | None = None) -> bool:
        if name not in self._hps:
            return False
        if conditions is None:
            return True
        return any(_same_conditions(hp.conditions, conditions) for hp in self._hps[name])

    def _conditions_are_active(self, conditions: Sequence[Condition]) -> bool:
        return all(c.is_active(self.values) for c in conditions)

    def _retrieve(self, hp: HyperParameter) -> Any:
        watcher = DECLARATION_WATCHERS.get(id(self))
        if watcher is not None:
            watcher(hp)
        for condition in hp.conditions:
            if isinstance(condition, Parent) and condition.name == hp.name:
                raise ValueError(
                    f"A conditional `HyperParameter` cannot have the same name as its parent. "
                    f"Found: {hp.name} and parent_name: {condition.name}"
                )
        if self._exists(hp.name, hp.conditions):
            if self.is_active(hp):
                if hp.name not in self.values:
                    # active now (its parent was moved by hand) but never given a value:
                    # the registered one's default, rather than a None that reads "inactive"
                    registered = next(h for h in self._hps[hp.name]
                                      if _same_conditions(h.conditions, hp.conditions))
                    self.values[hp.name] = _own(registered.default)
                return _own(self.values[hp.name])
            return None
        return self._register(hp)

    def _register(self, hp: HyperParameter, overwrite: bool = False) -> Any:
        existing = self._hps.setdefault(hp.name, [])
        for i, old in enumerate(existing):
            if _same_conditions(old.conditions, hp.conditions):
                existing[i] = hp
                self._space[self._space.index(old)] = hp
                break
        else:
            existing.append(hp)
            self._space.append(hp)
        if self._conditions_are_active(hp.conditions):
            if hp.name not in self.values or overwrite:
                self.values[hp.name] = _own(hp.default)
            return _own(self.values[hp.name])
        return None

    def _make(self, cls: type[HyperParameter], name: str, parent_name: str | None,
              parent_values: Any, **kwargs: Any) -> Any:
        # Built first, so a bad definition is reported before a missing parent.
        hp = cls(name=self._get_name(name), conditions=list(self._conditions), **kwargs)
        with self._maybe_conditional_scope(parent_name, parent_values):
            hp.conditions = list(self._conditions)
            return self._retrieve(hp)

    def Choice(self, name: str, values: Sequence[Any], ordered: bool | None = None,
               default: Any = None, parent_name: str | None = None,
               parent_values: Any = None) -> Any:
        """One value among ``values``; returns the current value, or None when inactive.

        Raises:
            ValueError: no values, the same value twice, a default not among them, a name
                that cannot be one.
            TypeError: values of mixed types, or given as a string rather than a list.
        """
        return self._make(Choice, name, parent_name, parent_values, values=values,
                          ordered=ordered, default=default)

    def Int(self, name: str, min_value: int, max_value: int, step: int | None = None,
            sampling: str = "linear", default: int | None = None,
            parent_name: str | None = None, parent_values: Any = None) -> Any:
        """An integer in [min_value, max_value]; returns the current value, or None.

        Raises:
            ValueError: bounds that are not whole numbers or are in the wrong order, a step
                or sampling they do not allow, a default outside them, a bad name.
        """
        return self._make(Int, name, parent_name, parent_values, min_value=min_value,
                          max_value=max_value, step=step, sampling=sampling, default=default)

    def Float(self, name: str, min_value: float, max_value: float, step: float | None = None,
              sampling: str = "linear", default: float | None = None,
              parent_name: str | None = None, parent_values: Any = None) -> Any:
        """A real number in [min_value, max_value]; returns the current value, or None.

        Raises:
            ValueError: bounds that are not finite numbers or are in the wrong order, a step
                or sampling they do not allow, a default outside them, a bad name.
        """
        return self._make(Float, name, parent_name, parent_values, min_value=min_value,
                          max_value=max_value, step=step, sampling=sampling, default=default)

    def Boolean(self, name: str, default: bool = False, parent_name: str | None = None,
                parent_values: Any = None) -> Any:
        """True or False; returns the current value, or None when inactive.

        Raises:
            ValueError: a default that is not a bool, a bad name.
        """
        return self._make(Boolean, name, parent_name, parent_values, default=default)

    def Fixed(self, name: str, value: Any, parent_name: str | None = None,
              parent_values: Any = None) -> Any:
        """A value that is not tuned (anything JSON can hold); returns it, or None.

        Raises:
            NotJSONSerializableError (a ValueError): a value JSON cannot hold.
            ValueError: a bad name.
        """
        return self._make(Fixed, name, parent_name, parent_values, value=value)

    # -- reading -------------------------------------------------------------------------
    @property
    def space(self) -> list[HyperParameter]:
        """Every registered hyperparameter, in registration order."""
        return list(self._space)

    def get(self, name: str) -> Any:
        """The current value of ``name`` (name scopes apply).

        Raises:
            ValueError: ``name`` is registered but currently inactive, or active with no
                value set.
            KeyError: no hyperparameter is called ``name``.
        """
        name = self._get_name(name)
        if name in self.values and (name not in self._hps or self.is_active(name)):
            return self.values[name]
        if name in self._hps and self.is_active(name):
            raise ValueError(f"{name} is active but holds no value here: these "
                             "HyperParameters define it without giving it one (a trial's "
                             "hyperparameters hold its values).")
        if name in self._hps:
            raise ValueError(f"{name} is currently inactive.")
        raise KeyError(f"{name} does not exist.")

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        try:
            self.get(name)  # type: ignore[arg-type]
        except (KeyError, ValueError, TypeError):
            return False
        return True

    def is_active(self, hyperparameter: HyperParameter | str) -> bool:
        """Whether a hyperparameter (or any registered one of that name) is active now."""
        if isinstance(hyperparameter, HyperParameter):
            return self._conditions_are_active(hyperparameter.conditions)
        name = str(hyperparameter)
        return any(self._conditions_are_active(hp.conditions) for hp in self._hps.get(name, []))

    def active_space(self) -> list[HyperParameter]:
        """The hyperparameters whose conditions hold for the current values."""
        return [hp for hp in self._space if self.is_active(hp)]

    # -- whole-object operations -----------------------------------------------------------
    def ensure_active_values(self) -> None:
        """Give every active hyperparameter a value (a random sample) and drop the values
        of inactive ones, in space order so a parent is settled before its children."""
        for hp in self._space:
            if self.is_active(hp):
                if hp.name not in self.values:
                    self.values[hp.name] = hp.random_sample()
            elif not self.is_active(hp.name):
                self.values.pop(hp.name, None)

    def merge(self, hps: HyperParameters | Sequence[HyperParameter], overwrite: bool = True
              ) -> None:
        """Add the hyperparameters of ``hps`` to this space.

        With ``overwrite=False`` the ones already registered (same name and conditions)
        are kept; otherwise they are replaced and their values reset to the default.
        """
        space = hps.space if isinstance(hps, HyperParameters) else list(hps)
        if not overwrite:
            space = [hp for hp in space if not self._exists(hp.name, hp.conditions)]
        for hp in space:
            self._register(hp, overwrite=overwrite)

    def get_config(self) -> dict[str, Any]:
        """The space and its values as JSON-ready data (:meth:`from_config` rebuilds it)."""
        return {
            "space": [{"class_name": type(hp).__name__, "config": hp.get_config()}
                      for hp in self._space],
            "values": {name: _own(value) for name, value in self.values.items()},
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> HyperParameters:
        """Rebuild from :meth:`get_config` output.

        Raises:
            ValueError: the config is not of that shape or names an unknown class.
        """
        if not isinstance(config, dict) or not isinstance(config.get("space"), list):
            raise ValueError(
                f"A HyperParameters config must be {{'space': [...], 'values': {{...}}}}, "
                f"received {config!r}."
            )
        hps = cls()
        for item in config["space"]:
            hp = hyperparameter_from_config(item)
            hps._hps.setdefault(hp.name, []).append(hp)
            hps._space.append(hp)
        hps.values = {name: _own(value)
                      for name, value in dict(config.get("values") or {}).items()}
        return hps

    def copy(self) -> HyperParameters:
        """A copy of the space and its values, sharing nothing with this one."""
        return HyperParameters.from_config(self.get_config())

    def with_values(self, values: dict[str, Any]) -> HyperParameters:
        """This space with ``values`` as its values, cheaply: the hyperparameter objects
        (never changed after creation) are shared, the containers are new."""
        hps = HyperParameters()
        hps._space = list(self._space)
        hps._hps = {name: list(entries) for name, entries in self._hps.items()}
        hps.values = dict(values)
        return hps

    def __repr__(self) -> str:
        return f"HyperParameters(space={len(self._space)} entries, values={self.values!r})"


def _own(value: Any) -> Any:
    """``value``, or a copy of it when it is a list or a dict (a Fixed value may be any
    JSON): what a declaration returns, what values hold and what the space defines must
    not be one object, which changing one would change in all three."""
    return copy.deepcopy(value) if type(value) in (list, dict) else value


def _same_conditions(a: Sequence[Condition], b: Sequence[Condition]) -> bool:
    return len(a) == len(b) and all(x == y for x, y in zip(a, b))
