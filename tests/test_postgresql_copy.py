"""hpstore copy between engines: a file to PostgreSQL and back, the status log's order, a
project written over only when asked, every project, what it says on a terminal, and a
trial running in the source."""

from __future__ import annotations

import io
import json
import sys

import pytest
from _postgres import complete, fresh_url
from _tools import run
from _workers import open_oracle

from hpstore.cli import load_tool, main
from hpstore.store import open_store, shown


def comparable(state):
    """get_state() apart from what storing it again changes: the time of the last change
    and the space version (grown by one, so a process caching the old space reloads it)."""
    state = json.loads(json.dumps(state))
    for key in ("updated_at", "space_version"):
        state["settings"].pop(key)
    return json.dumps(state, sort_keys=False)


def test_copy_moves_a_search_from_a_file_to_postgresql_and_back(tmp_path, capsys):
    source = str(tmp_path / "source.db")
    oracle = open_oracle(source, max_trials=40, seed=5, max_retries_per_trial=1)
    complete(oracle, 12)
    flaky = oracle.create_trial("w")
    flaky.status = "INVALID"
    oracle.end_trial(flaky)
    original = oracle.get_state()
    oracle.close()
    url = fresh_url()
    code, _, err = run(capsys, "copy", source, url)
    assert code == 0 and "copied project 'untitled_project': 13 trial(s)" in err
    back = str(tmp_path / "back.db")
    assert run(capsys, "copy", url, back)[0] == 0
    states = []
    for where in (url, back):
        copy = open_oracle(where, max_trials=40, seed=5, max_retries_per_trial=1)
        states.append(copy.get_state())
        copy.close()
    assert comparable(states[0]) == comparable(original)  # byte for byte
    assert comparable(states[1]) == comparable(original)
    # each resumes as the original would: the same trials next
    nexts = []
    for where in (source, url, back):
        resumed = open_oracle(where, max_trials=40, seed=5, max_retries_per_trial=1)
        complete(resumed, 6)
        nexts.append([(t["trial_id"], t["hp_values"]) for t in resumed.get_state()["trials"]])
        resumed.close()
    assert nexts[0] == nexts[1] == nexts[2]


def test_a_note_with_a_nul_written_before_they_were_refused_is_copied_escaped(
        tmp_path, capsys):
    # (a file written by an earlier hpstore, which took one): the copy to a server failed,
    # calling the state malformed; it is copied as a trial's message is, the NUL as \x00
    import sqlite3

    source = str(tmp_path / "source.db")
    oracle = open_oracle(source, max_trials=5)
    complete(oracle, 1)
    oracle.close()
    with sqlite3.connect(source) as conn:
        conn.execute("UPDATE trials SET note = 'typed' || char(0) || 'note'")
    url = fresh_url()
    assert run(capsys, "copy", source, url)[0] == 0
    copy = open_oracle(url)
    assert copy.project.trial("0").note == "typed\\x00note"
    copy.close()


def test_a_search_with_a_nul_in_a_name_is_refused_by_a_server_saying_where(tmp_path, capsys):
    # A hyperparameter named with a NUL, which a file holds: the copy said "the state given
    # to set_state() is malformed", naming neither the search nor the name
    import hpstore

    source = str(tmp_path / "source.db")
    hp = hpstore.HyperParameters()
    hp.Float("a\x00b", 0.0, 1.0)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=2, seed=1, database=source,
                                        project_name="named", hyperparameters=hp)
    trial = oracle.create_trial("w")
    trial.message = "said\x00by the run"  # (written escaped, as a message always is)
    oracle.update_trial(trial.trial_id, {"loss": 1.0})
    oracle.end_trial(trial)
    oracle.close()
    url = fresh_url()
    code, _, err = run(capsys, "copy", source, url)
    assert code == 2 and "set_state" not in err and "malformed" not in err, err
    assert "The NUL character" in err and "'a\\x00b'" in err and "nothing was written" in err
    store = open_store(url, read_only=True, check=False)
    try:
        assert store.find_project("named") is None
    finally:
        store.close()


def test_copy_keeps_the_status_log_in_the_order_it_was_written(tmp_path, capsys):
    source = str(tmp_path / "source.db")
    oracle = open_oracle(source, max_trials=8, seed=3, max_consecutive_failed_trials=3)
    started = [oracle.create_trial(f"w{i}") for i in range(4)]
    oracle.update_trial(started[3].trial_id, {"loss": 1.0})
    started[3].status = "COMPLETED"
    oracle.end_trial(started[3])
    for trial in started[:2]:  # the log's last rows: failures of trials created earlier
        trial.status = "FAILED"
        oracle.end_trial(trial)
    later = oracle.create_trial("x")
    for step in range(2):  # two trials reporting in turn, as two workers do
        for trial in (later, started[2]):
            oracle.update_trial(trial.trial_id, {"loss": 2.0 + step}, step=step)
    log, values = oracle.get_state()["log"], oracle.get_state()["values_log"]
    assert log != sorted(log) and values != sorted(values)
    oracle.close()
    url, back = fresh_url(), str(tmp_path / "back.db")
    assert run(capsys, "copy", source, url)[0] == 0
    assert run(capsys, "copy", url, back)[0] == 0
    for where in (url, back):
        copy = open_oracle(where, max_trials=8, seed=3, max_consecutive_failed_trials=3)
        assert copy.get_state()["log"] == log
        assert copy.get_state()["values_log"] == values  # the metric values' seq too
        # the copy counts the same last failures as the source: one more stops it
        trial = copy.create_trial("next")
        trial.status = "FAILED"
        with pytest.raises(RuntimeError, match="consecutive failures"):
            copy.end_trial(trial)
        copy.close()


def test_copy_refuses_to_write_over_a_project_unless_asked(tmp_path, capsys):
    first, second = fresh_url(), fresh_url()
    for where, seed in ((first, 1), (second, 2)):
        oracle = open_oracle(where, max_trials=5, seed=seed, project_name="p")
        complete(oracle, 2)
        oracle.close()
    code, _, err = run(capsys, "copy", first, second)
    assert code == 2 and "already holds the project 'p'" in err and "--overwrite" in err
    assert open_oracle(second, max_trials=5, project_name="p").seed == 2  # untouched
    code, _, _ = run(capsys, "copy", first, second, "--overwrite")
    assert code == 0 and open_oracle(second, max_trials=5, project_name="p").seed == 1
    code, _, err = run(capsys, "copy", first, first)
    assert code == 2 and "the same store" in err
    # ... however the URL spells it: the projects' ids would change under its workers
    ids = [r.project_id for r in open_store(first, read_only=True).projects()]
    spelled = first.replace("127.0.0.1", "localhost").replace("postgresql:", "postgres:")
    code, _, err = run(capsys, "copy", first, spelled, "--overwrite")
    assert code == 2 and "the same store" in err
    assert [r.project_id for r in open_store(first, read_only=True).projects()] == ids
    code, _, err = run(capsys, "copy", first, second, "--project", "nope")
    assert code == 2 and "no project 'nope'" in err


def test_copy_takes_every_project(tmp_path, capsys):
    source = fresh_url()
    for name in ("a", "b"):
        complete(open_oracle(source, max_trials=3, project_name=name), 3)
    target = str(tmp_path / "all.db")
    assert run(capsys, "copy", source, target)[0] == 0
    code, out, _ = run(capsys, "summary", target)
    assert code == 0 and "2 project(s): a, b" in out


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_copy_says_what_it_reads_and_writes_on_a_terminal_only(tmp_path, monkeypatch):
    source = str(tmp_path / "s.db")
    for name in ("a", "b"):
        complete(open_oracle(source, max_trials=4, project_name=name), 4)
    copy_tool = load_tool("copy")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    target = fresh_url()
    assert copy_tool.main([source, target]) == 0
    text = terminal.getvalue()
    steps = [part for part in text.split("\r\x1b[2K") if part.endswith(" ...")]
    assert steps == [f"reading project 'a' from {source} ...",
                     f"reading project 'b' from {source} ...",
                     f"writing project 'a' (4 trial(s)) into {shown(target)} ...",
                     f"writing project 'b' (4 trial(s)) into {shown(target)} ..."]
    # the status line is cleared before the results are printed
    assert text.split("\r\x1b[2K")[-1] == (
        f"copied project 'a': 4 trial(s) into {shown(target)}\n"
        f"copied project 'b': 4 trial(s) into {shown(target)}\n")
    log = io.StringIO()  # not a terminal: the results only, no control character
    monkeypatch.setattr(sys, "stderr", log)
    assert copy_tool.main([source, fresh_url()]) == 0
    assert "\x1b" not in log.getvalue() and "\r" not in log.getvalue()
    assert log.getvalue().count("copied project") == 2 and "reading" not in log.getvalue()


def _hold_a_trial(url: str, started: object, release: object) -> None:
    with open_oracle(url) as oracle:
        oracle.create_trial("holder")
        started.set()  # type: ignore[attr-defined]
        release.wait(120)  # type: ignore[attr-defined]


def test_a_trial_running_in_the_source_schema_runs_again_in_a_copy_on_the_same_server():
    # the source's worker holds its liveness lock on this server: the copy of its trial
    # must not wait for that worker
    import multiprocessing as mp

    source, target = fresh_url("src"), fresh_url("dst")
    open_oracle(source, max_trials=2, seed=3).close()
    ctx = mp.get_context("spawn")
    started, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_a_trial, args=(source, started, release), daemon=True)
    holder.start()
    try:
        assert started.wait(120)
        assert main(["copy", source, target]) == 0
        with open_oracle(source) as src:
            (held,) = [t.trial_id for t in src.trials.values() if t.status == "RUNNING"]
        with open_oracle(target) as oracle:
            again = oracle.create_trial("resumer")
            assert (again.status, again.trial_id) == ("RUNNING", held)
    finally:
        release.set()
        holder.join(120)
    assert holder.exitcode == 0


def test_import_keras_tuner_into_postgresql(capsys):
    # the URL was taken for a path: "The folder .../postgresql:/... does not exist"
    from pathlib import Path

    fixture = Path(__file__).parent / "fixtures" / "keras_tuner_project"
    url = fresh_url()
    code, out, err = run(capsys, "import-keras-tuner", str(fixture), url)
    assert code == 0 and "Imported 8 trial(s)" in out, err
    store = open_store(url, read_only=True)
    try:
        (project,) = store.projects()
        assert project.name == "keras_tuner_project"
        assert len(store.open_project(project).dump()["trials"]) == 8
    finally:
        store.close()
    code, _, err = run(capsys, "import-keras-tuner", str(fixture), url)
    assert code == 2 and f"{shown(url)} already holds a project" in err


def test_a_search_with_a_nul_in_a_value_is_copied_between_servers_and_loaded_back(capsys):
    # The values sit in json columns, which keep a NUL: the copy (and set_state of the
    # search's own get_state) said a *file* held a NUL the server could not store
    import hpstore

    def opened(url):
        hp = hpstore.HyperParameters()
        hp.Choice("c", ["a\x00", "b"])
        hp.Float("x", 0.0, 1.0)
        return hpstore.RandomSearchOracle("loss", max_trials=12, seed=4, database=url,
                                          project_name="p", hyperparameters=hp)

    def complete_all(oracle, count):
        for _ in range(count):
            trial = oracle.create_trial("w")
            values = trial.hyperparameters.values
            oracle.update_trial(trial.trial_id, {"loss": values["x"] + (values["c"] == "b")})
            oracle.end_trial(trial)

    source, target = fresh_url(), fresh_url()
    oracle = opened(source)
    complete_all(oracle, 5)
    original = oracle.get_state()
    oracle.close()
    assert "a\x00" in [t["hp_values"]["c"] for t in original["trials"]]
    code, _, err = run(capsys, "copy", source, target)
    assert code == 0 and "copied project 'p': 5 trial(s)" in err, err
    nexts = []
    for where in (source, target):
        resumed = opened(where)
        assert comparable(resumed.get_state()) == comparable(original)
        complete_all(resumed, 4)
        nexts.append([(t["trial_id"], t["hp_values"]) for t in resumed.get_state()["trials"]])
        resumed.close()
    assert nexts[0] == nexts[1]
    # and the search loads its own get_state back
    oracle = opened(target)
    try:
        state = oracle.get_state()
        oracle.set_state(state)
        assert comparable(oracle.get_state()) == comparable(state)
    finally:
        oracle.close()
