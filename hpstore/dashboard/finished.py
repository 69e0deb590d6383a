"""Whether a followed search is finished, so that its page stops asking.

The cheap rules of :func:`hpstore.queries.finish_reason` are applied at every poll. The
costly one (with no worker left, would the search's oracle hand out another trial?) loads
the whole project into memory, as ``hpstore watch`` does: a second at 10,000 trials, but
seconds and hundreds of MB at 100,000. So the dashboard asks it off the thread that answers
the pages, of a store of its own, once per change of the status log, and only of searches
up to :data:`ORACLE_LIMIT` trials; a larger search with no worker alive is shown as such
(finished or paused) and polled slowly, which costs a query every few seconds.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from hpstore import queries
from hpstore.errors import HpStoreError

#: trials past which the oracle is not asked (it would load the whole search into memory)
ORACLE_LIMIT = 10_000


#: seconds the asking thread waits for another question before it ends
_IDLE = 5.0


class OracleQuestion:
    """Asks whether a project's oracle would stop, one question after another in a
    thread of its own; the answer is kept for the status-log position it was asked at.

    One thread for every question, not one each: a file of 1,000 projects started 1,000
    threads at the first answer of the page, each start waiting on the others' work (6 s
    of a first answer of 8).
    """

    def __init__(self, opener: Callable[[], Any]) -> None:
        self._opener = opener
        self._lock = threading.Lock()
        self._answers: dict[tuple[int, int], bool | None] = {}
        self._asking: set[tuple[int, int]] = set()
        self._questions: queue.SimpleQueue[tuple[tuple[int, int], str]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def known(self, project_id: int, position: int) -> bool:
        """Whether the answer for the project at ``position`` has come."""
        with self._lock:
            return (project_id, position) in self._answers

    def answer(self, name: str, project_id: int, position: int) -> bool | None:
        """The answer for the project at status-log ``position``: True (its oracle would
        stop), False, or None while it is being asked (or could not be told)."""
        key = (project_id, position)
        with self._lock:
            if key in self._answers:
                return self._answers[key]
            if key in self._asking:
                return None
            self._asking.add(key)
            self._questions.put((key, name))
            if self._thread is None:
                # a daemon thread: a question still being asked never keeps the dashboard
                # from stopping, and a reader killed half-way leaves nothing behind
                self._thread = threading.Thread(target=self._answer_all, daemon=True,
                                                name="hpstore-oracle-question")
                self._thread.start()
        return None

    def _answer_all(self) -> None:
        """Answer the questions as they come; end once none came for a while."""
        while True:
            try:
                key, name = self._questions.get(timeout=_IDLE)
            except queue.Empty:
                with self._lock:  # (a question put meanwhile is answered by this thread)
                    if self._questions.empty():
                        self._thread = None
                        return
                continue
            try:
                self._ask(key, name)
            except Exception:  # (unforeseen: not known, and the next ones are still asked)
                with self._lock:
                    self._answers[key] = None
                    self._asking.discard(key)

    def _ask(self, key: tuple[int, int], name: str) -> None:
        answer: bool | None = None
        try:
            store = self._opener()
            try:
                record = store.find_project(name)
                if record is not None and record.project_id == key[0]:
                    answer = queries.oracle_would_stop(store.open_project(record))
            finally:
                store.close()
        except (HpStoreError, OSError):
            answer = None  # the file moved or changed under it: not finished, as far as known
        with self._lock:
            # only the newest position of each project is worth keeping
            for old in [k for k in self._answers if k[0] == key[0]]:
                del self._answers[old]
            self._answers[key] = answer
            self._asking.discard(key)
