"""Deciding ahead of an engine's lock: what the SQLite and PostgreSQL engines share.

The store contract lets an engine ask a quick decider before taking any lock, on the facts
a worker expects (see ``ProjectStore.decide``): its look-ups of values run before are then
answered without reading and kept, for the insert that records its decision to make them
with its check of those facts. A decider that reads the store otherwise decides on reads
no insert checks: its decision is dropped, and after a few such it is not asked ahead again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from hpstore.store.contract import CreationFacts, Decider, Decision
from hpstore.trial import TrialStatus

#: decisions made ahead that read the store, after which a decider is not asked ahead
MAX_VOIDED = 3


class DecidingAhead:
    """The state of a project's decisions made ahead, and the asking of them."""

    #: the facts this worker's next decision should find, left by its last one
    _expected: CreationFacts | None = None
    #: whether the last decision found the facts expected (then the next is made ahead)
    _foreseen: bool = False
    #: decisions made ahead that read the store
    _voided: int = 0
    #: the thread whose look-ups of values are answered without reading, and its keys
    _deferring: int | None = None
    _deferred: list[str]

    def _deferred_look_up(self, key: str) -> bool:
        """Whether the look-up of ``key`` is left to the insert (this thread's decider is
        deciding with its look-ups deferred): the key is then kept for it."""
        if self._deferring is not None and self._deferring == threading.get_ident():
            self._deferred.append(key)
            return True
        return False

    def _may_ask_ahead(self) -> bool:
        """Whether the next decision is made ahead: the last found the facts expected,
        and the decider has not read the store too often."""
        return (self._foreseen and self._expected is not None
                and self._voided < MAX_VOIDED)

    def _ask_ahead(self, decider: Decider, facts: CreationFacts,
                   reads: Callable[[], int]) -> Decision | None:
        """``decider``'s decision on ``facts``, made before any lock with its look-ups
        deferred (``self._deferred`` then holds the keys it asked about); None when it
        raised (made again under the lock, where it is raised), read the store (``reads``
        counts the engine's reads) or decided something other than a new trial.

        A quick decider is a function of the facts and of those look-ups: on the same
        facts it decides the same, so a decision made ahead on facts that turn out true is
        the one the lock would have given.
        """
        self._foreseen = False  # set again by a decision recorded ahead
        before = reads()
        self._deferring, self._deferred = threading.get_ident(), []
        try:
            decision = decider(facts)
        except Exception:
            return None
        finally:
            self._deferring = None
        if reads() != before:
            self._voided += 1  # it read the store: its decision rests on unchecked reads
            return None
        return decision if decision.status == TrialStatus.RUNNING else None
