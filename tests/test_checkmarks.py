"""A tool checks a file's contents once: later opens check only the rows added since, and
what that trusts is covered where values are decoded."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from _workers import space

import hpstore
from hpstore.cli import main as hpstore_main
from hpstore.errors import NotAnHpstoreFileError
from hpstore.store.sqlite import checkmarks
from hpstore.store.sqlite.readonly import connect_readonly
from hpstore.tooling import open_search


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def search(path, trials=6):
    oracle = hpstore.RandomSearchOracle("loss", max_trials=trials, hyperparameters=space(),
                                        seed=3, database=str(path))
    for _ in range(trials):
        trial = oracle.create_trial("w")
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    oracle.close()


def craft(path, sql):
    conn = sqlite3.connect(path)
    conn.execute(sql)
    conn.commit()
    conn.close()


def marks_of(path):
    conn = connect_readonly(path, check=False)
    try:
        return checkmarks.load(checkmarks.file_key(path.resolve(), conn))
    finally:
        conn.close()


def test_a_first_open_checks_everything_and_remembers_how_far(tmp_path):
    path = tmp_path / "s.db"
    search(path)
    assert marks_of(path) == {}
    connect_readonly(path).close()
    assert marks_of(path) == {"trials": 6, "observations": 6, "transitions": 12}


def test_rows_added_after_a_check_are_checked(tmp_path):
    path = tmp_path / "s.db"
    search(path)
    connect_readonly(path).close()
    craft(path, "INSERT INTO transitions (trial, from_status, to_status, at) "
                "VALUES (1, 'RUNNING', CAST('COMPLETED' AS BLOB), 0)")
    with pytest.raises(NotAnHpstoreFileError, match=r"transitions\.to_status"):
        connect_readonly(path)
    assert marks_of(path)["transitions"] == 12  # a failed check moves no mark


def test_a_copy_of_a_checked_file_is_checked_whole(tmp_path):
    path = tmp_path / "s.db"
    search(path)
    connect_readonly(path).close()
    copy = tmp_path / "copy.db"
    shutil.copy(path, copy)
    craft(copy, "UPDATE trials SET hp_values = '[1, 2]' WHERE number = 0")  # an old row
    with pytest.raises(NotAnHpstoreFileError, match=r"trials\.hp_values"):
        connect_readonly(copy)


def test_removed_rows_make_the_next_check_whole(tmp_path):
    path = tmp_path / "s.db"
    search(path)
    connect_readonly(path).close()
    craft(path, "DELETE FROM observations WHERE id > 2")
    craft(path, "UPDATE observations SET metric = CAST('loss' AS BLOB) WHERE id = 1")
    with pytest.raises(NotAnHpstoreFileError, match=r"observations\.metric"):
        connect_readonly(path)


def test_an_old_row_rewritten_outside_hpstore_is_refused_where_it_is_read(tmp_path, capsys):
    # What the marks trust: rows once checked are rewritten only by hpstore. A row changed
    # by hand afterwards passes the open, and is refused where a tool decodes it.
    path = tmp_path / "s.db"
    search(path)
    connect_readonly(path).close()
    craft(path, "UPDATE trials SET hp_values = '[1, 2]' WHERE number = 0")
    store = open_search(str(path))
    try:
        project = store.open_project(store.projects()[0])
        with pytest.raises(NotAnHpstoreFileError, match=r"trials\.hp_values"):
            _ = project.trial_by_number(0).values
    finally:
        store.close()
    assert hpstore_main(["trials", str(path)]) == 2
    assert "hpstore: error:" in capsys.readouterr().err


def test_marks_that_cannot_be_kept_cost_only_the_whole_check(tmp_path, monkeypatch):
    path = tmp_path / "s.db"
    search(path)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    for _ in range(2):
        connect_readonly(path).close()
    assert marks_of(path) == {}
    craft(path, "UPDATE trials SET note = CAST('x' AS BLOB) WHERE number = 1")
    with pytest.raises(NotAnHpstoreFileError, match=r"trials\.note"):
        connect_readonly(path)


def test_the_marks_file_may_be_damaged(tmp_path):
    path = tmp_path / "s.db"
    search(path)
    target = checkmarks._cache_file()
    target.parent.mkdir(parents=True)
    target.write_text("{not json")
    connect_readonly(path).close()  # checked whole, and the marks written afresh
    assert marks_of(path)["trials"] == 6


def test_a_file_unchanged_since_its_last_look_leaves_the_marks_as_they_are(tmp_path):
    path = tmp_path / "s.db"
    search(path)
    connect_readonly(path).close()
    marks = checkmarks._cache_file()
    marks.write_text(marks.read_text() + " ")  # a trailing space: rewritten files lose it
    connect_readonly(path).close()
    assert marks.read_text().endswith(" ")
    search(tmp_path / "other.db")  # a new look elsewhere writes the marks again
    connect_readonly(tmp_path / "other.db").close()
    assert not marks.read_text().endswith(" ")


HOMELESS = 65531  # a user with no entry in the password database (a container's --user)


def _summary_without_a_home(path: str, cwd: str, results) -> None:
    import contextlib
    import io
    import os

    import numpy  # noqa: F401  (the oracle's: loaded while the Python is readable)
    from _faults import become

    from hpstore.cli import main

    for name in ("HOME", "XDG_CACHE_HOME"):
        os.environ.pop(name, None)
    become(HOMELESS)
    os.chdir(cwd)
    said = []
    for args in (["summary", path], ["summary", "~/s.db"], ["backup", path, "~/copy.db"],
                 ["export", path, "-o", "~/trials.csv"]):
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                code = main(args)
        except Exception as exc:  # (reported: the test shows it)
            code = type(exc).__name__
            out.write(f"Traceback: {exc}")
        said.append((code, out.getvalue()))
    try:
        hpstore.RandomSearchOracle("loss", max_trials=3, hyperparameters=space(),
                                   database="~/s.db")
    except Exception as exc:
        said.append((type(exc).__name__, str(exc)))
    results.put(said)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="a homeless user")
def test_a_user_without_a_home_leaves_no_folder_named_tilde_and_is_told_what_tilde_lacks():
    import multiprocessing as mp
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="hpstore-home-"))
    try:
        os.chmod(folder, 0o777)
        search(folder / "s.db")
        ctx = mp.get_context("spawn")
        results = ctx.Queue()
        child = ctx.Process(target=_summary_without_a_home,
                            args=(str(folder / "s.db"), str(folder), results))
        child.start()
        looked, *tilde = results.get(timeout=60)
        child.join(60)
        assert looked[0] == 0, looked
        # "~" with no home known: a RuntimeError and its traceback
        for code, text in tilde:
            assert code in (2, "DatabaseError"), text
            assert "~/" in text and "home folder" in text and "HOME" in text, text
            assert "Traceback" not in text
        # the marks went to ./~/.cache/hpstore/checked.json: a folder named "~" in the
        # folder the user ran in (which `rm -r ~` then takes for their home)
        assert sorted(p.name for p in folder.iterdir()) == ["s.db", "s.db.hpstore"]
    finally:
        shutil.rmtree(folder)
