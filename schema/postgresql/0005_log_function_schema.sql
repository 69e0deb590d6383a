-- hpstore schema for PostgreSQL, version 5: the status-log function pinned to its own
-- schema by name.
--
-- Version 1 pinned hpstore_log_status's search_path "FROM CURRENT": the search_path text of
-- the session that created it, which is '"$user", public' when the schema was chosen by a
-- role's own name. "$user" is read again as each session's role runs the trigger, so a
-- worker connecting as another role (a superuser, a role granted the rows it writes) had
-- the status log of its trials written into the transitions table of public (or of a
-- schema named after it): another store's log, under another store's trial ids, or a
-- "permission denied for table transitions" that stopped the search. Pinned to the
-- schema's name (quoted by the server), the trigger logs into this schema whoever runs it.

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION %I.hpstore_log_status() SET search_path = %I',
                   current_schema(), current_schema());
END
$$;
