"""A search file changed by other programs as SQL invites: a trigger added while workers
have it open, objects of one's own beside hpstore's, a copy in rollback-journal mode."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from _workers import end_trials, open_oracle

import hpstore
from hpstore.store import open_store

RIG = ("CREATE TRIGGER rig AFTER UPDATE OF score ON trials BEGIN "
       "UPDATE trials SET score = -1 WHERE id = new.id; END")


def scores(path: Path) -> list[tuple[int, str, float | None]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT number, status, score FROM trials ORDER BY number").fetchall()


def one_trial(tmp_path: Path) -> Path:
    """A search file of one completed trial."""
    path = tmp_path / "s.db"
    end_trials(open_oracle(str(path), max_trials=5), ["COMPLETED"]).close()
    return path


def test_a_trigger_added_while_a_worker_has_the_file_open_never_runs_in_it(tmp_path):
    # the schema was compared as the file opened, never again: a worker running then
    # scored every later trial -1 through the trigger, and the search ended as if sound
    path = tmp_path / "s.db"
    oracle = end_trials(open_oracle(str(path), max_trials=10), ["COMPLETED"] * 2)
    trial = oracle.create_trial("w")
    oracle.update_trial(trial.trial_id, {"loss": 3.0})
    with sqlite3.connect(path) as outside:
        outside.execute(RIG)
    trial.status = "COMPLETED"
    with pytest.raises(hpstore.ForeignSchemaError, match=r"the trigger or view 'rig'") as told:
        oracle.end_trial(trial)
    assert 'DROP TRIGGER "rig";' in str(told.value)
    assert scores(path) == [(0, "COMPLETED", 1.0), (1, "COMPLETED", 1.0), (2, "RUNNING", None)]
    with sqlite3.connect(path) as outside:  # as the message says: dropped, the step runs
        outside.execute('DROP TRIGGER "rig"')
    oracle.end_trial(trial)
    assert scores(path)[-1] == (2, "COMPLETED", 3.0)
    oracle.close()


def test_objects_of_ones_own_are_all_named_with_how_to_drop_them(tmp_path):
    # one was named "(and 2 other differences)", with the advice to use a backup, where
    # dropping them gives hpstore's file back
    path = one_trial(tmp_path)
    with sqlite3.connect(path) as outside:
        outside.execute("CREATE VIEW mine AS SELECT trial_id FROM trials")
        outside.execute("CREATE INDEX by_tuner ON trials (tuner_id)")
    with pytest.raises(hpstore.ForeignSchemaError) as told:
        open_oracle(str(path), max_trials=5)
    said = str(told.value)
    assert "the view 'mine' was not written" in said and "the index 'by_tuner'" in said
    drops = said[said.index("DROP"):said.index(" Else")]
    assert drops == 'DROP VIEW "mine"; DROP INDEX "by_tuner";'
    with sqlite3.connect(path) as outside:
        outside.executescript(drops)
    with open_oracle(str(path), max_trials=5) as oracle:
        assert len(oracle.trials) == 1


def test_a_copy_in_rollback_journal_mode_is_put_back_in_wal_mode(tmp_path):
    # VACUUM INTO writes a file in rollback-journal mode, which hpstore resumed as it was:
    # an outside reader's open transaction then stopped every writer after 60 s
    path = one_trial(tmp_path)
    copy = tmp_path / "copy.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"VACUUM INTO '{copy}'")
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    oracle = open_oracle(str(copy), max_trials=5)
    oracle.create_trial("w")  # (the first write opens the file)
    reader = sqlite3.connect(copy, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM trials").fetchone()[0] >= 1
    try:
        assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # a write with the reader's transaction open: WAL lets it through
        store = open_store(str(copy), timeout=1.0)
        store.close()
        end_trials(oracle, ["COMPLETED"])
    finally:
        reader.execute("COMMIT")
        reader.close()
    assert [s for _, s, _ in scores(copy)].count("COMPLETED") >= 2
    oracle.close()


def test_a_rollback_journal_file_another_program_holds_open_is_refused_in_words(tmp_path):
    path = one_trial(tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM trials").fetchone()
    try:
        with pytest.raises(hpstore.DatabaseError, match="rollback-journal mode") as told:
            open_store(str(path), timeout=0.2).close()
        assert "close the others" in str(told.value)
    finally:
        reader.execute("COMMIT")
        reader.close()
    with sqlite3.connect(path) as conn:  # refused, nothing changed
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
