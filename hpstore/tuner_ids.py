"""A worker's name, its tuner id, when none is given: one per process, and one per thread
besides the main one (two searches in threads of one process are two workers); read
outside a search, the name the tuner's last search in this process ran under (one run on
another thread records its trials as ``worker-<pid>-t<thread>``, and the main thread's
``worker-<pid>`` found none of them). Shared by ``hpstore.Tuner`` and ``hpstore.keras``."""

from __future__ import annotations

import os
import threading
from typing import Any

_LOCK = threading.Lock()


def default_tuner_id() -> str:
    """``KERASTUNER_TUNER_ID`` (or ``HPSTORE_TUNER_ID``) if set, else one per process, and
    one per thread besides the main one: two searches in threads of one process are two
    workers (under one id, both took the same trial)."""
    given = os.environ.get("HPSTORE_TUNER_ID") or os.environ.get("KERASTUNER_TUNER_ID")
    if given:
        return given
    if threading.current_thread() is threading.main_thread():
        return f"worker-{os.getpid()}"
    return f"worker-{os.getpid()}-t{threading.get_native_id()}"


def check_tuner_id(value: Any) -> str | None:
    """A ``tuner_id=`` as given to a Tuner: a string, None (or "") for the default, or a
    whole number, taken as its digits (KerasTuner runs with ``tuner_id=5``).

    Raises:
        TypeError: anything else, naming it (else the first trial refused it, inside
            ``search()``).
        ValueError: a string no store can hold (a lone surrogate, a NUL).
    """
    from hpstore.hyperparameters.base import unicode_problem

    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise TypeError(f"`tuner_id` must be a string naming this worker (or None for one "
                        f"per process), received {value!r}.")
    if (problem := unicode_problem(value)) is not None:
        raise ValueError(f"`tuner_id` {value!r} cannot be stored: {problem}.")
    return value


def tuner_id_of(owner: Any, given: str | None) -> str:
    """``owner``'s tuner id: ``given``, else this thread's while it runs a search of
    ``owner``, else the one ``owner``'s last search in this process ran under, else
    :func:`default_tuner_id`."""
    if given:
        return given
    last = owner.__dict__.get("_last_search")  # (pid, name, the threads searching now)
    if last is not None and last[0] == os.getpid() and threading.get_ident() not in last[2]:
        return str(last[1])
    return default_tuner_id()


def search_started(owner: Any) -> None:
    """Note that this thread runs a search of ``owner`` (see :func:`tuner_id_of`)."""
    with _LOCK:
        last = owner.__dict__.get("_last_search")
        searching = last[2] if last is not None and last[0] == os.getpid() else set()
        owner.__dict__["_last_search"] = (os.getpid(), default_tuner_id(),
                                          {*searching, threading.get_ident()})


def search_ended(owner: Any) -> None:
    """Note that this thread's search of ``owner`` ended."""
    with _LOCK:
        last = owner.__dict__.get("_last_search")
        if last is not None:
            last[2].discard(threading.get_ident())
