-- Why: `recover purge` deletes rows, and run_history must say how many, like it says how
-- many a run loaded; the counters run_history already has only ever go up. Every other run
-- leaves it at 0.

ALTER TABLE run_history ADD COLUMN rows_deleted INTEGER NOT NULL DEFAULT 0;
