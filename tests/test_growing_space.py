"""A space that grows while the search runs: hyperparameters declared inside a trial, on a
branch only some trials take, or changed in the hypermodel since the search began."""

from __future__ import annotations

import os

import pytest

import hpstore
from hpstore.hyperparameters.discover import discover_space
from hpstore.hyperparameters.enumerate import iter_configurations
from hpstore.oracle import values_key
from hpstore.oracles.grid_search import grid_values

# -- spaces declared while a trial runs (KerasTuner's own patterns) ---------------------------


def branch_if(hp):
    """The hyperparameter C exists only when "b" is chosen."""
    if hp.Choice("model", ["a", "b"]) == "b":
        with hp.conditional_scope("model", ["b"]):
            hp.Float("C", 1e-3, 1.0, sampling="log")


def flag_children(hp):
    """A Boolean parent with a 3-way child under each of its values."""
    if hp.Boolean("flag"):
        with hp.conditional_scope("flag", [True]):
            hp.Choice("p", ["a", "b", "c"])
    else:
        with hp.conditional_scope("flag", [False]):
            hp.Choice("q", ["x", "y", "z"])


def two_children(hp):
    """Two 3-way children under one value of the parent."""
    if hp.Boolean("flag"):
        with hp.conditional_scope("flag", [True]):
            hp.Choice("p", ["a", "b", "c"])
            hp.Choice("r", [1, 2, 3])


def nested(hp):
    """A branch inside a branch."""
    if hp.Choice("model", ["a", "b"]) == "a":
        with hp.conditional_scope("model", ["a"]):
            hp.Int("units", 1, 3)
    else:
        with hp.conditional_scope("model", ["b"]):
            if hp.Boolean("deep"):
                with hp.conditional_scope("deep", [True]):
                    hp.Choice("act", ["relu", "tanh", "selu"])


def plain_four(hp):
    """Four combinations, all declared in the trial."""
    hp.Choice("a", [1, 2])
    hp.Choice("b", ["x", "y"])


def layers_loop(hp):
    """Per-layer hyperparameters in a loop whose length is tuned."""
    for i in range(hp.Int("layers", 1, 3)):
        hp.Choice(f"units_{i}", [8, 16])


def _drive(oracle, declare, workers: int = 1) -> list[tuple]:
    """Run the search as ``workers`` workers taking turns (each asks for a trial, then the
    oldest running trial declares its space and ends); the values each trial ran with."""
    ran: list[tuple] = []
    held: dict[int, hpstore.Trial] = {}
    for _ in range(500):
        for w in range(workers):
            if w not in held:
                trial = oracle.create_trial(f"w{w}")
                if trial.status == "RUNNING":
                    held[w] = trial
        if not held:
            return ran
        w = min(held, key=lambda k: int(held[k].trial_id))
        trial = held.pop(w)
        declare(trial.hyperparameters)
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        ran.append(tuple(sorted(trial.hyperparameters.values.items())))
    raise AssertionError("the search never stopped")


def _file_bytes(path: str) -> bytes:
    parts = [path, path + "-wal"]
    return b"".join(open(p, "rb").read() for p in parts if os.path.exists(p))


def _every_combination(declare) -> set[tuple]:
    space = discover_space(declare)
    return {tuple(sorted(v.items())) for v in iter_configurations(space.space)}


@pytest.mark.parametrize("declare", [flag_children, two_children, nested, plain_four])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_grid_runs_each_combination_declared_in_trials_once(tmp_path, declare, workers):
    oracle = hpstore.GridSearchOracle("loss", max_trials=100, database=str(tmp_path / "g.db"))
    ran = _drive(oracle, declare, workers)
    assert len(ran) == len(set(ran))  # nothing ran twice
    assert set(ran) == _every_combination(declare)  # and nothing was left out
    # what the file records is what ran
    stored = {tuple(sorted(t.hyperparameters.values.items())) for t in oracle.trials.values()}
    assert stored == set(ran)


def parent_declared_again(hp):
    """``depth`` declared under each value of ``kind`` (the second once a trial takes it,
    so stored after ``extra``, a child of ``depth``)."""
    if hp.Choice("kind", ["x", "y"]) == "x":
        with hp.conditional_scope("kind", ["x"]):
            depth = hp.Int("depth", 1, 3)
    else:
        with hp.conditional_scope("kind", ["y"]):
            depth = hp.Int("depth", 3, 4)
    with hp.conditional_scope("depth", [3]):
        if depth == 3:
            hp.Choice("extra", ["a", "b", "c"])


@pytest.mark.parametrize("cls", [hpstore.GridSearchOracle, hpstore.RandomSearchOracle,
                                 hpstore.BayesianOptimizationOracle])
def test_a_child_stored_before_its_parents_later_declaration_is_tuned(tmp_path, cls):
    # The draw, the grid and the Bayesian encoding settled conditions in one pass in the
    # stored order: `extra` came before depth's declaration under kind="y", which they
    # took as not set yet, so extra was never drawn there: 94 of 100 random trials ran
    # {kind: y, depth: 3, extra: a} (its default), and the grid never tried b or c
    oracle = cls("loss", max_trials=100, seed=2, database=str(tmp_path / "s.db"))
    ran = _drive(oracle, parent_declared_again)
    kinds = [(("depth", d), ("kind", "x")) for d in (1, 2)] + [(("depth", 4), ("kind", "y"))]
    threes = [(("depth", 3), ("extra", e), ("kind", k)) for k in "xy" for e in "abc"]
    assert sorted(ran) == sorted(kinds + threes)


@pytest.mark.parametrize("cls", [hpstore.RandomSearchOracle,
                                 hpstore.BayesianOptimizationOracle])
def test_a_branch_declared_in_the_trial_is_tuned(tmp_path, cls):
    oracle = cls("loss", max_trials=16, seed=3, database=str(tmp_path / "s.db"))
    if cls is hpstore.BayesianOptimizationOracle:
        oracle = cls("loss", max_trials=16, seed=3, num_initial_points=4,
                     database=str(tmp_path / "b.db"))
    ran = _drive(oracle, branch_if, workers=2)
    assert len(ran) == len(set(ran))
    assert [h.name for h in oracle.get_space().space] == ["model", "C"]
    b_runs = [dict(v) for v in ran if ("model", "b") in v]
    assert len(b_runs) >= 10
    assert len({r["C"] for r in b_runs}) == len(b_runs)  # C is tuned, not its default
    # the values recorded are those the trial ran with, C included
    for trial in oracle.trials.values():
        assert ("C" in trial.hyperparameters.values) == (
            trial.hyperparameters.values["model"] == "b")


def test_a_finite_space_used_up_waits_for_running_trials(tmp_path):
    """Random search with every value of the known space taken answers IDLE while a trial
    runs (it may declare more), and STOPPED once nothing runs."""
    oracle = hpstore.RandomSearchOracle("loss", max_trials=50, database=str(tmp_path / "r.db"))
    first = oracle.create_trial("w0")
    assert first.hyperparameters.values == {}
    assert oracle.create_trial("w1").status == "IDLE"
    plain_four(first.hyperparameters)
    oracle.update_trial(first.trial_id, {"loss": 1.0})
    first.status = "COMPLETED"
    oracle.end_trial(first)
    assert oracle.create_trial("w1").status == "RUNNING"


def test_grid_skips_values_a_running_trial_will_complete(tmp_path):
    hp = hpstore.HyperParameters()
    hp.Boolean("flag")
    oracle = hpstore.GridSearchOracle("loss", hyperparameters=hp,
                                      database=str(tmp_path / "g.db"))
    first = oracle.create_trial("w0")  # flag=False, will declare q and run it at "x"
    assert first.hyperparameters.values == {"flag": False}
    # q enters the space from another trial's declarations (another worker's hypermodel)
    grown = oracle.get_space()
    with grown.conditional_scope("flag", [False]):
        grown.Choice("q", ["x", "y"])
    oracle.update_space(grown)
    proposed = []
    for w in range(1, 4):
        trial = oracle.create_trial(f"w{w}")
        proposed.append((trial.status, dict(trial.hyperparameters.values)))
    assert proposed == [("RUNNING", {"flag": False, "q": "y"}),
                        ("RUNNING", {"flag": True}),
                        ("IDLE", {"flag": False, "q": "x"})]  # the space, at its defaults
    flag_children(first.hyperparameters)
    oracle.update_trial(first.trial_id, {"loss": 1.0})
    first.status = "COMPLETED"
    oracle.end_trial(first)
    assert oracle.get_trial(first.trial_id).hyperparameters.values == {"flag": False, "q": "x"}
    keys = [values_key(t.hyperparameters.values) for t in oracle.trials.values()]
    assert len(keys) == len(set(keys))


def test_grid_order_on_a_known_space_is_the_odometer(tmp_path):
    space = discover_space(plain_four)
    oracle = hpstore.GridSearchOracle("loss", hyperparameters=space,
                                      database=str(tmp_path / "g.db"))
    ran = _drive(oracle, plain_four)
    expected = [tuple(sorted(v.items()))
                for v in iter_configurations(space.space, order=grid_values)]
    assert ran == expected


# -- the Tuner finds every branch before the first trial ----------------------------------------

@pytest.mark.parametrize(("declare", "names"), [
    (branch_if, {"model", "C"}),
    (flag_children, {"flag", "p", "q"}),
    (nested, {"model", "units", "deep", "act"}),
    (layers_loop, {"layers", "units_0", "units_1", "units_2"}),
])
def test_tuner_discovers_every_branch_before_the_first_trial(tmp_path, declare, names):
    oracle = hpstore.RandomSearchOracle("loss", max_trials=3, database=str(tmp_path / "d.db"))
    hpstore.Tuner(oracle, hypermodel=declare, run_trial=lambda t: 1.0, verbose=0)
    assert {h.name for h in oracle.get_space().space} == names
    assert len(oracle.trials) == 0


def test_discovery_skips_combinations_the_hypermodel_refuses():
    def picky(hp):
        kind = hp.Choice("kind", ["a", "b", "c"])
        if kind == "c":
            raise ValueError("c is not built here")
        if kind == "b":
            hp.Int("n", 1, 4)

    assert [h.name for h in discover_space(picky).space] == ["kind", "n"]

    def broken(hp):
        raise RuntimeError("cannot build at all")

    with pytest.raises(RuntimeError, match="cannot build"):
        discover_space(broken)


def test_discovery_builds_a_bounded_number_of_times():
    calls = []

    def many(hp):
        calls.append(1)
        for i in range(30):
            hp.Choice(f"c{i}", list(range(20)))

    discover_space(many, max_builds=40)
    assert len(calls) == 40


# -- a definition changed since the search began ------------------------------------------------

def test_a_range_changed_in_the_hypermodel_is_refused(tmp_path):
    path = str(tmp_path / "c.db")

    def build(low, high):
        return lambda hp: hp.Float("x", low, high)

    oracle = hpstore.RandomSearchOracle("loss", max_trials=4, database=path)
    hpstore.Tuner(oracle, hypermodel=build(-10, 10), run_trial=lambda t: 1.0,
                  verbose=0).search()
    oracle.close()
    before = _file_bytes(path)
    again = hpstore.RandomSearchOracle("loss", database=path)
    with pytest.raises(hpstore.ProjectMismatchError) as info:
        hpstore.Tuner(again, hypermodel=build(-20, 20), run_trial=lambda t: 1.0, verbose=0)
    message = str(info.value)
    assert "'x'" in message and "min_value -10.0 -> -20.0" in message
    assert "max_value 10.0 -> 20.0" in message
    assert "conditions" not in message  # only what differs, not both whole configs
    # the same change through hyperparameters= is the same error, in the same words
    hp = hpstore.HyperParameters()
    hp.Float("x", -20, 20)
    with pytest.raises(hpstore.ProjectMismatchError, match=r"min_value -10\.0 -> -20\.0"):
        hpstore.RandomSearchOracle("loss", hyperparameters=hp, database=path)
    again.close()
    assert _file_bytes(path) == before  # nothing written by either refusal
    # an unchanged hypermodel resumes
    same = hpstore.RandomSearchOracle("loss", max_trials=8, database=path)
    hpstore.Tuner(same, hypermodel=build(-10, 10), run_trial=lambda t: 1.0,
                  verbose=0).search()
    assert len(same.trials) == 8


def test_hyperparameters_given_override_the_hypermodel(tmp_path):
    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 1)
    oracle = hpstore.RandomSearchOracle("loss", hyperparameters=hp, max_trials=3,
                                        database=str(tmp_path / "o.db"))
    tuner = hpstore.Tuner(oracle, hypermodel=lambda h: (h.Float("x", -5, 5), h.Int("n", 1, 3)),
                          run_trial=lambda t: t.hyperparameters["x"], verbose=0)
    tuner.search()
    space = oracle.get_space()
    assert (space.space[0].min_value, space.space[0].max_value) == (0, 1)
    assert all(0 <= t.hyperparameters["x"] <= 1 for t in oracle.trials.values())


def test_new_entries_refused_by_allow_new_entries_fail_the_trial_clearly(tmp_path):
    hp = hpstore.HyperParameters()
    hp.Int("n", 1, 5)
    oracle = hpstore.RandomSearchOracle("loss", hyperparameters=hp, allow_new_entries=False,
                                        max_trials=3, database=str(tmp_path / "n.db"))
    trial = oracle.create_trial("w")
    trial.hyperparameters.Float("lr", 1e-4, 1e-1)
    oracle.update_trial(trial.trial_id, {"loss": 1.0})
    trial.status = "COMPLETED"
    with pytest.raises(RuntimeError, match="allow_new_entries"):
        oracle.end_trial(trial)
    stored = oracle.get_trial(trial.trial_id)
    assert stored.status == "FAILED" and "allow_new_entries=True" in stored.message
    assert [h.name for h in oracle.get_space().space] == ["n"]


def test_new_entries_untuned_enter_as_fixed_at_their_default(tmp_path):
    hp = hpstore.HyperParameters()
    hp.Int("n", 1, 5)
    oracle = hpstore.RandomSearchOracle("loss", hyperparameters=hp, tune_new_entries=False,
                                        max_trials=4, database=str(tmp_path / "f.db"))
    ran = _drive(oracle, lambda h: h.Choice("act", ["relu", "tanh"], default="tanh"))
    space = oracle.get_space()
    assert [(type(h).__name__, h.name) for h in space.space] == [("Int", "n"), ("Fixed", "act")]
    assert all(dict(v)["act"] == "tanh" for v in ran)


def test_every_combination_helper_matches_a_hand_count():
    # flag_children: 3 with flag=False, 3 with flag=True; two_children: 1 + 3 * 3
    assert len(_every_combination(flag_children)) == 6
    assert len(_every_combination(two_children)) == 10
    assert len(_every_combination(nested)) == 3 + 1 + 3


def test_a_stored_space_that_cannot_be_ordered_is_left_for_its_check_to_name():
    # (a condition that is no object: an AttributeError out of the ordering, where the
    # space's own check names the damaged column)
    from hpstore.oracle.space import parents_first

    damaged = [{"class_name": "Int", "config": {"name": "a", "conditions": [5]}}]
    assert parents_first(damaged) is damaged
    ordered = [{"class_name": "Int", "config": {"name": "b", "conditions": [
                   {"class_name": "Parent", "config": {"name": "a", "values": [1]}}]}},
               {"class_name": "Int", "config": {"name": "a"}}]
    assert [i["config"]["name"] for i in parents_first(ordered)] == ["a", "b"]


def test_a_name_moved_into_a_scope_with_a_new_range_is_refused_naming_both(tmp_path):
    # accepted, the space held both definitions: trials ran units 1..4 where the code now
    # declared 10..40 under kind b, the grid never tried 10..40, the best was off the code
    path = str(tmp_path / "s.db")
    first = hpstore.HyperParameters()
    first.Choice("kind", ["a", "b"])
    first.Int("units", 1, 4)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=10, seed=1, database=path,
                                        hyperparameters=first)
    before = oracle.get_space().get_config()

    def declared(values, low, high, step=1):
        hp = hpstore.HyperParameters()
        hp.Choice("kind", ["a", "b"])
        with hp.conditional_scope("kind", values):
            hp.Int("units", low, high, step=step)
        return hp

    for values in (["b"], ["a", "b"]):
        with pytest.raises(hpstore.ProjectMismatchError) as caught:
            oracle.update_space(declared(values, 10, 40, step=10))
        said = str(caught.value)
        assert "'units' in every trial as Int 1 .. 4" in said, said
        assert f"when kind in {values!r} as Int 10 .. 40 step 10" in said, said
        assert oracle.get_space().get_config() == before  # nothing stored
    oracle.update_space(declared(["b"], 1, 4))  # moved into a scope, the same range: taken
    assert len(oracle.get_space().space) == 3
    oracle.close()
    # under values of a shared parent the stored one does not take: another hyperparameter
    path = str(tmp_path / "per-kind.db")
    oracle = hpstore.RandomSearchOracle("loss", max_trials=10, seed=1, database=path,
                                        hyperparameters=declared(["a"], 1, 4))
    oracle.update_space(declared(["b"], 10, 40, step=10))
    assert [hp.name for hp in oracle.get_space().space] == ["kind", "units", "units"]
    oracle.close()
