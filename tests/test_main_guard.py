"""search(workers=N) in a script without `if __name__ == "__main__":` is one clear error
that says what to change, not a traceback per worker and a silent fallback."""

from __future__ import annotations

import multiprocessing as mp
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import hpstore

SCRIPT = str(Path(__file__).parent / "scripts" / "no_main_guard.py")
GUARD = 'if __name__ == "__main__":'


@pytest.mark.slow
def test_a_script_without_a_main_guard_is_told_once(tmp_path):
    db = tmp_path / "guard.db"
    proc = subprocess.run([sys.executable, SCRIPT, str(db)], capture_output=True, text=True,
                          timeout=120, env={**os.environ,
                                            "PYTHONPATH": os.pathsep.join(sys.path)})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    last = proc.stderr.splitlines()[-1]
    assert last.startswith("hpstore.errors.FatalError: search(workers=2) was called while a "
                           "worker process was importing this script"), out
    assert GUARD in last and out.count(GUARD) == 1, out
    # no worker said anything: no traceback of theirs, nor multiprocessing's own error
    assert out.count("Traceback") == 1 and "bootstrapping phase" not in out, out
    assert "Process " not in out and "exited with code" not in out, out
    # and no trial ran in this process instead
    assert sqlite3.connect(db).execute("SELECT count(*) FROM trials").fetchone() == (0,)


def test_a_spawned_child_of_another_program_gets_the_error_itself(monkeypatch):
    # a process that multiprocessing is still bootstrapping, started by something else
    monkeypatch.setattr(mp.current_process(), "_inheriting", True, raising=False)
    monkeypatch.delenv("HPSTORE_TUNER_WORKER", raising=False)
    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 1)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=2, hyperparameters=hp)
    tuner = hpstore.Tuner(oracle, run_trial=lambda t: 1.0, verbose=0)
    with pytest.raises(hpstore.FatalError, match=r'under `if __name__ == "__main__":`'):
        tuner.search(workers=3)
    assert len(oracle.trials) == 0
    tuner.search()  # in-process needs no guard
    assert len(oracle.trials) == 2


@pytest.mark.slow
def test_workers_that_cannot_rebuild_the_tuner_stop_the_search_with_what_to_change(tmp_path):
    # the workers die unpickling a class they cannot import: the search must not go on
    # in this process alone as if two workers ran it
    db = tmp_path / "local.db"
    proc = subprocess.run(
        [sys.executable, str(Path(SCRIPT).parent / "tuner_class_under_main_guard.py"),
         str(db)], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    last = proc.stderr.splitlines()[-1]
    assert last.startswith("hpstore.errors.FatalError: search(workers=2): the worker "
                           "processes could not start"), out
    assert "at the top level of a module" in last, out
    assert "Worker " not in out, out  # no message per worker: one for all, last
    assert sqlite3.connect(db).execute("SELECT count(*) FROM trials").fetchone() == (0,)


def test_a_tuner_that_cannot_be_sent_to_workers_is_told_what_to_change(tmp_path):
    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 1)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=2, hyperparameters=hp,
                                        database=str(tmp_path / "s.db"))
    tuner = hpstore.Tuner(oracle, run_trial=lambda t: 1.0, verbose=0)
    with pytest.raises(hpstore.FatalError, match="not as a lambda") as raised:
        tuner.search(workers=2)
    assert "cannot be sent" in str(raised.value) and "lambda" in str(raised.value)
    assert len(oracle.trials) == 0


@pytest.mark.parametrize("how", ["stdin", "-c"])
def test_workers_asked_for_from_an_interactive_session_are_told_what_to_do(tmp_path, how):
    # from a notebook (or `python -`), functions defined there cannot be imported by the
    # spawned workers: each failed with a traceback, and the message said to define them
    # "at the top level of a module", where they were
    code = (
        "import hpstore\n"
        "def build(hp):\n"
        "    hp.Float('x', 0, 1)\n"
        "def run_trial(trial):\n"
        "    return trial.hyperparameters['x']\n"
        f"oracle = hpstore.RandomSearchOracle('loss', max_trials=4, seed=1, "
        f"database={str(tmp_path / 'session.db')!r})\n"
        "try:\n"
        "    hpstore.Tuner(oracle, hypermodel=build, run_trial=run_trial).search(workers=2)\n"
        "except hpstore.FatalError as exc:\n"
        "    print('FATAL', exc)\n"
        "print('TRIALS', len(oracle.trials))\n")
    args = [sys.executable, "-"] if how == "stdin" else [sys.executable, "-c", code]
    proc = subprocess.run(args, input=code if how == "stdin" else None, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert "Traceback" not in proc.stderr, proc.stderr
    fatal = next(line for line in proc.stdout.splitlines() if line.startswith("FATAL"))
    assert "from a notebook, an interactive session, python -c" in fatal
    assert "build, run_trial are defined in no file" in fatal and ".py file" in fatal
    assert "TRIALS 0" in proc.stdout


_MODEL = (
    "import hpstore\n"
    "def build(hp):\n"
    "    hp.Float('x', 0, 1)\n"
    "def run_trial(trial):\n"
    "    return trial.hyperparameters['x']\n")


def _search_script(model: str, path: Path) -> str:
    return (f"import hpstore\nfrom {model} import build, run_trial\n"
            f"oracle = hpstore.RandomSearchOracle('loss', max_trials=4, seed=1, "
            f"database={str(path)!r})\n"
            "try:\n"
            "    hpstore.Tuner(oracle, hypermodel=build, run_trial=run_trial, verbose=0"
            ").search(workers=2)\n"
            "except hpstore.FatalError as exc:\n"
            "    print('FATAL', exc)\n"
            "print('COMPLETED', sum(t.status == 'COMPLETED' for t in oracle.trials.values()))\n")


@pytest.mark.slow
def test_a_script_read_from_standard_input_runs_workers_on_what_it_imports(tmp_path):
    # each worker ran the file "<stdin>": "No such file or directory", then a FatalError
    # saying to define run_trial at the top level of a module, where it was
    (tmp_path / "model.py").write_text(_MODEL)
    proc = subprocess.run([sys.executable, "-"], input=_search_script("model", tmp_path /
                                                                      "stdin.db"),
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert "COMPLETED 4" in proc.stdout, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.slow
def test_a_packages_main_module_is_named_as_what_workers_never_import(tmp_path):
    # "the Tuner subclass, run_trial and the hypermodel must be defined at the top level of
    # a module", after a traceback per worker: they were, in pkg/__main__.py
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "__main__.py").write_text(
        _MODEL + "if __name__ == '__main__':\n" + "".join(
            "    " + line + "\n"
            for line in _search_script("pkg.__main__", tmp_path / "pkg.db").splitlines()
            if not line.startswith("from pkg")))
    proc = subprocess.run([sys.executable, "-m", "pkg"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    fatal = next((line for line in proc.stdout.splitlines() if line.startswith("FATAL")), "")
    assert "__main__.py, which worker processes never import" in fatal, (
        proc.stdout + proc.stderr)
    assert "COMPLETED 0" in proc.stdout and "Traceback" not in proc.stderr, proc.stderr


def _at_most_files(limit: int):
    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    return apply


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_NOFILE is POSIX")
def test_workers_beyond_the_open_files_limit_are_one_error_naming_it(tmp_path):
    # Each worker takes a few descriptors in the parent (its pipes): 16 workers under a
    # limit of 48 run out part of the way through starting them (macOS's default limit is
    # 256). One FatalError naming the limit, not multiprocessing's OSError traceback; the
    # workers started are stopped and nothing ran; the same script finishes once it may.
    db = tmp_path / "files.db"
    script = str(Path(SCRIPT).parent / "search.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, script, str(db), "6", "--workers", "16"],
                          capture_output=True, text=True, timeout=300, env=env,
                          preexec_fn=_at_most_files(48))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    last = proc.stderr.splitlines()[-1]
    assert last.startswith("hpstore.errors.FatalError: search(workers=16): worker process "), out
    assert "(ulimit -n)" in last and "fewer workers" in last, out
    assert "OSError" not in out and "Too many open files')" not in out, out
    assert "RUNNING" not in proc.stdout, out  # no worker ran a trial
    assert sqlite3.connect(db).execute("SELECT count(*) FROM trials").fetchone() == (0,)
    again = subprocess.run([sys.executable, script, str(db), "6", "--workers", "2"],
                           capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert sqlite3.connect(db).execute(
        "SELECT count(*) FROM trials WHERE status = 'COMPLETED'").fetchone() == (6,)
