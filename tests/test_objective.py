"""Objective, the direction inferred from a metric name, MultiObjective and the default."""

from __future__ import annotations

import json
import math
import re

import pytest

import hpstore
from hpstore import DefaultObjective, MultiObjective, Objective, infer_metric_direction
from hpstore.objective import create_objective, is_nan, objective_from_config


def test_objective_fields_and_strict_better_than():
    low = Objective("val_loss", "min")
    high = Objective("val_accuracy", "max")
    assert (low.name, low.direction) == ("val_loss", "min")
    assert low.better_than(0.1, 0.2) and not low.better_than(0.2, 0.1)
    assert high.better_than(0.9, 0.8) and not high.better_than(0.8, 0.9)
    # strict: a tie is not better, in either direction
    assert not low.better_than(0.5, 0.5) and not high.better_than(0.5, 0.5)


def test_objective_reads_its_metric_from_logs():
    obj = Objective("acc", "max")
    assert obj.has_value({"acc": 0.5}) and not obj.has_value({"loss": 1})
    assert obj.get_value({"acc": 1, "loss": 3}) == 1.0
    assert obj.metric_names == ["acc"]
    assert obj.direction_of("acc") == "max" and obj.direction_of("loss") is None


@pytest.mark.parametrize("direction", ["up", "MIN", None, ""])
def test_objective_direction_must_be_min_or_max(direction):
    with pytest.raises(ValueError, match='"min" or "max"') as info:
        Objective("x", direction)
    assert repr(direction) in str(info.value)


@pytest.mark.parametrize("name", ["", None, 3])
def test_objective_name_must_be_a_string(name):
    with pytest.raises(ValueError, match="name") as info:
        Objective(name, "min")
    assert repr(name) in str(info.value)


def test_objective_equality_hash_and_repr():
    assert Objective("a", "min") == Objective("a", "min")
    assert Objective("a", "min") != Objective("a", "max")
    assert Objective("a", "min") != Objective("b", "min")
    assert len({Objective("a", "min"), Objective("a", "min"), Objective("a", "max")}) == 2
    assert repr(Objective("a", "min")) == 'Objective(name="a", direction="min")'


# -- inference from a name --------------------------------------------------------------------

MIN_NAMES = [
    "loss", "val_loss", "mse", "mae", "mape", "msle", "rmse", "ce", "crossentropy",
    "mean_squared_error", "mean_absolute_error", "root_mean_squared_error",
    "mean_absolute_percentage_error", "mean_squared_logarithmic_error",
    "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
    "val_sparse_categorical_crossentropy", "binary_focal_crossentropy",
    "categorical_generalized_cross_entropy", "hinge", "squared_hinge", "categorical_hinge",
    "kl_divergence", "kld", "bce", "val_bce", "BCE", "log_cosh", "logcosh", "poisson",
    "huber", "false_positives",
    "false_negatives", "ctc", "dice", "tversky", "weighted_loss", "val_weighted_mse",
    "my_custom_loss", "reconstruction_loss", "val_reconstruction_loss", "custom_error",
    "MeanSquaredError", "BinaryCrossentropy", "RootMeanSquaredError", "LogCoshError",
]
MAX_NAMES = [
    "acc", "val_acc", "accuracy", "val_accuracy", "binary_accuracy", "categorical_accuracy",
    "sparse_categorical_accuracy", "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy", "auc", "val_auc", "precision", "val_precision",
    "recall", "f1_score", "val_f1_score", "r2_score", "fbeta_score", "true_positives",
    "true_negatives", "weighted_accuracy", "val_weighted_accuracy", "val_weighted_auc",
    "precision_at_recall", "recall_at_precision", "sensitivity_at_specificity",
    "specificity_at_sensitivity", "iou", "mean_iou", "cosine_similarity",
    "pearson_correlation", "Accuracy", "AUC", "BinaryAccuracy", "TruePositives", "F1Score",
    "R2Score", "MeanIoU",
]
UNKNOWN = ["my_metric", "score", "val_", "", "weighted_val_accuracy", "val_weighted_",
           "reward", "accuracy_gap", "val_score"]


@pytest.mark.parametrize("name", MIN_NAMES)
def test_min_names(name):
    assert infer_metric_direction(name) == "min"
    assert create_objective(name) == Objective(name, "min")


@pytest.mark.parametrize("name", MAX_NAMES)
def test_max_names(name):
    assert infer_metric_direction(name) == "max"
    assert create_objective(name) == Objective(name, "max")


@pytest.mark.parametrize("name", UNKNOWN)
def test_unknown_names(name):
    assert infer_metric_direction(name) is None


def test_only_one_prefix_of_each_kind_is_stripped_in_order():
    # "val_" first, then "weighted_": the other order is not recognised
    assert infer_metric_direction("val_weighted_accuracy") == "max"
    assert infer_metric_direction("weighted_val_accuracy") is None
    assert infer_metric_direction("val_val_accuracy") is None


def test_f1_and_r2_are_maximised():
    # KerasTuner calls these "min"; higher is better for both
    assert create_objective("val_f1_score").direction == "max"
    assert create_objective("r2_score").direction == "max"


def test_non_strings_have_no_direction():
    assert infer_metric_direction(None) is None
    assert infer_metric_direction(3) is None


def test_unknown_name_asks_for_an_objective():
    with pytest.raises(ValueError) as info:
        create_objective("my_metric")
    text = str(info.value)
    assert text.startswith(
        'Could not infer optimization direction ("min" or "max") for unknown metric '
        '"my_metric".')
    assert "Objective(name, direction)" in text
    assert 'Objective("my_metric", direction="min")' in text


def test_unknown_name_inside_a_list_is_refused_too():
    with pytest.raises(ValueError, match='"reward"'):
        create_objective(["loss", "reward"])


@pytest.mark.parametrize("bad", [3, 1.5, {"name": "loss"}, object()])
def test_objective_of_another_type_is_a_type_error(bad):
    with pytest.raises(TypeError, match="`objective` not understood") as info:
        create_objective(bad)
    assert repr(bad) in str(info.value)


def test_empty_list_is_refused():
    with pytest.raises(ValueError, match="empty"):
        create_objective([])


# -- create_objective -------------------------------------------------------------------------

def test_no_objective_is_the_default_objective():
    obj = create_objective(None)
    assert isinstance(obj, DefaultObjective)
    assert (obj.name, obj.direction) == ("default_objective", "min")
    assert obj == DefaultObjective()
    assert obj.better_than(1, 2)


def test_an_objective_passes_through():
    obj = Objective("reward", "max")
    assert create_objective(obj) is obj


def test_a_list_is_a_multi_objective():
    obj = create_objective(["val_loss", Objective("reward", "max"), "accuracy"])
    assert isinstance(obj, MultiObjective)
    assert (obj.name, obj.direction) == ("multi_objective", "min")
    assert obj.name_to_direction == {"val_loss": "min", "reward": "max", "accuracy": "max"}
    assert obj.metric_names == ["val_loss", "reward", "accuracy"]
    assert obj.direction_of("reward") == "max" and obj.direction_of("val_loss") == "min"
    assert obj.direction_of("multi_objective") == "min" and obj.direction_of("x") is None


def test_multi_objective_value_is_sum_of_min_minus_sum_of_max():
    obj = create_objective(["loss", "mse", "accuracy", "auc"])
    logs = {"loss": 1.5, "mse": 0.25, "accuracy": 0.75, "auc": 0.5, "other": 100.0}
    assert obj.has_value(logs)
    assert obj.get_value(logs) == (1.5 + 0.25) - (0.75 + 0.5)
    assert not obj.has_value({"loss": 1.0, "mse": 1.0, "accuracy": 1.0})
    assert obj.better_than(obj.get_value(logs), obj.get_value({**logs, "loss": 2.0}))


def test_multi_objective_refuses_a_metric_named_twice():
    with pytest.raises(ValueError, match="loss"):
        MultiObjective([Objective("loss", "min"), Objective("loss", "max")])


def test_one_element_list_is_that_objective():
    assert create_objective(["val_accuracy"]) == Objective("val_accuracy", "max")


# -- configs ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "objective",
    [Objective("val_acc", "max"), DefaultObjective(),
     MultiObjective([Objective("loss", "min"), Objective("acc", "max")])],
    ids=["single", "default", "multi"],
)
def test_config_round_trip(objective):
    config = json.loads(json.dumps(objective.get_config()))
    again = objective_from_config(config)
    assert type(again) is type(objective)
    assert again == objective
    assert again.get_config() == objective.get_config()


def test_config_shapes():
    assert Objective("a", "max").get_config() == {"name": "a", "direction": "max"}
    multi = create_objective(["loss", "acc"])
    assert multi.get_config() == {"objectives": [{"name": "loss", "direction": "min"},
                                                 {"name": "acc", "direction": "max"}]}
    assert objective_from_config({"name": "default_objective", "direction": "min"}) == (
        DefaultObjective())


def test_is_nan():
    assert is_nan(math.nan) and not is_nan(1.0) and not is_nan(None) and not is_nan("nan")


def test_multi_objective_equality_ignores_order():
    a = create_objective(["loss", "val_accuracy"])
    b = create_objective(["val_accuracy", "loss"])
    assert a == b and hash(a) == hash(b)
    assert a != create_objective(["loss", "accuracy"])


def test_the_same_objective_twice_counts_once():
    assert create_objective(["loss", "loss"]) == Objective("loss", "min")
    both = create_objective(["loss", "loss", "acc"])
    assert both.metric_names == ["loss", "acc"]
    assert both.get_value({"loss": 2.0, "acc": 0.5}) == 1.5


def test_multi_objective_str_as_kerastuner_prints_it():
    multi = create_objective(["loss", "val_accuracy"])
    assert str(multi) == (
        'MultiObjective(name="multi_objective", direction="min"): '
        '[Objective(name="loss", direction="min"), '
        'Objective(name="val_accuracy", direction="max")]')


@pytest.mark.parametrize(("given", "says"), [
    ("val_loss:max", 'Objective("val_loss", direction="max")'),
    ("val_accuracy:MIN", 'Objective("val_accuracy", direction="min")'),
    ("loss ", "give 'loss'"), (" val_loss", "give 'val_loss'"),
    # a (name, direction) pair was two metrics: "unknown metric 'min'", with
    # Objective("min", direction="min") as the example
    (("val_loss", "min"), 'read as a list of two metrics, the second named \'min\'; give a '
                          'metric and its direction as `hpstore.Objective("val_loss", '
                          'direction="min")`'),
    (["score", "MAX"], 'Objective("score", direction="max")')])
def test_a_name_with_a_direction_or_spaces_is_refused_with_what_to_give(given, says):
    # "val_loss:max" was a metric of that name, minimised (no metric reported matched it,
    # and the search could not be reopened without the same mistake)
    with pytest.raises(ValueError, match=re.escape(says)):
        create_objective(given)


@pytest.mark.parametrize(("bad", "error"), [(["loss"], TypeError), ("loss", TypeError),
                                            ([], ValueError)])
def test_multi_objective_takes_a_list_of_objectives(bad, error):
    # ["loss"]: AttributeError "'str' object has no attribute 'name'"; []: accepted
    with pytest.raises(error, match="MultiObjective"):
        MultiObjective(bad)


def test_the_combined_objectives_name_is_refused_as_a_reported_metric_and_as_a_part(tmp_path):
    # reported, it was averaged with the value hpstore computes (1.0 - 0.5 and 100 gave
    # a score of 50.25); as one of the objectives, it was accepted
    oracle = hpstore.RandomSearchOracle(["val_loss", hpstore.Objective("val_accuracy", "max")],
                                        max_trials=3, hyperparameters=_one_float(), seed=1,
                                        database=str(tmp_path / "m.db"))
    trial = oracle.create_trial("w")
    with pytest.raises(hpstore.InvalidMetricError, match="'multi_objective' is reported"):
        oracle.update_trial(trial.trial_id, {"val_loss": 1.0, "val_accuracy": 0.5,
                                             "multi_objective": 100.0})
    with pytest.raises(hpstore.InvalidMetricError, match="'multi_objective' is reported"):
        oracle.add_trial({"x": 0.5}, {"val_loss": 1.0, "val_accuracy": 0.5,
                                      "multi_objective": 100.0})
    assert oracle.get_trial(trial.trial_id).metrics.metrics == {}  # nothing recorded
    oracle.update_trial(trial.trial_id, {"val_loss": 1.0, "val_accuracy": 0.5})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    assert oracle.get_trial(trial.trial_id).score == 0.5
    oracle.close()
    for parts in ([hpstore.Objective("multi_objective", "max"), "val_loss"],
                  [hpstore.MultiObjective([hpstore.Objective("a", "min")]), "val_loss"]):
        with pytest.raises(ValueError, match="cannot be one of several objectives"):
            hpstore.RandomSearchOracle(parts, max_trials=3, hyperparameters=_one_float())


def test_a_search_made_with_the_default_objective_resumes_with_it_given(tmp_path):
    # "optimises Objective(name="default_objective", direction="min"), but
    # Objective(name="default_objective", direction="min") was given"
    path = str(tmp_path / "d.db")
    hpstore.RandomSearchOracle(None, max_trials=3, hyperparameters=_one_float(),
                               database=path).close()
    given = hpstore.Objective("default_objective", "min")
    with hpstore.RandomSearchOracle(given, max_trials=3, hyperparameters=_one_float(),
                                    database=path) as oracle:
        assert oracle.objective == given and oracle.objective == hpstore.DefaultObjective()
    assert hpstore.DefaultObjective() != hpstore.MultiObjective([given])


def _one_float() -> hpstore.HyperParameters:
    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 1)
    return hp


def test_several_objectives_are_said_as_the_score_combines_them():
    # "val_auc (max) + val_loss (min)" read as a sum, where the score is val_loss - val_auc
    from hpstore.queries import objective_text

    config = hpstore.MultiObjective([Objective("val_auc", "max"), Objective("val_loss", "min"),
                                     Objective("acc", "max")]).get_config()
    assert objective_text(config) == ("val_auc (max), val_loss (min), acc (max): "
                                      "-val_auc + val_loss - acc, minimised")
    assert objective_text(Objective("val_loss", "min").get_config()) == "val_loss (min)"


def test_kerastuners_own_objective_is_taken_by_its_name_and_direction():
    # "expected str or `Objective` object ... found: <keras_tuner...Objective object>"
    class Objective:  # (keras_tuner.Objective's shape: a name and a direction)
        def __init__(self, name, direction):
            self.name, self.direction = name, direction

    theirs = Objective("val_auc", "max")
    assert create_objective(theirs) == hpstore.Objective("val_auc", "max")
    assert create_objective([theirs, "val_loss"]).metric_names == ["val_auc", "val_loss"]
    # a direction hpstore refuses is refused in hpstore.Objective's words, not as an
    # object "not understood"
    for direction in ("upwards", "MIN", "maximize", None):
        with pytest.raises(ValueError, match=f"received {direction!r}"):
            create_objective(Objective("val_auc", direction))
