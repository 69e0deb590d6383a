"""The helpers and hypothesis strategies of the fuzz tests (test_fuzz.py,
test_fuzz_values.py)."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _workers import RandomTestOracle
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import hpstore

# Each example builds and reopens real files: keep the counts modest (the whole file runs in
# well under 40 s on two busy cores).
FUZZ = settings(deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
CLEAR = (ValueError, TypeError, hpstore.HpStoreError)
ANY = "<either>"  # a definition that may be accepted or refused, but only cleanly


# -- helpers ----------------------------------------------------------------------------------

@contextmanager
def search_file() -> Iterator[Path]:
    """A fresh search file per example (function fixtures do not reset between examples)."""
    with tempfile.TemporaryDirectory(prefix="hpstore-fuzz-") as folder:
        yield Path(folder) / "search.db"


def file_digest(path: Path) -> str:
    """The file and its write-ahead log: what a write would change."""
    h = hashlib.sha256()
    for part in (path, path.with_name(path.name + "-wal")):
        h.update(part.read_bytes() if part.exists() else b"<none>")
    return h.hexdigest()


def same(a: Any, b: Any) -> bool:
    """Equal with the same types, floats bit for bit (-0.0 is not 0.0; NaN is NaN), True
    is not 1; dict order ignored."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return repr(a) == repr(b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def strict_json(state: dict[str, Any]) -> Any:
    """``state`` through standard JSON (no NaN or Infinity) and back."""
    return json.loads(json.dumps(state, allow_nan=False))


def comparable(state: dict[str, Any]) -> dict[str, Any]:
    """The parts of get_state() a copy made with set_state() must reproduce exactly."""
    keep = ("oracle_class", "oracle_config", "objective", "max_trials", "seed")
    return {"settings": {k: state["settings"][k] for k in keep}, "space": state["space"],
            "trials": state["trials"], "oracle_state": state["oracle_state"]}


def run_trials(oracle: hpstore.Oracle, metric: str = "loss", count: int = 3,
               tuner_id: str = "w") -> dict[str, dict[str, Any]]:
    """Complete up to ``count`` trials; returns {trial_id: values as the worker saw them}."""
    seen = {}
    for i in range(count):
        trial = oracle.create_trial(tuner_id)
        if trial.status != "RUNNING":
            break
        seen[trial.trial_id] = copy.deepcopy(trial.hyperparameters.values)
        oracle.update_trial(trial.trial_id, {metric: float(i)}, step=0)
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    return seen


def copy_through_state(state: dict[str, Any], folder: Path, project: str) -> dict[str, Any]:
    """set_state() the state into a new file under ``folder``; returns that file's state."""
    copy = RandomTestOracle(database=str(folder / "copy.db"), project_name=project)
    try:
        copy.set_state(state)
        return copy.get_state()
    finally:
        copy.close()


# -- strategies -------------------------------------------------------------------------------

HOSTILE = [
    "'", '"', "''", "\\", "%", "%s %d", "{0} {name}", "?", ":name", "; DROP TABLE trials; --",
    "x'); DROP TABLE trials; --", "' OR '1'='1", "SELECT * FROM projects", "NULL", "null",
    "None", "true", "NaN", "-0", "1e999", "$.x", '$."a"', "a/b", "tuner/epochs", "a.b",
    "\x00", "a\x00b", "\x00\x00", "\u202eabc\u202c", "\u0645\u0631\u062d\u0628\u0627",
    "e\u0301\u0301\u0301", "\U0001f600", "\U0001f469\u200d\U0001f469\u200d\U0001f467",
    "\ufeff", "\uffff", "\U0010ffff", "\n", "line 1\nline 2\r\n", "\t", "\x1b[2J\x1b[H", " ",
    "status", "score", "trial_id", "<script>alert(1)</script>",
    "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: boom\n",
]
LONG = ["x" * 100_000, "\u00e9\U0001f600\u202e\x00" * 25_000]
texts = st.one_of(
    st.sampled_from(HOSTILE + LONG),
    st.text(max_size=12),
    st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF,
                          blacklist_categories=("Cs",)), max_size=8),
)
names = texts.filter(bool)  # empty names are refused by design (tested on their own)
finite = st.floats(allow_nan=False, allow_infinity=False)


@dataclass
class Definition:
    """One call such as ``hp.Int(name, **kwargs)``; ``token`` is None when it must work, a
    text the error must contain when it must fail, or ANY."""

    cls: str
    name: Any
    kwargs: dict[str, Any] = field(default_factory=dict)
    token: str | None = None

    def config(self) -> dict[str, Any]:
        return {"class_name": self.cls,
                "config": {"name": self.name, **self.kwargs, "conditions": []}}

    def __repr__(self) -> str:  # hypothesis prints failing examples: keep long names short
        name = self.name if not isinstance(self.name, str) or len(self.name) < 40 else (
            f"{self.name[:20]!r}...({len(self.name)} chars)")
        return f"Definition({self.cls}, {name!r}, {self.kwargs!r}, token={self.token!r})"


@st.composite
def int_kwargs(draw: Any) -> dict[str, Any]:
    sampling = draw(st.sampled_from(["linear", "log", "reverse_log"]))
    if sampling == "linear":
        low = draw(st.integers(-10**6, 10**6) | st.sampled_from([-(2**62), -(10**30), 0]))
        high = low + draw(st.integers(0, 10**6) | st.sampled_from([0, 10**30]))
        step = draw(st.none() | st.integers(1, 10**4))
    else:
        low = draw(st.integers(1, 10**6))
        high = low + draw(st.integers(0, 10**6) | st.just(10**30))
        step = draw(st.none() | st.integers(2, 100))
    default = draw(st.none() | st.integers(low, high))
    return {"min_value": low, "max_value": high, "step": step, "sampling": sampling,
            "default": default}


@st.composite
def float_kwargs(draw: Any) -> dict[str, Any]:
    sampling = draw(st.sampled_from(["linear", "log", "reverse_log"]))
    if sampling == "linear":
        low = draw(st.floats(-1e300, 1e300) | st.sampled_from([-0.0, 0.0, 5e-324, -1e307]))
        high = low + draw(st.floats(0, 1e300) | st.sampled_from([0.0, 5e-324, 1e-300]))
        step = draw(st.none() | st.floats(1e-3, 1e3).map(lambda r: (high - low) / 50 * r))
        step = step if step and math.isfinite(step) else None
    else:
        low = draw(st.floats(1e-300, 1e6) | st.sampled_from([5e-324, 1e-10]))
        high = low * draw(st.floats(1, 1e6))
        step = draw(st.none() | st.floats(1.5, 100.0))
    default = draw(st.none() | st.floats(low, high))
    return {"min_value": low, "max_value": high, "step": step, "sampling": sampling,
            "default": default}


scalars = {
    int: st.integers() | st.sampled_from([2**63, -(2**63), 10**400]),
    float: finite | st.sampled_from([-0.0, 5e-324, 1e308, -1e308]),
    str: texts,
    bool: st.booleans(),
}


@st.composite
def choice_kwargs(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(scalars, key=lambda t: t.__name__)))
    values = draw(st.lists(scalars[kind], min_size=1, max_size=5, unique_by=repr))
    if kind is float:  # 0.0 and -0.0 are one value to a Choice
        values = list({v if v else 0.0: v for v in values}.values())
    if kind is bool:
        values = list(dict.fromkeys(values))
    if draw(st.booleans()):
        values.append(None)
    default = draw(st.none() | st.sampled_from(values))
    ordered = draw(st.none() | st.just(False)) if kind is str or None in values else None
    return {"values": values, "ordered": ordered, "default": default}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3)
    | st.tuples(inner, inner),
    max_leaves=8,
)


@st.composite
def valid_definition(draw: Any) -> Definition:
    cls = draw(st.sampled_from(["Int", "Float", "Choice", "Boolean", "Fixed"]))
    kwargs = {"Int": int_kwargs, "Float": float_kwargs, "Choice": choice_kwargs,
              "Boolean": lambda: st.fixed_dictionaries({"default": st.booleans()}),
              "Fixed": lambda: st.fixed_dictionaries({"value": json_values})}[cls]()
    return Definition(cls, draw(names), draw(kwargs))


NAN, INF = float("nan"), float("inf")


def fraction_near(low: int) -> float:
    """A float that is not a whole number, close to ``low`` where a float can say so (beyond
    2**52 every float is whole: -(2**62) + 0.5 is -(2**62))."""
    return low + 0.5 if abs(low) < 2**52 else 0.5


@st.composite
def bad_definition(draw: Any) -> Definition:
    """A definition with exactly one known fault, and the text its error must contain."""
    name = draw(names)
    cls = draw(st.sampled_from(["Int", "Float", "Choice", "Boolean", "Fixed", "name"]))
    if cls == "name":
        bad = draw(st.sampled_from(["", 5, None, "a\ud800b"]))
        token = {"": "''", 5: "5", None: "None", "a\ud800b": "\\ud800"}[bad]
        target = draw(st.sampled_from(["Int", "Choice", "Fixed"]))
        kwargs = {"Int": {"min_value": 0, "max_value": 1}, "Choice": {"values": ["a"]},
                  "Fixed": {"value": 1}}[target]
        return Definition(target, bad, kwargs, token)
    if cls in ("Int", "Float"):
        integer = cls == "Int"
        kw = draw(int_kwargs() if integer else float_kwargs())
        conv = int if integer else float
        low, high = kw["min_value"], kw["max_value"]
        fault = draw(st.sampled_from([
            "min>max", "nan", "inf", "text", "bool", "step<=0", "log-min", "log-step",
            "default-out", "default-nan", "sampling", "huge"] + (["fraction"] if integer else
                                                                ["too-wide", "tiny-step"])))
        if fault == "min>max":
            kw["min_value"] = high + draw(st.integers(1, 10) if integer else
                                          st.floats(1.0, 10.0))
            if kw["min_value"] == high:  # beyond 2**53 adding 1.0 may not change a float
                kw["min_value"] = math.nextafter(high, math.inf)
            kw["default"] = None
            token = f"min_value {conv(kw['min_value'])} is greater"
        elif fault in ("nan", "inf"):
            kw[draw(st.sampled_from(["min_value", "max_value"]))] = NAN if fault == "nan" \
                else draw(st.sampled_from([INF, -INF]))
            token = fault
        elif fault == "text":
            kw["min_value"] = str(low)
            token = repr(str(low))
        elif fault == "bool":
            kw["max_value"] = True
            token = "True"
        elif fault == "step<=0":
            kw.update(sampling="linear", step=draw(st.integers(-5, 0)))
            token = f"step={conv(kw['step'])}"
        elif fault == "log-min":
            kw.update(sampling=draw(st.sampled_from(["log", "reverse_log"])),
                      min_value=draw(st.integers(-5, 0)), max_value=10, step=None,
                      default=None)
            token = f"min_value: {conv(kw['min_value'])}"
        elif fault == "log-step":
            kw.update(sampling="log", min_value=1, max_value=100, default=None,
                      step=draw(st.sampled_from([1, 0, -2])))
            token = f"step={conv(kw['step'])}"
        elif fault == "default-out":
            kw["default"] = high + (draw(st.integers(1, 5)) if integer else abs(high) + 1.0)
            token = f"default value {conv(kw['default'])}"
        elif fault == "default-nan":
            kw["default"] = NAN
            token = "nan"
        elif fault == "sampling":
            kw["sampling"] = draw(st.sampled_from(["cubic", "", "lin ear", 3]))
            token = repr(kw["sampling"])
        elif fault == "huge":
            kw[draw(st.sampled_from(["max_value", "default"]))] = 10**400
            token = "1329 bits"
        elif fault == "fraction":
            kw[draw(st.sampled_from(["min_value", "default"]))] = fraction_near(low)
            token = repr(fraction_near(low))
        elif fault == "too-wide":
            kw.update(min_value=-1e308, max_value=1e308, sampling="linear", step=None,
                      default=None)
            token = "beyond the largest float"
        else:  # tiny-step
            kw.update(min_value=0.0, max_value=1.0, sampling="linear", step=5e-324,
                      default=None)
            token = "too small"
        return Definition(cls, name, kw, token)
    if cls == "Choice":
        base = draw(st.lists(st.text(min_size=1, max_size=5), min_size=2, max_size=4,
                             unique=True))
        fault = draw(st.sampled_from(["empty", "duplicate", "nan", "inf", "mixed", "int+float",
                                      "type", "string", "default", "ordered", "surrogate"]))
        values, extra, token = base, {}, ""
        if fault == "empty":
            values, token = [], "`values`"
        elif fault == "duplicate":
            values, token = [*base, base[0]], repr(base[0])
        elif fault in ("nan", "inf"):
            values, token = [1.5, NAN if fault == "nan" else -INF], fault
        elif fault == "mixed":
            values, token = [1, *base], repr(base[0])
        elif fault == "int+float":
            values, token = [1, 2.5], "2.5"
        elif fault == "type":
            values, token = [[1], [2]], "[1]"
        elif fault == "string":
            values, token = "abc", "'abc'"
        elif fault == "default":
            extra, token = {"default": "not-a-choice"}, "'not-a-choice'"
        elif fault == "ordered":
            extra, token = {"ordered": True}, "ordered"
        else:
            values, token = [*base, "x\udfffy"], "\\udfff"
        return Definition("Choice", name, {"values": values, **extra}, token)
    if cls == "Boolean":
        default = draw(st.sampled_from([0, 1, 1.0, "True", "false", None]))
        return Definition("Boolean", name, {"default": default}, repr(default))
    value, token = draw(st.sampled_from([
        ({1, 2}, "{1, 2}"), (NAN, "nan"), (INF, "inf"), ([1, -INF], "-inf"), (b"x", "b'x'"),
        ({"k": {3}}, "{3}"), (1j, "1j"), ({(1, 2): 3}, "(1, 2)"), (range(3), "range(0, 3)"),
        (object, "<class 'object'>"), (["ok", "\ud800"], "\\ud800")]))
    return Definition("Fixed", name, {"value": value}, token)


WILD_NUMBERS = st.one_of(
    st.integers(-10**6, 10**6),
    st.sampled_from([0, 1, -1, 2**53 + 1, 2**63, -(2**63), 10**30, 10**308, 10**400, True,
                     False, "1", None, [1], np.float32(1.5), np.int64(3), np.float64("nan")]),
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
)
WILD_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts,
                         st.sampled_from([np.int8(3), np.str_("s"), b"b", [1], {"a": 1}]))


@st.composite
def wild_definition(draw: Any) -> Definition:
    """Arguments thrown together: accepted or refused, but never a crash or a bad file."""
    cls = draw(st.sampled_from(["Int", "Float", "Choice", "Boolean", "Fixed"]))
    if cls in ("Int", "Float"):
        kwargs = {"min_value": draw(WILD_NUMBERS), "max_value": draw(WILD_NUMBERS),
                  "step": draw(st.none() | WILD_NUMBERS),
                  "sampling": draw(st.sampled_from(["linear", "log", "reverse_log", "LOG",
                                                    None, "bad", 1])),
                  "default": draw(st.none() | WILD_NUMBERS)}
    elif cls == "Choice":
        kwargs = {"values": draw(st.lists(WILD_SCALARS, max_size=5)),
                  "ordered": draw(st.sampled_from([None, True, False])),
                  "default": draw(st.none() | WILD_SCALARS)}
    elif cls == "Boolean":
        kwargs = {"default": draw(st.sampled_from([True, False, 0, 1, None, "x",
                                                   np.bool_(True)]))}
    else:
        kwargs = {"value": draw(json_values | WILD_SCALARS
                                | st.sampled_from([{1, 2}, NAN, (1, [2, (3,)]), {1: "a"}]))}
    return Definition(cls, draw(names), kwargs, ANY)


definitions = st.lists(valid_definition() | bad_definition() | wild_definition(),
                       min_size=1, max_size=4, unique_by=lambda d: repr(d.name))


def small_space() -> hpstore.HyperParameters:
    """Two hyperparameters, for the searches the string and metric fuzzing fills."""
    hp = hpstore.HyperParameters()
    hp.Float("x", -10, 10)
    hp.Choice("c", ["a", "b"])
    return hp
