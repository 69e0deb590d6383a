"""A Keras tuner on a search file of hpstore's: where its checkpoints go when the hpstore
oracle was opened on its own file, and the arguments of hpstore.keras's oracles and tuners
refused where they are given, before KerasTuner makes a folder."""

from __future__ import annotations

import os

import pytest
from _keras_models import Squares, build

import hpstore
import hpstore.keras as kt


@pytest.mark.parametrize("name, given, said", [
    ("HyperbandOracle", {"factor": 1}, "`factor` must be at least 2"),
    ("HyperbandOracle", {"tune_new_entries": False}, "tune_new_entries=False"),
    ("RandomSearchOracle", {"max_trials": 0}, "KerasTuner takes 0 as no limit"),
    ("RandomSearchOracle", {"max_retries_per_trial": -1}, "must be at least 0"),
    ("BayesianOptimizationOracle", {"alpha": 0}, "`alpha` must be a positive"),
    ("GridSearchOracle", {"durability": "FULL"}, "`durability` must be one of"),
    ("RandomSearchOracle", {"database": "sqlite:///s.db"}, "give its path itself"),
    ("RandomSearchOracle", {"early_stopping": "median"}, "must be a stopping rule"),
])
def test_a_keras_oracles_bad_argument_is_refused_where_it_is_given(tmp_path, name, given,
                                                                   said):
    # accepted, then refused by the Tuner, 7 to 11 frames inside KerasTuner, after its
    # folder was made (KerasTuner's own oracles refuse factor=1 and tune_new_entries=False
    # at the call)
    with pytest.raises((ValueError, TypeError), match=said):
        getattr(kt.oracles, name)(objective="val_loss", **given)
    with pytest.raises((ValueError, TypeError), match=said):
        Squares(oracle=getattr(kt.oracles, name)(objective="val_loss", **given),
                directory=str(tmp_path / "d"))
    assert not (tmp_path / "d").exists()


def test_a_keras_tuners_bad_tuner_id_is_refused_before_its_folder_is_made(tmp_path):
    with pytest.raises(TypeError, match="`tuner_id` must be a string"):
        kt.RandomSearch(build, objective="val_accuracy", directory=str(tmp_path / "d"),
                        tuner_id=2.5)
    assert not (tmp_path / "d").exists()
    tuner = Squares(oracle=kt.oracles.RandomSearchOracle(max_trials=1), tuner_id=5,
                    directory=str(tmp_path / "d"))
    tuner.search(1.0)  # (KerasTuner runs with tuner_id=5; hpstore.keras refused it there)
    assert [t.tuner_id for t in tuner.oracle.trials.values()] == ["5"]


def test_an_open_hpstore_oracle_keeps_its_checkpoints_under_its_own_project(tmp_path):
    # both searches of one file went to <directory>/untitled_project, each loading the
    # other's weights as its own
    path = str(tmp_path / "two.db")
    folders = []
    for name in ("a", "b"):
        tuner = Squares(oracle=hpstore.RandomSearchOracle(max_trials=1, seed=1,
                                                          database=path, project_name=name),
                        directory=str(tmp_path))
        folders.append(tuner.project_dir)
        tuner.search(1.0)
    assert folders == [str(tmp_path / "a"), str(tmp_path / "b")]
    named = Squares(oracle=hpstore.RandomSearchOracle(max_trials=1, database=path,
                                                      project_name="c"),
                    directory=str(tmp_path), project_name="ckpt")
    assert named.project_dir == str(tmp_path / "ckpt")  # a name of the Tuner's own holds


def test_a_search_whose_checkpoints_went_to_untitled_project_keeps_them_there(tmp_path):
    # they went there before the search's own name named the folder: a search resumed
    # after the change looked for its trials' models in <directory>/mnist, and found none
    path = str(tmp_path / "old.db")
    before = Squares(oracle=hpstore.RandomSearchOracle(max_trials=1, seed=1, database=path,
                                                       project_name="mnist"),
                     directory=str(tmp_path), project_name="untitled_project")
    before.search(1.0)
    for trial_id in before.oracle.trials:  # (where a model's checkpoint is saved)
        before.get_trial_dir(trial_id)
    assert os.listdir(tmp_path / "untitled_project")
    again = Squares(oracle=hpstore.RandomSearchOracle(max_trials=2, database=path,
                                                      project_name="mnist"),
                    directory=str(tmp_path))
    assert again.project_dir == str(tmp_path / "untitled_project")
    fresh = Squares(oracle=hpstore.RandomSearchOracle(max_trials=1, database=path,
                                                      project_name="new"),
                    directory=str(tmp_path))
    assert fresh.project_dir == str(tmp_path / "new")  # (a search with no trial yet)


@pytest.mark.parametrize("name", ["a/b", "..", "/tmp/elsewhere"])
def test_a_search_name_that_is_no_folder_name_is_refused_for_the_checkpoints(tmp_path, name):
    # the checkpoints went outside the Tuner's directory, or deep inside it
    oracle = hpstore.RandomSearchOracle(max_trials=1, database=str(tmp_path / "s.db"),
                                        project_name=name)
    with pytest.raises(ValueError, match="not a folder name"):
        Squares(oracle=oracle, directory=str(tmp_path / "d"))
    named = Squares(oracle=oracle, directory=str(tmp_path / "d"), project_name="ckpt")
    assert named.project_dir == str(tmp_path / "d" / "ckpt")
    oracle.close()


def test_an_open_hpstore_oracle_does_not_run_over_kerastuners_own_search(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "oracle.json").write_text("{}")
    oracle = hpstore.RandomSearchOracle(max_trials=1, database=str(tmp_path / "own.db"),
                                        project_name="p")
    with pytest.raises(hpstore.HpStoreError, match="holds a KerasTuner search"):
        Squares(oracle=oracle, directory=str(tmp_path))
    assert os.listdir(folder) == ["oracle.json"]
    oracle.close()


_HOLDS_A_TRIAL = """
import sys
import hpstore
hp = hpstore.HyperParameters()
hp.Int("u", 1, 4)
oracle = hpstore.RandomSearchOracle(objective="loss", max_trials=1, database=sys.argv[1],
                                    hyperparameters=hp)
print(oracle.create_trial("held").trial_id, flush=True)
sys.stdin.read()  # until the test closes it
"""


def test_a_worker_with_nothing_to_start_says_which_trials_it_waits_for(tmp_path, capsys):
    # it asked again and again in silence, for as long as another worker (frozen, say)
    # held the last trial; hpstore.Tuner says it
    import subprocess
    import sys

    path = str(tmp_path / "s.db")
    holder = subprocess.Popen([sys.executable, "-c", _HOLDS_A_TRIAL, path],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        held = holder.stdout.readline().strip()
        oracle = kt.Oracle(hpstore.RandomSearchOracle(objective="loss", database=path))
        assert oracle.create_trial("waiting").status == "IDLE"
        assert capsys.readouterr().out == (
            f"Nothing to start for now; waiting for trial(s) {held} (held) running in "
            "other processes.\n")
        assert oracle.create_trial("waiting").status == "IDLE"
        assert capsys.readouterr().out == ""  # (said once, until what it waits for changes)
        oracle.hpstore_oracle.close()
    finally:
        holder.stdin.close()
        holder.wait(60)
