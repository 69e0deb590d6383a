"""python -m benchmarks steps runs end to end on small sizes (no speed asserted here)."""

from __future__ import annotations

import json
import math

import pytest

from benchmarks import steps
from benchmarks.__main__ import main as benchmarks_main


def test_steps_benchmark_measures_every_size(tmp_path, capsys):
    out = tmp_path / "steps.json"
    assert benchmarks_main(["steps", "--steps", "300", "50", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert [r["steps"] for r in results["report"]] == [50, 300]
    assert [r["steps"] for r in results["tracker"]] == [50, 300]
    for r in results["report"] + results["tracker"]:
        assert r["total_s"] > 0 and r["first_us"] > 0 and r["last_us"] > 0
    # the trial's own copy of its metrics found the lowest loss
    best = min(range(300), key=lambda s: (steps._loss(s), s))
    assert results["report"][-1]["best_step"] == best
    assert not math.isnan(results["report"][-1]["last_us"])
    assert len(results["bars"]) == 1 and "of 300 steps" in results["bars"][0]
    assert "| 300 |" in capsys.readouterr().out


def test_steps_benchmark_refuses_a_size_below_two(capsys):
    with pytest.raises(SystemExit) as exc:
        steps.main(["--steps", "1"])
    assert exc.value.code == 2
    assert "--steps" in capsys.readouterr().err


@pytest.mark.parametrize("rule", ["median", "patience"])
def test_steps_benchmark_runs_with_a_rule_judging_every_report(tmp_path, rule):
    out = tmp_path / "steps.json"
    assert benchmarks_main(["steps", "--steps", "200", "--rule", rule, "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["rule"] == rule and results["report"][0]["steps"] == 200
