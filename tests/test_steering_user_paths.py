"""Steering as a user does it from scripts and the `hpstore` command: odd but legitimate
inputs (names in any script, NaN and infinities, hyperparameters a hypermodel declares only
in the branch it takes) and warm starts from a KerasTuner project."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hpstore
from hpstore.cli import main as cli


def state(oracle):
    """Everything the project holds, for 'nothing was written' checks."""
    doc = oracle.get_state()
    doc["settings"].pop("updated_at")
    return json.dumps(doc, sort_keys=True)


def unicode_search(path):
    hp = hpstore.HyperParameters()
    hp.Float("学习率", 1e-4, 1e-1, sampling="log")
    hp.Choice("激活", ["relu", "тангенс"])
    hpstore.RandomSearchOracle(hpstore.Objective("损失", "min"), max_trials=10,
                               hyperparameters=hp, database=path, seed=5).close()
    return path


def test_the_enqueue_command_shows_names_and_values_as_written(tmp_path, capsys):
    search = unicode_search(tmp_path / "s.db")
    assert cli(["enqueue", str(search), "--values", '{"学习率": 0.001, "激活": "тангенс"}']) == 0
    (tmp_path / "c.csv").write_text("学习率,激活\n0.002,relu\n", encoding="utf-8")
    assert cli(["enqueue", str(search), "--file", str(tmp_path / "c.csv")]) == 0
    assert cli(["enqueue", str(search), "--values", '{"学习率": 0.001, "激活": "тангенс"}']) == 0
    out = capsys.readouterr().out
    assert '{"学习率": 0.001, "激活": "тангенс"}' in out
    assert '{"学习率": 0.002, "激活": "relu"}' in out
    assert "\\u" not in out


@pytest.mark.parametrize("value", [float("nan"), np.float32("nan"), float("inf"),
                                   -float("inf")])
def test_a_nan_or_infinite_value_to_enqueue_is_outside_the_space_and_named(tmp_path, value):
    search = unicode_search(tmp_path / "s.db")
    oracle = hpstore.Oracle.attach(search)
    before = state(oracle)
    with pytest.raises(hpstore.ValuesOutsideSpaceError, match="is not a value of 学习率"):
        oracle.enqueue_trial({"学习率": value})
    with pytest.raises(hpstore.ValuesOutsideSpaceError, match="is not a value of 学习率"):
        oracle.add_trial({"学习率": value}, {"损失": 0.5})
    assert state(oracle) == before


@pytest.mark.parametrize("written", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_the_enqueue_command_names_the_hyperparameter_a_nan_cannot_be(tmp_path, capsys,
                                                                      written):
    search = unicode_search(tmp_path / "s.db")
    before = state(hpstore.Oracle.attach(search))
    assert cli(["enqueue", str(search), "--values", f'{{"学习率": {written}}}']) == 2
    (tmp_path / "c.csv").write_text(f"学习率\n{written}\n", encoding="utf-8")
    assert cli(["enqueue", str(search), "--file", str(tmp_path / "c.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("is not a value of 学习率 (Float)") == 2, err
    assert state(hpstore.Oracle.attach(search)) == before
