"""hpstore's oracles side by side with KerasTuner's on searches whose space grows while
they run. Runs where ``keras_tuner`` imports (KERAS_BACKEND defaults to torch here)."""

from __future__ import annotations

import contextlib
import io
import os

import pytest
from test_growing_space import _drive, flag_children, nested, plain_four, two_children

os.environ.setdefault("KERAS_BACKEND", "torch")
kt = pytest.importorskip("keras_tuner")

import hpstore  # noqa: E402

pytestmark = pytest.mark.kerastuner


@pytest.mark.parametrize("declare", [flag_children, two_children, nested, plain_four])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_grid_runs_the_trials_kerastuner_runs(tmp_path, declare, workers):
    with contextlib.redirect_stdout(io.StringIO()):  # KerasTuner prints every trial
        theirs = kt.oracles.GridSearchOracle(objective="loss", max_trials=100)
        theirs._set_project_dir(str(tmp_path), "kt")
        kt_ran = _drive(theirs, declare, workers)
    ours = hpstore.GridSearchOracle("loss", max_trials=100, database=str(tmp_path / "g.db"))
    ran = _drive(ours, declare, workers)
    assert sorted(ran) == sorted(kt_ran)
    assert len(ran) == len(set(ran))
