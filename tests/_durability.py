"""What a spawned child reports about its own connection (imported by name in children)."""

from __future__ import annotations

from typing import Any

from _workers import open_oracle


def report_pragmas(path: str, durability: str, results: Any) -> None:
    try:
        oracle = open_oracle(path, max_trials=5, durability=durability)
        trial = oracle.create_trial("child")  # a real write through the child's connection
        conn = oracle.store.db.connect()
        results.put((conn.execute("PRAGMA synchronous").fetchone()[0],
                     conn.execute("PRAGMA journal_mode").fetchone()[0], trial.status))
    except BaseException as exc:
        results.put(("error", f"{type(exc).__name__}: {exc}", None))
