-- hpstore schema for PostgreSQL, version 3: steering a search (as ../0003_steering.sql).
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
--
-- A set of values may now be held twice, when a person enqueues values run before on
-- purpose (enqueue_trial(..., skip_if_exists=False)), as in a search file: the values
-- digest is indexed, no longer unique. Decisions still never repeat values: they are
-- checked under the project's decision lock.

ALTER TABLE projects ADD COLUMN uncounted bigint NOT NULL DEFAULT 0;
ALTER TABLE trials ADD COLUMN origin text, ADD COLUMN note text,
    ADD COLUMN retired_at double precision;
ALTER TABLE trials DROP CONSTRAINT trials_values_once;
CREATE INDEX trials_by_values ON trials (project_id, values_key);

-- One row per trial: its values (jsonb), score and timing, where it came from, whether it
-- was retired and the note attached to it. (OR REPLACE: the columns are added at the end,
-- and what was granted on the view is kept.)
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
    t.ended_at - t.started_at     AS seconds,
    t.origin                      AS origin,
    hpstore_iso(t.retired_at)     AS retired,
    t.note                        AS note
FROM trials AS t JOIN projects AS p USING (project_id);
