"""The benchmark suite runs end to end on tiny sizes, every figure measured (no speed is
asserted here: speed lives in the benchmarks' own bars)."""

from __future__ import annotations

import json

import pytest

from benchmarks import scale, throughput


@pytest.mark.slow
def test_scale_repeats_measure_every_run(tmp_path, capsys):
    out = tmp_path / "scale.json"
    assert scale.main(["--sizes", "60", "120", "--processes", "1", "2", "--process-trials",
                       "80", "--repeats", "2", "--peer-sizes", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert [g["trials"] for g in results["growth"]] == [60, 120]
    assert all(g["first_per_s"] > 0 and g["last_per_s"] > 0 and g["runs"] == 2
               for g in results["growth"])
    # each repeat works on a file of its own: a reused, finished file would run 0 trials
    assert [p["processes"] for p in results["processes"]] == [1, 2]
    assert all(p["per_s"] > 0 and p["errors"] == 0 and p["duplicates"] == 0
               for p in results["processes"])
    assert [r["trials"] for r in results["resume"]] == [60, 120]
    assert all(r["resume_s"] > 0 and r["best10_s"] > 0 and r["peak_rss_mib"] > 0
               for r in results["resume"])
    assert len(results["bars"]) >= 3  # growth, queries, memory (more with optuna, 4 procs)
    assert "| processes |" in capsys.readouterr().out


@pytest.mark.slow
def test_throughput_reports_hpstore_and_raw_sqlite(tmp_path):
    out = tmp_path / "throughput.json"
    assert throughput.main(["--trials", "40", "--repeats", "2", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    for name in (throughput.RAW, throughput.OURS):
        assert len(results["runs"][name]) == 2 and results["median"][name] > 0
    assert any("raw sqlite3" in bar for bar in results["bars"])


@pytest.mark.slow
def test_stopping_measures_every_rule_and_pruner(tmp_path):
    from benchmarks import stopping

    out = tmp_path / "stopping.json"
    assert stopping.main(["--quick", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    full = results["trials"] * results["steps"]
    for key, (used, best) in results["median"].items():
        assert 0 < used <= full and best < float("inf"), key
        if key.endswith("| none"):
            assert used == full  # without stopping every trial runs every step
    assert {k.split(" | ")[1] for k in results["median"]} >= {
        "none", "median", "percentile-25", "halving", "patience"}
    assert any("Optuna" in k for k in results["median"]) and len(results["bars"]) == 4
    # Replaying hpstore's trials, Optuna's MedianPruner stops exactly where MedianStopping
    # does: same steps, same best, seed by seed.
    assert results["runs"]["Optuna, hpstore's trials | median"] == \
        results["runs"]["hpstore random | median"]
