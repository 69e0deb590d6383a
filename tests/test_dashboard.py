"""`hpstore dashboard` over HTTP: every endpoint on a search written by two processes, an
empty project, NaN and infinite metrics and hostile names; what it answers to bad input,
other hosts and other methods; the command itself."""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from _dashboard import (
    DEADLINE,
    HOSTILE,
    HOSTILE_PROJECT,
    METRIC_HOSTILE,
    api,
    columns_search,
    fetch,
    run_workers,
    space,
    strict_json,
    write_search,
)

import hpstore
from hpstore import queries
from hpstore.cli import READING, load_tool
from hpstore.dashboard import open_dashboard
from hpstore.store import open_store

FORMULA_WORKER = "=HYPERLINK(\"x\")"
RAW_MARKUP = ("<img src=x", "<script>", "<b>a</b>", "<svg onload")


@pytest.fixture(scope="module")
def search_file(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("dashboard") / "search.db")
    run_workers(path, HOSTILE_PROJECT, 16, 2)
    write_search(path, "second", 8, seed=4, tuner_id=FORMULA_WORKER)
    hpstore.RandomSearchOracle(objective="loss", max_trials=5, database=path,
                               project_name="empty", hyperparameters=space()).close()
    return path


@pytest.fixture(scope="module")
def url(search_file):
    with open_dashboard(search_file, port=0) as running:
        running.start()
        yield running.url


def facts(path: str, name: str) -> tuple[dict[str, int], hpstore.store.TrialRecord | None]:
    store = open_store(path, read_only=True)
    try:
        project = queries.choose_project(store, name)
        return project.counts_by_status(), queries.best_trial(project, "min")
    finally:
        store.close()


# -- the command ------------------------------------------------------------------------------

def test_the_command_is_listed_and_its_help_says_what_another_host_exposes(capsys):
    assert "dashboard" in READING
    with pytest.raises(SystemExit):
        load_tool("dashboard").main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "127.0.0.1" in text and "--host 0.0.0.0" in text
    assert "every machine that can reach this one on that port read the whole search" in text


def start_command(*argv: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "hpstore", "dashboard", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the first line names the address, once it listens
    found = re.search(r"http://\S+/", line)
    assert found, (line, proc.stderr.read() if proc.stderr and proc.poll() is not None else "")
    return proc, found.group(0)


def test_the_command_prints_its_address_serves_and_stops_on_ctrl_c(search_file):
    proc, address = start_command(search_file, "--port", "0", "--project", "second")
    try:
        assert address.startswith("http://127.0.0.1:")
        reply = api(address, "/api/poll")  # no project named: --project's
        assert reply["name"] == "second"
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 130
    assert err.strip() == "hpstore: interrupted"


def test_bad_input_is_one_error_line(search_file, tmp_path):
    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hpstore", "dashboard", *argv],
                              capture_output=True, text=True, timeout=DEADLINE)

    missing = run(str(tmp_path / "missing.db"), "--port", "0")
    assert missing.returncode == 2 and missing.stderr.startswith("hpstore: error: ")
    assert "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    assert not (tmp_path / "missing.db").exists()
    wrong = run(search_file, "--project", "nope", "--port", "0")
    assert wrong.returncode == 2 and "No project 'nope'" in wrong.stderr
    assert "second" in wrong.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = run(search_file, "--port", str(taken.getsockname()[1]))
    assert busy.returncode == 2 and "Cannot listen on 127.0.0.1:" in busy.stderr
    assert "another --port" in busy.stderr and len(busy.stderr.splitlines()) == 1
    assert run(search_file, "--port", "70000").returncode == 2
    nohost = run(search_file, "--host", "no such host.invalid", "--port", "0")
    assert nohost.returncode == 2 and "Cannot listen on host" in nohost.stderr


def test_another_host_is_said_to_expose_the_search(search_file):
    proc, address = start_command(search_file, "--port", "0", "--host", "0.0.0.0")
    try:
        assert proc.stdout is not None
        warning = proc.stdout.readline()
        assert "any machine that can reach this one" in warning
        port = address.rsplit(":", 1)[1].rstrip("/")
        # bound to every interface, it answers whatever name the machine is reached by
        status, _, _ = fetch(f"http://127.0.0.1:{port}/", "/api/projects",
                             headers={"Host": f"example.org:{port}"})
        assert status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=DEADLINE)


def test_ctrl_c_while_the_dashboard_opens_a_server_that_does_not_answer_stops_it_at_once():
    # The store was opened on a thread that Python joins as it ends: Ctrl-C waited for the
    # connect to give up (connect_timeout) where every other command stopped at once
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted, held = threading.Event(), []

    def accept() -> None:
        held.append(listener.accept()[0])  # and never answers
        accepted.set()

    threading.Thread(target=accept, daemon=True).start()
    port = listener.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpstore", "dashboard",
         f"postgresql://nobody@127.0.0.1:{port}/db?connect_timeout=3600", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert accepted.wait(DEADLINE), "the dashboard never connected"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=DEADLINE)  # (not the hour of connect_timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        for conn in held:
            conn.close()
        listener.close()
    assert proc.returncode == 130 and err.strip() == "hpstore: interrupted", err


# -- the projects ---------------------------------------------------------------------------------

def test_projects_lists_each_with_counts_best_running_and_last_activity(url, search_file):
    reply = api(url, "/api/projects")
    assert reply["location"] == str(Path(search_file).resolve())
    by_name = {p["name"]: p for p in reply["projects"]}
    assert set(by_name) == {HOSTILE_PROJECT, "second", "empty"}
    for name, shown in by_name.items():
        counts, best = facts(search_file, name)
        assert shown["counts"] == counts and shown["total"] == sum(counts.values())
        assert shown["best"] == (None if best is None else {"trial_id": best.trial_id,
                                                            "score": best.score})
        assert shown["running"] == 0
        assert shown["stopped_early"] is None  # shown once the store records it
    assert by_name[HOSTILE_PROJECT]["counts"]["FAILED"] >= 1
    assert by_name["empty"]["total"] == 0 and by_name["empty"]["last_activity"] is None
    assert by_name["second"]["last_activity"] > by_name["second"]["best"]["score"] * 0
    assert by_name["second"]["finished"].startswith("The search is finished")
    assert by_name["empty"]["finished"] is None  # nothing ran yet: it may still start
    assert reply["finished"] is False and reply["interval"] == 1.0


def test_an_empty_project_answers_every_endpoint(url):
    poll = api(url, "/api/poll", {"p": "empty"})
    assert poll["total"] == 0 and poll["best_trial"] is None and poll["changes"] == []
    page = api(url, "/api/trials", {"p": "empty"})
    assert page["total"] == 0 and page["rows"] == [] and page["pages"] == 1
    sections = {s["key"]: s["html"] for s in api(url, "/api/plots", {"p": "empty"})["sections"]}
    assert "a plot needs at least two scored trials" in sections["history"]
    assert "No trial has started yet." in sections["timeline"]
    compared = api(url, "/api/compare", {"a": "empty", "b": "second"})
    assert "<svg" in compared["html"]
    status, _, body = fetch(url, "/download", {"p": "empty", "format": "csv"})
    assert status == 200 and body.decode().startswith("trial_id,status,score")


# -- one project ----------------------------------------------------------------------------

def test_a_project_is_chosen_by_name_and_an_unknown_one_is_a_404(url):
    status, _, body = fetch(url, "/api/poll")  # several projects and none named
    assert status == 404 and "several projects" in strict_json(body)["error"]
    status, _, body = fetch(url, "/api/poll", {"p": "nope"})
    assert status == 404 and "No project 'nope'" in strict_json(body)["error"]
    assert api(url, "/api/poll", {"p": HOSTILE_PROJECT})["name"] == HOSTILE_PROJECT


def test_the_poll_shows_where_the_search_stands(url, search_file):
    reply = api(url, "/api/poll", {"p": HOSTILE_PROJECT})
    counts, best = facts(search_file, HOSTILE_PROJECT)
    assert reply["fresh"] is True and reply["changes"] == []
    assert reply["counts"] == counts and reply["max_trials"] == 16
    assert reply["best_trial"]["trial_id"] == best.trial_id
    assert reply["best_trial"]["score"] == best.score
    names = [k for k, _ in reply["best_trial"]["values"]]
    assert HOSTILE in names
    assert reply["finished"] == "The search is finished: 16 of 16 trials ended."
    assert reply["workers"] == 0 and reply["running_trials"] == []
    assert reply["seq"] > 0 and reply["obs"] > 0
    # asked again from where it stands: nothing newer
    again = api(url, "/api/poll", {"p": HOSTILE_PROJECT, "seq": reply["seq"],
                                   "obs": reply["obs"], "generation": reply["generation"]})
    assert again["fresh"] is False and again["changes"] == [] and again["seq"] == reply["seq"]


def test_the_trials_table_filters_sorts_and_pages(url, search_file):
    counts, _ = facts(search_file, HOSTILE_PROJECT)
    base = {"p": HOSTILE_PROJECT}
    failed = api(url, "/api/trials", [*base.items(), ("status", "failed")])
    assert failed["total"] == counts["FAILED"] == len(failed["rows"])
    assert {r["status"] for r in failed["rows"]} == {"FAILED"}
    assert all("six" in r["message"] and "<b>" in r["title"] for r in failed["rows"])
    both = api(url, "/api/trials", [*base.items(), ("status", "FAILED"),
                                    ("status", "COMPLETED")])
    assert both["total"] == 16
    best = api(url, "/api/trials", {**base, "sort": "best", "status": "COMPLETED"})
    scores = [float(r["cells"][2]) for r in best["rows"]]
    assert scores == sorted(scores)
    worst = api(url, "/api/trials", {**base, "sort": "best", "desc": "1",
                                     "status": "COMPLETED"})
    assert [r["trial_id"] for r in worst["rows"]] == [r["trial_id"] for r in best["rows"]][::-1]
    assert best["columns"][:3] == ["trial_id", "status", "score"]
    assert HOSTILE in best["columns"] and best["columns"][-1] == "message"
    pages = [api(url, "/api/trials", {**base, "size": 5, "page": n}) for n in (1, 2, 3, 4)]
    assert pages[0]["pages"] == 4 and [len(p["rows"]) for p in pages] == [5, 5, 5, 1]
    numbers = [r["number"] for p in pages for r in p["rows"]]
    assert numbers == list(range(16))
    past = api(url, "/api/trials", {**base, "size": 5, "page": 9})
    assert past["rows"] == [] and past["total"] == 16


@pytest.mark.parametrize(("params", "says"), [
    ({"status": "BOGUS"}, "Unknown status 'BOGUS'"),
    ({"sort": "values"}, "Unknown order 'values'"),
    ({"size": "0"}, "size must be between 1 and 500"),
    ({"size": "100000"}, "size must be between 1 and 500"),
    ({"page": "-1"}, "page must be a whole number"),
    ({"page": "1; DROP TABLE trials"}, "page must be a whole number"),
])
def test_bad_table_parameters_are_a_400_saying_what_to_give(url, params, says):
    status, headers, body = fetch(url, "/api/trials", {"p": "second", **params})
    assert status == 400 and says in strict_json(body)["error"]
    assert headers["Content-Type"].startswith("application/json")


def test_the_plots_are_the_reports_drawing_with_every_name_escaped(url):
    reply = api(url, "/api/plots", {"p": HOSTILE_PROJECT})
    sections = {s["key"]: s["html"] for s in reply["sections"]}
    assert list(sections) == ["history", "hyperparameters", "parallel", "curves", "timeline"]
    assert all("<svg" in drawn for drawn in sections.values())
    assert html.escape(HOSTILE, quote=True) in sections["hyperparameters"]
    for drawn in sections.values():
        for raw in RAW_MARKUP:
            assert raw not in drawn
    assert "The best trials" in sections["curves"]
    timeline = sections["timeline"]
    assert timeline.count("<rect") >= 16  # a bar per run, on each worker's line
    assert len(set(re.findall(r"on (w\d+)", timeline))) == 2


def test_selected_trials_draw_their_curves(url, search_file):
    # two scored trials of the search (a run with y = 6 fails: which ones depends on the
    # seed's draws), the first asked for by its number, without the id's leading zero
    with sqlite3.connect(search_file) as conn:
        (first, first_id), (_, second) = conn.execute(
            "SELECT number, trial_id FROM trials JOIN projects USING (project_id) WHERE "
            "name = ? AND score IS NOT NULL AND number BETWEEN 1 AND 9 ORDER BY number "
            "LIMIT 2", (HOSTILE_PROJECT,)).fetchall()
    reply = api(url, "/api/plots", [("p", HOSTILE_PROJECT), ("select", str(first)),
                                    ("select", second)])
    curves = next(s["html"] for s in reply["sections"] if s["key"] == "curves")
    assert reply["selected"] == [first_id, second] and first_id == f"0{first}"
    assert f"trial {first_id} (score" in curves and f"trial {second} (score" in curves
    assert "selected in the table" in curves
    # a trial the project does not hold (replaced under an open page) is left out, and
    # the answer says which are drawn: the page stopped updating on a 404 for good
    reply = api(url, "/api/plots", [("p", HOSTILE_PROJECT), ("select", "99x"),
                                    ("select", second)])
    assert reply["selected"] == [second]


def test_a_request_with_too_many_parameters_is_answered_not_dropped(url):
    many = [("p", HOSTILE_PROJECT)] + [("select", str(i)) for i in range(70)]
    status, _, body = fetch(url, "/api/plots", many)
    assert status == 400 and "query parameters" in strict_json(body)["error"]
    assert fetch(url, "/api/projects")[0] == 200  # and the server goes on


def test_requests_through_a_forward_on_another_port_are_answered(url):
    # ssh -L 9000:127.0.0.1:8080 (or an editor's forward) sends Host: localhost:9000,
    # which was refused with 403; a name pointed at 127.0.0.1 still is
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    for host in ("localhost:9000", "127.0.0.1:1", "[::1]:9000", "LOCALHOST", "127.0.0.1",
                 f"localhost:{port}"):
        assert fetch(url, "/api/projects", headers={"Host": host})[0] == 200, host
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}",
                 "localhost.:9000", "[::2]:9000", ""):
        assert fetch(url, "/api/projects", headers={"Host": host})[0] == 403, host


def test_a_connection_that_sends_nothing_is_closed(url, monkeypatch):
    # each held a thread for good: 3,000 half-open connections made 3,001 threads
    import socket
    from urllib.parse import urlsplit

    from hpstore.dashboard import server as dashboard_server

    monkeypatch.setattr(dashboard_server, "IDLE_TIMEOUT", 0.5)
    where = urlsplit(url)
    with socket.create_connection((where.hostname, where.port), timeout=DEADLINE) as idle:
        assert idle.recv(1) == b""  # closed by the server, well before the test's deadline
    assert api(url, "/api/projects")  # and the dashboard answers as before


def test_one_trial_shows_values_metrics_per_step_status_log_and_traceback(url, search_file):
    page = api(url, "/api/trials", {"p": HOSTILE_PROJECT, "status": "FAILED"})
    failed = page["rows"][0]["trial_id"]
    reply = api(url, "/api/trial", {"p": HOSTILE_PROJECT, "t": failed})
    assert reply["status"] == "FAILED" and "<b>six</b> & more" in reply["message"]
    assert [c["to"] for c in reply["changes"]] == ["RUNNING", "FAILED"]
    by_number = api(url, "/api/trial", {"p": HOSTILE_PROJECT, "t": str(int(failed))})
    assert by_number["trial_id"] == failed
    # a trial that reported NaN and inf: both shown as text, in valid JSON
    store = open_store(search_file, read_only=True)
    project = queries.choose_project(store, HOSTILE_PROJECT)
    nan_trial = next(t for t in project.trials() if t.values["y"] == 5)
    store.close()
    reply = api(url, "/api/trial", {"p": HOSTILE_PROJECT, "t": nan_trial.trial_id})
    rows = reply["history"]["rows"]
    assert ["1", "loss", "1", "", "1"] in rows  # a NaN step has no mean
    assert ["1", METRIC_HOSTILE, "2", "inf", "1"] in rows
    assert len(rows) == reply["history"]["total"] == 8
    assert dict(reply["values"])[HOSTILE] in ("<b>a</b>", "b&c")
    assert "&lt;svg onload=alert(2)&gt;" in reply["plot"] and "<svg onload" not in reply["plot"]
    assert dict(reply["facts"])["status"] == "COMPLETED"
    status, _, body = fetch(url, "/api/trial", {"p": HOSTILE_PROJECT, "t": "nope"})
    assert status == 404 and "No trial 'nope'" in strict_json(body)["error"]
    assert fetch(url, "/api/trial", {"p": HOSTILE_PROJECT})[0] == 400


def test_two_projects_compared_overlay_their_histories(url):
    reply = api(url, "/api/compare", {"a": HOSTILE_PROJECT, "b": "second"})
    assert [p["name"] for p in reply["projects"]] == [HOSTILE_PROJECT, "second"]
    drawn = reply["html"]
    assert drawn.count('stroke="#1f77b4"') >= 1 and drawn.count('stroke="#e6550d"') >= 1
    assert "&lt;/script&gt;&lt;script&gt;" in drawn and "<script>" not in drawn
    assert fetch(url, "/api/compare", {"a": "second"})[0] == 400
    assert fetch(url, "/api/compare", {"a": "second", "b": "nope"})[0] == 404


def test_downloads_are_every_trial_as_hpstore_export_writes_them(url, search_file, capsys):
    export = load_tool("export")
    for fmt in ("csv", "json"):
        status, headers, body = fetch(url, "/download", {"p": "second", "format": fmt})
        assert status == 200
        assert headers["Content-Disposition"] == f'attachment; filename="second.{fmt}"'
        export.main([search_file, "--project", "second", "--format", fmt])
        assert body.decode("utf-8") == capsys.readouterr().out
    csv_text = fetch(url, "/download", {"p": "second"})[2].decode()
    assert f"'{FORMULA_WORKER}" in csv_text.replace('""', '"')  # a formula is neutralised
    status, headers, _ = fetch(url, "/download", {"p": HOSTILE_PROJECT})
    assert headers["Content-Disposition"] == (
        'attachment; filename="script_script_alert_p_script.csv"')
    assert fetch(url, "/download", {"p": "second", "format": "xlsx"})[0] == 400


def test_every_answer_is_strict_json_whatever_the_file_holds(url):
    for path, params in [("/api/projects", {}), ("/api/poll", {"p": HOSTILE_PROJECT}),
                         ("/api/trials", {"p": HOSTILE_PROJECT, "size": 100}),
                         ("/api/plots", {"p": HOSTILE_PROJECT}),
                         ("/api/compare", {"a": HOSTILE_PROJECT, "b": "second"})]:
        status, headers, body = fetch(url, path, params)
        assert status == 200 and headers["Content-Type"] == "application/json; charset=utf-8"
        strict_json(body)  # NaN or Infinity would be refused by a browser


# -- what it serves, and to whom ----------------------------------------------------------------

def test_only_its_own_page_and_files_are_served(url):
    page = fetch(url, "/")[2]
    for path in ("/project", "/trial", "/compare"):
        assert fetch(url, path)[2] == page
    assert b'<script src="/assets/dashboard.js"' in page
    status, headers, js = fetch(url, "/assets/dashboard.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert b"innerHTML" in js and js.count(b"innerHTML") == 1  # the server's plots, only
    assert fetch(url, "/assets/dashboard.css")[1]["Content-Type"].startswith("text/css")
    for path in ("/assets/index.html", "/assets/../server.py", "/assets/%2e%2e/server.py",
                 "/etc/passwd", "//etc/passwd", "/assets", "/api", "/api/projects/",
                 "/download/../../x", "/favicon.ico", "/" + "a" * 5000):
        status, _, _ = fetch(url, path)
        assert status == 404, path


def test_every_answer_carries_the_security_headers(url):
    for path in ("/", "/assets/dashboard.js", "/api/projects", "/nope",
                 "/download?p=second"):
        _, headers, _ = fetch(url, path)
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_nothing_but_get_and_head_is_answered(url, method):
    status, headers, _ = fetch(url, "/api/projects", method=method)
    assert status == 405 and headers["Allow"] == "GET, HEAD"


def test_head_answers_without_a_body(url):
    status, headers, body = fetch(url, "/api/projects", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


def test_requests_for_another_host_name_are_refused(url):
    port = url.rsplit(":", 1)[1].rstrip("/")
    for host in (f"evil.example:{port}", f"127.0.0.1.nip.io:{port}"):
        status, _, _ = fetch(url, "/api/projects", headers={"Host": host})
        assert status == 403, host
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        assert fetch(url, "/api/projects", headers={"Host": host})[0] == 200


def tree(folder: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(folder)): (
        hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir",
        p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def test_a_dashboard_session_changes_no_byte_of_the_file(tmp_path):
    path = tmp_path / "search.db"
    write_search(str(path), "p", 6)
    before = tree(tmp_path)
    with open_dashboard(str(path), port=0) as running:
        running.start()
        for endpoint, params in [("/api/projects", {}), ("/api/poll", {}), ("/api/trials", {}),
                                 ("/api/plots", {"select": "1"}), ("/api/trial", {"t": "2"}),
                                 ("/api/compare", {"a": "p", "b": "p"}), ("/download", {})]:
            assert fetch(running.url, endpoint, params)[0] == 200, endpoint
    after = tree(tmp_path)
    for name, stamp in before.items():
        assert after[name] == stamp, name
    # only SQLite's empty log beside a file no process had open (README)
    assert sorted(set(after) - set(before)) in ([], ["search.db-shm", "search.db-wal"])
    wal = tmp_path / "search.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0


def test_a_project_started_afresh_is_followed_from_the_start(tmp_path):
    path = str(tmp_path / "search.db")
    write_search(path, "p", 4)
    with open_dashboard(path, port=0) as running:
        running.start()
        first = api(running.url, "/api/poll")
        oracle = hpstore.RandomSearchOracle(objective="loss", max_trials=9, seed=8,
                                            database=path, project_name="p", overwrite=True,
                                            hyperparameters=space())
        oracle.close()
        again = api(running.url, "/api/poll", {"seq": first["seq"], "obs": first["obs"],
                                               "generation": first["generation"]})
        assert again["generation"] != first["generation"] and again["fresh"] is True
        assert again["total"] == 0 and again["max_trials"] == 9


def test_a_file_that_is_not_a_search_is_refused_before_listening(tmp_path):
    bogus = tmp_path / "notes.db"
    bogus.write_bytes(b"not a database at all" * 100)
    result = subprocess.run([sys.executable, "-m", "hpstore", "dashboard", str(bogus),
                             "--port", "0"], capture_output=True, text=True, timeout=DEADLINE)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("hpstore: error: ") and "Traceback" not in result.stderr
    assert bogus.read_bytes() == b"not a database at all" * 100
    assert sorted(os.listdir(tmp_path)) == ["notes.db"]
    json.dumps(result.stderr)


def test_hyperparameters_named_like_the_tables_columns_are_titled_apart(tmp_path):
    # /api/trials titled a hyperparameter "message" as is, beside the dashboard's own
    # message column
    path = str(tmp_path / "columns.db")
    columns_search(path)
    with open_dashboard(path, port=0) as running:
        running.start()
        found = api(running.url, "/api/trials")
    columns = found["columns"]
    assert len(columns) == len(set(columns))
    assert [c for c in columns if c.startswith("hp:")] == ["hp:status", "hp:note",
                                                           "hp:message"]
    assert "best step" in columns and columns[-1] == "message"
    row = dict(zip(columns, found["rows"][0]["cells"]))
    assert row["hp:message"] == "message-value" and row["status"] == "COMPLETED"


def test_a_long_trials_history_shows_its_latest_steps_of_every_metric(tmp_path):
    # the table kept the last 2,000 rows in (run, metric, step) order: all of the metric
    # named last, none of the others
    from hpstore.dashboard.api import HISTORY_ROWS

    path = str(tmp_path / "long.db")
    oracle = hpstore.RandomSearchOracle(objective="loss", max_trials=1, database=path,
                                        hyperparameters=space())
    trial = oracle.create_trial("w")
    steps = HISTORY_ROWS  # two metrics: twice the rows shown
    for step in range(steps):
        oracle.update_trial(trial.trial_id, {"loss": 1.0 / (step + 1), "zeta": step}, step=step)
    oracle.end_trial(trial)
    oracle.close()
    with open_dashboard(path, port=0) as running:
        running.start()
        reply = api(running.url, "/api/trial", {"t": trial.trial_id})
    rows = reply["history"]["rows"]
    assert reply["history"]["total"] == 2 * steps and len(rows) == HISTORY_ROWS
    shown = {m: [int(s) for _, metric, s, _, _ in rows if metric == m] for m in ("loss", "zeta")}
    latest = list(range(steps - HISTORY_ROWS // 2, steps))
    assert shown == {"loss": latest, "zeta": latest}
