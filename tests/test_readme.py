"""The README's SQL runs against a real search file, so the docs cannot drift from the schema."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from _workers import objective_value, open_oracle

README = Path(__file__).resolve().parent.parent / "README.md"


def sql_blocks() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_has_sql_examples():
    assert len(sql_blocks()) >= 6


def test_every_readme_query_runs_on_a_real_search(tmp_path):
    path = str(tmp_path / "search.db")
    oracle = open_oracle(path, max_trials=12, seed=2, max_retries_per_trial=1)
    for i in range(12):
        trial = oracle.create_trial("t")
        if trial.status != "RUNNING":
            break
        oracle.update_trial(trial.trial_id, {"loss": objective_value(trial.hyperparameters.values)})
        oracle.update_trial(trial.trial_id, {"loss": 1.0}, step=1)
        trial.status = "INVALID" if i == 3 else "COMPLETED"
        oracle.end_trial(trial)
    conn = sqlite3.connect(path)
    for query in sql_blocks():
        rows = conn.execute(query).fetchall()
        assert rows, f"no rows from README query:\n{query}"


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
