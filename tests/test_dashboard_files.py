"""The dashboard on the files and searches a user may hand it: a file of an older schema
(read through an upgrade in memory, followed once a writer changes it), files that are not
a search, a port another dashboard holds, a file with no project yet, a project with no
trial, and a hyperparameter declared only in a conditional branch."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from _dashboard import DEADLINE, api, fetch, strict_json, write_old_file

import hpstore
from hpstore.dashboard import api as api_module
from hpstore.dashboard import open_dashboard
from hpstore.store.sqlite.schema import SCHEMA_VERSION

ENDPOINTS = [("/api/projects", {}), ("/api/poll", {}), ("/api/trials", {}),
             ("/api/plots", {"select": "0"}), ("/api/trial", {"t": "0"}),
             ("/api/compare", {"a": "p", "b": "p"}), ("/download", {})]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


# -- a file of an older schema ------------------------------------------------------------------

@pytest.mark.parametrize("version", [1, 2])
def test_a_file_of_an_older_schema_is_shown_and_left_as_it_is(tmp_path, version):
    path = tmp_path / "old.db"
    write_old_file(str(path), version)
    before = digest(path)
    with open_dashboard(str(path), port=0) as running:
        running.start()
        for endpoint, params in ENDPOINTS:
            status, _, body = fetch(running.url, endpoint, params)
            assert status == 200, (endpoint, body[:300])
        reply = api(running.url, "/api/poll")
        assert reply["total"] == 2 and reply["best_trial"]["trial_id"] == "1"
        assert reply["steered"] == {} and reply["uncounted"] == 0
        table = api(running.url, "/api/trials")
        assert {"origin", "note", "retired"} <= set(table["columns"])  # read as today's
    assert digest(path) == before and user_version(path) == version


def test_an_older_file_a_writer_upgrades_is_followed_without_a_restart(tmp_path, monkeypatch):
    monkeypatch.setattr(api_module, "SNAPSHOT_EVERY", 0.0)  # look at the file every request
    monkeypatch.setattr(api_module, "SNAPSHOT_COST", 0.0)
    path = tmp_path / "old.db"
    write_old_file(str(path), 2)
    with open_dashboard(str(path), port=0) as running:
        running.start()
        first = api(running.url, "/api/poll")
        assert running.reader.dashboard.snapshot  # read from a copy in memory
        oracle = hpstore.Oracle.attach(str(path), "p")  # today's hpstore: upgrades the file
        oracle.retire_trial("1", "a leak", by="tester")
        oracle.set_trial_note("0", "kept")
        added = oracle.add_trial({"x": 3.0}, {"loss": 0.75}).trial_id
        oracle.close()
        assert user_version(path) == SCHEMA_VERSION
        again = api(running.url, "/api/poll", {"seq": first["seq"], "obs": first["obs"],
                                               "generation": first["generation"]})
        assert again["fresh"] is False and again["total"] == 3
        assert [(c["trial_id"], c["to"]) for c in again["changes"]] == [
            ("1", "COMPLETED"), (added, "COMPLETED")]
        assert again["best_trial"]["trial_id"] == "0"  # the retired one is out
        assert again["steered"] == {"added": 1, "retired": 1} and again["uncounted"] == 1
        rows = {r["trial_id"]: r for r in api(running.url, "/api/trials")["rows"]}
        assert rows["1"]["retired"] and rows[added]["origin"] == "added"
        assert api(running.url, "/api/trial", {"t": "0"})["note"] == "kept"
        assert not running.reader.dashboard.snapshot  # the file itself, followed from now


# -- files that are not a search -----------------------------------------------------------------

def make_plain_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (text)")
    conn.commit()
    conn.close()


def make_newer(path: Path) -> None:
    write_old_file(str(path), SCHEMA_VERSION)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(("make", "says"), [
    (lambda p: p.write_bytes(b""), "is empty: no search has been written to it yet"),
    (lambda p: p.mkdir(), "is a folder, not a search file"),
    (make_plain_sqlite, "is a SQLite file, but not an hpstore search"),
    (make_newer, "was written by a newer hpstore"),
    (lambda p: p.symlink_to(p.parent / "elsewhere.db"), "does not exist"),
], ids=["empty", "folder", "plain-sqlite", "newer-schema", "dangling-link"])
def test_a_file_that_is_not_a_search_is_one_error_line_and_left_alone(tmp_path, make, says):
    path = tmp_path / "search.db"
    make(path)
    before = {p.name: (p.is_dir() or digest(p)) for p in tmp_path.iterdir()
              if not p.is_symlink()}
    result = subprocess.run([sys.executable, "-m", "hpstore", "dashboard", str(path),
                             "--port", "0"], capture_output=True, text=True, timeout=DEADLINE)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("hpstore: error: ") and says in result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    after = {p.name: (p.is_dir() or digest(p)) for p in tmp_path.iterdir()
             if not p.is_symlink()}
    # nothing changed; at most SQLite's empty log beside a WAL file it opened (README)
    logs = {name: after.pop(name) for name in ("search.db-wal", "search.db-shm")
            if name in after and name not in before}
    assert after == before
    assert logs.get("search.db-wal") in (None, hashlib.sha256(b"").hexdigest())


# -- a port in use ----------------------------------------------------------------------------

def test_a_port_another_dashboard_listens_on_is_refused_saying_what_to_do(tmp_path):
    path = str(tmp_path / "search.db")
    hpstore.RandomSearchOracle(objective="loss", max_trials=2, database=path,
                               project_name="p", hyperparameters=steer_space()).close()
    with open_dashboard(path, port=0) as first:
        first.start()
        port = first.server.port
        with pytest.raises(ValueError, match=rf"Cannot listen on 127.0.0.1:{port}: .*"
                                             r"give another --port \(0 picks a free one\)"):
            open_dashboard(path, port=port)
        result = subprocess.run([sys.executable, "-m", "hpstore", "dashboard", path,
                                 "--port", str(port)], capture_output=True, text=True,
                                timeout=DEADLINE)
        assert result.returncode == 2 and result.stderr.startswith(
            f"hpstore: error: Cannot listen on 127.0.0.1:{port}")
        assert api(first.url, "/api/poll")["name"] == "p"  # the first one goes on


@pytest.mark.parametrize("table, column", [("trials", "started_at"), ("transitions", "at"),
                                           ("observations", "step")])
def test_a_time_or_step_changed_by_hand_while_shown_is_named_not_a_failure(tmp_path, table,
                                                                          column):
    # the dashboard answered 500 "The dashboard failed: TypeError ..." on its endpoints
    from _dashboard import write_search

    path = str(tmp_path / "search.db")
    write_search(path, "p", 4)
    with open_dashboard(path, port=0) as running:
        running.start()
        assert len(api(running.url, "/api/trials", {"p": "p"})["rows"]) == 4
        conn = sqlite3.connect(path)
        conn.execute(f"UPDATE {table} SET {column} = 'abc' WHERE rowid = "  # test constants
                     f"(SELECT max(rowid) FROM {table})")
        conn.commit()
        conn.close()
        answers = [fetch(running.url, endpoint, {"p": "p", "t": "3"})
                   for endpoint in ("/api/trials", "/api/plots", "/api/trial")]
    for status, _, body in answers:
        assert status in (200, 503), body[:300]
    failing = [strict_json(body)["error"] for status, _, body in answers if status == 503]
    assert failing and all(f"{table}.{column} holds 'abc'" in e for e in failing), failing


# -- no project, no trial ------------------------------------------------------------------------

def test_a_file_with_no_project_yet_is_shown_empty_and_its_first_project_appears(tmp_path):
    from hpstore.store import open_store

    path = str(tmp_path / "search.db")
    open_store(path).close()  # hpstore's schema, no project committed yet
    with open_dashboard(path, port=0) as running:
        running.start()
        reply = api(running.url, "/api/projects")
        assert reply["projects"] == [] and reply["finished"] is False  # asked again
        status, _, body = fetch(running.url, "/api/poll")
        assert status == 404 and strict_json(body)["error"] == "This file holds no project yet."
        hpstore.RandomSearchOracle(objective="loss", max_trials=2, database=path,
                                   project_name="first", hyperparameters=steer_space()).close()
        assert [p["name"] for p in api(running.url, "/api/projects")["projects"]] == ["first"]
        poll = api(running.url, "/api/poll")
        assert poll["total"] == 0 and poll["done"] == 0 and poll["best_trial"] is None


def test_a_file_moved_replaced_or_deleted_while_shown_is_said_so_and_its_name_followed(
        tmp_path):
    path, other = tmp_path / "search.db", tmp_path / "other.db"
    for where, name, trials in ((path, "first", 2), (other, "second", 3)):
        oracle = hpstore.RandomSearchOracle(objective="loss", max_trials=trials, seed=1,
                                            database=str(where), project_name=name,
                                            hyperparameters=steer_space())
        for _ in range(trials):
            trial = oracle.create_trial("w")
            oracle.update_trial(trial.trial_id, {"loss": 1.0})
            oracle.end_trial(trial)
        oracle.close()
    kept = path.read_bytes()
    with open_dashboard(str(path), port=0) as running:
        running.start()
        first = api(running.url, "/api/poll")
        assert (first["name"], first["total"]) == ("first", 2)
        path.rename(tmp_path / "moved.db")  # the page must not go on showing it as search.db
        status, _, body = fetch(running.url, "/api/poll", {"seq": "0", "generation": "1"})
        assert status == 410 and "moved, replaced or deleted" in strict_json(body)["error"]
        os.replace(other, path)  # another search at the name: shown, from its start
        assert [p["name"] for p in api(running.url, "/api/projects")["projects"]] == ["second"]
        poll = api(running.url, "/api/poll", {"seq": "5", "obs": "5",
                                               "generation": str(first["generation"])})
        assert poll["fresh"] and poll["generation"] != first["generation"]
        assert (poll["name"], poll["total"]) == ("second", 3)
        path.unlink()
        path.write_bytes(kept)  # the first search back under its name: followed again
        assert api(running.url, "/api/poll")["name"] == "first"
        path.rename(tmp_path / "away.db")  # moved away and back, the same file: shown again
        assert fetch(running.url, "/api/poll")[0] == 410
        (tmp_path / "away.db").rename(path)
        assert api(running.url, "/api/poll")["name"] == "first"
        assert [p["name"] for p in api(running.url, "/api/projects")["projects"]] == ["first"]


def _one_trial_search(path: Path, name: str) -> None:
    # finished (its one trial done): the dashboard asks no oracle of it, in a thread of its
    # own with a store of its own, that would hold the file open a moment longer
    oracle = hpstore.RandomSearchOracle(objective="loss", max_trials=1, seed=1,
                                        database=str(path), project_name=name,
                                        hyperparameters=steer_space())
    trial = oracle.create_trial("w")
    oracle.update_trial(trial.trial_id, {"loss": 1.0})
    oracle.end_trial(trial)
    oracle.close()


def test_a_search_deleted_while_shown_can_be_made_again_at_its_name(tmp_path):
    # the dashboard kept the deleted file open, its log and index in use under the name:
    # a new search there was refused for as long as the dashboard ran
    path = tmp_path / "search.db"
    _one_trial_search(path, "old")
    proc = subprocess.Popen([sys.executable, "-m", "hpstore", "dashboard", str(path), "--port",
                             "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = re.search(r"http://\S+/", proc.stdout.readline())
        assert url, proc.stderr
        first = api(url.group(0), "/api/poll")
        assert first["name"] == "old" and first["finished"]
        path.unlink()
        status, _, body = fetch(url.group(0), "/api/poll")
        assert status == 410 and "moved, replaced or deleted" in strict_json(body)["error"]
        _one_trial_search(path, "new")  # beside the dashboard, at the same name
        poll = api(url.group(0), "/api/poll")
        assert (poll["name"], poll["total"]) == ("new", 1)
    finally:
        proc.terminate()
        proc.communicate(timeout=DEADLINE)


# -- a hyperparameter of a conditional branch ---------------------------------------------------

class BranchTuner(hpstore.Tuner):
    """Declares ``dropout`` only in the "rnn" branch, while running (as a model-building
    function does), so the space grows when the branch is first taken."""

    def run_trial(self, trial: hpstore.Trial) -> None:
        hp = trial.hyperparameters
        model = hp.Choice("model", ["mlp", "rnn"])
        with hp.conditional_scope("model", ["rnn"]):
            if model == "rnn":
                hp.Float("dropout", 0.01, 0.5, sampling="log")
        loss = 1.0 + (hp.values.get("dropout", 0.0) if model == "rnn" else 0.5)
        for step in range(2):
            self.report(trial, {"loss": loss + 1.0 / (step + 1)}, step=step)


def branch_search(path: str, trials: int, values: list[dict]) -> list[str]:
    hp = hpstore.HyperParameters()
    hp.Choice("model", ["mlp", "rnn"])  # dropout is declared by the first trial of "rnn"
    oracle = hpstore.RandomSearchOracle(objective="loss", max_trials=trials, seed=4,
                                        database=path, project_name="branch",
                                        hyperparameters=hp)
    for given in values:
        oracle.enqueue_trial(given, skip_if_exists=False)
    BranchTuner(oracle, verbose=0).search()
    ids = [t.trial_id for t in oracle.trials.values()]
    oracle.close()
    return ids


def test_a_hyperparameter_declared_only_in_a_conditional_branch_is_shown_once_taken(tmp_path):
    path = str(tmp_path / "search.db")
    branch_search(path, 2, [{"model": "mlp"}, {"model": "mlp"}])
    with open_dashboard(path, port=0) as running:
        running.start()
        first = api(running.url, "/api/poll")
        assert "dropout" not in api(running.url, "/api/trials")["columns"]
        api(running.url, "/api/plots")  # drawn before the branch is taken
        ids = branch_search(path, 4, [{"model": "rnn"}, {"model": "rnn"}])
        again = api(running.url, "/api/poll", {"seq": first["seq"], "obs": first["obs"],
                                               "generation": first["generation"]})
        assert again["total"] == 4
        table = api(running.url, "/api/trials")
        columns = table["columns"]
        assert columns.count("dropout") == 1
        cells = {r["trial_id"]: dict(zip(columns, r["cells"])) for r in table["rows"]}
        assert [cells[t]["model"] for t in ids] == ["mlp", "mlp", "rnn", "rnn"]
        assert cells[ids[0]]["dropout"] == "" and float(cells[ids[3]]["dropout"]) > 0
        sections = {s["key"]: s["html"] for s in api(running.url, "/api/plots")["sections"]}
        assert "<figcaption>dropout</figcaption>" in sections["hyperparameters"]
        assert "2 scored trial(s) without a value here (inactive)" in (
            sections["hyperparameters"])
        assert '"n/a": the hyperparameter was inactive' in sections["parallel"]
        trial = api(running.url, "/api/trial", {"t": ids[3]})
        assert [k for k, _ in trial["values"]] == ["model", "dropout"]
        assert [k for k, _ in api(running.url, "/api/trial", {"t": ids[0]})["values"]] == [
            "model"]
        status, _, body = fetch(running.url, "/download", {"format": "json"})
        assert status == 200 and [r["dropout"] is None for r in strict_json(body)] == [
            True, True, False, False]


def steer_space() -> hpstore.HyperParameters:
    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 10)
    return hp


def test_the_old_file_helper_writes_what_a_file_of_that_version_holds(tmp_path):
    """The files above are what an older hpstore wrote: today's hpstore upgrades them."""
    path = tmp_path / "old.db"
    write_old_file(str(path), 1)
    copy = tmp_path / "copy.db"
    shutil.copy(path, copy)
    oracle = hpstore.Oracle.attach(str(copy), "p")
    assert [t.score for t in oracle.trials.values()] == [0.5, 0.25]
    oracle.close()
    assert user_version(copy) == SCHEMA_VERSION and user_version(path) == 1
    assert not os.path.exists(str(path) + "-wal") or os.path.getsize(str(path) + "-wal") == 0
