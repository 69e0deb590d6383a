"""Every hpstore command on a postgresql:// URL, and hpstore stress against PostgreSQL
(hpstore copy between engines: test_postgresql_copy.py)."""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from _postgres import ENV, base_url, complete, fresh_url, server, wait_until
from _workers import open_oracle
from psycopg import sql

import hpstore
from hpstore.cli import load_tool, main
from hpstore.errors import DatabaseError
from hpstore.store import open_store, shown
from hpstore.store.postgresql.admin import with_schema
from hpstore.store.postgresql.schema import SCHEMA_VERSION
from hpstore.tooling import holds_search


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def shared_url():
    """A search on PostgreSQL with 30 completed trials, a failed and a retried one."""
    url = fresh_url("tools")
    oracle = open_oracle(url, max_trials=32, seed=2, max_retries_per_trial=1)
    complete(oracle, 30)
    bad = oracle.create_trial("w-extra")
    bad.status, bad.message = "FAILED", "Traceback (most recent call last):\nValueError: nope"
    oracle.end_trial(bad)
    flaky = oracle.create_trial("w-extra")
    oracle.update_trial(flaky.trial_id, {"loss": 5.0}, step=0)
    flaky.status = "INVALID"
    oracle.end_trial(flaky)  # queued for a retry
    oracle.close()
    return url


def test_every_inspection_command_reads_a_url(shared_url, capsys, tmp_path):
    code, out, _ = run(capsys, "summary", shared_url)
    assert code == 0 and "Trials: 32, COMPLETED 30, FAILED 1, INVALID 1" in out
    code, out, _ = run(capsys, "trials", shared_url, "--format", "csv")
    assert code == 0 and len(list(csv.DictReader(io.StringIO(out)))) == 32
    code, out, _ = run(capsys, "best", shared_url, "-n", "2", "--format", "json")
    assert code == 0 and len(json.loads(out)) == 2
    code, out, _ = run(capsys, "history", shared_url, "--worker", "w-extra", "--format", "json")
    assert code == 0 and [r["to"] for r in json.loads(out)] == ["RUNNING", "FAILED",
                                                                "RUNNING", "INVALID"]
    flaky = json.loads(out)[-1]["trial_id"]
    code, out, _ = run(capsys, "show", shared_url, flaky)
    assert code == 0 and f"Trial {flaky}: INVALID" in out
    code, out, _ = run(capsys, "export", shared_url, "--format", "jsonl")
    assert code == 0 and len(out.splitlines()) == 32
    code, out, _ = run(capsys, "watch", shared_url, "--once")
    assert code == 0 and "trials done 31/32" in out
    report = tmp_path / "report.html"
    code, out, _ = run(capsys, "report", shared_url, "-o", str(report))
    assert code == 0 and "<svg" in report.read_text()


def test_check_reports_the_server_and_the_schema(shared_url, capsys):
    code, out, _ = run(capsys, "check", shared_url)
    assert code == 0
    assert "server: PostgreSQL" in out
    assert f"schema version: {SCHEMA_VERSION} (this hpstore: {SCHEMA_VERSION})" in out
    assert "live workers: 0" in out and "of max_connections" in out
    assert "1 waiting to run again" in out
    # a schema, not a file, is what a worker is started on
    assert "start any worker on this schema" in out and "file" not in out


def test_a_project_not_in_the_schema_is_said_so(shared_url, capsys):
    code, _, err = run(capsys, "summary", shared_url, "--project", "nope")
    assert code == 2 and "No project 'nope' in this schema" in err, err
    empty = fresh_url()
    open_store(empty).close()  # hpstore's tables, no project
    code, _, err = run(capsys, "summary", empty)
    assert code == 2 and "This schema holds no project yet" in err, err


@pytest.mark.parametrize(("edit", "named", "reader"), [
    ("UPDATE trials SET hp_values = '[1,2]' WHERE number = 1", "trials.hp_values", "trials"),
    ("UPDATE transitions SET to_status = 'BOGUS' WHERE id = (SELECT max(id) FROM "
     "transitions)", "transitions.to_status", None)])
def test_check_reports_a_value_hpstore_never_writes_on_a_server(capsys, edit, named, reader):
    # check read no row on a server: a JSON array for a trial's values, or a status the
    # log's table lets through, left it saying everything was fine
    from hpstore.store.postgresql import admin

    name = f"contents_{secrets.token_hex(6)}"
    url = admin.create_schema(base_url(), name)
    try:
        complete(open_oracle(url, max_trials=4), 3)
        code, out, _ = run(capsys, "check", url)
        assert code == 0 and "contents: every value as hpstore writes it" in out
        with psycopg.connect(base_url()) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(name)))
            conn.execute(edit)
        code, out, _ = run(capsys, "check", url)
        assert code == 1 and "contents: The schema's " + named in out
        assert "file" not in out, out
        if reader is not None:  # a tool that reads the value: of the search, not a file
            code, _, err = run(capsys, reader, url)
            assert code == 2 and named in err and "file" not in err, err
    finally:
        admin.drop_schema(base_url(), name)


def test_the_commands_take_a_url_that_asks_for_a_read_write_server(shared_url, capsys):
    # The README's URL for a primary among several hosts: every command refused it ("session
    # is read-only"), the read-only sessions of the tools made so by the URL's options,
    # which libpq's check of target_session_attrs takes for a standby's.
    sep = "&" if "?" in shared_url else "?"
    url = f"{shared_url}{sep}target_session_attrs=read-write"
    code, out, err = run(capsys, "summary", url)
    assert code == 0 and "Trials: 32" in out, err
    code, out, err = run(capsys, "sql", url, "SELECT count(*) AS n FROM trials", "--format",
                         "json")
    assert code == 0 and json.loads(out) == [{"n": 32}], err
    code, _, err = run(capsys, "sql", url,  # the session is read-only all the same
                       "WITH gone AS (DELETE FROM trials RETURNING 1) SELECT count(*) FROM gone")
    assert code == 2 and "read-only" in err
    store = open_store(url, read_only=True)
    try:
        [(read_only,)] = store.db.query("SHOW default_transaction_read_only")
    finally:
        store.close()
    assert read_only == "on"


def test_sql_reads_in_a_read_only_transaction_and_refuses_writes(shared_url, capsys):
    code, out, _ = run(capsys, "sql", shared_url, "SELECT status, count(*) AS n FROM "
                       "trial_overview GROUP BY status ORDER BY status", "--format", "json")
    assert code == 0 and json.loads(out) == [
        {"status": "COMPLETED", "n": 30}, {"status": "FAILED", "n": 1},
        {"status": "INVALID", "n": 1}]
    for statement in ["DELETE FROM trials", "UPDATE trials SET score = 0", "DROP TABLE trials",
                      "CREATE TABLE x (y int)", "SET TRANSACTION READ WRITE",
                      "SELECT set_config('default_transaction_read_only', 'off', false)"]:
        run(capsys, "sql", shared_url, statement)
    code, _, err = run(capsys, "sql", shared_url, "DELETE FROM trials")
    assert code == 2 and "not DELETE" in err  # refused before the server sees it
    code, _, err = run(capsys, "sql", shared_url,
                       "WITH gone AS (DELETE FROM trials RETURNING 1) SELECT count(*) FROM gone")
    assert code == 2 and "read-only" in err  # a query that writes: the transaction refuses
    code, _, err = run(capsys, "sql", shared_url, "SELECT 1; DELETE FROM trials")
    assert code == 2 and "one statement" in err
    code, _, err = run(capsys, "sql", shared_url, "SELECT pg_sleep(30)", "--timeout", "0.2")
    assert code == 2 and "ran longer than 0.2 s" in err
    code, out, _ = run(capsys, "sql", shared_url, "SELECT count(*) AS n FROM trials",
                       "--format", "json")
    assert json.loads(out) == [{"n": 32}]  # nothing was changed


@pytest.mark.parametrize("statement, keyword", [
    ("COPY (SELECT 1) TO PROGRAM 'true'", "COPY"),  # a read-only transaction runs these
    ("/* a */ DO $$ BEGIN PERFORM 1; END $$", "DO"),
    ("LISTEN channel", "LISTEN"),
    ("SET search_path = elsewhere", "SET"),
    ("BEGIN", "BEGIN"),
])
def test_sql_sends_the_server_only_queries(shared_url, capsys, statement, keyword):
    code, out, err = run(capsys, "sql", shared_url, statement)
    assert code == 2 and out == "" and f"not {keyword};" in err and "nothing was sent" in err


def test_sql_finds_the_query_behind_comments_and_parentheses(shared_url, capsys):
    code, out, _ = run(capsys, "sql", shared_url,
                       "/* a /* nested */ comment */ -- and a line\n(SELECT 7 AS seven)",
                       "--format", "json")
    assert code == 0 and json.loads(out) == [{"seven": 7}]
    code, _, err = run(capsys, "sql", shared_url, "-- only a comment")
    assert code == 2 and "holds no statement" in err


def test_sql_gives_json_columns_as_stored_as_a_file_does(shared_url, capsys):
    # the text written, not the server's value parsed and written again
    code, out, _ = run(capsys, "sql", shared_url, "SELECT hp_values, objective FROM trials "
                       "JOIN projects USING (project_id) ORDER BY number LIMIT 1",
                       "--format", "csv", "--raw")
    stored = list(csv.reader(io.StringIO(out)))[1]
    values = open_oracle(shared_url).get_trial("00").hyperparameters.values
    assert code == 0 and stored == [json.dumps(values, separators=(",", ":")),
                                    '{"name":"loss","direction":"min"}']


def test_sql_json_holds_a_servers_array_of_infinities_as_standard_json(shared_url, capsys):
    # an array (array_agg of a curve) holding inf or NaN failed: "Out of range float values"
    code, out, _ = run(capsys, "sql", shared_url, "SELECT ARRAY[1, 'Infinity'::float8, "
                       "'-Infinity'::float8, 'NaN'::float8] AS curve", "--format", "json")
    assert code == 0
    assert json.loads(out, parse_constant=lambda name: pytest.fail(f"not JSON: {name}")) == [
        {"curve": [1.0, "Infinity", "-Infinity", None]}]


def test_sql_cancelled_on_the_server_is_said_so_not_taken_for_ctrl_c(shared_url):
    # an administrator's pg_cancel_backend: before, "hpstore: interrupted", exit 130
    sleeping = subprocess.Popen(
        [sys.executable, "-m", "hpstore", "sql", shared_url, "SELECT pg_sleep(60)",
         "--timeout", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    found: list[int] = []

    def running() -> bool:
        with psycopg.connect(base_url(), autocommit=True) as conn:
            found[:] = [r[0] for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' "
                "AND state = 'active'")]
        return bool(found)

    try:
        wait_until(running, 30, "the query's start")
        with psycopg.connect(base_url(), autocommit=True) as conn:
            conn.execute("SELECT pg_cancel_backend(%s)", (found[0],))
        _, err = sleeping.communicate(timeout=30)
    finally:
        sleeping.kill()
    assert sleeping.returncode == 2 and "cancelled the query" in err, err


def test_backup_of_a_url_points_to_copy(shared_url, capsys, tmp_path):
    code, _, err = run(capsys, "backup", shared_url, str(tmp_path / "b.db"))
    assert code == 2 and "hpstore copy" in err and not (tmp_path / "b.db").exists()


def test_a_password_in_the_url_is_never_printed(shared_url, capsys):
    with_password = shared_url.replace("postgres@", "postgres:hunter2@")
    code, out, err = run(capsys, "summary", with_password)
    assert code == 0 and "hunter2" not in out + err
    code, out, err = run(capsys, "summary", with_password.replace("/postgres?", "/nodb?"))
    assert code == 2 and "hunter2" not in out + err
    # as a query parameter; and in URLs libpq cannot read, which its own message quotes
    code, out, err = run(capsys, "summary", f"{shared_url}&password=hunter2")
    assert code == 0 and "hunter2" not in out + err
    for unreadable in ("postgresql://postgres:hunter2@[::1:5432/postgres",
                       "postgresql://postgres:hunter2%ZZ@127.0.0.1:1/postgres"):
        for command in ("summary", "sql", "copy"):
            args = {"sql": [unreadable, "SELECT 1"], "copy": [unreadable, shared_url]}
            code, out, err = run(capsys, command, *args.get(command, [unreadable]))
            assert code == 2 and "libpq" in err and "hunter2" not in out + err, err


@pytest.mark.parametrize("mark", ["#", "?"])
def test_a_password_holding_a_bare_hash_or_question_mark_is_never_shown(shared_url, capsys,
                                                                        tmp_path, mark):
    # libpq reads the password to the "@"; a URL parser stops at "#" or "?", and the first
    # part of the password was shown as the host, and kept in a warm start's origin
    url = shared_url.replace("postgres@", f"postgres:Hunter{mark}two@")
    code, out, err = run(capsys, "summary", url)
    assert code == 0 and "Hunter" not in out + err and "@127.0.0.1" in out
    oracle = open_oracle(tmp_path / "warm.db", warm_start_from=(url, "untitled_project"))
    origins = {oracle.project.trial(t).origin for t in oracle.warm_start.added}
    oracle.close()
    assert origins and not any("Hunter" in o for o in origins)
    code, out, err = run(capsys, "summary", url.replace("/postgres?", "/nodb?"))
    assert code == 2 and "Hunter" not in out + err


@pytest.mark.parametrize("url", ["postgresql://me:Hunter/two@127.0.0.1:1/db",
                                 "postgresql://me:1234/two@127.0.0.1:1/db",
                                 "postgresql://me:Hunter/tw?o@127.0.0.1:1/db",
                                 "postgresql://me:Hunter/two@127.0.0.1",
                                 # with a bare "@" too: libpq ends the user info at it
                                 "postgresql://me:Hunter@two/tw@127.0.0.1:1/db",
                                 "postgresql://me:Hun#ter?tw@two/tw@127.0.0.1:1/db"])
def test_a_password_holding_a_bare_slash_is_refused_and_no_part_of_it_is_shown(url):
    # libpq reads "me:Hunter" as the host and port, "two@..." as the database name (or,
    # after a "?", as parameters): a URL parser showed the password's parts
    from hpstore.store.postgresql import redact

    with pytest.raises(hpstore.DatabaseError, match="%2F") as raised:
        hpstore.RandomSearchOracle("loss", database=url)
    for part in ("Hunter", "1234", "two", "tw"):
        assert part not in str(raised.value) and part not in redact(url, query=True)


def test_an_at_sign_in_a_parameter_after_a_port_is_written_as_percent_40():
    # it reads as a password holding a "/" (which may be all digits): refused, saying how
    from hpstore.store.postgresql import redact

    with pytest.raises(hpstore.DatabaseError, match="%40"):
        hpstore.RandomSearchOracle(
            "loss", database="postgresql://127.0.0.1:1/db?application_name=me@laptop")
    written = "postgresql://db1:5433,db2:5434/searches?application_name=me%40laptop"
    assert redact(written, query=True) == written
    assert redact("postgresql://[::1]/d@b") == "postgresql://[::1]/d@b"  # an IPv6 host


def test_an_ssl_mode_the_server_cannot_give_is_a_setting_to_change_not_a_wait(shared_url):
    # it was a ServerUnavailableError ("may succeed later"): no later try would
    url = shared_url + "&sslmode=require"  # the tests' server has no SSL
    with pytest.raises(hpstore.DatabaseError, match="sslmode") as raised:
        open_store(url, read_only=True)
    assert not isinstance(raised.value, hpstore.ServerUnavailableError)
    assert "sslmode=require" in str(raised.value)  # the URL as written


def test_the_tools_name_the_schema_of_the_search(shared_url, capsys):
    # two schemas of one database are two searches: what a tool prints tells them apart
    code, out, _ = run(capsys, "summary", shared_url)
    schema = shared_url.rsplit("%3D", 1)[1]
    assert code == 0 and out.splitlines()[0].startswith(shared_url.split("?")[0])
    assert f"search_path%3D{schema}" in out.splitlines()[0]


def test_watch_waits_for_a_schema_to_hold_a_search():
    url = fresh_url()
    assert not holds_search(url)
    open_oracle(url, max_trials=2).close()
    assert holds_search(url)
    # ... and for a server not reached yet (a port nobody listens on)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    assert not holds_search(f"postgresql://postgres@127.0.0.1:{port}/postgres")


def test_watch_stops_at_once_on_a_url_that_waiting_cannot_mend(capsys):
    # a role or database the server does not know, a URL libpq cannot read, a schema that
    # does not exist: each is said, exit 2, where `watch` used to wait for ever
    parts = urlsplit(fresh_url())
    server_at = parts.netloc.split("@")[1]
    for url in (urlunsplit(parts._replace(netloc=f"nobody_{parts.port}@{server_at}")),
                urlunsplit(parts._replace(path="/no_such_database")),
                urlunsplit(parts._replace(query="foo=bar")),
                urlunsplit(parts._replace(query="options=-csearch_path%3Dno_such_schema"))):
        with pytest.raises(DatabaseError):
            holds_search(url)
        code, _, err = run(capsys, "watch", url, "--interval", "0.1")
        assert code == 2 and err.startswith("hpstore: error:"), err


@pytest.mark.skipif(server() is None, reason=f"makes a role on the tests' own server ({ENV} "
                    "is set)")
def test_a_role_without_usage_on_the_schema_is_told_so(capsys):
    url = fresh_url()
    open_oracle(url, max_trials=2).close()
    role = f"nousage_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    parts = urlsplit(url)
    code, _, err = run(capsys, "summary", urlunsplit(parts._replace(
        netloc=f"{role}@{parts.netloc.split('@')[1]}")))
    assert code == 2 and "lacks a privilege" in err and "USAGE" in err, err
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_stress_finds_no_violation_on_postgresql(tmp_path):
    stress = load_tool("stress")
    database = base_url()  # each round makes a schema of its own there
    opts = stress.parser().parse_args([
        "--oracle", "random", "--processes", "3", "--trials", "30", "--kill-every", "0.1",
        "--seed", "7", "--step-time", "0.005", "--database", database])
    kills = 0
    # a round's kills depend on how fast its workers finish: rounds until the chaos loop
    # has really killed workers twice, every round checked whole
    for number in range(4):
        result = stress.run_round(opts, "random", tmp_path, number)
        assert result["violations"] == []
        assert result["trials"] == 30 and result["completed_by_workers"] > 0
        kills += sum(result["kills"].values())
        if kills >= 2:
            break
    assert kills >= 2  # the chaos loop really killed workers
    assert not _stress_schemas(database, os.getpid())  # the rounds' schemas are gone again


def _stress_schemas(database: str, pid: int) -> list[str]:
    """The schemas the stress tool running as ``pid`` made and left on the server."""
    with psycopg.connect(database) as conn:
        return [r[0] for r in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
            (f"hpstore\\_stress\\_{pid}\\_%",))]


def test_stress_as_a_role_that_may_not_create_a_schema_says_so_in_one_line(capsys):
    # a worker's role (granted the rows it writes, nothing more) given to `hpstore stress`,
    # which makes a schema per round: a raw psycopg InsufficientPrivilege traceback
    role = f"nocreate_{secrets.token_hex(4)}"
    with psycopg.connect(base_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        parts = urlsplit(base_url())
        url = urlunsplit(parts._replace(netloc=f"{role}@{parts.netloc.split('@')[1]}"))
        code, _, err = run(capsys, "stress", "--database", url, "--processes", "2",
                           "--trials", "5")
        assert code == 2, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert "may not create a schema" in err and "GRANT CREATE ON DATABASE" in err, err
    finally:
        with psycopg.connect(base_url(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stress_stopped_with_ctrl_c_leaves_no_schema_on_the_server(tmp_path, sig):
    from _ctrl_c import stop_a_run_with_ctrl_c

    scratch, pid = stop_a_run_with_ctrl_c(tmp_path, "--database", base_url(), sig=sig)
    assert list(scratch.iterdir()) == []
    assert _stress_schemas(base_url(), pid) == []


def test_the_dashboard_follows_a_search_on_a_url():
    from _dashboard import api

    from hpstore.dashboard import open_dashboard

    url = fresh_url("dashboard")
    oracle = open_oracle(url, max_trials=10, seed=4)
    complete(oracle, 2)
    running = open_dashboard(url, port=0)
    running.start()
    try:
        first = api(running.url, "/api/poll")
        assert first["total"] == 2 and first["counts"] == {"COMPLETED": 2}
        trial = oracle.create_trial("live")
        for step in range(3):
            oracle.update_trial(trial.trial_id, {"loss": float(step)}, step=step)
        seen = api(running.url, "/api/poll", {"seq": first["seq"], "obs": first["obs"],
                                              "generation": first["generation"],
                                              "trial": trial.trial_id})
        assert [(c["from"], c["to"]) for c in seen["changes"]] == [(None, "RUNNING")]
        assert [v["value"] for v in seen["values"]] == [0.0, 1.0, 2.0]
        assert seen["running_trials"][0]["tuner_id"] == "live"
    finally:
        running.close()
        oracle.close()


def test_the_dashboard_command_names_the_url_without_its_password(shared_url):
    from _dashboard import DEADLINE

    with_password = shared_url.replace("postgres@", "postgres:hunter2@")
    proc = subprocess.Popen([sys.executable, "-m", "hpstore", "dashboard", with_password,
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once it listens
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=DEADLINE)
    assert line.startswith(f"hpstore dashboard of {shown(with_password)}: http://"), line
    assert "hunter2" not in line + err


def test_a_url_of_several_hosts_is_shown_as_written_without_its_password():
    from hpstore.store.postgresql import redact

    shown = redact("postgresql://me:s3cret@db1:5433,db2:5434/searches?password=x")
    assert shown == "postgresql://me@db1:5433,db2:5434/searches"


def test_a_url_is_shown_with_its_parameters_as_written_and_no_password():
    from hpstore.store.postgresql import redact

    given = ("postgresql://me:s3cret@db1/searches?options=-csearch_path%3D%22my%5C%20team%22"
             "&PASSWORD=x&application_name=a+b&pass%77ord=y&sslmode=require")
    assert redact(given, query=True) == ("postgresql://me@db1/searches?options=-csearch_path"
                                         "%3D%22my%5C%20team%22&application_name=a+b"
                                         "&sslmode=require")


def test_the_url_a_tool_shows_names_the_schema_it_read(capsys):
    # a space in the schema's name: shown as "+", which libpq reads as a plus sign, the
    # URL named another schema
    schema = f"my team {secrets.token_hex(3)}"
    with psycopg.connect(base_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        url = with_schema(base_url(), '"' + schema.replace(" ", "\\ ") + '"')
        assert "%5C%20" in url
        open_oracle(url, max_trials=2, project_name="spaced").close()
        code, out, _ = run(capsys, "summary", url)
        assert code == 0
        printed = out.splitlines()[0].split(": ", 1)[0]
        assert printed == shown(url) and "+" not in printed
        code, out, err = run(capsys, "summary", printed)
        assert code == 0 and "'spaced'" in out, err
    finally:
        with psycopg.connect(base_url(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.mark.parametrize("password", ["zq@xw", "zq?xw@vy", "zq#xw@vy", "zq@xw?vy"])
def test_an_at_sign_left_in_a_password_is_said_so_and_no_part_of_it_is_shown(password):
    # libpq ends the user info at the first "@" (a "?" before it is the password's): a
    # "?" in the password hid the second "@" from the check, and libpq looked up the rest
    # of the password as the host name, and said so
    from hpstore.store.postgresql import redact

    url = f"postgresql://me:{password}@127.0.0.1:1/db"
    with pytest.raises(hpstore.DatabaseError, match="%40") as raised:
        hpstore.RandomSearchOracle("loss", database=url)
    for part in ("zq", "xw", "vy"):
        assert part not in str(raised.value) and part not in redact(url, query=True)
    assert "postgresql://me@127.0.0.1:1/db" in str(raised.value)


def test_a_parameter_libpq_does_not_know_is_named_and_its_value_never_shown():
    url = "postgresql://me:s3cret@127.0.0.1:1/db?sslmode=disable&sslmod=require"
    with pytest.raises(hpstore.DatabaseError, match="knows no parameter 'sslmod'") as raised:
        hpstore.RandomSearchOracle("loss", database=url)
    assert "s3cret" not in str(raised.value) and "correct or remove it" in str(raised.value)
    # a "name" that looks like a secret typed in the wrong place is not shown
    with pytest.raises(hpstore.DatabaseError, match="parameters 'tmeout', ") as raised:
        hpstore.RandomSearchOracle("loss", database=url.replace(
            "sslmod=require", "tmeout=3&hunter2:x=1"))
    assert "hunter2" not in str(raised.value) and "(a name not shown)" in str(raised.value)


def test_sql_streams_a_large_result_from_the_server_in_bounded_memory(shared_url,
                                                                       monkeypatch):
    # the rows were fetched whole (fetchall) before the first was printed
    import io
    import tracemalloc

    from hpstore.cli import main

    class Counting(io.TextIOBase):
        chars = 0

        def writable(self):
            return True

        def write(self, text):
            self.chars += len(text)
            return len(text)

    out = Counting()
    monkeypatch.setattr(sys, "stdout", out)
    tracemalloc.start()
    try:
        code = main(["sql", shared_url, "SELECT x, x * 0.5 AS half, 'row number ' || x AS "
                     "label FROM generate_series(1, 50000) AS x", "--format", "csv"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        monkeypatch.undo()
    assert code == 0 and out.chars > 50_000 * 20
    assert peak < 5_000_000, f"{peak / 1e6:.1f} MB held for 50000 rows"


@pytest.mark.parametrize(("fmt", "expected"), [("table", "trial_id  score\n--------  -----\n"),
                                               ("csv", "trial_id,score\r\n"),
                                               ("json", "[]\n")])
def test_sql_of_no_rows_still_titles_its_columns_as_from_a_file(shared_url, capsys, tmp_path,
                                                                 fmt, expected):
    # streamed, a result of no rows came back without its columns (psycopg's stream drops
    # the description of an empty result): the table and the CSV had no titles, unlike the
    # same query on a file
    query = "SELECT trial_id, score FROM trials WHERE false"
    code, out, err = run(capsys, "sql", shared_url, query, "--format", fmt)
    assert (code, out) == (0, expected), err
    path = str(tmp_path / "s.db")
    open_oracle(path, max_trials=1).close()
    assert run(capsys, "sql", path, query, "--format", fmt)[:2] == (0, expected)
    store = open_store(shared_url, read_only=True)
    try:
        with store.sql_rows(query) as (columns, rows):
            assert (columns, list(rows)) == (["trial_id", "score"], [])
        assert store.sql("SELECT 1 AS a WHERE false") == (["a"], [])
    finally:
        store.close()
