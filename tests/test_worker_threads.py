"""Worker processes started by search(workers=N) share the cores: BLAS and OpenMP threads
limited to cores // N each, unless the user chose a limit, which is then kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpstore import workers as workers_module
from hpstore.workers import THREAD_VARIABLES, thread_limits

SCRIPT = str(Path(__file__).parent / "scripts" / "threads.py")
CLEAN = {k: v for k, v in os.environ.items()
         if k not in (*THREAD_VARIABLES, "GOTO_NUM_THREADS")}


def run(tmp_path, workers, **env):
    out = tmp_path / "seen.jsonl"
    proc = subprocess.run(
        [sys.executable, SCRIPT, str(tmp_path / "t.db"), str(out), str(workers)],
        capture_output=True, text=True, timeout=120,
        env={**CLEAN, **env, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seen = [json.loads(line) for line in out.read_text().splitlines()]
    parent_after = json.loads(proc.stdout.splitlines()[-1])
    return seen, parent_after


def cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@pytest.mark.slow
def test_each_worker_gets_its_share_of_the_cores(tmp_path):
    seen, parent_after = run(tmp_path, 2)
    share = str(max(1, cores() // 2))
    assert len(seen) == 6 and len({s["pid"] for s in seen}) >= 1
    for s in seen:
        assert s["env"] == dict.fromkeys(THREAD_VARIABLES, share)
        if s["pools"] and "openblas" in s["pools"]:  # numpy's BLAS read it when it loaded
            assert s["pools"]["openblas"] == int(share)
    assert parent_after == dict.fromkeys(THREAD_VARIABLES)  # the parent's own is untouched


@pytest.mark.slow
def test_a_limit_the_user_set_is_kept(tmp_path):
    seen, parent_after = run(tmp_path, 2, OMP_NUM_THREADS="3")
    for s in seen:
        assert s["env"] == {**dict.fromkeys(THREAD_VARIABLES), "OMP_NUM_THREADS": "3"}
    assert parent_after["OMP_NUM_THREADS"] == "3"


def test_the_share_is_cores_over_workers_and_at_least_one(monkeypatch):
    for name in (*THREAD_VARIABLES, "GOTO_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(workers_module, "_cores", lambda: 8)
    assert thread_limits(3) == dict.fromkeys(THREAD_VARIABLES, "2")
    assert thread_limits(8) == dict.fromkeys(THREAD_VARIABLES, "1")
    assert thread_limits(32) == dict.fromkeys(THREAD_VARIABLES, "1")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    assert thread_limits(3) == {}
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    monkeypatch.setenv("GOTO_NUM_THREADS", "4")
    assert thread_limits(3) == {}
