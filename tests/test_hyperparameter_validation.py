"""Every validation rule of the reference for the five hyperparameter types, with the
exception type and the offending value."""

from __future__ import annotations

import math

import numpy as np
import pytest

import hpstore
from hpstore.hyperparameters import (
    Boolean,
    Choice,
    Fixed,
    Float,
    HyperParameters,
    Int,
    Parent,
)

# -- validation: Boolean, Fixed -------------------------------------------------------------


@pytest.mark.parametrize("bad", [1, 0, "True", None, 0.5])
def test_boolean_default_must_be_a_bool(bad):
    with pytest.raises(ValueError) as info:
        Boolean("b", default=bad)
    assert str(info.value).startswith(
        f"`default` must be a Python boolean. You passed: default={bad!r}")
    with pytest.raises(ValueError, match="must be a Python boolean"):
        HyperParameters().Boolean("b", default=bad)


def test_boolean_takes_a_numpy_bool():
    assert Boolean("b", default=np.bool_(True)).default is True


def test_fixed_takes_any_json_value_and_normalises_it():
    assert Fixed("f", (1, 2)).value == [1, 2]
    assert Fixed("f", {1: "a"}).value == {"1": "a"}
    assert Fixed("f", np.int64(3)).value == 3 and type(Fixed("f", np.int64(3)).value) is int
    assert Fixed("f", np.array([1.5, 2.5])).value == [1.5, 2.5]
    assert Fixed("f", None).value is None
    assert Fixed("f", True).value is True
    hp = HyperParameters()
    assert hp.Fixed("t", (1, (2, 3))) == [1, [2, 3]]
    f = Fixed("f", "v")
    assert f.values == ["v"] and f.default == "v"
    assert f.prob_to_value(0.9) == "v" and f.value_to_prob("v") == 0.5


@pytest.mark.parametrize(
    ("bad", "shown"),
    [(float("nan"), "nan"), (float("inf"), "inf"), ({1, 2}, "{1, 2}"), ([1, object], "object"),
     ({"k": -math.inf}, "-inf")],
)
def test_fixed_refuses_what_json_cannot_hold(bad, shown):
    with pytest.raises(hpstore.NotJSONSerializableError) as info:
        Fixed("f", bad)
    assert isinstance(info.value, ValueError)
    assert shown in str(info.value) and "'f'" in str(info.value)


# -- validation: Choice -----------------------------------------------------------------------


def test_choice_needs_values():
    with pytest.raises(ValueError, match="`values` must be provided"):
        Choice("c", [])
    # None as empty, KerasTuner's ValueError (a TypeError escaped code that catches it)
    with pytest.raises(ValueError, match="`values` must be provided"):
        Choice("c", None)  # type: ignore[arg-type]


@pytest.mark.parametrize("values", [[1, 2.0], [1, "a"], ["a", True], [1, True], [None, 1, "a"]])
def test_choice_values_of_mixed_types_are_a_type_error(values):
    with pytest.raises(TypeError) as info:
        Choice("c", values)
    assert str(info.value).startswith(
        f"A `Choice` can contain only one type of value, found values: {values} with types {{")


def test_choice_mixed_type_message_lists_the_types():
    with pytest.raises(TypeError) as info:
        Choice("c", [1, 2.0])
    assert str(info.value) == ("A `Choice` can contain only one type of value, found values: "
                               "[1, 2.0] with types {<class 'float'>, <class 'int'>}.")


@pytest.mark.parametrize("bad", [[1, 2], {"a": 1}, b"x", object()])
def test_choice_value_of_an_unsupported_type_is_a_type_error(bad):
    with pytest.raises(TypeError) as info:
        Choice("c", [bad])
    assert str(info.value).startswith(
        "A `Choice` can contain only `int`, `float`, `str`, or `bool`")
    assert f"found values: {[bad]}" in str(info.value)
    assert str(type(bad)) in str(info.value)


def test_choice_values_must_be_a_list():
    with pytest.raises(TypeError, match="'abc'"):
        Choice("c", "abc")
    with pytest.raises(TypeError, match="received 3"):
        Choice("c", 3)


def test_choice_default_must_be_a_choice():
    with pytest.raises(ValueError) as info:
        Choice("c", [1, 2, 3], default=4)
    assert str(info.value) == (
        "The default value should be one of the choices. You passed: values=[1, 2, 3], default=4")
    with pytest.raises(ValueError, match="default='z'"):
        HyperParameters().Choice("c", ["a"], default="z")
    with pytest.raises(ValueError, match="should be one of the choices"):
        Choice("c", [True, False], default=1)  # bools stay bools: 1 is not True


def test_choice_ordered():
    assert Choice("c", [1, 2]).ordered is True
    assert Choice("c", [0.1, 0.2]).ordered is True
    assert Choice("c", ["a", "b"]).ordered is False
    assert Choice("c", [1, 2], ordered=False).ordered is False
    with pytest.raises(ValueError) as info:
        Choice("c", ["a", "b"], ordered=True)
    assert str(info.value).startswith("`ordered` must be `False` for non-numeric types.")
    assert "['a', 'b']" in str(info.value)
    with pytest.raises(ValueError, match="non-numeric"):
        Choice("c", [1, None], ordered=True)
    assert Choice("c", [1, 2], ordered=np.bool_(False)).ordered is False


@pytest.mark.parametrize("ordered", ["false", "yes", 0, 1])
def test_choice_ordered_is_true_false_or_none(ordered):
    # ordered="false", a truthy string, ordered the values without a word
    with pytest.raises(TypeError, match=f"`ordered` of Choice 'c' must be True, False or "
                                        f"None .*received {ordered!r}"):
        HyperParameters().Choice("c", [1, 2], ordered=ordered)


def test_choice_keeps_bools_as_bools():
    c = Choice("c", [True, False])
    assert c.values == [True, False] and all(type(v) is bool for v in c.values)
    assert c.default is True
    assert c.prob_to_value(0.9) is False
    assert c.value_to_prob(False) == 0.75


def test_choice_takes_numpy_scalars_as_plain_values():
    c = Choice("c", list(np.arange(3)))
    assert c.values == [0, 1, 2] and all(type(v) is int for v in c.values)
    assert Choice("c", [np.float32(0.5)]).values == [0.5]


def test_choice_refuses_nan_and_duplicates():
    with pytest.raises(ValueError, match="nan"):
        Choice("c", [1.0, float("nan")])
    with pytest.raises(ValueError, match="more than once") as info:
        Choice("c", ["a", "b", "a"])
    assert "'a'" in str(info.value)


def test_choice_index_of_an_unknown_value():
    with pytest.raises(ValueError, match="'z'"):
        Choice("c", ["a"]).value_to_prob("z")


# -- validation: Int and Float ----------------------------------------------------------------


def test_min_greater_than_max():
    with pytest.raises(ValueError) as info:
        Int("x", 5, 3)
    assert str(info.value) == (
        "For HyperParameters.Int(name='x'), min_value 5 is greater than the max_value 3.")
    with pytest.raises(ValueError) as info:
        Float("lr", 5, 3)
    assert str(info.value) == (
        "For HyperParameters.Float(name='lr'), min_value 5.0 is greater than the max_value 3.0.")


@pytest.mark.parametrize("cls", [Int, Float])
def test_sampling_is_checked_after_the_range(cls):
    with pytest.raises(ValueError, match="greater than"):
        cls("x", 5, 3, sampling="bogus")
    with pytest.raises(ValueError) as info:
        cls("x", 1, 3, sampling="bogus")
    assert str(info.value).startswith(
        f"For HyperParameters.{cls.__name__}(name='x'), sampling must be one of ")
    assert "'bogus'" in str(info.value)
    with pytest.raises(ValueError, match="sampling=3"):
        cls("x", 1, 3, sampling=3)


@pytest.mark.parametrize("cls", [Int, Float])
def test_sampling_none_is_linear_and_sampling_is_lower_cased(cls):
    assert cls("x", 1, 4, sampling=None).sampling == "linear"
    assert cls("x", 1, 4, sampling="LOG").sampling == "log"
    assert cls("x", 1, 4, sampling="Reverse_Log").sampling == "reverse_log"


@pytest.mark.parametrize(("cls", "shown"), [(Int, ["0", "-2"]), (Float, ["0.0", "-2.0"])])
@pytest.mark.parametrize("sampling", ["log", "reverse_log"])
def test_log_sampling_needs_a_positive_min(cls, shown, sampling):
    for low, text in zip((0, -2), shown):
        with pytest.raises(ValueError) as info:
            cls("x", low, 10, sampling=sampling)
        # (KerasTuner's "does not support negative values" is said of 0 too, and did not
        # say what to give)
        assert str(info.value) == (
            f"For HyperParameters.{cls.__name__}(name='x'), sampling='{sampling}' does not "
            f"support negative values, found min_value: {text}. It takes only values above "
            "0: give a min_value above 0, or sampling='linear'.")


@pytest.mark.parametrize(("cls", "shown"), [(Int, ["1", "0"]), (Float, ["1.0", "0.5"])])
@pytest.mark.parametrize("sampling", ["log", "reverse_log"])
def test_log_sampling_needs_a_step_above_one(cls, shown, sampling):
    for step, text in zip((1, 0.5 if cls is Float else 0), shown):
        with pytest.raises(ValueError) as info:
            cls("x", 1, 10, step=step, sampling=sampling)
        assert str(info.value) == (
            f"For HyperParameters.{cls.__name__}(name='x'), expected step > 1 with "
            f"sampling='{sampling}'. Received: step={text}.")
    assert cls("x", 1, 10, sampling=sampling).step is None


def test_log_checks_come_in_the_reference_order():
    # min <= 0 is reported before a bad step
    with pytest.raises(ValueError, match="does not support negative values"):
        Int("x", 0, 10, step=1, sampling="log")
    # min > max is reported before the log check
    with pytest.raises(ValueError, match="greater than"):
        Float("x", 0, -1, sampling="log")
    # Int's integral checks come first of all, the step's before the bounds'
    with pytest.raises(ValueError, match="step must be an int"):
        Int("x", 5, 1, step=2.5)
    with pytest.raises(ValueError, match="step must be an int"):
        Int("x", 1.5, 3, step=0.5)
    # a bad definition is reported before a missing parent
    with pytest.raises(ValueError, match="greater than"):
        HyperParameters().Int("x", 5, 1, parent_name="ghost", parent_values=[1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"min_value": 1.5}, "min_value must be an int, Received: 1.5 of type <class 'float'>."),
     ({"max_value": 9.5}, "max_value must be an int, Received: 9.5 of type <class 'float'>."),
     ({"step": 2.5}, "step must be an int, Received: 2.5 of type <class 'float'>."),
     ({"default": 3.5}, "default must be an int, Received: 3.5 of type <class 'float'>."),
     ({"min_value": "3"}, "min_value must be an int, Received: '3' of type <class 'str'>."),
     ({"max_value": None}, "max_value must be an int, Received: None of type <class 'NoneType'>."),
     ({"min_value": True}, "min_value must be an int, Received: True of type <class 'bool'>.")],
)
def test_int_arguments_must_be_integral(kwargs, message):
    # KerasTuner's message, then the hyperparameter it is about (a hypermodel declares
    # many: "min_value must be an int" alone did not say which)
    args = {"min_value": 1, "max_value": 10, **kwargs}
    with pytest.raises(ValueError) as info:
        Int("units_3", **args)
    assert str(info.value) == f"{message[:-1]}, in HyperParameters.Int(name='units_3')."


@pytest.mark.parametrize("kwargs", [{"min_value": "0.1"}, {"max_value": float("nan")},
                                    {"step": "0.1"}, {"default": "x"}])
def test_float_arguments_name_the_hyperparameter(kwargs):
    args = {"min_value": 0.0, "max_value": 1.0, **kwargs}
    with pytest.raises(ValueError) as info:
        HyperParameters().Float("dropout_2", **args)
    assert str(info.value).endswith(", in HyperParameters.Float(name='dropout_2').")
    assert repr(next(iter(kwargs.values()))) in str(info.value)


def test_int_takes_integral_floats_and_numpy_ints():
    hp = Int("x", 1.0, np.int64(4), step=np.int32(1), default=2.0)
    assert (hp.min_value, hp.max_value, hp.step, hp.default) == (1, 4, 1, 2)
    assert all(type(v) is int for v in (hp.min_value, hp.max_value, hp.step, hp.default))


def test_int_step_defaults_to_one_only_for_linear():
    assert Int("x", 1, 4).step == 1
    assert Int("x", 1, 4, sampling="log").step is None
    assert Int("x", 1, 4, sampling="reverse_log").step is None


@pytest.mark.parametrize("cls", [Int, Float])
@pytest.mark.parametrize("default", [0, 11, -5])
def test_default_outside_the_range_is_a_value_error(cls, default):
    with pytest.raises(ValueError, match="out of range") as info:
        cls("x", 1, 10, default=default)
    assert str(default) in str(info.value) and "[1" in str(info.value)


def test_float_default_must_be_a_number():
    with pytest.raises(ValueError, match="default must be a finite number") as info:
        Float("x", 0, 1, default="a")
    assert "'a'" in str(info.value)


@pytest.mark.parametrize("cls", [Int, Float])
def test_default_at_either_end_is_fine(cls):
    assert cls("x", 1, 10, default=1).default == 1
    assert cls("x", 1, 10, default=10).default == 10
    assert cls("x", 1, 10).default == 1


@pytest.mark.parametrize("cls", [Int, Float])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "3", None])
def test_bounds_must_be_finite_numbers(cls, bad):
    with pytest.raises(ValueError, match="min_value must be") as info:
        cls("x", bad, 10)
    assert repr(bad) in str(info.value)


def test_linear_step_must_be_positive():
    with pytest.raises(ValueError) as info:
        Float("x", 0, 1, step=-0.5)
    assert str(info.value) == ("For HyperParameters.Float(name='x'), expected step > 0 with "
                               "sampling='linear'. Received: step=-0.5.")
    with pytest.raises(ValueError, match="step=0"):
        Int("x", 0, 10, step=0)


def test_float_converts_to_float():
    hp = Float("x", 1, 3, step=1, default=2)
    assert hp.get_config() == {"name": "x", "default": 2.0, "conditions": [],
                               "min_value": 1.0, "max_value": 3.0, "step": 1.0,
                               "sampling": "linear"}
    assert all(type(v) is float for v in hp.values)
    assert hp.values == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("bad", ["", None, 3])
def test_name_must_be_a_non_empty_string(bad):
    with pytest.raises(ValueError, match="name"):
        Int(bad, 1, 2)


def test_parent_values_must_not_be_empty_or_mixed():
    with pytest.raises(ValueError, match="'p'"):
        Parent("p", [])
    with pytest.raises(TypeError, match="one type"):
        Parent("p", [1, "a"])
    assert Parent("p", "x").values == ["x"]
    assert Parent("p", 3).values == [3]


def test_repr_names_the_type_and_arguments():
    text = repr(Int("units", 1, 5))  # as KerasTuner writes it
    assert text == ("Int(name: 'units', min_value: 1, max_value: 5, step: 1, "
                    "sampling: linear, default: 1)")
    assert "conditions" not in text
    assert "Parent(name='a'" in repr(Int("units", 1, 5, conditions=[Parent("a", [1])]))
