"""The benchmark suite runs end to end on tiny sizes, every figure measured (no speed is
asserted here: speed lives in the benchmarks' own bars)."""

from __future__ import annotations

import json
import math
import random
import sqlite3

import numpy as np
import pytest

from benchmarks import by_hand, compare, quality, scale, throughput
from benchmarks.suite import SUITES
from hpstore.oracle.values import values_key


@pytest.mark.slow
def test_scale_repeats_measure_every_run(tmp_path, capsys):
    out = tmp_path / "scale.json"
    assert scale.main(["--sizes", "60", "120", "--processes", "1", "2", "--process-trials",
                       "80", "--repeats", "2", "--peer-sizes", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert [g["trials"] for g in results["growth"]] == [60, 120]
    assert all(g["first_per_s"] > 0 and g["last_per_s"] > 0 and g["runs"] == 2
               for g in results["growth"])
    # the floor beside every figure: hpstore's schema by hand, in the same run
    assert all(g["hand_first_per_s"] > 0 and g["hand_last_per_s"] > 0
               for g in results["growth"])
    assert all(p["hand_per_s"] > 0 for p in results["processes"])
    # each repeat works on a file of its own: a reused, finished file would run 0 trials
    assert [p["processes"] for p in results["processes"]] == [1, 2]
    assert all(p["per_s"] > 0 and p["errors"] == 0 and p["duplicates"] == 0
               for p in results["processes"])
    assert [r["trials"] for r in results["resume"]] == [60, 120]
    assert all(r["resume_s"] > 0 and r["best10_s"] > 0 and r["peak_rss_mib"] > 0
               for r in results["resume"])
    assert len(results["bars"]) >= 3  # growth, queries, memory (more with optuna, 4 procs)
    assert "| processes |" in capsys.readouterr().out


def test_scale_measures_only_the_parts_asked_for(tmp_path, capsys):
    out = tmp_path / "scale.json"
    assert scale.main(["--sizes", "40", "--processes", "1", "2", "--process-trials", "40",
                       "--repeats", "1", "--parts", "processes", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["growth"] == [] and results["resume"] == []
    assert [p["processes"] for p in results["processes"]] == [1, 2]
    printed = capsys.readouterr().out
    assert "| processes |" in printed and "| search size |" not in printed
    assert "| trials in the file |" not in printed
    assert [b for b in results["bars"] if "processes" in b]  # its bars, and only those
    assert not [b for b in results["bars"] if "resume" in b or "last 1,000" in b]


def test_scale_measures_resume_alone(tmp_path):
    # the resume part filled its search in the growth part's folder, which only the growth
    # part made: asked for alone, it stopped on "The folder ... does not exist"
    out = tmp_path / "scale.json"
    assert scale.main(["--sizes", "30", "--repeats", "1", "--peer-sizes", "--parts",
                       "resume", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["growth"] == [] and results["processes"] == []
    assert [r["trials"] for r in results["resume"]] == [30]
    assert results["resume"][0]["resume_s"] > 0 and results["resume"][0]["open_s"] > 0


def test_scale_interleaves_the_process_counts(tmp_path, monkeypatch):
    # each count's runs spread over the whole part (1, 2, 1, 2), not one count's runs all
    # at one moment of the machine and the next count's at another
    order = []
    real = scale.processes

    def measured(count, trials, folder, timed=False):
        order.append(count)
        return real(count, trials, folder, timed)

    monkeypatch.setattr(scale, "processes", measured)
    assert scale.main(["--sizes", "40", "--processes", "1", "2", "--process-trials", "20",
                       "--repeats", "2", "--parts", "processes"]) == 0
    assert order == [1, 2, 1, 2]


@pytest.mark.slow
def test_throughput_reports_hpstore_and_raw_sqlite(tmp_path):
    out = tmp_path / "throughput.json"
    assert throughput.main(["--trials", "40", "--repeats", "2", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    for name in (throughput.RAW, throughput.OURS):
        assert len(results["runs"][name]) == 2 and results["median"][name] > 0
    assert any("raw sqlite3" in bar for bar in results["bars"])
    # what the bar against raw sqlite3 leaves hpstore's code, beside the API's least work
    assert set(results["api_work_us"]) == {"draw", "encode", "trial", "score", "returned"}
    assert all(us > 0 for us in results["api_work_us"].values())
    assert any(bar.startswith("- [budget] a third of raw sqlite3") for bar in results["bars"])
    # ... and beside what the Guarantees' checks cost, each timed alone
    assert set(results["check_work_us"]) == {"identity", "turnstile", "facts", "running",
                                             "lookup"}
    assert all(us > 0 for us in results["check_work_us"].values())


def test_the_budget_line_is_what_a_bar_leaves_above_the_statements():
    api = {"draw": 4.0, "encode": 2.0, "trial": 1.0, "score": 1.0, "returned": 1.0}
    checks = {"identity": 6.0, "turnstile": 5.0, "facts": 4.0, "running": 3.0, "lookup": 2.0}
    line = throughput.budget("a peer", 5000.0, 8000.0, api, checks)
    # 200 µs a trial at the bar, 125 of them the statements by hand: 75 left, 26 needed
    # (the running trials are not read by one process creating trials one at a time)
    assert "a peer: 200 µs a trial" in line and "take 125, leaving 75 µs" in line
    assert "never-twice look-up 2.0: 26 µs (the running trials, 3.0, are read only" in line
    assert line.endswith("49 µs would be left for the rest of three calls")
    # a bar that leaves less than those cost is out of reach on this schema
    line = throughput.budget("a peer", 5000.0, 5600.0, api, checks)  # 178.6: 21 left
    assert line.endswith("costs more than the bar leaves") and "out of reach" in line


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
    # does, and its SuccessiveHalvingPruner (given hpstore's settings) where
    # SuccessiveHalving does: same steps, same best, seed by seed.
    for rule in ("median", "halving"):
        assert results["runs"][f"Optuna, hpstore's trials | {rule}"] == \
            results["runs"][f"hpstore random | {rule}"], rule


@pytest.mark.slow
def test_quality_smoke_measures_every_figure(tmp_path, capsys):
    out = tmp_path / "quality.json"
    assert quality.main(["--quick", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    systems = [n for n, (_, module) in quality.SYSTEMS.items() if quality.available(module)]
    problems = [p.name for p in SUITES["quick"]
                if p.kind != "model" or quality.available("sklearn")]
    assert list(results["best"]) == problems
    for name in problems:
        assert sorted(results["best"][name]) == sorted(systems)
        for figures in results["best"][name].values():
            assert len(figures["per_seed"]) == 1 and len(figures["seconds"]) == 1
            assert all(math.isfinite(v) for v in figures["median"] + figures["per_seed"][0])
        assert results["tolerance"][name] > 0
    timing = results["latency"]["30"]["hpstore bayesian"]
    assert timing["first"] > 0 and timing["median"] > 0
    printed = capsys.readouterr().out
    assert "Wins / ties / losses" in printed and "After 12 trials" in printed


def test_ties_are_within_the_stated_tolerance():
    # 1% of how far random search's 30 trials stop from the optimum ...
    results = {"best": {"f": {compare.RANDOM: {"median": [10.0], "per_seed": [[10.0]]},
                              compare.OURS: {"median": [1.0], "per_seed": [[1.0]]}}},
               "problems": {"f": {"optimum": 0.0}}}
    assert compare.tie_tolerances(results) == {"f": pytest.approx(0.1)}
    assert compare.outcome(1.0, 1.09, 0.1) == "T"
    assert compare.outcome(1.0, 1.11, 0.1) == "W"
    assert compare.outcome(1.11, 1.0, 0.1) == "L"
    # ... or 0.1% of the values, for a problem random search all but solves
    assert compare.outcome(100.0, 100.09, 0.001) == "T"
    assert compare.outcome(100.0, 100.2, 0.001) == "W"
    # without a known optimum, the best value any system reached stands in
    results["problems"]["f"]["optimum"] = None
    assert compare.tie_tolerances(results) == {"f": pytest.approx(0.09)}


def test_the_bar_against_random_search_names_the_checkpoints_it_judged():
    def run(checkpoints, ours, theirs):
        return {"checkpoints": checkpoints, "tolerance": {"f": 0.01}, "best": {"f": {
            compare.OURS: {"median": ours}, compare.RANDOM: {"median": theirs}}}}

    # a 100-trial run checked at 30 and 100 only: lost at 100, never judged at 60
    line, = compare.bars(run([30, 100], [1.0, 2.0], [1.0, 1.0]))
    assert line == ("[missed] hpstore bayesian never worse than hpstore random after 100 "
                    "trials (losses: f after 100)")
    line, = compare.bars(run([30, 60, 100], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]))
    assert line.startswith("[met] ") and "after 60 and 100 trials (losses: none)" in line
    assert compare.bars(run([30], [1.0], [2.0])) == []  # no checkpoint from 60 on


def test_a_baseline_revision_runs_its_own_oracle_beside_todays(tmp_path):
    import subprocess

    from benchmarks import baseline

    cls = baseline.load("HEAD")
    assert cls.__module__ == "hpstore_at_HEAD.bayesian"
    assert cls.__name__ == "BayesianOptimizationOracle"
    # the revision's own model, not today's: its modules are the revision's text
    import hpstore_at_HEAD.gaussian_process as then  # type: ignore[import-not-found]
    shown = subprocess.run(["git", "show", "HEAD:hpstore/oracles/gaussian_process.py"],
                           capture_output=True, text=True, check=True).stdout
    with open(then.__file__, encoding="utf-8") as copy:
        assert copy.read() == shown
    out = tmp_path / "q.json"
    assert quality.main(["--problems", "branin", "--seeds", "1", "--budget", "8",
                         "--systems", "hpstore bayesian", "--baseline", "HEAD",
                         "--latency", "--json", str(out)]) == 0
    best = json.loads(out.read_text())["best"]["branin"]
    assert list(best) == ["hpstore bayesian", "hpstore bayesian at HEAD"]
    assert all(math.isfinite(v) for r in best.values() for v in r["median"])


@pytest.mark.parametrize("rev", ["no-such-revision", "--help", "HEAD;rm"])
def test_a_baseline_that_is_not_a_revision_is_refused(rev, capsys):
    with pytest.raises(SystemExit) as stopped:
        quality.parse([f"--baseline={rev}"])
    assert stopped.value.code == 2
    assert repr(rev) in capsys.readouterr().err


@pytest.mark.slow
def test_keras_tuner_runs_only_on_the_problems_of_its_suite(tmp_path):
    if not quality.available("keras_tuner"):
        pytest.skip("KerasTuner is not installed")
    out = tmp_path / "q.json"
    assert quality.main(["--suite", "full", "--problems", "branin", "hartmann3", "--seeds",
                         "1", "--budget", "5", "--systems", "hpstore random",
                         "KerasTuner bayesian", "--keras-tuner-suite", "core", "--latency",
                         "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert sorted(results["best"]["branin"]) == ["KerasTuner bayesian", "hpstore random"]
    assert list(results["best"]["hartmann3"]) == ["hpstore random"]  # not a core problem
    assert "| - |" in "\n".join(compare.outcome_tables(results))


def test_create_trial_is_timed_on_each_problem_named(capsys):
    timed = quality.bayesian_latency(12, repeats=2, keras_tuner=False,
                                     problems=("mixed", "hartmann3"))
    assert sorted(timed) == ["hpstore bayesian", "hpstore bayesian, hartmann3"]
    assert all(t["first"] > 0 and t["median"] > 0 for t in timed.values())
    text = quality.markdown({"seeds": 1, "checkpoints": [], "best": {}, "bars": [],
                             "latency": {12: timed}})
    assert "| hpstore bayesian, 12 completed trials, hartmann3 |" in text
    with pytest.raises(SystemExit) as stopped:
        quality.parse(["--latency-problems", "mixed", "nowhere"])
    assert stopped.value.code == 2 and "'nowhere'" in capsys.readouterr().err


ARGMIN = {  # where the classic functions reach their known optimum
    "branin": {"x1": math.pi, "x2": 2.275},
    "hartmann3": {"x1": 0.114614, "x2": 0.555649, "x3": 0.852547},
    "shekel": {f"x{i}": 4.00075 for i in range(1, 5)},
    "rastrigin4": {f"x{i}": 0.0 for i in range(1, 5)},
    "ackley5": {f"x{i}": 0.0 for i in range(1, 6)},
    "rosenbrock4": {f"x{i}": 1.0 for i in range(1, 5)},
    "styblinski8": {f"x{i}": -2.903534 for i in range(1, 9)},
    "levy10": {f"x{i}": 1.0 for i in range(1, 11)},
}


def test_the_full_suite_is_broad_and_its_optima_are_right():
    from benchmarks.suite import problem

    full = SUITES["full"]
    assert len(full) >= 12 and len({p.name for p in full}) == len(full)
    assert {p.kind for p in full} >= {"continuous", "mixed", "integer", "categorical",
                                      "conditional", "noisy", "model"}
    assert sum(p.kind == "model" for p in full) >= 4
    for name, at in ARGMIN.items():
        assert problem(name).function(at) == pytest.approx(problem(name).optimum, abs=1e-3)
    # no point of a problem's space scores below its stated optimum
    rng = np.random.default_rng(0)
    for p in full:
        if p.optimum is None:
            continue
        for _ in range(300):
            values = {}
            for param in p.space:
                if param.parent and values.get(param.parent[0]) not in param.parent[1]:
                    continue
                if param.kind == "choice":
                    values[param.name] = param.args[rng.integers(len(param.args))]
                elif param.kind in ("int", "logint"):
                    values[param.name] = int(rng.integers(param.args[0], param.args[1] + 1))
                elif param.kind == "log":
                    values[param.name] = float(np.exp(rng.uniform(*np.log(param.args))))
                else:
                    values[param.name] = float(rng.uniform(*param.args))
            assert p.function(values) >= p.optimum - 1e-6, (p.name, values)


def test_noise_is_seen_by_the_search_and_left_out_of_the_best():
    from benchmarks.suite import problem

    noisy = problem("branin_noisy")
    first, again = quality.Evaluation(noisy, 1), quality.Evaluation(noisy, 1)
    at = dict(ARGMIN["branin"])
    seen = [first(at), first({"x1": 0.0, "x2": 0.0})]
    assert seen == [again(at), again({"x1": 0.0, "x2": 0.0})]  # the same noise per seed
    assert seen[0] != pytest.approx(noisy.optimum, abs=1e-6)
    origin = {"x1": 0.0, "x2": 0.0}
    assert first.true == [noisy.function(at), noisy.function(origin)]  # noise-free
    assert first.best(2) == first.true[int(np.argmin(seen))]  # the best-looking trial's


@pytest.mark.slow
def test_postgres_benchmark_measures_both_systems_in_every_run(tmp_path, capsys):
    from _postgres import base_url

    from benchmarks import postgres

    out = tmp_path / "postgres.json"
    assert postgres.main(["--url", base_url(), "--trials", "40", "--repeats", "2",
                          "--processes", "1", "2", "--per-process", "20",
                          "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    for name in (postgres.HPSTORE_NORMAL, postgres.OPTUNA):
        assert len(results["singles"][name]) == 2 and results["single"][name] > 0
        # every process count measured in every repeat, the median reported
        runs = results["multi_runs"][name]
        assert {int(p): len(r) for p, r in runs.items()} == {1: 2, 2: 2}
        assert all(rate > 0 for r in runs.values() for rate in r)
    assert any("Optuna's RDBStorage" in bar for bar in results["bars"])
    assert "median of 2 interleaved runs" in capsys.readouterr().out


def test_the_schema_by_hand_writes_a_search_hpstore_reads_as_its_own(tmp_path, capsys):
    # the floor rows must send what hpstore sends: the file they write is a finished search
    from tools import check

    assert by_hand.throughput(25, str(tmp_path)) > 0
    path = str(tmp_path / "by-hand.db")
    assert check.main([path]) == 0, capsys.readouterr().out
    oracle = by_hand.space_oracle(path, 25)
    trials = list(oracle.trials.values())
    assert len(trials) == 25 and {t.status for t in trials} == {"COMPLETED"}
    assert sorted(int(t.trial_id) for t in trials) == list(range(25))
    best = oracle.get_best_trials(1)[0]
    assert best.score == min(t.score for t in trials)
    assert best.score == by_hand.objective(*(best.hyperparameters.values[k]
                                             for k in ("x", "y", "c")))
    assert oracle.create_trial("next").status == "STOPPED"  # all 25 counted
    oracle.close()
    conn = sqlite3.connect(path)
    stored = conn.execute("SELECT hp_values, values_key FROM trials").fetchall()
    conn.close()
    assert [key for _, key in stored] == [values_key(json.loads(text)) for text, _ in stored]


@pytest.mark.slow
def test_the_schema_by_hand_in_several_processes_numbers_every_trial_once(tmp_path):
    result = by_hand.processes(3, 90, str(tmp_path))
    assert (result["errors"], result["duplicates"]) == (0, 0), result["error_messages"]
    assert result["per_s"] > 0
    (path,) = tmp_path.glob("*/by-hand.db")
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*), max(number), count(DISTINCT pid) FROM trials"
                        ).fetchone() == (90, 89, 3)
    conn.close()


def test_json_never_goes_over_a_search_file_and_an_existing_file_needs_force(tmp_path):
    # every part wrote --json with open(path, "w"): over a search file too, and a bad
    # path was found only after the whole run, in a traceback
    import hpstore
    from benchmarks import steps

    search = tmp_path / "search.db"
    hpstore.RandomSearchOracle("loss", max_trials=2, database=str(search)).close()
    before = search.read_bytes()
    for target in (search, tmp_path / "missing" / "x.json", tmp_path):
        with pytest.raises(SystemExit) as stopped:
            steps.main(["--steps", "2", "--json", str(target)])
        assert stopped.value.code == 2
    assert search.read_bytes() == before
    old = tmp_path / "old.json"
    old.write_text("{}")
    with pytest.raises(SystemExit):
        steps.main(["--steps", "2", "--json", str(old)])
    assert old.read_text() == "{}"
    assert steps.main(["--steps", "2", "--json", str(old), "--force"]) == 0
    assert "report" in json.loads(old.read_text())


@pytest.mark.parametrize("argv", [
    ["throughput", "--trials", "0"], ["throughput", "--repeats", "-1"],
    ["scale", "--sizes", "1"], ["scale", "--processes", "0"],
    ["quality", "--seeds", "0"], ["quality", "--budget", "0"],
    ["keras", "--trials", "0"], ["postgres", "--per-process", "0"],
    ["stopping", "--steps", "0"], ["dashboard", "--worker-trials", "0"],
    ["steps", "--steps", "1"], ["throughput", "--trials", "ten"],
])
def test_a_count_below_what_a_run_needs_is_refused_before_it_starts(argv, capsys):
    # zero trials divided by zero at the end of a run, zero processes waited for ever,
    # and quality --seeds 0 quietly ran 5 seeds
    from benchmarks.__main__ import main

    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[1]}:" in err
    if argv[2].lstrip("-").isdigit():
        assert f"must be at least {2 if argv[2] == '1' else 1}, received {argv[2]}" in err
    else:
        assert f"expected a whole number, received {argv[2]!r}" in err


def test_the_index_variants_drop_only_the_indexes_they_name(tmp_path):
    expected = {"hpstore's schema": {"trials_by_values", "trials_by_status:score"},
                "without the score order": {"trials_by_values", "trials_by_status"},
                "without the digest index": {"trials_by_status:score"},
                "without either": {"trials_by_status"}}
    assert set(by_hand.INDEX_VARIANTS) == set(expected)
    for n, (variant, statements) in enumerate(by_hand.INDEX_VARIANTS.items()):
        path = tmp_path / f"v{n}.db"
        by_hand.new_file(str(path), 10)
        conn = sqlite3.connect(path)
        for statement in statements:
            conn.execute(statement)
        found = set()
        for name in ("trials_by_values", "trials_by_status"):
            columns = [r[2] for r in conn.execute("SELECT * FROM pragma_index_info(?)", (name,))]
            if columns:
                found.add(f"{name}:score" if "score" in columns else name)
        conn.close()
        assert found == expected[variant], variant


def test_floor_measures_every_variant_and_every_process_count(tmp_path, capsys):
    from benchmarks import floor

    out = tmp_path / "floor.json"
    assert floor.main(["--size", "60", "--work", "0:0", "40:20", "30:10+reads", "hpstore",
                       "--processes", "1", "2", "--process-trials", "40", "--repeats", "1",
                       "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert set(results["growth"]) == set(by_hand.INDEX_VARIANTS)
    assert all(ratio > 0 for ratio in results["growth"].values())
    assert set(results["processes"]) == {"0:0", "40:20", "30:10+reads", "hpstore"}
    assert all(row["1"] > 0 and row["2"] > 0 for row in results["processes"].values())
    # where a trial's processor time went, for every row that takes the writers' turnstile
    # (all of them): the write lock's time is found, and the parts add up to the whole
    assert set(results["lock"]) == set(results["processes"])
    for row in results["lock"].values():
        for spent in (row["1"], row["2"]):
            assert spent["held"] > 0 and 0 < spent["held_cpu"] <= spent["cpu"]
            assert spent["outside"] == pytest.approx(
                spent["cpu"] - spent["held_cpu"] - spent["waiting_cpu"])
    text = capsys.readouterr().out
    assert "| without either |" in text and "| 40:20 |" in text and "| hpstore |" in text
    assert "holding the write lock" in text


@pytest.mark.parametrize("reads", [False, True])
def test_the_floor_with_reads_makes_hpstores_reads_inside_the_write_lock(tmp_path, reads):
    from hpstore.store.sqlite import locks
    from hpstore.store.sqlite.project import _DECISION_FACTS

    path = str(tmp_path / "reads.db")
    by_hand.new_file(path, None)
    conn, project = by_hand.connect(path)
    sent = []
    conn.set_trace_callback(sent.append)
    turnstile = locks.Turnstile(tmp_path / "turn.lock")
    writer = by_hand._Turns(conn, turnstile, 0, 0, (path, project) if reads else None)
    by_hand.trial(writer, project, random.Random(1), 1)
    turnstile.close()
    conn.close()
    # (a statement whose triggers fire is traced once more for each trigger)
    sent = [s for i, s in enumerate(sent) if i == 0 or s != sent[i - 1]]
    begins = [i for i, s in enumerate(sent) if s == "BEGIN IMMEDIATE"]
    # each of the 3 transactions: what it reads and writes, in order, holding the lock
    inside = [[s.split()[0] + (" facts" if s.startswith("SELECT p.max_trials") else "")
               for s in sent[b + 1:sent.index("COMMIT", b)]] for b in begins]
    if reads:
        assert sent[begins[0] + 1].startswith(_DECISION_FACTS.split("?")[0][:40])
        assert inside == [["SELECT facts", "SELECT", "INSERT"], ["SELECT", "INSERT"],
                          ["SELECT", "UPDATE"]]
        assert "values_key" in sent[begins[0] + 2]
    else:
        assert inside == [["INSERT"], ["INSERT"], ["UPDATE"]]
