"""hpstore as a typed library for its users (it ships py.typed): a user's script written as
the README shows type-checks under ``mypy --strict`` against hpstore's own annotations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

USER_SCRIPT = '''
from typing import Any

import hpstore


class MyTuner(hpstore.Tuner):
    def run_trial(self, trial: hpstore.Trial, *args: Any, **kwargs: Any) -> dict[str, float]:
        # the README's subclass pattern: its hypermodel builds, and fits when it can
        model = self.hypermodel.build(trial.hyperparameters)
        self.hypermodel.fit(trial.hyperparameters, model)
        return {"loss": 1.0}


class Mutating(hpstore.Oracle):
    def populate_space(self, trial_id: str) -> dict[str, Any]:
        draw = self.rng(trial_id, "mutation")  # a trial id, a label of one's own
        return {"status": "RUNNING", "values": {"x": draw.random()}}

    @hpstore.synchronized
    def note(self) -> int:
        return 1


oracle = Mutating("loss", max_trials=3)
count: int = oracle.note()  # the subclass's own method, on the object it built
best: list[hpstore.Trial] = oracle.get_best_trials(1)
'''
#: what mypy must find wrong in the same script (so hpstore's types were seen, not Any),
#: the shared arguments of the oracles that take their own first (``**kwargs``) included
MISTAKES = {
    'oracle.get_best_trials("1")': 'incompatible type "str"',
    'hpstore.BayesianOptimizationOracle("loss", databse="s.db")': 'keyword argument "databse"',
    'hpstore.HyperbandOracle("loss", max_trails=5)': 'keyword argument "max_trails"',
    'hpstore.HyperbandOracle("loss", early_stopping="median")':
        'has incompatible type "str"; expected "StoppingRule | None"',
}


def mypy(script: Path) -> subprocess.CompletedProcess[str]:
    """``mypy --strict`` on ``script``, following hpstore's modules for their types only."""
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
         "--cache-dir", str(script.parent / "cache"), str(script)],
        capture_output=True, text=True, timeout=600, cwd=script.parent,
        env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.slow
def test_a_users_script_type_checks_strictly_against_hpstores_annotations(tmp_path):
    # self.hypermodel was BuildFunction | Any: the README's .fit(...) was an error, and
    # self.rng(trial_id) one too (salt typed int)
    script = tmp_path / "user.py"
    script.write_text(USER_SCRIPT)
    done = mypy(script)
    assert done.returncode == 0, done.stdout + done.stderr
    script.write_text(USER_SCRIPT + "".join(f"{line}\n" for line in MISTAKES))
    done = mypy(script)
    assert done.returncode == 1, done.stdout
    for line, said in MISTAKES.items():  # (Bayesian's and Hyperband's were **kwargs: Any)
        assert said in done.stdout, (line, done.stdout)
