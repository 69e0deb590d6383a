"""RandomSearchOracle: seeded, never a repeat, stops exactly when a finite space is used up."""

from __future__ import annotations

import pytest

import hpstore
from hpstore.oracles import RandomSearchOracle


def complete_all(oracle, tuner_id="t"):
    seen = []
    while (trial := oracle.create_trial(tuner_id)).status == "RUNNING":
        seen.append(dict(trial.hyperparameters.values))
        oracle.update_trial(trial.trial_id, {"loss": float(len(seen))})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    return seen


def mixed_space():
    hp = hpstore.HyperParameters()
    hp.Float("lr", 1e-4, 1e-1, sampling="log")
    hp.Choice("model", ["a", "b"])
    with hp.conditional_scope("model", ["b"]):
        hp.Int("units", 8, 64, step=8)
    return hp


def test_exported_under_both_names():
    assert hpstore.RandomSearchOracle is RandomSearchOracle


def test_same_seed_same_values_other_seed_other_values():
    def values(seed):
        oracle = RandomSearchOracle("loss", max_trials=8, hyperparameters=mixed_space(),
                                    seed=seed)
        return complete_all(oracle)

    assert values(3) == values(3)
    assert values(3) != values(4)


def test_conditional_values_only_when_active():
    oracle = RandomSearchOracle("loss", max_trials=30, hyperparameters=mixed_space(), seed=0)
    for values in complete_all(oracle):
        assert ("units" in values) == (values["model"] == "b")
        assert 1e-4 <= values["lr"] <= 1e-1


def test_no_duplicates_and_exact_stop_on_a_finite_space(tmp_path):
    hp = hpstore.HyperParameters()
    hp.Int("a", 0, 4)
    hp.Boolean("flag")
    with hp.conditional_scope("flag", [True]):
        hp.Choice("c", ["x", "y"])
    # 5 * (1 + 2) = 15 distinct sets of values
    oracle = RandomSearchOracle("loss", max_trials=100, hyperparameters=hp, seed=1,
                                database=str(tmp_path / "s.db"))
    seen = complete_all(oracle)
    assert len(seen) == 15
    assert len({tuple(sorted(v.items())) for v in seen}) == 15
    assert oracle.create_trial("another").status == "STOPPED"
    assert len(oracle.trials) == 15


def test_default_max_trials_is_ten_for_a_new_search_only(tmp_path):
    path = str(tmp_path / "s.db")
    oracle = RandomSearchOracle("loss", hyperparameters=mixed_space(), database=path)
    assert oracle.max_trials == 10
    RandomSearchOracle("loss", max_trials=25, database=path)
    assert RandomSearchOracle("loss", database=path).max_trials == 25


@pytest.mark.parametrize("seed", [0, 1])
def test_resumed_search_continues_the_same_sequence(tmp_path, seed):
    whole = complete_all(RandomSearchOracle("loss", max_trials=6, hyperparameters=mixed_space(),
                                            seed=seed))
    path = str(tmp_path / "s.db")
    first = RandomSearchOracle("loss", max_trials=3, hyperparameters=mixed_space(), seed=seed,
                               database=path)
    part = complete_all(first)
    first.close()
    rest = complete_all(RandomSearchOracle(database=path, max_trials=6))
    assert part + rest == whole


def test_a_large_branch_beside_used_up_small_ones_is_searched_to_max_trials():
    # 19 branches of one configuration each beside one of 10**10: once the small ones
    # were run, 64 draws in a row could all land on them, and a space too large to list
    # was then called used up (STOPPED at trial 58 of 200, as KerasTuner stops after its
    # collisions)
    hp = hpstore.HyperParameters()
    hp.Choice("p", list(range(1, 21)))
    hp.Int("big", 0, 10**10, parent_name="p", parent_values=[20])
    oracle = RandomSearchOracle("loss", max_trials=200, hyperparameters=hp, seed=3)
    seen = set()
    while (trial := oracle.create_trial("t")).status == "RUNNING":
        seen.add(tuple(sorted(trial.hyperparameters.values.items())))
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    assert len(seen) == 200 == len(oracle.trials)


# -- the draws behind a trial's values ---------------------------------------------------------

def test_seeded_draws_are_determined_by_their_text_past_one_digest():
    from hpstore.oracle.draws import SeededDraws

    def twenty(text):
        draws = SeededDraws(text)
        return [draws.random() for _ in range(20)]  # eight a digest: three digests

    first = twenty("7:3:0")
    assert first == twenty("7:3:0")
    assert first != twenty("7:3:1") and first != twenty("7:4:0")
    assert len(set(first)) == 20 and all(0.0 <= d < 1.0 for d in first)
    assert first[:8] != first[8:16]  # the next digest is another block's


def test_seeded_draws_are_uniform():
    from hpstore.oracle.draws import SeededDraws

    draws = [SeededDraws(f"1:{n}:0").random() for n in range(4000)]
    draws += [d.random() for d in [SeededDraws("many")] for _ in range(16_000)]
    deciles = [0] * 10
    for d in draws:
        deciles[int(d * 10)] += 1
    # 2,000 expected in each tenth; a bias of a tenth of that is 9 standard deviations
    assert all(1800 < count < 2200 for count in deciles), deciles
    assert abs(sum(draws) / len(draws) - 0.5) < 0.01


def test_a_trials_values_are_its_seeds_draws_in_space_order():
    from hpstore.oracle.draws import SeededDraws

    hp = hpstore.HyperParameters()
    hp.Float("lr", 1e-4, 1e-1, sampling="log")
    hp.Int("units", 8, 64, step=8)
    hp.Choice("act", ["relu", "tanh", "gelu"])
    oracle = RandomSearchOracle("loss", max_trials=5, hyperparameters=hp, seed=11)
    for number, values in enumerate(complete_all(oracle)):
        draws = SeededDraws(f"11:{number}:0")
        assert values == {h.name: h.prob_to_value(draws.random()) for h in hp.space}
