"""How the PostgreSQL engine reads a large project's newest status-log entry: walking the
log backwards by its key, not joining the whole log to the trials.

PostgreSQL chooses plans from the table's statistics, so the project here holds 20,000
trials (written by one statement) and is analysed; figures are in the README, not here.
"""

from __future__ import annotations

import psycopg
import pytest
from _postgres import fresh_url
from _workers import open_oracle

from hpstore import queries
from hpstore.store import open_store

TRIALS = 20_000


@pytest.fixture(scope="module")
def large():
    url = fresh_url("plans")
    open_oracle(url, max_trials=None).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO trials (project_id, number, trial_id, status, hp_values, values_key, "
            "created_at) SELECT (SELECT project_id FROM projects), g, g::text, 'COMPLETED', "
            "'{}', g::text, g FROM generate_series(0, %s - 1) AS g", (TRIALS,))
        conn.execute("ANALYZE")
    return url


def explained(url: str, ask) -> list[str]:
    """The plan of every statement ``ask(project)`` sends, one line per node."""
    store = open_store(url, read_only=True)
    sent: list[tuple[str, object]] = []
    try:
        project = queries.choose_project(store, None)
        query = project.db.query

        def traced(sql, params=None):
            sent.append((sql, params))
            return query(sql, params)

        project.db.query = traced
        answer = ask(project)
    finally:
        store.close()
    with psycopg.connect(url) as conn:
        lines = [row[0] for sql, params in sent
                 for row in conn.execute("EXPLAIN " + sql, params).fetchall()]
    return [answer, *lines]


def test_the_newest_entry_of_a_large_log_is_found_walking_it_backwards(large):
    answer, *plan = explained(large, lambda p: p.last_transition())
    assert answer == TRIALS  # (one entry a trial, numbered from 1)
    assert [line for line in plan if "Index Scan Backward" in line], plan
    assert not [line for line in plan if "Seq Scan on transitions" in line], plan
