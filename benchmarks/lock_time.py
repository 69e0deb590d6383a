"""Where a worker's time goes around the writers' turnstile, in a benchmark's own process.

``python -m benchmarks floor`` runs hpstore and loops of its statements in several
processes; how fast they go together depends on how long each trial holds the write lock
and how much processor time each spends outside it (with more processes than cores, the
cores, not the lock, run out first). :func:`follow` times, in the process it is called in
(a benchmark worker, never a user's), every turn taken through hpstore's turnstile
(:class:`hpstore.store.sqlite.locks.Turnstile`): the wall and processor time from the
turn taken to its end, and the processor time spent waiting for it. With the processor
time of the whole run, that splits a trial's processor time into held, waiting and
outside; the wall time held is what the other processes wait for. Processor time is the
worker thread's own (``thread_time``): the process's clock sums every thread's under a
kernel lock, and read at each turn it slowed several processes by a tenth.
"""

from __future__ import annotations

import time
from typing import Any

from hpstore.store.sqlite import locks


class LockTime:
    """A worker's totals, in seconds, since :func:`follow` was called."""

    def __init__(self) -> None:
        self.held = 0.0  # wall time holding a turn (its write transaction and work in it)
        self.held_cpu = 0.0  # processor time holding a turn
        self.waiting_cpu = 0.0  # processor time spent waiting for a turn
        self.turns = 0
        self._taken: tuple[float, float] | None = None
        self._cpu = time.thread_time()

    def figures(self) -> dict[str, float]:
        """The totals: processor time, time held (wall and processor), processor time
        waiting; and turns."""
        return {"cpu": time.thread_time() - self._cpu, "held": self.held,
                "held_cpu": self.held_cpu, "waiting_cpu": self.waiting_cpu,
                "turns": float(self.turns)}


def follow() -> LockTime:
    """Time every turn this process takes from now on (see the module's docstring)."""
    found = LockTime()
    enter, leave = locks.Turnstile.enter, locks.Turnstile.leave

    def timed_enter(turnstile: Any, pid: int | None = None) -> bool:
        cpu = time.thread_time()
        taken = enter(turnstile, pid)
        now = time.thread_time()
        found.waiting_cpu += now - cpu
        found._taken = (time.perf_counter(), now) if taken else None
        return taken

    def timed_leave(turnstile: Any, pid: int | None = None) -> None:
        leave(turnstile, pid)
        if found._taken is not None:
            found.held += time.perf_counter() - found._taken[0]
            found.held_cpu += time.thread_time() - found._taken[1]
            found.turns += 1
            found._taken = None

    locks.Turnstile.enter = timed_enter  # type: ignore[method-assign]
    locks.Turnstile.leave = timed_leave  # type: ignore[method-assign]
    return found


def per_trial(reports: list[dict[str, float]], trials: int) -> dict[str, float]:
    """The workers' totals as microseconds a trial: ``cpu``, ``held`` (wall time),
    ``held_cpu``, ``waiting_cpu`` and ``outside`` (processor time neither holding the lock
    nor waiting for it)."""
    if not reports or trials <= 0:
        return {}
    total = {key: sum(r[key] for r in reports) * 1e6 / trials
             for key in ("cpu", "held", "held_cpu", "waiting_cpu")}
    total["outside"] = total["cpu"] - total["held_cpu"] - total["waiting_cpu"]
    return total
