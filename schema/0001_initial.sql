-- hpstore schema, version 1.
--
-- Applied by hpstore inside one transaction together with `PRAGMA user_version = 1`.
-- Times are Unix seconds (REAL); the views show them as ISO-8601 UTC text.
-- Hyperparameter values and configs are JSON text: SQLite's json_extract and
-- json_each read them.

-- Marks the file as an hpstore search ("HPST"), so another application's SQLite file
-- is never mistaken for one.
PRAGMA application_id = 1213223764;

-- One row per search (KerasTuner's project_name); a file may hold several.
CREATE TABLE projects (
    project_id     INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL UNIQUE,
    oracle_class   TEXT    NOT NULL,
    -- the oracle's constructor arguments that define the search (JSON object)
    oracle_config  TEXT    NOT NULL CHECK (json_valid(oracle_config)),
    objective      TEXT    NOT NULL CHECK (json_valid(objective)),
    max_trials     INTEGER,
    seed           INTEGER NOT NULL,
    -- bumped whenever the search space grows, so processes can revalidate a cached copy
    space_version  INTEGER NOT NULL DEFAULT 0,
    -- next position in the retry queue
    queue_counter  INTEGER NOT NULL DEFAULT 0,
    created_at     REAL    NOT NULL,
    updated_at     REAL    NOT NULL
);

-- The search space, in the order hyperparameters were first registered.
CREATE TABLE hyperparameters (
    project_id  INTEGER NOT NULL REFERENCES projects (project_id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    class_name  TEXT    NOT NULL,
    -- the hyperparameter's full config, conditions included (JSON object)
    config      TEXT    NOT NULL CHECK (json_valid(config)),
    PRIMARY KEY (project_id, position)
) WITHOUT ROWID;

-- One row per trial. A retried or interrupted trial keeps its row; run_count grows.
CREATE TABLE trials (
    id             INTEGER PRIMARY KEY,
    project_id     INTEGER NOT NULL REFERENCES projects (project_id) ON DELETE CASCADE,
    number         INTEGER NOT NULL,               -- 0, 1, 2 ... in creation order
    trial_id       TEXT    NOT NULL,               -- KerasTuner-style id, e.g. "07"
    status         TEXT    NOT NULL CHECK (status IN
                     ('RUNNING', 'IDLE', 'INVALID', 'STOPPED', 'COMPLETED', 'FAILED')),
    hp_values      TEXT    NOT NULL CHECK (json_valid(hp_values)),
    values_key     TEXT    NOT NULL,               -- digest of the values that identify it
    score          REAL,
    best_step      INTEGER,
    tuner_id       TEXT,                           -- the worker holding or last holding it
    session        TEXT,                           -- that worker's liveness token
    message        TEXT,
    run_count      INTEGER NOT NULL DEFAULT 0,     -- times started
    invalid_runs   INTEGER NOT NULL DEFAULT 0,     -- runs that ended INVALID
    interruptions  INTEGER NOT NULL DEFAULT 0,     -- runs whose worker died
    queued         INTEGER,                        -- retry-queue position; NULL if not waiting
    pid            INTEGER,                        -- process of the last status change
    changed_at     REAL,                           -- time of the last status change
    created_at     REAL    NOT NULL,
    started_at     REAL,
    ended_at       REAL,
    UNIQUE (project_id, trial_id),
    UNIQUE (project_id, number)
);
-- Only the indexes the oracle's own queries need: every index is one more page written to
-- the log on each commit. trials_by_status serves counts by status, the running trials and
-- the best completed trials; trials_by_values the never-twice check; trials_queue the retry
-- queue.
CREATE INDEX trials_by_status ON trials (project_id, status, score, number);
CREATE INDEX trials_by_values ON trials (project_id, values_key);
CREATE INDEX trials_queue ON trials (project_id, queued) WHERE queued IS NOT NULL;

-- Every metric value reported, by run and step. SQLite has no NaN: NULL stands for it.
CREATE TABLE observations (
    id         INTEGER PRIMARY KEY,
    trial      INTEGER NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
    run        INTEGER NOT NULL,
    metric     TEXT    NOT NULL,
    direction  TEXT    NOT NULL CHECK (direction IN ('min', 'max')),
    step       INTEGER NOT NULL,
    value      REAL,
    at         REAL    NOT NULL
);
CREATE INDEX observations_by_trial ON observations (trial, run);

-- Every status change of every trial.
CREATE TABLE transitions (
    id           INTEGER PRIMARY KEY,
    trial        INTEGER NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
    from_status  TEXT,
    to_status    TEXT    NOT NULL,
    at           REAL    NOT NULL,
    tuner_id     TEXT,
    pid          INTEGER,
    message      TEXT
);
CREATE INDEX transitions_by_trial ON transitions (trial);

-- The status log writes itself: every insert of a trial and every change of its status
-- (or a new run of it) adds a row, whoever makes the change.
CREATE TRIGGER trials_log_insert AFTER INSERT ON trials
BEGIN
    INSERT INTO transitions (trial, from_status, to_status, at, tuner_id, pid, message)
    VALUES (new.id, NULL, new.status, coalesce(new.changed_at, new.created_at),
            new.tuner_id, new.pid, new.message);
END;

CREATE TRIGGER trials_log_update AFTER UPDATE OF status, run_count ON trials
WHEN old.status IS NOT new.status OR old.run_count IS NOT new.run_count
BEGIN
    INSERT INTO transitions (trial, from_status, to_status, at, tuner_id, pid, message)
    VALUES (new.id, old.status, new.status,
            coalesce(new.changed_at, (julianday('now') - 2440587.5) * 86400.0),
            new.tuner_id, new.pid, new.message);
END;

-- What a search algorithm keeps between trials (grid position, Hyperband brackets...).
CREATE TABLE oracle_state (
    project_id  INTEGER NOT NULL REFERENCES projects (project_id) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    value       TEXT    NOT NULL CHECK (json_valid(value)),
    PRIMARY KEY (project_id, key)
) WITHOUT ROWID;

-- Views for people: open the file in sqlite3, Datasette or pandas and start here.

-- One row per trial: its values (JSON), score and timing.
CREATE VIEW trial_overview AS
SELECT
    p.name                                                   AS project,
    t.trial_id                                               AS trial_id,
    t.number                                                 AS number,
    t.status                                                 AS status,
    t.score                                                  AS score,
    t.best_step                                              AS best_step,
    t.hp_values                                              AS hp_values,
    t.tuner_id                                               AS tuner_id,
    t.run_count                                              AS runs,
    t.message                                                AS message,
    strftime('%Y-%m-%dT%H:%M:%fZ', t.created_at, 'unixepoch') AS created,
    strftime('%Y-%m-%dT%H:%M:%fZ', t.started_at, 'unixepoch') AS started,
    strftime('%Y-%m-%dT%H:%M:%fZ', t.ended_at, 'unixepoch')   AS ended,
    t.ended_at - t.started_at                                AS seconds
FROM trials AS t JOIN projects AS p USING (project_id);

-- One row per (trial, hyperparameter): easy GROUP BY over a hyperparameter's values.
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
JOIN json_each(t.hp_values) AS v;

-- Every metric observation, with the trial it belongs to.
CREATE VIEW metric_history AS
SELECT
    p.name       AS project,
    t.trial_id   AS trial_id,
    o.run        AS run,
    o.metric     AS metric,
    o.direction  AS direction,
    o.step       AS step,
    o.value      AS value,
    strftime('%Y-%m-%dT%H:%M:%fZ', o.at, 'unixepoch') AS at
FROM observations AS o
JOIN trials AS t ON t.id = o.trial
JOIN projects AS p ON p.project_id = t.project_id;

-- Every status change: which worker (tuner id, pid) moved which trial, when and why.
CREATE VIEW status_log AS
SELECT
    p.name          AS project,
    t.trial_id      AS trial_id,
    s.from_status   AS from_status,
    s.to_status     AS to_status,
    strftime('%Y-%m-%dT%H:%M:%fZ', s.at, 'unixepoch') AS at,
    s.at            AS at_unix,
    s.tuner_id      AS tuner_id,
    s.pid           AS pid,
    s.message       AS message
FROM transitions AS s
JOIN trials AS t ON t.id = s.trial
JOIN projects AS p ON p.project_id = t.project_id;
