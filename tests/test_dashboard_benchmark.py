"""`python -m benchmarks dashboard` runs end to end on a small search, every figure measured
(no speed is asserted here: speed lives in the benchmark's own bars)."""

from __future__ import annotations

import json

import pytest

from benchmarks import dashboard


@pytest.mark.slow
def test_the_dashboard_benchmark_measures_every_figure(tmp_path, capsys):
    out = tmp_path / "dashboard.json"
    assert dashboard.main(["--trials", "1200", "--repeats", "1", "--worker-trials", "40",
                           "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    (run,) = results["page"]
    assert run["trials"] == 1200 and run["first_s"] > 0 and run["poll_after_100_s"] > 0
    assert set(run["first"]) == {"/project", "/assets/dashboard.js", "/assets/dashboard.css",
                                 "/api/poll", "/api/trials", "/api/plots"}
    assert [w["page"] for w in results["workers"]] == ["none", "page", "fast"]
    assert all(w["errors"] == [] and w["wall_s"] > 0 for w in results["workers"])
    assert results["workers"][2]["requests"] > 0
    if results["browser"] is not None:  # Chromium installed (CI has it)
        assert 0 < results["browser"]["shown_s"] <= results["browser"]["drawn_s"]
    text = capsys.readouterr().out
    assert "first page render" in text and "| beside |" in text
