"""Test-wide settings.

Hypothesis profiles: the suite is deterministic unless asked otherwise. ``ci`` (the
default) derandomises every property test and keeps no example database, so
``python -m pytest -q`` draws the same examples on every machine and every run: a flaky
failure cannot appear in CI, nor be replayed from a database left by an earlier run.
``HYPOTHESIS_PROFILE=explore`` draws fresh random examples (and remembers failures) to
look for new bugs; ``--hypothesis-seed=N`` with it repeats one such run.

Keras runs on the torch backend (a CPU build) unless told otherwise; set before anything
imports keras, and inherited by every process a test starts.

Tests that press Ctrl-C on a child need it to take Ctrl-C as a terminal's job does: run as
a background job of a script, the suite would start with SIGINT ignored, and every child
would inherit that.

The tools remember, in the user's cache folder, how far a file's contents were checked;
the tests (and every process they start) keep those marks in a folder of their own.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile

import pytest
from hypothesis import settings

# The helper modules' asserts report the values they compared, as the tests' own do.
pytest.register_assert_rewrite("_faults", "_workers", "_store", "_stores", "_dashboard",
                               "_durability", "_pgworkers", "_pg_oracles")

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="hpstore-test-cache-")
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], ignore_errors=True)
# torch's compiler caches in the temp folder by default; the suite leaves nothing there
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR",
                      os.path.join(os.environ["XDG_CACHE_HOME"], "torchinductor"))
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session", autouse=True)
def _postgres_server_stopped_at_the_end():
    """The PostgreSQL tests start a throwaway server on first use (tests/_postgres.py): it
    is stopped, and what the tests made on a server of your own dropped, when they end."""
    yield
    import _postgres

    _postgres.stop()
