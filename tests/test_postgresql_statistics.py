"""The planner's statistics on PostgreSQL: refreshed as a project grows and after a whole
search is loaded, never waited for behind a VACUUM."""

from __future__ import annotations

import threading

from _pg_oracles import ORACLES, finish, space
from _postgres import fresh_url

import hpstore

DEADLINE = 180.0


def _planner_facts(url):
    """(rows the planner believes the trials table holds, -1 before any ANALYZE; the
    index a look-up of one trial by its id is planned on)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT reltuples FROM pg_class WHERE oid = 'trials'::regclass"
                            ).fetchone()[0]
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN SELECT * FROM trials WHERE project_id = 1 AND trial_id = '05'"))
    return rows, plan


def _no_autovacuum(url):
    """Statistics come from hpstore alone (autovacuum could otherwise gather them)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("trials", "observations", "transitions"):
            conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = off)")


def test_a_growing_project_gives_the_planner_statistics_of_its_trials():
    # Without statistics PostgreSQL takes project_id for selective and may plan a trial's
    # look-up on an index holding only it, reading all of the project's trials each time.
    # The worker that creates trial number 64 (then 256, 1024 ...) runs ANALYZE.
    url = fresh_url()
    oracle = hpstore.RandomSearchOracle("loss", max_trials=200, hyperparameters=space(),
                                        seed=4, database=url)
    _no_autovacuum(url)
    assert finish(oracle, stop_after=64) == 64  # trials 0 to 63
    assert _planner_facts(url)[0] == -1  # never analysed
    assert finish(oracle, stop_after=1) == 1  # trial 64
    rows, plan = _planner_facts(url)
    assert rows == 65
    assert "trials_by_values" not in plan, plan
    oracle.close()


def test_statistics_are_not_waited_for_behind_a_vacuum():
    # A person's VACUUM (or anything holding the tables' SHARE UPDATE EXCLUSIVE lock) makes
    # the refresh give up at once: the worker's trial is not held up behind it.
    import psycopg

    url = fresh_url()
    oracle = hpstore.RandomSearchOracle("loss", max_trials=200, hyperparameters=space(),
                                        seed=4, database=url)
    _no_autovacuum(url)
    assert finish(oracle, stop_after=64) == 64
    with psycopg.connect(url) as holder:
        holder.execute("LOCK TABLE trials IN SHARE UPDATE EXCLUSIVE MODE")
        worker = threading.Thread(target=finish, args=(oracle, 1))
        worker.start()
        worker.join(DEADLINE / 9)  # (the worker's own lock timeout is 60 s)
        assert not worker.is_alive()  # trial 64 made, the refresh given up
        holder.rollback()
    assert _planner_facts(url)[0] == -1 and len(oracle.trials) == 65
    oracle.close()


def test_a_search_loaded_whole_gives_the_planner_statistics_of_its_trials(tmp_path):
    source = hpstore.RandomSearchOracle("loss", max_trials=100, hyperparameters=space(),
                                        seed=4, database=str(tmp_path / "s.db"))
    finish(source)
    state = source.get_state()
    url = fresh_url()
    target = ORACLES["random"](url)
    _no_autovacuum(url)
    target.set_state(state)
    assert _planner_facts(url)[0] == len(state["trials"]) == 100
    target.close()
    # ... and so does a copy (hpstore copy) into a new project
    from hpstore.cli import main

    url = fresh_url()
    hpstore.RandomSearchOracle("loss", max_trials=1, hyperparameters=space(),
                               database=url, project_name="other").close()
    _no_autovacuum(url)
    assert main(["copy", str(tmp_path / "s.db"), url]) == 0
    assert _planner_facts(url)[0] == 100
    source.close()
