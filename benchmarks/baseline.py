"""The Bayesian oracle of an earlier commit, run beside today's on the same problems.

``python -m benchmarks quality --baseline REV`` reads ``hpstore/oracles/bayesian.py`` and
the modules it imports from ``hpstore/oracles`` (the Gaussian process, the encoding) at the
git revision ``REV`` into a package of their own, and runs that oracle as one more system
("hpstore bayesian at REV") against today's hpstore everywhere else: a change to the
model shows up as a column of the same run, not as a comparison between runs.
"""

from __future__ import annotations

import atexit
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any

from benchmarks.problems import Problem

# the oracle's own modules: read at the revision; anything else comes from today's hpstore
MODULES = ("bayesian", "gaussian_process", "encoding")
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class BaselineError(Exception):
    """The revision cannot be read, or holds no Bayesian oracle."""


def _show(rev: str, path: str) -> str | None:
    done = subprocess.run(["git", "-C", _ROOT, "show", f"{rev}:{path}"], capture_output=True,
                          text=True, check=False)
    return done.stdout if done.returncode == 0 else None


def load(rev: str) -> type:
    """The BayesianOptimizationOracle class of ``rev``.

    Raises:
        BaselineError: ``rev`` is not a revision of this repository, or has no
            ``hpstore/oracles/bayesian.py``.
    """
    if not re.fullmatch(r"[\w./^~-]+", rev) or rev.startswith("-"):
        raise BaselineError(f"{rev!r} is not a git revision; give a commit, a tag or a branch")
    package = "hpstore_at_" + re.sub(r"\W", "_", rev)
    if package not in sys.modules:
        scratch = tempfile.mkdtemp(prefix="hpstore-baseline-")
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)  # imported by then
        folder = os.path.join(scratch, package)
        os.makedirs(folder)
        found = 0
        for name in MODULES:
            text = _show(rev, f"hpstore/oracles/{name}.py")
            if text is None:
                continue
            found += name == "bayesian"
            # its own modules from the copy, the rest of hpstore as it is today
            text = re.sub(rf"\bhpstore\.oracles\.({'|'.join(MODULES)})\b", rf"{package}.\1",
                          text)
            with open(os.path.join(folder, f"{name}.py"), "w", encoding="utf-8") as f:
                f.write(text)
        if not found:
            raise BaselineError(f"no hpstore/oracles/bayesian.py at {rev!r} (is it a "
                                f"revision of this repository?)")
        open(os.path.join(folder, "__init__.py"), "w", encoding="utf-8").close()
        sys.path.insert(0, os.path.dirname(folder))
    return importlib.import_module(f"{package}.bayesian").BayesianOptimizationOracle


def runner(rev: str) -> Any:
    """A quality-benchmark system running the Bayesian oracle of ``rev``."""
    cls = load(rev)

    def run(problem: Problem, seed: int, budget: int, evaluate: Any) -> None:
        import hpstore
        from benchmarks.quality import drive, hpstore_space

        drive(cls(hpstore.Objective("value", "min"), max_trials=budget,
                  hyperparameters=hpstore_space(problem), seed=seed), evaluate)
    return run
