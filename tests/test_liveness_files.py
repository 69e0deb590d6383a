"""Liveness files of ended workers: a script's own, whether it dropped its oracle or
closed it as a trial ran, leaves none once it ends; another's is swept by the next look,
unless a trial still needs it as the proof that its worker died. Real processes, real
SIGKILL.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from _faults import CTX, kill, query, run_script
from _workers import DEADLINE, hold, open_oracle

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX: SIGKILL, flock"),
]

DROPPED_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from _faults import complete_one
from _workers import open_oracle

def run():
    complete_one(open_oracle({path!r}, max_trials=5, seed=10), "script")

run()  # the oracle is dropped, never closed, and the script ends
"""


def test_a_script_that_dropped_its_oracle_leaves_no_liveness_file(tmp_path):
    path = tmp_path / "dropped.db"
    done = run_script(DROPPED_SCRIPT, path)
    assert done.returncode == 0, done.stderr
    assert query(str(path), "SELECT status FROM trials") == [("COMPLETED",)]
    assert list(Path(f"{path}.hpstore").glob("worker-*.alive")) == []


CLOSED_RUNNING_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from _workers import open_oracle

with open_oracle({path!r}, max_trials=5, seed=10) as oracle:
    oracle.create_trial("script")  # closed with its trial running, and the script ends
"""


def test_a_script_that_closed_its_oracle_as_a_trial_ran_leaves_no_liveness_file(tmp_path):
    # the session kept for that trial while the process lived ends with the process: the
    # trial is then a dead worker's, handed on at the next look
    path = tmp_path / "closed.db"
    done = run_script(CLOSED_RUNNING_SCRIPT, path)
    assert done.returncode == 0, done.stderr
    assert list(Path(f"{path}.hpstore").glob("worker-*.alive")) == []
    with open_oracle(str(path)) as oracle:
        taken = oracle.create_trial("next")
        assert oracle._project.trial(taken.trial_id).interruptions == 1


def test_liveness_files_of_ended_workers_are_swept_unless_a_trial_needs_them(tmp_path):
    from _store import finish_one_then_wait

    path = str(tmp_path / "swept.db")
    open_oracle(path, max_trials=50, seed=6).close()
    doomed, held, _ = hold(path, "doomed")
    ready = CTX.Event()
    idle = CTX.Process(target=finish_one_then_wait, args=(path, "idle", ready), daemon=True)
    idle.start()
    assert ready.wait(DEADLINE)
    kill(idle)  # between two trials: it holds none
    kill(doomed)  # holding a trial: its file is the proof that it died
    folder = Path(path + ".hpstore")
    assert len(list(folder.glob("worker-*.alive"))) == 2
    open_oracle(path).close()  # a process opens the file and closes it
    [left] = folder.glob("worker-*.alive")
    token = query(path, "SELECT session FROM trials WHERE trial_id = ?", (held,))[0][0]
    assert left.name == f"worker-{token}.alive"
    with open_oracle(path) as oracle:
        rescued = oracle.create_trial("rescuer")
        assert rescued.trial_id == held  # found dead through its file
        oracle.update_trial(held, {"loss": 1.0})
        oracle.end_trial(rescued)
    assert list(folder.glob("worker-*.alive")) == []


def test_a_worker_beside_a_live_one_of_another_machine_is_refused(tmp_path):
    # two machines writing one file over a network file system each keep the log's index
    # in their own memory, and damage the file: the second to start is told, not let on
    from _workers import hold_trial_elsewhere

    import hpstore
    from hpstore.store.sqlite import machines

    assert machines.MACHINE  # (Linux: this kernel's boot id)
    path = str(tmp_path / "shared.db")
    holding, info = CTX.Event(), CTX.Queue()
    other = CTX.Process(target=hold_trial_elsewhere, args=(path, "far", holding, info),
                        daemon=True)
    other.start()
    assert holding.wait(DEADLINE)
    held, _, pid = info.get(timeout=DEADLINE)
    folder = Path(path + ".hpstore")
    [far] = folder.glob("worker-*.alive")
    assert far.read_text() == f"{pid} 00000000-0000-4000-8000-00000000beef"
    oracle = open_oracle(path)
    with pytest.raises(hpstore.DatabaseError, match=rf"another machine \(pid {pid} "):
        oracle.create_trial("near")
    assert query(path, "SELECT trial_id, status FROM trials") == [(held, "RUNNING")]
    assert list(folder.glob("worker-*.alive")) == [far]  # the refused one's is gone
    kill(other)
    taken = oracle.create_trial("near")  # that machine's worker is gone: this one goes on
    assert taken.trial_id == held
    [near] = folder.glob("worker-*.alive")
    assert near.read_text().split() == [str(os.getpid()), machines.MACHINE]
    oracle.close()
