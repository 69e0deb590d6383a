"""What the spawned children of tests/test_faults.py, test_faults_disk.py and
test_script_end.py run, and the helpers they share.

Spawned children import this module by name, so it holds no tests itself.
"""

from __future__ import annotations

import argparse  # noqa: F401 - imported while still root: see act_as
import contextlib
import csv  # noqa: F401 - imported while still root: see act_as
import hashlib
import io
import json
import multiprocessing as mp
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from _workers import DEADLINE, objective_value, open_oracle
from filelock import FileLock

import hpstore
from hpstore.cli import load_tool
from hpstore.oracle import Oracle
from hpstore.store.sqlite.readonly import connect_readonly
from hpstore.tooling import run_tool

NOBODY = 65534  # an ordinary user: root ignores file modes, so permission tests switch to it
OTHER_USER = 65533  # a second ordinary user, for files that belong to someone else

STEPS = ("create_trial", "update_trial", "end_trial")


def size(path: str | Path) -> int:
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def complete_one(oracle: Oracle, tuner_id: str) -> tuple[str, float] | None:
    """Run one trial to COMPLETED; (trial_id, score), or None when the search is over."""
    trial = oracle.create_trial(tuner_id)
    if trial.status != "RUNNING":
        return None
    oracle.update_trial(trial.trial_id, {"loss": objective_value(trial.hyperparameters.values)})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    return trial.trial_id, trial.score


def new_files_on_small_disks(folder: str) -> None:
    """Run alone in a mount namespace: for each size of a small tmpfs, from one with no
    room for a search file to one with room to spare, make a new search there and complete
    a trial; then give the disk room and do it again. Prints, as JSON, for each size: the
    first attempt's error (None when it worked), the names left in the folder, and the
    second attempt's trials and integrity check."""
    import subprocess

    report = []
    for kib in range(48, 132, 4):
        disk = os.path.join(folder, f"d{kib}")
        os.mkdir(disk)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", disk],
                       check=True)
        path = os.path.join(disk, "s.db")
        first = None
        try:
            with open_oracle(path, max_trials=6) as oracle:
                complete_one(oracle, "first")
        except hpstore.HpStoreError as exc:
            first = [type(exc).__name__, str(exc)]
        left = sorted(os.listdir(disk))
        subprocess.run(["mount", "-o", "remount,size=4m", disk], check=True)
        with open_oracle(path, max_trials=6) as oracle:
            complete_one(oracle, "again")
        report.append({"kib": kib, "first": first, "left": left,
                       "trials": query(path, "SELECT count(*) FROM trials")[0][0],
                       "integrity": integrity(path)})
    print(json.dumps(report))


def become(uid: int) -> None:
    """Switch to an ordinary user when running as root (as CI does); an ordinary user stays
    who it is, and the file modes the tests set bite it all the same."""
    if os.geteuid() == 0:
        # A Python installed under a home only root may enter (/root/.pyenv) cannot load
        # more of itself once the process is another user: what opening a search loads
        # on first use (the URL parsing of the engine choice; on Python 3.13, pathlib no
        # longer brings it) is loaded first.
        import hpstore.store.postgresql.driver
        import hpstore.tooling  # noqa: F401
        os.setgid(uid)
        os.setuid(uid)
    os.umask(0o022)


def _use_up(folder: str, what: str, first: int = 0) -> list[str]:
    """Fill the disk holding ``folder`` (another program): its bytes, or its inodes (many
    empty files, numbered from ``first``). Returns the files made."""
    import errno

    made: list[str] = []
    try:
        while True:
            name = os.path.join(folder, f"junk-{first + len(made)}")
            fd = os.open(name, os.O_WRONLY | os.O_CREAT, 0o644)
            made.append(name)
            try:
                while what == "bytes":
                    os.write(fd, b"\0" * 4096)
            finally:
                os.close(fd)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
    return made


def open_on_a_full_disk(folder: str, what: str = "bytes") -> None:
    """Run alone in a mount namespace where ``folder`` is a small tmpfs: make a search,
    fill the disk (another program; ``what``: its bytes or its inodes), open the search
    with the library and two tools, then free the space and finish the search. With no
    inode left, also a trial asked for by an oracle opened before. Prints what happened,
    as JSON."""
    import hashlib
    import shutil
    import subprocess
    import sys

    path = os.path.join(folder, "s.db")
    with open_oracle(path, max_trials=6) as oracle:
        for _ in range(3):
            complete_one(oracle, "before")
    opened = open_oracle(path, max_trials=6) if what == "inodes" else None
    junk = _use_up(folder, what)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    report: dict[str, Any] = {"free": shutil.disk_usage(folder).free}
    if opened is not None:
        try:
            opened.create_trial("opened-before")
            report["trial"] = ["created", ""]
        except hpstore.HpStoreError as exc:
            report["trial"] = [type(exc).__name__, str(exc)]
        opened.close()  # (its log folded and removed: two inodes free again)
        junk += _use_up(folder, what, first=len(junk))
    try:
        open_oracle(path, max_trials=6).close()
        report["library"] = ["opened", ""]
    except hpstore.HpStoreError as exc:
        report["library"] = [type(exc).__name__, str(exc)]
    for tool in ("summary", "check"):
        done = subprocess.run([sys.executable, "-m", "hpstore", tool, path],
                              capture_output=True, text=True, timeout=DEADLINE)
        report[tool] = [done.returncode, done.stderr]
    report["unchanged"] = hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest
    for name in junk:
        os.remove(name)
    with open_oracle(path, max_trials=6) as oracle:
        while complete_one(oracle, "after") is not None:
            pass
    with contextlib.closing(sqlite3.connect(path)) as conn:
        report["completed"] = conn.execute(
            "SELECT count(*) FROM trials WHERE status = 'COMPLETED'").fetchone()[0]
    print(json.dumps(report))


def _searched(tuner: hpstore.Tuner) -> list[Any]:
    """Run ``tuner``'s search: ["none", ""], or what it raised (type, words, whether a
    DatabaseError)."""
    try:
        tuner.search()
    except Exception as exc:
        return [type(exc).__name__, str(exc), isinstance(exc, hpstore.DatabaseError)]
    return ["none", ""]


def _run_alone(function: Any, folder: str) -> dict[str, Any]:
    """What ``function(folder, 'none')`` of this module prints (JSON), run by another
    process (the search resumed there once this one has ended)."""
    done = subprocess.run(
        [sys.executable, "-c", f"import sys, _faults; _faults.{function.__name__}"
         "(sys.argv[1], 'none')", folder], capture_output=True, text=True, timeout=DEADLINE)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def a_tuner_on_a_full_disk(folder: str, resume: str) -> None:
    """Run alone in a mount namespace where ``folder`` is a small tmpfs: a Tuner's search,
    whose third trial reports three values and then fills the disk (another program), so
    that the end of its run cannot be written. Then the space is freed and the search
    resumed (``resume``): by search() again on the same Tuner, by a new Tuner and oracle in
    the same process (a notebook cell run again), or by another process once this one has
    ended. Prints what happened, as JSON."""
    path = os.path.join(folder, "s.db")
    if resume == "another process":
        report = _run_alone(a_tuner_on_a_full_disk, folder)
        for name in report.pop("junk"):
            os.remove(name)
        finish(path, 5)
        _after(path, report)
        return
    junk: list[str] = []
    ran: list[str] = []

    def run_trial(trial: Any) -> None:
        ran.append(trial.trial_id)
        for step in range(3):
            tuner.report(trial, {"loss": float(10 * len(ran) + step)}, step=step)
        if len(ran) == 3:
            junk.extend(_use_up(folder, "bytes"))

    tuner = hpstore.Tuner(open_oracle(path, max_trials=5, seed=3), run_trial=run_trial,
                          verbose=0)
    report: dict[str, Any] = {"error": _searched(tuner), "failed": ran[-1]}
    report["seen"] = query(path, "SELECT status, run_count FROM trials WHERE trial_id = ?",
                           (ran[-1],))
    report["ran"] = ran
    if resume == "none":  # this process ends, the trial RUNNING: another resumes
        report["junk"] = junk
        print(json.dumps(report))
        return
    for name in junk:
        os.remove(name)
    if resume == "search again":
        tuner.search()
    else:
        assert resume == "new tuner", resume
        tuner = hpstore.Tuner(open_oracle(path), run_trial=run_trial, verbose=0)
        tuner.search()
    _after(path, report)


def a_stopped_trial_on_a_full_disk(folder: str, resume: str) -> None:
    """Run alone in a mount namespace where ``folder`` is a small tmpfs: a Tuner's search
    with a stopping rule, whose third trial is stopped at its first report and then fills
    the disk (another program), so that the end of its run cannot be written. Then the
    space is freed and the search resumed (``resume``: "search again", "new tuner" or
    "another process", as in a_tuner_on_a_full_disk). Prints what happened, as JSON."""
    path = os.path.join(folder, "s.db")
    junk: list[str] = []
    ran: list[str] = []

    def run_trial(trial: Any) -> None:
        ran.append(trial.trial_id)
        for step in range(3):
            value = 5000.0 if len(ran) == 3 else float(10 * len(ran) + step)
            if tuner.report(trial, {"loss": value}, step=step):
                junk.extend(_use_up(folder, "bytes"))
                return

    def new_tuner() -> hpstore.Tuner:
        return hpstore.Tuner(open_oracle(path, max_trials=5, seed=3,
                                         early_stopping=hpstore.Threshold(upper=1000.0)),
                             run_trial=run_trial, verbose=0)

    report: dict[str, Any] = {}
    if resume == "another process":
        report = _run_alone(a_stopped_trial_on_a_full_disk, folder)
        ran.extend(report["ran"])
        junk.extend(report.pop("junk"))
    else:
        tuner = new_tuner()
        report = {"error": _searched(tuner), "failed": ran[-1]}
        report["seen"] = query(path, "SELECT status, score, run_count, ended_at IS NOT NULL, "
                                     "session FROM trials WHERE trial_id = ?", (ran[-1],))
    if resume == "none":  # this process ends: another resumes
        report["junk"], report["ran"] = junk, ran
        print(json.dumps(report))
        return
    for name in junk:
        os.remove(name)
    if resume != "search again":
        tuner = new_tuner()
    tuner.search()
    report["ran"] = ran
    report["trials"] = query(path, "SELECT trial_id, status, run_count, score FROM trials "
                                   "ORDER BY number")
    report["integrity"] = integrity(path)
    print(json.dumps(report))


def _after(path: str, report: dict[str, Any]) -> None:
    """Print ``report`` with what the file holds once the search was resumed."""
    report["trials"] = query(path, "SELECT trial_id, status, run_count, score FROM trials "
                                   "ORDER BY number")
    report["values"] = query(
        path, "SELECT o.run, o.step, o.value FROM observations AS o JOIN trials AS t ON "
              "t.id = o.trial WHERE t.trial_id = ? ORDER BY o.id", (report["failed"],))
    report["integrity"] = integrity(path)
    print(json.dumps(report))


# -- a disk that fills up -------------------------------------------------------------------------
def _step(oracle: Oracle, step: str, trial: Any, done: list[tuple[str, float]]) -> Any:
    if step == "create_trial":
        trial = oracle.create_trial("filler")
        if trial.status != "RUNNING":
            raise RuntimeError(f"the search ended ({trial.status}) before the file was full")
    elif step == "update_trial":
        oracle.update_trial(trial.trial_id, {"loss": objective_value(trial.hyperparameters.values)})
    else:
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        done.append((trial.trial_id, trial.score))
    return trial


def _what_the_file_holds(path: str, trial_id: str | None) -> dict[str, Any]:
    """Seen through a separate read-only connection, right after the failed write."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        seen: dict[str, Any] = {
            "trials": conn.execute("SELECT count(*) FROM trials").fetchone()[0]}
        if trial_id is not None:
            row = conn.execute("SELECT id, status FROM trials WHERE trial_id = ?",
                               (trial_id,)).fetchone()
            seen["status"] = None if row is None else row[1]
            seen["observations"] = 0 if row is None else conn.execute(
                "SELECT count(*) FROM observations WHERE trial = ?", (row[0],)).fetchone()[0]
        return seen
    finally:
        conn.close()


def fill_the_disk(path: str, point: str, warmup: int, results: Any) -> None:
    """Complete ``warmup`` trials, then cap the size any file may grow to (RLIMIT_FSIZE, with
    SIGXFSZ ignored, so a write past it fails with EFBIG as on a full disk) and run trials
    until a write fails.

    ``point`` is the step the cap is set just before ("create_trial", "update_trial",
    "end_trial"), or "checkpoint": the log is folded into the main file, every commit then
    checkpoints, and the main file may not grow, so checkpoints fail while commits go on
    into the log until the log reaches the cap too.

    Then the cap is lifted (space freed), the failed step is retried and its trial finished
    in the same process. Reports everything on ``results``.
    """
    report: dict[str, Any] = {"done": []}
    try:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        oracle = open_oracle(path)
        wal = path + "-wal"
        done = report["done"]
        for _ in range(warmup):
            done.append(complete_one(oracle, "filler"))
        capped = False
        if point == "checkpoint":
            conn = oracle.store.db.connect()
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA wal_autocheckpoint = 1")  # checkpoint after every commit
            report["main_size"] = size(path)
            resource.setrlimit(resource.RLIMIT_FSIZE, (report["main_size"], hard))
            capped = True
        report["done_before_cap"] = len(done)
        trial, failed, error = None, None, None
        while failed is None:
            if len(done) > warmup + 100:
                raise RuntimeError("no write failed under the cap")
            for step in STEPS:
                if step == point and not capped:
                    resource.setrlimit(resource.RLIMIT_FSIZE, (size(wal) + 1, hard))
                    capped = True
                try:
                    trial = _step(oracle, step, trial, done)
                except Exception as exc:
                    failed, error = step, exc
                    break
        assert error is not None
        report.update(
            failed_step=failed, done_at_failure=len(done),
            error_type=f"{type(error).__module__}.{type(error).__qualname__}",
            error_is_hpstore=isinstance(error, hpstore.HpStoreError),
            error_is_database_error=isinstance(error, hpstore.DatabaseError),
            message=str(error), main_size_at_failure=size(path),
            wal_size_at_failure=size(wal),
            seen=_what_the_file_holds(path, None if failed == "create_trial" else
                                      trial.trial_id))
        # free the space: the same process carries on from the step that failed
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        for step in STEPS[STEPS.index(failed):]:
            trial = _step(oracle, step, trial, done)
        oracle.close()
    except BaseException as exc:
        report["crash"] = f"{type(exc).__name__}: {exc}"
    results.put(report)


def close_with_no_room_to_fold(path: str, trials: int, results: Any,
                               as_error: bool = False) -> None:
    """Complete ``trials`` trials (commits in the log), cap every file's size at the main
    file's (RLIMIT_FSIZE, SIGXFSZ ignored: EFBIG as on a full disk) so that folding the log
    in fails, and close. Reports the warnings (``as_error``: raised), sizes, what is held."""
    report: dict[str, Any] = {}
    try:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        oracle = open_oracle(path)
        report["done"] = [complete_one(oracle, "w") for _ in range(trials)]
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size(path), hard))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("error" if as_error else "always")
            try:
                oracle.close()
            except UserWarning as raised:
                report["raised"] = str(raised)
        report["warnings"] = [str(w.message) for w in caught]
        report["main_size"], report["wal_size"] = size(path), size(path + "-wal")
        report["share_left"] = oracle.store.db._share is not None
        report["connection_left"] = oracle.store.db._conn is not None
    except BaseException as exc:
        report["crash"] = f"{type(exc).__name__}: {exc}"
    results.put(report)


def close_with_the_fold_warning_an_error(path: str, trials: int, results: Any) -> None:
    close_with_no_room_to_fold(path, trials, results, as_error=True)  # (-W error)


# -- workers killed with SIGKILL ------------------------------------------------------------------
def complete_until_killed(path: str, tuner_id: str, autocheckpoint: int, started: Any,
                          progress: Any) -> None:
    """Complete trials as fast as possible, reporting each, until SIGKILL; checkpoint the log
    into the main file every ``autocheckpoint`` pages (0: never)."""
    oracle = open_oracle(path)
    oracle.store.db.connect().execute(f"PRAGMA wal_autocheckpoint = {int(autocheckpoint)}")
    started.set()
    while True:
        finished = complete_one(oracle, tuner_id)
        if finished is None:
            raise RuntimeError("the search ended before the kill")
        progress.put(finished)


def complete_some(path: str, tuner_id: str, n: int, results: Any) -> None:
    """Complete ``n`` trials, close, and report (tuner_id, [(trial_id, score)], error)."""
    done: list[Any] = []
    error = None
    try:
        with open_oracle(path) as oracle:
            done += [complete_one(oracle, tuner_id) for _ in range(n)]
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
    results.put((tuner_id, done, error))


def die_holding_every_lock(path: str, fresh_path: str, holding: Any, info: Any) -> None:
    """Hold a running trial (its worker-*.alive lock), the oracle lock (as inside
    create_trial) and the schema lock of a file not created yet (as during a migration),
    say so, and wait for SIGKILL."""
    oracle = open_oracle(path)
    trial = oracle.create_trial("doomed")
    oracle.update_trial(trial.trial_id, {"loss": 1.0})
    sidecar = Path(fresh_path + ".hpstore")
    sidecar.mkdir()
    FileLock(str(sidecar / "schema.lock")).acquire()
    with oracle.store.db.lock():
        session = oracle.store.db.session()
        assert session is not None
        info.put((trial.trial_id, session.token, os.getpid()))
        holding.set()
        while True:  # until SIGKILL
            time.sleep(1)


# -- other users ----------------------------------------------------------------------------------
def act_as(uid: int, jobs: list[tuple[str, str, str]], results: Any) -> None:
    """As ``uid``, do each (name, action, path) job and report {name: (outcome, text)}.

    Actions: "open" builds an Oracle on the file; "search" completes two trials; "trials"
    runs ``hpstore trials FILE --format json``. The outcome is "ok" or the exception's class
    name (or "exit N" for the tool). Whatever a child needs is imported while it is still
    root: the interpreter's own files may not be readable by the user it becomes.
    """
    outcomes: dict[str, tuple[str, str]] = {}
    try:
        tool = load_tool("trials")
        become(uid)
        for name, action, path in jobs:
            try:
                if action == "open":
                    open_oracle(path).close()
                    outcomes[name] = ("ok", "")
                elif action == "search":
                    with open_oracle(path, max_trials=20, seed=1) as oracle:
                        found = [complete_one(oracle, f"user-{uid}") for _ in range(2)]
                    outcomes[name] = ("ok", json.dumps(found))
                elif action == "trials":
                    out, err = io.StringIO(), io.StringIO()
                    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                        code = run_tool(tool.main, [path, "--format", "json"])
                    outcomes[name] = ("ok" if code == 0 else f"exit {code}",
                                      out.getvalue() + err.getvalue())
                else:
                    raise ValueError(action)
            except Exception as exc:
                outcomes[name] = (type(exc).__name__, str(exc))
    except BaseException as exc:
        outcomes["crash"] = (type(exc).__name__, str(exc))
    results.put(outcomes)


# -- readers holding a snapshot -------------------------------------------------------------------
def hold_a_snapshot(path: str, ready: Any, stop: Any, results: Any) -> None:
    """Hold a read transaction through hpstore.inspection until ``stop``; report the trial
    count at the start, at the end inside the transaction, and after it."""
    report: dict[str, Any] = {}
    try:
        conn = connect_readonly(path)
        conn.execute("BEGIN")
        report["at_start"] = conn.execute("SELECT count(*) FROM trials").fetchone()[0]
        ready.set()
        if not stop.wait(DEADLINE):
            raise RuntimeError("the search never finished")
        report["held"] = conn.execute("SELECT count(*) FROM trials").fetchone()[0]
        conn.execute("COMMIT")
        report["after"] = conn.execute("SELECT count(*) FROM trials").fetchone()[0]
        conn.close()
    except BaseException as exc:
        report["crash"] = f"{type(exc).__name__}: {exc}"
    results.put(report)


def run_trials_tool(path: str, ready: Any, stop: Any, results: Any) -> None:
    """Run ``hpstore trials FILE --format json`` again and again until ``stop``, then once
    more; report the COMPLETED count each run saw, and anything inconsistent."""
    runs: list[int] = []
    problems: list[str] = []
    try:
        tool = load_tool("trials")
        ready.set()
        while True:
            last = stop.is_set()
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = run_tool(tool.main, [path, "--format", "json"])
            if code != 0:
                problems.append(err.getvalue())
            else:
                rows = json.loads(out.getvalue())
                ids = [r["trial_id"] for r in rows]
                if len(ids) != len(set(ids)):
                    problems.append(f"a trial listed twice: {ids}")
                if any(r["status"] == "COMPLETED" and r["score"] is None for r in rows):
                    problems.append("a COMPLETED trial without a score")
                runs.append(sum(r["status"] == "COMPLETED" for r in rows))
            if last or len(runs) + len(problems) > 1000:
                break
            stop.wait(0.05)  # pacing, not synchronisation: leave the CPU to the writers
    except BaseException as exc:
        problems.append(f"{type(exc).__name__}: {exc}")
    results.put((runs, problems))


# -- a worker that looks at its own file ----------------------------------------------------------
def look_then_write(path: str, look: str, looked: Any, go: Any, close: Any,
                    results: Any) -> None:
    """A worker that completes two trials, then looks at its own file the way a script
    might (``look``), then, when told, completes three more, reports them, and closes when
    told."""
    done: list[Any] = []
    try:
        oracle = open_oracle(path)
        done += [complete_one(oracle, "looker") for _ in range(2)]
        if look == "connect_readonly":  # as open_database, trials_dataframe and the tools do
            connect_readonly(path).close()
        elif look == "second Oracle":  # e.g. another project in the same file
            open_oracle(path, project_name="another", max_trials=3).close()
        else:
            raise ValueError(look)
        looked.set()
        if not go.wait(DEADLINE):
            raise RuntimeError("never told to go on")
        done += [complete_one(oracle, "looker") for _ in range(3)]
        results.put(("looker", done, None))
        if not close.wait(DEADLINE):
            raise RuntimeError("never told to close")
        oracle.close()
    except BaseException as exc:
        results.put(("looker", done, f"{type(exc).__name__}: {exc}"))


# -- the tests' own helpers: what a file holds, children run and killed ---------------------------
CTX = mp.get_context("spawn")


def digest(path: str | Path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def query(path: str, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql, params).fetchall()


def integrity(path: str) -> list[tuple[Any, ...]]:
    return query(path, "PRAGMA integrity_check")


def run_child(target: Any, *args: Any) -> Any:
    """Run ``target(*args, results)`` in a spawned process; what it put on ``results``."""
    results = CTX.Queue()
    proc = CTX.Process(target=target, args=(*args, results))
    proc.start()
    report = results.get(timeout=DEADLINE)
    proc.join(DEADLINE)
    assert proc.exitcode == 0
    return report


def kill(proc: Any) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(DEADLINE)
    assert proc.exitcode == -signal.SIGKILL


def finish(path: str, max_trials: int) -> None:
    """Resume the search with a fresh oracle and run it to the end."""
    with open_oracle(path, max_trials=max_trials) as oracle:
        while complete_one(oracle, "resumer") is not None:
            pass


def assert_finished(path: str, n: int) -> None:
    """The file is whole and holds n completed trials, no two with the same values."""
    assert integrity(path) == [("ok",)]
    assert query(path, "SELECT count(*), count(DISTINCT trial_id), count(DISTINCT values_key),"
                       " sum(status = 'COMPLETED') FROM trials") == [(n, n, n, n)]


def run_script(template: str, path: Path) -> subprocess.CompletedProcess[str]:
    """Run a script (``template`` with the tests' folder and ``path`` filled in) as its own
    Python process, as a user runs one."""
    tests = str(Path(__file__).resolve().parent)
    return subprocess.run([sys.executable, "-c", template.format(tests=tests, path=str(path))],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(tests).parent)})


def an_ext4_image(folder: Path, megabytes: int, *options: str) -> tuple[Path, Path]:
    """An image of an ext4 file system of ``megabytes`` made with mkfs.ext4's ``options``, and
    an empty folder to mount it on (as root, in a mount namespace: see the callers); skips
    the test where that cannot be done (not root, no mkfs.ext4 or unshare)."""
    if os.geteuid() != 0 or not shutil.which("mkfs.ext4") or not shutil.which("unshare"):
        pytest.skip("needs root, mkfs.ext4 and unshare (a loop device mounted)")
    image, target = folder / "ext4.img", folder / "mounted"
    target.mkdir()
    with open(image, "wb") as f:
        f.truncate(megabytes << 20)
    if subprocess.run(["mkfs.ext4", "-q", "-F", *options, str(image)],
                      capture_output=True).returncode:
        pytest.skip("mkfs.ext4 failed")
    return image, target


def in_a_mount(folder: Path, mount: str, *command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` after ``mount`` (a shell command on "$1", the folder), both in a
    mount namespace of the command's own: what is mounted is seen by no other process and
    is gone when the command ends."""
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "--mount", "--map-root-user", "true"], capture_output=True).returncode:
        pytest.skip("needs unshare with mount and user namespaces")
    return subprocess.run(
        ["unshare", "--mount", "--map-root-user", "sh", "-c",
         f'{mount} && shift && exec "$@"', "sh", str(folder), *command],
        capture_output=True, text=True, timeout=DEADLINE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def a_trial_left_running(report: dict[str, Any], disk: Any
                         ) -> tuple[str, dict[str, tuple[str, int, float]]]:
    """Check the report of a search whose trial's end met a full disk on ``disk`` (see
    a_tuner_on_a_full_disk): the error says so and that the trial stays RUNNING and runs
    again, the file shows it RUNNING then and is whole, and the search then completed its
    5 trials. Returns the trial's id and every trial's (status, run, score)."""
    kind, said, is_database_error = report["error"]
    assert kind == "DatabaseError" and is_database_error, said
    trial = report["failed"]
    assert f"the disk holding {disk} is full" in said and "free some space" in said
    assert f"Trial {trial} could not be handed back either: it stays RUNNING" in said
    assert "runs again from its start" in said
    assert report["seen"] == [["RUNNING", 1]]  # its run's end was not written
    assert report["integrity"] == [["ok"]]
    trials = {t: (status, run, score) for t, status, run, score in report["trials"]}
    assert len(trials) == 5 and {s for s, _, _ in trials.values()} == {"COMPLETED"}
    return trial, trials
