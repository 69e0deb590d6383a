"""What the store contract hands out: typed records, never rows keyed by column name.

Every engine returns these; nothing above the contract knows a table or a column. Values
(JSON text in every engine) are decoded only when read, so handing a record around costs
nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from hpstore.store.decode import from_json

#: the values a Hyperband trial carries for its budget, its place in the brackets and the
#: trial it continues (KerasTuner's names): the search's, not the configuration's
BOOKKEEPING = frozenset({"tuner/epochs", "tuner/initial_epoch", "tuner/bracket",
                         "tuner/round", "tuner/trial_id"})


def is_identity_name(name: str) -> bool:
    """Whether a value named ``name`` tells what a trial tried (is part of its values
    key): all but Hyperband's bookkeeping values, except ``tuner/trial_id``, which tells
    a continued trial from a fresh one. (A hyperparameter of one's own named
    ``tuner/...``, under ``name_scope("tuner")``, is part of it.)"""
    return name not in BOOKKEEPING or name == "tuner/trial_id"


@dataclass(frozen=True)
class ProjectRecord:
    """One search (``project_name``) as its store holds it."""

    project_id: int
    name: str
    oracle_class: str
    oracle_config: Mapping[str, Any]
    objective: Mapping[str, Any]
    max_trials: int | None
    seed: int
    space_version: int
    created_at: float
    updated_at: float
    #: trials added with a result that do not count towards max_trials
    uncounted: int = 0


@dataclass(frozen=True)
class NewProject:
    """What creating a project records: its settings and its first space."""

    name: str
    oracle_class: str
    oracle_config: Mapping[str, Any]
    objective: Mapping[str, Any]
    max_trials: int | None
    seed: int
    space: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class NewTrial:
    """A trial recorded with its result obtained elsewhere (``add_trial``, warm start):
    its values, final status, score and the metric values reported, as (metric,
    direction, step, value)."""

    values: Mapping[str, Any]
    key: str
    status: str
    score: float | None
    best_step: int | None
    observations: list[tuple[str, str, int, float]]
    origin: str
    message: str | None = None


@dataclass
class TrialRecord:
    """One trial as stored: its values stay JSON text until :attr:`values` is read."""

    key: int                 # the engine's own identity of the trial (a row id)
    number: int
    trial_id: str
    status: str
    values_json: str
    values_key: str
    score: float | None
    best_step: int | None
    tuner_id: str | None
    session: str | None
    message: str | None
    run: int
    invalid_runs: int
    interruptions: int
    queued: int | None
    created_at: float
    started_at: float | None
    ended_at: float | None
    pid: int | None
    changed_at: float | None
    #: where the trial came from when not from the algorithm: "enqueued", "added",
    #: "warm start: ..." (None: the algorithm proposed it)
    origin: str | None = None
    #: text a person attached to it
    note: str | None = None
    #: when it was retired from the results (None: it counts)
    retired_at: float | None = None
    _values: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def retired(self) -> bool:
        return self.retired_at is not None

    @property
    def values(self) -> dict[str, Any]:
        """The hyperparameter values (decoded once).

        Raises:
            NotAnHpstoreFileError: the stored text is not a JSON object.
        """
        if self._values is None:
            self._values = from_json(self.values_json, "trials.hp_values")
        return self._values


@dataclass(frozen=True)
class Observation:
    """One reported metric value."""

    run: int
    metric: str
    direction: str
    step: int
    value: float
    at: float


class RunRecord(NamedTuple):
    """One run of a trial by one worker, from its change to RUNNING to the change that
    ended it, in the status it ended in (see :meth:`ProjectStore.runs`)."""

    trial_id: str
    tuner_id: str  # "(unknown)" when the log names no worker
    start: float
    end: float | None  # None: the run has not ended
    status: str  # RUNNING while it has not ended


@dataclass(frozen=True)
class Transition:
    """One status change in the status log. ``seq`` grows with every change written."""

    seq: int
    trial_id: str
    from_status: str | None
    to_status: str
    at: float
    tuner_id: str | None
    pid: int | None
    message: str | None


def fits_int64(number: int) -> bool:
    """Whether ``number`` fits in a 64-bit integer, what SQLite and PostgreSQL (bigint) hold."""
    return -(2**63) <= number < 2**63


# Made once: json.dumps with any option builds an encoder at every call. An encoder
# keeps no state between calls, so threads may share it.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_SORTED_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False)
# The C encoder json.dumps makes at every call (where the json module has one), made once
# for each key order; ``None``: no check for containers that hold themselves, which needs a
# record of its own for each call (such a container ends in a RecursionError instead).
_MAKE_C_ENCODER = getattr(json.encoder, "c_make_encoder", None)  # (not in its stubs)
_C_ENCODERS = None if _MAKE_C_ENCODER is None else tuple(
    _MAKE_C_ENCODER(None, _ENCODER.default, json.encoder.encode_basestring_ascii, None, ":",
                    ",", sort_keys, False, False)
    for sort_keys in (False, True))


def dumps(value: Any) -> str:
    """JSON as every engine stores it: compact, strict (no NaN)."""
    return compact_json(value)


def compact_json(value: Any, sort_keys: bool = False) -> str:
    """``json.dumps(value, separators=(",", ":"), allow_nan=False, sort_keys=sort_keys)``.

    A dict (a trial's values: three of these a trial) goes straight to the C encoder the
    json module makes afresh at every call, made here once.

    Raises:
        ValueError: a NaN or infinite float, or a container that holds itself; TypeError:
            a value JSON cannot hold.
    """
    if type(value) is dict and _C_ENCODERS is not None:
        try:
            return "".join(_C_ENCODERS[sort_keys](value, 0))
        except RecursionError:
            pass  # (made without the check for a container that holds itself: said below)
    return (_SORTED_ENCODER if sort_keys else _ENCODER).encode(value)

