"""A Ctrl-C that lands inside hpstore's own lock and close code, as a notebook's "interrupt
kernel" can: at the moment a call returns, before the next line could note what it did.

Each test raises KeyboardInterrupt from a profile hook as a named C call returns in a named
function, the point where Python delivers a SIGINT, then does what a notebook user does
next, and checks that nothing was left held, closed under another, or broken."""

from __future__ import annotations

import fcntl
import os
import sys
import threading
from pathlib import Path

import pytest
from _workers import end_trials, open_oracle


def interrupt_after(module: str, function: str, call: str) -> None:
    """Raise KeyboardInterrupt once, as the C function ``call`` returns inside
    ``function`` of hpstore's ``module`` (a file name such as ``locks.py``)."""
    def hook(frame, event, arg):
        if (event == "c_return" and frame.f_code.co_name == function
                and frame.f_code.co_filename.endswith(os.sep + module)
                and getattr(arg, "__name__", "") == call):
            sys.setprofile(None)
            raise KeyboardInterrupt

    sys.setprofile(hook)


def lock_is_free(path: Path) -> bool:
    """Whether no process (this one included) holds the flock on ``path``: a descriptor of
    its own conflicts with any other, in this process too."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_a_ctrl_c_as_the_oracle_lock_is_taken_leaves_it_free_for_other_workers(tmp_path):
    # the file lock stayed taken while the notebook sat idle: every other worker of the
    # search waited for it (the lock is patient: its holder lived)
    path = tmp_path / "s.db"
    oracle = end_trials(open_oracle(str(path), max_trials=10), ["COMPLETED"])
    interrupt_after("locks.py", "_note", "pread")
    with pytest.raises(KeyboardInterrupt):
        oracle.create_trial("nb")
    assert lock_is_free(Path(str(path) + ".hpstore") / "oracle.lock")
    assert oracle.create_trial("nb").status == "RUNNING"  # the cell run again
    oracle.close()


@pytest.mark.parametrize("where", [("locks.py", "acquire", "acquire"),
                                   ("transaction.py", "__enter__", "acquire")])
def test_a_ctrl_c_as_a_thread_lock_is_taken_leaves_it_to_other_threads(tmp_path, where):
    # taken before the try that gives it back: held for ever, and any other thread using
    # the oracle blocked
    oracle = end_trials(open_oracle(str(tmp_path / "s.db"), max_trials=10), ["COMPLETED"])
    interrupt_after(*where)
    with pytest.raises(KeyboardInterrupt):
        oracle.create_trial("nb")
    done: list[str] = []
    other = threading.Thread(target=lambda: done.append(oracle.create_trial("t").status))
    other.start()
    other.join(60)  # (a bound on a hang, not a wait for anything)
    assert not other.is_alive() and done == ["RUNNING"]
    oracle.close()


def test_a_ctrl_c_as_the_oracle_closes_leaves_it_usable_and_closes_nothing_else(tmp_path):
    # the closed connection was kept (every later call: "Cannot operate on a closed
    # database"), and the lock file's descriptor number too, which a later close closed
    # under whatever file had it by then (SQLite's -shm)
    path = str(tmp_path / "s.db")
    oracle = end_trials(open_oracle(path, max_trials=10), ["COMPLETED"])
    interrupt_after("database.py", "close", "close")
    with pytest.raises(KeyboardInterrupt):
        oracle.close()
    assert oracle.create_trial("nb").status == "RUNNING"  # opened again, as documented
    oracle.close()
    oracle = end_trials(open_oracle(path, max_trials=10), ["COMPLETED"])
    interrupt_after("locks.py", "close", "close")
    with pytest.raises(KeyboardInterrupt):
        oracle.close()
    other = open_oracle(path, max_trials=10)  # takes the numbers just freed
    end_trials(other, ["COMPLETED"])
    oracle.close()  # closing again closes only its own
    end_trials(other, ["COMPLETED"])
    other.close()
    reopened = open_oracle(path, max_trials=10)
    assert sorted(t.status for t in reopened.trials.values()).count("COMPLETED") == 4
    reopened.close()


def test_an_interrupted_wait_gives_back_no_file_lock_another_thread_holds(tmp_path):
    # a Ctrl-C in a thread waiting for the thread lock gave back the file's lock, which
    # another thread of the process had just taken (between its flock and its count): a
    # worker of another process then ran beside it
    import threading as _threading
    import time

    from hpstore.store.sqlite.locks import FileMutex

    path = tmp_path / "lock" / "oracle.lock"
    mutex = FileMutex(path, what="the oracle lock")
    mutex._pid = os.getpid()
    mutex._lock_current_file(time.monotonic() + 5, 5)  # the other thread's flock, depth 0

    class Interrupted:  # the wait for the thread lock, interrupted
        def __init__(self, lock):
            self.lock = lock

        def acquire(self, *args, **kwargs):
            raise KeyboardInterrupt

        def __getattr__(self, name):
            return getattr(self.lock, name)

    mutex._threads = Interrupted(_threading.RLock())
    with pytest.raises(KeyboardInterrupt):
        mutex.acquire(5)
    assert not lock_is_free(path)  # still the other thread's


def interrupt_as_called(module: str, function: str) -> None:
    """Raise KeyboardInterrupt once, as Python enters ``function`` of hpstore's ``module``
    (called from C), before its first line."""
    def hook(frame, event, arg):
        if (event == "call" and frame.f_code.co_name == function
                and frame.f_code.co_filename.endswith(os.sep + module)):
            sys.setprofile(None)
            raise KeyboardInterrupt

    sys.setprofile(hook)


def test_a_ctrl_c_inside_sqlites_authorizer_is_a_keyboard_interrupt(tmp_path):
    # SQLite's module turns an exception in the authorizer (called as each statement is
    # prepared) into a refusal: a Ctrl-C there came out of create_trial as "DatabaseError:
    # SQLite failed on s.db: not authorized" (40 of 1,430 random Ctrl-Cs in a notebook)
    path = str(tmp_path / "s.db")
    end_trials(open_oracle(path, max_trials=10), ["COMPLETED"]).close()
    oracle = open_oracle(path, max_trials=10)  # (a new connection: its statements prepared anew)
    interrupt_as_called("schema.py", "authorize")
    with pytest.raises(KeyboardInterrupt):
        oracle.create_trial("nb")
    assert len(oracle.trials) == 1  # nothing of the interrupted step
    assert oracle.create_trial("nb").status == "RUNNING"  # the cell run again
    oracle.close()


def test_a_signal_handlers_own_exception_inside_the_authorizer_comes_out_as_it_is(
        tmp_path, monkeypatch):
    # a handler of SIGALRM raising TimeoutError (a trial's time limit), landing as SQLite
    # asked whether a trigger of hpstore's may run
    from hpstore.store.sqlite import schema

    class Interrupted(frozenset):
        def __contains__(self, name):
            monkeypatch.setattr(schema, "_own_names", own)
            raise TimeoutError("the trial's time is up")

    own = schema._own_names
    monkeypatch.setattr(schema, "_own_names", lambda: Interrupted(own()))
    path = str(tmp_path / "s.db")
    oracle = open_oracle(path, max_trials=10)
    with pytest.raises(TimeoutError, match="time is up"):
        oracle.create_trial("nb")
    assert oracle.trials == {}
    oracle.close()
    with open_oracle(path, max_trials=10) as again:
        assert again.create_trial("nb").status == "RUNNING"


def test_a_ctrl_c_between_create_trial_and_the_run_hands_the_trial_back(tmp_path):
    # a SIGTERM landing as the loop called _run_one, the trial recorded RUNNING: the
    # search said "no trial was running" and left it RUNNING (1 in 180 SIGTERMs)
    import hpstore

    class Quick(hpstore.Tuner):
        def run_trial(self, trial):
            return 1.0

    path = str(tmp_path / "s.db")
    tuner = Quick(oracle=open_oracle(path, max_trials=5), verbose=0)
    interrupt_as_called("tuner.py", "_run_one")
    with pytest.raises(KeyboardInterrupt):
        tuner.search()
    [trial] = tuner.oracle.trials.values()
    assert (trial.status, trial.message) == (
        "IDLE", "Interrupted (Ctrl-C or SIGTERM); queued to run again.")
    tuner.search()  # run again: it resumes, and runs the trial handed back
    assert {t.status for t in tuner.oracle.trials.values()} == {"COMPLETED"}
    assert len(tuner.oracle.trials) == 5
    tuner.oracle.close()


def test_a_sys_exit_between_create_trial_and_the_run_hands_the_trial_back(tmp_path):
    # a SIGTERM handler's sys.exit, landing where the Ctrl-C above does: handed back
    # inside the run, left RUNNING one line before it (in a notebook that catches
    # SystemExit, for as long as the kernel lives)
    import hpstore

    class Quick(hpstore.Tuner):
        def run_trial(self, trial):
            return 1.0

    def hook(frame, event, arg):
        if (event == "call" and frame.f_code.co_name == "_run_one"
                and frame.f_code.co_filename.endswith(os.sep + "tuner.py")):
            sys.setprofile(None)
            raise SystemExit(143)

    tuner = Quick(oracle=open_oracle(str(tmp_path / "s.db"), max_trials=5), verbose=0)
    sys.setprofile(hook)
    with pytest.raises(SystemExit):
        tuner.search()
    [trial] = tuner.oracle.trials.values()
    assert trial.status == "IDLE" and trial.message.startswith("The program exited")
    tuner.oracle.close()
