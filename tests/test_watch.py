"""`hpstore watch`: when it ends and when it must not, a file that appears, is replaced or
moves, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _workers import DEADLINE, end_trials, file_digest, hold, open_oracle

import hpstore
from hpstore.cli import load_tool, main
from hpstore.queries import choose_project
from hpstore.store import open_store

ROOT = Path(__file__).resolve().parent.parent
TOOL_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- hpstore watch ------------------------------------------------------------------------------

def watch_frame(path):
    watch = load_tool("watch")
    store = open_store(path, read_only=True)
    try:
        return watch.Watcher(store, choose_project(store, None)).frame()
    finally:
        store.close()


def test_watch_ends_on_a_finished_search_with_stopped_trials(tmp_path):
    path = str(tmp_path / "stopped.db")
    oracle = open_oracle(path, max_trials=4)
    end_trials(oracle, ["COMPLETED", "STOPPED", "FAILED", "STOPPED"])
    oracle.close()
    text, finished = watch_frame(path)
    assert finished and "4 of 4 trials ended" in text and "trials done 4/4" in text
    assert "trials/min" not in text  # (measured up to now, it fell at every look)
    done = subprocess.run([sys.executable, "-m", "hpstore", "watch", path, "--interval", "0.05"],
                          capture_output=True, text=True, timeout=DEADLINE, env=TOOL_ENV)
    assert done.returncode == 0 and "The search is finished" in done.stdout, done.stderr


def test_watch_does_not_end_while_trials_run_or_wait(tmp_path):
    path = str(tmp_path / "busy.db")
    oracle = open_oracle(path, max_trials=3, max_retries_per_trial=2)
    end_trials(oracle, ["COMPLETED", "STOPPED", "INVALID"])  # the INVALID one waits
    assert not watch_frame(path)[1]
    retry = oracle.create_trial("w")  # the retry runs
    assert retry.status == "RUNNING" and not watch_frame(path)[1]
    oracle.update_trial(retry.trial_id, {"loss": 1.0})
    retry.status = "COMPLETED"
    oracle.end_trial(retry)
    assert watch_frame(path)[1]
    oracle.close()


def test_watch_says_which_running_trials_lost_their_worker(tmp_path):
    # a killed worker's trial was listed as running, where `hpstore check` said interrupted
    path = str(tmp_path / "killed.db")
    open_oracle(path, max_trials=5).close()
    doomed, doomed_id, _ = hold(path, "doomed")
    live, live_id, _ = hold(path, "alive")
    try:
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.join(DEADLINE)
        text, finished = watch_frame(path)
    finally:
        os.kill(live.pid, signal.SIGKILL)
        live.join(DEADLINE)
    lines = {line.split(":")[0].strip(): line for line in text.splitlines()
             if line.startswith("  ")}
    assert f"trial {doomed_id} " in lines["doomed"] and "its worker is gone" in lines["doomed"]
    assert f"trial {live_id} " in lines["alive"] and "gone" not in lines["alive"]
    assert not finished


def test_watch_ends_when_the_oracle_has_nothing_left(tmp_path):
    path = str(tmp_path / "grid.db")
    hp = hpstore.HyperParameters()
    hp.Choice("c", ["a", "b", "c"])
    oracle = hpstore.GridSearchOracle("loss", database=path, hyperparameters=hp)
    assert oracle.max_trials is None
    end_trials(oracle, ["COMPLETED", "STOPPED"])
    oracle.close()
    text, finished = watch_frame(path)
    assert not finished  # one grid point left
    oracle = hpstore.GridSearchOracle("loss", database=path)
    end_trials(oracle, ["COMPLETED"])
    assert not watch_frame(path)[1]  # a worker (this process) is alive: it may ask again
    oracle.close()
    before = file_digest(path)
    text, finished = watch_frame(path)
    assert finished and "no more trials" in text
    assert file_digest(path) == before


def test_watch_does_not_end_a_paused_search(tmp_path):
    path = str(tmp_path / "paused.db")
    oracle = open_oracle(path, max_trials=10)
    end_trials(oracle, ["COMPLETED", "STOPPED"])
    oracle.close()  # nobody runs it now, but the oracle has trials to hand out
    assert not watch_frame(path)[1]


def test_watch_ends_when_too_many_trials_failed_in_a_row(tmp_path):
    path = str(tmp_path / "failing.db")
    oracle = open_oracle(path, max_trials=10, max_consecutive_failed_trials=2)
    end_trials(oracle, ["COMPLETED", "FAILED"])
    with pytest.raises(RuntimeError, match="consecutive failures"):
        end_trials(oracle, ["FAILED"])
    oracle.close()
    text, finished = watch_frame(path)
    assert finished and "last 2 trials failed" in text


def read_line(stream, deadline=DEADLINE):
    """One line from a child's pipe, or fail after ``deadline`` seconds."""
    import threading

    got = []
    reader = threading.Thread(target=lambda: got.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(deadline)
    assert got, "no line came"
    return got[0]


def start_watch(path, *argv):
    return subprocess.Popen([sys.executable, "-m", "hpstore", "watch", str(path), *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=TOOL_ENV)


def test_watch_waits_for_a_file_that_does_not_exist_yet(tmp_path):
    path = tmp_path / "later.db"
    watcher = start_watch(path, "--interval", "0.05")
    try:
        assert read_line(watcher.stdout).startswith(f"Waiting for {path}")
        oracle = open_oracle(str(path), max_trials=2)
        end_trials(oracle, ["COMPLETED", "COMPLETED"])
        oracle.close()
        out, err = watcher.communicate(timeout=DEADLINE)
    finally:
        watcher.kill()
    assert watcher.returncode == 0, err
    assert "trials done 2/2" in out and "The search is finished" in out


@pytest.mark.parametrize("how", ["replaced", "moved"])
def test_watch_follows_the_name_when_the_file_is_replaced_or_moved(tmp_path, how):
    path, finished = tmp_path / "watched.db", tmp_path / "finished.db"
    oracle = open_oracle(str(path), max_trials=5)  # not finished: watch goes on
    end_trials(oracle, ["COMPLETED"])
    oracle.close()
    oracle = open_oracle(str(finished), max_trials=2)
    end_trials(oracle, ["COMPLETED", "COMPLETED"])
    oracle.close()
    watcher = start_watch(path, "--interval", "0.05")
    try:
        assert "trials done 1/5" in read_line(watcher.stdout)
        if how == "moved":
            path.rename(tmp_path / "elsewhere.db")
            said = time.monotonic() + DEADLINE
            line = read_line(watcher.stdout)
            while "was moved, replaced or deleted" not in line:  # (frames already written)
                assert line and time.monotonic() < said, "watch never said so"
                line = read_line(watcher.stdout)
            assert read_line(watcher.stdout).startswith(f"Waiting for {path}")
        os.replace(finished, path)
        out, err = watcher.communicate(timeout=DEADLINE)
    finally:
        watcher.kill()
    assert watcher.returncode == 0, err
    assert "trials done 2/2" in out and "The search is finished" in out


@pytest.mark.parametrize("exists", [False, True])
def test_ctrl_c_ends_watch_cleanly(tmp_path, exists):
    path = tmp_path / "watched.db"
    if exists:
        oracle = open_oracle(str(path), max_trials=5)
        end_trials(oracle, ["COMPLETED"])
        oracle.close()
    watcher = start_watch(path, "--interval", "0.05")
    try:
        first = read_line(watcher.stdout)
        assert first.startswith("Waiting for") if not exists else "trials done 1/5" in first
        watcher.send_signal(signal.SIGINT)
        _, err = watcher.communicate(timeout=DEADLINE)
    finally:
        watcher.kill()
    assert watcher.returncode == 130 and err == "hpstore: interrupted\n"


def test_watch_once_does_not_wait(tmp_path, capsys):
    code, _, err = run(capsys, "watch", str(tmp_path / "none.db"), "--once")
    assert code == 2 and "does not exist" in err


@pytest.mark.parametrize("kind", ["hyperband", "finite_random"])
def test_watch_ends_when_a_schedule_or_a_finite_space_is_used_up(tmp_path, kind):
    path = str(tmp_path / f"{kind}.db")
    hp = hpstore.HyperParameters()
    if kind == "hyperband":
        hp.Float("x", 0, 1)
        oracle = hpstore.HyperbandOracle("loss", max_epochs=3, factor=3, seed=1, database=path,
                                         hyperparameters=hp)
    else:
        hp.Choice("c", ["a", "b"])
        oracle = hpstore.RandomSearchOracle("loss", max_trials=10, seed=1, database=path,
                                            hyperparameters=hp)
    ran = 0
    while True:
        trial = oracle.create_trial("w")
        if trial.status != "RUNNING":
            break
        assert not watch_frame(path)[1]
        oracle.update_trial(trial.trial_id, {"loss": float(ran)})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        ran += 1
    assert trial.status == "STOPPED" and ran == (6 if kind == "hyperband" else 2)
    oracle.close()
    text, finished = watch_frame(path)
    assert finished and "no more trials" in text



def test_watch_says_at_once_that_it_connects_to_a_server_slow_to_answer(monkeypatch):
    # The first look at a URL ran before any line: a server that accepts and does not
    # answer kept watch silent for the connection's timeout (10 s), one that says it is
    # restarting for 30 s. The look is held here until the line has come.
    import threading

    tool = load_tool("watch")
    release, said = threading.Event(), threading.Event()
    lines = []

    def held_look(database):
        assert release.wait(DEADLINE)
        return False

    class Output:
        def write(self, text):
            lines.append(text)
            said.set()

        def flush(self):
            pass

    monkeypatch.setattr(tool, "holds_search", held_look)
    monkeypatch.setattr(sys, "stdout", Output())
    url = "postgresql://someone@127.0.0.1:1/db"
    looking = threading.Thread(target=lambda: tool.wait_for(url, 0.01), daemon=True)
    looking.start()
    try:
        assert said.wait(DEADLINE), "nothing said while the first look went on"
        assert "".join(lines).startswith(f"Connecting to {url} (Ctrl-C to stop)")
    finally:
        release.set()
    monkeypatch.setattr(tool, "holds_search", lambda database: True)
    looking.join(DEADLINE)
    assert not looking.is_alive()
    assert f"Waiting for {url} to hold a search" in "".join(lines)


@pytest.mark.parametrize("oracle_class", ["RandomSearchOracle", "BayesianOptimizationOracle"])
def test_a_paused_search_of_real_numbers_is_known_unfinished_without_copying_it(
        tmp_path, monkeypatch, oracle_class):
    # a real number on no grid is never used up: the oracle is not asked through a copy of
    # the whole search (seconds and GBs at 100,000 trials)
    from hpstore.store.sqlite.document import DocumentMixin

    path = str(tmp_path / "real.db")
    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 1)
    oracle = getattr(hpstore, oracle_class)("loss", max_trials=10, seed=1, database=path,
                                            hyperparameters=hp)
    end_trials(oracle, ["COMPLETED"] * 2)
    oracle.close()

    def copied(*args, **kwargs):
        raise AssertionError("the search was copied to ask its oracle")

    monkeypatch.setattr(DocumentMixin, "dump", copied)
    text, finished = watch_frame(path)
    assert not finished and "no more trials" not in text


@pytest.mark.parametrize("top", [1.0, 1.0 + 2 * 2.0**-52])
def test_a_real_number_of_one_or_a_few_floats_is_asked_of_its_oracle(tmp_path, top):
    # [1, 1] holds one float, [1, 1 + 2 ulp] three: with the choice beside it, two or six
    # sets of values, then used up (a range on no grid is not endless when it is so narrow)
    path = str(tmp_path / "narrow.db")
    hp = hpstore.HyperParameters()
    hp.Float("f", 1.0, top)
    hp.Choice("c", ["a", "b"])
    oracle = hpstore.RandomSearchOracle("loss", max_trials=50, seed=1, database=path,
                                        hyperparameters=hp)
    end_trials(oracle, ["COMPLETED"] * (2 if top == 1.0 else 6))
    assert oracle.create_trial("w").status == "STOPPED"
    oracle.close()
    text, finished = watch_frame(path)
    assert finished and "no more trials" in text


def test_the_header_counts_the_running_trials_it_lists_when_one_starts_between_reads(
        tmp_path):
    from hpstore import queries

    path = str(tmp_path / "busy.db")
    oracle = open_oracle(path, max_trials=10)
    oracle.create_trial("first")
    store = open_store(path, read_only=True)
    project = choose_project(store, None)
    read = project.counts_by_status
    started = []

    def counts_then_one_starts():
        counts = read()
        if not started:  # another worker starts a trial just after the counts were read
            started.append(oracle.create_trial("second"))
        return counts

    project.counts_by_status = counts_then_one_starts
    try:
        view = queries.overview(project, now=time.time())
    finally:
        store.close()
        oracle.close()
    assert started and len(view.running) == 2
    assert view.counts.get("RUNNING") == len(view.running), view.counts
