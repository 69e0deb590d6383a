"""GridSearchOracle: KerasTuner's order, conditions, each point once across processes and kills."""

from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import os
import signal
import sqlite3

import pytest
from _workers import (
    DEADLINE,
    build,
    grid_space,
    run_kind,
    run_kind_until_killed,
    run_together,
)

import hpstore
from hpstore.oracles.grid_search import grid_values

CTX = mp.get_context("spawn")


def expected_grid():
    """The grid written out by hand from the rules: defaults first, last name fastest."""
    points = []
    for units, act, dropout in itertools.product([1, 2, 3], ["tanh", "relu"], [False, True]):
        if dropout:
            points += [{"units": units, "act": act, "dropout": True, "rate": r}
                       for r in (0.1, 0.5)]
        else:
            points.append({"units": units, "act": act, "dropout": False})
    return points


def complete(oracle, tuner_id="t"):
    seen = []
    while (trial := oracle.create_trial(tuner_id)).status == "RUNNING":
        seen.append(dict(trial.hyperparameters.values))
        oracle.update_trial(trial.trial_id, {"loss": float(len(seen))})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    return seen, trial.status


def test_enumeration_order_and_count():
    seen, last = complete(hpstore.GridSearchOracle("loss", hyperparameters=grid_space()))
    assert seen == expected_grid()
    assert len(seen) == 18 and last == "STOPPED"


def test_float_without_step_gives_default_and_ten_samples():
    hp = hpstore.Float("lr", 1e-4, 1e-1, sampling="log", default=1e-3)
    values = list(grid_values(hp))
    assert values[0] == 1e-3 and len(values) == 11
    assert all(1e-4 <= v <= 1e-1 for v in values)
    assert list(grid_values(hpstore.Choice("c", ["a", "b", "c"], default="b"))) == [
        "b", "a", "c"]
    assert list(grid_values(hpstore.Boolean("b", default=True))) == [True, False]


def _first_points_of_a_huge_grid(path: str) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    hp = hpstore.HyperParameters()
    hp.Int("big", 0, 2**62, default=5)
    hp.Float("f", 0.0, 1.0, step=2.0**-50)
    oracle = hpstore.GridSearchOracle("loss", hyperparameters=hp, max_trials=3, database=path)
    while (trial := oracle.create_trial("w")).status == "RUNNING":
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        oracle.end_trial(trial)
    oracle.close()


def test_a_grid_over_a_huge_range_starts_at_once(tmp_path):
    # every value of Int(0, 2**62) was listed at each trial: the first never came, the
    # process growing to gigabytes (here capped at 2 GiB: a MemoryError)
    path = str(tmp_path / "huge.db")
    child = mp.get_context("spawn").Process(target=_first_points_of_a_huge_grid, args=(path,))
    child.start()
    child.join(DEADLINE)
    assert child.exitcode == 0
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT hp_values FROM trials ORDER BY number").fetchall()
    assert [json.loads(r[0]) for r in rows] == [
        {"big": 5, "f": 0.0}, {"big": 5, "f": 2.0**-50}, {"big": 5, "f": 2.0**-49}]


def test_each_trial_goes_on_from_the_last_point_not_the_first(tmp_path, monkeypatch):
    # each create_trial walked the grid from its first point to the stored position: a
    # large grid's trials got ever slower (seconds each at a million points)
    from hpstore.oracles import grid_search

    walks = []

    def counted(hp):
        walks.append(hp.name)
        return grid_values(hp)

    monkeypatch.setattr(grid_search, "grid_values", counted)
    hp = hpstore.HyperParameters()
    hp.Int("n", 0, 999)
    path = str(tmp_path / "long.db")
    oracle = hpstore.GridSearchOracle("loss", hyperparameters=hp, max_trials=40, database=path)
    other = hpstore.GridSearchOracle("loss", hyperparameters=hp, max_trials=40, database=path)
    numbers = []
    for i in range(40):
        asking = oracle if i % 4 else other  # another worker takes some points between
        trial = asking.create_trial("w")
        numbers.append(trial.hyperparameters["n"])
        asking.update_trial(trial.trial_id, {"loss": 1.0})
        asking.end_trial(trial)
    assert numbers == list(range(40))
    assert len(walks) <= 4, walks  # (each oracle's first walk; after a restart, one more)
    oracle.close()
    other.close()


@pytest.mark.parametrize(("values", "default", "first"), [([1, 2], 2.0, 2), ([1.0, 2.5], 1, 1.0)])
def test_a_default_given_as_the_other_number_type_is_run_once(values, default, first):
    # 2.0 == 2: a default of 2.0 among [1, 2] was kept as given, so the grid ran {c: 2.0}
    # first and {c: 2} later, two digests for one set of values
    hp = hpstore.HyperParameters()
    hp.Choice("c", values, default=default)
    hp.Boolean("b")
    seen, last = complete(hpstore.GridSearchOracle("loss", hyperparameters=hp))
    assert [(v["c"], v["b"]) for v in seen] == [
        (first, False), (first, True), *[(v, b) for v in values if v != first
                                         for b in (False, True)]]
    assert all(type(v["c"]) is type(values[0]) for v in seen) and last == "STOPPED"
    assert hp.get("c") == first and type(hp.get("c")) is type(first)


def test_idle_while_others_run_then_stopped():
    hp = hpstore.HyperParameters()
    hp.Choice("only", [1, 2])
    oracle = hpstore.GridSearchOracle("loss", hyperparameters=hp)
    first, second = oracle.create_trial("a"), oracle.create_trial("b")
    assert first.status == second.status == "RUNNING"
    assert oracle.create_trial("c").status == "IDLE"
    for t in (first, second):
        oracle.update_trial(t.trial_id, {"loss": 1.0})
        t.status = "COMPLETED"
        oracle.end_trial(t)
    assert oracle.create_trial("c").status == "STOPPED"


def test_two_processes_share_a_grid(tmp_path):
    path = str(tmp_path / "grid.db")
    build("grid", path).close()
    reports = run_together(run_kind, [("grid", path, f"w{i}") for i in range(2)], DEADLINE)
    assert [r[2] for r in reports] == [None, None]
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT hp_values FROM trials ORDER BY number")
    stored = [json.loads(v) for (v,) in rows]
    assert stored == expected_grid()


def test_kill_mid_grid_then_resume_completes_each_point_once(tmp_path):
    path = str(tmp_path / "grid.db")
    build("grid", path).close()
    started, progress = CTX.Event(), CTX.Queue()
    proc = CTX.Process(target=run_kind_until_killed,
                       args=("grid", path, "doomed", started, progress), daemon=True)
    proc.start()
    assert started.wait(DEADLINE)
    for _ in range(7):
        progress.get(timeout=DEADLINE)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(DEADLINE)
    resumed = build("grid", path)
    complete(resumed, "rescuer")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    rows = conn.execute("SELECT hp_values, status FROM trials ORDER BY number").fetchall()
    assert [json.loads(v) for v, _ in rows] == expected_grid()
    assert {s for _, s in rows} == {"COMPLETED"}


@pytest.mark.parametrize("overwrite", [False])
def test_resume_keeps_the_grid_position(tmp_path, overwrite):
    path = str(tmp_path / "grid.db")
    first = build("grid", path)
    for _ in range(5):
        t = first.create_trial("t")
        first.update_trial(t.trial_id, {"loss": 1.0})
        t.status = "COMPLETED"
        first.end_trial(t)
    first.close()
    rest, _ = complete(build("grid", path, overwrite=overwrite))
    assert rest == expected_grid()[5:]


def test_a_space_of_two_thousand_hyperparameters_is_walked_in_grid_order():
    # KerasTuner runs such a grid; a walk nesting one call per hyperparameter stopped at
    # Python's recursion limit (about 1,000) with RecursionError.
    hps = hpstore.HyperParameters()
    for i in range(2000):
        hps.Boolean(f"b{i}")
    oracle = hpstore.GridSearchOracle("loss", hyperparameters=hps)
    seen = []
    for k in range(4):
        trial = oracle.create_trial(f"t{k}")
        values = trial.hyperparameters.values
        assert list(values) == [f"b{i}" for i in range(2000)]
        seen.append(sorted(name for name, value in values.items() if value))
    assert seen == [[], ["b1999"], ["b1998"], ["b1998", "b1999"]]
