"""Ctrl-C as a terminal sends it: SIGINT to the whole process group of a running search, in
one process, with worker processes, while they start, and in `hpstore demo`. One message
comes out, its last words say how to resume, no traceback, and the trials are handed back.

Each test waits for the search to reach a point recorded in its file (trials running or
completed), never for a length of time.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = str(Path(__file__).parent / "scripts" / "search.py")
DEADLINE = 120
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
HINT = "Run the same command again to resume."

pytestmark = pytest.mark.slow


def start(*args: str) -> subprocess.Popen:
    """A process in a group of its own, as a shell starts a job: its workers join it."""
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=ENV,
                            start_new_session=True)


def finish(proc: subprocess.Popen) -> str:
    """What the search printed once it ended; if it did not end in time, a failure that
    shows where each of its threads was (the script dumps them on SIGUSR1)."""
    try:
        return proc.communicate(timeout=DEADLINE)[0]
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGUSR1)
        try:
            out = proc.communicate(timeout=10)[0]
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out = proc.communicate()[0]
        raise AssertionError(f"the search did not end in {DEADLINE} s:\n{out}") from None


def count(db: str, where: str) -> int:
    if not os.path.exists(db):
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(f"SELECT count(*) FROM trials WHERE {where}").fetchone()[0]
    except sqlite3.OperationalError:  # the file is still being created
        return 0
    finally:
        conn.close()


def wait_for_file(proc: subprocess.Popen, db: str, where: str, n: int) -> None:
    """Until ``n`` trials of the file match ``where`` (polling its state, with a deadline)."""
    deadline = time.monotonic() + DEADLINE
    while count(db, where) < n:
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode}: {proc.stdout.read()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"never {n} trials with {where}")
        time.sleep(0.02)  # a pause between two looks at the file, not a synchronisation


def status_log(db: str) -> list[tuple]:
    return sqlite3.connect(db).execute(
        "SELECT trial_id, from_status, to_status, tuner_id, message FROM status_log").fetchall()


def ctrl_c(proc: subprocess.Popen) -> tuple[int, list[str]]:
    os.killpg(proc.pid, signal.SIGINT)
    out = finish(proc)
    return proc.returncode, [line for line in out.splitlines() if line.strip()]


def assert_one_clean_message(lines: list[str]) -> None:
    text = "\n".join(lines)
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert sum("Search interrupted" in line for line in lines) == 1, text
    assert lines[-1].endswith(HINT), text


def test_ctrl_c_in_one_process(tmp_path):
    db = str(tmp_path / "one.db")
    proc = start(SCRIPT, db, "8", "--block")
    wait_for_file(proc, db, "status = 'RUNNING'", 1)
    code, lines = ctrl_c(proc)
    assert code == 130
    assert_one_clean_message(lines)
    assert "trial 0 was handed back" in lines[-1]
    assert count(db, "status = 'IDLE' AND message LIKE '%Ctrl-C%'") == 1


def test_ctrl_c_with_worker_processes(tmp_path):
    db = str(tmp_path / "workers.db")
    proc = start(SCRIPT, db, "8", "--block", "--workers", "2")
    wait_for_file(proc, db, "status = 'RUNNING'", 2)
    code, lines = ctrl_c(proc)
    assert code == 130
    assert_one_clean_message(lines)
    # each worker handed its trial back itself, in one piece
    assert count(db, "status = 'RUNNING'") == 0, status_log(db)
    assert count(db, "status = 'IDLE' AND message LIKE '%Ctrl-C%'") == 2
    # the message names what each worker handed back (it said "running trials were")
    a, b = (t for (t,) in sqlite3.connect(db).execute(
        "SELECT trial_id FROM trials WHERE status = 'IDLE'"))
    assert lines[-1] in (f"Search interrupted; trials {a} and {b} were handed back to run "
                         f"again. {HINT}", f"Search interrupted; trials {b} and {a} were "
                         f"handed back to run again. {HINT}"), lines
    again = start(SCRIPT, db, "8")
    assert finish(again) and again.returncode == 0
    assert count(db, "status = 'COMPLETED'") == 8


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["one-process", "workers"])
def test_sigterm_hands_the_trials_back_as_ctrl_c_does(tmp_path, workers):
    # kill, timeout, docker stop, a job scheduler preempting the job (SIGTERM to each of
    # its processes): the running trials were left to be found interrupted, as after
    # kill -9, and the third such stop failed a trial ("its worker died 3 times")
    db = str(tmp_path / "term.db")
    running = 2 if workers else 1
    for _ in range(3):
        proc = start(SCRIPT, db, "8", "--block", *workers)
        wait_for_file(proc, db, "status = 'RUNNING'", running)
        os.killpg(proc.pid, signal.SIGTERM)
        out = finish(proc)
        assert proc.returncode == 130, out
        assert_one_clean_message([line for line in out.splitlines() if line.strip()])
        assert count(db, "status = 'RUNNING'") == 0, status_log(db)
    assert count(db, "interruptions > 0 OR status = 'FAILED'") == 0, status_log(db)
    again = start(SCRIPT, db, "8")
    assert finish(again) and again.returncode == 0
    assert count(db, "status = 'COMPLETED'") == 8


def worker_pids(proc: subprocess.Popen) -> list[int]:
    """The search's worker processes (spawned children of ``proc``)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # not a process, or ended meanwhile
            continue
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        if ppid == proc.pid and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_workers_stopped_without_their_parent_do_not_leave_it_the_search(tmp_path, sig):
    # a group Ctrl-C that the parent ignored (a background job), or every worker killed:
    # the parent ran the rest of the search alone, one trial at a time, printed nothing
    # and exited 0
    db = str(tmp_path / "workers.db")
    proc = start(SCRIPT, db, "8", "--block", "--workers", "2")
    wait_for_file(proc, db, "status = 'RUNNING'", 2)
    workers = worker_pids(proc)
    assert len(workers) == 2
    for pid in workers:
        os.kill(pid, sig)
    out = finish(proc)  # (were it to run trials, they block)
    lines = [line for line in out.splitlines() if line.strip()]
    if sig == signal.SIGINT:
        assert proc.returncode == 130
        assert_one_clean_message(lines)
    else:
        assert proc.returncode == 1 and "All 2 worker processes died" in out, out
    assert count(db, f"tuner_id = 'worker-{proc.pid}'") == 0  # the parent ran nothing


def test_ctrl_c_while_workers_start(tmp_path):
    db = str(tmp_path / "starting.db")
    proc = start(SCRIPT, db, "8", "--block", "--workers", "2")
    for line in proc.stdout:  # they run, and are still importing the script
        if line.startswith("Started 2 worker processes"):
            break
    code, lines = ctrl_c(proc)
    assert code == 130
    assert_one_clean_message(lines)
    assert count(db, "status = 'RUNNING'") == 0


def test_ctrl_c_in_the_demo(tmp_path):
    db = str(tmp_path / "demo.db")
    proc = start("-m", "hpstore", "demo", "--database", db, "--trials", "5000")
    wait_for_file(proc, db, "status = 'COMPLETED'", 3)
    code, lines = ctrl_c(proc)
    assert code == 130
    assert_one_clean_message(lines)
    assert count(db, "status = 'RUNNING'") == 0


def test_workers_that_cannot_start_a_thread_run_the_search_all_the_same(tmp_path):
    # the watch on the parent could not start (ulimit -u, which counts threads): a
    # RuntimeError traceback, and the whole search stopped
    db = str(tmp_path / "threads.db")
    proc = start(SCRIPT, db, "6", "--workers", "2", "--no-threads")
    out = finish(proc)
    assert proc.returncode == 0 and "Search finished." in out, out
    assert "RuntimeError" not in out
    assert count(db, "status = 'COMPLETED'") == 6


def test_workers_that_end_the_search_and_then_fail_at_exit_leave_it_finished(tmp_path):
    # a native library crashing at interpreter teardown: every trial COMPLETED, yet
    # search() raised "All 2 worker processes died"
    db = str(tmp_path / "teardown.db")
    proc = start(SCRIPT, db, "6", "--workers", "2", "--fail-at-exit")
    out = finish(proc)
    assert proc.returncode == 0 and "Search finished." in out, out
    assert "died" not in out
    # each failure is named, and not as a trial to run again
    assert out.count("after its search had ended (it held no trial)") == 2, out
    assert "will run again" not in out, out
    assert count(db, "status = 'COMPLETED'") == 6


def test_a_ctrl_c_as_the_writers_turn_is_taken_gives_the_turn_back(tmp_path, monkeypatch):
    # A Ctrl-C landing just as the turnstile's lock was taken kept it: every other
    # process's writes then waited the turnstile's patience (50 ms each) until this one
    # wrote again, a notebook cell stopped and left idle slowing every worker.
    import fcntl

    from _workers import open_oracle

    from hpstore.store.sqlite import locks

    path = tmp_path / "s.db"
    oracle = open_oracle(str(path), max_trials=5)
    trial = oracle.create_trial("w")
    taken = locks._try_lock

    def taken_then_interrupted(fd):
        assert taken(fd)
        raise KeyboardInterrupt

    monkeypatch.setattr(locks, "_try_lock", taken_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
    monkeypatch.undo()
    lock_file = next(Path(str(path) + ".hpstore").glob("write.lock"))
    fd = os.open(lock_file, os.O_RDWR)
    try:  # another open of the file (as another process's) takes the lock at once
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    oracle.update_trial(trial.trial_id, {"loss": 2.0})  # nothing was left half done
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    assert oracle.get_trial(trial.trial_id).score == 2.0
    oracle.close()


_TERM_TWICE = """
import os, signal, sqlite3, sys, time
import hpstore

def run_trial(trial):
    os.kill(os.getpid(), signal.SIGTERM)  # stopped while the trial runs
    time.sleep(60)  # (never reached: the SIGTERM is a Ctrl-C)

oracle = hpstore.RandomSearchOracle(objective="loss", max_trials=3, database=sys.argv[1],
                                    seed=1)
oracle.update_space(hpstore.HyperParameters.from_config(
    {"space": [{"class_name": "Int", "config": {"name": "x", "min_value": 1,
                                               "max_value": 9}}], "values": {}}))
end_trial = oracle.end_trial

def handed_back(trial, *args, **kwargs):
    if trial.status == "IDLE":
        os.kill(os.getpid(), signal.SIGTERM)  # stopped again as the trial is handed back
    return end_trial(trial, *args, **kwargs)

oracle.end_trial = handed_back
try:
    hpstore.Tuner(oracle, run_trial=run_trial, verbose=0).search()
except KeyboardInterrupt:
    print("interrupted")
"""


def test_a_second_sigterm_while_the_trial_is_handed_back_waits_for_it(tmp_path):
    # a second Ctrl-C meanwhile was ignored, but a second SIGTERM (a second `kill`, a
    # scheduler that signals the job twice) interrupted the hand-back: the trial was left
    # RUNNING, to be found interrupted as after kill -9
    script = tmp_path / "term_twice.py"
    script.write_text(_TERM_TWICE)
    db = str(tmp_path / "twice.db")
    done = subprocess.run([sys.executable, str(script), db], capture_output=True, text=True,
                          timeout=DEADLINE, env=ENV)
    assert done.stdout.strip() == "interrupted", done.stdout + done.stderr
    assert count(db, "status = 'RUNNING'") == 0, status_log(db)
    assert count(db, "status = 'IDLE'") == 1, status_log(db)


def test_a_sigterm_handler_set_during_the_search_stays_after_it():
    # a framework's preemption handler installed in fit must outlive search()
    from hpstore.workers import terminated_as_ctrl_c

    def own(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with terminated_as_ctrl_c():
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, own)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # given back
        with terminated_as_ctrl_c():
            signal.signal(signal.SIGTERM, own)
        assert signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, previous)


# The end of each script below: a Tuner's search of that many trials with its run_trial.
_SEARCH = """
hp = hpstore.HyperParameters()
hp.Int("x", 1, 99)
oracle = hpstore.RandomSearchOracle(objective="loss", max_trials={trials},
                                    database=sys.argv[1], seed=1, hyperparameters=hp)
hpstore.Tuner(oracle, run_trial=run_trial, verbose=0).search()
"""


_POOL_IN_RUN_TRIAL = """
import multiprocessing as mp, os, signal, sys
import hpstore

def square(v):
    return v * v

def handler_in_a_child():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # what a forked child (a Pool's worker) does on SIGTERM
        os.write(write, b"1" if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    return os.read(read, 1) == b"1"

def run_trial(trial):
    x = trial.hyperparameters.values["x"]
    assert handler_in_a_child(), "a forked child takes SIGTERM as a Ctrl-C"
    with mp.get_context("fork").Pool(2) as pool:  # its exit ends the workers with SIGTERM
        return float(sum(pool.map(square, [x, x + 1, x + 2])))

""" + _SEARCH.format(trials=6) + """
print("done", sum(t.status == "COMPLETED" for t in oracle.trials.values()))
"""


def test_a_pool_run_trial_forks_ends_its_workers_as_without_hpstore(tmp_path):
    # The search's SIGTERM-as-Ctrl-C was inherited by the Pool's forked workers, which the
    # Pool's exit ends with SIGTERM: tracebacks of KeyboardInterrupt, and at times a Pool
    # (and the search) hung for good on a worker that died holding its queue's lock.
    done = subprocess.run([sys.executable, "-c", _POOL_IN_RUN_TRIAL, str(tmp_path / "p.db")],
                          capture_output=True, text=True, env=ENV, timeout=DEADLINE)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["done", "6"], done.stdout + done.stderr
    assert "KeyboardInterrupt" not in done.stderr and "Traceback" not in done.stderr


_SIGTERM_AS_IT_FORKS = """
import os, signal, sys
# a SIGTERM that reaches a child before hpstore's own fork hook gave it SIGTERM's default
# (a Pool's terminate() as its workers start): registered first, this hook runs first
os.register_at_fork(after_in_child=lambda: os.kill(os.getpid(), signal.SIGTERM))
import hpstore

def run_trial(trial):
    pid = os.fork()
    if pid == 0:
        os._exit(0)  # (it outlived the SIGTERM)
    _, status = os.waitpid(pid, 0)
    ended = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
    print("ended" if ended else "outlived", flush=True)
    return 1.0

""" + _SEARCH.format(trials=1)


def test_a_sigterm_reaching_a_child_as_it_forks_ends_it(tmp_path):
    # it was raised as Ctrl-C inside a fork hook, where Python swallows it ("Exception
    # ignored"), and the child lived on: a Pool worker blocked for ever, and the search
    done = subprocess.run([sys.executable, "-c", _SIGTERM_AS_IT_FORKS, str(tmp_path / "f.db")],
                          capture_output=True, text=True, env=ENV, timeout=DEADLINE)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ended"], done.stdout + done.stderr
    assert "KeyboardInterrupt" not in done.stderr


_EXITS_IN_A_TRIAL = """
import signal, sys
import hpstore

def run_trial(trial):
    if trial.trial_id == "1":
        signal.raise_signal(signal.SIGTERM)  # the script's own handler exits
    return float(trial.hyperparameters.values["x"])

signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))  # a cluster job's
""" + _SEARCH.format(trials=4)


def test_a_program_that_exits_as_a_trial_runs_hands_the_trial_back(tmp_path):
    # sys.exit() unwinding through search() (a SIGTERM handler's of the script's own, the
    # usual pattern on a cluster) left the trial RUNNING, found interrupted later: three
    # such stops failed it
    db = str(tmp_path / "exit.db")
    done = subprocess.run([sys.executable, "-c", _EXITS_IN_A_TRIAL, db], capture_output=True,
                          text=True, env=ENV, timeout=DEADLINE)
    assert done.returncode == 143 and "Traceback" not in done.stderr, done.stderr
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT trial_id, status, message, interruptions FROM trials "
                            "ORDER BY number").fetchall()
    finally:
        conn.close()
    assert [r[:2] for r in rows] == [("0", "COMPLETED"), ("1", "IDLE")], rows
    assert rows[1][2].startswith("The program exited (sys.exit) as it ran") and not rows[1][3]


_STOPPED_THEN_SIGNALLED = """
import os, signal, sys
import hpstore

def run_trial(trial):
    for step in range(3):
        loss = 50.0 if trial.trial_id == "0" else float(step)
        if tuner.report(trial, {"loss": loss}, step=step):
            if sys.argv[2] != "none":  # stopped by the rule, then by the signal
                os.kill(os.getpid(), getattr(signal, sys.argv[2]))
            return None

hp = hpstore.HyperParameters()
hp.Int("x", 1, 9)
oracle = hpstore.RandomSearchOracle(objective="loss", max_trials=3, database=sys.argv[1],
                                    seed=1, hyperparameters=hp,
                                    early_stopping=hpstore.Threshold(upper=10.0))
tuner = hpstore.Tuner(oracle, run_trial=run_trial, verbose=1)
try:
    tuner.search()
except KeyboardInterrupt:
    print("interrupted")
"""


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_between_a_stop_and_its_end_says_the_trial_stays_stopped(tmp_path, sig):
    # Ctrl-C or SIGTERM after a rule stopped the trial, before its end: the trial was
    # ended STOPPED (rightly), but the search said it "was handed back to run again"
    script = tmp_path / "stopped.py"
    script.write_text(_STOPPED_THEN_SIGNALLED)
    db = str(tmp_path / "stopped.db")
    done = subprocess.run([sys.executable, str(script), db, sig], capture_output=True,
                          text=True, timeout=DEADLINE, env=ENV)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines[-1] == "interrupted", done.stdout + done.stderr
    said = lines[-2]
    assert "handed back" not in said and said.endswith(HINT), said
    assert "trial 0 was stopped early and stays STOPPED" in said, said
    log = status_log(db)
    assert [(f, t) for trial, f, t, _, _ in log if trial == "0"] == [
        (None, "RUNNING"), ("RUNNING", "STOPPED")], log
    again = subprocess.run([sys.executable, str(script), db, "none"], capture_output=True,
                           text=True, timeout=DEADLINE, env=ENV)
    assert again.returncode == 0, again.stdout + again.stderr
    rows = sqlite3.connect(db).execute(
        "SELECT trial_id, status, run_count, score FROM trials ORDER BY number").fetchall()
    assert rows[0] == ("0", "STOPPED", 1, 50.0) and len(rows) == 3, rows
    assert {status for _, status, _, _ in rows[1:]} == {"COMPLETED"}, rows


_STOPPED_BESIDE_ANOTHER = """
import os, signal, sys, time
import hpstore

class Stopped(hpstore.Tuner):
    def run_trial(self, trial, marks):
        if trial.trial_id != "0":
            open(os.path.join(marks, trial.trial_id), "w").close()
            while True:  # until the Ctrl-C
                time.sleep(0.05)
        for step in range(3):
            if self.report(trial, {"loss": 50.0}, step=step):  # stopped by the rule
                while not os.listdir(marks):  # until the other worker runs its trial
                    time.sleep(0.01)
                os.killpg(0, signal.SIGINT)  # Ctrl-C, as a terminal sends it
                while True:
                    time.sleep(0.05)

if __name__ == "__main__":
    hp = hpstore.HyperParameters()
    hp.Int("x", 1, 9)
    oracle = hpstore.RandomSearchOracle(objective="loss", max_trials=4,
                                        database=sys.argv[1], seed=1, hyperparameters=hp,
                                        early_stopping=hpstore.Threshold(upper=10.0))
    try:
        Stopped(oracle, verbose=1).search(sys.argv[2], workers=2)
    except KeyboardInterrupt:
        print("interrupted")
"""


def test_ctrl_c_with_workers_says_which_trial_was_stopped_and_which_handed_back(tmp_path):
    # With worker processes the message said "running trials were handed back to run
    # again", also of a trial a stopping rule had stopped, which stays STOPPED
    script = tmp_path / "stopped_workers.py"
    script.write_text(_STOPPED_BESIDE_ANOTHER)
    marks = tmp_path / "marks"
    marks.mkdir()
    db = str(tmp_path / "stopped.db")
    proc = start(str(script), db, str(marks))
    out = finish(proc)
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[-1] == "interrupted", out
    assert_one_clean_message(lines[:-1])
    (other,) = os.listdir(marks)
    assert lines[-2] == (f"Search interrupted; trial {other} was handed back to run again; "
                         f"trial 0 was stopped early and stays STOPPED. {HINT}"), out
    statuses = dict(sqlite3.connect(db).execute("SELECT trial_id, status FROM trials"))
    assert statuses == {"0": "STOPPED", other: "IDLE"}, statuses


def test_the_interrupted_message_names_every_trial_once():
    from hpstore.handing_back import interrupted_what

    assert interrupted_what([]) == "no trial was running"
    assert interrupted_what([("3", "IDLE"), ("3", "STOPPED")]) == (
        "trial 3 was stopped early and stays STOPPED")
    assert interrupted_what([("1", "IDLE"), ("2", "STOPPED"), ("4", "IDLE"),
                             ("5", "STOPPED")], unsaid=1) == (
        "trials 1 and 4 were handed back to run again; trials 2 and 5 were stopped early "
        "and stay STOPPED; a worker had to be ended before handing back a trial, which "
        "runs again when the search resumes")
    assert interrupted_what([], unsaid=2).startswith("2 workers had to be ended")


def test_a_worker_starts_no_trial_once_the_search_was_interrupted_elsewhere(tmp_path, capsys):
    # A Ctrl-C that reached one worker only: its parent stops the others, which went on
    # starting trials until their own SIGINT came (a whole search of short trials, here)
    import hpstore

    oracle = hpstore.RandomSearchOracle("loss", max_trials=20, seed=1,
                                        database=str(tmp_path / "elsewhere.db"))
    interrupted = []

    def run_trial(trial):
        interrupted.append(trial.trial_id)  # the parent says so as this trial runs
        return 1.0

    tuner = hpstore.Tuner(oracle, hypermodel=lambda hp: hp.Float("x", 0, 1),
                          run_trial=run_trial, verbose=1)
    tuner._interrupted_elsewhere = lambda: bool(interrupted)
    with pytest.raises(KeyboardInterrupt):
        tuner.search()
    assert [t.status for t in oracle.trials.values()] == ["COMPLETED"]  # and no other
    assert "Search interrupted; no trial was running" in capsys.readouterr().out
    oracle.close()


def test_a_trial_handed_back_and_ended_since_by_another_worker_is_said_so(tmp_path):
    import hpstore
    from hpstore.workers import _as_now

    oracle = hpstore.RandomSearchOracle("loss", max_trials=5, seed=1,
                                        database=str(tmp_path / "since.db"))
    oracle.hyperparameters.Float("x", 0, 1)
    taken = [oracle.create_trial(f"w{i}") for i in range(2)]
    for trial in taken:  # both handed back by a worker that got Ctrl-C ...
        trial.status, trial.message = "IDLE", "Interrupted (Ctrl-C or SIGTERM)."
        oracle.end_trial(trial)
    again = oracle.create_trial("other")  # ... one taken from the queue by another worker
    oracle.update_trial(again.trial_id, {"loss": 1.0})
    again.status = "COMPLETED"
    oracle.end_trial(again)
    tuner = hpstore.Tuner(oracle, run_trial=lambda trial: 1.0)
    now = _as_now(tuner, [(t.trial_id, "IDLE") for t in taken])
    idle = next(t.trial_id for t in taken if t.trial_id != again.trial_id)
    assert dict(now) == {again.trial_id: "COMPLETED", idle: "IDLE"}
    from hpstore.handing_back import interrupted_what

    assert interrupted_what(now) == (f"trial {idle} was handed back to run again; trial "
                                     f"{again.trial_id} was handed back, and run to its end "
                                     "since by another worker")
    oracle.close()
