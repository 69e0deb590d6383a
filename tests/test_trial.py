"""Trial, TrialStatus, and the metric histories a trial carries."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hpstore
from hpstore import (
    HyperParameters,
    MetricHistory,
    MetricObservation,
    MetricsTracker,
    Trial,
    TrialStatus,
)
from hpstore.trial import check_metric, check_status

# -- status -----------------------------------------------------------------------------------


def test_status_values_are_plain_strings():
    assert [TrialStatus.RUNNING, TrialStatus.IDLE, TrialStatus.INVALID, TrialStatus.STOPPED,
            TrialStatus.COMPLETED, TrialStatus.FAILED] == [
        "RUNNING", "IDLE", "INVALID", "STOPPED", "COMPLETED", "FAILED"]
    assert set(TrialStatus.ALL) == {"RUNNING", "IDLE", "INVALID", "STOPPED", "COMPLETED",
                                    "FAILED"}


def test_status_can_be_set_from_a_string():
    trial = Trial(HyperParameters(), trial_id="1")
    assert trial.status == TrialStatus.RUNNING
    trial.status = "COMPLETED"
    assert trial.status == TrialStatus.COMPLETED == "COMPLETED"
    assert Trial(HyperParameters(), status="IDLE").status == "IDLE"


@pytest.mark.parametrize("bad", ["BOGUS", "completed", "", None, 3])
def test_unknown_status_is_a_value_error(bad):
    trial = Trial(HyperParameters())
    with pytest.raises(ValueError, match="Unknown trial status") as info:
        trial.status = bad
    assert repr(bad) in str(info.value) and "COMPLETED" in str(info.value)
    assert trial.status == "RUNNING"
    with pytest.raises(ValueError, match=repr(bad)):
        Trial(HyperParameters(), status=bad)
    with pytest.raises(ValueError):
        check_status(bad)


# -- MetricHistory ----------------------------------------------------------------------------


def test_observations_at_one_step_are_averaged():
    history = MetricHistory("min")
    history.update(3.0, step=0)
    history.update(1.0, step=0)
    history.update(2.5, step=1)
    assert history.get_history() == [MetricObservation([3.0, 1.0], 0),
                                     MetricObservation([2.5], 1)]
    assert history.get_history()[0].mean() == 2.0
    assert history.get_best_value() == 2.0
    assert history.get_best_step() == 0
    assert history.get_last_value() == 2.5


@pytest.mark.parametrize("engine", ["file", "memory"])
def test_values_near_the_float_range_are_averaged_not_overflowed(tmp_path, engine):
    # two reports of 1.7e308 at one step: their sum passes the float range, their mean
    # does not (the second report raised OverflowError from the stopping rules' curve)
    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 1)
    oracle = hpstore.RandomSearchOracle(
        "loss", max_trials=2, hyperparameters=hp, seed=1,
        database=str(tmp_path / "big.db") if engine == "file" else None)
    trial = oracle.create_trial("w")
    for _ in range(2):
        oracle.update_trial(trial.trial_id, {"loss": 1.7e308}, step=0)
    oracle.update_trial(trial.trial_id, {"loss": -1.7e308}, step=1)
    oracle.update_trial(trial.trial_id, {"loss": -1.7e308}, step=1)
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    history = oracle.get_trial(trial.trial_id).metrics.get_history("loss")
    assert [o.mean() for o in history] == [1.7e308, -1.7e308]
    stats = oracle.get_trial(trial.trial_id).metrics.get_statistics("loss")
    assert stats["mean"] == 0.0 and stats["var"] == math.inf
    assert oracle.get_trial(trial.trial_id).score == -1.7e308
    oracle.close()


def test_max_history_and_first_best_step():
    history = MetricHistory("max")
    for step, value in [(0, 0.5), (1, 0.9), (2, 0.7), (3, 0.9)]:
        history.update(value, step)
    assert history.get_best_value() == 0.9
    assert history.get_best_step() == 1


def test_steps_are_ordered_whatever_the_update_order():
    history = MetricHistory("min")
    for step in (5, 1, 3):
        history.update(float(step), step)
    assert [o.step for o in history.get_history()] == [1, 3, 5]
    assert history.get_last_value() == 5.0
    history = MetricHistory("min")
    history.update(1.0, 4)
    history.update(1.0, 2)
    assert history.get_best_step() == 2  # the first step holding the best value


def test_best_value_ignores_nan():
    history = MetricHistory("min")
    history.update(math.nan, 0)
    assert math.isnan(history.get_best_value())
    assert history.get_best_step() is None
    history.update(4.0, 1)
    history.update(math.nan, 2)
    assert history.get_best_value() == 4.0
    assert history.get_best_step() == 1
    history.update(math.nan, 1)  # the mean at step 1 becomes nan
    assert math.isnan(history.get_best_value())


def test_empty_history():
    history = MetricHistory("max")
    assert history.get_best_value() is None
    assert history.get_best_step() is None
    assert history.get_last_value() is None
    assert history.get_statistics() == {}


def test_statistics_over_step_means():
    history = MetricHistory("min")
    for step, value in enumerate([1.0, 3.0, 2.0, 6.0]):
        history.update(value, step)
    stats = history.get_statistics()
    assert stats == {"min": 1.0, "max": 6.0, "mean": 3.0, "median": 2.5,
                     "var": pytest.approx(3.5), "std": pytest.approx(math.sqrt(3.5))}


def test_history_direction_is_checked():
    with pytest.raises(ValueError) as info:
        MetricHistory("up")
    assert str(info.value) == "`direction` should be one of {\"min\", \"max\"}, but got: 'up'"


# -- MetricsTracker ---------------------------------------------------------------------------


def _reference_mean(values):
    try:
        return math.fsum(values) / len(values)
    except ValueError:  # +inf and -inf at one step
        return math.nan


def _reference_best(steps, direction):
    """Best value and step by scanning every step, lowest step first (the definition)."""
    if not steps:
        return None, None
    means = [(s, _reference_mean(v)) for s, v in sorted(steps.items())]
    finite = [m for _, m in means if not math.isnan(m)]
    if not finite:
        return math.nan, None
    best = min(finite) if direction == "min" else max(finite)
    return best, next(s for s, m in means if m == best)


def _same_float(a, b):
    return a == b or (a is not None and b is not None and math.isnan(a) and math.isnan(b))


REPORT_VALUES = st.sampled_from([0.0, -0.0, 1.0, 2.0, 3.0, -1.0, 0.5, math.nan, math.inf,
                                 -math.inf]) | st.floats(-4, 4, width=16)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["min", "max"]),
       st.lists(st.tuples(st.integers(0, 6) | st.integers(-3, 40), REPORT_VALUES),
                max_size=40))
def test_best_value_and_step_match_a_scan_of_every_step(direction, reports):
    # Several values at one step average, which may make an earlier best worse, turn a
    # step NaN, or tie it with another step; steps come in any order.
    tracker = MetricsTracker()
    tracker.register("m", direction)
    steps: dict[int, list[float]] = {}
    for step, value in reports:
        before, _ = _reference_best(steps, direction)
        steps.setdefault(step, []).append(value)
        after, best_step = _reference_best(steps, direction)
        changed = tracker.update("m", value, step=step)
        assert changed == (not _same_float(before, after))
        assert _same_float(tracker.get_best_value("m"), after)
        assert tracker.get_best_step("m") == best_step
        assert _same_float(tracker.get_last_value("m"), _reference_mean(steps[max(steps)]))
    assert [o.step for o in tracker.get_history("m")] == sorted(steps)
    again = MetricsTracker.from_config(tracker.get_config())
    assert again == tracker
    assert _same_float(again.get_best_value("m"), tracker.get_best_value("m"))
    assert again.get_best_step("m") == tracker.get_best_step("m")


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["min", "max"]),
       st.lists(st.tuples(st.sampled_from(["m", "other"]), st.integers(0, 6) | st.integers(-3, 40),
                          REPORT_VALUES), max_size=40))
def test_a_score_worked_out_from_the_rows_is_the_trackers(direction, reports):
    # how end_trial scores a trial (without building its tracker) must agree with
    # score_trial, which reads the tracker
    from hpstore.oracle.trials import best_of, tracker_of

    rows = [(m, direction if m == "m" else "max", s, v) for m, s, v in reports]
    steps: dict[int, list[float]] = {}
    for m, _, s, v in rows:
        if m == "m":
            steps.setdefault(s, []).append(v)
    value, step = best_of(rows, "m")
    expected = _reference_best(steps, direction)
    assert _same_float(value, expected[0]) and step == expected[1]
    tracker = tracker_of(rows)
    if tracker.exists("m"):
        assert _same_float(value, tracker.get_best_value("m"))
        assert step == tracker.get_best_step("m")
    else:
        assert (value, step) == (None, None)


def test_reporting_many_steps_computes_each_step_mean_a_bounded_number_of_times(monkeypatch):
    # Each report used to recompute every step's mean twice: n * n means for n steps.
    calls = 0
    original = MetricObservation.mean

    def counting_mean(self):
        nonlocal calls
        calls += 1
        return original(self)

    monkeypatch.setattr(MetricObservation, "mean", counting_mean)
    tracker = MetricsTracker()
    n = 1_000
    for step in range(n):
        tracker.update("loss", 1.0 / (1 + step % 97), step=step)
        tracker.get_best_value("loss")
        tracker.get_best_step("loss")
    assert tracker.get_best_value("loss") == 1 / 97 and tracker.get_best_step("loss") == 96
    assert calls <= 2 * n


def test_update_returns_whether_the_best_changed():
    tracker = MetricsTracker()
    assert tracker.update("loss", 3.0, step=0) is True  # first value
    assert tracker.update("loss", 1.0, step=0) is True  # step 0 mean 3 -> 2
    assert tracker.update("loss", 2.5, step=1) is False  # worse
    assert tracker.update("loss", math.nan, step=2) is False  # nan is ignored
    assert tracker.update("loss", 1.0, step=3) is True
    assert tracker.update("loss", 1.0, step=4) is False  # a tie is not a change
    assert tracker.get_best_value("loss") == 1.0
    assert tracker.get_best_step("loss") == 3


def test_update_all_nan_then_a_number():
    tracker = MetricsTracker()
    assert tracker.update("loss", math.nan) is True  # None -> nan
    assert tracker.update("loss", math.nan, step=1) is False  # nan -> nan
    assert tracker.update("loss", 5.0, step=2) is True


def test_direction_of_a_new_metric_is_inferred_or_min():
    tracker = MetricsTracker()
    for name in ("val_accuracy", "loss", "my_metric"):
        tracker.update(name, 1.0)
    assert tracker.get_direction("val_accuracy") == "max"
    assert tracker.get_direction("loss") == "min"
    assert tracker.get_direction("my_metric") == "min"
    tracker.register("reward", "max")
    tracker.update("reward", 1.0, 0)
    tracker.update("reward", 2.0, 1)
    assert tracker.get_best_value("reward") == 2.0
    assert MetricsTracker({"a": "max"}).get_direction("a") == "max"


def test_tracker_refuses_a_second_registration_and_unknown_names():
    tracker = MetricsTracker()
    tracker.register("loss")
    with pytest.raises(ValueError, match="Metric already exists: loss"):
        tracker.register("loss")
    with pytest.raises(ValueError, match="Unknown metric: nope"):
        tracker.get_best_value("nope")
    assert tracker.exists("loss") and not tracker.exists("nope")
    assert list(tracker) == ["loss"]


@pytest.mark.parametrize("bad", [3, None, "", b"loss", ("a",)])
def test_bad_metric_name_is_an_invalid_metric_error(bad):
    with pytest.raises(hpstore.InvalidMetricError) as info:
        MetricsTracker().update(bad, 1.0)
    assert isinstance(info.value, TypeError)
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("bad", ["1.0", None, True, 1 + 2j, [1.0], {"v": 1}, np.array([1, 2])])
def test_bad_metric_value_is_an_invalid_metric_error(bad):
    tracker = MetricsTracker()
    with pytest.raises(hpstore.InvalidMetricError) as info:
        tracker.update("loss", bad)
    assert isinstance(info.value, TypeError)
    assert "'loss'" in str(info.value) and type(bad).__name__ in str(info.value)
    assert not tracker.exists("loss")  # nothing was registered


def test_numpy_and_int_metric_values_become_floats():
    assert check_metric("a", np.float32(0.5)) == 0.5
    assert type(check_metric("a", np.int64(3))) is float
    assert type(check_metric("a", 3)) is float
    assert check_metric("a", np.array(2.5)) == 2.5
    assert math.isnan(check_metric("a", math.nan))


def test_torch_and_numpy_scalars_are_numbers_and_several_numbers_are_refused():
    torch = pytest.importorskip("torch")
    assert check_metric("loss", torch.tensor(1.5)) == 1.5  # 0-d: .size is a method here
    assert type(check_metric("loss", torch.tensor(3))) is float
    assert check_metric("loss", torch.tensor([2.5])) == 2.5
    assert check_metric("loss", torch.tensor(1.5, requires_grad=True) * 2) == 3.0
    assert check_metric("loss", np.float32(1.5)) == 1.5
    assert check_metric("loss", np.array(0.25)) == 0.25  # a 0-d array
    for many, count in ((torch.tensor([1.0, 2.0, 3.0]), 3), (np.zeros((2, 3)), 6),
                        (torch.zeros(0), 0)):
        with pytest.raises(hpstore.InvalidMetricError,
                           match=rf"'loss' holds {count} numbers .*shape.*report a single"):
            check_metric("loss", many)
    with pytest.raises(hpstore.InvalidMetricError, match="real number"):
        check_metric("loss", torch.tensor(True))


def test_tracker_config_round_trip():
    tracker = MetricsTracker()
    tracker.update("loss", 2.0, 0)
    tracker.update("loss", 4.0, 0)
    tracker.update("accuracy", 0.5, 1)
    tracker.update("accuracy", math.nan, 2)
    config = tracker.get_config()
    assert config["metrics"]["loss"] == {"direction": "min",
                                         "observations": [{"value": [2.0, 4.0], "step": 0}]}
    again = MetricsTracker.from_config(json.loads(json.dumps(config)))
    assert again == tracker
    assert again.get_best_value("loss") == 3.0
    assert again.get_direction("accuracy") == "max"


# -- Trial ------------------------------------------------------------------------------------


def _finished_trial() -> Trial:
    hp = HyperParameters()
    hp.Choice("model", ["a", "b"])
    with hp.conditional_scope("model", ["b"]):
        hp.Int("units", 1, 4)
    hp.Float("lr", 1e-4, 1e-1, sampling="log")
    hp.Fixed("layers", [32, 16])
    trial = Trial(hp, trial_id="07", status="RUNNING")
    trial.metrics.update("val_loss", 0.5, step=0)
    trial.metrics.update("val_loss", 0.25, step=1)
    trial.metrics.update("val_loss", 0.75, step=1)
    trial.metrics.update("val_accuracy", math.nan, step=0)
    trial.metrics.update("val_accuracy", 0.8, step=1)
    trial.score = 0.5
    trial.best_step = 0
    trial.status = "COMPLETED"
    trial.message = "all good"
    trial.tuner_id = "tuner0"
    trial.run = 1
    return trial


def test_trial_fields():
    trial = Trial(HyperParameters())
    # one made by hand gets an id of its own, as KerasTuner's (all were "0")
    assert len(trial.trial_id) == 32 and int(trial.trial_id, 16) >= 0
    assert Trial(HyperParameters()).trial_id != trial.trial_id
    assert trial.score is None and trial.best_step is None and trial.message is None
    assert trial.status == "RUNNING" and trial.run == 0
    assert Trial(HyperParameters(), trial_id=5).trial_id == "5"
    finished = _finished_trial()
    assert finished.values == {"model": "a", "lr": 1e-4, "layers": [32, 16]}
    assert finished.metrics.get_best_value("val_loss") == 0.5


def test_get_state_round_trips_through_json_exactly():
    trial = _finished_trial()
    state = trial.get_state()
    text = json.dumps(state)
    again = Trial.from_state(json.loads(text))
    assert json.dumps(again.get_state()) == text
    assert again.metrics == trial.metrics
    assert again.hyperparameters.get_config() == trial.hyperparameters.get_config()
    assert again.values == trial.values
    for name in ("trial_id", "score", "best_step", "status", "message", "tuner_id", "run"):
        assert getattr(again, name) == getattr(trial, name)
    assert math.isnan(again.metrics.get_history("val_accuracy")[0].value[0])
    with pytest.raises(ValueError, match="units is currently inactive"):
        again.hyperparameters.get("units")


def test_get_state_shape():
    state = _finished_trial().get_state()
    assert set(state) == {"trial_id", "hyperparameters", "metrics", "score", "best_step",
                          "status", "message", "tuner_id", "run"}
    assert state["metrics"]["metrics"]["val_loss"]["observations"] == [
        {"value": [0.5], "step": 0}, {"value": [0.25, 0.75], "step": 1}]
    assert state["hyperparameters"]["values"] == {"model": "a", "lr": 1e-4, "layers": [32, 16]}


def test_set_state_checks_the_status():
    state = _finished_trial().get_state()
    state["status"] = "DONE"
    with pytest.raises(ValueError, match="'DONE'"):
        Trial.from_state(state)


def test_summary_text(capsys):
    _finished_trial().summary()
    out = capsys.readouterr().out
    assert out == ("Trial 07 summary\n"
                   "Hyperparameters:\n"
                   "model: a\n"
                   "lr: 0.0001\n"
                   "layers: [32, 16]\n"
                   "Score: 0.5\n"
                   "all good\n")


def test_summary_of_an_empty_unscored_trial(capsys):
    Trial(HyperParameters(), trial_id="x").summary()
    assert capsys.readouterr().out == ("Trial x summary\nHyperparameters:\n"
                                       "default configuration\n")


def test_repr_shows_id_status_and_values():
    text = repr(_finished_trial())
    assert "'07'" in text and "COMPLETED" in text and "'model': 'a'" in text


def test_a_fractional_step_is_refused_not_merged_with_the_step_below():
    tracker = MetricsTracker()
    tracker.update("loss", 1.0, step=0)
    for step in (0.5, True, "1"):
        with pytest.raises(TypeError, match="`step` must be an int"):
            tracker.update("loss", 3.0, step=step)
    assert [(o.step, o.value) for o in tracker.get_history("loss")] == [(0, [1.0])]
    tracker.update("loss", 2.0, step=np.int64(1))  # a numpy integer is an int
    assert tracker.get_best_step("loss") == 0


def test_the_tracker_and_trial_calls_kerastuner_code_makes(capsys):
    tracker = MetricsTracker([hpstore.Objective("acc", "max"), "loss"])
    assert tracker.get_direction("acc") == "max" and tracker.get_direction("loss") == "min"
    tracker.register_metrics({"f1": "max"})
    tracker.set_history("loss", [MetricObservation(2.0, 0), MetricObservation([1.0, 3.0], 4)])
    assert [(o.step, o.value) for o in tracker.get_history("loss")] == [(0, [2.0]),
                                                                        (4, [1.0, 3.0])]
    assert tracker.get_best_value("loss") == 2.0
    observation = MetricObservation(1.0, 0)
    observation.append([2.0, 3.0])  # a list extends, as in KerasTuner
    assert observation.value == [1.0, 2.0, 3.0]
    with pytest.raises(TypeError, match="a name or has one"):
        MetricsTracker([3])
    assert list(MetricsTracker("val_loss").metrics) == ["val_loss"]  # not its letters
    assert MetricObservation(1.0, 2.0).step == 2  # (a stored configuration's 2.0)
    with pytest.raises(TypeError, match="`step` must be an int"):
        MetricObservation(1.0, 0.5)
    trial = Trial(HyperParameters(), trial_id="7")
    trial.hyperparameters.Int("units", 1, 4, default=2)
    trial.display_hyperparameters()
    assert capsys.readouterr().out == "units: 2\n"
    assert "Hyperparameters:\nunits: 2" in trial.summary_text()


@pytest.mark.parametrize("step", [2**63, -2**63 - 1, 2**64])
def test_a_metrics_tracker_refuses_a_step_beyond_64_bits(step):
    # as update_trial does (the README says so of both); a tracker accepted it, and
    # get_state() carried it
    from hpstore import MetricsTracker

    tracker = MetricsTracker()
    with pytest.raises(ValueError, match="64 bits"):
        tracker.update("loss", 1.0, step=step)
    tracker.update("loss", 1.0, step=2**63 - 1)  # the largest that fits
    assert tracker.get_best_step("loss") == 2**63 - 1
