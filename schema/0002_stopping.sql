-- hpstore schema, version 2: early stopping.
--
-- A stopping rule compares the value a trial reports at a step with the values other
-- trials had at that step, inside the transaction that records it. Looking those up by
-- (trial, run, metric, step) makes that one index probe per trial; the index replaces the
-- one by (trial, run), so each reported value still updates one index.
--
-- A trial a rule stopped is marked in the status log: its change to STOPPED carries the
-- message "Stopped early at step N by RULE: ...", and its score is the best value it had
-- reached (see the README, "Early stopping").

-- Files made by hpstore's first development versions hold two indexes version 1 dropped
-- before its release (see schema.EARLY_VERSION_1): gone with this version too.
DROP INDEX IF EXISTS trials_by_tuner;
DROP INDEX IF EXISTS trials_by_end;

DROP INDEX observations_by_trial;
CREATE INDEX observations_by_trial ON observations (trial, run, metric, step);
