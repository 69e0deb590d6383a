"""A KerasTuner script ported by its import line: real Keras, real training, on a CPU.

Each tuner completes on a tiny model; the best models and hyperparameters come back as
KerasTuner gives them; the search file holds every epoch of every trial.
"""

from __future__ import annotations

import os
import sqlite3

import keras
import keras_tuner
import pytest
from _keras_models import (
    Squares,
    X,
    Y,
    build,
    build_branches,
    build_grid,
    epochs_recorded,
    rows,
    search,
)

import hpstore
import hpstore.keras as kt

# numpy 2 asks torch tensors for a keyword they do not take, once per batch
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


TUNERS = {
    "random": lambda d: kt.RandomSearch(build, objective="val_accuracy", max_trials=3, seed=1,
                                        directory=d, project_name="p"),
    "bayesian": lambda d: kt.BayesianOptimization(build, objective="val_accuracy", max_trials=4,
                                                  num_initial_points=2, seed=1, directory=d,
                                                  project_name="p"),
    "grid": lambda d: kt.GridSearch(build_grid, objective="val_accuracy", directory=d,
                                    project_name="p"),
    "hyperband": lambda d: kt.Hyperband(build, objective="val_accuracy", max_epochs=3,
                                        factor=3, seed=1, directory=d, project_name="p"),
}
TRIALS = {"random": 3, "bayesian": 4, "grid": 4, "hyperband": 6}


@pytest.mark.parametrize("kind", sorted(TUNERS))
def test_each_tuner_completes_a_ported_script(tmp_path, kind):
    tuner = search(TUNERS[kind](str(tmp_path)))
    assert isinstance(tuner, getattr(keras_tuner, type(tuner).__name__))
    db = tmp_path / "p.db"  # the search file goes into the tuner's directory
    assert tuner.search_file == db
    statuses = rows(db, "SELECT status FROM trials")
    assert statuses == [("COMPLETED",)] * TRIALS[kind]
    # KerasTuner's state files are not written: the file is the state
    assert not list((tmp_path / "p").glob("*.json"))

    best_trial = tuner.oracle.get_best_trials(1)[0]
    best_hp = tuner.get_best_hyperparameters(1)[0]
    assert isinstance(best_hp, keras_tuner.HyperParameters)
    assert best_hp.values == best_trial.hyperparameters.values
    model = tuner.get_best_models(1)[0]
    assert isinstance(model, keras.Model)
    # the checkpoint of the best epoch: it scores what the file says the trial scored
    accuracy = model.evaluate(X, Y, verbose=0, return_dict=True)["accuracy"]
    assert accuracy == pytest.approx(best_trial.score, abs=1e-6)

    # every epoch of every trial, every metric Keras logged
    recorded = epochs_recorded(db)
    for (trial_id,) in rows(db, "SELECT trial_id FROM trial_overview"):
        trial = tuner.oracle.get_trial(trial_id)
        v = trial.hyperparameters.values
        first, last = v.get("tuner/initial_epoch", 0), v.get("tuner/epochs", 2)
        expected = list(range(first, last))
        assert recorded[trial_id] == {m: expected for m in
                                      ("accuracy", "loss", "val_accuracy", "val_loss")}
        assert trial.score == max(trial.metrics.get_history("val_accuracy"),
                                  key=lambda o: o.mean()).mean()


def test_hyperband_children_continue_from_their_parents_checkpoint(tmp_path):
    tuner = search(TUNERS["hyperband"](str(tmp_path)))
    children = [tuner.oracle.get_trial(t) for t in tuner.oracle.trials
                if "tuner/trial_id" in tuner.oracle.get_trial(t).hyperparameters.values]
    assert len(children) == 1
    child = children[0].hyperparameters.values
    parent = tuner.oracle.get_trial(child["tuner/trial_id"])
    assert parent.status == "COMPLETED"
    # promoted: the best of its round (round 0 of bracket 1: trials 0, 1, 2)
    first_round = sorted(tuner.oracle.trials)[:3]
    assert parent.score == max(tuner.oracle.get_trial(t).score for t in first_round)
    assert (child["tuner/initial_epoch"], child["tuner/epochs"]) == (1, 3)
    weights = tmp_path / "p" / f"trial_{parent.trial_id}" / "checkpoint.weights.h5"
    assert weights.exists()


def test_database_and_durability_are_hpstores(tmp_path):
    path = tmp_path / "elsewhere.db"
    tuner = kt.RandomSearch(build, objective="val_accuracy", max_trials=1,
                            directory=str(tmp_path / "runs"), project_name="p",
                            database=str(path), durability="full")
    search(tuner, epochs=1)
    assert tuner.search_file == path and not (tmp_path / "runs" / "p.db").exists()
    assert tuner.oracle.hpstore_oracle.store.db.durability == "full"
    assert rows(path, "SELECT project, status FROM trial_overview") == [("p", "COMPLETED")]
    # checkpoints stay where KerasTuner puts them
    assert (tmp_path / "runs" / "p" / "trial_0" / "checkpoint.weights.h5").exists()


def test_running_the_script_again_resumes_and_a_finished_search_runs_nothing(tmp_path):
    def tuner(trials):
        return kt.RandomSearch(build, objective="val_accuracy", max_trials=trials, seed=3,
                               directory=str(tmp_path), project_name="p")

    search(tuner(2), epochs=1)
    again = search(tuner(3), epochs=1)  # a raised max_trials extends the search
    assert sorted(again.oracle.trials) == ["0", "1", "2"]
    search(tuner(3), epochs=1)
    assert len(rows(tmp_path / "p.db", "SELECT * FROM trials")) == 3


def test_a_finished_search_says_so_and_calls_kerastuners_hooks(tmp_path, capsys):
    # run again on a finished search, a ported script returned at once without a word
    # (KerasTuner says "Reloading Tuner from ..." as the tuner is made), its results reading
    # as this run's; the hooks are KerasTuner's, called as it calls them
    called = []

    class Hooked(kt.RandomSearch):
        def on_search_begin(self):
            called.append("begin")

        def pre_create_trial(self):
            called.append("ask")

        def on_search_end(self):
            called.append("end")

    def tuner():
        return Hooked(build, objective="val_accuracy", max_trials=1, seed=3,
                      directory=str(tmp_path), project_name="p")

    search(tuner(), epochs=1)
    assert called == ["begin", "ask", "ask", "end"] and "finished" not in capsys.readouterr().out
    called.clear()
    tuner().search(X, Y, epochs=1, validation_data=(X, Y))
    out = capsys.readouterr().out
    assert ("The search is finished, and this process ran none of its trials: project 'p' "
            "holds 1 trial(s). Raise tuner.oracle.max_trials") in out, out
    assert "Best trial:" in out, out
    assert called == ["begin", "ask", "end"]
    search(tuner(), epochs=1)  # verbose=0: nothing said
    assert capsys.readouterr().out == ""
    # finished by its oracle, with no max_trials (a grid run through): said too
    search(TUNERS["grid"](str(tmp_path / "g")), epochs=1)
    capsys.readouterr()
    TUNERS["grid"](str(tmp_path / "g")).search(X, Y, epochs=1, validation_data=(X, Y))
    assert ("The search is finished, and this process ran none of its trials: project 'p' "
            "holds 4 trial(s). Give overwrite=True") in capsys.readouterr().out


def test_a_kerastuner_state_file_left_in_the_project_is_not_said_to_be_reloaded(
        tmp_path, capsys):
    # after import-keras-tuner, the ported script printed KerasTuner's "Reloading Tuner
    # from .../tuner0.json", a file hpstore never reads
    def tuner(trials):
        return kt.RandomSearch(build, objective="val_accuracy", max_trials=trials, seed=3,
                               directory=str(tmp_path), project_name="p")

    search(tuner(1), epochs=1)  # (as the import leaves it: the file, beside the folder)
    (tmp_path / "p" / "tuner0.json").write_text("{}", encoding="utf-8")
    capsys.readouterr()
    again = tuner(2)
    assert "Reloading" not in capsys.readouterr().out
    # KerasTuner's oracle attributes a script may read
    assert (again.oracle.directory, again.oracle.project_name) == (str(tmp_path), "p")
    search(again, epochs=1)
    assert len(rows(tmp_path / "p.db", "SELECT * FROM trials")) == 2


def test_every_branch_is_found_before_the_first_trial_and_tuned(tmp_path):
    tuner = kt.GridSearch(build_branches, objective="val_accuracy", directory=str(tmp_path),
                          project_name="p")
    names = [hp.name for hp in tuner.oracle.get_space().space]
    assert sorted(names) == ["extra", "momentum", "optimizer", "second"]
    # as KerasTuner's own oracle space: each active hyperparameter at its default
    assert tuner.oracle.get_space().values == {"second": False, "extra": 2, "optimizer": "adam"}
    search(tuner, epochs=1)
    ran = set()
    for trial_id in tuner.oracle.trials:
        v = tuner.oracle.get_trial(trial_id).hyperparameters.values
        ran.add((v["second"], v["extra"], v["optimizer"], v.get("momentum")))
    assert ran == {(s, e, o, m) for s in (False, True) for e in (2, 4)
                   for o, m in (("adam", None), ("sgd", 0.0), ("sgd", 0.9))}
    assert len(tuner.oracle.trials) == 12


class FitDeclares(kt.HyperModel):
    """Declares a hyperparameter only while fitting: no build before the search sees it."""

    seen: list[type] = []

    def build(self, hp):
        self.seen.append(type(hp))
        return build(hp)

    def fit(self, hp, model, *args, **kwargs):
        return model.fit(*args, batch_size=hp.Choice("batch_size", [16, 32]), **kwargs)


def test_build_gets_kerastuners_hyperparameters_and_what_fit_declares_is_recorded(tmp_path):
    hypermodel = FitDeclares()
    tuner = kt.RandomSearch(hypermodel, objective="val_accuracy", max_trials=3, seed=2,
                            directory=str(tmp_path), project_name="p")
    assert "batch_size" not in [hp.name for hp in tuner.oracle.get_space().space]
    search(tuner, epochs=1)
    assert set(FitDeclares.seen) == {keras_tuner.HyperParameters}
    space = tuner.oracle.hpstore_oracle.get_space()
    assert [hp.name for hp in space.space] == ["units", "lr", "batch_size"]
    first = tuner.oracle.get_trial("0").hyperparameters.values
    assert first["batch_size"] == 16  # ran with its default, recorded with it
    # joined the space: the later trials were given a value for it
    assert all("batch_size" in tuner.oracle.get_trial(t).hyperparameters.values
               for t in ("1", "2"))


def test_each_process_has_its_own_tuner_id_and_kerastuner_tuner_id_is_honoured(
        tmp_path, monkeypatch):
    monkeypatch.delenv("KERASTUNER_TUNER_ID", raising=False)
    monkeypatch.delenv("HPSTORE_TUNER_ID", raising=False)
    tuner = kt.RandomSearch(build, objective="val_accuracy", max_trials=1,
                            directory=str(tmp_path), project_name="a")
    assert tuner.tuner_id == f"worker-{os.getpid()}"  # KerasTuner: "tuner0" everywhere
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "gpu-3")
    tuner = search(kt.RandomSearch(build, objective="val_accuracy", max_trials=1,
                                   directory=str(tmp_path), project_name="b"), epochs=1)
    assert tuner.tuner_id == "gpu-3"
    assert rows(tmp_path / "b.db", "SELECT tuner_id FROM trial_overview") == [("gpu-3",)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_tuner_inherited_by_forked_processes_names_each_apart(tmp_path, monkeypatch):
    # a fork Pool's processes sharing one tuner all took its maker's id: the second to ask
    # for a trial was refused (TunerIdInUseError), and the search stopped
    monkeypatch.delenv("KERASTUNER_TUNER_ID", raising=False)
    monkeypatch.delenv("HPSTORE_TUNER_ID", raising=False)
    tuner = kt.RandomSearch(build, objective="val_accuracy", max_trials=1,
                            directory=str(tmp_path), project_name="a")
    given = kt.RandomSearch(build, objective="val_accuracy", max_trials=1,
                            directory=str(tmp_path), project_name="b", tuner_id="gpu-0")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: says its tuners' ids, and ends at once
        os.write(write, f"{tuner.tuner_id} {given.tuner_id}".encode())
        os._exit(0)
    os.close(write)
    said = os.read(read, 1000).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert said == f"worker-{pid} gpu-0"  # its own; the one given stays
    assert tuner.tuner_id == f"worker-{os.getpid()}"


def test_a_chief_left_in_the_environment_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "10.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    with pytest.raises(hpstore.HpStoreError, match=r"KERASTUNER_ORACLE_IP.*unset"):
        kt.RandomSearch(build, objective="val_accuracy", directory=str(tmp_path),
                        project_name="p")
    assert not (tmp_path / "p.db").exists()
    # KerasTuner's own Tuner on the adapter: refused too, not made a gRPC client
    with pytest.raises(hpstore.HpStoreError, match="KERASTUNER_ORACLE_IP"):
        keras_tuner.Tuner(oracle=kt.oracles.RandomSearchOracle(), hypermodel=build,
                          directory=str(tmp_path), project_name="q")


def test_a_tuner_of_ones_own_on_any_oracle(tmp_path):
    for oracle in (kt.oracles.RandomSearchOracle(max_trials=4, seed=1),
                   hpstore.RandomSearchOracle(max_trials=4, seed=1,
                                              database=str(tmp_path / "own.db"))):
        tuner = Squares(oracle=oracle, directory=str(tmp_path), project_name="sq")
        tuner.search(1.0)
        scores = [t.score for t in tuner.oracle.trials.values()]
        assert len(scores) == 4 and all(s is not None for s in scores)
        assert tuner.oracle.get_best_trials(1)[0].score == min(scores)
    assert rows(tmp_path / "sq.db", "SELECT count(*) FROM trials") == [(4,)]
    assert rows(tmp_path / "own.db", "SELECT count(*) FROM trials") == [(4,)]


def test_a_trial_ended_elsewhere_while_it_ran_is_left_and_the_search_goes_on(tmp_path,
                                                                             capsys):
    # on a server, a trial handed to another worker while this one ran it; here another
    # object of the search ends it: end_trial raised out of search() and stopped it
    path = str(tmp_path / "gone.db")
    hp = hpstore.HyperParameters()
    hp.Float("x", -3, 3)
    other = hpstore.RandomSearchOracle(max_trials=3, seed=1, database=path,
                                       hyperparameters=hp)
    taken = []

    class EndedElsewhere(Squares):
        def run_trial(self, trial, offset):
            value = super().run_trial(trial, offset)
            if not taken:
                taken.append(trial.trial_id)
                other.update_trial(trial.trial_id, {"default_objective": 50.0})
                ended = other.get_trial(trial.trial_id)
                ended.status = "COMPLETED"
                other.end_trial(ended)
            return value

    tuner = EndedElsewhere(oracle=hpstore.RandomSearchOracle(max_trials=3, seed=1,
                                                               database=path),
                           directory=str(tmp_path), project_name="p")
    tuner.search(1.0)
    scores = dict(rows(path, "SELECT trial_id, score FROM trials WHERE status = 'COMPLETED'"))
    assert len(scores) == 3 and scores[taken[0]] == 50.0
    assert (f"Trial {taken[0]} is COMPLETED, not running: it has already ended (or was "
            "handed back to be run again). Nothing was recorded. Going on with the next "
            "trial.") in capsys.readouterr().out


def test_a_trial_lost_with_the_servers_last_commits_is_left_and_the_search_goes_on(
        tmp_path, capsys):
    # a server that crashed with durability="normal" lost the running trial: end_trial
    # raised TrialNotFoundError out of search() and the worker died
    path = str(tmp_path / "lost.db")
    lost = []

    class LostMeanwhile(Squares):
        def run_trial(self, trial, offset):
            if not lost:
                lost.append(trial.trial_id)
                with sqlite3.connect(path) as conn:  # (what the lost commits leave behind)
                    conn.execute("DELETE FROM trials WHERE trial_id = ?", (trial.trial_id,))
            return super().run_trial(trial, offset)

    tuner = LostMeanwhile(oracle=hpstore.RandomSearchOracle(max_trials=3, seed=1,
                                                              database=path),
                          directory=str(tmp_path), project_name="p")
    tuner.search(1.0)
    assert len(rows(path, "SELECT trial_id FROM trials WHERE status = 'COMPLETED'")) == 3
    out = capsys.readouterr().out
    assert f"Trial {lost[0]!r}, which this process was running" in out
    assert "Going on with the next trial." in out


def test_kerastuners_own_oracle_is_refused(tmp_path):
    with pytest.raises(TypeError, match=r"hpstore\.keras\.oracles"):
        Squares(oracle=keras_tuner.oracles.RandomSearchOracle(max_trials=2),
                directory=str(tmp_path))


def test_an_open_hpstore_oracle_keeps_its_own_file_settings(tmp_path):
    oracle = hpstore.RandomSearchOracle(max_trials=2, database=str(tmp_path / "own.db"))
    for setting in ({"database": str(tmp_path / "x.db")}, {"durability": "full"},
                    {"overwrite": True}):
        with pytest.raises(ValueError, match="to the hpstore oracle"):
            Squares(oracle=oracle, directory=str(tmp_path), **setting)


def test_a_changed_hypermodel_is_refused_naming_the_difference(tmp_path):
    kt.RandomSearch(build, objective="val_accuracy", directory=str(tmp_path), project_name="p")

    def wider(hp):
        hp.Choice("units", [4, 8, 16])
        return build(hp)

    with pytest.raises(hpstore.ProjectMismatchError, match="units"):
        kt.RandomSearch(wider, objective="val_accuracy", directory=str(tmp_path),
                        project_name="p")


def test_a_resumed_search_builds_nothing_until_search_which_still_refuses_a_change(tmp_path):
    # reopening a search to read its results built the hypermodel 13 times (32 s with a
    # large backbone); KerasTuner builds nothing on a reload
    builds = []

    def counted(hp):
        builds.append(1)
        return build(hp)

    def tuner(hypermodel, trials):
        return kt.RandomSearch(hypermodel, objective="val_accuracy", max_trials=trials,
                               seed=3, directory=str(tmp_path), project_name="p")

    search(tuner(counted, 1), epochs=1)
    builds.clear()
    reopened = tuner(counted, 1)
    assert builds == []
    assert len(reopened.get_best_models(1)) == 1  # (that one builds the model it loads)

    def wider(hp):
        hp.Choice("units", [4, 8, 16])
        return build(hp)

    changed = tuner(wider, 3)  # refused at search(), before any trial runs on it
    with pytest.raises(hpstore.ProjectMismatchError, match="units"):
        search(changed, epochs=1)
    assert len(rows(tmp_path / "p.db", "SELECT * FROM trials")) == 1


def test_a_history_returned_under_several_objectives_is_scored_on_them(tmp_path):
    # KerasTuner's conversion of a History adds the combined value itself, which the
    # oracle refuses reported: every trial of such a run_trial failed
    class Fits(kt.RandomSearch):
        def run_trial(self, trial, *args, **kwargs):
            model = self.hypermodel.build(trial.hyperparameters)
            return model.fit(X, Y, validation_split=0.25, epochs=2, verbose=0)

    tuner = Fits(build, objective=["val_loss", keras_tuner.Objective("val_accuracy", "max")],
                 max_trials=2, seed=3, directory=str(tmp_path), project_name="p",
                 max_consecutive_failed_trials=1)
    tuner.search()
    ended = list(tuner.oracle.trials.values())
    assert [t.status for t in ended] == ["COMPLETED", "COMPLETED"]
    for t in ended:  # the best epoch's val_loss - val_accuracy, as computed from the file
        history = t.metrics.get_history("val_loss")
        accuracy = t.metrics.get_history("val_accuracy")
        assert min(h.value[0] - a.value[0] for h, a in zip(history, accuracy)) == (
            pytest.approx(t.score))


def test_given_hyperparameters_and_objectives_of_kerastuner(tmp_path):
    hp = kt.HyperParameters()
    hp.Fixed("lr", 0.01)
    tuner = kt.RandomSearch(build, objective=kt.Objective("val_loss", "min"), max_trials=2,
                            hyperparameters=hp, tune_new_entries=False,
                            directory=str(tmp_path), project_name="p")
    search(tuner, epochs=1)
    space = {h.name: type(h).__name__ for h in tuner.oracle.hpstore_oracle.get_space().space}
    assert space == {"lr": "Fixed", "units": "Fixed"}
    assert tuner.oracle.objective.direction == "min"
    assert isinstance(tuner.oracle.objective, keras_tuner.Objective)


def test_names_kerastuner_has_and_this_module_does_not_are_explained():
    with pytest.raises(AttributeError, match=r"keras_tuner\.SklearnTuner"):
        kt.SklearnTuner  # noqa: B018


def test_overwrite_starts_the_project_afresh_in_the_file_and_on_disk(tmp_path):
    def tuner(**kwargs):
        return kt.RandomSearch(build, objective="val_accuracy", max_trials=2,
                               directory=str(tmp_path), project_name="p", **kwargs)

    old = search(tuner(), epochs=1)
    search(tuner(overwrite=True), epochs=1)
    assert rows(tmp_path / "p.db", "SELECT count(*) FROM trials") == [(2,)]
    assert rows(tmp_path / "p.db", "SELECT count(*) FROM projects") == [(1,)]
    with pytest.raises(hpstore.ProjectRemovedError):  # the old search is no more
        old.oracle.create_trial("late")


def test_epochs_without_the_objective_are_left_out(tmp_path):
    tuner = kt.RandomSearch(build, objective="val_accuracy", max_trials=1,
                            directory=str(tmp_path), project_name="p")
    search(tuner, epochs=4, validation_freq=2)  # validation after epochs 1 and 3 only
    assert epochs_recorded(tmp_path / "p.db")["0"]["val_accuracy"] == [1, 3]
    assert epochs_recorded(tmp_path / "p.db")["0"]["loss"] == [1, 3]


def test_several_executions_are_averaged_epoch_by_epoch(tmp_path):
    tuner = kt.RandomSearch(build, objective="val_accuracy", max_trials=1,
                            executions_per_trial=2, directory=str(tmp_path), project_name="p")
    search(tuner, epochs=2)
    history = tuner.oracle.hpstore_oracle.get_trial("0").metrics.get_history("val_accuracy")
    assert [(o.step, len(o.value)) for o in history] == [(0, 2), (1, 2)]
    assert tuner.oracle.get_trial("0").score == max(o.mean() for o in history)


@pytest.mark.parametrize("setup", [
    "import sys; sys.modules['keras_tuner'] = None",  # not installed
    "import os; os.environ['KERAS_BACKEND'] = 'no-such-backend'",  # keras refuses it
])
def test_without_a_usable_keras_the_import_says_what_to_install(setup):
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", f"{setup}; import hpstore.keras"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: hpstore.keras needs keras-tuner")
    assert 'pip install "hpstore[keras]"' in last and "KERAS_BACKEND" in last


class ScoredOnItsOwn(kt.HyperModel):
    """A fit that trains with the tuner's callbacks (every epoch recorded) and returns a
    score of its own, as a test-set metric or a mean over folds is returned."""

    def build(self, hp):
        return build(hp)

    def fit(self, hp, model, *args, **kwargs):
        model.fit(*args, **kwargs)
        return {"val_accuracy": 100.0 + hp["units"], "test_loss": 0.5}


def test_what_fit_returns_after_its_epochs_scores_the_trial_as_in_kerastuner(tmp_path):
    tuner = search(kt.RandomSearch(ScoredOnItsOwn(), objective="val_accuracy", max_trials=2,
                                   seed=1, directory=str(tmp_path), project_name="p"))
    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 2
    for trial in trials:  # scored on the returned value, not the best epoch
        assert trial.score == 100.0 + trial.hyperparameters["units"]
        assert trial.best_step == 2  # recorded after the epochs 0 and 1
    epochs = epochs_recorded(tmp_path / "p.db")
    assert all(steps["val_accuracy"] == [0, 1, 2] and steps["test_loss"] == [2]
               for steps in epochs.values())
    best = tuner.get_best_hyperparameters(1)[0]
    assert best["units"] == max(t.hyperparameters["units"] for t in trials)


def test_a_search_opened_again_without_max_trials_keeps_its_own(tmp_path):
    def tuner(**kwargs):
        return kt.RandomSearch(build, objective="val_accuracy", seed=2,
                               directory=str(tmp_path), project_name="p", **kwargs)

    assert tuner().oracle.max_trials == 10  # a new search: KerasTuner's default
    assert tuner(max_trials=20).oracle.max_trials == 20
    looked_at = tuner()  # to read its results, as KerasTuner users do
    assert looked_at.oracle.max_trials == 20  # not cut back to 10 under its workers
    looked_at.oracle.max_trials = 30  # KerasTuner's way to extend a search
    assert tuner().oracle.max_trials == 30
    with pytest.raises(ValueError, match="max_trials"):
        looked_at.oracle.max_trials = 0


def test_a_folder_of_kerastuners_own_search_is_not_written_over(tmp_path):
    keras_dir = tmp_path / "p"
    keras_dir.mkdir()
    (keras_dir / "oracle.json").write_text("{}")  # what KerasTuner left there
    with pytest.raises(hpstore.HpStoreError, match="import-keras-tuner"):
        kt.RandomSearch(build, objective="val_accuracy", max_trials=1,
                        directory=str(tmp_path), project_name="p")
    assert not (tmp_path / "p.db").exists() and sorted(os.listdir(keras_dir)) == ["oracle.json"]
    # overwrite=True starts afresh there, as KerasTuner does
    search(kt.RandomSearch(build, objective="val_accuracy", max_trials=1, overwrite=True,
                           directory=str(tmp_path), project_name="p"), epochs=1)
    assert not (keras_dir / "oracle.json").exists()


def test_overwrite_refuses_a_search_file_inside_the_folder_it_deletes(tmp_path):
    inside = tmp_path / "p" / "all.db"
    inside.parent.mkdir()
    first = search(kt.RandomSearch(build, objective="val_accuracy", max_trials=1,
                                   directory=str(tmp_path), project_name="other",
                                   database=str(inside)), epochs=1)
    first.oracle.close()
    with pytest.raises(ValueError, match="overwrite=True deletes"):
        kt.RandomSearch(build, objective="val_accuracy", max_trials=1, overwrite=True,
                        directory=str(tmp_path), project_name="p", database=str(inside))
    assert rows(inside, "SELECT project, status FROM trial_overview") == [
        ("other", "COMPLETED")]  # the file and its other project are still there


def test_overwrite_given_as_a_string_is_refused_before_the_folder_is_deleted(tmp_path):
    first = search(kt.RandomSearch(build, objective="val_accuracy", max_trials=1,
                                   directory=str(tmp_path), project_name="p"), epochs=1)
    first.oracle.close()
    kept = sorted(p.name for p in (tmp_path / "p").iterdir())
    with pytest.raises(TypeError, match="`overwrite` must be True or False, received 'no'"):
        kt.RandomSearch(build, objective="val_accuracy", max_trials=1, overwrite="no",
                        directory=str(tmp_path), project_name="p")
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == kept  # KerasTuner deletes
    assert rows(tmp_path / "p.db", "SELECT status FROM trial_overview") == [("COMPLETED",)]


def test_an_objective_of_unknown_direction_is_explained_in_kerastuners_words(tmp_path):
    with pytest.raises(ValueError, match=r'keras_tuner\.Objective\("val_my_metric"'):
        kt.RandomSearch(build, objective="val_my_metric", max_trials=1,
                        directory=str(tmp_path), project_name="p")


def test_the_oracles_start_and_end_orders_are_kerastuners(tmp_path):
    tuner = search(kt.RandomSearch(build, objective="val_accuracy", max_trials=2, seed=4,
                                   directory=str(tmp_path), project_name="p"), epochs=1)
    ids = sorted(tuner.oracle.trials)
    # (an AttributeError: KerasTuner's oracles keep both lists)
    assert tuner.oracle.start_order == ids and tuner.oracle.end_order == ids
    tuner.oracle.close()


class TwoTrainings(kt.HyperModel):
    """A fit that warms up, then fine-tunes, and returns the fine-tuning's History (a
    common transfer-learning shape): both trainings start again at epoch 0."""

    def build(self, hp):
        return build(hp)

    def fit(self, hp, model, *args, **kwargs):
        model.fit(*args, **kwargs)
        self.last = model.fit(*args, **kwargs)
        return self.last


def test_a_fit_that_trains_twice_is_recorded_apart_and_scored_on_the_history_it_returns(
        tmp_path):
    # the two trainings' epochs 0, 1 were averaged into one curve and the trial scored on
    # that blend; KerasTuner scores the returned History
    model = TwoTrainings()
    tuner = search(kt.RandomSearch(model, objective="val_loss", max_trials=1, seed=1,
                                   directory=str(tmp_path), project_name="p"))
    history = tuner.oracle.hpstore_oracle.get_trial("0").metrics.get_history("val_loss")
    assert [(o.step, len(o.value)) for o in history[:4]] == [(0, 1), (1, 1), (2, 1), (3, 1)]
    assert [o.value[0] for o in history[2:4]] == model.last.history["val_loss"]
    assert tuner.oracle.get_trial("0").score == min(model.last.history["val_loss"])


class EachFold(kt.HyperModel):
    """A fit that trains once per fold and returns the list of its Histories (cross
    validation, or one fold alone), as KerasTuner lets it."""

    def __init__(self, folds):
        super().__init__()
        self.folds, self.histories = folds, []

    def build(self, hp):
        return build(hp)

    def fit(self, hp, model, *args, **kwargs):
        self.histories = [model.fit(*args, **kwargs) for _ in range(self.folds)]
        return self.histories


@pytest.mark.parametrize("folds", [1, 2])
def test_a_fit_returning_a_list_of_histories_is_scored_on_their_best_epochs(tmp_path,
                                                                            folds):
    # the list came back inside run_trial's list of executions, and its History objects
    # were taken for metric values: the trial FAILED and the search stopped
    model = EachFold(folds)
    tuner = search(kt.RandomSearch(model, objective="val_loss", max_trials=1, seed=1,
                                   directory=str(tmp_path), project_name="p"))
    trial = tuner.oracle.get_trial("0")
    best = [min(h.history["val_loss"]) for h in model.histories]
    assert trial.status == "COMPLETED"
    assert trial.score == pytest.approx(sum(best) / folds)


class ReportsItself(kt.Tuner):
    """A run_trial that reports through self.oracle.update_trial, as KerasTuner still
    allows, and returns something else."""

    def run_trial(self, trial, *args, **kwargs):
        x = trial.hyperparameters.Float("x", -2, 2)
        for step in range(3):
            self.oracle.update_trial(trial.trial_id, {"loss": (x - 1) ** 2 + 1 - 0.1 * step},
                                     step=step)
        return {"loss": 100.0}


def test_a_run_trial_that_reported_itself_is_scored_on_its_reports_as_in_kerastuner(
        tmp_path):
    # what it returned was recorded one step past its reports and scored the trial
    tuner = ReportsItself(oracle=kt.oracles.RandomSearchOracle(objective="loss", max_trials=2,
                                                               seed=1),
                          directory=str(tmp_path), project_name="p")
    tuner.search(verbose=0)
    for trial in tuner.oracle.trials.values():
        x = trial.hyperparameters["x"]
        assert trial.score == pytest.approx((x - 1) ** 2 + 1 - 0.2) and trial.best_step == 2
    assert max(step for (step,) in rows(tmp_path / "p.db", "SELECT step FROM metric_history")
               ) == 2
