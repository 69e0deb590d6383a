"""python -m benchmarks keras runs end to end on tiny sizes, every figure measured (no
speed is asserted: speed lives in the benchmark's README figures)."""

from __future__ import annotations

import json

import pytest

from benchmarks import keras_tuners
from benchmarks.__main__ import main as benchmarks_main

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.mark.slow
def test_the_keras_benchmark_measures_both_tuners_and_both_process_counts(tmp_path, capsys):
    out = tmp_path / "keras.json"
    assert benchmarks_main(["keras", "--quick", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    for system in (keras_tuners.KT, keras_tuners.OURS):
        figures = results["per_trial"][system]
        assert figures["wall"] > 0 and figures["bookkeeping"] > 0
    assert sorted(results["processes"]) == [f"{keras_tuners.OURS}|1",
                                            f"{keras_tuners.OURS}|2"]
    assert all(p["wall"] >= p["search"] > 0 for p in results["processes"].values())
    printed = capsys.readouterr().out
    assert "| hpstore.keras RandomSearch | 2 |" in printed and "bookkeeping" in printed
