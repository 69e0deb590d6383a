"""HyperbandOracle: KerasTuner's schedule, promotions, and one bracket filled by three processes."""

from __future__ import annotations

import collections
import json
import sqlite3

import pytest
from _workers import build, run_kind, run_together, score_of, space

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
    reports = run_together(run_kind, [("hyperband", path, f"w{i}") for i in range(3)])
    assert [r[2] for r in reports] == [None, None, None]
    conn = sqlite3.connect(path)
    values = [json.loads(v) for (v,) in conn.execute("SELECT hp_values FROM trials")]
    assert counts(values) == expected
    promoted = [v["tuner/trial_id"] for v in values if "tuner/trial_id" in v]
    assert len(promoted) == len(set(promoted))  # nobody promoted twice


def choice_space(n):
    hp = hpstore.HyperParameters()
    hp.Choice("model", [f"m{i}" for i in range(n)])
    return hp


def run_schedule(oracle, loss=lambda v: int(v["model"][1:])):
    """Every trial to its end, one worker; (bracket, round, epochs, parent) of each."""
    seen = []
    while (t := oracle.create_trial("t")).status == "RUNNING":
        v = t.hyperparameters.values
        for epoch in range(v["tuner/initial_epoch"], v["tuner/epochs"]):
            oracle.update_trial(t.trial_id, {"loss": loss(v) + 1 / (epoch + 1)}, step=epoch)
        t.status = "COMPLETED"
        oracle.end_trial(t)
        seen.append((v["tuner/bracket"], v["tuner/round"], v["tuner/epochs"],
                     v.get("tuner/trial_id"), v["model"]))
    assert t.status == "STOPPED"
    return seen


def test_a_space_used_up_in_a_first_round_still_promotes_its_best_to_the_last():
    # 4 configurations where bracket 2 plans 9 / 3 / 1 trials of 1 / 3 / 9 epochs: the 4
    # start, then the best 2 train on to 3 epochs and the best of those to 9 (KerasTuner
    # stops after the 4, none trained past 1 epoch)
    oracle = hpstore.HyperbandOracle("loss", max_epochs=9, factor=3, seed=1,
                                     hyperparameters=choice_space(4))
    seen = run_schedule(oracle)
    assert collections.Counter((b, r) for b, r, *_ in seen) == {(2, 0): 4, (2, 1): 2,
                                                                 (2, 2): 1}
    assert [(epochs, model) for _, r, epochs, _, model in seen if r > 0] == [
        (3, "m0"), (3, "m1"), (9, "m0")]
    # one configuration: it alone trains on, round after round
    seen = run_schedule(hpstore.HyperbandOracle("loss", max_epochs=9, factor=3, seed=1,
                                                hyperparameters=choice_space(1)))
    assert [(r, epochs) for _, r, epochs, _, _ in seen] == [(0, 1), (1, 3), (2, 9)]


def test_a_space_used_up_while_trials_run_waits_for_them_then_promotes():
    oracle = hpstore.HyperbandOracle("loss", max_epochs=9, factor=3, seed=1,
                                     hyperparameters=choice_space(2))
    first, second = oracle.create_trial("a"), oracle.create_trial("b")
    assert oracle.create_trial("c").status == "IDLE"  # nothing new, two may be promoted
    for t, loss in ((first, 5.0), (second, 1.0)):
        oracle.update_trial(t.trial_id, {"loss": loss})
        t.status = "COMPLETED"
        oracle.end_trial(t)
    promoted = oracle.create_trial("c").hyperparameters.values
    assert (promoted["tuner/round"], promoted["tuner/trial_id"]) == (1, second.trial_id)


def test_retired_trials_count_as_thrown_out_and_their_round_still_promotes():
    oracle = hpstore.HyperbandOracle("loss", max_epochs=9, factor=3, seed=1,
                                     hyperparameters=choice_space(50))
    first = []
    for _ in range(9):  # bracket 2's first round, every trial ended
        t = oracle.create_trial("t")
        oracle.update_trial(t.trial_id, {"loss": int(t.hyperparameters["model"][1:])})
        t.status = "COMPLETED"
        oracle.end_trial(t)
        first.append(t)
    worst = sorted(first, key=lambda t: -t.score)[:3]
    for t in worst:
        oracle.retire_trial(t.trial_id, "measured on bad data")
    seen = run_schedule(oracle)
    # the whole schedule still runs (KerasTuner's 9 / 3 / 1, 5 / 2, 3): 23 trials in all
    assert collections.Counter((b, r) for b, r, *_ in seen) == {
        (2, 1): 3, (2, 2): 1, (1, 0): 5, (1, 1): 2, (0, 0): 3}
    kept = sorted((t for t in first if t not in worst), key=lambda t: t.score)
    assert {p for b, r, _, p, _ in seen if (b, r) == (2, 1)} == {
        t.trial_id for t in kept[:3]}


def test_a_round_promotes_only_trials_sure_to_be_among_its_best():
    # 7 of 9 ended, 2 still running: only the best of the 7 is sure to be in the round's
    # best 3; the next places wait for the two (all three were given at once, and the two
    # running trials, the round's best, were never promoted)
    oracle = hpstore.HyperbandOracle("loss", max_epochs=9, factor=3, seed=1,
                                     hyperparameters=choice_space(50))
    first = [oracle.create_trial(f"w{i}") for i in range(9)]
    losses = dict(zip((t.trial_id for t in first), [10, 11, 12, 13, 14, 15, 16, 0.1, 1.1]))
    for t in first[:7]:
        oracle.update_trial(t.trial_id, {"loss": losses[t.trial_id]})
        oracle.end_trial(t)
    promoted = []

    def ask(worker):
        v = oracle.create_trial(worker).hyperparameters.values
        if (v["tuner/bracket"], v["tuner/round"]) == (2, 1):
            promoted.append(v["tuner/trial_id"])

    ask("a")
    ask("b")  # nothing sure: the next bracket starts meanwhile
    assert promoted == [first[0].trial_id]
    for t in first[7:]:
        oracle.update_trial(t.trial_id, {"loss": losses[t.trial_id]})
        oracle.end_trial(t)
    ask("c")
    ask("d")
    assert sorted(promoted, key=losses.get) == [first[7].trial_id, first[8].trial_id,
                                                first[0].trial_id]


def test_a_round_thinned_by_early_stopping_still_promotes_to_the_brackets_end():
    # 7 of bracket 2's 9 first trials stopped by the rule: round 1 got 2 of its 3 places,
    # round 2 waited for a third for ever, and the bracket's best never trained 9 epochs
    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 1)
    oracle = hpstore.HyperbandOracle(objective="loss", max_epochs=9, factor=3,
                                     hyperparameters=hp, seed=1,
                                     early_stopping=hpstore.Threshold(upper=5.0))
    rows = []
    while (trial := oracle.create_trial("w")).status == "RUNNING":
        v = trial.hyperparameters.values
        loss = 10.0 if len(rows) < 7 else v["x"]
        oracle.update_trial(trial.trial_id, {"loss": loss}, step=v["tuner/initial_epoch"])
        oracle.end_trial(trial)
        rows.append((trial.trial_id, v["tuner/bracket"], v["tuner/round"], v["tuner/epochs"],
                     v.get("tuner/trial_id"), oracle.get_trial(trial.trial_id).score))
    bracket_2 = [r for r in rows if r[1] == 2]
    assert [r[2] for r in bracket_2] == [0] * 9 + [1, 1, 2]
    round_1 = [r for r in bracket_2 if r[2] == 1]
    last = bracket_2[-1]
    assert last[3] == 9 and last[4] == min(round_1, key=lambda r: r[5])[0]


def test_reopened_with_other_settings_every_difference_is_named_at_once(tmp_path):
    # One difference at a time ("made with max_epochs=9, but max_epochs=100 was given",
    # then factor), each a value the script never wrote: its default
    path = str(tmp_path / "hb.db")
    hpstore.HyperbandOracle("loss", max_epochs=9, factor=2, hyperparameters=space(),
                            database=path, project_name="hb").close()
    with pytest.raises(hpstore.ProjectMismatchError) as left_out:
        hpstore.HyperbandOracle("loss", database=path, project_name="hb")
    said = str(left_out.value)
    assert "max_epochs=9, where max_epochs=100 is this oracle's default (none was given)" in said
    assert "factor=2, where factor=3 is this oracle's default" in said
    assert "Give the stored values (max_epochs=9, factor=2)" in said
    with pytest.raises(hpstore.ProjectMismatchError) as written:
        hpstore.HyperbandOracle("loss", 9, 4, database=path, project_name="hb")
    assert "factor=2, where factor=4 was given" in str(written.value)
    assert "max_epochs" not in str(written.value)
    hpstore.HyperbandOracle("loss", max_epochs=9, factor=2, database=path,
                            project_name="hb").close()  # the stored values: it opens
