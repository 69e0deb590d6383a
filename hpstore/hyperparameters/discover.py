"""Find every hyperparameter a hypermodel can declare, before the first trial runs.

A hypermodel declares some hyperparameters only on some branches: under a
``conditional_scope``, behind ``if hp.Choice("model", ...) == "b":``, or in a loop whose
length is itself a hyperparameter (``for i in range(hp.Int("layers", 1, 4))``). Built once
with the defaults, it shows only the default branch, and the search would never tune the
others. So it is built again with each value of each Boolean and Choice, and with the
smallest and largest value of each Int, under the values that revealed them, until a round
of builds finds nothing new (or a budget of builds is spent).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from hpstore.errors import ProjectMismatchError
from hpstore.hyperparameters.base import HyperParameter
from hpstore.hyperparameters.container import DECLARATION_WATCHERS, HyperParameters
from hpstore.hyperparameters.discrete import Boolean, Choice
from hpstore.hyperparameters.numerical import Int

#: the most builds one discovery makes, and the most seconds it spends building
MAX_BUILDS = 64
MAX_SECONDS = 30.0
_MAX_CHOICES = 16


def _alternatives(hp: HyperParameter) -> list[Any]:
    """The values worth building with besides the default: every value of a Boolean or a
    Choice (an even spread of a long one), the ends of an Int range."""
    if isinstance(hp, Boolean):
        values: list[Any] = [True, False]
    elif isinstance(hp, Choice):
        values = list(hp.values)
        if len(values) > _MAX_CHOICES:
            step = (len(values) - 1) / (_MAX_CHOICES - 1)
            values = [values[round(i * step)] for i in range(_MAX_CHOICES)]
    elif isinstance(hp, Int):
        values = [hp.min_value, hp.max_value]
    else:  # Float and Fixed rarely decide what else is declared
        return []
    return [v for v in values if not (type(v) is type(hp.default) and v == hp.default)]


def _with_values(space: HyperParameters, chosen: dict[str, Any]) -> HyperParameters:
    """A copy of ``space`` whose active hyperparameters hold ``chosen`` or their default,
    settled in space order so a parent is decided before its children."""
    hps = HyperParameters.from_config({"space": space.get_config()["space"], "values": {}})
    for hp in hps.space:
        if hp.name not in hps.values and hps.is_active(hp):
            hps.values[hp.name] = chosen.get(hp.name, hp.default)
    return hps


def _activating(hp: HyperParameter, chosen: dict[str, Any]) -> dict[str, Any]:
    """``chosen`` with the parents of ``hp`` set so that its conditions hold."""
    out = dict(chosen)
    for condition in hp.conditions:
        name, values = getattr(condition, "name", None), getattr(condition, "values", None)
        if name is not None and values and out.get(name) not in values:
            out[name] = values[0]
    return out


def discover_space(build: Callable[[HyperParameters], Any], base: HyperParameters | None = None,
                   *, max_builds: int = MAX_BUILDS, max_seconds: float = MAX_SECONDS
                   ) -> HyperParameters:
    """Every hyperparameter ``build(hp)`` declares under some values, added to ``base``.

    The first build uses the defaults and its errors propagate (a hypermodel that cannot
    be built with its defaults is broken); a later build that raises is a combination
    the hypermodel does not support, and is skipped.

    Raises:
        Exception: whatever the first build raises.
    """
    found = HyperParameters.from_config(
        {"space": base.get_config()["space"] if base is not None else [], "values": {}})
    queue: list[dict[str, Any]] = [{}]
    tried: set[tuple[tuple[str, str], ...]] = set()
    explored: set[tuple[str, str]] = set()
    builds, started = 0, time.monotonic()
    while queue and builds < max_builds and time.monotonic() - started < max_seconds:
        chosen = queue.pop(0)
        mark = tuple(sorted((k, repr(v)) for k, v in chosen.items()))
        if mark in tried:
            continue
        tried.add(mark)
        hps = _with_values(found, chosen)
        builds += 1
        try:
            build(hps)
        except Exception:
            if builds == 1:
                raise
            continue
        new = [hp for hp in hps.space if not found._exists(hp.name, hp.conditions)]
        found.merge(new, overwrite=False)
        # Explore every hyperparameter not explored yet, under the values that showed it.
        for hp in found.space:
            ident = (hp.name, repr([c.get_config() for c in hp.conditions]))
            if ident in explored:
                continue
            explored.add(ident)
            context = _activating(hp, chosen)
            queue.extend({**context, hp.name: value} for value in _alternatives(hp))
    found.values = {}
    return found


@contextlib.contextmanager
def watch_declarations(hps: Any, check: Callable[[Any, Any], None]) -> Iterator[None]:
    """While in the block, call ``check(hp, stored)`` at each declaration code makes on
    ``hps`` (a running trial's hyperparameters, as the oracle gave them): ``hp`` as
    declared, ``stored`` the entry of the same name and conditions ``hps`` held before the
    block (None for a new one). ``check`` raises to refuse the declaration.

    The container would hand back the stored value and drop a new definition without a
    word, and discovery builds only: what ``fit`` or ``run_trial`` declares is never
    compared with the stored space otherwise. ``hps`` is one of hpstore's
    HyperParameters or KerasTuner's (``hpstore.keras`` has the latter consult the same
    watchers); nothing is set on it, so it copies and pickles as ever.
    """
    known = {id(hp) for hp in hps.space}

    def watch(hp: Any) -> None:
        stored = None
        for registered in hps._hps.get(hp.name, ()):
            if list(registered.conditions) == list(hp.conditions):
                stored = registered if id(registered) in known else None
                break
        check(hp, stored)

    DECLARATION_WATCHERS[id(hps)] = watch  # (hps lives as long as the block: its id holds)
    try:
        yield
    finally:
        DECLARATION_WATCHERS.pop(id(hps), None)


def declaration_key(hp: Any) -> str:
    """A hyperparameter's name and conditions, as text (the same for both libraries')."""
    return f"{hp.name} {[c.get_config() for c in hp.conditions]!r}"


def check_declared_again(owner: Any, hp: Any, stored: Any,
                         compare: Callable[[str, dict[str, Any]], None],
                         store: Any = None) -> None:
    """The check a Tuner gives :func:`watch_declarations`: a hyperparameter the space
    holds, declared again while a trial runs under other settings, where discovery never
    looks (``fit``, ``run_trial``), is compared as discovery compares the build's, so an
    edited definition is refused instead of being run on the stored one without a word.
    What the build declares (``owner._declared``), discovery checked already.
    ``compare(class_name, config)`` compares one declaration with the stored space, as
    ``update_space`` does: ``hyperparameters=`` overrides it, and with
    ``tune_new_entries=False`` it counts as a Fixed at its default. A new one is asked of
    ``store`` (the search's), whose space the trial's end adds it to.

    Raises:
        ProjectMismatchError: the declaration differs from what the file holds.
        NameTooLongError: a new one named as ``store`` cannot hold (a NUL on PostgreSQL):
            refused as it is declared, since the trial's end could not be written.
    """
    if stored is None:
        if store is not None:
            store.check_space([_entry(hp)])
        return
    declared: set[str] = owner.__dict__.setdefault("_declared", set())
    if declaration_key(hp) in declared:
        return
    config = hp.get_config()
    passed: set[str] = owner.__dict__.setdefault("_declarations_passed", set())
    if stored.get_config() == config or repr(config) in passed:
        return
    try:
        compare(type(hp).__name__, config)
    except ProjectMismatchError as exc:
        # (the store's words blame a hypermodel edited since, and advise a new project or
        # overwrite=True: the next trial would declare it so again all the same)
        from hpstore.oracle.opening import difference

        refused = ProjectMismatchError(
            f"A trial declared {hp.name!r} as it ran (in fit or run_trial) otherwise than "
            f"the search holds it: "
            f"{difference(_entry(stored), _entry(hp))}. A name keeps its first "
            "definition (KerasTuner drops a later one without a word): a range that depends "
            "on another value needs a name of its own for each range (or a "
            "conditional_scope of that value). The trial is handed back to run again.")
        refused.declared_in_trial = True  # type: ignore[attr-defined]
        raise refused from exc
    passed.add(repr(config))


def _entry(hp: Any) -> dict[str, Any]:
    return {"class_name": type(hp).__name__, "config": hp.get_config()}
