"""The identity of a set of values, and when a running trial is already running a set."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from hpstore.hyperparameters import HyperParameter, HyperParameters
from hpstore.hyperparameters.base import _same
from hpstore.store.records import is_identity_name


def _identity(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if is_identity_name(k)}


# Made once: json.dumps with any option builds an encoder at every call (two calls a
# trial here). An encoder keeps no state between calls, so threads may share it.
_KEY_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False)
_STORED_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def values_key(values: Mapping[str, Any]) -> str:
    """The identity of a set of values: a digest of the sorted name=value pairs.

    Hyperband's bookkeeping values (``tuner/...``) are left out, except ``tuner/trial_id``,
    which tells a continued trial from a fresh one.
    """
    text = _KEY_ENCODER.encode(_identity(values))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def stored_json(values: Mapping[str, Any]) -> str | None:
    """``values`` as the store writes them, or None when they are not plain JSON."""
    try:
        return _STORED_ENCODER.encode(values)
    except (TypeError, ValueError):
        return None


def completes(running: Mapping[str, Any], values: Mapping[str, Any],
              space: HyperParameters) -> bool:
    """Whether the running trial with values ``running`` will end up having run ``values``.

    A trial that declares a hyperparameter while it runs registers it at its default, and
    ends recorded with it. So a running trial whose values are a part of ``values``, all
    the rest being at their defaults, is already running ``values``: proposing them again
    would run the same set twice.
    """
    ran, wanted = _identity(running), _identity(values)
    if len(wanted) <= len(ran):
        return False  # equal sets are caught by their digests; fewer cannot be a superset
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


def as_held(space: HyperParameters, given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` with each value a hyperparameter of that name can take written as the
    search holds it; the others as given (refused later, by ``checked_values``)."""
    held = dict(given)
    for name, value in given.items():
        with contextlib.suppress(ValueError):
            held[name] = held_as(space.space, name, value)
    return held
