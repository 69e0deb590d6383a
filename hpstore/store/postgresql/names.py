"""The names PostgreSQL indexes, and how long each may be.

A project's name, a metric's name, a trial's id and the key of a value an oracle keeps
(``set_state_value``) are keys of btree indexes (a project is found by name, a trial by
id, a metric's values by trial, run, metric and step, a kept value by key). A btree
row holds at most 2,704 bytes, the other columns of the index included; a longer one is
the server's error, raised in the middle of a call after parts of the search were
written (a project and a trial made, the first metric value refused: the trial stuck
RUNNING). So a name longer than :data:`NAME_BYTES` is refused before anything is sent.
A file (SQLite) has no such limit: ``hpstore copy`` from one checks every project first.

A name holding a NUL character is refused the same way, wherever a text column takes it
(a hyperparameter's name, a tuner id too): PostgreSQL's text cannot hold one. Its json
columns can (as ``\\u0000``): a value or a config holding one (a Choice's) is stored, and
copied.

Refused rather than made to fit (an index of a digest of the name): the limit leaves
hundreds of words, and a digest index would slow every look-up by name and change the
schema that ``hpstore sql`` users query.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from hpstore.errors import NameTooLongError

#: the longest name a PostgreSQL store takes, in bytes of UTF-8: with the other columns of
#: its index and the row's header (a few dozen bytes) well within a btree row's 2,704
NAME_BYTES = 2000

_SHOWN = 40  # characters of a refused name shown in the message


def check_names(what: str, names: Iterable[Any]) -> None:
    """Refuse the first of ``names`` (each a ``what``: "project name", "metric name",
    "trial id") longer than :data:`NAME_BYTES` bytes of UTF-8, or holding a NUL.

    Raises:
        NameTooLongError: saying which, how long, and that nothing was written; for a NUL,
            see :func:`check_text`.
    """
    for name in names:
        text = str(name)
        check_text(what, [text])
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > NAME_BYTES:
            start = text[:_SHOWN] + ("..." if len(text) > _SHOWN else "")
            raise NameTooLongError(
                f"The {what} {start!r} is {size:,} bytes long (UTF-8); a PostgreSQL store "
                f"takes names of at most {NAME_BYTES:,} bytes, which its indexes hold. "
                f"Give a shorter {what}; nothing was written.")


def check_text(what: str, names: Iterable[Any]) -> None:
    """Refuse the first of ``names`` (each a ``what`` PostgreSQL keeps in a text column: a
    hyperparameter's name, a tuner id) holding the NUL character, which its text cannot
    hold (a file, and PostgreSQL's json columns, keep one). The server would refuse the
    row only as it is written: a metric name as the first trial reports, a hyperparameter
    declared in run_trial as the trial ends, each trial failing the same way.

    Raises:
        NameTooLongError: saying which; nothing was written.
    """
    for name in names:
        if isinstance(name, str) and "\x00" in name:
            start = name[:_SHOWN] + ("..." if len(name) > _SHOWN else "")
            raise NameTooLongError(
                f"The NUL character (\\x00) in the {what} {start!r} cannot be stored on "
                f"PostgreSQL, whose text cannot hold it: give a {what} without it (a search "
                "file takes one); nothing was written.")


def space_names(space: Iterable[Mapping[str, Any]]) -> list[Any]:
    """The hyperparameter names of stored space entries (``{"class_name", "config"}``)."""
    return [e["config"].get("name") for e in space
            if isinstance(e, Mapping) and isinstance(e.get("config"), Mapping)]


def objective_names(objective: Mapping[str, Any]) -> list[Any]:
    """The metric names a stored objective (``Objective.get_config()``) names."""
    if isinstance(objective.get("objectives"), list):
        return [o.get("name") for o in objective["objectives"] if isinstance(o, Mapping)]
    return [objective["name"]] if "name" in objective else []


def check_project(name: str, objective: Mapping[str, Any],
                  state: Mapping[str, Any] | None = None,
                  space: Iterable[Mapping[str, Any]] = ()) -> None:
    """Refuse a project whose name, objective, space or document (a ``get_state()`` one:
    its trials' ids and metric names) holds a name a PostgreSQL store cannot hold.

    Raises:
        NameTooLongError: see :func:`check_names` and :func:`check_text`.
    """
    check_names("project name", [name])
    check_names("metric name", objective_names(objective))
    check_text("hyperparameter name", space_names(space))
    if state is not None:
        check_state(state)


def check_state(state: Mapping[str, Any]) -> None:
    """Refuse a ``get_state()`` document holding a name a PostgreSQL store cannot hold: too
    long (its objective's metrics, its oracle's state keys, its trials' ids and metric
    names), or holding a NUL where a text column takes it (those, its hyperparameters'
    names, its tuner ids). A value, a config or an objective goes to a json column, which
    keeps a NUL (as ``\\u0000``), and a message or note is written escaped: those pass.

    Raises:
        NameTooLongError: see :func:`check_names` and :func:`check_text`.
    """
    settings = state.get("settings")
    if isinstance(settings, Mapping) and isinstance(settings.get("objective"), Mapping):
        check_names("metric name", objective_names(settings["objective"]))
    if isinstance(state.get("oracle_state"), Mapping):
        check_names("oracle state key", state["oracle_state"])
    trials = [t for t in state.get("trials") or () if isinstance(t, Mapping)]
    check_names("trial id", (t.get("trial_id") for t in trials))
    check_names("metric name", _observed(trials))
    space = [e for e in state.get("space") or () if isinstance(e, Mapping)]
    check_text("hyperparameter name", space_names(space))
    for what, texts in _texts(settings, space, trials):
        check_text(what, texts)


def _texts(settings: Any, space: list[Mapping[str, Any]], trials: list[Mapping[str, Any]]
           ) -> Iterator[tuple[str, Iterable[Any]]]:
    """The document's other values bound for a text column, by what each is."""
    if isinstance(settings, Mapping):
        yield "oracle class", [settings.get("oracle_class")]
    yield "hyperparameter class", (e.get("class_name") for e in space)
    for field, what in (("status", "trial status"), ("values_key", "trial values key"),
                        ("tuner_id", "tuner id"), ("session", "worker session"),
                        ("origin", "trial origin")):
        yield what, (t.get(field) for t in trials)
    # an observation is (run, metric, direction, step, value, at); a transition (from,
    # to, at, tuner id, pid, message)
    yield "metric direction", _cells(trials, "observations", (2,))
    yield "trial status", _cells(trials, "transitions", (0, 1))
    yield "tuner id", _cells(trials, "transitions", (3,))


def _cells(trials: list[Mapping[str, Any]], key: str, at: tuple[int, ...]) -> Iterator[Any]:
    """The cells ``at`` of the rows of each trial's ``key``."""
    for trial in trials:
        for row in trial.get(key) or ():
            if isinstance(row, (list, tuple)):
                yield from (row[i] for i in at if i < len(row))


def _observed(trials: Iterable[Mapping[str, Any]]) -> Iterator[Any]:
    """The metric names of the trials' observations (run, metric, direction, step, value,
    at), each once."""
    seen: set[str] = set()
    for trial in trials:
        for row in trial.get("observations") or ():
            if isinstance(row, (list, tuple)) and len(row) > 1 and str(row[1]) not in seen:
                seen.add(str(row[1]))
                yield row[1]
