"""The JSON texts a trial's values are stored and identified by: the library writes a
flat dict of plain values itself (faster than the encoder), and must write exactly what
``json.dumps`` writes, or the never-twice digest of a resumed search would no longer match
the one its file holds."""

from __future__ import annotations

import hashlib
import json
import math
import random

import pytest

from hpstore.hyperparameters.base import to_jsonable
from hpstore.oracle.values import stored_json, values_key
from hpstore.store.records import compact_json

_NAMES = ["x", "lr", "tuner/epochs", "a b", 'q"uote', "back\\slash", "tab\t", "é", "日本",
          "emoji 🎉", "", "ctrl\x01", "units_0", "Z", "a.b"]


def _value(rng: random.Random):
    kind = rng.randrange(9)
    if kind == 0:
        return rng.uniform(-1e6, 1e6)
    if kind == 1:
        return rng.choice([0.0, -0.0, 1e-300, 5e-324, 1.7976931348623157e308, 1e16, 0.1,
                           1 / 3, -2.5e-8, 123456789.125])
    if kind == 2:
        return rng.randrange(-2**70, 2**70)
    if kind == 3:
        return rng.choice([0, -1, 2**63 - 1, -2**63, 2**64, 10**30])
    if kind == 4:
        return rng.choice([True, False, None])
    if kind == 5:
        return rng.choice(["relu", "", "a\"b", "line\nbreak", "ü", "日本", "🎉", "\x7f",
                           "\\", "/"])
    if kind == 6:
        return "".join(chr(rng.randrange(32, 0x3000)) for _ in range(rng.randrange(6)))
    if kind == 7:
        return rng.choice([[1, 2], {"a": 1}, (1,)])  # not flat: the encoder's part
    return rng.choice([1.5, "s", 3])


def _encoder(value, sort_keys=False):
    return json.dumps(value, separators=(",", ":"), allow_nan=False, sort_keys=sort_keys)


def test_a_flat_dict_is_written_as_the_encoder_writes_it():
    rng = random.Random(7)
    for _ in range(20_000):
        values = {rng.choice(_NAMES): _value(rng) for _ in range(rng.randrange(7))}
        for sort_keys in (False, True):
            assert compact_json(values, sort_keys=sort_keys) == _encoder(values, sort_keys)
        plain = json.loads(_encoder(values))
        assert to_jsonable(values) == plain
        assert json.dumps(to_jsonable(values)) == json.dumps(plain)  # -0.0, types kept
        assert stored_json(values) == _encoder(values)


def test_the_values_key_is_the_digest_of_the_encoders_sorted_text():
    # (the digest every stored trial carries: written another way, a resumed search would
    # run again values it ran before)
    rng = random.Random(11)
    for _ in range(5_000):
        values = {rng.choice(_NAMES): _value(rng) for _ in range(rng.randrange(1, 6))}
        identity = {k: v for k, v in values.items()
                    if not k.startswith("tuner/") or k == "tuner/trial_id"}
        expected = hashlib.blake2b(_encoder(identity, sort_keys=True).encode(),
                                   digest_size=16).hexdigest()
        assert values_key(values) == expected


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_what_the_encoder_refuses_is_refused_alike(bad):
    with pytest.raises(ValueError):
        _encoder({"x": bad})
    with pytest.raises(ValueError):
        compact_json({"x": bad})
    assert stored_json({"x": bad}) is None


def test_a_name_that_is_not_text_goes_to_the_encoder():
    assert compact_json({1: 2.0}) == _encoder({1: 2.0})
    with pytest.raises(TypeError):
        compact_json({"x": object()})


def test_a_dict_that_holds_itself_is_refused_as_the_encoder_refuses_it():
    looped: dict = {"x": 1.0}
    looped["again"] = [looped]
    with pytest.raises(ValueError, match="Circular reference"):
        _encoder(looped)
    with pytest.raises(ValueError, match="Circular reference"):
        compact_json(looped)
    assert stored_json(looped) is None
    assert compact_json({"x": [1, {"y": None}]}) == _encoder({"x": [1, {"y": None}]})
