-- Version 4: the views no longer trust two clocks to agree.
-- A run's start and end are each the clock of the process that wrote them: another
-- worker's, maybe on another machine, or the same clock stepped back by NTP in between.
-- trial_overview.seconds is NULL when the end comes before the start (the real figure is
-- unknown; a negative one would be nonsense). status_log and metric_history gain `seq`,
-- the order rows were written in, which no clock can disturb: order by it, not by time.

DROP VIEW trial_overview;
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
    CASE WHEN t.ended_at >= t.started_at THEN t.ended_at - t.started_at END AS seconds,
    t.origin                                                 AS origin,
    strftime('%Y-%m-%dT%H:%M:%fZ', t.retired_at, 'unixepoch') AS retired,
    t.note                                                   AS note
FROM trials AS t JOIN projects AS p USING (project_id);

DROP VIEW metric_history;
CREATE VIEW metric_history AS
SELECT
    p.name       AS project,
    t.trial_id   AS trial_id,
    o.run        AS run,
    o.metric     AS metric,
    o.direction  AS direction,
    o.step       AS step,
    o.value      AS value,
    strftime('%Y-%m-%dT%H:%M:%fZ', o.at, 'unixepoch') AS at,
    o.id         AS seq
FROM observations AS o
JOIN trials AS t ON t.id = o.trial
JOIN projects AS p ON p.project_id = t.project_id;

DROP VIEW status_log;
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
    s.message       AS message,
    s.id            AS seq
FROM transitions AS s
JOIN trials AS t ON t.id = s.trial
JOIN projects AS p ON p.project_id = t.project_id;
