"""The log folded into the file as a search ends, whatever reader is open: a script that
never closes its search, daemon threads still running trials as it ends, a write or a read
asked for after the fold, and the log shrinking back once a long reader lets go. Real
scripts, run as their own Python processes.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from _faults import finish, query, run_child, run_script, size
from _workers import open_oracle

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX: flock"),
]


def _copy_of_the_file_alone(path: Path, folder: Path) -> list[tuple[Any, ...]]:
    folder.mkdir()
    shutil.copyfile(path, folder / path.name)  # what `cp search.db` gives: no -wal
    return query(str(folder / path.name), "SELECT status, count(*) FROM trials GROUP BY status")


def test_after_a_search_beside_a_reader_the_file_alone_holds_everything(tmp_path):
    from _store import run_n

    from hpstore.store.sqlite.readonly import connect_readonly

    path = tmp_path / "watched.db"
    open_oracle(str(path), max_trials=40, seed=3).close()
    reader = connect_readonly(path)  # as `hpstore watch` keeps it open
    try:
        reader.execute("SELECT count(*) FROM trials").fetchone()
        _, done, error, message = run_child(run_n, str(path), "w", 40)
        assert (len(done), error) == (40, None), message
        assert size(f"{path}-wal") == 0
        assert _copy_of_the_file_alone(path, tmp_path / "copy") == [("COMPLETED", 40)]
    finally:
        reader.close()


SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from _faults import complete_one
from _workers import open_oracle
oracle = open_oracle({path!r}, max_trials=30, seed=4)
while complete_one(oracle, "script") is not None:
    pass
# no close(): KerasTuner's API has none, and scripts end like this
"""


def test_a_script_that_never_closes_still_leaves_everything_in_the_file(tmp_path):
    from hpstore.store.sqlite.readonly import connect_readonly

    path = tmp_path / "script.db"
    open_oracle(str(path), max_trials=30, seed=4).close()
    reader = connect_readonly(path)
    try:
        done = run_script(SCRIPT, path)
        assert done.returncode == 0, done.stderr
        assert _copy_of_the_file_alone(path, tmp_path / "copy") == [("COMPLETED", 30)]
    finally:
        reader.close()


THREADS_SCRIPT = """
import sys, threading
sys.path.insert(0, {tests!r})
from _faults import complete_one
from _workers import open_oracle
oracle = open_oracle({path!r}, max_trials=100_000, seed=6)
started = threading.Semaphore(0)

def work(i):
    while True:
        complete_one(oracle, f"t{{i}}")
        started.release()

for i in range(4):
    threading.Thread(target=work, args=(i,), daemon=True).start()
for _ in range(40):  # trials completed while the threads run on
    started.acquire()
# the script ends here, its daemon threads in the middle of their trials
"""


def test_a_script_that_ends_while_daemon_threads_run_trials_leaves_everything_in_the_file(
        tmp_path):
    path = tmp_path / "threads.db"
    open_oracle(str(path), max_trials=100_000, seed=6).close()
    done = run_script(THREADS_SCRIPT, path)
    assert done.returncode == 0, done.stderr
    # nothing committed after the log was folded: the file alone is the whole search
    assert size(f"{path}-wal") == 0
    alone = _copy_of_the_file_alone(path, tmp_path / "copy")
    assert alone == query(str(path), "SELECT status, count(*) FROM trials GROUP BY status")
    assert dict(alone)["COMPLETED"] >= 40
    # and it resumes: the trials the threads were running are run again
    finish(str(path), dict(alone)["COMPLETED"] + 8)
    assert query(str(path), "SELECT status, count(*) FROM trials GROUP BY status") == [
        ("COMPLETED", dict(alone)["COMPLETED"] + 8)]


# A thread that asked to write just before the script ended, and was let through only
# after the search was closed at exit (held at the search's thread lock, as behind another
# thread's transaction): it reopened the file and committed after the fold.
LATE_WRITER_SCRIPT = """
import atexit, sys, threading
sys.path.insert(0, {tests!r})
atexit.register(lambda: late.join(60))  # registered before hpstore's: runs after its close
from _faults import complete_one
from _workers import open_oracle
from hpstore.store.sqlite import closing
oracle = open_oracle({path!r}, max_trials=100, seed=3)
complete_one(oracle, "main")
db = oracle._store.db
lock, waiting, folded = db._thread_lock, threading.Event(), threading.Event()

class Held:  # the database's lock: the late thread's first write waits for the fold at exit
    def __enter__(self):
        return lock.__enter__()
    def __exit__(self, *exc):
        lock.__exit__(*exc)
        if threading.current_thread() is threading.main_thread() and closing.ended():
            folded.set()  # the exit's close folded the log and let go of the lock
    def acquire(self, *args, **kwargs):
        if (threading.current_thread() is late
                and sys._getframe(1).f_code.co_filename.endswith("transaction.py")):
            waiting.set()  # a write transaction begins
            folded.wait(60)
        return lock.acquire(*args, **kwargs)
    def release(self):
        lock.release()
    def __getattr__(self, name):  # (how many times a thread holds it, and whether)
        return getattr(lock, name)

db._thread_lock = Held()
late = threading.Thread(target=complete_one, args=(oracle, "late"), daemon=True)
late.start()
waiting.wait(60)
"""


def test_a_write_asked_for_just_before_the_script_ends_is_refused_after_the_fold(tmp_path):
    path = tmp_path / "late.db"
    done = run_script(LATE_WRITER_SCRIPT, path)
    assert done.returncode == 0, done.stderr
    assert "was closed as this script ended" in done.stderr  # the late thread's error
    assert size(f"{path}-wal") == 0  # nothing committed after the fold
    assert query(str(path), "SELECT tuner_id, status FROM trials") == [("main", "COMPLETED")]


LATE_READER_SCRIPT = """
import atexit, sys
sys.path.insert(0, {tests!r})
oracle = None
# registered before hpstore is imported: it runs after hpstore closed its searches
atexit.register(lambda: print("best at exit:", [t.trial_id for t in oracle.get_best_trials(1)]))
from _faults import complete_one
from _workers import open_oracle
oracle = open_oracle({path!r}, max_trials=3, seed=9)
while complete_one(oracle, "script") is not None:
    pass
"""


def test_a_search_can_still_be_read_after_the_script_closed_it(tmp_path):
    path = tmp_path / "late.db"
    done = run_script(LATE_READER_SCRIPT, path)
    assert done.returncode == 0 and "Error" not in done.stderr, done.stderr
    (best,) = query(str(path), "SELECT trial_id FROM trials ORDER BY score LIMIT 1")[0]
    assert f"best at exit: ['{best}']" in done.stdout
    assert size(f"{path}-wal") == 0  # a read writes nothing after the fold
