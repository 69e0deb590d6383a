-- hpstore schema, version 3: steering a search.
--
-- A trial may come from elsewhere than the algorithm: enqueued by a person (it runs before
-- the algorithm's own proposals), added with a result obtained elsewhere, or copied from
-- another project to warm-start this one. `origin` says which (NULL: the algorithm
-- proposed it). A trial added with its result does not count towards max_trials unless
-- the user says so; `projects.uncounted` keeps how many such trials the project holds, so
-- deciding the next trial reads one number instead of counting rows.
--
-- A retired trial keeps every row, but leaves the results: best trials, the fitted models,
-- the tools' rankings. `retired_at` is when (NULL: not retired); the status log holds who
-- retired or restored it and why, as a row whose status does not change. `note` is free
-- text a person attached to the trial.

ALTER TABLE projects ADD COLUMN uncounted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE trials ADD COLUMN origin TEXT;
ALTER TABLE trials ADD COLUMN note TEXT;
ALTER TABLE trials ADD COLUMN retired_at REAL;

DROP VIEW trial_overview;
-- One row per trial: its values (JSON), score and timing, where it came from, whether it
-- was retired and the note attached to it.
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
    t.ended_at - t.started_at                                AS seconds,
    t.origin                                                 AS origin,
    strftime('%Y-%m-%dT%H:%M:%fZ', t.retired_at, 'unixepoch') AS retired,
    t.note                                                   AS note
FROM trials AS t JOIN projects AS p USING (project_id);
