-- hpstore schema for PostgreSQL, version 2: early stopping (as ../0002_stopping.sql).
--
-- A stopping rule compares the value a trial reports at a step with the values other
-- trials had at that step, inside the transaction that records it. Looking those up by
-- (trial, run, metric, step) makes that one index probe per trial; the index replaces the
-- one by (trial, run), so each reported value still updates one index.

DROP INDEX observations_by_trial;
CREATE INDEX observations_by_trial ON observations (trial, run, metric, step);
