"""Steering a search: enqueued configurations, results added by hand, retired and annotated
trials; through the library, several processes and the commands (warm starts:
test_warm_start.py)."""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import signal
import sqlite3
import warnings

import numpy as np
import pytest
from _steering import run, state
from _workers import (
    DEADLINE,
    STEERED,
    enqueue_then_search,
    open_oracle,
    retire_and_restore_forever,
)

import hpstore
from hpstore.cli import main as cli


# -- enqueue ---------------------------------------------------------------------------------
def test_enqueued_trials_run_first_in_order_each_once(tmp_path):
    oracle = open_oracle(tmp_path / "s.db", max_trials=6)
    first = oracle.enqueue_trial({"x": 1.0, "y": 1, "c": "a"})
    second = oracle.enqueue_trial({"x": 2.0, "y": 2, "c": "b"})
    assert oracle.enqueue_trial({"x": 1.0, "y": 1, "c": "a"}) == first  # held: skipped
    assert [t.trial_id for t in oracle.enqueued()] == [first, second]
    assert all(t.status == "IDLE" for t in oracle.enqueued())
    ran = run(oracle)
    assert [v for _, v in ran[:2]] == [{"x": 1.0, "y": 1, "c": "a"}, {"x": 2.0, "y": 2, "c": "b"}]
    assert len(ran) == 6  # the enqueued two counted towards max_trials
    assert len({json.dumps(v, sort_keys=True) for _, v in ran}) == 6
    assert oracle.enqueued() == []
    log = oracle.project.transitions(trial_id=first)
    assert (log[0].from_status, log[0].to_status) == (None, "IDLE")
    assert log[0].message.startswith("Enqueued by ")
    assert oracle.get_trial(first).status == "COMPLETED"


def test_skip_if_exists_false_enqueues_values_run_before(tmp_path):
    oracle = open_oracle(tmp_path / "s.db", max_trials=5)
    (done_id, values), = run(oracle, n=1)
    again = oracle.enqueue_trial(values, skip_if_exists=False)
    assert again != done_id and oracle.enqueued()[0].hyperparameters.values == values


def test_a_partial_configuration_is_filled_alike_in_every_process(tmp_path):
    a = open_oracle(tmp_path / "s.db", max_trials=5, seed=7)
    b = open_oracle(tmp_path / "s.db")
    filled = a.values_to_enqueue({"x": 0.5})
    assert filled == b.values_to_enqueue({"x": 0.5})  # the same fill in another oracle
    assert filled["x"] == 0.5 and 0 <= filled["y"] <= 10 and filled["c"] in ("a", "b")
    assert a.values_to_enqueue({"x": 0.25}) != filled  # another request, another draw
    assert a.enqueue_trial({"x": 0.5}) == b.enqueue_trial({"x": 0.5})
    assert len(a.enqueued()) == 1 and a.enqueued()[0].hyperparameters.values == filled


@pytest.mark.parametrize("values, problem", [
    ({"x": 11.0}, "outside the range"),
    ({"y": 2.5}, "is not a value of y"),
    ({"c": "z"}, "is not a value of c"),
    ({"nope": 1}, "'nope' is not a hyperparameter of this search (it has: x, y, c)"),
])
def test_values_outside_the_space_are_refused_with_nothing_written(tmp_path, values, problem):
    oracle = open_oracle(tmp_path / "s.db", max_trials=5)
    run(oracle, n=2)
    before = state(oracle)
    with pytest.raises(hpstore.ValuesOutsideSpaceError, match="Nothing was recorded") as info:
        oracle.enqueue_trial(values)
    assert problem in str(info.value)
    assert isinstance(info.value, ValueError)  # what KerasTuner users catch
    with pytest.raises(hpstore.ValuesOutsideSpaceError):
        oracle.add_trial(values, {"loss": 1.0})
    assert state(oracle) == before


def test_a_value_for_an_inactive_hyperparameter_is_refused(tmp_path):
    hp = hpstore.HyperParameters()
    hp.Choice("model", ["mlp", "cnn"])
    with hp.conditional_scope("model", ["mlp"]):
        hp.Int("units", 8, 64, step=8)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=5, hyperparameters=hp,
                                        database=tmp_path / "s.db")
    with pytest.raises(hpstore.ValuesOutsideSpaceError, match="'units' is not active"):
        oracle.enqueue_trial({"model": "cnn", "units": 16})
    assert oracle.values_to_enqueue({"model": "cnn"}) == {"model": "cnn"}
    assert set(oracle.values_to_enqueue({"model": "mlp"})) == {"model", "units"}


def test_enqueueing_into_a_full_search_is_refused(tmp_path):
    oracle = open_oracle(tmp_path / "s.db", max_trials=2)
    oracle.enqueue_trial({"x": 1.0})
    oracle.enqueue_trial({"x": 2.0})
    with pytest.raises(hpstore.SearchFullError, match="max_trials=2"):
        oracle.enqueue_trial({"x": 3.0})
    assert len(oracle.trials) == 2


def test_hyperband_gives_an_enqueued_trial_the_full_budget(tmp_path):
    hp = hpstore.HyperParameters()
    hp.Int("u", 1, 8)
    oracle = hpstore.HyperbandOracle("loss", max_epochs=9, hyperparameters=hp,
                                     database=tmp_path / "s.db")
    oracle.enqueue_trial({"u": 3})
    trial = oracle.create_trial("w")
    assert trial.hyperparameters.values == {"u": 3, "tuner/epochs": 9, "tuner/initial_epoch": 0}


def test_hyperband_refuses_a_misspelt_tuner_name_and_warns_of_a_budget_it_does_not_use(
        tmp_path, capsys):
    # every tuner/... name was dropped without a word: {"tuner/epochs": 3} trained for 9
    # epochs, and {"tuner/bogus": 1} found a trial of other values
    hp = hpstore.HyperParameters()
    hp.Int("u", 1, 8)
    oracle = hpstore.HyperbandOracle("loss", max_epochs=9, hyperparameters=hp,
                                     database=tmp_path / "s.db")
    with pytest.raises(hpstore.ValuesOutsideSpaceError, match="'tuner/bogus' is not a hyper"):
        oracle.enqueue_trial({"u": 2, "tuner/bogus": 1})
    assert oracle.enqueued() == []
    with pytest.warns(UserWarning, match=r"tuner/epochs=9 \(max_epochs\); the tuner/epochs=3"):
        oracle.enqueue_trial({"u": 3, "tuner/epochs": 3})
    assert oracle.enqueued()[0].hyperparameters.values["tuner/epochs"] == 9
    oracle.close()
    # the command says it in its own words: one line, not Python's warning and source line
    assert cli(["enqueue", str(tmp_path / "s.db"), "--values", '{"u": 5, "tuner/epochs": 1}']
               ) == 0
    err = capsys.readouterr().err
    assert err.startswith("hpstore: warning: --values: an enqueued Hyperband trial")
    _, said = err.splitlines()  # one line, then what was enqueued
    assert "UserWarning" not in err and " enqueued: " in said
    # made an error (python -W error -m hpstore): the same words as one error line, exit 2,
    # and nothing enqueued (a traceback before)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cli(["enqueue", str(tmp_path / "s.db"), "--values",
                    '{"u": 6, "tuner/epochs": 1}']) == 2
    err = capsys.readouterr().err
    assert err.startswith("hpstore: error: --values: an enqueued Hyperband trial")
    assert "made an error by -W error" in err and err.count("\n") == 1
    waiting = hpstore.Oracle.attach(tmp_path / "s.db")
    assert [t.hyperparameters.values["u"] for t in waiting.enqueued()] == [3, 5]
    waiting.close()


def test_a_hyperband_trials_values_and_their_export_enqueue_back(tmp_path, capsys):
    # the tuner/... values every Hyperband trial carries were refused as unknown names
    hp = hpstore.HyperParameters()
    hp.Int("u", 1, 8)
    path = tmp_path / "s.db"
    oracle = hpstore.HyperbandOracle("loss", max_epochs=9, hyperparameters=hp, database=path)
    ran = oracle.create_trial("w")
    assert "tuner/bracket" in ran.hyperparameters.values
    oracle.update_trial(ran.trial_id, {"loss": 0.5})
    oracle.end_trial(ran)
    # (its own budget, tuner/epochs of its bracket, is not the one an enqueued trial runs)
    with pytest.warns(UserWarning, match=r"tuner/epochs=9 \(max_epochs\); the tuner/epochs="):
        again = oracle.enqueue_trial(ran.hyperparameters.values, skip_if_exists=False)
    assert oracle.enqueued()[0].hyperparameters.values == {
        "u": ran.hyperparameters.values["u"], "tuner/epochs": 9, "tuner/initial_epoch": 0}
    assert cli(["export", str(path), "-o", str(tmp_path / "t.json")]) == 0
    assert cli(["enqueue", str(path), "--file", str(tmp_path / "t.json"), "--again"]) == 0
    assert "enqueued" in capsys.readouterr().err
    assert len(oracle.enqueued()) == 3 and oracle.enqueued()[0].trial_id == again
    oracle.close()


def test_four_processes_enqueueing_the_same_configurations_run_each_once_first(tmp_path):
    path = str(tmp_path / "s.db")
    open_oracle(path, max_trials=12).close()
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=enqueue_then_search, args=(path, f"w{i}", barrier, results))
             for i in range(4)]
    for p in procs:
        p.start()
    reports = [results.get(timeout=DEADLINE * 2) for _ in procs]
    for p in procs:
        p.join(DEADLINE)
    assert [error for _, _, error in reports] == [None] * 4
    oracle = open_oracle(path)
    trials = sorted(oracle.trials.values(), key=lambda t: int(t.trial_id))
    assert len(trials) == 12
    # the three configurations, filled alike by all four, were enqueued once and ran first
    expected = [oracle.values_to_enqueue(v) for v in STEERED]
    assert [t.hyperparameters.values for t in trials[:3]] == expected
    ran = [json.dumps(v, sort_keys=True) for _, done, _ in reports for _, v in done]
    assert len(ran) == 12 and len(set(ran)) == 12
    assert sum(r.origin == "enqueued" for r in oracle.project.trials()) == 3


# -- results obtained elsewhere -------------------------------------------------------------
def test_an_added_result_is_scored_and_not_counted_towards_max_trials(tmp_path):
    oracle = open_oracle(tmp_path / "s.db", max_trials=3)
    added = oracle.add_trial({"x": 3.0, "y": 0, "c": "b"}, {"loss": 0.25, "acc": 0.9})
    assert (added.status, added.score, added.best_step) == ("COMPLETED", 0.25, 0)
    assert oracle.remaining_trials() == 3
    counted = oracle.add_trial({"x": 4.0, "y": 0, "c": "b"}, {"loss": 5.0},
                               count_towards_max_trials=True)
    assert oracle.remaining_trials() == 2
    ran = run(oracle)
    assert len(ran) == 2 and len(oracle.trials) == 4
    assert oracle.get_best_trials(1)[0].trial_id == added.trial_id
    assert oracle.project.record().uncounted == 1
    assert oracle.get_trial(counted.trial_id).metrics.get_last_value("loss") == 5.0
    with pytest.raises(ValueError, match="objective \\['loss'\\]: received \\['acc'\\]"):
        oracle.add_trial({"x": 5.0}, {"acc": 1.0})
    # a misspelt objective: the error update_trial gives, naming the likely misspelling
    with pytest.raises(hpstore.MissingObjectiveError,
                       match=r"'los' for 'loss'.*Nothing was recorded") as raised:
        oracle.add_trial({"x": 5.0}, {"los": 1.0})
    assert isinstance(raised.value, ValueError) and len(oracle.trials) == 4
    with pytest.raises(ValueError, match="COMPLETED, FAILED or STOPPED"):
        oracle.add_trial({"x": 5.0}, {"loss": 1.0}, status="RUNNING")
    failed = oracle.add_trial({"x": 6.0}, {}, status="FAILED")
    assert failed.status == "FAILED" and failed.score is None
    # the values left out take their defaults
    assert failed.hyperparameters.values == {"x": 6.0, "y": 0, "c": "a"}


@pytest.mark.parametrize("kind", [hpstore.RandomSearchOracle, hpstore.GridSearchOracle])
def test_random_and_grid_search_never_propose_an_added_configuration(tmp_path, kind):
    hp = hpstore.HyperParameters()
    hp.Choice("k", [1, 2, 3, 4])
    oracle = kind("loss", max_trials=10, hyperparameters=hp, database=tmp_path / "s.db")
    oracle.add_trial({"k": 2}, {"loss": 1.0})
    oracle.add_trial({"k": 4}, {"loss": 2.0})
    ran = []
    while (trial := oracle.create_trial("w")).status == "RUNNING":
        ran.append(trial.hyperparameters.values["k"])
        oracle.update_trial(trial.trial_id, {"loss": 0.0})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    assert sorted(ran) == [1, 3]  # the space is used up by the two it had not seen


KNOWN = [i / 7 for i in range(8)]  # results known over the whole range
OPTIMUM = 0.52


def _space():
    hp = hpstore.HyperParameters()
    hp.Float("x", 0.0, 1.0)
    return hp


def _bayesian(path, **kwargs):
    return hpstore.BayesianOptimizationOracle("loss", max_trials=20, num_initial_points=4,
                                              hyperparameters=_space(), seed=3, database=path,
                                              **kwargs)


def _add_known(oracle):
    for x in KNOWN:
        oracle.add_trial({"x": x}, {"loss": (x - OPTIMUM) ** 2})


def test_the_bayesian_oracle_fits_on_added_results_at_once(tmp_path):
    # Eight added results, more than its random phase of four: its first proposal comes
    # from the model, near their best, not from the random draw it would make without them
    # (the draw a random search with the same seed makes at that trial number).
    steered = _bayesian(tmp_path / "steered.db")
    _add_known(steered)
    proposed = steered.create_trial("w").hyperparameters.values["x"]
    control = hpstore.RandomSearchOracle("loss", hyperparameters=_space(), seed=3,
                                         database=tmp_path / "random.db")
    _add_known(control)
    drawn = control.create_trial("w").hyperparameters.values["x"]
    assert proposed != drawn
    assert abs(proposed - OPTIMUM) < 0.15


def test_a_retired_trial_leaves_best_trials_and_the_bayesian_fit(tmp_path):
    oracle = _bayesian(tmp_path / "s.db")
    _add_known(oracle)
    leak = oracle.add_trial({"x": 0.05}, {"loss": -100.0})  # an impossible score
    assert oracle.get_best_trials(1)[0].trial_id == leak.trial_id
    oracle.retire_trial(leak.trial_id, "label leak", by="alice")
    assert oracle.get_best_trials(1)[0].hyperparameters.values == {"x": KNOWN[4]}
    assert len(oracle.project.completed()) == len(KNOWN)
    # fitted without it, the model looks near the optimum, not at the retired 0.05
    assert abs(oracle.create_trial("w").hyperparameters.values["x"] - OPTIMUM) < 0.15
    oracle.restore_trial(leak.trial_id, "the leak was elsewhere", by="bob")
    assert oracle.get_best_trials(1)[0].trial_id == leak.trial_id
    steps = [(c.tuner_id, c.from_status, c.to_status, c.message)
             for c in oracle.project.transitions(trial_id=leak.trial_id)][-2:]
    assert steps == [("alice", "COMPLETED", "COMPLETED", "Retired by alice: label leak"),
                     ("bob", "COMPLETED", "COMPLETED", "Restored by bob: the leak was elsewhere")]


def test_only_an_ended_trial_is_retired(tmp_path):
    oracle = open_oracle(tmp_path / "s.db", max_trials=5)
    trial = oracle.create_trial("w")
    with pytest.raises(hpstore.TrialNotEndedError, match="RUNNING"):
        oracle.retire_trial(trial.trial_id)
    with pytest.raises(hpstore.TrialNotFoundError):
        oracle.retire_trial("99")
    queued = oracle.enqueue_trial({"x": 1.0})
    with pytest.raises(hpstore.TrialNotEndedError, match="IDLE"):
        oracle.retire_trial(queued)


def test_a_note_is_kept_and_removed(tmp_path):
    oracle = open_oracle(tmp_path / "s.db", max_trials=5)
    (tid, _), = run(oracle, n=1)
    assert oracle.set_trial_note(tid, "the one from the paper").trial_id == tid
    assert oracle.project.trial(tid).note == "the one from the paper"
    oracle.set_trial_note(tid, "")
    assert oracle.project.trial(tid).note is None


def test_a_nul_in_a_note_or_a_retire_reason_is_refused_on_a_file_too(tmp_path):
    # a file took what a PostgreSQL store refuses, and `hpstore copy` of it to a server
    # then failed, calling the search's state malformed
    oracle = open_oracle(tmp_path / "s.db", max_trials=5)
    (tid, _), = run(oracle, n=1)
    oracle.set_trial_note(tid, "kept")
    for attempt in (lambda: oracle.set_trial_note(tid, "typed\x00note"),
                    lambda: oracle.retire_trial(tid, "a\x00b"),
                    lambda: oracle.retire_trial(tid, by="a\x00b")):
        with pytest.raises(ValueError, match=r"NUL character \(\\x00\) at position"):
            attempt()
    record = oracle.project.trial(tid)
    assert (record.note, record.retired_at) == ("kept", None)
    oracle.close()


def test_a_kill_during_retirements_leaves_one_state_or_the_other(tmp_path):
    path = str(tmp_path / "s.db")
    oracle = open_oracle(path, max_trials=5)
    (tid, _), = run(oracle, n=1)
    ctx = mp.get_context("spawn")
    started, done = ctx.Event(), ctx.Value("i", 0)
    proc = ctx.Process(target=retire_and_restore_forever, args=(path, tid, started, done))
    proc.start()
    assert started.wait(DEADLINE)
    while done.value < 20:  # well into its loop; no timing involved in what is checked
        proc.join(0.01)
        assert proc.is_alive()
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(DEADLINE)
    after = open_oracle(path)
    record = after.project.trial(tid)
    log = [c.message for c in after.project.transitions(trial_id=tid)
           if c.from_status == c.to_status]
    retired = sum(m.startswith("Retired") for m in log)
    restored = sum(m.startswith("Restored") for m in log)
    # the log and the trial agree: every retirement logged is matched by the state
    assert retired - restored == (1 if record.retired else 0)
    assert retired >= 20 and all(m.startswith(("Retired", "Restored")) for m in log)
    best = after.get_best_trials(1)
    assert (bool(best) and best[0].trial_id == tid) != record.retired


# -- the commands -----------------------------------------------------------------------------
@pytest.fixture
def search(tmp_path):
    path = tmp_path / "s.db"
    oracle = open_oracle(path, max_trials=8, seed=2)
    run(oracle, n=3)
    oracle.close()
    return path


def test_enqueue_command_takes_json_and_files(search, tmp_path, capsys):
    assert cli(["enqueue", str(search), "--values", '{"x": 0.5, "y": 1, "c": "a"}']) == 0
    assert "enqueued" in capsys.readouterr().err
    (tmp_path / "c.csv").write_text('x,y,c\n1.5,2,"""b"""\n2.5,,\n', encoding="utf-8")
    (tmp_path / "c.jsonl").write_text('{"x": 3.5}\n\n{"x": 0.5, "y": 1, "c": "a"}\n',
                                      encoding="utf-8")
    assert cli(["enqueue", str(search), "--file", str(tmp_path / "c.csv")]) == 0
    assert cli(["enqueue", str(search), "--file", str(tmp_path / "c.jsonl")]) == 0
    out = capsys.readouterr().err
    assert "already holds these values" in out  # the jsonl's second line, enqueued above
    waiting = hpstore.Oracle.attach(search).enqueued()
    assert [t.hyperparameters.values["x"] for t in waiting] == [0.5, 1.5, 2.5, 3.5]
    assert waiting[1].hyperparameters.values == {"x": 1.5, "y": 2, "c": "b"}
    # a spreadsheet's "CSV UTF-8" starts with a byte-order mark: not part of the first name
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfx,y,c\n4.5,3,\"\"\"a\"\"\"\n")
    assert cli(["enqueue", str(search), "--file", str(tmp_path / "bom.csv")]) == 0
    assert hpstore.Oracle.attach(search).enqueued()[-1].hyperparameters.values == {
        "x": 4.5, "y": 3, "c": "a"}


@pytest.mark.parametrize("args, message", [
    (["--values", '{"x": 50}'], "--values: 50 is not a value of x"),
    (["--values", "[1]"], "--values is list JSON"),
    (["--values", "{"], "--values is not valid JSON"),
    (["--values", '{"x": 1}', "--values", '{"y": 0.5}'],
     "--values (the 2nd): 0.5 is not a value"),
    (["--values", '{"x": 1}', "--values", '{"x": 2}', "--values", '{"x": 3}',
      "--values", '{"x": 4}', "--values", '{"x": 5}', "--values", '{"x": 6}'],
     "has room for 5 more trials"),
])
def test_enqueue_command_refuses_with_nothing_written(search, capsys, args, message):
    before = state(hpstore.Oracle.attach(search))
    assert cli(["enqueue", str(search), *args]) == 2
    assert message in capsys.readouterr().err
    assert state(hpstore.Oracle.attach(search)) == before


def test_a_configuration_given_twice_in_one_batch_takes_one_place(search, capsys):
    # counted twice against the room left: refused, where the API enqueues it once
    values = ['{"x": 7.5, "y": 1, "c": "a"}'] * 5 + ['{"x": 8.5, "y": 1, "c": "a"}'] * 5
    assert cli(["enqueue", str(search), *[a for v in values for a in ("--values", v)]]) == 0
    out = capsys.readouterr().err
    assert out.count(" enqueued: ") == 2 and out.count("already holds these values") == 8
    assert len(hpstore.Oracle.attach(search).enqueued()) == 2


def test_retire_restore_and_note_commands(search, capsys):
    oracle = hpstore.Oracle.attach(search)
    best = oracle.get_best_trials(1)[0].trial_id
    # named twice, by id and by number: retired and told once
    assert cli(["retire", str(search), best, str(int(best)), "--reason", "leak",
                "--by", "ci"]) == 0
    assert capsys.readouterr().err.count(f"trial {best} retired") == 1
    assert oracle.get_best_trials(1)[0].trial_id != best
    assert cli(["retire", str(search), best]) == 0
    assert "retired already; nothing changed" in capsys.readouterr().err
    assert cli(["summary", str(search)]) == 0
    assert "Steered: 1 retired" in capsys.readouterr().out
    assert cli(["restore", str(search), str(int(best)), "--reason", "fixed"]) == 0
    assert oracle.get_best_trials(1)[0].trial_id == best
    assert cli(["note", str(search), best, "seen in the paper"]) == 0
    capsys.readouterr()
    assert cli(["show", str(search), best]) == 0
    assert "seen in the paper" in capsys.readouterr().out
    assert cli(["history", str(search), "--trial", best]) == 0
    out = capsys.readouterr().out
    assert "Retired by ci: leak" in out and "Restored by " in out


def test_a_value_written_two_ways_is_one_configuration(tmp_path):
    # {"u": 16.0} seeded its random fill apart from {"u": 16}, and -0.0 was kept apart from
    # 0.0: one configuration enqueued (and run) twice
    hp = hpstore.HyperParameters()
    hp.Int("u", 8, 64, step=8)
    hp.Float("lr", 1e-4, 1e-1, sampling="log")
    hp.Float("f", -1.0, 1.0)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=10, hyperparameters=hp, seed=1,
                                        database=tmp_path / "s.db")
    first = oracle.enqueue_trial({"u": 16, "f": 0.0})
    assert oracle.enqueue_trial({"u": 16.0, "f": -0.0}) == first
    assert oracle.enqueue_trial({"u": np.int64(16), "f": np.float32(-0.0)}) == first
    assert [t.hyperparameters.values["f"] for t in oracle.enqueued()] == [0.0]
    assert math.copysign(1.0, oracle.enqueued()[0].hyperparameters.values["f"]) == 1.0
    oracle.close()


def test_a_torch_scalar_is_its_value_and_a_decimal_is_told_to_be_a_float(tmp_path):
    # torch.tensor(7), taken from a model, was called no value of its 0 .. 100 Int, and
    # so was Decimal("0.5") of its Float, with no word of the type
    torch = pytest.importorskip("torch")  # (the test extra brings it: run in CI)
    from decimal import Decimal

    hp = hpstore.HyperParameters()
    hp.Int("u", 0, 100)
    hp.Float("f", 0.0, 1.0)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=10, hyperparameters=hp, seed=1,
                                        database=tmp_path / "s.db")
    first = oracle.enqueue_trial({"u": torch.tensor(7), "f": torch.tensor(0.5)})
    assert oracle.enqueue_trial({"u": 7, "f": 0.5}) == first
    values = oracle.enqueued()[0].hyperparameters.values
    assert values == {"u": 7, "f": 0.5} and type(values["u"]) is int
    with pytest.raises(hpstore.ValuesOutsideSpaceError, match=r"a Decimal: give an int or a "
                       r"float"):
        oracle.enqueue_trial({"u": 1, "f": Decimal("0.5")})
    assert len(oracle.enqueued()) == 1
    oracle.close()


@pytest.mark.parametrize("word", ["retire", "restore"])
def test_retiring_several_trials_changes_none_when_one_has_not_ended(search, capsys, word):
    # the first was retired, then the command failed on the second with exit code 2
    oracle = open_oracle(search)
    if word == "restore":
        oracle.retire_trial("0", "to restore")
    oracle.enqueue_trial({"x": 1.0, "y": 1, "c": "a"})
    waiting = oracle.enqueued()[0].trial_id
    before = state(oracle)
    assert cli([word, str(search), "0", waiting, "--reason", "typo in the list"]) == 2
    err = capsys.readouterr().err
    assert f"{waiting} (IDLE)" in err and "nothing was changed" in err
    assert state(oracle) == before
    oracle.close()


@pytest.mark.parametrize("command", [["enqueue", "--values", '{"x": 1}'],
                                     ["retire", "0"], ["restore", "0"], ["note", "0", "x"]])
def test_the_writing_commands_refuse_a_foreign_or_missing_file_unchanged(tmp_path, capsys,
                                                                        command):
    foreign = tmp_path / "other.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE trials (id INTEGER)")
    conn.close()
    before = foreign.read_bytes()
    name, *rest = command
    assert cli([name, str(foreign), *rest]) == 2
    assert "not an hpstore search" in capsys.readouterr().err
    assert foreign.read_bytes() == before
    assert cli([name, str(tmp_path / "missing.db"), *rest]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists()


def test_the_writing_commands_refuse_a_crafted_file_unchanged(search, capsys):
    conn = sqlite3.connect(search)
    conn.execute("CREATE TRIGGER sneaky AFTER UPDATE ON trials BEGIN "
                 "UPDATE trials SET score = -1; END")
    conn.close()
    before = search.read_bytes()
    for command in (["retire", "0"], ["note", "0", "x"], ["enqueue", "--values", '{"x": 1}']):
        assert cli([command[0], str(search), *command[1:]]) == 2
        assert "was not written by hpstore" in capsys.readouterr().err
    assert search.read_bytes() == before


def test_a_trial_waiting_to_run_again_is_listed_and_cannot_be_retired():
    hp = hpstore.HyperParameters()
    hp.Int("x", 0, 100)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=3, hyperparameters=hp, seed=1,
                                        max_retries_per_trial=1)
    trial = oracle.create_trial("w")
    trial.status = "INVALID"
    oracle.end_trial(trial)  # waits to run again
    assert [t.trial_id for t in oracle.enqueued()] == [trial.trial_id]
    with pytest.raises(hpstore.TrialNotEndedError, match="waits to run again"):
        oracle.retire_trial(trial.trial_id, "its first run crashed")
    again = oracle.create_trial("w")
    assert again.trial_id == trial.trial_id
    oracle.update_trial(again.trial_id, {"loss": 0.01})
    oracle.end_trial(again)
    assert [t.trial_id for t in oracle.get_best_trials(1)] == [trial.trial_id]


def test_a_conditional_value_given_alone_is_enqueued_in_its_branch_whatever_the_seed():
    hp = hpstore.HyperParameters()
    hp.Choice("kind", ["a", "b", "c"])
    with hp.conditional_scope("kind", ["b", "c"]):
        hp.Float("C", 0.1, 1.0)
    for seed in range(8):
        oracle = hpstore.RandomSearchOracle("loss", max_trials=5, hyperparameters=hp,
                                            seed=seed)
        oracle.enqueue_trial({"C": 0.5})
        values = oracle.enqueued()[0].hyperparameters.values
        assert values["C"] == 0.5 and values["kind"] in ("b", "c"), (seed, values)


@pytest.mark.parametrize("given", [[("x", 1)], None, "x=1"])
def test_enqueue_of_what_is_not_a_dict_is_a_type_error_naming_it(given):
    hp = hpstore.HyperParameters()
    hp.Int("x", 0, 100)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=3, hyperparameters=hp, seed=1)
    with pytest.raises(TypeError, match="enqueue_trial takes a dict"):
        oracle.enqueue_trial(given)
    assert oracle.enqueued() == []


def test_the_flags_of_enqueue_and_add_trial_are_true_or_false(tmp_path):
    # skip_if_exists="no" skipped, count_towards_max_trials="no" counted: any truthy text
    oracle = open_oracle(str(tmp_path / "flags.db"), max_trials=5)
    with pytest.raises(TypeError, match="`skip_if_exists` must be True or False"):
        oracle.enqueue_trial({"x": 1.0}, skip_if_exists="no")
    with pytest.raises(TypeError, match="`count_towards_max_trials` must be True or False"):
        oracle.add_trial({"x": 1.0}, {"loss": 1.0}, count_towards_max_trials="no")
    assert len(oracle.trials) == 0
    oracle.close()


def test_enqueue_reads_a_file_under_the_home_folder_written_with_a_tilde(search, tmp_path,
                                                                         monkeypatch, capsys):
    # `--file=~/c.json` (no shell expands that `~`) was "No such file or directory",
    # though the search file's argument takes `~` as the home folder
    home = tmp_path / "home"
    home.mkdir()
    (home / "c.json").write_text('[{"x": 0.5, "y": 1, "c": "a"}]', encoding="utf-8")
    monkeypatch.setenv("HOME", str(home))
    assert cli(["enqueue", str(search), "--file=~/c.json"]) == 0
    assert "enqueued" in capsys.readouterr().err
    assert [t.hyperparameters.values for t in hpstore.Oracle.attach(search).enqueued()] == [
        {"x": 0.5, "y": 1, "c": "a"}]


def test_a_result_added_at_step_zero_beside_a_median_rule_is_warned_of(tmp_path):
    # added with the README's own call (no step), five final results became the values
    # MedianStopping held each new trial's first epoch against: every trial ran one epoch
    hp = hpstore.HyperParameters()
    hp.Float("x", 0.0, 1.0)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=10, hyperparameters=hp, seed=2,
                                        database=str(tmp_path / "s.db"),
                                        early_stopping=hpstore.MedianStopping(min_trials=5))
    with pytest.warns(UserWarning, match=r"step 0, where MedianStopping.*Give step="):
        oracle.add_trial({"x": 0.1}, {"loss": 0.3})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for n in range(5):  # measured at their last epoch: said nothing
            oracle.add_trial({"x": 0.2 + n / 10}, {"loss": 0.3}, step=4)
    trial = oracle.create_trial("w")  # its first epoch, worse than their last: goes on
    assert oracle.update_trial(trial.trial_id, {"loss": 1.25}, step=1).status == "RUNNING"
    oracle.close()


def test_enqueuing_a_hyperband_trials_values_again_says_they_are_held(tmp_path):
    # it warned "runs ... with the full budget", then enqueued nothing: a bracket's trial
    # of these values was held already
    hp = hpstore.HyperParameters()
    hp.Float("x", 0.0, 1.0)
    oracle = hpstore.HyperbandOracle("loss", max_epochs=9, factor=3, hyperparameters=hp,
                                     database=str(tmp_path / "s.db"), seed=3)
    trial = oracle.create_trial("w")
    assert trial.hyperparameters.values["tuner/epochs"] < 9
    oracle.update_trial(trial.trial_id, {"loss": 0.1}, step=0)
    oracle.end_trial(trial)
    ran = dict(trial.hyperparameters.values)
    with pytest.warns(UserWarning, match=r"held already .*skip_if_exists=False .*--again"):
        assert oracle.enqueue_trial(ran) == trial.trial_id
    assert oracle.enqueued() == []
    with pytest.warns(UserWarning, match="held already"):
        again = oracle.enqueue_trial(ran, skip_if_exists=False)
    assert [t.trial_id for t in oracle.enqueued()] == [again]
    assert oracle.enqueued()[0].hyperparameters.values["tuner/epochs"] == 9
    oracle.close()
