-- hpstore schema for PostgreSQL, version 1: the tables, status-log triggers and views of
-- the SQLite schema (../0001_initial.sql) with the same names and columns, in PostgreSQL's
-- types.
--
-- Applied by hpstore in one transaction under an advisory lock, into the schema the
-- connection's search_path names first (public unless the URL says otherwise), together
-- with the row (1, now) of hpstore_migrations.
-- Times are Unix seconds (double precision); the views show them as ISO-8601 UTC text.
--
-- JSON is kept as `json` in the tables and shown as `jsonb` in the views. `json` keeps the
-- text hpstore wrote, byte for byte: jsonb would reorder the keys of every object and read
-- 1e+16 back as the integer 10000000000000000, so a float bound would come back an int on
-- resume and get_state() would no longer copy a search exactly. Both are validated JSON
-- and take the same operators (->, ->>, json_each); the views give jsonb for @>, ? and
-- indexes of your own.

-- Which numbered migrations this schema holds: marks the schema as an hpstore store.
CREATE TABLE hpstore_migrations (
    version     integer          PRIMARY KEY,
    applied_at  double precision NOT NULL
);

-- One row per search (KerasTuner's project_name); a database may hold several.
-- Ids come from a sequence and are never reused, even after a project is replaced.
CREATE TABLE projects (
    project_id     bigserial        PRIMARY KEY,
    name           text             NOT NULL UNIQUE,
    oracle_class   text             NOT NULL,
    -- the oracle's constructor arguments that define the search (JSON object)
    oracle_config  json             NOT NULL,
    objective      json             NOT NULL,
    max_trials     bigint,
    seed           bigint           NOT NULL,
    -- bumped whenever the search space grows, so processes can revalidate a cached copy
    space_version  bigint           NOT NULL DEFAULT 0,
    -- next position in the retry queue
    queue_counter  bigint           NOT NULL DEFAULT 0,
    created_at     double precision NOT NULL,
    updated_at     double precision NOT NULL
);

-- The search space, in the order hyperparameters were first registered.
CREATE TABLE hyperparameters (
    project_id  bigint  NOT NULL REFERENCES projects (project_id) ON DELETE CASCADE,
    position    integer NOT NULL,
    name        text    NOT NULL,
    class_name  text    NOT NULL,
    -- the hyperparameter's full config, conditions included (JSON object)
    config      json    NOT NULL,
    PRIMARY KEY (project_id, position)
);

-- One row per trial. A retried or interrupted trial keeps its row; run_count grows.
-- No two trials of a project share a number, an id or a set of values (values_key).
CREATE TABLE trials (
    id             bigserial        PRIMARY KEY,
    project_id     bigint           NOT NULL
                     REFERENCES projects (project_id) ON DELETE CASCADE,
    number         bigint           NOT NULL,   -- 0, 1, 2 ... in creation order
    trial_id       text             NOT NULL,   -- KerasTuner-style id, e.g. "07"
    status         text             NOT NULL CHECK (status IN
                     ('RUNNING', 'IDLE', 'INVALID', 'STOPPED', 'COMPLETED', 'FAILED')),
    hp_values      json             NOT NULL,
    values_key     text             NOT NULL,   -- digest of the values that identify it
    score          double precision,
    best_step      bigint,
    tuner_id       text,                        -- the worker holding or last holding it
    session        text,                        -- that worker's liveness token
    message        text,
    run_count      integer          NOT NULL DEFAULT 0,  -- times started
    invalid_runs   integer          NOT NULL DEFAULT 0,  -- runs that ended INVALID
    interruptions  integer          NOT NULL DEFAULT 0,  -- runs whose worker died
    queued         bigint,                      -- retry-queue position; NULL if not waiting
    pid            bigint,                      -- process of the last status change
    changed_at     double precision,            -- time of the last status change
    created_at     double precision NOT NULL,
    started_at     double precision,
    ended_at       double precision,
    CONSTRAINT trials_id_once UNIQUE (project_id, trial_id),
    CONSTRAINT trials_number_once UNIQUE (project_id, number),
    CONSTRAINT trials_values_once UNIQUE (project_id, values_key)
);
-- trials_by_status serves counts by status, the running trials and the best completed
-- trials; trials_queue the retry queue (the never-twice check uses trials_values_once).
CREATE INDEX trials_by_status ON trials (project_id, status, score, number);
CREATE INDEX trials_queue ON trials (project_id, queued) WHERE queued IS NOT NULL;

-- Every metric value reported, by run and step. NULL stands for NaN, as in SQLite.
CREATE TABLE observations (
    id         bigserial        PRIMARY KEY,
    trial      bigint           NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
    run        integer          NOT NULL,
    metric     text             NOT NULL,
    direction  text             NOT NULL CHECK (direction IN ('min', 'max')),
    step       bigint           NOT NULL,
    value      double precision,
    at         double precision NOT NULL
);
CREATE INDEX observations_by_trial ON observations (trial, run);

-- Every status change of every trial. hpstore's own transactions that change a status
-- take a per-project lock first, so within a project ids grow in commit order.
CREATE TABLE transitions (
    id           bigserial        PRIMARY KEY,
    trial        bigint           NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
    from_status  text,
    to_status    text             NOT NULL,
    at           double precision NOT NULL,
    tuner_id     text,
    pid          bigint,
    message      text
);
CREATE INDEX transitions_by_trial ON transitions (trial);

-- The status log writes itself: every insert of a trial and every change of its status
-- (or a new run of it) adds a row, whoever makes the change. The function's search_path
-- is pinned to this schema, so a session with another search_path logs here too.
CREATE FUNCTION hpstore_log_status() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO transitions (trial, from_status, to_status, at, tuner_id, pid, message)
        VALUES (NEW.id, NULL, NEW.status, coalesce(NEW.changed_at, NEW.created_at),
                NEW.tuner_id, NEW.pid, NEW.message);
    ELSE
        INSERT INTO transitions (trial, from_status, to_status, at, tuner_id, pid, message)
        VALUES (NEW.id, OLD.status, NEW.status,
                coalesce(NEW.changed_at, extract(epoch FROM clock_timestamp())::float8),
                NEW.tuner_id, NEW.pid, NEW.message);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER trials_log_insert AFTER INSERT ON trials
FOR EACH ROW EXECUTE FUNCTION hpstore_log_status();

CREATE TRIGGER trials_log_update AFTER UPDATE OF status, run_count ON trials
FOR EACH ROW
WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.run_count IS DISTINCT FROM NEW.run_count)
EXECUTE FUNCTION hpstore_log_status();

-- What a search algorithm keeps between trials (grid position, Hyperband brackets...).
CREATE TABLE oracle_state (
    project_id  bigint NOT NULL REFERENCES projects (project_id) ON DELETE CASCADE,
    key         text   NOT NULL,
    value       json   NOT NULL,
    PRIMARY KEY (project_id, key)
);

-- For the views: JSON as jsonb, or NULL for the rare value jsonb cannot hold (one with
-- the NUL character, which json keeps as the escape \u0000 and PostgreSQL's text cannot).
CREATE FUNCTION hpstore_jsonb(value json) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN strpos(value::text, '\u0000') > 0 THEN NULL ELSE value::jsonb END
$$;

-- Unix seconds as ISO-8601 UTC text with milliseconds, as the SQLite views show them.
CREATE FUNCTION hpstore_iso(seconds double precision) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(to_timestamp(seconds) AT TIME ZONE 'UTC',
                   'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- Views for people: connect with psql, pandas or a BI tool and start here.

-- One row per trial: its values (jsonb), score and timing.
CREATE VIEW trial_overview AS
SELECT
    p.name                        AS project,
    t.trial_id                    AS trial_id,
    t.number                      AS number,
    t.status                      AS status,
    t.score                       AS score,
    t.best_step                   AS best_step,
    hpstore_jsonb(t.hp_values)    AS hp_values,
    t.tuner_id                    AS tuner_id,
    t.run_count                   AS runs,
    t.message                     AS message,
    hpstore_iso(t.created_at)     AS created,
    hpstore_iso(t.started_at)     AS started,
    hpstore_iso(t.ended_at)       AS ended,
    t.ended_at - t.started_at     AS seconds
FROM trials AS t JOIN projects AS p USING (project_id);

-- One row per (trial, hyperparameter): easy GROUP BY over a hyperparameter's values
-- (jsonb: WHERE value = '"mlp"', or value #>> '{}' for text).
CREATE VIEW trial_values AS
SELECT
    p.name      AS project,
    t.trial_id  AS trial_id,
    t.status    AS status,
    t.score     AS score,
    v.key       AS name,
    v.value     AS value
FROM trials AS t
JOIN projects AS p USING (project_id)
CROSS JOIN LATERAL jsonb_each(hpstore_jsonb(t.hp_values)) AS v;

-- Every metric observation, with the trial it belongs to.
CREATE VIEW metric_history AS
SELECT
    p.name            AS project,
    t.trial_id        AS trial_id,
    o.run             AS run,
    o.metric          AS metric,
    o.direction       AS direction,
    o.step            AS step,
    o.value           AS value,
    hpstore_iso(o.at) AS at
FROM observations AS o
JOIN trials AS t ON t.id = o.trial
JOIN projects AS p ON p.project_id = t.project_id;

-- Every status change: which worker (tuner id, pid) moved which trial, when and why.
CREATE VIEW status_log AS
SELECT
    p.name            AS project,
    t.trial_id        AS trial_id,
    s.from_status     AS from_status,
    s.to_status       AS to_status,
    hpstore_iso(s.at) AS at,
    s.at              AS at_unix,
    s.tuner_id        AS tuner_id,
    s.pid             AS pid,
    s.message         AS message
FROM transitions AS s
JOIN trials AS t ON t.id = s.trial
JOIN projects AS p ON p.project_id = t.project_id;
