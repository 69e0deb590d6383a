"""HyperParameters and the five hyperparameter types: the seed page's examples, conditions,
configs, copies and merges (every validation rule: test_hyperparameter_validation.py)."""

from __future__ import annotations

import json

import pytest

import hpstore
from hpstore.hyperparameters import (
    Boolean,
    Choice,
    Float,
    HyperParameters,
    Int,
    Parent,
    hyperparameter_from_config,
)

# -- the seed page's examples ---------------------------------------------------------------


def test_int_without_step_lists_every_integer_with_max_included():
    hp = Int("n_layers", min_value=6, max_value=12)
    assert hp.values == [6, 7, 8, 9, 10, 11, 12]
    assert hp.default == 6


def test_int_step_is_the_distance_between_values():
    assert Int("n_layers", min_value=6, max_value=13, step=3).values == [6, 9, 12]


def test_int_log_step_multiplies():
    hp = Int("batch_size", min_value=2, max_value=32, step=2, sampling="log")
    assert hp.values == [2, 4, 8, 16, 32]
    assert all(type(v) is int for v in hp.values)


@pytest.mark.parametrize("sampling", ["log", "reverse_log"])
def test_int_on_a_log_scale_without_step_lists_ten_values_not_every_integer(sampling):
    hp = Int("units", 2, 1024, sampling=sampling)
    listed = hp.values
    assert 5 <= len(listed) <= 10 and listed == sorted(set(listed))
    assert all(type(v) is int and 2 <= v <= 1024 for v in listed)
    # what sampling gives at the centres of ten equal probability buckets
    assert set(listed) == {hp.prob_to_value((i + 0.5) / 10) for i in range(10)}
    assert list(hp.every_value()) == list(range(2, 1025))


def test_a_random_search_still_runs_every_integer_of_a_log_int():
    # `values` lists ten; sampling reaches all 200, and the search stops only after all
    space = HyperParameters()
    space.Int("n", 1, 200, sampling="log")
    oracle = hpstore.RandomSearchOracle("loss", max_trials=500, hyperparameters=space, seed=3)
    seen = []
    while (trial := oracle.create_trial("w")).status == "RUNNING":
        seen.append(trial.hyperparameters.values["n"])
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    assert sorted(seen) == list(range(1, 201))


def test_float_step_lists_six_values_ending_at_max():
    hp = Float("image_rotation_factor", min_value=0, max_value=1, step=0.2)
    assert hp.values == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert all(type(v) is float for v in hp.values)


def test_float_without_step_is_continuous():
    hp = Float("image_rotation_factor", min_value=0, max_value=1)
    assert hp.values is None
    assert hp.default == 0.0
    assert hp.prob_to_value(0.5) == 0.5


def test_float_log_step_multiplies():
    hp = Float("learning_rate", min_value=0.001, max_value=10, step=10, sampling="log")
    assert hp.values == [0.001, 0.01, 0.1, 1.0, 10.0]


def test_boolean_defaults_to_false():
    hp = HyperParameters()
    assert hp.Boolean("b") is False
    assert hp.Boolean("t", default=True) is True
    assert Boolean("b").values == [True, False]


def test_choice_default_is_the_first_value():
    hp = HyperParameters()
    assert hp.Choice("units", [32, 64, 128]) == 32
    assert hp.Choice("act", ["relu", "tanh"], default="tanh") == "tanh"


def test_choice_default_is_none_when_none_is_a_choice():
    hp = HyperParameters()
    assert hp.Choice("reg", ["l1", None, "l2"]) is None
    assert "reg" in hp.values and hp.values["reg"] is None
    c = Choice("reg", ["l1", None])
    assert c.default is None
    assert c.ordered is False
    assert c.prob_to_value(0.75) is None and c.prob_to_value(0.25) == "l1"
    assert c.value_to_prob(None) == 0.75


def test_fixed_returns_its_value():
    hp = HyperParameters()
    assert hp.Fixed("f", 7) == 7
    assert hp.values == {"f": 7}


def test_hyperparameters_methods_return_the_defaults():
    hp = HyperParameters()
    assert hp.Int("i", 1, 5, default=3) == 3
    assert hp.Float("x", 0.5, 2.0) == 0.5
    assert hp.Float("y", 0.5, 2.0, default=1.5) == 1.5
    assert hp.Boolean("b", default=True) is True
    assert hp.Choice("c", ["a", "b"]) == "a"
    assert hp.Fixed("f", "const") == "const"
    assert hp.values == {"i": 3, "x": 0.5, "y": 1.5, "b": True, "c": "a", "f": "const"}
    assert [type(h).__name__ for h in hp.space] == ["Int", "Float", "Float", "Boolean",
                                                    "Choice", "Fixed"]


# -- conditions ------------------------------------------------------------------------------


def _model_type_space(model_type: str) -> tuple[HyperParameters, list]:
    hp = HyperParameters()
    hp.Choice("model_type", ["mlp", "cnn"])
    hp.values["model_type"] = model_type
    got = []
    with hp.conditional_scope("model_type", ["mlp"]):
        got.append(hp.Int("units", 8, 64, step=8))
    with hp.conditional_scope("model_type", ["cnn"]):
        got.append(hp.Int("filters", 16, 64, step=16))
    return hp, got


def test_conditional_scope_returns_none_when_inactive():
    hp, got = _model_type_space("mlp")
    assert got == [8, None]
    assert hp.values == {"model_type": "mlp", "units": 8}
    assert [h.name for h in hp.space] == ["model_type", "units", "filters"]
    hp, got = _model_type_space("cnn")
    assert got == [None, 16]
    assert hp.values == {"model_type": "cnn", "filters": 16}


def test_get_inactive_is_a_value_error_and_missing_a_key_error():
    hp, _ = _model_type_space("mlp")
    with pytest.raises(ValueError, match=r"^filters is currently inactive\.$"):
        hp.get("filters")
    with pytest.raises(KeyError) as info:
        hp.get("nothing")
    assert info.value.args[0] == "nothing does not exist."
    with pytest.raises(ValueError, match="filters is currently inactive"):
        hp["filters"]
    with pytest.raises(KeyError, match="nothing does not exist"):
        hp["nothing"]


def test_contains_and_getitem_and_is_active():
    hp, _ = _model_type_space("mlp")
    assert "units" in hp
    assert "filters" not in hp  # registered but inactive
    assert "nothing" not in hp
    assert hp["units"] == 8 == hp.get("units")
    assert hp.is_active("units") and not hp.is_active("filters")
    assert hp.is_active(hp.space[1]) and not hp.is_active(hp.space[2])
    assert [h.name for h in hp.active_space()] == ["model_type", "units"]


def test_condition_follows_the_parent_value():
    hp, _ = _model_type_space("mlp")
    hp.values["model_type"] = "cnn"
    assert not hp.is_active("units") and hp.is_active("filters")
    with pytest.raises(ValueError, match="units is currently inactive"):
        hp.get("units")


def test_parent_name_and_parent_values_arguments():
    hp = HyperParameters()
    hp.Choice("opt", ["adam", "sgd"])
    assert hp.Float("momentum", 0.0, 0.9, parent_name="opt", parent_values=["sgd"]) is None
    assert hp.Float("beta", 0.8, 0.99, parent_name="opt", parent_values="adam") == 0.8
    assert hp.space[1].conditions == [Parent("opt", ["sgd"])]
    assert hp.space[2].conditions == [Parent("opt", ["adam"])]
    assert hp.values == {"opt": "adam", "beta": 0.8}


def test_empty_parent_name_means_no_condition():
    hp = HyperParameters()
    assert hp.Int("x", 1, 3, parent_name="", parent_values=[1]) == 1
    assert hp.space[0].conditions == []


def test_re_registration_of_a_newly_active_hyperparameter_gives_its_default():
    hp = HyperParameters()
    hp.Choice("kind", ["a", "b"])
    with hp.conditional_scope("kind", ["b"]):
        assert hp.Int("size", 3, 9) is None
    hp.values["kind"] = "b"  # moved by hand: "size" is active but has no value yet
    with hp.conditional_scope("kind", ["b"]):
        assert hp.Int("size", 3, 9) == 3
    assert hp.values == {"kind": "b", "size": 3}


def test_stale_value_of_an_inactive_hyperparameter_is_not_returned():
    hp, _ = _model_type_space("mlp")
    hp.values["model_type"] = "cnn"  # "units" keeps its old value in `values`
    assert hp.values["units"] == 8
    assert "units" not in hp
    with pytest.raises(ValueError, match="units is currently inactive"):
        hp.get("units")


def test_nested_conditional_scopes_need_every_condition():
    hp = HyperParameters()
    hp.Choice("a", ["x", "y"])
    hp.Boolean("b", default=True)
    with hp.conditional_scope("a", ["x"]), hp.conditional_scope("b", [True]):
        assert hp.Int("c", 1, 3) == 1
    assert hp.space[-1].conditions == [Parent("a", ["x"]), Parent("b", [True])]
    hp.values["b"] = False
    assert not hp.is_active("c")
    hp.values["b"] = True
    hp.values["a"] = "y"
    assert not hp.is_active("c")
    hp.values["a"] = "x"
    assert hp.is_active("c")


def test_boolean_parent_condition_is_not_met_by_an_int():
    hp = HyperParameters()
    hp.Int("n", 0, 3)
    hp.values["n"] = 1
    with hp.conditional_scope("n", [True]):
        assert hp.Int("child", 1, 2) is None


def test_conditional_scope_needs_an_existing_parent():
    hp = HyperParameters()
    with pytest.raises(ValueError, match=r"`HyperParameter` named: ghost not defined\."), \
            hp.conditional_scope("ghost", [1]):
        pass  # pragma: no cover
    with pytest.raises(ValueError, match="ghost not defined"):
        hp.Int("x", 1, 2, parent_name="ghost", parent_values=[1])
    assert hp.space == []


def test_conditional_hyperparameter_cannot_share_its_parents_name():
    hp = HyperParameters()
    hp.Choice("a", ["x", "y"])
    with pytest.raises(ValueError, match="same name as its parent") as info, \
            hp.conditional_scope("a", ["x"]):
        hp.Choice("a", ["x", "z"])
    assert "a" in str(info.value)


def test_name_scope_prefixes_names():
    hp = HyperParameters()
    with hp.name_scope("outer"):
        hp.Int("x", 1, 2)
        with hp.name_scope("inner"):
            hp.Choice("name", ["a"])
            assert hp.get("name") == "a"  # get applies the scopes too
    assert set(hp.values) == {"outer/x", "outer/inner/name"}
    assert hp.get("outer/inner/name") == "a"
    with hp.name_scope("outer"), hp.conditional_scope("x", [2]):
        hp.Int("y", 1, 2)
    assert hp.space[-1].conditions == [Parent("outer/x", [2])]
    assert hp.space[-1].name == "outer/y"


def test_re_registration_returns_the_current_value_and_ignores_new_arguments():
    hp = HyperParameters()
    assert hp.Int("units", 1, 10) == 1
    hp.values["units"] = 7
    assert hp.Int("units", 100, 200, default=150) == 7
    assert len(hp.space) == 1
    assert hp.space[0].min_value == 1 and hp.space[0].max_value == 10


def test_same_name_under_other_conditions_is_a_second_entry():
    hp = HyperParameters()
    hp.Choice("kind", ["a", "b"])
    with hp.conditional_scope("kind", ["a"]):
        assert hp.Int("size", 1, 4) == 1
    with hp.conditional_scope("kind", ["b"]):
        assert hp.Int("size", 10, 40) is None
    assert [h.name for h in hp.space] == ["kind", "size", "size"]
    with hp.conditional_scope("kind", ["b"]):
        assert hp.Int("size", 10, 40) is None  # re-registration, not a third entry
    assert len(hp.space) == 3
    assert hp.get("size") == 1


# -- configs, copies, merges ------------------------------------------------------------------


def _rich_space() -> HyperParameters:
    hp = HyperParameters()
    hp.Choice("model", ["mlp", "cnn", None])
    hp.values["model"] = "cnn"
    with hp.conditional_scope("model", ["mlp"]):
        hp.Int("units", 8, 128, step=2, sampling="log", default=32)
    with hp.conditional_scope("model", ["cnn"]):
        hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.2)
        hp.Boolean("pool", default=True)
    hp.Float("lr", 1e-4, 1e-1, sampling="reverse_log")
    hp.Fixed("meta", {"layers": [1, 2], "name": "x", "none": None})
    hp.Choice("flag", [True, False], default=False)
    return hp


def test_get_config_shape():
    config = _rich_space().get_config()
    assert set(config) == {"space", "values"}
    first = config["space"][0]
    assert first["class_name"] == "Choice"
    assert first["config"] == {"name": "model", "default": None, "conditions": [],
                               "values": ["mlp", "cnn", None], "ordered": False}
    units = config["space"][1]
    assert units == {"class_name": "Int", "config": {
        "name": "units", "default": 32,
        "conditions": [{"class_name": "Parent", "config": {"name": "model", "values": ["mlp"]}}],
        "min_value": 8, "max_value": 128, "step": 2, "sampling": "log"}}
    fixed = next(s for s in config["space"] if s["class_name"] == "Fixed")
    assert fixed["config"] == {"name": "meta", "conditions": [],
                               "value": {"layers": [1, 2], "name": "x", "none": None}}
    assert config["values"] == {"model": "cnn", "dropout": 0.2, "pool": True, "lr": 1e-4,
                                "meta": {"layers": [1, 2], "name": "x", "none": None},
                                "flag": False}


def test_from_config_and_copy_round_trip_exactly():
    hp = _rich_space()
    config = hp.get_config()
    again = HyperParameters.from_config(json.loads(json.dumps(config)))
    assert again.get_config() == config
    assert again.space == hp.space
    assert again.values == hp.values
    assert again.get("dropout") == 0.2
    with pytest.raises(ValueError, match="units is currently inactive"):
        again.get("units")
    copy = hp.copy()
    assert copy.get_config() == config
    copy.values["lr"] = 0.05
    copy.Int("extra", 1, 2)
    assert hp.values["lr"] == 1e-4 and "extra" not in hp.values
    assert len(hp.space) == len(config["space"])


def test_bool_choice_keeps_bools_through_a_round_trip():
    hp = HyperParameters()
    hp.Choice("flag", [True, False])
    again = HyperParameters.from_config(json.loads(json.dumps(hp.get_config())))
    assert again.space[0].values == [True, False]
    assert all(type(v) is bool for v in again.space[0].values)
    assert again.get("flag") is True


def test_each_hyperparameter_round_trips_through_its_config():
    for hp in _rich_space().space:
        item = {"class_name": type(hp).__name__, "config": hp.get_config()}
        again = hyperparameter_from_config(json.loads(json.dumps(item)))
        assert again == hp
        assert again.get_config() == hp.get_config()


def test_from_config_refuses_garbage():
    with pytest.raises(ValueError, match="'space'"):
        HyperParameters.from_config({"values": {}})
    with pytest.raises(ValueError, match="Nope"):
        hyperparameter_from_config({"class_name": "Nope", "config": {}})
    with pytest.raises(ValueError, match="class_name"):
        hyperparameter_from_config({"name": "x"})


def test_merge_overwrite_true_replaces_and_resets_to_default():
    hp = HyperParameters()
    hp.Int("a", 1, 10)
    hp.values["a"] = 5
    other = HyperParameters()
    other.Int("a", 1, 10, default=3)
    other.Boolean("b", default=True)
    hp.merge(other)
    assert hp.values == {"a": 3, "b": True}
    assert [h.name for h in hp.space] == ["a", "b"]
    assert hp.space[0].default == 3


def test_merge_overwrite_false_keeps_what_exists():
    hp = HyperParameters()
    hp.Int("a", 1, 10)
    hp.values["a"] = 5
    other = HyperParameters()
    other.Int("a", 1, 10, default=3)
    other.Boolean("b", default=True)
    hp.merge(other, overwrite=False)
    assert hp.values == {"a": 5, "b": True}
    assert hp.space[0].default == 1


def test_merge_accepts_a_list_of_hyperparameters():
    hp = HyperParameters()
    hp.merge([Int("a", 1, 3), Choice("c", ["x", "y"], default="y")])
    assert hp.values == {"a": 1, "c": "y"}


def test_merge_keeps_conditions_and_their_activity():
    source = _rich_space()
    hp = HyperParameters()
    hp.merge(source)
    assert hp.space == source.space
    assert hp.values == {"model": None, "lr": 1e-4,
                         "meta": {"layers": [1, 2], "name": "x", "none": None}, "flag": False}


def test_ensure_active_values_fills_active_and_drops_inactive():
    hp = _rich_space()
    hp.values["model"] = "mlp"  # units now active (no value), dropout/pool inactive (values)
    hp.ensure_active_values()
    assert set(hp.values) == {"model", "units", "lr", "meta", "flag"}
    assert hp.values["units"] in hp.space[1].values
    del hp.values["lr"]
    hp.ensure_active_values()
    assert 1e-4 <= hp.values["lr"] <= 1e-1


def test_ensure_active_values_keeps_a_value_shared_by_an_active_twin():
    hp = HyperParameters()
    hp.Choice("kind", ["a", "b"])
    with hp.conditional_scope("kind", ["a"]):
        hp.Int("size", 1, 4)
    with hp.conditional_scope("kind", ["b"]):
        hp.Int("size", 10, 40)
    hp.ensure_active_values()
    assert hp.values == {"kind": "a", "size": 1}


def test_a_fixed_list_is_the_callers_own_and_shared_with_nothing():
    # the list a Fixed returned was its definition and the values' entry: appended to, it
    # changed the space, and a search ended its first trial on "not a value of sizes"
    hp = hpstore.HyperParameters()
    sizes = hp.Fixed("sizes", [64, 32])
    sizes.append(16)
    assert hp.values["sizes"] == [64, 32] and hp.space[0].value == [64, 32]
    assert hp.Fixed("sizes", [64, 32]) == [64, 32]  # declared again: the same, untouched
    twin = hp.copy()  # "sharing nothing with this one"
    twin.values["sizes"].append(8)
    assert hp.values["sizes"] == [64, 32]
    config = hp.get_config()
    config["values"]["sizes"].append(4)
    assert hp.values["sizes"] == [64, 32]
    assert hpstore.HyperParameters.from_config(config).values["sizes"] == [64, 32, 4]


def test_a_search_whose_build_extends_a_fixed_list_runs_to_its_end(tmp_path):
    def build(hp):
        layers = hp.Fixed("layers", [64, 32])
        layers.append(hp.Int("last", 1, 3))
        return layers

    oracle = hpstore.RandomSearchOracle(max_trials=3, seed=1, database=str(tmp_path / "f.db"))
    tuner = hpstore.Tuner(oracle, hypermodel=build, verbose=0,
                          run_trial=lambda trial: float(sum(build(trial.hyperparameters))))
    tuner.search()
    ended = sorted(oracle.trials.values(), key=lambda t: t.trial_id)
    assert [t.status for t in ended] == ["COMPLETED"] * 3
    assert all(t.hyperparameters.values["layers"] == [64, 32] for t in ended)
    assert sorted(t.score for t in ended) == [97.0, 98.0, 99.0]
    oracle.close()
