"""KerasTuner's guides, ported by their import line: what their scripts do beyond a
plain ``build``. Tiny models on 64 samples, one epoch, so each search takes seconds."""

from __future__ import annotations

import sqlite3

import keras_tuner
import pytest
from _keras_models import build, build_grid, data

import hpstore
import hpstore.keras as kt

X, Y = data()
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


class TunesTraining(kt.HyperModel):
    """The getting-started guide's "tune model training": a hyperparameter declared only
    in ``fit`` (here with the choices given to the constructor)."""

    def __init__(self, batch_sizes=(16, 32)):
        super().__init__()
        self.batch_sizes = list(batch_sizes)

    def build(self, hp):
        return build(hp)

    def fit(self, hp, model, *args, **kwargs):
        return model.fit(*args, batch_size=hp.Choice("batch_size", self.batch_sizes),
                         **kwargs)


def tuner_for(directory, hypermodel, max_trials, **kwargs):
    return kt.RandomSearch(hypermodel, objective="val_accuracy", max_trials=max_trials,
                           seed=3, directory=str(directory), project_name="p", **kwargs)


def search(tuner):
    tuner.search(X, Y, epochs=1, validation_data=(X, Y), verbose=0)
    return tuner


def statuses(path):
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT trial_id, status FROM trials").fetchall())


def test_a_hyperparameter_fit_now_declares_differently_is_refused_naming_it(tmp_path):
    search(tuner_for(tmp_path, TunesTraining(), 1))
    # the script edited: fit now offers other batch sizes, and asks for one more trial
    changed = tuner_for(tmp_path, TunesTraining((16, 64)), 2)
    with pytest.raises(hpstore.ProjectMismatchError, match="batch_size") as caught:
        search(changed)
    assert "64" in str(caught.value)
    # the trial that met the new definition was handed back, not scored on the old one
    assert statuses(tmp_path / "p.db") == {"0": "COMPLETED", "1": "IDLE"}
    # put back as it was, the script resumes and runs that trial
    tuner = search(tuner_for(tmp_path, TunesTraining(), 2))
    assert statuses(tmp_path / "p.db") == {"0": "COMPLETED", "1": "COMPLETED"}
    assert tuner.get_best_hyperparameters()[0]["batch_size"] in (16, 32)


def test_fit_declaring_the_stored_definition_again_or_one_the_oracle_overrides_runs(
        tmp_path):
    # the same definition in every trial (an Int whose default is left out included)
    class DeclaresEachTime(TunesTraining):
        def fit(self, hp, model, *args, **kwargs):
            hp.Int("repeats", 1, 3)
            return super().fit(hp, model, *args, **kwargs)

    search(tuner_for(tmp_path / "a", DeclaresEachTime(), 3))
    assert set(statuses(tmp_path / "a" / "p.db").values()) == {"COMPLETED"}
    # hyperparameters= given to the tuner override what fit declares, as in KerasTuner
    given = keras_tuner.HyperParameters()
    given.Choice("batch_size", [8, 16])
    search(tuner_for(tmp_path / "b", TunesTraining(), 2, hyperparameters=given))
    assert set(statuses(tmp_path / "b" / "p.db").values()) == {"COMPLETED"}
    # tune_new_entries=False keeps fit's declaration at its default, as a Fixed
    search(tuner_for(tmp_path / "c", TunesTraining(), 2, hyperparameters=given,
                     tune_new_entries=False))
    assert set(statuses(tmp_path / "c" / "p.db").values()) == {"COMPLETED"}


class WidthDepends(TunesTraining):
    """A range that depends on another value in build: discovery's concern, as before."""

    def build(self, hp):
        hp.Int("width", 4, 16 if hp.Boolean("wide") else 8)
        return build(hp)


def test_a_range_that_depends_on_another_value_in_build_still_runs(tmp_path):
    for max_trials in (4, 8):  # a fresh search, then the script run again
        tuner = search(tuner_for(tmp_path, WidthDepends(), max_trials))
    assert list(statuses(tmp_path / "p.db").values()) == ["COMPLETED"] * 8
    assert len(tuner.oracle.trials) == 8


class PicklesItsValues(TunesTraining):
    """A fit that pickles and copies its hyperparameters (handing them to a data loader's
    processes, say) while the trial's declarations are watched."""

    def fit(self, hp, model, *args, **kwargs):
        import copy
        import pickle
        again = pickle.loads(pickle.dumps(copy.deepcopy(hp)))
        assert type(again) is keras_tuner.HyperParameters
        assert again.values == hp.values
        return super().fit(hp, model, *args, **kwargs)


def test_hyperparameters_pickle_and_copy_while_a_trial_runs(tmp_path):
    search(tuner_for(tmp_path, PicklesItsValues(), 2))
    assert list(statuses(tmp_path / "p.db").values()) == ["COMPLETED"] * 2


class LoopOfItsOwn(kt.Tuner):
    """The custom-training-loop guide's shape: ``run_trial`` builds through the hypermodel,
    trains, and returns a dict of its own metrics."""

    def run_trial(self, trial, *args, **kwargs):
        model = self.hypermodel.build(trial.hyperparameters)
        units = trial.hyperparameters["units"]
        return {"my_accuracy": units / 10, "my_loss": 1.0 / units, "count": model.count_params()}


class FitReturnsBoth(TunesTraining):
    """A ``fit`` that trains, then returns both objectives' metrics on data of its own."""

    def fit(self, hp, model, *args, **kwargs):
        model.fit(*args, **kwargs)
        return {"val_accuracy": hp["units"] / 10, "val_loss": 1.0 / hp["units"]}


def test_a_dict_of_each_objectives_metric_scores_a_list_of_objectives(tmp_path):
    # KerasTuner only combines a list of objectives from a History, and stops the search
    # on a dict: here the dict holds every objective's metric, and the trial is scored as
    # the oracle scores reported metrics (the "min" ones minus the "max" ones)
    objective = [kt.Objective("my_accuracy", "max"), kt.Objective("my_loss", "min")]
    tuner = LoopOfItsOwn(oracle=kt.oracles.GridSearchOracle(objective=objective),
                         hypermodel=build_grid, directory=str(tmp_path / "a"), project_name="p")
    tuner.search()
    trials = tuner.oracle.trials.values()
    assert {t.status for t in trials} == {"COMPLETED"} and len(trials) == 4
    for trial in trials:
        units = trial.hyperparameters["units"]
        assert trial.score == pytest.approx(1.0 / units - units / 10)
    assert tuner.get_best_hyperparameters(1)[0]["units"] == 8
    # the same from a HyperModel.fit that trains, then returns a dict of its own
    tuner = kt.RandomSearch(FitReturnsBoth(), objective=["val_accuracy", "val_loss"],
                            max_trials=2, seed=3, directory=str(tmp_path / "b"),
                            project_name="p")
    search(tuner)
    for trial in tuner.oracle.trials.values():
        units = trial.hyperparameters["units"]
        assert trial.status == "COMPLETED"
        assert trial.score == pytest.approx(1.0 / units - units / 10)


class ReturnsTooLittle(kt.Tuner):
    def run_trial(self, trial, returned):
        self.hypermodel.build(trial.hyperparameters)
        return returned


@pytest.mark.parametrize("returned", [{"my_accuracy": 0.5}, 0.5,
                                      {"multi_objective": 0.5, "my_accuracy": 0.5}])
def test_a_return_without_each_objectives_metric_stops_the_search_saying_what_is_missing(
        tmp_path, returned):
    # KerasTuner asks for a "multi_objective" key, then its oracle refuses the trial for
    # lack of the metrics themselves, three times over: every trial would repeat it
    objective = [kt.Objective("my_accuracy", "max"), kt.Objective("my_loss", "min")]
    tuner = ReturnsTooLittle(oracle=kt.oracles.GridSearchOracle(objective=objective),
                             hypermodel=build_grid, directory=str(tmp_path), project_name="p")
    with pytest.raises(hpstore.FatalValueError, match="my_loss") as caught:
        tuner.search(returned)
    assert "multi_objective" not in str(caught.value).split("received")[0]
    assert list(statuses(tmp_path / "p.db").values()) == ["FAILED"]


class FailsItsFirstRun(kt.Tuner):
    """A run_trial that fails once (a flaky data source), and runs again."""

    def run_trial(self, trial):
        x = trial.hyperparameters.Choice("x", [1, 2, 3])
        self.runs = getattr(self, "runs", 0) + 1
        if self.runs == 2:
            raise RuntimeError("flaky")
        return float(x)


def test_a_trial_run_again_is_once_in_the_oracles_start_and_end_orders(tmp_path):
    # as KerasTuner keeps them: each trial once, when it first starts and when it ends
    # for good (a run that failed and is queued to run again is no end)
    oracle = kt.oracles.GridSearchOracle(max_retries_per_trial=1)
    tuner = FailsItsFirstRun(oracle=oracle, directory=str(tmp_path), project_name="p")
    tuner.search()
    assert statuses(tmp_path / "p.db") == dict.fromkeys(["0000", "0001", "0002"],
                                                        "COMPLETED")
    assert tuner.oracle.start_order == tuner.oracle.end_order == ["0000", "0001", "0002"]


def test_a_notebook_cell_run_again_with_overwrite_leaves_the_old_tuner_saying_why(tmp_path):
    # the guides' cells pass overwrite=True: run again, the cell's new tuner replaces the
    # project while the old tuner is still alive in the same process. The old one must
    # not read the new project's checkpoints as its own, and its error must not blame
    # another process: there is none
    first = search(tuner_for(tmp_path, build, 2, overwrite=True))
    again = search(tuner_for(tmp_path, build, 3, overwrite=True))
    assert len(again.oracle.trials) == 3
    with pytest.raises(hpstore.ProjectRemovedError, match="another tuner or oracle of this one"
                       ) as caught:
        first.get_best_models(1)
    assert "this oracle stopped writing" in str(caught.value)
    assert len(again.get_best_models(1)) == 1


def test_best_models_read_as_another_tuner_replaces_the_project_say_so(tmp_path):
    # overwrite=True elsewhere between reading the best trials and loading their
    # checkpoints: the load failed on a FileNotFoundError from deep in Keras (or, had the
    # new project's trial of that id saved its checkpoint, loaded it as this one's)
    first = search(tuner_for(tmp_path, build, 1))
    built = first.hypermodel.build

    def build_then_replaced(hp):
        model = built(hp)
        search(tuner_for(tmp_path, build, 1, overwrite=True))  # (as another process would)
        return model

    first.hypermodel.build = build_then_replaced
    with pytest.raises(hpstore.ProjectRemovedError):
        first.get_best_models(1)


def test_a_checkpoint_save_that_meets_a_replaced_project_says_so(tmp_path, capfd):
    # another process's overwrite=True between the guard's look and the save: the save
    # failed on a missing folder, a traceback from deep in Keras before the real cause
    import shutil

    import keras

    class ReplacedNow(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            shutil.rmtree(tmp_path / "p")
            hpstore.RandomSearchOracle("val_accuracy", database=tmp_path / "p.db",
                                       project_name="p", overwrite=True).close()

    tuner = tuner_for(tmp_path, build, 1)
    with pytest.raises(hpstore.ProjectRemovedError) as caught:
        tuner.search(X, Y, epochs=1, validation_data=(X, Y), verbose=0,
                     callbacks=[ReplacedNow()])
    assert isinstance(caught.value.__context__, OSError)
    printed = capfd.readouterr()
    assert "FileNotFoundError" not in printed.out + printed.err, printed
