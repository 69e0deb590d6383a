"""Tuner: result conversion, errors, summaries, what a trial declares while it runs (real
processes, Ctrl-C and store failures: test_tuner_processes.py)."""

from __future__ import annotations

import sqlite3
import sys
from decimal import Decimal

import numpy as np
import pytest
from _tuners import oracle

import hpstore
from hpstore.results import to_metrics, validate_results


# -- results -------------------------------------------------------------------------------------
def test_results_are_converted_as_kerastuner_does():
    loss = hpstore.Objective("loss", "min")
    assert to_metrics(0.5, loss) == {"loss": 0.5}
    assert to_metrics({"loss": 1, "acc": 0.5}, loss) == {"loss": 1.0, "acc": 0.5}
    assert to_metrics([{"loss": 1.0}, {"loss": 3.0}], loss) == {"loss": 2.0}
    assert to_metrics([1.0, 2.0, 6.0], loss) == {"loss": 3.0}
    with pytest.raises(hpstore.FatalError, match="forget to return"):
        validate_results(None, loss, "run_trial()")
    with pytest.raises(hpstore.FatalError, match="'loss'"):
        validate_results({"acc": 1.0}, loss, "run_trial()")
    with pytest.raises(TypeError, match="'seven'"):
        validate_results("seven", loss, "run_trial()")
    both = hpstore.MultiObjective([loss, hpstore.Objective("acc", "max")])
    with pytest.raises(ValueError, match="several metrics"):
        validate_results(1.0, both, "run_trial()")
    # an empty list is a fatal mistake of its own (it was an IndexError in every trial),
    # and a list's bad item is named as one
    for empty in ([], ()):
        with pytest.raises(hpstore.FatalError, match="returned an empty"):
            validate_results(empty, loss, "run_trial()")
    with pytest.raises(hpstore.FatalError, match=r"an item of its list\) is None"):
        validate_results([None, 0.5], loss, "run_trial()")
    assert to_metrics([1.7e308, 1.7e308], loss) == {"loss": 1.7e308}  # (not an overflow)


def test_a_run_trial_returning_an_empty_list_stops_the_search_at_once(tmp_path):
    tuner = hpstore.Tuner(oracle(str(tmp_path / "e.db"), max_trials=3),
                          run_trial=lambda trial: [], verbose=0)
    with pytest.raises(hpstore.FatalError, match="empty list"):
        tuner.search()
    assert [t.status for t in tuner.oracle.trials.values()] == ["FAILED"]


BAD_VALUES = ["1.5", "inf", True, Decimal("1.5"), None, np.array([1.0, 2.0])]
# Returned alone, a string is a return of the wrong type and None a forgotten return: both
# FatalErrors with messages of their own (tested above).
BAD_RETURNS = [(bad, shape) for bad in BAD_VALUES for shape in ("dict", "list", "single")
               if not (shape == "single" and (bad is None or isinstance(bad, str)))]


@pytest.mark.parametrize(("bad", "shape"), BAD_RETURNS, ids=repr)
def test_a_returned_metric_that_is_not_a_number_fails_the_trial_and_stops(bad, shape):
    result = {"dict": {"loss": bad}, "list": [{"loss": 1.0}, {"loss": bad}],
              "single": bad}[shape]
    o = oracle(max_trials=4)
    with pytest.raises(hpstore.InvalidMetricError) as raised:
        hpstore.Tuner(o, run_trial=lambda t: result, verbose=0).search()
    # the very error update_trial gives for the same value
    other = oracle(max_trials=1)
    trial = other.create_trial("w")
    with pytest.raises(hpstore.InvalidMetricError) as direct:
        other.update_trial(trial.trial_id, {"loss": bad})
    assert str(raised.value) == str(direct.value)
    assert len(o.trials) == 1  # the search stopped at the first trial
    failed = o.get_trial("0")
    assert failed.status == "FAILED" and failed.score is None
    assert "InvalidMetricError" in failed.message and "'loss'" in failed.message


def test_a_reported_metric_that_is_not_a_number_fails_the_trial_and_stops():
    class Reporter(hpstore.Tuner):
        def run_trial(self, trial):
            self.report(trial, {"loss": 1.0}, step=0)
            self.report(trial, {"loss": "0.5"}, step=1)

    o = oracle(max_trials=4)
    with pytest.raises(hpstore.InvalidMetricError, match=r"'0\.5'"):
        Reporter(o, verbose=0).search()
    assert len(o.trials) == 1 and o.get_trial("0").status == "FAILED"


def test_a_report_without_the_objective_stops_the_search_and_says_what_to_do():
    # a misspelt metric name in report() was KerasTuner's bare "Objective value missing"
    # ValueError: each trial failed the same way, the search went on until three in a row
    # had, and a search of four trials was then used up by the one typo
    class Reporter(hpstore.Tuner):
        def run_trial(self, trial):
            self.report(trial, {"los": 1.0, "acc": 0.5}, step=0)

    o = oracle(max_trials=4)
    with pytest.raises(hpstore.MissingObjectiveError) as raised:
        Reporter(o, verbose=0).search()
    assert isinstance(raised.value, ValueError)  # what KerasTuner raises for it
    text = str(raised.value)
    assert "['loss']" in text and "'los' for 'loss'" in text and "Nothing was recorded" in text
    assert len(o.trials) == 1 and o.get_trial("0").status == "FAILED"
    assert not o.get_trial("0").metrics.exists("acc")  # nothing of the report was kept
    # the same from an oracle loop
    trial = o.create_trial("w")
    with pytest.raises(hpstore.MissingObjectiveError, match=f"trial {trial.trial_id} "):
        o.update_trial(trial.trial_id, {"val_loss": 0.5})
    assert o.get_trial(trial.trial_id).status == "RUNNING"  # it can still report


@pytest.mark.parametrize("workers", [0, -1, 2.0, "2", True], ids=repr)
def test_workers_that_are_not_a_count_of_processes_are_refused_before_anything_runs(
        workers):
    # -1 (joblib's "every core") and 0 ran the whole search in this process without a
    # word; "2" and 2.0 were a bare TypeError from a comparison inside search()
    o = oracle(max_trials=2)
    with pytest.raises(ValueError, match=f"`workers` must be .*received {workers!r}"):
        hpstore.Tuner(o, run_trial=lambda t: 1.0, verbose=0).search(workers=workers)
    assert o.trials == {}


def test_metrics_for_an_oracle_given_no_objective_say_to_give_it_one():
    # with no objective, a dict returned or reported was said to lack "the objective
    # ['default_objective']", a name the user never wrote, with nothing on what to do
    o = oracle(objective=None, max_trials=3)
    with pytest.raises(hpstore.FatalError) as returned:
        hpstore.Tuner(o, run_trial=lambda t: {"loss": 1.0, "acc": 0.5}, verbose=0).search()
    text = str(returned.value)
    assert "no objective" in text and 'objective="NAME"' in text
    assert "['acc', 'loss']" in text and "default_objective" not in text
    assert len(o.trials) == 1 and o.get_trial("0").status == "FAILED"
    trial = o.create_trial("w")
    with pytest.raises(hpstore.MissingObjectiveError) as reported:
        o.update_trial(trial.trial_id, {"loss": 1.0})
    text = str(reported.value)
    assert "no objective" in text and 'objective="NAME"' in text
    assert "['loss']" in text and "default_objective" not in text
    assert o.get_trial(trial.trial_id).status == "RUNNING"


class _Model:
    def build(self, hp):
        hp.Int("units", 1, 3)


@pytest.mark.parametrize(("given", "words"), [
    ({"run_trial": "train"}, "`run_trial` must be a function run_trial(trial, ...), "
                             "received 'train'"),
    ({"hypermodel": _Model, "run_trial": lambda t: 1.0},
     "`hypermodel` is the class _Model: pass an instance of it, hypermodel=_Model()")],
    ids=["run_trial a string", "hypermodel a class"])
def test_a_tuner_given_what_cannot_run_a_trial_is_refused_before_any_runs(given, words):
    # a run_trial that cannot be called failed every trial ("'str' object is not
    # callable") until three in a row had; a hypermodel class had its build called
    # unbound ("missing 1 required positional argument: 'hp'")
    o = oracle(max_trials=4)
    with pytest.raises(TypeError) as info:
        hpstore.Tuner(o, verbose=0, **given).search()
    assert words in str(info.value)
    assert o.trials == {}


def test_torch_and_numpy_scalars_returned_are_scores():
    torch = pytest.importorskip("torch")
    results = iter([torch.tensor(1.5), np.float32(2.5), np.array(0.25),
                    {"loss": torch.tensor([3.5]), "acc": np.float64(0.5)}])
    o = oracle(max_trials=4)
    hpstore.Tuner(o, run_trial=lambda t: next(results), verbose=0).search()
    assert sorted(o.get_trial(str(i)).score for i in range(4)) == [0.25, 1.5, 2.5, 3.5]
    assert all(o.get_trial(str(i)).status == "COMPLETED" for i in range(4))


def test_a_keras_history_returned_is_scored_on_its_best_epoch_as_kerastuner_does():
    # hpstore.Tuner refused what model.fit returns ("must be a float, a dict of metrics
    # or a list of them"), which KerasTuner's BaseTuner scores on its best epoch
    keras = pytest.importorskip("keras")

    def history(logs):
        made = keras.callbacks.History()
        made.history = logs
        return made

    accuracy = hpstore.Objective("val_acc", "max")
    fitted = history({"loss": [3.0, 1.0, 2.0], "val_acc": [0.5, float("nan"), 0.75]})
    assert to_metrics(fitted, accuracy) == {"loss": 2.0, "val_acc": 0.75}
    minimised = to_metrics(fitted, hpstore.Objective("loss", "min"))  # (its epoch 1)
    assert minimised["loss"] == 1.0 and np.isnan(minimised["val_acc"])
    with pytest.raises(hpstore.FatalError, match="'val_acc'"):
        validate_results(history({"loss": [1.0]}), accuracy, "run_trial()")
    results = iter([history({"loss": [4.0, 0.5, 2.0]}), [history({"loss": [1.0]}),
                                                        history({"loss": [3.0, 2.0]})],
                    history({"loss": [4.0, 3.0, 2.0, 2.5]}), 7.0])
    o = oracle(max_trials=4)
    hpstore.Tuner(o, run_trial=lambda t: next(results), verbose=0).search()
    assert [o.get_trial(str(i)).score for i in range(4)] == [0.5, 1.5, 2.0, 7.0]
    # at the step of its best epoch, as KerasTuner records it (its load_model loads the
    # checkpoint of best_step): each was at step 0; a list's is its mean, cut to a whole
    # number; a plain number's, 0
    assert [o.get_trial(str(i)).best_step for i in range(4)] == [1, 0, 2, 0]


@pytest.mark.parametrize("step, error", [(1.0, hpstore.FatalTypeError),
                                         ("1", hpstore.FatalTypeError),
                                         (2**63, hpstore.FatalValueError)])
def test_a_report_at_a_step_that_is_no_whole_number_stops_the_search(step, error):
    # every trial failed on it, one after the other, until the failures in a row stopped
    # the search (or it ended normally with them FAILED): a mistake every trial repeats
    o = oracle(max_trials=5)

    def run_trial(trial):
        tuner.report(trial, {"loss": 1.0}, step=step)
        return 1.0

    tuner = hpstore.Tuner(o, run_trial=run_trial, verbose=0)
    with pytest.raises(error, match=r"the step of tuner\.report"):
        tuner.search()
    assert [t.status for t in o.trials.values()] == ["FAILED"]


def test_report_sets_the_trials_status_once_it_was_stopped():
    # report() returned True but the trial run_trial holds still said RUNNING
    o = oracle(max_trials=1, early_stopping=hpstore.Threshold(upper=1.0))
    seen = []

    def run_trial(trial):
        for step, loss in enumerate([0.5, 5.0]):
            stopped = tuner.report(trial, {"loss": loss}, step=step)
            seen.append((stopped, trial.status))
        return None

    tuner = hpstore.Tuner(o, run_trial=run_trial, verbose=0)
    tuner.search()
    assert seen == [(False, "RUNNING"), (True, "STOPPED")]


def test_a_float_result_with_no_objective_is_minimised():
    tuner = hpstore.Tuner(oracle(objective=None, max_trials=5),
                          run_trial=lambda t: (t.hyperparameters["x"] - 1) ** 2, verbose=0)
    tuner.search()
    best = tuner.get_best_trials(5)
    assert [t.score for t in best] == sorted(t.score for t in best)
    assert best[0].score == pytest.approx((best[0].hyperparameters["x"] - 1) ** 2)
    assert tuner.get_best_hyperparameters(1)[0].values == best[0].hyperparameters.values


def test_search_passes_its_arguments_to_run_trial():
    seen = []

    def run(trial, data, scale=1.0):
        seen.append((data, scale))
        return scale * trial.hyperparameters["n"]

    hpstore.Tuner(oracle(max_trials=3), run_trial=run, verbose=0).search("D", scale=2.0)
    assert seen == [("D", 2.0)] * 3


def test_error_classes_mark_trials(tmp_path):
    calls = []

    def run(trial):
        calls.append(trial.trial_id)
        n = len(calls)
        if n == 1:
            raise hpstore.FailedTrialError("bad values")
        if n == 2:
            raise ZeroDivisionError("flaky")
        return 1.0

    o = oracle(str(tmp_path / "e.db"), max_trials=3, max_retries_per_trial=1)
    hpstore.Tuner(o, run_trial=run, verbose=0).search()
    first, second = o.get_trial(calls[0]), o.get_trial(calls[1])
    assert first.status == "FAILED" and "bad values" in first.message
    assert second.status == "COMPLETED" and second.run == 2  # INVALID, retried, completed
    log = sqlite3.connect(tmp_path / "e.db").execute(
        "SELECT to_status, message FROM status_log WHERE trial_id = ? ORDER BY at_unix",
        (calls[1],)).fetchall()
    assert [s for s, _ in log] == ["RUNNING", "INVALID", "RUNNING", "COMPLETED"]
    assert "Traceback" in log[1][1] and "ZeroDivisionError: flaky" in log[1][1]


def test_fatal_error_stops_the_search():
    def run(trial):
        raise hpstore.FatalError("cannot go on")

    o = oracle(max_trials=5)
    with pytest.raises(hpstore.FatalError, match="cannot go on"):
        hpstore.Tuner(o, run_trial=run, verbose=0).search()
    assert len(o.trials) == 1 and o.get_trial("0").status == "FAILED"


def test_a_tuner_with_nothing_to_run_stops_at_its_first_trial():
    o = oracle(max_trials=5)
    with pytest.raises(hpstore.FatalError, match="Nothing to run") as raised:
        hpstore.Tuner(o, verbose=0).search()
    assert isinstance(raised.value, NotImplementedError)  # (what it raised before)
    assert len(o.trials) == 1 and o.get_trial("0").status == "FAILED"


def test_none_result_is_a_fatal_error_unless_reported():
    with pytest.raises(hpstore.FatalError, match="forget"):
        hpstore.Tuner(oracle(), run_trial=lambda t: None, verbose=0).search()


def test_metrics_reported_through_the_oracle_or_another_tuner_count_as_reported(tmp_path):
    # run_trial reporting with oracle.update_trial (KerasTuner allows it) and returning
    # nothing: every trial was FAILED "did you forget to return the metrics?"
    o = oracle(max_trials=3)

    def through_the_oracle(trial):
        o.update_trial(trial.trial_id, {"loss": 2.0}, step=0)
        o.update_trial(trial.trial_id, {"loss": 1.5}, step=1)

    hpstore.Tuner(o, run_trial=through_the_oracle, verbose=0).search()
    assert [(t.status, t.score, t.best_step) for t in o.trials.values()] == [
        ("COMPLETED", 1.5, 1)] * 3
    # ... and through another Tuner of the same search (a script's module-level `tuner`,
    # which each worker process imports afresh)
    path = str(tmp_path / "other.db")
    other = oracle(path, max_trials=2)
    reporter = hpstore.Tuner(oracle(path, max_trials=2), verbose=0)  # an oracle of its own

    def through_another_tuner(trial):
        reporter.report(trial, {"loss": 3.0})

    hpstore.Tuner(other, run_trial=through_another_tuner, verbose=0).search()
    assert [(t.status, t.score) for t in other.trials.values()] == [("COMPLETED", 3.0)] * 2


@pytest.mark.parametrize("verbose", [0, 1])
def test_a_trial_ended_elsewhere_while_it_ran_is_left_and_the_search_goes_on(
        tmp_path, capsys, verbose):
    # A trial handed to another worker while this one ran it (on a server: this worker
    # was cut off long enough to look dead), or ended by another object, made end_trial
    # raise TrialNotRunningError out of search(): the worker, alive, stopped its search
    path = str(tmp_path / "gone.db")
    mine, other = oracle(path, max_trials=3), oracle(path, max_trials=3)
    taken = []

    def run_trial(trial):
        if not taken:  # the first trial is ended meanwhile by another object
            taken.append(trial.trial_id)
            other.update_trial(trial.trial_id, {"loss": 50.0})
            ended = other.get_trial(trial.trial_id)
            ended.status = "COMPLETED"
            other.end_trial(ended)
        return 1.0

    hpstore.Tuner(mine, run_trial=run_trial, verbose=verbose).search()
    trials = {t.trial_id: t for t in oracle(path).trials.values()}
    assert [(t.status, t.score) for t in trials.values()] == [
        ("COMPLETED", 50.0 if tid == taken[0] else 1.0) for tid in trials]
    assert len(trials) == 3  # the search went on to its end
    out = capsys.readouterr()
    said = f"Trial {taken[0]} is COMPLETED, not running"
    assert (said in out.out + out.err) == bool(verbose)


@pytest.mark.parametrize("reports", [False, True])
def test_a_trial_lost_with_the_servers_last_commits_is_left_and_the_search_goes_on(
        tmp_path, capsys, reports):
    # a server that crashed with durability="normal" lost the worker's trial: end_trial (or
    # the report before it) raised TrialNotFoundError out of search() and the worker died,
    # leaving the search short of max_trials until someone ran it again
    path = str(tmp_path / "lost.db")
    lost = []

    def run_trial(trial):
        if not lost:
            lost.append(trial.trial_id)
            with sqlite3.connect(path) as conn:  # (what the lost commits leave behind)
                conn.execute("DELETE FROM trials WHERE trial_id = ?", (trial.trial_id,))
            if reports:
                tuner.report(trial, {"loss": 2.0}, step=0)
        return 1.0

    tuner = hpstore.Tuner(oracle(path, max_trials=3), run_trial=run_trial, verbose=1)
    tuner.search()
    trials = list(oracle(path).trials.values())
    assert len(trials) == 3 and {t.status for t in trials} == {"COMPLETED"}
    out = capsys.readouterr()
    assert "which this process was running" in out.out + out.err
    assert "Going on with the next trial" in out.out + out.err


def test_report_per_step_and_stop_signal():
    o = oracle(max_trials=2)
    stops = []

    class Stepper(hpstore.Tuner):
        def run_trial(self, trial):
            for epoch in range(4):
                if epoch == 2:  # someone stops the trial from outside
                    o.project.set_status(trial.trial_id, "STOPPED", "enough")
                if self.report(trial, {"loss": 4.0 - epoch}, step=epoch):
                    stops.append(epoch)
                    break

    Stepper(o, verbose=0).search()
    assert stops == [2, 2]
    trial = o.get_trial("0")
    assert [obs.step for obs in trial.metrics.get_history("loss")] == [0, 1, 2]
    # stopped from outside, it ends STOPPED, scored on the best value it reached
    assert trial.score == 2.0 and trial.best_step == 2 and trial.status == "STOPPED"


def test_hypermodel_build_declares_the_space_and_fit_runs():
    class HyperModel:
        def build(self, hp):
            units = hp.Int("units", 1, 4)
            with hp.conditional_scope("units", [4]):
                hp.Boolean("wide")
            return {"units": units}

        def fit(self, hp, model, target):
            return {"loss": abs(model["units"] - target)}

    tuner = hpstore.Tuner(oracle(hyperparameters=None, max_trials=4), hypermodel=HyperModel(),
                          verbose=0)
    assert [h.name for h in tuner.oracle.get_space().space] == ["units", "wide"]
    tuner.search(3)
    assert tuner.get_best_trials(1)[0].score == 0.0


def _units(hp):
    return hp.Int("units", 1, 4)


class _BuildsItself(hpstore.Tuner):
    def run_trial(self, trial, target):
        # KerasTuner's custom-tuner pattern: a function given as the hypermodel is wrapped,
        # so this works there (it was an AttributeError on the bare function here)
        return {"loss": abs(self.hypermodel.build(trial.hyperparameters) - target)}


def test_a_build_function_is_a_hypermodel_with_build_as_in_kerastuner():
    tuner = _BuildsItself(oracle(hyperparameters=None, max_trials=4), hypermodel=_units,
                          verbose=0)
    assert tuner.hypermodel.build(hpstore.HyperParameters()) == 1  # the default: its min
    assert tuner.hypermodel(hpstore.HyperParameters()) == 1  # still callable as given
    assert not hasattr(tuner.hypermodel, "fit")  # the default run_trial has none to call
    tuner.search(3)
    assert {t.status for t in tuner.oracle.trials.values()} == {"COMPLETED"}
    assert tuner.get_best_trials(1)[0].score == 0.0


class _Hooked(hpstore.Tuner):
    """Records KerasTuner's BaseTuner hooks as they are called."""

    def __init__(self, *args, fail_in=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls, self.fail_in = [], fail_in

    def on_search_begin(self):
        self.calls.append("search begins")

    def on_trial_begin(self, trial):
        self.calls.append(("begins", trial.trial_id, trial.status))
        if self.fail_in == "begin":
            raise RuntimeError("a logger that cannot start")

    def run_trial(self, trial):
        return trial.hyperparameters.values["x"] ** 2

    def on_trial_end(self, trial):
        self.calls.append(("ends", trial.trial_id, trial.status))
        if self.fail_in == "end":
            raise RuntimeError("a logger that cannot write")

    def on_search_end(self):
        self.calls.append("search ends")


def test_kerastuners_hooks_are_called_around_each_trial_and_the_search():
    # they were never called: a subclass's overrides were silently ignored
    tuner = _Hooked(oracle(max_trials=2), verbose=0)
    tuner.search()
    assert tuner.calls == ["search begins", ("begins", "0", "RUNNING"),
                           ("ends", "0", "COMPLETED"), ("begins", "1", "RUNNING"),
                           ("ends", "1", "COMPLETED"), "search ends"]


def test_a_hook_that_raises_fails_its_trial_or_stops_the_search_after_its_end(tmp_path):
    begins = _Hooked(oracle(str(tmp_path / "begin.db"), max_trials=2), verbose=0,
                     fail_in="begin")
    begins.search()  # as run_trial raising: the trial fails (no retry left), with why
    assert {t.status for t in begins.oracle.trials.values()} == {"FAILED"}
    assert "a logger that cannot start" in begins.oracle.trials["0"].message
    assert ("ends", "0", "FAILED") in begins.calls  # (its end recorded, then told)
    ends = _Hooked(oracle(str(tmp_path / "end.db"), max_trials=2), verbose=0, fail_in="end")
    with pytest.raises(RuntimeError, match="cannot write"):
        ends.search()
    assert ends.oracle.trials["0"].status == "COMPLETED"  # kept as recorded
    assert "search ends" not in ends.calls


def test_summaries(capsys):
    tuner = hpstore.Tuner(oracle(max_trials=2), run_trial=lambda t: t.hyperparameters["n"],
                          verbose=0)
    tuner.search_space_summary()
    out = capsys.readouterr().out.splitlines()
    assert out == ["Search space summary", "Default search space size: 2",
                   "x (Float): -5.0 .. 5.0", "n (Int): 1 .. 3"]
    tuner.search()
    tuner.results_summary(1)
    out = capsys.readouterr().out
    assert out.startswith("Results summary\nResults in :memory: (project 'untitled_project')\n"
                          "Showing 1 best trials\nObjective(name=\"loss\", direction=\"min\")\n")
    best = tuner.get_best_trials(1)[0]
    assert f"Trial {best.trial_id} summary" in out and f"Score: {best.score}" in out


def test_search_space_summary_is_one_readable_line_per_hyperparameter(capsys):
    def build(hp):
        hp.Float("lr", 1e-5, 0.1, sampling="log")
        kind = hp.Choice("kind", ["a", "b", "c"], default="b")
        with hp.conditional_scope("kind", ["b"]):
            hp.Int("units", 8, 64, step=8)
            with hp.conditional_scope("units", [8, 16]):
                hp.Boolean("wide")
        hp.Float("rate", 0, 1, step=0.25, default=0.5)
        hp.Fixed("batch", 32)
        hp.Choice("many", list(range(1000)))
        return kind

    tuner = hpstore.Tuner(oracle(hyperparameters=None), hypermodel=build, verbose=0)
    tuner.search_space_summary()
    out = capsys.readouterr().out.splitlines()
    assert out[:8] == [
        "Search space summary",
        "Default search space size: 7",
        "lr (Float): 1e-05 .. 0.1, log",
        "kind (Choice): a, b, c; default b",
        "units (Int): 8 .. 64, step 8; when kind in ['b']",
        "wide (Boolean): True, False, default False; when kind in ['b'] and units in [8, 16]",
        "rate (Float): 0.0 .. 1.0, step 0.25, default 0.5",
        "batch (Fixed): 32",
    ]
    assert out[8].startswith("many (Choice): 0, 1, 2, ") and out[8].endswith(
        "19, ... (1,000 values)")
    assert len(out) == 9


def test_progress_lines_have_no_control_characters_when_not_a_terminal(capsys):
    tuner = hpstore.Tuner(oracle(max_trials=3), run_trial=lambda t: 1.0, verbose=1)
    tuner.search()
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out
    lines = [line for line in out.splitlines() if line.lstrip("[ ").split("]")[0].endswith("s")]
    assert len(lines) == 3 and "(3/3)" in lines[-1]
    assert "Search finished." in out and "Best trial:" in out


def test_what_a_search_prints_of_its_names_and_values_is_escaped(tmp_path, capsys):
    # the end-of-search "Best trial:" block, results_summary() and Trial.summary() printed
    # the search's names and values raw (the progress lines escaped them): a sequence held
    # in a shared file set the window title and cleared the screen
    esc = "\x1b]0;owned\x07\x1b[2J"
    hp = hpstore.HyperParameters()
    hp.Choice("act" + esc, ["relu", "tanh" + esc])
    tuner = hpstore.Tuner(hpstore.GridSearchOracle("loss", hyperparameters=hp,
                                                   database=str(tmp_path / "e.db")),
                          run_trial=lambda t: 1.0, verbose=1)
    tuner.search()
    tuner.results_summary(2)
    tuner.search_space_summary()
    tuner.oracle.get_best_trials(1)[0].summary()
    out = capsys.readouterr().out
    assert "Best trial:" in out and "Results summary" in out
    assert "\x1b" not in out and "\x07" not in out
    assert out.count("act\\x1b]0;owned\\x07\\x1b[2J: ") >= 3  # (shown as escapes)
    tuner.oracle.close()


def test_a_message_quoting_another_workers_tuner_id_is_escaped(tmp_path, capsys):
    from hpstore.progress import Progress

    oracle = hpstore.RandomSearchOracle("loss", max_trials=1, database=str(tmp_path / "m.db"))
    progress = Progress(oracle.project, "min", verbose=1, stream=sys.stdout)
    progress.message("waiting for trial 0000 (evil\x1b[2J)\nnext line")
    assert capsys.readouterr().out.endswith("waiting for trial 0000 (evil\\x1b[2J)\nnext line\n")
    oracle.close()


def test_quiet_with_verbose_zero(capsys):
    hpstore.Tuner(oracle(max_trials=3), run_trial=lambda t: 1.0, verbose=0).search()
    assert capsys.readouterr().out == ""


def test_finished_search_says_so(tmp_path, capsys):
    path = str(tmp_path / "done.db")
    hpstore.Tuner(oracle(path, max_trials=2), run_trial=lambda t: 1.0, verbose=0).search()
    ran = []

    class Hooked(hpstore.Tuner):
        # KerasTuner calls these on a finished search too: a report or an export of the
        # best model in on_search_end did not run again
        def on_search_begin(self):
            ran.append("begin")

        def pre_create_trial(self):
            ran.append("ask")

        def on_search_end(self):
            ran.append("end")

    Hooked(oracle(path, max_trials=2), run_trial=lambda t: ran.append(1), verbose=1).search()
    assert ran == ["begin", "ask", "end"]
    assert "already finished" in capsys.readouterr().out


# -- what a trial declares while it runs ---------------------------------------------------------
class FitChooses:
    """A hypermodel whose ``fit`` declares a hyperparameter the build never does."""

    def __init__(self, choices):
        self.choices = list(choices)

    def build(self, hp):
        return hp.Float("x", -5, 5)

    def fit(self, hp, model, *args, **kwargs):
        return {"loss": model ** 2 + hp.Choice("b", self.choices)}


def test_a_hyperparameter_fit_now_declares_differently_is_refused_naming_it(tmp_path):
    path = str(tmp_path / "s.db")

    def run(choices, max_trials):
        searcher = hpstore.RandomSearchOracle("loss", max_trials=max_trials, seed=1,
                                              database=path)
        hpstore.Tuner(searcher, FitChooses(choices), verbose=0).search()
        return searcher

    run([1, 2], 2)
    with pytest.raises(hpstore.ProjectMismatchError, match=r"'b'.*\[1, 5\]"):
        run([1, 5], 4)
    # the trial that met the new definition is handed back, not scored on the old one
    with sqlite3.connect(path) as conn:
        assert dict(conn.execute("SELECT trial_id, status FROM trials")) == {
            "0": "COMPLETED", "1": "COMPLETED", "2": "IDLE"}
    # the same definition again (the script put back) resumes and finishes
    assert len(run([1, 2], 4).get_best_trials(10)) == 4


class RangeDepends:
    """A range that depends on another value: in build (discovery's concern, as before),
    or in fit, where only the first definition of a name ever holds."""

    def __init__(self, in_fit=False):
        self.in_fit = in_fit

    def build(self, hp):
        return hp.Int("units", 4, 64 if hp.Boolean("big") else 16)

    def fit(self, hp, model, *args, **kwargs):
        top = 1.0 if self.in_fit and model > 8 else 0.5
        return {"loss": model + hp.Float("rate", 0.0, top)}


def test_a_range_that_depends_on_another_value_runs_in_build_and_is_explained_in_fit(
        tmp_path):
    for max_trials in (6, 12):  # a fresh search, then resumed by another Tuner
        searcher = hpstore.RandomSearchOracle("loss", max_trials=max_trials, seed=1,
                                              database=str(tmp_path / "a.db"))
        hpstore.Tuner(searcher, RangeDepends(), verbose=0).search()
    assert [t.status for t in searcher.trials.values()] == ["COMPLETED"] * 12
    # in fit the second range would be dropped without a word (as KerasTuner does): said
    searcher = hpstore.RandomSearchOracle("loss", max_trials=12, seed=1,
                                          database=str(tmp_path / "b.db"))
    with pytest.raises(hpstore.ProjectMismatchError, match="'rate'") as caught:
        hpstore.Tuner(searcher, RangeDepends(in_fit=True), verbose=0).search()
    # (in the message itself, which a trial's log and a notebook show, not in a note;
    # no "overwrite=True": the next trial would declare it so again)
    said = str(caught.value)
    assert "a name of its own for each range" in said and "in fit or run_trial" in said
    assert "overwrite" not in said and "hypermodel" not in said


class PicklesItsValues:
    """A fit that hands its hyperparameters on (to another process, say): they pickle and
    copy while the trial's declarations are watched."""

    def build(self, hp):
        return hp.Float("x", -5, 5)

    def fit(self, hp, model, *args, **kwargs):
        import copy
        import pickle
        again = pickle.loads(pickle.dumps(hp))
        assert type(again) is type(hp) and again.values == copy.deepcopy(hp).values
        return {"loss": model ** 2 + again.Choice("b", [1, 2])}


def test_hyperparameters_pickle_and_copy_while_a_trial_runs(tmp_path):
    searcher = hpstore.RandomSearchOracle("loss", max_trials=3, seed=1,
                                          database=str(tmp_path / "s.db"))
    hpstore.Tuner(searcher, PicklesItsValues(), verbose=0).search()
    assert [t.status for t in searcher.trials.values()] == ["COMPLETED"] * 3
