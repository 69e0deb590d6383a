"""The dashboard on a steered search, over HTTP: progress counted as `hpstore summary` and
`hpstore watch` count it, where each trial came from, notes, retired trials marked and left
out of the best and of the plots' scores (also when retired while the dashboard follows),
early stopping."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from _dashboard import (
    DEADLINE,
    HOSTILE_NOTE,
    HOSTILE_PROJECT,
    api,
    run_one,
    steer_space,
    write_steered,
)

import hpstore
from hpstore import queries
from hpstore.dashboard import open_dashboard
from hpstore.store import open_store


def command(*argv: str) -> str:
    result = subprocess.run([sys.executable, "-m", "hpstore", *argv], capture_output=True,
                            text=True, timeout=DEADLINE)
    assert result.returncode == 0, result.stderr
    return result.stdout


def summary_facts(path: str) -> dict:
    """What `hpstore summary` says of project "steered": counts, steered, not counted,
    stopped early, best."""
    text = command("summary", path, "--project", "steered")
    trials = re.search(r"^Trials: (\d+)((?:, [A-Z]+ \d+)*)$", text, re.M)
    steered = re.search(r"^Steered: (.*?)(?: \((\d+) not counted towards max_trials\))?$",
                        text, re.M)
    stopped = re.search(r"^Stopped early: (\d+) trial\(s\), about (\d+) steps", text, re.M)
    best = re.search(r"^Best: trial (\S+), score (\S+) ", text, re.M)
    assert trials and steered and stopped and best, text
    counts = {s: int(n) for s, n in re.findall(r", ([A-Z]+) (\d+)", trials.group(2))}
    kinds = {k: int(n) for n, k in re.findall(r"(\d+) ([a-z ]+?)(?:,|$)", steered.group(1))}
    return {"total": int(trials.group(1)), "counts": counts, "steered": kinds,
            "steered_line": steered.group(0), "uncounted": int(steered.group(2) or 0),
            "stopped": (int(stopped.group(1)), int(stopped.group(2))),
            "best": best.group(1)}


@pytest.fixture(scope="module")
def steered(tmp_path_factory):
    folder = tmp_path_factory.mktemp("steered")
    path = str(folder / "search.db")
    ids = write_steered(path, str(folder / "source.db"))
    return path, ids


@pytest.fixture(scope="module")
def url(steered):
    with open_dashboard(steered[0], port=0) as running:
        running.start()
        yield running.url


def test_progress_is_counted_as_hpstore_summary_and_watch_count_it(steered, url):
    path, _ = steered
    said = summary_facts(path)
    watch = re.search(r"trials done (\d+)/(\d+)", command("watch", path, "--once",
                                                          "--project", "steered"))
    assert watch is not None
    for reply in (api(url, "/api/poll", {"p": "steered"}),
                  api(url, "/api/projects")["projects"][0]):
        assert reply["total"] == said["total"] == 8 and reply["counts"] == said["counts"]
        # added results do not count towards max_trials; a STOPPED trial ended for good
        assert reply["uncounted"] == said["uncounted"] == 3
        done = sum(said["counts"][s] for s in ("COMPLETED", "FAILED", "STOPPED")) - 3
        assert reply["done"] == done == int(watch.group(1)) == 5
        assert reply["max_trials"] == int(watch.group(2)) == 6
        assert reply["steered"] == said["steered"] == {
            "enqueued": 1, "added": 2, "warm start": 2, "retired": 1}
        # five of six counted trials ended: the search may go on, it is not finished
        assert reply["finished"] is None
        assert (reply["stopped_early"]["trials"],
                reply["stopped_early"]["steps_saved"]) == said["stopped"]
        # in the summary's words, which the page shows
        assert reply["stopped_early"]["said"] == (f"{said['stopped'][0]} trial(s), about "
                                                  f"{said['stopped'][1]} steps not run")


def test_the_best_leaves_out_the_retired_trial_as_hpstore_summary_does(steered, url):
    path, ids = steered
    reply = api(url, "/api/poll", {"p": "steered"})
    assert reply["best_trial"]["trial_id"] == summary_facts(path)["best"] == ids["completed"]
    assert reply["best"]["trial_id"] == ids["completed"]


def drawn_scores(url: str) -> dict[str, set[str]]:
    """Per plot section, the trial ids drawn with a score."""
    sections = {s["key"]: s["html"] for s in api(url, "/api/plots", {"p": "steered"})["sections"]}
    return {
        "history": set(re.findall(r"<title>trial (\w+): [-\d.e]+</title>", sections["history"])),
        "hyperparameters": set(re.findall(r"<title>trial (\w+): [^<]*, score ",
                                          sections["hyperparameters"])),
        "parallel": set(re.findall(r"<title>trial (\w+): score ", sections["parallel"])),
    }


def scored_ids(path: str) -> set[str]:
    """The trials the store hands out with a score for plotting (a retired one has none)."""
    store = open_store(path, read_only=True)
    try:
        project = queries.choose_project(store, "steered")
        return {t for _, t, _, score in project.score_line() if score is not None}
    finally:
        store.close()


def test_the_plots_draw_no_score_of_a_retired_trial(steered, url):
    path, ids = steered
    drawn = drawn_scores(url)
    assert ids["added"] not in scored_ids(path)
    for section, found in drawn.items():
        assert found == scored_ids(path), section


def test_the_table_and_the_trial_say_where_a_trial_came_from_its_note_and_retirement(
        steered, url):
    _, ids = steered
    table = api(url, "/api/trials", {"p": "steered"})
    columns = table["columns"]
    rows = {r["trial_id"]: dict(zip(columns, r["cells"])) | {"_": r} for r in table["rows"]}
    assert rows[ids["added"]]["status"] == "COMPLETED (retired)"
    assert rows[ids["added"]]["_"]["retired"] is True and rows[ids["added"]]["retired"]
    assert [t for t, r in rows.items() if r["_"]["retired"]] == [ids["added"]]
    assert rows[ids["enqueued"]]["origin"] == "enqueued"
    assert rows[ids["enqueued"]]["note"] == HOSTILE_NOTE
    assert rows[ids["counted"]]["origin"] == "added"
    for warm in ids["warm"]:
        assert rows[warm]["origin"].startswith(f'warm start: source.db "{HOSTILE_PROJECT}"')
    assert rows[ids["completed"]]["origin"] == ""
    assert rows[ids["stopped"]]["_"]["message"].startswith("Stopped early at step ")

    retired = api(url, "/api/trial", {"p": "steered", "t": ids["added"]})
    facts = dict(retired["facts"])
    assert retired["retired"] is True and facts["origin"] == "added"
    assert facts["retired"].endswith("(out of the results; the status changes say who "
                                     "retired it and why)")
    assert retired["changes"][-1]["message"] == (
        "Retired by tester: measured on the training set")
    noted = api(url, "/api/trial", {"p": "steered", "t": ids["enqueued"]})
    assert noted["note"] == HOSTILE_NOTE and dict(noted["facts"])["origin"] == "enqueued"
    proposed = dict(api(url, "/api/trial", {"p": "steered", "t": ids["completed"]})["facts"])
    assert proposed["origin"] == "proposed by the search's oracle" and "retired" not in proposed
    stopped = dict(api(url, "/api/trial", {"p": "steered", "t": ids["stopped"]})["facts"])
    assert stopped["stopped early"].startswith("yes")


def test_a_trial_retired_while_the_dashboard_follows_leaves_the_best_and_the_plots(
        tmp_path):
    path = str(tmp_path / "search.db")
    ids = write_steered(path, str(tmp_path / "source.db"))
    with open_dashboard(path, port=0) as running:
        running.start()
        first = api(running.url, "/api/poll", {"p": "steered"})
        assert first["best_trial"]["trial_id"] == ids["completed"]
        assert ids["completed"] in drawn_scores(running.url)["history"]  # every trial read
        oracle = hpstore.Oracle.attach(path, "steered")
        oracle.retire_trial(ids["completed"], "a leak", by="tester")
        oracle.close()
        after = api(running.url, "/api/poll", {
            "p": "steered", "seq": first["seq"], "obs": first["obs"],
            "generation": first["generation"]})
        assert [(c["trial_id"], c["from"], c["to"], c["message"]) for c in after["changes"]] == [
            (ids["completed"], "COMPLETED", "COMPLETED", "Retired by tester: a leak")]
        assert after["best_trial"]["trial_id"] == ids["enqueued"]  # the next best, 2.0
        assert after["steered"]["retired"] == 2 and after["done"] == first["done"]
        # a retirement ended no trial: the pace only falls as time passes with no end
        assert after["per_minute"] <= first["per_minute"]
        for section, found in drawn_scores(running.url).items():
            assert found == scored_ids(path), section
            assert ids["completed"] not in found, section
        assert runs_drawn(running.url, "steered") == runs_ran(ids)  # no run is added
        oracle = hpstore.Oracle.attach(path, "steered")
        oracle.restore_trial(ids["completed"], "no leak after all", by="tester")
        oracle.close()
        restored = api(running.url, "/api/poll", {
            "p": "steered", "seq": after["seq"], "obs": after["obs"],
            "generation": after["generation"]})
        assert restored["best_trial"]["trial_id"] == ids["completed"]
        assert ids["completed"] in drawn_scores(running.url)["history"]


def runs_drawn(url: str, project: str) -> list[str]:
    """The runs the dashboard's timeline draws: "trial ID: STATUS" each, sorted."""
    timeline = next(s["html"] for s in api(url, "/api/plots", {"p": project})["sections"]
                    if s["key"] == "timeline")
    return sorted(re.findall(r"<title>trial (\w+) on \S+: ([A-Z]+) after", timeline))


def runs_ran(ids: dict) -> list[tuple[str, str]]:
    return sorted([(ids["enqueued"], "COMPLETED"), (ids["stopped"], "STOPPED"),
                   (ids["completed"], "COMPLETED"), (ids["failed"], "FAILED")])


def test_a_run_stopped_early_ends_where_it_stopped_in_the_dashboard_and_the_report(
        steered, url, tmp_path):
    path, ids = steered
    assert runs_drawn(url, "steered") == runs_ran(ids)  # not RUNNING until now
    report = tmp_path / "report.html"
    command("report", path, "--project", "steered", "-o", str(report))
    assert sorted(re.findall(r"<title>trial (\w+) on \S+: ([A-Z]+) after",
                             report.read_text())) == runs_ran(ids)


def test_a_trial_whose_worker_failed_after_a_stop_ends_its_run_failed(tmp_path):
    path = str(tmp_path / "search.db")
    oracle = hpstore.RandomSearchOracle(objective="loss", max_trials=3, database=path,
                                        project_name="p", hyperparameters=steer_space(),
                                        early_stopping=hpstore.Threshold(upper=50.0))
    with open_dashboard(path, port=0) as running:
        running.start()
        api(running.url, "/api/plots")  # the status log is followed from here
        stopped = run_one(oracle, [100.0, 90.0], "FAILED")
        completed = run_one(oracle, [1.0])
        oracle.close()
        expected = sorted([(stopped, "FAILED"), (completed, "COMPLETED")])
        assert runs_drawn(running.url, "p") == expected
    with open_dashboard(path, port=0) as running:  # read from the file's log at once
        running.start()
        assert runs_drawn(running.url, "p") == expected
    report = tmp_path / "report.html"
    command("report", path, "-o", str(report))
    assert sorted(re.findall(r"<title>trial (\w+) on \S+: ([A-Z]+) after",
                             report.read_text())) == expected
