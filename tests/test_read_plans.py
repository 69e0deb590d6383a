"""How the tools' reads of a whole project walk a search file: in the order the table lies.

A read of every trial that SQLite starts from the values index (the never-twice digest,
whose order is a hash's) reads the table's pages at random, five times as long as
walking them in order at 100,000 trials. SQLite chooses plans from the schema alone (hpstore
never runs ANALYZE), so a small file shows the plan a large one gets; figures are in the
README (Performance), not here.
"""

from __future__ import annotations

import sqlite3

import pytest
from _workers import end_trials, open_oracle

from hpstore import queries
from hpstore.store import open_store


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("plans") / "s.db")
    with open_oracle(path, max_trials=100) as oracle:
        end_trials(oracle, ["COMPLETED", "FAILED", "COMPLETED"])
    return path


def plans(path: str, ask) -> list[str]:
    """The query plan of every statement ``ask(project)`` sends, one line per step."""
    store = open_store(path, read_only=True)
    sent: list[str] = []
    try:
        project = queries.choose_project(store, None)
        project.db._conn.set_trace_callback(sent.append)
        ask(project)
    finally:
        store.close()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [row[3] for sql in sent if sql.lstrip().upper().startswith(("SELECT", "WITH"))
                for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
    finally:
        conn.close()


@pytest.mark.parametrize("ask", [
    lambda p: p.steering_counts(),
    lambda p: p.steps_reported("loss"),
    lambda p: p.most_steps_reported("loss", "COMPLETED"),
], ids=["steering_counts", "steps_reported", "most_steps_reported"])
def test_reads_of_every_trial_walk_the_table_in_number_order(search, ask):
    steps = plans(search, ask)
    assert steps and not [s for s in steps if "trials_by_values" in s], steps
    assert not [s for s in steps if "trials_by_status" in s], steps


def test_the_runs_are_paired_by_the_logs_index(search):
    # the report read the whole status log into Python to pair each run's start with its
    # end (1.5 s at 100,000 trials): the starts are walked once, each end found by index
    steps = plans(search, lambda p: p.runs(2))  # (3 runs: a sample of 2)
    assert "SEARCH c USING INDEX transitions_by_trial (trial=? AND rowid>?)" in steps, steps
    log = ("s", "b", "c", "d", "l")  # the statements' names of the status log
    assert len([s for s in steps if s.split()[:2] in [["SCAN", n] for n in log]]) == 1, steps


@pytest.fixture(scope="module")
def stopped_search(tmp_path_factory):
    """A search with one trial a stopping rule stopped, and two completed."""
    from hpstore.store import NewTrial

    path = str(tmp_path_factory.mktemp("stopped") / "s.db")
    open_oracle(path, max_trials=100).close()
    store = open_store(path)
    try:
        project = queries.choose_project(store, None)
        project.add_trials([
            NewTrial({"x": 1}, "x=1", "COMPLETED", 0.5, 2,
                     [("loss", "min", s, 0.5) for s in range(3)], "added"),
            NewTrial({"x": 2}, "x=2", "STOPPED", 0.9, 0, [("loss", "min", 0, 0.9)], "added",
                     "Stopped early at step 0 by MedianStoppingRule: worse"),
        ], counted=True, skip_existing=False, make_id=lambda n, m: f"{n:02d}")
    finally:
        store.close()
    return path


def sent_by(monkeypatch, capsys, argv: list[str]) -> tuple[str, list[str]]:
    """What the command prints, and the statements it sends the file."""
    from hpstore import tooling
    from hpstore.cli import main

    sent: list[str] = []
    opened = tooling.open_search

    def open_traced(database: str, **kwargs):
        store = opened(database, **kwargs)
        store.db._conn.set_trace_callback(sent.append)
        return store

    monkeypatch.setattr(tooling, "open_search", open_traced)  # (each run loads the tool)
    code = main(argv)
    assert code == 0
    return capsys.readouterr().out, sent


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_trials_as_csv_or_json_reads_no_metric_value(stopped_search, monkeypatch, capsys,
                                                     fmt):
    # (the table's last line counts the steps early stopping saved, from every trial's
    # metric values: CSV and JSON have no such line)
    out, sent = sent_by(monkeypatch, capsys, ["trials", stopped_search, "--format", fmt])
    assert "00" in out and "01" in out
    assert not [s for s in sent if "observations" in s], sent
    table, sent = sent_by(monkeypatch, capsys, ["trials", stopped_search])
    assert table.endswith("(stopped early: 1 trial(s), about 2 steps not run)\n")
    assert [s for s in sent if "observations" in s]


@pytest.mark.parametrize("descending", [False, True])
def test_a_page_by_score_is_read_through_the_status_index(search, descending):
    # sorted in one statement, every trial of the project was read and sorted for a page
    # (a page the scored trials fill: past them, the unscored and the retired are read)
    steps = plans(search, lambda p: p.trials(order="score", descending=descending, limit=1))
    assert [s for s in steps if "trials_by_status" in s], steps
    assert not [s for s in steps if s == "USE TEMP B-TREE FOR ORDER BY"
                or "trials_by_values" in s or s.startswith("SCAN trials")], steps


@pytest.mark.parametrize("tuner_id", [None, "w", "nobody"])
def test_the_whole_log_of_a_file_of_one_project_is_walked_in_order(search, tuner_id):
    # (`hpstore history [--worker W]`: the project's trials first, then each one's rows,
    # read the whole log in another order and sorted it; no index holds the tuner id)
    steps = plans(search, lambda p: p.transitions(tuner_id=tuner_id, last=True))
    assert "SEARCH s USING INTEGER PRIMARY KEY (rowid>?)" in steps, steps
    assert not [s for s in steps if "TEMP B-TREE" in s], steps


@pytest.mark.parametrize("statuses", [None, ["COMPLETED"]])
@pytest.mark.parametrize("order", ["ended", "score"])
def test_trials_sorted_whole_are_read_in_table_order(search, order, statuses):
    # (`hpstore trials --sort ended`, or by score past a page: every trial is sorted)
    steps = plans(search, lambda p: p.trials(order=order, statuses=statuses,
                                             limit=None if order == "score" else 20))
    assert "SEARCH trials USING INDEX sqlite_autoindex_trials_2 (project_id=?)" in steps, steps
    assert not [s for s in steps if "trials_by_values" in s], steps


def test_trials_by_end_time_ties_by_number_and_unended_first(tmp_path):
    from hpstore.store import NewTrial

    path = str(tmp_path / "ended.db")
    with open_oracle(path, max_trials=100) as oracle:
        end_trials(oracle, ["COMPLETED", "FAILED"])  # 00 and 01, one after the other
        oracle.project.add_trials(  # 02 to 04, ended at one time
            [NewTrial({"x": i}, f"x={i}", "COMPLETED", 0.5, 0, [], "added") for i in range(3)],
            counted=True, skip_existing=False, make_id=lambda n, m: f"{n:03d}")
        oracle.create_trial("w2")  # 05 runs: no end yet
    store = open_store(path, read_only=True)
    try:
        project = queries.choose_project(store, None)
        ranked = {False: [5, 0, 1, 2, 3, 4], True: [2, 3, 4, 1, 0, 5]}
        for descending, expected in ranked.items():
            for limit, offset in ((None, 0), (2, 0), (3, 2), (10, 4)):
                found = project.trials(order="ended", descending=descending, limit=limit,
                                       offset=offset)
                end = None if limit is None else offset + limit
                assert [t.number for t in found] == expected[offset:end]
            assert [t.number for t in project.trials(
                order="ended", statuses=["COMPLETED"], descending=descending)] == [
                    n for n in expected if n not in (1, 5)]
    finally:
        store.close()


def test_an_enqueue_looks_its_values_up_in_the_values_index(tmp_path):
    # it walked the (project, number) index to spare a sort of the one or two rows found:
    # every trial of the project, holding the write lock (8.5 ms an enqueue at 20,000
    # trials, 32 ms for values given in part; 10,000 enqueued took 2 min 16 s)
    path = str(tmp_path / "enqueue.db")
    with open_oracle(path, max_trials=100) as oracle:
        end_trials(oracle, ["COMPLETED"] * 3)
        sent: list[str] = []
        oracle._project.db._conn.set_trace_callback(sent.append)
        oracle.enqueue_trial({"x": 1.0})  # in part: the earlier spaces' keys looked up too
        oracle.enqueue_trial({"x": 2.0, "y": 3, "c": "a"})
        oracle._project.db._conn.set_trace_callback(None)
    lookups = [sql for sql in sent if "values_key = " in sql and sql.startswith("SELECT")]
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        steps = [row[3] for sql in lookups for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
    finally:
        conn.close()
    assert len(lookups) >= 2 and steps, sent
    searched = [s for s in steps if s.startswith(("SEARCH trials", "SCAN trials"))]
    assert searched and all("trials_by_values" in s for s in searched), steps


def vm_steps(project, ask):
    """SQLite's virtual machine steps (in hundreds) that ``ask()`` takes on ``project``."""
    steps = [0]
    project.db.connect().set_progress_handler(lambda: steps.__setitem__(0, steps[0] + 1), 100)
    try:
        ask()
    finally:
        project.db.connect().set_progress_handler(None, 100)
    return steps[0]


@pytest.mark.parametrize("quiet_steps", [1, 600])
def test_the_values_another_project_wrote_since_are_walked_once(tmp_path, quiet_steps):
    # The dashboard asks at every poll for the values after its project's last one: each
    # time it walked every value written since by the file's other projects (0.2 s at two
    # million), and, for its projects page, did so for each project of the file. A project
    # that holds few values has them read by index (a page of 1,000 small projects beside
    # one of 20,000 trials walked the latter's rows for each: 17 s); one that holds more
    # walks the others' rows once.
    path = str(tmp_path / "two.db")
    with open_oracle(path, max_trials=10, project_name="quiet") as quiet:
        trial = quiet.create_trial("w")
        for step in range(quiet_steps):
            quiet.update_trial(trial.trial_id, {"loss": 1.0}, step=step)
        trial.status = "COMPLETED"
        quiet.end_trial(trial)
    with open_oracle(path, max_trials=10, project_name="busy") as busy:
        trial = busy.create_trial("w")
        for step in range(4_000):
            busy.update_trial(trial.trial_id, {"loss": 1.0}, step=step)
    store = open_store(path, read_only=True)
    try:
        busy_project = queries.choose_project(store, "busy")
        walk = vm_steps(busy_project, lambda: busy_project.observations_since(0))
        project = queries.choose_project(store, "quiet")
        position, logged = project.last_observation(), project.last_transition()

        def ask():
            assert project.observations_since(position) == []
            assert project.transitions(after=logged) == []

        work = [vm_steps(project, ask) for _ in range(3)]
        counted = [vm_steps(project, lambda: (project.last_observation(),
                                               project.last_transition(),
                                               project.recent_final_statuses(5)))]
    finally:
        store.close()
    if quiet_steps == 1:  # by index, every time
        assert 20 * max(work) < walk, (work, walk)
        assert 20 * max(counted) < walk, (counted, walk)
    else:  # the first walk reads the 4,000 values, the next ones none
        assert work[0] > 20 * max(work[1], work[2], 1), (work, walk)


def test_the_scores_of_named_trials_are_probed_by_their_ids(search):
    # Hyperband's promotions ask for the scores of a bracket's trials: planned on the
    # status index, the query read every completed trial (143 ms at 35,000 trials, inside
    # the write transaction)
    steps = plans(search, lambda p: p.scores(["0", "1", "2"]))
    assert steps and all("trials_by_status" not in s for s in steps), steps
    assert any("trial_id=?" in s for s in steps), steps


def test_what_a_stopping_rule_reads_of_the_log_is_its_new_rows(search):
    # a join of the log's new rows to the trials, or a DISTINCT, read every trial of the
    # project or the whole log's index at each report
    from hpstore.store.sqlite.history import CompletedValues, SQLiteHistory

    store = open_store(search, read_only=True)
    sent: list[str] = []
    try:
        project = queries.choose_project(store, None)
        conn = project.db._conn
        history = SQLiteHistory(conn, project.project_id, "loss", -1, CompletedValues())
        history.completed_count()  # (read whole, the first time)
        conn.set_trace_callback(sent.append)
        history._fresh = False
        history.completed_count()
    finally:
        store.close()
    conn = sqlite3.connect(f"file:{search}?mode=ro", uri=True)
    try:
        steps = [row[3] for sql in sent if "transitions" in sql and "max(id)" not in sql
                 for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
    finally:
        conn.close()
    assert steps and all("rowid" in s or "INTEGER PRIMARY KEY" in s for s in steps
                         if "transitions" in s), steps
