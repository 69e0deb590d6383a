-- hpstore schema for PostgreSQL, version 4: views that no longer trust two clocks to
-- agree (as ../0004_clock_free_views.sql).
--
-- A run's start and end are each the clock of the worker that wrote them, and workers on
-- different machines keep different clocks. trial_overview.seconds is NULL when the end
-- comes before the start; status_log and metric_history gain `seq`, the order rows were
-- written in. (OR REPLACE: the columns are added at the end, and what was granted on the
-- views is kept.)

CREATE OR REPLACE VIEW trial_overview AS
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
    CASE WHEN t.ended_at >= t.started_at THEN t.ended_at - t.started_at END AS seconds,
    t.origin                      AS origin,
    hpstore_iso(t.retired_at)     AS retired,
    t.note                        AS note
FROM trials AS t JOIN projects AS p USING (project_id);

CREATE OR REPLACE VIEW metric_history AS
SELECT
    p.name            AS project,
    t.trial_id        AS trial_id,
    o.run             AS run,
    o.metric          AS metric,
    o.direction       AS direction,
    o.step            AS step,
    o.value           AS value,
    hpstore_iso(o.at) AS at,
    o.id              AS seq
FROM observations AS o
JOIN trials AS t ON t.id = o.trial
JOIN projects AS p ON p.project_id = t.project_id;

CREATE OR REPLACE VIEW status_log AS
SELECT
    p.name            AS project,
    t.trial_id        AS trial_id,
    s.from_status     AS from_status,
    s.to_status       AS to_status,
    hpstore_iso(s.at) AS at,
    s.at              AS at_unix,
    s.tuner_id        AS tuner_id,
    s.pid             AS pid,
    s.message         AS message,
    s.id              AS seq
FROM transitions AS s
JOIN trials AS t ON t.id = s.trial
JOIN projects AS p ON p.project_id = t.project_id;
