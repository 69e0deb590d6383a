"""The PostgreSQL engine's schema and settings: the same tables and views as a file, JSON
kept exactly, refusals before anything is written, and every worker starting at once."""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import secrets
import sqlite3
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from _postgres import ENV, base_url, fresh_database, fresh_url, server
from _workers import space

import hpstore
from hpstore.errors import (
    DatabaseError,
    EngineUnavailableError,
    NotAnHpstoreFileError,
    SchemaVersionError,
)
from hpstore.store import open_store
from hpstore.store.postgresql import admin
from hpstore.store.postgresql.schema import SCHEMA_VERSION, migrations
from hpstore.store.postgresql.throwaway import FAST, Server

DEADLINE = 120.0


def run(oracle, n, tuner="w"):
    for _ in range(n):
        trial = oracle.create_trial(tuner)
        if trial.status != "RUNNING":
            break
        v = trial.hyperparameters.values
        oracle.update_trial(trial.trial_id, {"loss": float(len(str(sorted(v.items()))))})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)


def test_a_url_without_psycopg_says_which_extra_to_install():
    code = ("import sys; sys.modules['psycopg'] = None\n"  # as on a machine without it
            "from hpstore.store import open_store\n"
            "try:\n"
            "    open_store('postgresql://u:secret@db.example/x')\n"
            "except Exception as exc:\n"
            "    print(type(exc).__name__, exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=DEADLINE, check=True).stdout
    assert out.startswith("EngineUnavailableError")
    assert 'pip install "hpstore[postgres]"' in out and "secret" not in out
    assert issubclass(EngineUnavailableError, DatabaseError)


def test_stress_on_a_url_without_psycopg_says_which_extra_to_install():
    # the other commands said so; stress's schema of its own imported psycopg first: a
    # ModuleNotFoundError traceback
    code = ("import sys; sys.modules['psycopg'] = None\n"
            "from hpstore.cli import main\n"
            "sys.exit(main(['stress', '--database', 'postgresql://u:secret@db.example/x', "
            "'--trials', '4']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=DEADLINE)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert 'pip install "hpstore[postgres]"' in done.stderr and "secret" not in done.stderr


def test_both_url_schemes_open_the_same_store():
    url = fresh_url()
    store = open_store(url)
    store.create_project(__import__("_stores").new_project("p"))
    store.close()
    other = open_store("postgres://" + url[len("postgresql://"):], read_only=True)
    assert [p.name for p in other.projects()] == ["p"]
    other.close()
    # in any case, as a URL's scheme may be written (libpq takes lower case only)
    upper = open_store("POSTGRESQL://" + url[len("postgresql://"):], read_only=True)
    assert [p.name for p in upper.projects()] == ["p"]
    upper.close()


def test_tables_and_views_have_the_columns_of_a_search_file(tmp_path):
    file_store = open_store(str(tmp_path / "s.db"))
    file_store.close()
    conn = sqlite3.connect(tmp_path / "s.db")
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name")]
    file_columns = {n: [r[1] for r in conn.execute(f"PRAGMA table_info({n})")] for n in names}
    conn.close()
    url = fresh_url()
    open_store(url).close()
    schema = url.rsplit("%3D", 1)[1]
    with psycopg.connect(base_url()) as pg:
        pg_columns = {n: [r[0] for r in pg.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND "
            "table_name = %s ORDER BY ordinal_position", (schema, n))] for n in names}
        views = {r[0] for r in pg.execute(
            "SELECT table_name FROM information_schema.views WHERE table_schema = %s",
            (schema,))}
    assert pg_columns == file_columns
    assert views == {"trial_overview", "trial_values", "metric_history", "status_log"}


def test_json_comes_back_byte_for_byte_and_the_views_give_jsonb():
    url = fresh_url()
    hp = hpstore.HyperParameters()
    hp.Float("big", 0.0, 1e20)  # jsonb would give back the integer 100000000000000000000
    hp.Choice("z", ["s", "t"])  # declared after "big": jsonb would sort the keys
    oracle = hpstore.RandomSearchOracle("loss", max_trials=3, hyperparameters=hp, seed=3,
                                        database=url)
    run(oracle, 3)
    state = oracle.get_state()
    oracle.close()
    again = hpstore.RandomSearchOracle("loss", max_trials=3, hyperparameters=hp, seed=3,
                                       database=url)  # no ProjectMismatchError: 1e20 a float
    assert again.get_state()["space"] == state["space"]
    max_value = state["space"][0]["config"]["max_value"]
    assert max_value == 1e20 and isinstance(max_value, float)
    assert [list(t["hp_values"]) for t in state["trials"]] == [["big", "z"]] * 3
    store = again.store
    columns, rows = store.sql("SELECT hp_values, hp_values->>'z' FROM trial_overview "
                              "ORDER BY number")
    # (the text as the server gives it, as hpstore sql prints it: jsonb's, keys reordered)
    assert columns == ["hp_values", "?column?"] and list(json.loads(rows[0][0])) == ["z", "big"]
    assert rows[0][1] == state["trials"][0]["hp_values"]["z"]
    first = state["trials"][0]["trial_id"]
    _, values = store.sql(f"SELECT name, value FROM trial_values WHERE trial_id = '{first}'")
    assert sorted(n for n, _ in values) == ["big", "z"]
    again.close()


def test_a_schema_of_another_application_is_refused_and_left_alone():
    url = fresh_url()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE trials (id int)")
    with pytest.raises(NotAnHpstoreFileError, match="another application's tables"):
        open_store(url)
    with psycopg.connect(url) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    assert tables == {"trials"}  # nothing created


def test_a_schema_from_a_newer_hpstore_is_refused():
    url = fresh_url()
    open_store(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO hpstore_migrations VALUES (99, 0)")
    with pytest.raises(SchemaVersionError, match="newer hpstore"):
        open_store(url)


def test_reading_an_empty_schema_creates_nothing():
    url = fresh_url()
    with pytest.raises(DatabaseError, match="holds no hpstore search"):
        open_store(url, read_only=True)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_class AS c JOIN pg_namespace AS n ON "
                            "n.oid = c.relnamespace WHERE n.nspname = current_schema()"
                            ).fetchone()[0] == 0


def test_a_search_path_naming_no_schema_is_a_clear_error():
    url = admin.with_schema(base_url(), "no_such_schema")
    with pytest.raises(DatabaseError, match="no schema of the search_path") as raised:
        open_store(url)
    # the URL as written, its parameters among them (the schema it names was dropped)
    assert "options=-csearch_path%3Dno_such_schema" in str(raised.value)


@pytest.mark.parametrize("schema", ["pg_catalog", "pg_temp"])
def test_a_search_path_that_starts_with_a_schema_of_postgresqls_own_is_refused(schema):
    # pg_temp first: the search went into the session's temporary schema (gone with the
    # connection), and was then called hand-edited; pg_catalog: "grant the privilege"
    url = f"{base_url()}{'&' if '?' in base_url() else '?'}options=-csearch_path%3D{schema}"
    with pytest.raises(DatabaseError, match="search_path") as raised:
        open_store(url)
    assert "hand" not in str(raised.value) and "Grant" not in str(raised.value)
    if schema == "pg_catalog":
        assert "a schema of PostgreSQL's own" in str(raised.value)


def test_the_nul_character_is_refused_in_names_and_nothing_is_recorded():
    url = fresh_url()
    with pytest.raises(hpstore.NameTooLongError, match="NUL"):  # (a name, as it is given)
        hpstore.RandomSearchOracle("loss", max_trials=2, hyperparameters=space(), seed=1,
                                   database=url, project_name="a\x00b")
    oracle = hpstore.RandomSearchOracle("loss", max_trials=2, hyperparameters=space(),
                                        seed=1, database=url)
    with pytest.raises(DatabaseError, match="NUL"):
        oracle.create_trial("tuner\x00")
    assert oracle.project.count() == 0
    oracle.close()


def test_a_run_that_fails_quoting_the_nul_character_ends_failed_and_the_search_goes_on(
        tmp_path):
    # a traceback quoting binary data: the message is the run's own, and refusing it left
    # the trial RUNNING and stopped the search; it is kept with the NUL as an escape
    said = 'could not parse record b"\x00\x01"'

    def run_trial(trial):
        if trial.trial_id == "0":
            raise ValueError(said)
        return 1.0

    url = fresh_url()
    oracle = hpstore.RandomSearchOracle("loss", max_trials=3, hyperparameters=space(),
                                        seed=1, database=url)
    hpstore.Tuner(oracle, run_trial=run_trial, verbose=0).search()
    statuses = {t.trial_id: t.status for t in oracle.trials.values()}
    assert statuses == {"0": "FAILED", "1": "COMPLETED", "2": "COMPLETED"}
    failed = oracle.get_trial("0").message
    assert "\x00" not in failed and said.replace("\x00", "\\x00") in failed
    oracle.close()
    # a file keeps it as it is; copied to a server, it is kept the same way
    path = str(tmp_path / "nul.db")
    on_file = hpstore.RandomSearchOracle("loss", max_trials=3, hyperparameters=space(),
                                         seed=1, database=path)
    hpstore.Tuner(on_file, run_trial=run_trial, verbose=0).search()
    assert said in on_file.get_trial("0").message
    copied = hpstore.RandomSearchOracle("loss", max_trials=3, hyperparameters=space(),
                                        seed=1, database=fresh_url())
    copied.set_state(on_file.get_state())
    assert said.replace("\x00", "\\x00") in copied.get_trial("0").message
    for opened in (on_file, copied):
        opened.close()


@pytest.mark.skipif(server() is None, reason=f"makes a role on the tests' own server ({ENV} "
                    "is set)")
def test_a_server_out_of_connections_is_said_in_words_and_nothing_is_recorded():
    # a role allowed one connection: the worker's work connection opens, its liveness
    # lock's is refused (superusers are exempt from connection limits: hence the role)
    from psycopg import sql

    url = fresh_database()
    role, database = f"limited_{secrets.token_hex(4)}", urlsplit(url).path.lstrip("/")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CONNECTION LIMIT 1").format(
            sql.Identifier(role)))
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
            sql.Identifier(database), sql.Identifier(role)))
    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 1)
    parts = urlsplit(url)
    oracle = hpstore.RandomSearchOracle("loss", hyperparameters=hp, database=urlunsplit(
        parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}")))
    with pytest.raises(hpstore.DatabaseError, match=r"too many clients.*max_connections.*"
                       r"CONNECTION LIMIT"):
        oracle.create_trial("w")
    assert oracle.project.count() == 0  # nothing recorded
    oracle.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO CURRENT_USER").format(
            sql.Identifier(database)))
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.mark.parametrize(("durability", "setting"), [("normal", "off"), ("full", "on")])
def test_durability_reaches_the_connection(durability, setting):
    store = open_store(fresh_url(), durability=durability)
    assert store.db.query("SHOW synchronous_commit") == [(setting,)]
    store.close()


def _open_at_once(url, barrier, results):
    try:
        barrier.wait()
        store = open_store(url)
        store.close()
        results.put("ok")
    except BaseException as exc:  # report everything to the parent
        results.put(f"{type(exc).__name__}: {exc}")


def test_32_processes_create_the_schema_of_an_empty_database_at_once():
    url = fresh_database()
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(32, timeout=DEADLINE), ctx.Queue()
    procs = [ctx.Process(target=_open_at_once, args=(url, barrier, results))
             for _ in range(32)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=DEADLINE) for _ in procs]
    for p in procs:
        p.join(DEADLINE)
    assert outcomes == ["ok"] * 32
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT version FROM hpstore_migrations ORDER BY version"
                            ).fetchall() == [(n,) for n in range(1, SCHEMA_VERSION + 1)]


@pytest.mark.skipif(server() is None, reason=f"makes a database on the tests' own server "
                    f"({ENV} is set)")
def test_the_algorithms_state_comes_back_in_the_order_a_file_gives_whatever_the_collation():
    # keys in byte order, as SQLite sorts them: a server whose language sorts "a" before
    # "B" gave another get_state() than a file for the same search
    from psycopg import sql

    from hpstore.store.postgresql.admin import drop_database, with_database

    name = f"icu_{secrets.token_hex(4)}"
    with psycopg.connect(base_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} LOCALE_PROVIDER icu ICU_LOCALE 'en-US' "
                             "TEMPLATE template0").format(sql.Identifier(name)))
    try:
        url = with_database(base_url(), name)
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT 'B' < 'a'").fetchone()[0] is False  # (not bytes)
        states = []
        for where in (url, None):
            oracle = hpstore.RandomSearchOracle("loss", max_trials=2, hyperparameters=space(),
                                                seed=1, database=where, project_name="p")
            state = oracle.get_state()
            oracle.set_state({**state, "oracle_state": {"a": 1, "B": 2, "_": 3, "é": 4}})
            states.append(list(oracle.get_state()["oracle_state"]))
            oracle.close()
        assert states[0] == states[1] == ["B", "_", "a", "é"]
    finally:
        drop_database(base_url(), name)


def test_metric_values_round_trip_including_infinities_and_nan():
    url = fresh_url()
    oracle = hpstore.RandomSearchOracle("loss", max_trials=1, hyperparameters=space(),
                                        seed=1, database=url)
    trial = oracle.create_trial("w")
    for step, value in enumerate([math.inf, -math.inf, math.nan, 5e-324, 1.7976931348623157e308]):
        oracle.update_trial(trial.trial_id, {"loss": value}, step=step)
    got = [o.value for o in oracle.project.observations(oracle.project.trial(trial.trial_id))]
    assert got[:2] == [math.inf, -math.inf] and math.isnan(got[2])
    assert got[3:] == [5e-324, 1.7976931348623157e308]
    oracle.close()


def test_the_test_extras_server_runs_where_postgresql_is_not_installed():
    """A fresh machine without PostgreSQL runs the tests on pgserver's build (brought by
    the test extra), as root too: here it is started even though the machine has one."""
    pytest.importorskip("pgserver", reason="pgserver has no wheel for this Python")
    with Server(FAST, only_package=True) as own:
        store = open_store(own.url())
        assert store.db.server_version >= 120000
        store.create_project(__import__("_stores").new_project("p"))
        assert [p.name for p in store.projects()] == ["p"]
        store.close()


def test_a_schema_of_version_1_is_refused_by_a_reader_and_upgraded_by_a_worker(capsys):
    """A store an hpstore of schema version 1 wrote: a reader changes nothing and says how
    to upgrade; a worker upgrades it (steering columns, the view, values no longer unique)
    and keeps every trial."""
    from hpstore.cli import main as cli
    from hpstore.oracle import values_key

    url = fresh_url()
    number, first = migrations()[0]
    assert number == 1
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.transaction():
            conn.execute(first.read_text(encoding="utf-8"))
            conn.execute("INSERT INTO hpstore_migrations VALUES (1, 0)")
        conn.execute(
            "INSERT INTO projects (name, oracle_class, oracle_config, objective, max_trials, "
            "seed, created_at, updated_at) VALUES ('p', 'RandomSearchOracle', "
            "'{\"search\": {}, \"options\": {}}', '{\"name\": \"loss\", \"direction\": "
            "\"min\"}', 5, 1, 0, 0)")
        conn.execute(
            "INSERT INTO hyperparameters VALUES (1, 0, 'x', 'Float', '{\"name\": \"x\", "
            "\"default\": -10.0, \"conditions\": [], \"min_value\": -10.0, \"max_value\": "
            "10.0, \"step\": null, \"sampling\": \"linear\"}')")
        conn.execute(
            "INSERT INTO trials (project_id, number, trial_id, status, hp_values, values_key, "
            "score, run_count, created_at) VALUES (1, 0, '0', 'COMPLETED', '{\"x\": 1.0}', "
            "%s, 0.5, 1, 0)", (values_key({"x": 1.0}),))
    with pytest.raises(DatabaseError, match="older hpstore \\(schema version 1; this one "
                                            f"reads version {SCHEMA_VERSION}\\)"):
        open_store(url, read_only=True)
    assert cli(["summary", url]) == 2
    assert "open it once with the library (any oracle given this URL), which upgrades it" in (
        capsys.readouterr().err)
    # `hpstore check` reads a schema as it is only when its tables are today's
    assert cli(["check", url]) == 2
    assert "older hpstore (schema version 1" in capsys.readouterr().err
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT max(version) FROM hpstore_migrations").fetchone() == (1,)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=5, seed=1, database=url,
                                        project_name="p")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT max(version) FROM hpstore_migrations").fetchone() == (
            SCHEMA_VERSION,)
        index = conn.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = "
                             "current_schema() AND indexname = 'observations_by_trial'"
                             ).fetchone()[0]
        assert index.endswith("(trial, run, metric, step)")
    trial = oracle.project.trial("0")
    assert (trial.status, trial.score, trial.origin, trial.note, trial.retired) == (
        "COMPLETED", 0.5, None, None, False)
    assert oracle.project.record().uncounted == 0
    oracle.retire_trial("0", "old", by="ci")
    again = oracle.enqueue_trial({"x": 1.0}, skip_if_exists=False)  # values held twice
    _, rows = oracle.store.sql("SELECT trial_id, origin, retired IS NOT NULL, note FROM "
                               "trial_overview ORDER BY number")
    assert rows == [("0", None, True, None), (again, "enqueued", False, None)]
    oracle.close()
    assert cli(["summary", url]) == 0  # a reader opens the upgraded store


def test_timeouts_a_database_sets_for_every_session_do_not_reach_hpstores_connections():
    # an idle liveness connection closed by idle_session_timeout would have its worker
    # taken for dead; the Bayesian oracle fits inside a transaction; a lock is waited for
    # up to lock_timeout, not statement_timeout
    from psycopg import sql

    url = fresh_database()
    database = urlsplit(url).path.lstrip("/")
    with psycopg.connect(url, autocommit=True) as conn:
        for name, value in (("idle_session_timeout", "1s"), ("statement_timeout", "1ms"),
                            ("idle_in_transaction_session_timeout", "1ms")):
            conn.execute(sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                sql.Identifier(database), sql.Identifier(name), sql.Literal(value)))
    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 1)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=3, hyperparameters=hp,
                                        database=url)
    for name in ("idle_session_timeout", "statement_timeout",
                 "idle_in_transaction_session_timeout"):
        assert oracle.store.db.query(sql.SQL("SHOW {}").format(sql.Identifier(name))) == [
            ("0",)], name
    while (trial := oracle.create_trial("w")).status == "RUNNING":
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        oracle.end_trial(trial)
    assert [t.status for t in oracle.trials.values()] == ["COMPLETED"] * 3
    oracle.close()


def test_a_databases_float_digits_do_not_round_what_hpstore_reads(tmp_path):
    # extra_float_digits = 0 (PostgreSQL's default before 12, still set by some poolers):
    # every score, value and time read back rounded, and `hpstore copy` stored them so
    from psycopg import sql

    from hpstore.cli import main as cli

    url = fresh_database()
    database = urlsplit(url).path.lstrip("/")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} SET extra_float_digits = 0").format(
            sql.Identifier(database)))
    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 1)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=4, hyperparameters=hp, seed=3,
                                        database=url)
    scores = {}
    while (trial := oracle.create_trial("w")).status == "RUNNING":
        loss = (trial.hyperparameters["x"] - 1 / 3) ** 2 + 1 / 7
        scores[trial.trial_id] = loss
        oracle.update_trial(trial.trial_id, {"loss": loss})
        oracle.end_trial(trial)
    oracle.close()
    again = hpstore.RandomSearchOracle("loss", max_trials=4, hyperparameters=hp, seed=3,
                                       database=url)
    assert {t.trial_id: t.score for t in again.trials.values()} == scores
    assert again.get_best_trials(1)[0].score == min(scores.values())
    again.close()
    copy = tmp_path / "copy.db"
    assert cli(["copy", url, str(copy)]) == 0
    with sqlite3.connect(copy) as conn:
        assert dict(conn.execute("SELECT trial_id, score FROM trials")) == scores


@pytest.mark.parametrize("setting", ["database SQL_ASCII", "client_encoding LATIN1"])
def test_the_servers_encodings_do_not_reach_hpstores_text(setting):
    # a SQL_ASCII database made psycopg hand back bytes (b'public', b'Float'): the search
    # could not be used; a role or database whose client encoding is LATIN1 broke every
    # tool on a name written by a UTF-8 client
    from psycopg import sql

    from hpstore.store.postgresql.admin import drop_database, with_database

    name = f"enc_{secrets.token_hex(4)}"
    with psycopg.connect(base_url(), autocommit=True) as conn:
        encoding = "SQL_ASCII" if setting.startswith("database") else "UTF8"
        conn.execute(sql.SQL("CREATE DATABASE {} ENCODING {} LC_COLLATE 'C' LC_CTYPE 'C' "
                             "TEMPLATE template0").format(sql.Identifier(name),
                                                          sql.Literal(encoding)))
        if setting.startswith("client"):
            conn.execute(sql.SQL("ALTER DATABASE {} SET client_encoding = 'LATIN1'").format(
                sql.Identifier(name)))
    url = with_database(base_url(), name)
    try:
        _use_a_unicode_search(url)
    finally:
        drop_database(base_url(), name)


def _use_a_unicode_search(url: str) -> None:
    from hpstore.cli import main as cli

    hp = hpstore.HyperParameters()
    hp.Choice("modèle", ["forêt", "☃"])
    oracle = hpstore.RandomSearchOracle("loss", max_trials=2, hyperparameters=hp,
                                        database=url, project_name="projet ☃")
    while (trial := oracle.create_trial("w")).status == "RUNNING":
        oracle.update_trial(trial.trial_id, {"loss": 1.0})
        oracle.end_trial(trial)
    oracle.close()
    again = hpstore.Oracle.attach(url, "projet ☃")
    assert sorted(t.hyperparameters.values["modèle"] for t in again.trials.values()) == [
        "forêt", "☃"]
    again.close()
    assert cli(["summary", url]) == 0


def _schema_of_version(url, version):
    """A store as an hpstore of schema ``version`` made it, with no search in it yet."""
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        for number, path in migrations():
            if number <= version:
                conn.execute(path.read_text(encoding="utf-8"))
                conn.execute("INSERT INTO hpstore_migrations VALUES (%s, 0)", (number,))


@pytest.mark.skipif(server() is None, reason=f"makes a role on the tests' own server ({ENV} "
                    "is set)")
def test_a_role_that_may_not_upgrade_the_schema_is_told_who_may(capsys):
    # a worker role granted the rows it writes ran version 3; on this hpstore it could not
    # open the search, told to "connect as the database's owner" with no word of an upgrade
    from psycopg import sql

    from hpstore.cli import main as cli

    url = fresh_url()
    _schema_of_version(url, SCHEMA_VERSION - 1)
    role = f"worker_{secrets.token_hex(4)}"
    schema_name = urlsplit(url).query.split("%3D")[-1]
    with psycopg.connect(url, autocommit=True) as conn:
        owner = conn.execute("SELECT current_user").fetchone()[0]
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        for grant in ("GRANT USAGE ON SCHEMA {s} TO {r}",
                      "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r}",
                      "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {r}",
                      "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {s} TO {r}"):
            conn.execute(sql.SQL(grant).format(s=sql.Identifier(schema_name),
                                               r=sql.Identifier(role)))
    parts = urlsplit(url)
    as_role = urlunsplit(parts._replace(netloc=f"{role}@{parts.netloc.split('@')[1]}"))
    try:
        with pytest.raises(DatabaseError) as raised:
            open_oracle_on(as_role)
        said = str(raised.value)
        assert f"older hpstore (schema version {SCHEMA_VERSION - 1})" in said, said
        assert f"only their owner ({owner!r}) may do" in said, said
        assert "Grant it" not in said, said  # granting one privilege only leads to the next
        # `hpstore check` reports the schema's version (it refused the schema)
        assert cli(["check", url]) == 0
        out = capsys.readouterr().out
        assert (f"schema version: {SCHEMA_VERSION - 1} (this hpstore: {SCHEMA_VERSION}); "
                "open it once with the library (any oracle given this URL), which upgrades "
                "it") in out, out
        # the role that may not upgrade it is told which one may (it was told to open it)
        assert cli(["check", as_role]) == 0
        out = capsys.readouterr().out
        assert f"as {owner!r}, the role that owns its tables" in out, out
        with psycopg.connect(url) as conn:  # neither changed the schema
            assert conn.execute("SELECT max(version) FROM hpstore_migrations").fetchone() == (
                SCHEMA_VERSION - 1,)
        open_oracle_on(url).close()  # its owner upgrades it, then the role works
        open_oracle_on(as_role).close()
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def open_oracle_on(url):
    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 1)
    return hpstore.RandomSearchOracle("loss", max_trials=5, seed=1, hyperparameters=hp,
                                      database=url)


def _as_role(url, role):
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{role}@{parts.netloc.split('@')[-1]}"))


@pytest.mark.skipif(server() is None, reason=f"makes a role on the tests' own server ({ENV} "
                    "is set)")
@pytest.mark.parametrize("made", ["new", "upgraded"])
def test_the_status_log_stays_in_its_schema_whichever_role_writes(made):
    # A role's own schema, chosen by the default search_path ("$user", public): the
    # status-log function was pinned to that text, so another role's session (here the
    # superuser, naming the schema in its URL) had its trials' log written into public's
    # transitions, beside another store's trials of the same ids, and none in its own
    from psycopg import sql

    url = fresh_database()  # public: a store of its own, with trials
    run(open_oracle_on(url), 3)
    role = f"owner_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE SCHEMA {r} AUTHORIZATION {r}").format(
            r=sql.Identifier(role)))
    try:
        own = _as_role(url, role)  # its search_path as the server's default gives it
        if made == "upgraded":  # written by an older hpstore, upgraded by its owner here
            _schema_of_version(own, SCHEMA_VERSION - 1)
        run(open_oracle_on(own), 2)
        with psycopg.connect(url) as conn:
            before = conn.execute("SELECT count(*) FROM public.transitions").fetchone()[0]
        other = f"{url}?options=-csearch_path%3D{role}"  # the superuser, on that schema
        oracle = open_oracle_on(other)
        run(oracle, 3)
        oracle.close()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM public.transitions").fetchone()[0] \
                == before
            unlogged = conn.execute(sql.SQL(
                "SELECT t.number FROM {s}.trials AS t WHERE NOT EXISTS (SELECT 1 FROM "
                "{s}.transitions AS l WHERE l.trial = t.id AND l.to_status = t.status)"
            ).format(s=sql.Identifier(role))).fetchall()
            assert unlogged == []
            assert conn.execute(sql.SQL("SELECT count(*) FROM {}.trials").format(
                sql.Identifier(role))).fetchone()[0] == 5
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_reader_reads_a_schema_whose_views_are_todays_as_it_is(capsys):
    # schema 5 changed only the status-log function's settings: the tools read a search of
    # version 4 (its workers of the older hpstore still writing it) without asking for
    # an upgrade, and change nothing
    from hpstore.cli import main as cli

    url = fresh_url()
    oracle = open_oracle_on(url)
    run(oracle, 2)
    oracle.close()
    with psycopg.connect(url) as conn:  # as version 4 left it (5 added no table or view)
        conn.execute("DELETE FROM hpstore_migrations WHERE version > 4")
    store = open_store(url, read_only=True)
    try:
        assert [p.name for p in store.projects()] == ["untitled_project"]
    finally:
        store.close()
    assert cli(["trials", url]) == 0
    assert "COMPLETED" in capsys.readouterr().out
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT max(version) FROM hpstore_migrations").fetchone() == (4,)


def test_a_urls_float_digits_do_not_lose_a_workers_runs():
    # a URL whose options set extra_float_digits = 0 (or a pool that drops hpstore's own
    # options over a database set so): a run's start read back rounded no longer matched
    # the one stored, so each report was written and the worker told its run was lost
    url = fresh_url() + "%20-cextra_float_digits%3D0"
    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 1)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=4, hyperparameters=hp, seed=3,
                                        database=url, max_retries_per_trial=1)
    trial = oracle.create_trial("w")
    oracle.update_trial(trial.trial_id, {"loss": 2.0})
    trial.status = "INVALID"
    oracle.end_trial(trial)
    again = oracle.create_trial("w")  # its second run, read back from the server
    assert again.trial_id == trial.trial_id
    oracle.update_trial(again.trial_id, {"loss": 1.0})
    oracle.end_trial(again)
    record = oracle.project.trial(again.trial_id)
    assert (record.status, record.run, record.score) == ("COMPLETED", 2, 1.0)
    assert [o.value for o in oracle.project.observations(record)] == [1.0]
    oracle.close()
