"""Inputs a person types or a terminal imposes, taken by every tool without a traceback:
numbers beyond 64 bits, a terminal that cannot show a name, columns with one name, files
to enqueue with a repeated column, and retired trials left out of the ranking."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import hpstore

ROOT = Path(__file__).resolve().parent.parent
HUGE = str(2**64)


def hpstore_command(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hpstore", *args], capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


@pytest.fixture(scope="module")
def search(tmp_path_factory) -> str:
    """Five completed trials of a space with names beyond ASCII."""
    path = str(tmp_path_factory.mktemp("inputs") / "search.db")
    hp = hpstore.HyperParameters()
    hp.Float("størrelse", -10, 10)
    hp.Choice("kind", ["å", "ø"])
    oracle = hpstore.RandomSearchOracle("loss", max_trials=5, hyperparameters=hp, seed=3,
                                        database=path)
    while (trial := oracle.create_trial("w")).status == "RUNNING":
        oracle.update_trial(trial.trial_id, {"loss": trial.hyperparameters["størrelse"] ** 2})
        oracle.end_trial(trial)
    oracle.close()
    return path


@pytest.mark.parametrize("args", [
    ["show", "{db}", HUGE], ["history", "{db}", "--trial", HUGE], ["trials", "{db}", "--limit",
    HUGE], ["best", "{db}", "-n", HUGE], ["watch", "{db}", "--once", "--interval", "1e300"],
    ["retire", "{db}", HUGE], ["note", "{db}", HUGE, "text"]])
def test_a_number_too_large_for_the_file_is_one_error_line(search, args):
    done = hpstore_command(*[a.replace("{db}", search) for a in args])
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    # one error line (after argparse's usage, for an option's value)
    assert "error:" in done.stderr.splitlines()[-1], done.stderr


def test_a_terminal_that_cannot_show_a_name_gets_it_escaped(search, tmp_path):
    for args in (["summary", search], ["trials", search], ["best", search]):
        done = hpstore_command(*args, PYTHONIOENCODING="ascii")
        assert done.returncode == 0, done.stderr
        assert "st\\xf8rrelse" in done.stdout, done.stdout  # escaped, not dropped
    report = tmp_path / "r.html"
    done = hpstore_command("report", search, "-o", str(report), PYTHONIOENCODING="ascii")
    assert done.returncode == 0 and report.exists(), done.stderr  # written, and said so


def test_columns_with_one_name_are_all_kept_in_json(search):
    done = hpstore_command("sql", search, "SELECT 1 AS a, 2 AS a, 3 AS a", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"a": 1, "a:2": 2, "a:3": 3}]


def test_best_leaves_out_retired_trials_as_get_best_trials_does(search, tmp_path):
    path = str(tmp_path / "copy.db")
    hpstore_command("backup", search, path)
    oracle = hpstore.RandomSearchOracle("loss", database=path)
    ranked = [t.trial_id for t in oracle.get_best_trials(5)]
    oracle.close()
    assert hpstore_command("retire", path, ranked[0]).returncode == 0
    done = hpstore_command("best", path, "-n", "5", "--format", "json")
    assert [row["trial_id"] for row in json.loads(done.stdout)] == ranked[1:]


@pytest.mark.parametrize("content, message", [
    (b"x,kind,x\n1,\xc3\xa5,2\n", "column 'x' appears more than once"),
    (b"x,kind\n", "has a header but no configuration"),
    (b"\xff\xfex,kind\n1,a\n", "is not UTF-8 text"),
])
def test_a_file_to_enqueue_that_is_not_a_table_of_configurations_is_refused(
        search, tmp_path, content, message):
    path = str(tmp_path / "copy.db")
    hpstore_command("backup", search, path)
    given = tmp_path / "configs.csv"
    given.write_bytes(content)
    done = hpstore_command("enqueue", path, "--file", str(given))
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert str(given) in done.stderr
    oracle = hpstore.RandomSearchOracle("loss", database=path)
    assert oracle.enqueued() == [] and len(oracle.trials) == 5  # nothing enqueued
    oracle.close()
