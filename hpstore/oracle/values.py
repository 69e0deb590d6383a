"""The identity of a set of values, and when a running trial is already running a set."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from hpstore.errors import OracleContractError
from hpstore.hyperparameters import HyperParameter, HyperParameters
from hpstore.hyperparameters.base import _same
from hpstore.store.records import compact_json, is_identity_name


def _identity(values: Mapping[str, Any]) -> dict[str, Any]:
    if type(values) is dict:
        for name in values:
            if type(name) is not str or name.startswith("tuner/"):
                break
        else:
            return values  # text names, none a bookkeeping one (nearly every set): as is
    return {k: v for k, v in values.items() if is_identity_name(k)}


def values_key(values: Mapping[str, Any]) -> str:
    """The identity of a set of values: a digest of the sorted name=value pairs.

    Hyperband's bookkeeping values (``tuner/epochs``...) are left out, except
    ``tuner/trial_id``, which tells a continued trial from a fresh one.
    """
    text = compact_json(_identity(values), sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def stored_json(values: Mapping[str, Any]) -> str | None:
    """``values`` as the store writes them, or None when they are not plain JSON."""
    try:
        return compact_json(values)
    except (TypeError, ValueError):
        return None


def completes(running: Mapping[str, Any], values: Mapping[str, Any],
              space: HyperParameters) -> bool:
    """Whether the running trial with values ``running`` runs ``values``, or will end up
    having run them.

    A trial that declares a hyperparameter while it runs registers it at its default, and
    ends recorded with it. So a running trial whose values are a part of ``values``, all
    the rest being at their defaults, is already running ``values``: proposing them again
    would run the same set twice.
    """
    ran, wanted = _identity(running), _identity(values)
    if len(wanted) == len(ran):
        # the very same set, running: on a server the look-up of its digest can miss it,
        # the trial having ended with more values (declared as it ran) since the running
        # trials were read
        return all(name in ran and _same(value, ran[name]) for name, value in wanted.items())
    if len(wanted) < len(ran):
        return False  # fewer cannot be a superset
    for name, value in ran.items():
        if name not in wanted or not _same(wanted[name], value):
            return False
    for name in wanted.keys() - ran.keys():
        if not any(_same(wanted[name], hp.default) for hp in space._hps.get(name, ())):
            return False
    return True


def held_as(hps: Sequence[HyperParameter], name: str, value: Any) -> Any:
    """``value`` as the first hyperparameter named ``name`` in ``hps`` that takes it holds
    it (16.0 of an Int as 16, -0.0 as 0.0); as given when none is named so.

    Raises:
        ValueError: hyperparameters are named so, and none takes it (the first one's
            reason).
    """
    problems = []
    for hp in hps:
        if hp.name == name:
            try:
                return hp.check_value(value)
            except (ValueError, TypeError) as exc:
                problems.append(str(exc).rstrip("."))
    if problems:
        raise ValueError(problems[0])
    return value


def proposed(space: HyperParameters, given: Mapping[str, Any], oracle: str) -> dict[str, Any]:
    """The values ``oracle``'s ``populate_space`` proposed, each as the search holds it
    (see :func:`as_held`).

    Raises:
        OracleContractError: a value no hyperparameter of its name takes (2.5 or 99 for an
            ``Int`` from 1 to 3, a choice not among the choices): its trial would be refused
            at its end, when it ran with them. Nothing is recorded.
    """
    held = dict(given)
    for name, value in given.items():
        try:
            held[name] = held_as(space.space, name, value)
        except ValueError as exc:
            raise OracleContractError(
                f"{oracle}.populate_space proposed {name}={value!r}, which its "
                f"hyperparameter cannot take ({exc}). Nothing was recorded; propose values "
                "inside the search space (a hyperparameter's random_sample gives one).") from None
    return held


def as_held(space: HyperParameters, given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` with each value a hyperparameter of that name can take written as the
    search holds it; the others as given (refused later, by ``checked_values``)."""
    held = dict(given)
    for name, value in given.items():
        with contextlib.suppress(ValueError):
            held[name] = held_as(space.space, name, value)
    return held
