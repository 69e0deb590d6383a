"""How the tools' reads of a whole project walk a search file: in the order the table lies.

A read of every trial that SQLite starts from the values index (the never-twice digest,
whose order is a hash's) reads the table's pages at random, five times as long as
walking them in order at 100,000 trials. SQLite chooses plans from the schema alone (hpstore
never runs ANALYZE), so a small file shows the plan a large one gets; figures are in the
README (Performance), not here.
"""

from __future__ import annotations

import sqlite3

import pytest
from _workers import end_trials, open_oracle

from hpstore import queries
from hpstore.store import open_store


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("plans") / "s.db")
    with open_oracle(path, max_trials=100) as oracle:
        end_trials(oracle, ["COMPLETED", "FAILED", "COMPLETED"])
    return path


def plans(path: str, ask) -> list[str]:
    """The query plan of every statement ``ask(project)`` sends, one line per step."""
    store = open_store(path, read_only=True)
    sent: list[str] = []
    try:
        project = queries.choose_project(store, None)
        project.db._conn.set_trace_callback(sent.append)
        ask(project)
    finally:
        store.close()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [row[3] for sql in sent if sql.lstrip().upper().startswith("SELECT")
                for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
    finally:
        conn.close()


@pytest.mark.parametrize("ask", [
    lambda p: p.steering_counts(),
    lambda p: p.steps_reported("loss"),
    lambda p: p.most_steps_reported("loss", "COMPLETED"),
], ids=["steering_counts", "steps_reported", "most_steps_reported"])
def test_reads_of_every_trial_walk_the_table_in_number_order(search, ask):
    steps = plans(search, ask)
    assert steps and not [s for s in steps if "trials_by_values" in s], steps
    assert not [s for s in steps if "trials_by_status" in s], steps
