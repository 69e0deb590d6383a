"""Steering as a user does it from scripts and the `hpstore` command: odd but legitimate
inputs (names in any script, NaN and infinities, hyperparameters a hypermodel declares only
in the branch it takes) and warm starts from a KerasTuner project."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import hpstore
from hpstore.cli import main as cli


def state(oracle):
    """Everything the project holds, for 'nothing was written' checks."""
    doc = oracle.get_state()
    doc["settings"].pop("updated_at")
    return json.dumps(doc, sort_keys=True)


def unicode_search(path):
    hp = hpstore.HyperParameters()
    hp.Float("学习率", 1e-4, 1e-1, sampling="log")
    hp.Choice("激活", ["relu", "тангенс"])
    hpstore.RandomSearchOracle(hpstore.Objective("损失", "min"), max_trials=10,
                               hyperparameters=hp, database=path, seed=5).close()
    return path


def test_the_enqueue_command_shows_names_and_values_as_written(tmp_path, capsys):
    search = unicode_search(tmp_path / "s.db")
    assert cli(["enqueue", str(search), "--values", '{"学习率": 0.001, "激活": "тангенс"}']) == 0
    (tmp_path / "c.csv").write_text("学习率,激活\n0.002,relu\n", encoding="utf-8")
    assert cli(["enqueue", str(search), "--file", str(tmp_path / "c.csv")]) == 0
    assert cli(["enqueue", str(search), "--values", '{"学习率": 0.001, "激活": "тангенс"}']) == 0
    out = capsys.readouterr().err
    assert '{"学习率": 0.001, "激活": "тангенс"}' in out
    assert '{"学习率": 0.002, "激活": "relu"}' in out
    assert "\\u" not in out


@pytest.mark.parametrize("value", [float("nan"), np.float32("nan"), float("inf"),
                                   -float("inf")])
def test_a_nan_or_infinite_value_to_enqueue_is_outside_the_space_and_named(tmp_path, value):
    search = unicode_search(tmp_path / "s.db")
    oracle = hpstore.Oracle.attach(search)
    before = state(oracle)
    with pytest.raises(hpstore.ValuesOutsideSpaceError, match="is not a value of 学习率"):
        oracle.enqueue_trial({"学习率": value})
    with pytest.raises(hpstore.ValuesOutsideSpaceError, match="is not a value of 学习率"):
        oracle.add_trial({"学习率": value}, {"损失": 0.5})
    assert state(oracle) == before


@pytest.mark.parametrize("written", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_the_enqueue_command_names_the_hyperparameter_a_nan_cannot_be(tmp_path, capsys,
                                                                      written):
    search = unicode_search(tmp_path / "s.db")
    before = state(hpstore.Oracle.attach(search))
    assert cli(["enqueue", str(search), "--values", f'{{"学习率": {written}}}']) == 2
    (tmp_path / "c.csv").write_text(f"学习率\n{written}\n", encoding="utf-8")
    assert cli(["enqueue", str(search), "--file", str(tmp_path / "c.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("is not a value of 学习率 (Float)") == 2, err
    assert state(hpstore.Oracle.attach(search)) == before


# -- warm start: hyperparameters a hypermodel declares in the branch it takes ---------------
def branch_values(hp):
    """Declare, as a hypermodel does, only the branch ``kind`` takes."""
    kind = hp.Choice("kind", ["tree", "svm"])
    with hp.conditional_scope("kind", [kind]):
        if kind == "svm":
            hp.Float("C", 0.01, 10.0, sampling="log")
        else:
            hp.Int("depth", 1, 8)
    return hp.values


def test_a_warm_start_takes_in_a_branchs_trials_once_a_trial_declares_the_branch(tmp_path):
    kind = hpstore.HyperParameters()
    kind.Choice("kind", ["tree", "svm"])
    source = hpstore.RandomSearchOracle("loss", max_trials=6, hyperparameters=kind,
                                        database=tmp_path / "old.db", seed=3)
    kinds = []
    while (trial := source.create_trial("w")).status == "RUNNING":
        kinds.append(branch_values(trial.hyperparameters)["kind"])
        source.update_trial(trial.trial_id, {"loss": 1.0 if kinds[-1] == "tree" else 0.1})
        trial.status = "COMPLETED"
        source.end_trial(trial)
    source.close()
    assert kinds.count("svm") and kinds.count("tree")  # (seed 3: both branches)
    # the first build declares the default branch only (a Tuner declares its space so)
    first = hpstore.HyperParameters()
    branch_values(first)
    # the svm trials do not fit yet: said, and taken in once a trial declares their branch
    with pytest.warns(UserWarning, match=f"{kinds.count('svm')} completed trials? did not "
                      "fit this search.*'C' is not a hyperparameter.*taken in once a trial "
                      "declares it"):
        oracle = hpstore.BayesianOptimizationOracle(
            "loss", max_trials=20, hyperparameters=first, database=tmp_path / "new.db",
            seed=3, warm_start_from=tmp_path / "old.db")
    assert len(oracle.warm_start.added) == kinds.count("tree")
    oracle.enqueue_trial({"kind": "svm"})
    trial = oracle.create_trial("w")
    assert branch_values(trial.hyperparameters)["kind"] == "svm"
    oracle.update_trial(trial.trial_id, {"loss": 0.5})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    # C is declared now: the source's svm trials fit, and are taken in at once
    assert oracle.warm_start.skipped == []
    assert len(oracle.warm_start.added) + oracle.warm_start.already == len(kinds)
    assert [oracle.get_trial(t).hyperparameters.values["kind"]
            for t in oracle.warm_start.added].count("svm") >= 1
    best = oracle.get_best_trials(1)[0]
    assert best.hyperparameters.values["kind"] == "svm" and best.score == 0.1
    assert best.trial_id in oracle.warm_start.added
    oracle.close()
    again = hpstore.BayesianOptimizationOracle("loss", max_trials=20, database=tmp_path / "new.db",
                                               warm_start_from=tmp_path / "old.db")
    assert again.warm_start.added == [] and again.warm_start.already == len(kinds)


def test_the_warm_start_warning_points_at_the_line_that_made_the_oracle(tmp_path):
    first = hpstore.HyperParameters()
    first.Int("y", 0, 9)
    source = hpstore.RandomSearchOracle("loss", hyperparameters=first, database=tmp_path / "a.db")
    source.add_trial({"y": 7}, {"loss": 1.0})
    source.close()
    narrow = hpstore.HyperParameters()
    narrow.Int("y", 0, 4)

    def make(kind):
        return kind("loss", hyperparameters=narrow, database=tmp_path / f"{kind.__name__}.db",
                    warm_start_from=tmp_path / "a.db")
    line = make.__code__.co_firstlineno + 1
    for kind in (hpstore.RandomSearchOracle, hpstore.BayesianOptimizationOracle,
                 hpstore.HyperbandOracle):
        with pytest.warns(UserWarning, match="did not fit") as told:
            make(kind).close()
        assert [(w.filename, w.lineno) for w in told] == [(__file__, line)], kind


# -- enqueue again once the space has grown ------------------------------------------------
WORKER = textwrap.dedent("""
    import sys
    import hpstore

    kind = hpstore.HyperParameters()
    kind.Choice("kind", ["tree", "svm"])
    oracle = hpstore.RandomSearchOracle("loss", max_trials=20, hyperparameters=kind,
                                        database=sys.argv[1], seed=4)
    for values in ({"kind": "svm"}, {"kind": "tree"}):  # at start-up, in every worker
        oracle.enqueue_trial(values)
    for _ in range(2):
        trial = oracle.create_trial(sys.argv[2])
        hp = trial.hyperparameters
        with hp.conditional_scope("kind", [hp.get("kind")]):  # the branch taken declares
            if hp.get("kind") == "svm":
                hp.Float("C", 0.01, 10.0, sampling="log")
            else:
                hp.Int("depth", 1, 8)
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
""")


@pytest.mark.parametrize("engine", ["file", "postgresql"])
def test_a_worker_script_restarted_after_the_space_grew_runs_its_configurations_once(
        tmp_path, capsys, engine):
    (tmp_path / "worker.py").write_text(WORKER, encoding="utf-8")
    if engine == "file":
        path = str(tmp_path / "s.db")
    else:
        from _postgres import fresh_url
        path = fresh_url()
    for n in range(3):  # the same script, started again (after a crash, on more machines)
        subprocess.run([sys.executable, str(tmp_path / "worker.py"), path, f"w{n}"],
                       check=True, timeout=120)
    oracle = hpstore.Oracle.attach(path)
    enqueued = [r for r in oracle.project.trials() if r.origin == "enqueued"]
    # the first start enqueued both; the branch's C and depth were declared as they ran
    # (at their defaults), and the later starts found them held
    assert sorted(r.values["kind"] for r in enqueued) == ["svm", "tree"]
    assert {r.status for r in enqueued} == {"COMPLETED"}
    assert cli(["enqueue", path, "--values", '{"kind": "svm"}']) == 0
    assert "already holds these values" in capsys.readouterr().err
    assert oracle.enqueue_trial({"kind": "tree"}) == next(
        r.trial_id for r in enqueued if r.values["kind"] == "tree")
    # asked for anew, the same request fills the branch as a random search would
    again = oracle.enqueue_trial({"kind": "svm"}, skip_if_exists=False)
    assert "C" in oracle.get_trial(again).hyperparameters.values


# -- warm start from KerasTuner's own search ------------------------------------------------
KERAS_TUNER_PROJECT = Path(__file__).parent / "fixtures" / "keras_tuner_project"


def test_a_keras_tuner_folder_given_to_warm_start_says_to_import_it_first(tmp_path, capsys):
    folder = tmp_path / "kt runs" / "cnn"  # KerasTuner's directory/project_name
    shutil.copytree(KERAS_TUNER_PROJECT, folder)
    for given, says in ((folder, "is a KerasTuner project folder"),
                        (folder.parent, "holds KerasTuner project folders (cnn/oracle.json)")):
        with pytest.raises(hpstore.HpStoreError) as refused:
            hpstore.RandomSearchOracle("val_accuracy", database=tmp_path / "new.db",
                                       warm_start_from=given)
        assert says in str(refused.value)
        assert f"hpstore import-keras-tuner '{folder}' kt.db" in str(refused.value)
        assert not (tmp_path / "new.db").exists()
    # as it says: imported, then warm-started from
    assert cli(["import-keras-tuner", str(folder), str(tmp_path / "kt.db")]) == 0
    capsys.readouterr()
    oracle = hpstore.RandomSearchOracle(
        "val_accuracy", database=tmp_path / "new.db", warm_start_from=tmp_path / "kt.db",
        hyperparameters=hpstore.Oracle.attach(tmp_path / "kt.db").get_space())
    assert len(oracle.warm_start.added) + len(oracle.warm_start.skipped) == 7  # COMPLETED
    assert oracle.get_best_trials(1)[0].score == pytest.approx(0.681021, abs=1e-6)


# -- retiring a trial that has not ended ---------------------------------------------------
HOLDER = textwrap.dedent("""
    import os, sys
    import hpstore

    oracle = hpstore.Oracle.attach(sys.argv[1])
    trial = oracle.create_trial(sys.argv[2])
    oracle.update_trial(trial.trial_id, {"loss": 0.25}, step=0)
    print(trial.trial_id, flush=True)
    if sys.argv[2] == "kill":
        os.kill(os.getpid(), 9)  # kill -9 in the middle of the trial
    sys.stdin.read()  # holds its trial until its stdin closes
""")


def test_retiring_a_trial_whose_worker_was_killed_says_how_it_will_end(tmp_path, capsys):
    (tmp_path / "holder.py").write_text(HOLDER, encoding="utf-8")
    path = str(tmp_path / "s.db")
    hp = hpstore.HyperParameters()
    hp.Int("x", 0, 100)
    hpstore.RandomSearchOracle("loss", max_trials=10, hyperparameters=hp, database=path,
                               seed=1).close()
    live = subprocess.Popen([sys.executable, str(tmp_path / "holder.py"), path, "hold"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        held = live.stdout.readline().strip()
        killed = subprocess.run([sys.executable, str(tmp_path / "holder.py"), path, "kill"],
                                capture_output=True, text=True, timeout=120)
        assert killed.returncode == -9
        dead = killed.stdout.strip()
        oracle = hpstore.Oracle.attach(path)
        before = state(oracle)
        with pytest.raises(hpstore.TrialNotEndedError) as refused:
            oracle.retire_trial(dead, "leaked the test set")
        assert "its worker (kill, pid " in str(refused.value)
        assert "is gone" in str(refused.value) and "takes it over" in str(refused.value)
        with pytest.raises(hpstore.TrialNotEndedError) as refused:
            oracle.retire_trial(held, "leaked the test set")
        assert "is gone" not in str(refused.value)
        assert cli(["retire", path, dead, held, "--reason", "leak"]) == 2
        err = capsys.readouterr().err
        assert f"{dead} (RUNNING, but its worker (kill, pid " in err
        assert f"{held} (RUNNING)" in err and "takes it over" in err
        assert state(oracle) == before
    finally:
        live.stdin.close()
        live.wait(timeout=120)
    # the next worker takes the dead ones' trials over (the holder has ended too), runs
    # them to their end: retired then
    for _ in range(2):
        taken = oracle.create_trial("next")
        assert taken.trial_id in (dead, held)
        oracle.update_trial(taken.trial_id, {"loss": 0.5})
        taken.status = "COMPLETED"
        oracle.end_trial(taken)
    oracle.retire_trial(dead, "leaked the test set")
    assert oracle.project.trial(dead).retired


# -- a name declared in several branches ----------------------------------------------------
def twice_declared() -> hpstore.HyperParameters:
    """``units`` 1 .. 10 under kind "a", 50 .. 200 under kind "b"."""
    hp = hpstore.HyperParameters()
    hp.Choice("kind", ["a", "b"])
    with hp.conditional_scope("kind", ["a"]):
        hp.Int("units", 1, 10)
    with hp.conditional_scope("kind", ["b"]):
        hp.Int("units", 50, 200)
    return hp


@pytest.mark.parametrize("seed", range(6))
def test_a_value_given_alone_takes_the_branch_whose_declaration_takes_it(tmp_path, seed):
    hp = twice_declared()
    oracle = hpstore.RandomSearchOracle("loss", max_trials=10, hyperparameters=hp, seed=seed,
                                        database=tmp_path / "s.db")
    for given, kind in (({"units": 100}, "b"), ({"units": 5}, "a")):
        values = oracle.get_trial(oracle.enqueue_trial(given)).hyperparameters.values
        assert values == {"kind": kind, **given}
    with pytest.raises(hpstore.ValuesOutsideSpaceError, match="30 is not a value of units"):
        oracle.enqueue_trial({"units": 30})


def test_a_warm_source_gone_since_the_open_does_not_fail_the_trial_that_grew_the_space(
        tmp_path):
    kind = hpstore.HyperParameters()
    kind.Choice("kind", ["tree", "svm"])
    source = hpstore.RandomSearchOracle("loss", hyperparameters=kind, database=tmp_path / "a.db")
    source.add_trial({"kind": "tree"}, {"loss": 1.0})
    source.close()
    oracle = hpstore.RandomSearchOracle("loss", max_trials=5, hyperparameters=kind,
                                        database=tmp_path / "b.db",
                                        warm_start_from=(tmp_path / "a.db", "untitled_project"))
    (tmp_path / "a.db").unlink()  # cleaned up while the search runs
    oracle.enqueue_trial({"kind": "svm"})
    trial = oracle.create_trial("w")
    branch_values(trial.hyperparameters)
    oracle.update_trial(trial.trial_id, {"loss": 0.5})
    trial.status = "COMPLETED"
    with pytest.warns(UserWarning, match="could not be read again") as told:
        oracle.end_trial(trial)
    assert told[0].filename == __file__
    assert oracle.get_trial(trial.trial_id).status == "COMPLETED"
    assert oracle.create_trial("w").status == "RUNNING"  # the search goes on


def test_a_stand_in_for_an_oracle_of_ones_own_says_it_decides_no_trial(tmp_path):
    # Oracle.attach of a search made by a class of the user's own: its create_trial said
    # "Counter must implement populate_space(trial_id)", of a class that did
    class Counter(hpstore.Oracle):
        def populate_space(self, trial_id):
            return {"status": "RUNNING", "values": {"n": len(self.project.trials())}}

    hp = hpstore.HyperParameters()
    hp.Int("n", 0, 100)
    path = str(tmp_path / "own.db")
    made = Counter("loss", hyperparameters=hp, max_trials=5, database=path)
    first = made.create_trial("w")
    made.end_trial(first)
    made.close()
    stand_in = hpstore.Oracle.attach(path)
    assert type(stand_in).__name__ == "Counter"
    with pytest.raises(NotImplementedError) as raised:
        stand_in.create_trial("w")
    said = str(raised.value)
    assert "opened with Oracle.attach" in said and "Counter(..., database=...)" in said
    assert "must implement" not in said
    assert [t.trial_id for t in stand_in.trials.values()] == [first.trial_id]  # nothing new
    stand_in.close()


@pytest.mark.parametrize("seed", range(4))
def test_a_value_no_declaration_of_a_twice_declared_name_takes_names_them_all(seed):
    # the message named the declaration of the branch the seeded fill happened to draw
    hp = twice_declared()
    oracle = hpstore.RandomSearchOracle("loss", max_trials=9, hyperparameters=hp, seed=seed)
    with pytest.raises(hpstore.ValuesOutsideSpaceError) as raised:
        oracle.enqueue_trial({"units": 30})
    said = str(raised.value)
    assert "30 is not a value of units in any of its declarations" in said
    assert "1 .. 10; when kind in ['a'], or units (Int): 50 .. 200" in said
    assert oracle.enqueued() == []
