"""Settings a DBA gives a role or a database (ALTER DATABASE ... SET) that a fresh initdb
does not have, and what hpstore's users see through them."""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import urlsplit

import psycopg
from _postgres import fresh_database
from psycopg import sql

import hpstore
from hpstore.cli import main as cli


def _set(url: str, **settings: str) -> None:
    database = urlsplit(url).path.lstrip("/")
    with psycopg.connect(url, autocommit=True) as conn:
        for name, value in settings.items():
            conn.execute(sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                sql.Identifier(database), sql.Identifier(name), sql.Literal(value)))


def _search(url: str, trials: int = 2, **space: list) -> hpstore.Oracle:
    hp = hpstore.HyperParameters()
    hp.Float("x", 0, 1)
    for name, values in space.items():
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
