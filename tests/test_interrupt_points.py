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
