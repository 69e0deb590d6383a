"""A quick decision made before SQLite's write lock (hpstore/store/sqlite/ahead.py): a
worker alone records its trial with one statement, and whatever another worker changed
meanwhile, the trials are those a decision made holding the lock gives."""

from __future__ import annotations

from typing import Any

import pytest
from _workers import space as _space

import hpstore
from hpstore.store import ahead as deciding_ahead
from hpstore.store.sqlite import ahead


def _oracle(path: Any, seed: int = 5) -> hpstore.RandomSearchOracle:
    return hpstore.RandomSearchOracle("loss", max_trials=40, hyperparameters=_space(),
                                      seed=seed, database=str(path))


def _run_one(oracle: Any, tuner: str = "main") -> tuple[str, Any]:
    trial = oracle.create_trial(tuner)
    if trial.status != "RUNNING":
        return trial.status, None
    values = dict(trial.hyperparameters.values)
    oracle.update_trial(trial.trial_id, {"loss": values["x"] ** 2})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    return trial.trial_id, values


def _create_statements(oracle: Any) -> list[str]:
    """The statements of the next create_trial's write transaction."""
    conn = oracle._store.db.connect()
    said: list[str] = []
    conn.set_trace_callback(said.append)
    try:
        trial = oracle.create_trial("main")
    finally:
        conn.set_trace_callback(None)
    oracle.update_trial(trial.trial_id, {"loss": 1.0})
    oracle.end_trial(trial)
    begin = said.index("BEGIN IMMEDIATE")
    return said[begin:said.index("COMMIT", begin) + 1]


@pytest.fixture
def counted(monkeypatch):
    """How many trials were recorded ahead, and how many decisions made ahead were
    refused by the insert (the facts had changed)."""
    counts = {"made": 0, "refused": 0}
    insert = ahead.AheadMixin._insert_ahead

    def counting(self, *args, **kwargs):
        made = insert(self, *args, **kwargs)
        counts["made" if made is not None else "refused"] += 1
        return made

    monkeypatch.setattr(ahead.AheadMixin, "_insert_ahead", counting)
    return counts


def test_a_worker_alone_records_its_trial_in_one_statement(tmp_path, counted, monkeypatch):
    oracle = _oracle(tmp_path / "alone.db")
    for _ in range(2):  # the second decision finds the facts the first left
        _run_one(oracle)
    statements = {s.split(" (")[0] for s in _create_statements(oracle)}
    assert statements == {"BEGIN IMMEDIATE", "INSERT INTO trials", "COMMIT"}
    assert counted == {"made": 1, "refused": 0}

    monkeypatch.setattr(deciding_ahead, "MAX_VOIDED", 0)  # never ahead: facts, look-up
    statements = {s.split(" (")[0].split(",")[0] for s in _create_statements(oracle)}
    assert "SELECT p.max_trials" in statements
    assert any(s.startswith("SELECT 1 FROM trials WHERE project_id") for s in statements)


def _interleaved(path: Any) -> list[Any]:
    """A worker's trials while, between two of its decisions, each fact a decision made
    ahead rests on changes alone: the next number (another worker's trial), the queue
    (the worker's own trial handed back), the running trials (that trial taken by another
    worker), the values run (the worker's trial ending with the values it would draw
    next), the space (another worker declares a hyperparameter) and max_trials. What each
    create_trial gave."""
    main, other = _oracle(path), _oracle(path)
    seen: list[Any] = []

    def steps(count: int) -> None:
        for _ in range(count):
            seen.append(_run_one(main))

    steps(3)
    # the number expected, taken (with other values than the worker draws for it)
    taken = other.create_trial("other")
    taken.hyperparameters.values.update({"x": 0.5, "y": 1, "c": "a"})
    other.update_trial(taken.trial_id, {"loss": 0.25})
    other.end_trial(taken)
    seen.append(("other", (taken.trial_id, dict(taken.hyperparameters.values))))
    steps(3)
    handed = main.create_trial("main")
    handed.status = "IDLE"  # handed back to run again: the queue, and no new number
    main.end_trial(handed)
    steps(3)
    handed = main.create_trial("main")
    handed.status = "IDLE"
    main.end_trial(handed)
    taken = other.create_trial("other")  # running again, and no new number
    assert taken.trial_id == handed.trial_id
    steps(1)
    other.update_trial(taken.trial_id, {"loss": 0.5})
    other.end_trial(taken)
    steps(3)
    changed = main.create_trial("main")
    upcoming = main.populate_space("any")["values"]  # what the next trial would draw
    changed.hyperparameters.values.update(upcoming)  # run instead: its values change
    main.update_trial(changed.trial_id, {"loss": 3.0})
    main.end_trial(changed)
    seen.append(("changed", dict(changed.hyperparameters.values)))
    steps(3)
    grown = _space()
    grown.Int("z", 0, 3)
    other.update_space(grown)  # a new space, and no new number
    steps(3)
    other.max_trials = 20  # fewer than have run: the search is over
    steps(1)
    return seen


def test_a_decision_made_ahead_is_the_one_the_lock_would_give(tmp_path, counted,
                                                              monkeypatch):
    ahead_made = _interleaved(tmp_path / "ahead.db")
    assert counted["made"] >= 5
    # each of the six changes refused what was made ahead (and nothing was written)
    assert counted["refused"] == 6
    monkeypatch.setattr(deciding_ahead, "MAX_VOIDED", 0)
    made_under_lock = _interleaved(tmp_path / "locked.db")
    assert ahead_made == made_under_lock
    assert ahead_made[-1] == ("STOPPED", None)
    ran = [t for t in ahead_made if t[0] not in ("other", "changed", "STOPPED")]
    assert len({t[0] for t in ran}) == len(ran)
    values = [repr(sorted((t[1][1] if t[0] == "other" else t[1]).items()))
              for t in ahead_made if t[1] is not None]
    assert len(set(values)) == len(values)  # the values changed to were not drawn again
    assert any("z" in t[1] for t in ran)  # drawn in the grown space


class _StatefulDraws(hpstore.RandomSearchOracle):
    """Random search that also keeps a count in its state, yet says it draws ahead: it
    reads the store as it decides, so a decision made ahead would rest on a read the
    insert does not check."""

    decides_quickly = draws_ahead = True

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        made = self.get_state_value("made", 0)
        self.set_state_value("made", made + 1)
        return super().populate_space(trial_id)


def test_a_decider_that_reads_the_store_is_not_asked_ahead_for_long(tmp_path, counted):
    oracle = _StatefulDraws("loss", max_trials=12, hyperparameters=_space(), seed=2,
                            database=str(tmp_path / "state.db"))
    for _ in range(12):
        _run_one(oracle)
    assert counted["made"] == 0
    assert oracle._project._voided == deciding_ahead.MAX_VOIDED
    assert oracle.get_state_value("made") == 12  # each decision counted once


def test_a_decider_that_keeps_state_decides_under_the_lock_only(tmp_path, counted,
                                                                monkeypatch):
    # Hyperband and the grid read their state as they decide: never asked ahead
    oracle = hpstore.HyperbandOracle("loss", max_epochs=9, hyperparameters=_space(), seed=2,
                                     database=str(tmp_path / "hb.db"))
    asked = []
    populate = type(oracle).populate_space
    monkeypatch.setattr(type(oracle), "populate_space",
                        lambda self, trial_id: asked.append(trial_id) or populate(self,
                                                                                  trial_id))
    created = [_run_one(oracle)[0] for _ in range(12)]
    assert len(set(created)) == 12
    assert asked == created and counted == {"made": 0, "refused": 0}
