"""HyperbandOracle: KerasTuner's schedule, promotions, and one bracket filled by three processes."""

from __future__ import annotations

import collections
import json
import multiprocessing as mp
import sqlite3

import pytest
from _workers import DEADLINE, build, run_kind, score_of, space

import hpstore
from hpstore.oracles.hyperband import num_brackets, schedule


@pytest.mark.parametrize(("max_epochs", "factor", "expected"), [
    (100, 3, [[(98, 2), (33, 4), (11, 12), (4, 34), (2, 100)],
              [(41, 4), (14, 12), (5, 34), (2, 100)],
              [(18, 12), (6, 34), (2, 100)],
              [(9, 34), (3, 100)],
              [(6, 100)]]),
    (9, 3, [[(9, 1), (3, 3), (1, 9)], [(5, 3), (2, 9)], [(3, 9)]]),
    (8, 2, [[(8, 1), (4, 2), (2, 4), (1, 8)], [(6, 2), (3, 4), (2, 8)], [(4, 4), (2, 8)],
            [(4, 8)]]),
])
def test_schedule_matches_the_reference(max_epochs, factor, expected):
    # sizes: ceil(ceil(1 + log_f(E)) / (b + 1) * f^(b - r)); epochs: ceil(E / f^(b - r))
    assert schedule(max_epochs, factor) == expected
    assert num_brackets(max_epochs, factor) == len(expected)


def test_bad_arguments():
    with pytest.raises(ValueError, match="factor"):
        hpstore.HyperbandOracle("loss", factor=1)
    with pytest.raises(ValueError, match="max_epochs"):
        hpstore.HyperbandOracle("loss", max_epochs=0)


def run_all(oracle):
    trials = []
    while (t := oracle.create_trial("t")).status != "STOPPED":
        assert t.status == "RUNNING"  # one worker never has to wait
        oracle.update_trial(t.trial_id, {"loss": score_of(t.hyperparameters.values)})
        t.status = "COMPLETED"
        oracle.end_trial(t)
        trials.append(t)
    return trials


def counts(values_list):
    return collections.Counter((v["tuner/bracket"], v["tuner/round"]) for v in values_list)


def test_one_process_runs_the_whole_schedule():
    oracle = hpstore.HyperbandOracle("loss", max_epochs=9, factor=3, hyperparameters=space(),
                                     seed=5)
    trials = run_all(oracle)
    values = [t.hyperparameters.values for t in trials]
    expected = {(b, r): size for b, rounds in zip([2, 1, 0], schedule(9, 3))
                for r, (size, _) in enumerate(rounds)}
    assert counts(values) == expected
    by_id = {t.trial_id: t for t in trials}
    for v in values:
        b, r = v["tuner/bracket"], v["tuner/round"]
        assert v["tuner/epochs"] == schedule(9, 3)[2 - b][r][1]
        if r == 0:
            assert "tuner/trial_id" not in v and v["tuner/initial_epoch"] == 0
        else:
            parent = by_id[v["tuner/trial_id"]].hyperparameters.values
            assert parent["tuner/round"] == r - 1 and parent["tuner/bracket"] == b
            assert v["tuner/initial_epoch"] == parent["tuner/epochs"]
            assert {k: x for k, x in v.items() if not k.startswith("tuner/")} == {
                k: x for k, x in parent.items() if not k.startswith("tuner/")}
    # the promoted trials of bracket 2, round 1 are the best three of round 0
    round0 = [t for t in trials if t.hyperparameters.values["tuner/bracket"] == 2
              and t.hyperparameters.values["tuner/round"] == 0]
    best3 = {t.trial_id for t in sorted(round0, key=lambda t: t.score)[:3]}
    promoted = {v["tuner/trial_id"] for v in values
                if v["tuner/bracket"] == 2 and v["tuner/round"] == 1}
    assert promoted == best3


def test_three_processes_fill_the_brackets_like_one(tmp_path):
    single = hpstore.HyperbandOracle("loss", max_epochs=9, factor=3, hyperparameters=space(),
                                     seed=5)
    expected = counts(t.hyperparameters.values for t in run_all(single))
    path = str(tmp_path / "hb.db")
    build("hyperband", path).close()
    ctx = mp.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=run_kind, args=("hyperband", path, f"w{i}", start, results))
             for i in range(3)]
    for p in procs:
        p.start()
    start.set()
    reports = [results.get(timeout=DEADLINE * 2) for _ in procs]
    for p in procs:
        p.join(DEADLINE)
    assert [r[2] for r in reports] == [None, None, None]
    conn = sqlite3.connect(path)
    values = [json.loads(v) for (v,) in conn.execute("SELECT hp_values FROM trials")]
    assert counts(values) == expected
    promoted = [v["tuner/trial_id"] for v in values if "tuner/trial_id" in v]
    assert len(promoted) == len(set(promoted))  # nobody promoted twice
