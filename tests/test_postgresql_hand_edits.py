"""A PostgreSQL schema an administrator changed by hand under a search: a trigger, rule or
constraint added, a status-log trigger disabled, a key or constraint dropped, row-level
security turned on, a column or the schema itself dropped or renamed; and a role set to
fire no trigger (session_replication_role). Each is refused at open (or named to the worker that
meets it) by the library and the tools alike, with what to do; mended, the search goes on."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from _postgres import base_url, fresh_url
from _workers import space

import hpstore
from hpstore.errors import ForeignSchemaError
from hpstore.store import open_store


def open_oracle(url: str, max_trials: int = 3) -> hpstore.Oracle:
    return hpstore.RandomSearchOracle("loss", max_trials=max_trials, hyperparameters=space(),
                                      seed=1, database=url, project_name="p")


def edited(statement: str) -> str:
    """The URL of a new search's schema, ``statement`` run on it by hand."""
    url = fresh_url()
    open_store(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)
    return url


def refused(url: str, match: str, check_says: str, capsys: pytest.CaptureFixture) -> None:
    """A worker's oracle is refused, saying ``match``, and ``hpstore check`` fails saying
    ``check_says`` (what to do)."""
    from hpstore.cli import main as cli

    with pytest.raises(ForeignSchemaError, match=match):
        open_oracle(url)
    capsys.readouterr()
    assert cli(["check", url]) != 0
    assert check_says in capsys.readouterr().out


def one_trial(url: str, loss: float = 1.0, max_trials: int = 3) -> hpstore.Trial:
    """A trial of project p in ``url`` completed with ``loss``, as stored; its oracle
    closed."""
    oracle = open_oracle(url, max_trials)
    trial = oracle.create_trial("w")
    oracle.update_trial(trial.trial_id, {"loss": loss})
    oracle.end_trial(trial)
    stored = oracle.trials[trial.trial_id]
    oracle.close()
    assert stored.status == "COMPLETED", stored
    return stored


def test_a_trigger_hpstore_did_not_write_is_refused_by_library_and_tools():
    url = fresh_url()
    open_store(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION rig() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN NEW.score = 0; RETURN NEW; END $$")
        conn.execute("CREATE TRIGGER rig BEFORE UPDATE ON trials FOR EACH ROW EXECUTE "
                     "FUNCTION rig()")
    with pytest.raises(ForeignSchemaError, match="'rig'"):
        open_store(url)
    with pytest.raises(ForeignSchemaError, match="'rig'"):
        open_store(url, read_only=True)


def test_a_rule_hpstore_did_not_write_is_refused_by_library_and_tools(capsys):
    # a rule rewrites hpstore's statements as a trigger would: DO INSTEAD NOTHING on the
    # trials failed a worker mid-search ("cannot perform UPDATE RETURNING on relation
    # trials"), leaving its trial running, while the schema was taken for hpstore's
    url = edited("CREATE RULE frozen AS ON UPDATE TO trials DO INSTEAD NOTHING")
    with pytest.raises(ForeignSchemaError, match="rule 'frozen'"):
        open_store(url, read_only=True)
    refused(url, "rule 'frozen'", "rule 'frozen'", capsys)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP RULE frozen ON trials")
    one_trial(url, max_trials=1)  # mended: the search goes on


def test_row_level_security_hiding_rows_from_a_role_is_refused_by_library_and_tools(capsys):
    # an administrator turned row-level security on for the trials (no policy: the table's
    # owner still sees every row, any other role none): a worker's role was told to
    # "grant" a privilege it had, and `hpstore summary` as that role read 'Trials: 0'
    from psycopg import sql

    from hpstore.cli import main as cli

    url = fresh_url()
    one_trial(url)
    role = f"worker_{secrets.token_hex(4)}"
    parts = urlsplit(url)
    as_role = urlunsplit(parts._replace(netloc=f"{role}@{parts.netloc.split('@')[1]}"))
    name = parts.query.split("search_path%3D")[1]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        for grant in ("GRANT USAGE ON SCHEMA {} TO {}",
                      "GRANT ALL ON ALL TABLES IN SCHEMA {} TO {}",
                      "GRANT ALL ON ALL SEQUENCES IN SCHEMA {} TO {}"):
            conn.execute(sql.SQL(grant).format(sql.Identifier(name), sql.Identifier(role)))
        conn.execute("ALTER TABLE trials ENABLE ROW LEVEL SECURITY")
    try:
        with pytest.raises(ForeignSchemaError, match="row-level security is on for its "
                           "table 'trials'"):
            open_oracle(as_role)
        capsys.readouterr()
        assert cli(["summary", as_role]) != 0
        err = capsys.readouterr().err
        assert "row-level security" in err and "Trials: 0" not in err, err
        # the owner, whom the table's security does not restrict, reads the search whole
        assert cli(["summary", url]) == 0
        assert "Trials: 1, COMPLETED 1" in capsys.readouterr().out
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_status_log_trigger_disabled_or_dropped_by_hand_is_refused_by_library_and_tools(
        capsys):
    # ALTER TABLE trials DISABLE TRIGGER USER (a bulk load, say), never enabled again:
    # workers ran on with every status change unrecorded, and hpstore check found the
    # schema whole
    url = edited("ALTER TABLE trials DISABLE TRIGGER USER")
    refused(url, r"'trials_log_insert'.* is disabled", "ENABLE TRIGGER trials_log_insert",
            capsys)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE trials ENABLE TRIGGER USER")
        conn.execute("DROP TRIGGER trials_log_update ON trials")
    with pytest.raises(ForeignSchemaError, match=r"'trials_log_update'.* is missing"):
        open_store(url, read_only=True)


def test_a_constraint_hpstore_did_not_write_is_refused_by_library_and_tools(capsys):
    # a team's "sanity" CHECK on the scores (NOT VALID: the rows already there kept): the
    # first trial scoring beyond it failed its worker with 'PostgreSQL failed on URL: new
    # row ... violates check constraint', its trial left running
    url = edited("ALTER TABLE trials ADD CONSTRAINT sane_score CHECK (score < 100) NOT VALID")
    refused(url, "constraint 'sane_score' on trials", "DROP CONSTRAINT sane_score", capsys)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE trials DROP CONSTRAINT sane_score")
    assert one_trial(url, loss=1000.0, max_trials=1).score == 1000.0


def test_a_column_dropped_by_hand_is_named_as_a_schema_changed_not_a_server_failure(capsys):
    # a team's administrator tidied a column hpstore "never fills": every worker and tool
    # failed on "PostgreSQL failed on URL: column ... does not exist", blaming the server
    from hpstore.cli import main as cli

    url = fresh_url()
    one_trial(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE trials DROP COLUMN session")
    with pytest.raises(ForeignSchemaError, match="not as hpstore writes it") as raised:
        again = open_oracle(url)
        again.create_trial("w")
    assert '"session"' in str(raised.value) and "backup" in str(raised.value)
    capsys.readouterr()
    assert cli(["summary", url]) != 0
    err = capsys.readouterr().err
    assert "not as hpstore writes it" in err and '"session"' in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_schema_renamed_while_a_worker_runs_is_named_and_the_search_resumes():
    # ALTER SCHEMA ... RENAME by an administrator: the worker's next step read
    # 'PostgreSQL failed on URL: relation "trials" does not exist'
    from psycopg import sql

    url = fresh_url()
    name = urlsplit(url).query.split("search_path%3D")[1]
    oracle = open_oracle(url)
    trial = oracle.create_trial("w")
    oracle.update_trial(trial.trial_id, {"loss": 1.0})
    oracle.end_trial(trial)
    with psycopg.connect(base_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
            sql.Identifier(name), sql.Identifier(name + "_moved")))
    try:
        with pytest.raises(ForeignSchemaError) as raised:
            oracle.create_trial("w")
        assert f"schema {name!r}" in str(raised.value)
        assert "dropped or renamed" in str(raised.value)
    finally:
        oracle.close()
        with psycopg.connect(base_url(), autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                sql.Identifier(name + "_moved"), sql.Identifier(name)))
    resumed = open_oracle(url)
    while (trial := resumed.create_trial("w")).status == "RUNNING":
        resumed.update_trial(trial.trial_id, {"loss": 2.0})
        resumed.end_trial(trial)
    assert [t.status for t in resumed.trials.values()] == ["COMPLETED"] * 3
    resumed.close()


@pytest.mark.parametrize(("dropped", "table", "restore"), [
    ("trials_number_once", "trials", "ADD CONSTRAINT trials_number_once UNIQUE "
                                     "(project_id, number)"),
    ("oracle_state_pkey", "oracle_state", "ADD PRIMARY KEY (project_id, key)"),
    ("observations_trial_fkey", "observations", "ADD CONSTRAINT observations_trial_fkey "
                                                "FOREIGN KEY (trial) REFERENCES trials (id) "
                                                "ON DELETE CASCADE"),
])
def test_a_key_or_constraint_dropped_by_hand_is_refused_by_library_and_tools(
        dropped, table, restore, capsys):
    # an administrator dropped a unique constraint to load rows that broke it (or a key, a
    # foreign key): workers ran on, and two trials could share what a search keeps once
    url = fresh_url()
    one_trial(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {dropped}")
    refused(url, f"constraint '{dropped}' on {table} is missing", dropped, capsys)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE {table} {restore}")
    assert one_trial(url, loss=2.0).score == 2.0


def test_a_writer_whose_session_fires_no_trigger_is_refused_and_a_reader_is_not(capsys):
    # session_replication_role = replica (set for a role or a database by a replication
    # tool): the server fires no ordinary trigger, so every status change of the search
    # went unrecorded in its log
    from hpstore.cli import main as cli

    url = fresh_url()
    one_trial(url)
    replica = url + "%20-csession_replication_role%3Dreplica"
    try:
        psycopg.connect(replica).close()
    except psycopg.errors.InsufficientPrivilege:
        pytest.skip("the tests' role may not set session_replication_role on this server")
    with pytest.raises(hpstore.DatabaseError, match="session_replication_role = replica"
                       ) as raised:
        open_oracle(replica)
    assert "csession_replication_role%3Dorigin" in str(raised.value)
    assert not isinstance(raised.value, ForeignSchemaError)
    # a tool only reads: it opens the search as it is
    capsys.readouterr()
    assert cli(["summary", replica]) == 0
    assert "Trials: 1, COMPLETED 1" in capsys.readouterr().out
    with psycopg.connect(url) as conn:  # nothing was written by the refused worker
        assert conn.execute("SELECT count(*) FROM transitions").fetchone()[0] == 2
