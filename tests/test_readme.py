"""The README's SQL cookbook runs on the file `hpstore demo` writes and returns what each
query's title promises, so the docs cannot drift from the schema or the demo."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def cookbook() -> list[tuple[str, str]]:
    """(the sentence above it, the query) of every SQL block in the README."""
    text = README.read_text(encoding="utf-8")
    return [(title.strip(), sql) for title, sql in
            re.findall(r"\n\n((?:[^\n]+\n)+?)\n```sql\n(.*?)```", text, re.S)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> sqlite3.Connection:
    """The file `hpstore demo` writes, made by the command itself."""
    folder = tmp_path_factory.mktemp("demo")
    done = subprocess.run([sys.executable, "-m", "hpstore", "demo", "--verbose", "0"],
                          cwd=folder, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    path = folder / "hpstore-demo.db"
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT name FROM projects").fetchall() == [("demo",)]
    # the best two retired, the second restored: rankings leave the best out, and the
    # log's retirement rows are no worker's trials
    best = [t for t, _ in conn.execute("SELECT trial_id, score FROM trials WHERE status = "
                                       "'COMPLETED' ORDER BY score LIMIT 2")]
    for argv in (["retire", str(path), *best, "--reason", "leak", "--by", "alice"],
                 ["restore", str(path), best[1], "--reason", "fine", "--by", "bob"]):
        done = subprocess.run([sys.executable, "-m", "hpstore", *argv], capture_output=True,
                              text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0, done.stderr
    assert conn.execute("SELECT count(*) FROM trials WHERE retired_at IS NOT NULL"
                        ).fetchone() == (1,)
    return conn


def completed_scores(conn: sqlite3.Connection) -> list[tuple[str, float]]:
    return conn.execute("SELECT trial_id, score FROM trials WHERE status = 'COMPLETED' "
                        "AND retired_at IS NULL ORDER BY score").fetchall()


def check_best_five(conn, columns, rows):
    assert columns[:2] == ["trial_id", "score"] and len(rows) == 5
    assert [r[:2] for r in rows] == completed_scores(conn)[:5]
    assert all(isinstance(json.loads(r[2]), dict) for r in rows)


def check_per_value(conn, columns, rows):
    assert columns == ["model", "trials", "mean_score", "best_score"]
    per_model: dict[str, list[float]] = {}
    for values, score in conn.execute("SELECT hp_values, score FROM trials WHERE status = "
                                      "'COMPLETED' AND retired_at IS NULL"):
        per_model.setdefault(json.loads(values)["model"], []).append(score)
    assert {r[0] for r in rows} == set(per_model) == {"ridge", "mlp"}  # one row per model
    for model, trials, mean, best in rows:
        assert trials == len(per_model[model]) and best == min(per_model[model])
        assert mean == pytest.approx(sum(per_model[model]) / trials)
    assert [r[2] for r in rows] == sorted(r[2] for r in rows)


def check_one_model(conn, columns, rows):
    assert columns == ["trial_id", "units", "learning_rate", "score"]
    mlp = [(t, s) for t, s in completed_scores(conn)
           if json.loads(conn.execute("SELECT hp_values FROM trials WHERE trial_id = ?",
                                      (t,)).fetchone()[0])["model"] == "mlp"]
    assert len(rows) == min(5, len(mlp)) > 0
    assert [(r[0], r[3]) for r in rows] == mlp[:5]
    assert all(isinstance(r[1], int) and isinstance(r[2], float) for r in rows)


def check_curve(conn, columns, rows):
    assert columns == ["step", "val_loss"]
    epochs = json.loads(conn.execute("SELECT hp_values FROM trials WHERE trial_id = '01'")
                        .fetchone()[0])["epochs"]
    assert [r[0] for r in rows] == list(range(epochs))  # one row per step, in order
    assert all(isinstance(r[1], float) for r in rows)


def check_status_log(conn, columns, rows):
    assert columns == ["at", "trial_id", "from_status", "to_status", "tuner_id", "message"]
    total = conn.execute("SELECT count(*) FROM transitions").fetchone()[0]
    assert len(rows) == min(10, total) == 10
    assert [r[0] for r in rows] == sorted((r[0] for r in rows), reverse=True)
    latest = conn.execute("SELECT max(at) FROM transitions").fetchone()[0]
    assert rows[0][0].startswith(
        conn.execute("SELECT strftime('%Y-%m-%dT%H:%M', ?, 'unixepoch')", (latest,))
        .fetchone()[0])


def check_throughput(conn, columns, rows):
    assert columns == ["tuner_id", "finished", "per_minute"]
    ended = Counter(t for (t,) in conn.execute(
        "SELECT tuner_id FROM transitions WHERE to_status IN ('COMPLETED', 'FAILED', "
        "'STOPPED') AND from_status IS NOT to_status"))
    assert not {"alice", "bob"} & set(ended)
    assert len(ended) >= 2  # the demo runs two workers
    assert {r[0]: r[1] for r in rows} == dict(ended)  # one row per worker
    assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)
    assert all(r[2] > 0 for r in rows)


def check_slowest(conn, columns, rows):
    assert columns == ["trial_id", "status", "runs", "seconds"]
    slowest = conn.execute("SELECT trial_id, round(ended_at - started_at, 3) FROM trials "
                           "WHERE ended_at IS NOT NULL ORDER BY ended_at - started_at DESC "
                           "LIMIT 10").fetchall()
    assert len(rows) == 10 and [r[3] for r in rows] == [s for _, s in slowest]


# What each query promises, found by the words of its title.
PROMISES = {
    "The five best completed trials": check_best_five,
    "one row per value": check_per_value,
    "The best trials of one model": check_one_model,
    "The metric curve of one trial, one row per step": check_curve,
    "The last ten status changes, newest first": check_status_log,
    "Throughput per worker, one row each": check_throughput,
    "The ten slowest trials": check_slowest,
}


def test_every_cookbook_query_has_its_promise_checked():
    titles = [title for title, _ in cookbook()]
    assert len(titles) == len(PROMISES) >= 6
    for title in titles:
        assert sum(words in title for words in PROMISES) == 1, title


@pytest.mark.parametrize("words", list(PROMISES))
def test_each_cookbook_query_returns_what_it_promises_on_the_demo(demo, words):
    (sql,) = [sql for title, sql in cookbook() if words in title]
    cursor = demo.execute(sql)
    columns = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    assert rows, f"no rows from the README query:\n{sql}"
    PROMISES[words](demo, columns, rows)


def test_the_readme_example_runs(tmp_path, monkeypatch):
    text = README.read_text(encoding="utf-8")
    example = re.search(r"## A search in twenty lines\n\n```python\n(.*?)```", text, re.S)
    assert example is not None
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(example.group(1), "README example", "exec"), namespace)
    assert len(namespace["oracle"].trials) == 30
    best = namespace["tuner"].get_best_trials(1)[0]
    assert best.score < 5.0  # the Bayesian oracle finds the bowl within 30 trials


def test_every_error_the_readme_names_is_importable_from_hpstore():
    # EngineUnavailableError was named as a user's to catch but lived in hpstore.errors only
    import hpstore
    from hpstore import errors

    named = set(re.findall(r"`(?:hpstore\.)?([A-Z][A-Za-z]+Error)`", README.read_text()))
    ours = {name for name in named if hasattr(errors, name)}
    assert "EngineUnavailableError" in ours and len(ours) > 10
    assert sorted(name for name in ours if not hasattr(hpstore, name)) == []


def test_the_source_distribution_holds_every_folder_the_tests_use():
    # the README's test command, run from an unpacked sdist, needs the folders the tests
    # import or read: the benchmarks' and examples' tests stopped it at collection
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]
    # each anchored at the root: a bare "tests" took any folder so named deeper down, a
    # venv's vendored packages among them
    assert all(p.startswith("/") for p in patterns), patterns
    shipped = {p.lstrip("/") for p in patterns}
    used = {"hpstore", "schema", "tests", "README.md", "pyproject.toml"}
    for test in (ROOT / "tests").glob("*.py"):
        text = test.read_text(encoding="utf-8")
        used |= {folder for folder in ("benchmarks", "examples", "tools")
                 if re.search(rf"^\s*(from|import) {folder}\b|parent / \"{folder}\"|"
                              rf"ROOT / \"{folder}\"", text, re.M)}
    assert used >= {"benchmarks", "examples", "tools"}  # (the search itself finds them)
    assert used <= shipped, sorted(used - shipped)


def test_the_views_table_lists_each_views_columns(demo):
    """The README's table of the views names every column of each, in order (a name with a
    slash, as created/started/ended, stands for several)."""
    text = README.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| [^:|]+: ([^|]+) \|$", text, re.M)
    views = {name for (name,) in demo.execute("SELECT name FROM sqlite_master WHERE type = "
                                               "'view' AND name NOT LIKE '\\_%' ESCAPE '\\'")}
    listed = {view: cells for view, cells in rows if view in views}
    assert set(listed) == views
    for view, cells in listed.items():
        named = [part for cell in re.sub(r" \(.*?\)", "", cells).split(", ")
                 for part in cell.strip().split("/")]
        columns = [d[0] for d in demo.execute(f"SELECT * FROM {view} LIMIT 0").description]
        assert named == columns, view


def test_every_test_the_readme_cites_is_in_the_file_it_is_cited_under():
    # "file.py::name" names a test of that file; "::name" one of the file named last
    cited = re.findall(r"`((?:tests/)?test_\w+\.py)?::(test_\w+)(?:\[[^\]`]*\])?`",
                       README.read_text(encoding="utf-8"))
    assert len(cited) > 20  # (the Guarantees cite their tests)
    missing, current = [], None
    for file, name in cited:
        current = Path(file).name if file else current
        assert current is not None, f"::{name} is cited before any file"
        source = (ROOT / "tests" / current).read_text(encoding="utf-8")
        if not re.search(rf"^def {name}\(", source, re.M):
            missing.append(f"{current}::{name}")
    assert not missing, missing
