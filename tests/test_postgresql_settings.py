"""Settings a DBA gives a role or a database (ALTER DATABASE ... SET) that a fresh initdb
does not have, and what hpstore's users see through them."""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import subprocess
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import _postgres
import psycopg
import pytest
from _postgres import ENV, base_url, fresh_database, primary_and_standby, server
from psycopg import sql

import hpstore
from hpstore.cli import main as cli
from hpstore.errors import DatabaseError, ServerUnavailableError
from hpstore.store import open_store
from hpstore.store.postgresql.admin import with_database


def _set(url: str, **settings: str) -> None:
    database = urlsplit(url).path.lstrip("/")
    with psycopg.connect(url, autocommit=True) as conn:
        for name, value in settings.items():
            conn.execute(sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                sql.Identifier(database), sql.Identifier(name), sql.Literal(value)))


def _search(url: str, trials: int = 2, **space: list) -> hpstore.Oracle:
    hp = hpstore.HyperParameters()
    if not space:
        hp.Float("x", 0, 1)
    for name, values in space.items():  # (a random search runs each value once)
        hp.Choice(name, values)
    oracle = hpstore.RandomSearchOracle("loss", max_trials=trials, hyperparameters=hp,
                                        seed=1, database=url)
    while (trial := oracle.create_trial("w")).status == "RUNNING":
        oracle.update_trial(trial.trial_id, {"loss": 0.1 + 0.2})
        oracle.end_trial(trial)
    return oracle


def test_sql_reads_times_on_a_database_whose_datestyle_is_not_iso(capsys):
    # psycopg reads dates, times and intervals in ISO DateStyle and the postgres
    # IntervalStyle only: a database set to 'SQL, DMY' made every query returning a
    # timestamp a raw NotImplementedError traceback
    url = fresh_database()
    _set(url, DateStyle="SQL, DMY", IntervalStyle="iso_8601", TimeZone="Pacific/Chatham")
    _search(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        created = dict(conn.execute("SELECT trial_id, created_at FROM trials"))
    capsys.readouterr()
    code = cli(["sql", "--format", "json", url,
                "SELECT trial_id, to_timestamp(created_at) AS at, interval '1 day 3 hours' AS "
                "i, '13/01/2026'::date AS dmy FROM trials ORDER BY trial_id"])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = json.loads(out)
    # the same instant, shown in the database's time zone; the DMY order still reads the
    # query's own date
    shown = {r["trial_id"]: datetime.fromisoformat(r["at"]).timestamp() for r in rows}
    assert shown.keys() == created.keys()
    assert all(abs(shown[t] - created[t]) < 1e-6 for t in created)  # (timestamps hold µs)
    assert {datetime.fromisoformat(r["at"]).utcoffset().total_seconds() for r in rows} in (
        {13.75 * 3600}, {12.75 * 3600})  # Chatham's daylight time, or its standard time
    assert {r["dmy"] for r in rows} == {"2026-01-13"}
    assert {r["i"] for r in rows} == {"1 day, 3:00:00"}


def _database_encoded(encoding: str) -> str:
    """A new database of ``encoding`` on the tests' server (dropped when the tests end)."""
    name = f"enc_{secrets.token_hex(4)}"
    with psycopg.connect(base_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} ENCODING {} LC_COLLATE 'C' LC_CTYPE 'C' "
                             "TEMPLATE template0").format(sql.Identifier(name),
                                                          sql.Literal(encoding)))
    _postgres._made.append(("database", base_url(), name))
    return with_database(base_url(), name)


def _views(url: str) -> tuple[dict[str, Any], dict[tuple[str, str], Any]]:
    """trial_overview's values and trial_values' rows, as hpstore sql reads them."""
    store = open_store(url, read_only=True)
    try:
        _, overview = store.sql("SELECT trial_id, hp_values FROM trial_overview")
        _, each = store.sql("SELECT trial_id, name, value FROM trial_values")
    finally:
        store.close()
    return ({t: json.loads(v) for t, v in overview},
            {(t, n): json.loads(v) for t, n, v in each})


@pytest.mark.parametrize("encoding, values", [
    # (plain text between two escapes shaped like one, "xu00e9" or twelve characters, was
    # read as an escape: "ééé", or the view failed for every row)
    ("SQL_ASCII", ["é", "日本", "🎉", "a\\u00e9 \"q\" \\", "éxu00e9é", "éxuzzzzé",
                   "éabcdefghijklé"]),
    ("LATIN1", ["é", "ÿ ß", "a\\u00e9 \"q\" \\", "éxu00e9é", "éxuzzzzé", "éabcdefghijklé"]),
])
def test_the_views_give_the_values_in_a_database_not_encoded_in_utf8(encoding, values):
    # hpstore's JSON escapes every character past ASCII, and only a UTF8 database casts
    # such an escape to jsonb: in SQL_ASCII (any such value) and LATIN1 (one LATIN1 has
    # not) trial_overview and trial_values failed as a whole, on every row
    url = _database_encoded(encoding)
    oracle = _search(url, trials=len(values), **{"modèle": values})
    expected = {t.trial_id: t.hyperparameters.values for t in oracle.trials.values()}
    oracle.close()
    assert sorted(v["modèle"] for v in expected.values()) == sorted(values)
    overview, each = _views(url)
    assert overview == expected
    assert each == {(t, n): v for t, vs in expected.items() for n, v in vs.items()}


def test_a_value_a_latin1_database_cannot_hold_in_a_view_is_said_so(capsys):
    url = _database_encoded("LATIN1")
    _search(url, trials=2, **{"modèle": ["é", "日本"]}).close()
    capsys.readouterr()
    code = cli(["sql", url, "SELECT hp_values FROM trial_overview"])
    out, err = capsys.readouterr()
    assert code != 0 and out == ""
    assert "U+65E5" in err and "LATIN1" in err and "UTF8" in err, err
    assert "Traceback" not in err


def test_a_name_a_latin1_database_cannot_store_is_said_so_and_nothing_is_written(caplog):
    # the server's words alone ("character with byte sequence 0xe6 0x97 0xa5 in encoding
    # UTF8 has no equivalent in encoding LATIN1"), and a raw psycopg line ("error ignored
    # terminating <psycopg.Pipeline ...>") logged beside it by the space's executemany
    url = _database_encoded("LATIN1")
    hp = hpstore.HyperParameters()
    hp.Float("日本", 0, 1)  # (refused ahead of the rows after it)
    hp.Float("é", 0, 1)
    for n in range(300):  # (enough rows that psycopg read the refusal while sending)
        hp.Float(f"x{n}", 0, 1)
    with caplog.at_level(logging.WARNING), pytest.raises(DatabaseError) as refused:
        hpstore.RandomSearchOracle("loss", max_trials=2, hyperparameters=hp, database=url)
    assert "UTF8" in str(refused.value) and "LATIN1" in str(refused.value)
    assert "Nothing" in str(refused.value)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")] == []
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM projects").fetchone() == (0,)


@pytest.mark.parametrize("encoding", ["UTF8", "SQL_ASCII"])
def test_a_database_whose_standard_conforming_strings_is_off_holds_a_search(encoding):
    # set off for an old application, it made the schema's '\u0000' a Unicode escape: no
    # worker could create the tables ("invalid Unicode escape value"), and a session of
    # the database's own settings (psql, a BI tool) could not read the views
    url = _database_encoded(encoding)
    _set(url, standard_conforming_strings="off")
    oracle = _search(url, trials=3, **{"modèle": ["é", "🎉", "a\\u00e9 \\"]})
    expected = {t.trial_id: t.hyperparameters.values for t in oracle.trials.values()}
    oracle.close()
    assert _views(url)[0] == expected
    with psycopg.connect(url, client_encoding="UTF8") as conn:
        assert conn.execute("SHOW standard_conforming_strings").fetchone() == ("off",)
        read = conn.execute("SELECT trial_id, hp_values::text FROM trial_overview").fetchall()
    assert {t: json.loads(v) for t, v in read} == expected


@pytest.mark.skipif(server() is None, reason=f"makes a role on the tests' own server ({ENV} "
                    "is set)")
def test_a_worker_stays_in_its_schema_when_its_search_path_names_another_since():
    # The role's search_path is "$user", st; the store is in st until a DBA creates the
    # schema named after the role (CREATE SCHEMA AUTHORIZATION), where a new worker then
    # starts a search of its own. The server resolves names anew as schemas appear: a
    # worker of st, on its connection or one made again after a drop, reached the other
    # store's tables; its report was refused there and it was told its trial was lost to
    # a crash or failover, the trial left RUNNING in st
    url = fresh_database()
    role = f"r_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(sql.SQL("ALTER ROLE {} SET search_path = \"$user\", st").format(
            sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE SCHEMA st AUTHORIZATION {}").format(sql.Identifier(role)))
    parts = urlsplit(url)
    as_role = urlunsplit(parts._replace(netloc=f"{role}@{parts.netloc.split('@')[-1]}"))
    try:
        first = _oracle(as_role)
        trial = first.create_trial("a")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA AUTHORIZATION {}").format(
                sql.Identifier(role)))
        other = _oracle(as_role)  # in the role's own schema now: another store
        assert other.store.db.schema == role
        assert other.create_trial("b").hyperparameters.values == (
            trial.hyperparameters.values)  # (the same seed: the same first values)
        first.update_trial(trial.trial_id, {"loss": 0.5})  # on the connection it had
        first.end_trial(trial)
        _postgres.terminate([first.store.db.connect().info.backend_pid])
        assert first.create_trial("a").status == "RUNNING"  # on one made again
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT trial_id, status, tuner_id FROM st.trials ORDER BY "
                                "number").fetchall() == [
                (trial.trial_id, "COMPLETED", "a"), ("1", "RUNNING", "a")]
            assert conn.execute(sql.SQL("SELECT trial_id, status, tuner_id FROM {}.trials"
                                        ).format(sql.Identifier(role))).fetchall() == [
                ("0", "RUNNING", "b")]
        first.close()
        other.close()
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _oracle(url: str) -> hpstore.Oracle:
    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 1)
    return hpstore.RandomSearchOracle("loss", max_trials=5, seed=1, hyperparameters=hp,
                                      database=url)


@pytest.mark.skipif(server() is None, reason=f"starts servers of its own ({ENV} is set)")
def test_a_server_that_takes_no_connection_for_now_is_waited_for_whatever_it_says(
        monkeypatch):
    # A refusal as a connection opens carries only its text, in the language of the
    # server's lc_messages: a German server starting up says "das Datenbanksystem
    # startet", and a worker or tool started then stopped at once (DatabaseError) where
    # an English one is waited for. The SQLSTATE (57P03) is asked of libpq's ping. Here a
    # standby with hot_standby off, which says so in words hpstore does not look for.
    from hpstore.store.postgresql import driver

    with primary_and_standby(hot_standby="off") as (_, standby):
        with pytest.raises(psycopg.OperationalError) as plain:
            psycopg.connect(standby.url()).close()
        assert "57P03" not in str(plain.value)  # (the text alone, as said above)
        monkeypatch.setattr(driver, "RESTART_WAIT", 0.3)
        with pytest.raises(ServerUnavailableError) as waited:
            open_store(standby.url(), read_only=True)
        assert "takes no connection for now" in str(waited.value)


@pytest.mark.skipif(server() is None, reason=f"starts servers of its own ({ENV} is set)")
@pytest.mark.skipif(not shutil.which("localedef")
                    or not os.path.exists("/usr/share/i18n/locales/ru_RU"),
                    reason="needs localedef and the ru_RU locale's source")
def test_a_server_refusing_for_now_in_a_language_without_the_word_fatal_is_waited_for(
        monkeypatch):
    # Russian, Italian, Swedish, Ukrainian, Korean, Chinese, Georgian servers write even
    # the severity in their language ("ВАЖНО:  система БД не принимает подключения"), so
    # the ping was never asked and a worker started then stopped at once
    from hpstore.store.postgresql import driver

    def russian(standby):
        locales = standby.folder / "locales"  # (where the server's user reads it)
        locales.mkdir()
        made = subprocess.run(["localedef", "-i", "ru_RU", "-f", "UTF-8",
                               str(locales / "ru_RU.UTF-8")], capture_output=True,
                              check=False)
        if not (locales / "ru_RU.UTF-8").is_dir():
            pytest.skip(f"localedef could not make ru_RU.UTF-8: {made.stderr!r}")
        monkeypatch.setenv("LOCPATH", str(locales))  # (the standby is started with it)

    with primary_and_standby(russian, hot_standby="off",
                             lc_messages="'ru_RU.UTF-8'") as (_, standby):
        with pytest.raises(psycopg.OperationalError) as plain:
            psycopg.connect(standby.url()).close()
        if "FATAL:" in str(plain.value):
            pytest.skip("this PostgreSQL has no Russian messages")
        monkeypatch.setattr(driver, "RESTART_WAIT", 0.3)
        with pytest.raises(ServerUnavailableError) as waited:
            open_store(standby.url(), read_only=True)
        assert "takes no connection for now" in str(waited.value), str(waited.value)


# -- connection poolers: hpstore needs a session of its own (checked against PgBouncer 1.18)

def test_a_pooler_that_drops_the_session_settings_is_named_and_refused(monkeypatch):
    # PgBouncer with ignore_startup_parameters=options (the usual answer to its refusal)
    # dropped every setting: a role's idle_session_timeout then closed live workers'
    # liveness connections and their trials ran twice
    from hpstore.store.postgresql import database

    monkeypatch.setattr(database, "SESSION_SETTINGS", tuple(
        s for s in database.SESSION_SETTINGS if "hpstore.session" not in s))
    with pytest.raises(DatabaseError, match=r"did not reach the server.*not through PgBouncer"):
        open_store(_postgres.fresh_url())


def test_a_pooler_refusing_the_options_is_named():
    # stock PgBouncer: "FATAL:  unsupported startup parameter: options", with nothing said
    from hpstore.store.postgresql.driver import explain_connect

    said = explain_connect(psycopg.OperationalError(
        'connection failed: FATAL:  unsupported startup parameter: options'), "URL")
    assert type(said) is DatabaseError and "connection pooler" in str(said)
    assert "Connect the workers to the server itself" in str(said)


@pytest.mark.parametrize("params", ["connect_timeout=soon",
                                    "sslmode=bogus"])
def test_a_url_whose_settings_cannot_work_is_no_server_out_of_reach(params):
    # a ServerUnavailableError ("may succeed later"): hpstore watch waited on it for ever
    url = base_url()
    url += ("&" if "?" in url else "?") + params
    with pytest.raises(DatabaseError) as said:
        open_store(url)
    assert not isinstance(said.value, ServerUnavailableError), said.value
    assert "Correct the URL" in str(said.value) or "sslmode" in str(said.value)


def test_a_liveness_lock_sharing_a_server_session_with_the_work_is_refused():
    # a pool in transaction mode hands the lock's statement and the work's to one server
    # session: the lock then no longer tells a live worker from a dead one (live workers'
    # trials were run twice); here the lock is made to look taken by the work's session
    url = _postgres.fresh_url()
    store = open_store(url)
    store.session()
    mine = store._liveness
    work = store.db.query("SELECT pg_backend_pid()")[0][0]
    mine.check_own_session(store.db.query)  # its own session: fine
    held, mine.backend = mine.backend, work
    try:
        with pytest.raises(DatabaseError, match="connection pooler stands between"):
            mine.check_own_session(store.db.query)
    finally:
        mine.backend = held
        store.close()


def test_a_copy_into_a_database_that_cannot_hold_its_names_says_so(tmp_path, capsys):
    # "The state given to set_state() is malformed (UntranslatableCharacter ...)": the
    # source was blamed for what the target's encoding cannot hold
    url = _database_encoded("LATIN1")
    hp = hpstore.HyperParameters()
    hp.Choice("act_日本", ["relu", "tanh"])
    oracle = hpstore.RandomSearchOracle("loss", max_trials=2, hyperparameters=hp,
                                        database=str(tmp_path / "s.db"))
    oracle.close()
    code = cli(["copy", str(tmp_path / "s.db"), url])
    _, err = capsys.readouterr()
    assert code != 0
    assert "LATIN1" in err and "UTF8" in err and "malformed" not in err, err
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM projects").fetchone() == (0,)
