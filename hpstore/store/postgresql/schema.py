"""The PostgreSQL schema: numbered migrations applied under a lock, and checks before use.

The migration files live in ``schema/postgresql/`` beside SQLite's (inside the wheel:
``hpstore/_schema/postgresql/``). Each is applied in one transaction together with its row in
``hpstore_migrations``, under a transaction-level advisory lock of the schema, so any number
of workers starting at once on an empty database all succeed: the first creates the
tables, the others wait for it and find them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpstore.errors import (
    DatabaseError,
    ForeignSchemaError,
    NotAnHpstoreFileError,
    SchemaVersionError,
)
from hpstore.store.postgresql.driver import first_line, sqlstate
from hpstore.store.sqlite.schema import schema_dir

#: hpstore's own objects in a schema (tables, views, functions): a schema holding some of
#: these but not the migrations table is another application's
TABLES = ("projects", "hyperparameters", "trials", "observations", "transitions",
          "oracle_state")
VIEWS = ("trial_overview", "trial_values", "metric_history", "status_log")
FUNCTIONS = ("hpstore_log_status", "hpstore_jsonb", "hpstore_jsonb_decoded", "hpstore_iso")
TRIGGERS = ("trials_log_insert", "trials_log_update")
#: the check and foreign-key constraints hpstore's tables are made with (the names the
#: server gives them): one added by hand refuses writes hpstore makes
CONSTRAINTS = ("trials_status_check", "observations_direction_check",
               "hyperparameters_project_id_fkey", "trials_project_id_fkey",
               "observations_trial_fkey", "transitions_trial_fkey",
               "oracle_state_project_id_fkey")
#: the primary keys and unique constraints of hpstore's tables: one dropped by hand lets two
#: rows hold what a search keeps once (a trial's number or id, a project's name)
KEYS = ("projects_pkey", "projects_name_key", "hyperparameters_pkey", "trials_pkey",
        "trials_id_once", "trials_number_once", "observations_pkey", "transitions_pkey",
        "oracle_state_pkey")


def migration_dir() -> Path:
    return schema_dir() / "postgresql"


def migrations() -> list[tuple[int, Path]]:
    """The numbered migration files, in order: ``[(1, .../0001_initial.sql), ...]``.

    Raises:
        DatabaseError: the files are missing or not numbered 1..N.
    """
    found = sorted((int(p.name[:4]), p)
                   for p in migration_dir().glob("[0-9][0-9][0-9][0-9]_*.sql"))
    if [n for n, _ in found] != list(range(1, len(found) + 1)):
        raise DatabaseError("PostgreSQL migration files are not numbered 1..N: "
                            f"{[p.name for _, p in found]}")
    return found


SCHEMA_VERSION = len(migrations())
#: the first schema version whose tables are those of SCHEMA_VERSION (later migrations
#: changed views only): a reader that looks at the schema itself (``hpstore check``,
#: ``hpstore sql``) reads one from this version on as it is
SAME_TABLES_SINCE = 3
#: the first schema version whose tables and views are those of SCHEMA_VERSION (version 5
#: only pinned the status-log function's search_path): every reader reads one from this
#: version on as it is, beside the older workers still writing it
SAME_VIEWS_SINCE = 4

# One statement, so one snapshot of the catalog: which of hpstore's tables and views exist
# in the schema named (whatever the search_path); the triggers on its tables, enabled and
# not; the rules on them (hpstore writes none: a table's only rules are ones added by hand);
# those of them whose row-level security restricts the role connecting; and the check,
# foreign-key and exclusion constraints on them hpstore did not write. (A lookup such
# as to_regclass reads the newest catalog instead: beside a migration another process
# commits meanwhile, it would see the marking table without the tables.)
_TABLE_IN_SCHEMA = ("JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE n.nspname = "
                    "%s::text AND c.relname = ANY(%s)")
_TRIGGERS = ("SELECT t.tgname::text FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = "
             f"t.tgrelid {_TABLE_IN_SCHEMA} AND NOT t.tgisinternal AND t.tgenabled")
_STATE = (
    "SELECT ARRAY(SELECT c.relname::text FROM pg_class AS c "
    f"{_TABLE_IN_SCHEMA} AND c.relkind IN ('r', 'v', 'p')), "
    f"ARRAY({_TRIGGERS} IN ('O', 'A')), "  # (fired in a session: origin or always)
    f"ARRAY({_TRIGGERS} NOT IN ('O', 'A') ORDER BY t.tgname), "
    "ARRAY(SELECT r.rulename::text FROM pg_rewrite AS r JOIN pg_class AS c ON c.oid = "
    f"r.ev_class {_TABLE_IN_SCHEMA} AND c.relkind IN ('r', 'p') ORDER BY r.rulename), "
    f"ARRAY(SELECT c.relname::text FROM pg_class AS c {_TABLE_IN_SCHEMA} AND "
    "c.relrowsecurity AND row_security_active(c.oid) ORDER BY c.relname), "
    "ARRAY(SELECT k.conname || ' ' || c.relname FROM pg_constraint AS k JOIN pg_class AS c "
    f"ON c.oid = k.conrelid {_TABLE_IN_SCHEMA} AND k.contype IN ('c', 'f', 'x') AND NOT "
    "k.conname = ANY(%s) ORDER BY k.conname), "
    "ARRAY(SELECT k.conname::text FROM pg_constraint AS k JOIN pg_class AS c ON c.oid = "
    f"k.conrelid {_TABLE_IN_SCHEMA}), "
    "current_setting('session_replication_role')")
_VERSION = "SELECT coalesce(max(version), 0) FROM hpstore_migrations"


def inspect(db: Any) -> tuple[int, set[str]]:
    """(version, names of hpstore's objects found) of the store's schema; version 0 when
    hpstore has not written it.

    Raises:
        NotAnHpstoreFileError: the schema holds tables of hpstore's names that another
            application made.
        ForeignSchemaError: a trigger or rule hpstore did not write is on one of its
            tables, one of its own triggers is missing or disabled, a constraint it did not
            write checks them, one it wrote (a key, a unique, check or foreign-key
            constraint) is missing, or row-level security hides some of their rows from
            the role.
        SchemaVersionError: written by a newer hpstore.
        DatabaseError: the session fires no ordinary trigger (a writer with
            ``session_replication_role = replica``).
    """
    names = list(TABLES + VIEWS)
    objects, triggers, disabled, rules, hidden, checks, constraints, role = db.query(_STATE, (
        db.schema, [*names, "hpstore_migrations"], *(db.schema, list(TABLES)) * 5,
        list(CONSTRAINTS), db.schema, list(TABLES)))[0]
    found = set(objects)
    marked = "hpstore_migrations" in found
    found.discard("hpstore_migrations")
    if not marked and found:
        raise NotAnHpstoreFileError(
            f"The schema {db.schema!r} of {db.location} holds {', '.join(sorted(found))} "
            "but no hpstore_migrations table: another application's tables. Give hpstore "
            "a schema of its own (in the URL: ?options=-csearch_path%3Dhpstore).")
    _fires_triggers(db, role)  # (before a new schema is made, too)
    if not marked:
        return 0, found
    foreign = sorted(set(triggers + disabled) - set(TRIGGERS))
    if foreign:
        raise ForeignSchemaError(
            f"The schema {db.schema!r} of {db.location} is not as hpstore writes it: the "
            f"trigger {foreign[0]!r} was not written by hpstore. It would run on every write "
            "of a search; hpstore reads nothing from such a schema. Drop it (DROP TRIGGER).")
    off = [name for name in TRIGGERS if name not in triggers]
    if off:
        # (the status log is written by these triggers alone: disabled for a bulk load, say,
        # and never enabled again, every status change after went unrecorded, unseen)
        how = (f"is disabled; enable it (ALTER TABLE trials ENABLE TRIGGER {off[0]})"
               if off[0] in disabled else "is missing; restore it from a backup")
        raise ForeignSchemaError(
            f"The schema {db.schema!r} of {db.location} is not as hpstore writes it: the "
            f"trigger {off[0]!r}, which writes the search's status log, {how}.")
    if rules:
        # (a rule rewrites hpstore's own statements: DO INSTEAD NOTHING drops a trial's
        # end unseen, and any rule on trials fails the UPDATE ... RETURNING of every step)
        raise ForeignSchemaError(
            f"The schema {db.schema!r} of {db.location} is not as hpstore writes it: the "
            f"rule {rules[0]!r} was not written by hpstore. It would rewrite the writes of a "
            "search; hpstore reads nothing from such a schema. Drop it (DROP RULE).")
    if checks:
        # (a CHECK a team added, "scores below 100", say: the first trial beyond it failed
        # its worker with the server's words, its trial left running)
        name, table = checks[0].split(" ", 1)
        raise ForeignSchemaError(
            f"The schema {db.schema!r} of {db.location} is not as hpstore writes it: the "
            f"constraint {name!r} on {table} was not written by hpstore. It would refuse "
            "writes of a search midway; hpstore reads nothing from such a schema. Drop it "
            f"(ALTER TABLE {table} DROP CONSTRAINT {name}).")
    if hidden:
        # (rows a policy hides are trials, values and logs a search does not see: a reader
        # showed 'Trials: 0' of a search of hundreds, and a worker was refused its writes)
        raise ForeignSchemaError(
            f"The schema {db.schema!r} of {db.location} is not as hpstore writes it: "
            f"row-level security is on for its table {hidden[0]!r}, so the role connecting "
            "may see or write only some of a search's rows. Turn it off (ALTER TABLE ... "
            "DISABLE ROW LEVEL SECURITY), or connect as the table's owner or a role with "
            "BYPASSRLS; to keep teams apart, give each a schema of its own (in the URL: "
            "?options=-csearch_path%3Dteam_a).")
    version = int(db.query(_VERSION)[0][0])
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"The schema {db.schema!r} of {db.location} was written by a newer hpstore (schema "
            f"version {version}; this hpstore reads up to {SCHEMA_VERSION}). Upgrade hpstore.")
    missing = sorted(set(names) - found)
    if missing:
        raise ForeignSchemaError(
            f"The schema {db.schema!r} of {db.location} is not as hpstore writes it: the "
            f"{'view' if missing[0] in VIEWS else 'table'} {missing[0]!r} is missing. Restore "
            "it from a backup.")
    gone = [name for name in (*KEYS, *CONSTRAINTS) if name not in constraints]
    if gone:
        # (a unique constraint or key dropped by hand, to load rows that broke it, say: what
        # the search keeps once could then be written twice, unseen)
        raise ForeignSchemaError(
            f"The schema {db.schema!r} of {db.location} is not as hpstore writes it: the "
            f"constraint {gone[0]!r} on {_table_of(gone[0])} is missing. Restore the "
            "schema from a backup.")
    return version, found


def _fires_triggers(db: Any, role: str) -> None:
    """Refuse a writer whose session fires no ordinary trigger.

    Raises:
        DatabaseError: ``session_replication_role`` is ``replica`` (set for the role or the
            database, for a replication tool, say): the triggers that write the status log
            of every search would not fire, and its status changes would go unrecorded.
    """
    if role == "replica" and not getattr(db, "read_only", False):
        raise DatabaseError(
            f"The role connecting to {db.location} runs with session_replication_role = "
            "replica, under which the server fires none of the triggers that write a "
            "search's status log. Connect with the default, origin: add "
            "options=-csession_replication_role%3Dorigin to the URL's parameters, or "
            "ALTER ROLE ... RESET session_replication_role.")


def _table_of(constraint: str) -> str:
    """The table of one of hpstore's constraints, named as the server names them."""
    return max((t for t in TABLES if constraint.startswith(f"{t}_")), key=len)


def migrate(db: Any) -> int:
    """Bring the store's schema to SCHEMA_VERSION; returns the version found first.

    Raises:
        NotAnHpstoreFileError, ForeignSchemaError, SchemaVersionError: see :func:`inspect`.
        DatabaseError: the role may not create tables in the schema, or a migration failed.
    """
    version, _ = inspect(db)
    if version == SCHEMA_VERSION:
        return version

    def apply(conn: Any) -> int:
        db.lock(conn, "schema")
        found, _ = inspect(db)  # another process may have migrated while this one waited
        # (read before a statement can fail: the transaction then reads nothing more)
        owner = db.query("SELECT tableowner FROM pg_tables WHERE schemaname = %s AND "
                         "tablename = 'trials'", (db.schema,)) if found else []
        for number, path in migrations():
            if number > found:
                try:
                    conn.execute(path.read_text(encoding="utf-8"))
                except db.psycopg.Error as exc:
                    if not found or sqlstate(exc) != "42501":  # (insufficient_privilege)
                        raise
                    raise _may_not_upgrade(db, found, first_line(exc),
                                           owner[0][0] if owner else None) from None
                conn.execute("INSERT INTO hpstore_migrations (version, applied_at) "
                             "VALUES (%s, %s)", (number, db.now()))
        return found

    return db.transaction(apply)


def _may_not_upgrade(db: Any, version: int, why: str, owner: str | None) -> DatabaseError:
    """The refusal of an upgrade by a role that may not change hpstore's tables and views:
    a worker's role granted the rows it writes, and nothing more, ran version ``version``.
    (The server's words alone, not the driver's advice to grant the privilege: granting
    one only leads to the next, up to the ownership of the views.)"""
    return DatabaseError(
        f"The schema {db.schema!r} of {db.location} holds a search of an older hpstore "
        f"(schema version {version}) that this one upgrades to version {SCHEMA_VERSION} as "
        f"it opens it, and the role connecting may not ({why}). The upgrade changes "
        "hpstore's tables and views, which only their owner"
        + (f" ({owner!r})" if owner else "") + " may do. Open the search once as that role "
        "(any oracle given this URL with its user), then start the workers again.")


def upgrade_advice(db: Any) -> str:
    """Who upgrades an older schema: any worker (the library opening it) whose role owns
    hpstore's tables, which the role connecting may not if it does not (nor a superuser)."""
    rows = db.query("SELECT t.tableowner, current_user, (SELECT rolsuper FROM pg_roles WHERE "
                    "rolname = current_user) FROM pg_tables AS t WHERE t.schemaname = %s AND "
                    "t.tablename = 'trials'", (db.schema,))
    if rows and rows[0][0] != rows[0][1] and not rows[0][2]:
        return (f"open it once with the library (any oracle given this URL) as {rows[0][0]!r}, "
                f"the role that owns its tables, which upgrades it ({rows[0][1]!r} may not)")
    return "open it once with the library (any oracle given this URL), which upgrades it"


__all__ = ["SCHEMA_VERSION", "inspect", "migrate", "migration_dir", "migrations",
           "upgrade_advice"]
