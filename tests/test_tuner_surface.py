"""hpstore.Tuner against the public surface of KerasTuner's BaseTuner: what a ported script
calls or overrides behaves the same, or says what to use instead (never an argument
ignored, or a bare AttributeError deep in the script)."""

from __future__ import annotations

import pytest
from _tuners import oracle

import hpstore


def _square(trial):
    return trial.hyperparameters.values["x"] ** 2


# -- arguments -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "words"), [
    ("directory", "give the oracle database="),
    ("project_name", "give the oracle database="),
    ("overwrite", "overwrite=True"),
    ("executions_per_trial", "return the list of their results"),
    ("max_retries_per_trial", "give it to the oracle"),
    ("max_consecutive_failed_trials", "give it to the oracle"),
    ("distribution_strategy", "hpstore.keras.Tuner"),
    ("max_model_size", "hpstore.keras.Tuner"),
    ("optimizer", "hpstore.keras.Tuner"),
    ("loss", "hpstore.keras.Tuner"),
    ("metrics", "hpstore.keras.Tuner"),
    ("logger", "remove it"),
])
def test_kerastuners_tuner_arguments_are_refused_saying_where_they_go(name, words):
    # each was a bare "unexpected keyword argument", leaving a port to guess
    with pytest.raises(TypeError, match=rf"takes no `{name}`.*{words}"):
        hpstore.Tuner(oracle(), run_trial=_square, verbose=0, **{name: "runs"})


def test_an_unknown_argument_is_refused_as_python_refuses_it():
    with pytest.raises(TypeError, match=r"^Tuner\(\) got an unexpected keyword argument "
                                        r"'scoring'\.$"):
        hpstore.Tuner(oracle(), run_trial=_square, scoring="r2")

    class Mine(hpstore.Tuner):
        def __init__(self, oracle, **kwargs):
            super().__init__(oracle, **kwargs)

    with pytest.raises(TypeError, match=r"^Mine\(\) got an unexpected keyword argument "
                                        r"'cv'.*takes no `directory`"):
        Mine(oracle(), run_trial=_square, cv=3, directory="runs")


def test_logger_none_is_taken_as_kerastuner_takes_it():
    tuner = hpstore.Tuner(oracle(), run_trial=_square, verbose=0, logger=None)
    assert tuner.logger is None


# -- attributes --------------------------------------------------------------------------------
def test_remaining_trials_and_project_name_are_the_oracles(tmp_path):
    tuner = hpstore.Tuner(oracle(str(tmp_path / "s.db"), max_trials=3, project_name="p"),
                          run_trial=_square, verbose=0)
    assert tuner.remaining_trials == 3 and tuner.project_name == "p"
    tuner.search()
    assert tuner.remaining_trials == 0
    unlimited = hpstore.Tuner(oracle(cls=hpstore.GridSearchOracle, max_trials=None,
                                     hyperparameters=None), run_trial=_square, verbose=0)
    assert unlimited.remaining_trials is None


@pytest.mark.parametrize(("name", "words"), [
    ("project_dir", "tuner.oracle.store.location"),
    ("directory", "tuner.oracle.store.location"),
    ("get_trial_dir", "named by trial.trial_id"),
    ("executions_per_trial", "return the list"),
    ("get_state", "nothing of the Tuner is saved"),
    ("distribution_strategy", "hpstore.keras.Tuner"),
])
def test_kerastuners_attributes_hpstore_has_not_say_what_to_use(name, words):
    tuner = hpstore.Tuner(oracle(), run_trial=_square, verbose=0)
    with pytest.raises(AttributeError, match=rf"no '{name}' \(KerasTuner's.*{words}"):
        getattr(tuner, name)
    assert not hasattr(tuner, name)  # (still an AttributeError: getattr's default works)
    assert getattr(tuner, name, "absent") == "absent"
    with pytest.raises(AttributeError, match=r"^'Tuner' object has no attribute 'nope'$"):
        tuner.nope  # noqa: B018


# -- models ----------------------------------------------------------------------------------------
class _KeepsModels(hpstore.Tuner):
    """KerasTuner's BaseTuner pattern: run_trial saves its model, load_model reads it."""

    def run_trial(self, trial):
        self.save_model(trial.trial_id, {"x": trial.hyperparameters.values["x"]})
        return _square(trial)

    def save_model(self, trial_id, model, step=0):
        self.saved = {**getattr(self, "saved", {}), trial_id: model}

    def load_model(self, trial):
        return self.saved[trial.trial_id]


def test_get_best_models_loads_each_best_trial_with_load_model():
    # it was an AttributeError; KerasTuner's BaseTuner calls load_model for each
    tuner = _KeepsModels(oracle(max_trials=4), verbose=0)
    tuner.search()
    best = tuner.get_best_trials(2)
    assert tuner.get_best_models(num_models=2) == [
        {"x": t.hyperparameters.values["x"]} for t in best]


def test_models_without_overrides_say_how_to_keep_them():
    tuner = hpstore.Tuner(oracle(max_trials=1), run_trial=_square, verbose=0)
    tuner.search()
    with pytest.raises(NotImplementedError, match=r"override load_model\(self, trial\).*"
                                                  r"get_best_hyperparameters"):
        tuner.get_best_models()
    with pytest.raises(NotImplementedError, match=r"override save_model\(self, trial_id"):
        tuner.save_model("0", object())


# -- hooks and calls ---------------------------------------------------------------------------
class _Asks(hpstore.Tuner):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def pre_create_trial(self):
        self.calls.append("ask")

    def on_trial_begin(self, trial):
        self.calls.append(("begins", trial.trial_id))

    def run_trial(self, trial):
        return _square(trial)

    def on_search_end(self):
        self.calls.append("search ends")


def test_pre_create_trial_is_called_before_each_ask_as_in_kerastuner():
    # an override was never called (KerasTuner 1.4.8 calls it before each create_trial,
    # the last one answering STOPPED included)
    tuner = _Asks(oracle(max_trials=2), verbose=0)
    tuner.search()
    assert tuner.calls == ["ask", ("begins", "0"), "ask", ("begins", "1"), "ask",
                           "search ends"]


class _EndsItsTrials(hpstore.Tuner):
    """on_trial_end copied from KerasTuner's own: end the trial, then save."""

    def run_trial(self, trial):
        return _square(trial)

    def on_trial_end(self, trial):
        self.oracle.end_trial(trial)
        self.save()


def test_an_on_trial_end_that_ends_the_trial_again_is_told_to_remove_that_call():
    tuner = _EndsItsTrials(oracle(max_trials=2), verbose=0)
    with pytest.raises(hpstore.TrialNotRunningError) as raised:
        tuner.search()
    assert "remove that call" in "".join(raised.value.__notes__)
    assert tuner.oracle.trials["0"].status == "COMPLETED"  # kept as recorded


class _SavesAfterEach(hpstore.Tuner):
    def run_trial(self, trial):
        return _square(trial)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        self.save()  # KerasTuner's own call: here the file holds it already
        self.reload()


def test_save_and_reload_are_the_file_itself():
    tuner = _SavesAfterEach(oracle(max_trials=2), verbose=0)
    tuner.search()
    assert {t.status for t in tuner.oracle.trials.values()} == {"COMPLETED"}


def test_search_space_summary_takes_kerastuners_extended(capsys):
    tuner = hpstore.Tuner(oracle(), run_trial=_square, verbose=0)
    tuner.search_space_summary()
    short = capsys.readouterr().out
    tuner.search_space_summary(extended=True)  # (a TypeError; KerasTuner ignores it)
    assert capsys.readouterr().out == short


def test_verbose_given_to_search_sets_the_display_as_in_kerastuner(capsys):
    given = []

    def run(trial, verbose=1):
        given.append(verbose)
        return _square(trial)

    tuner = hpstore.Tuner(oracle(max_trials=2), run_trial=run)  # (display on)
    tuner.search(verbose=0)
    assert capsys.readouterr() == ("", "")  # it printed each trial and the best
    assert given == [0, 0] and tuner.verbose == 0  # (passed on too, and kept, as there)
    tuner = hpstore.Tuner(oracle(max_trials=1), run_trial=run, verbose=0)
    tuner.search(verbose="auto")  # Keras's default: shown
    assert "Search finished." in capsys.readouterr().out and given[-1] == "auto"


class _DeclaresFirst:
    """A KerasTuner HyperModel declaring part of its space outside build()."""

    def declare_hyperparameters(self, hp):
        hp.Int("units", 1, 4)
        hp.Choice("kind", ["a", "b"])

    def build(self, hp):
        return hp.Int("units", 1, 8) * hp.Float("x", 0, 1)

    def fit(self, hp, model):
        return model


def test_a_hypermodels_declare_hyperparameters_is_called_before_the_builds():
    # it was never called: "kind" was not tuned, and units ran to 8
    tuner = hpstore.Tuner(oracle(hyperparameters=None, max_trials=8), _DeclaresFirst(),
                          verbose=0)
    space = {hp.name: hp for hp in tuner.oracle.get_space().space}
    assert sorted(space) == ["kind", "units", "x"]
    assert space["units"].max_value == 4  # (the first definition, as in KerasTuner)
    tuner.search()
    assert {t.hyperparameters.values["kind"] for t in tuner.oracle.trials.values()} == {
        "a", "b"}


class _OldCustomLoop(hpstore.Tuner):
    """KerasTuner's older custom-training-loop guide: epoch hooks called by hand."""

    def run_trial(self, trial):
        self.on_epoch_end(trial, None, 0, logs={"loss": 1.0})
        return 1.0


def test_kerastuners_epoch_hooks_called_by_hand_say_to_report_instead():
    tuner = _OldCustomLoop(oracle(max_trials=1), verbose=0)
    tuner.search()  # (a mistake in the trial's code: it fails, with why)
    message = tuner.oracle.trials["0"].message
    assert "no 'on_epoch_end'" in message and "self.report(trial, logs, step=epoch)" in message


class _ReportsThroughTheOracle(hpstore.Tuner):
    def run_trial(self, trial):
        for epoch, loss in enumerate([5.0, 4.0, 3.0]):
            self.oracle.update_trial(trial.trial_id, {"loss": loss}, step=epoch)
        return {"loss": 0.5}  # (a test loss, say)


class _ReportsItself(_ReportsThroughTheOracle):
    def run_trial(self, trial):
        for epoch, loss in enumerate([5.0, 4.0, 3.0]):
            self.report(trial, {"loss": loss}, step=epoch)
        return {"loss": 0.5}


@pytest.mark.parametrize("tuner_class", [_ReportsThroughTheOracle, _ReportsItself])
def test_a_value_returned_after_the_objective_was_reported_is_not_recorded(tuner_class):
    # KerasTuner ignores it; here it was recorded at step 0 through the oracle, and
    # averaged with that epoch's 5.0 into a score of 2.75 that no epoch reached
    tuner = tuner_class(oracle(max_trials=1), verbose=0)
    tuner.search()
    trial = tuner.oracle.trials["0"]
    assert (trial.status, trial.score, trial.best_step) == ("COMPLETED", 3.0, 2)
    assert [o.value for o in trial.metrics.get_history("loss")] == [[5.0], [4.0], [3.0]]


def test_tuner_id_read_after_a_search_in_another_thread_is_the_one_it_ran_under(tmp_path):
    # its trials were recorded as worker-<pid>-t<thread>, and tuner.tuner_id read on the
    # main thread said worker-<pid>: `hpstore history --worker` of it found nothing
    import os
    import threading

    hp = hpstore.HyperParameters()
    hp.Int("a", 1, 30)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=2, hyperparameters=hp,
                                        database=str(tmp_path / "s.db"))
    tuner = hpstore.Tuner(oracle, run_trial=lambda trial: 1.0, verbose=0)
    assert tuner.tuner_id == f"worker-{os.getpid()}"  # (no search yet: this thread's)
    thread = threading.Thread(target=tuner.search)
    thread.start()
    thread.join()
    recorded = {t.tuner_id for t in oracle.trials.values()}
    assert recorded == {tuner.tuner_id} and tuner.tuner_id.endswith(
        f"-t{thread.native_id}")
    oracle.max_trials = 3
    tuner.search()  # on this thread: its own name again, for this search and after it
    assert {t.tuner_id for t in oracle.trials.values()} == recorded | {tuner.tuner_id}
    assert tuner.tuner_id == f"worker-{os.getpid()}"
    oracle.close()
