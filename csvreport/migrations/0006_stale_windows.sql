-- Why: a workbook on disk must agree with the database whatever its age. Every change to the
-- rows (a load, a file's earlier version replaced, keyed rows replaced, a purge, a restore from
-- the archive) records here the spans of event time it touched, in the same transaction as the
-- rows. `hourly` and `daily` read only the changes recorded since they last looked, so finding
-- stale workbooks costs what the new loads cost, never what the tables hold.

CREATE TABLE window_changes (
    id          INTEGER PRIMARY KEY,
    source      TEXT    NOT NULL,
    start_ts    INTEGER NOT NULL,   -- UTC epoch seconds, a multiple of 900 (a quarter hour: every
    end_ts      INTEGER NOT NULL,   -- zone's local hours begin on one); exclusive
    cause       TEXT    NOT NULL,   -- what changed, e.g. "ingestion 12 loaded rows"
    recorded_at TEXT    NOT NULL    -- UTC, ISO 8601
);

-- One row per written workbook (workbooks.id): which changes its content took in, and the
-- first later change that touched its window (NULL while it agrees with the database).
CREATE TABLE workbook_freshness (
    workbook_id  INTEGER PRIMARY KEY REFERENCES workbooks (id),
    seen_change  INTEGER NOT NULL DEFAULT 0,  -- max(window_changes.id) when it was written
    stale_change INTEGER,                     -- window_changes.id that made it stale
    stale_cause  TEXT,
    stale_since  TEXT,                        -- UTC, ISO 8601: when that change was recorded
    corrected    INTEGER NOT NULL DEFAULT 0   -- 1 once a change touched its window after it was first
                                              -- written: its Summary says Correction, rewritten or not
);
CREATE INDEX workbook_freshness_stale ON workbook_freshness (stale_change) WHERE stale_change IS NOT NULL;

-- How far `hourly`/`daily` have read window_changes; and the ingestion_log marks before this
-- migration, up to which the older staleness check (data_mark / change_mark) still applies.
CREATE TABLE change_cursor (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    absorbed           INTEGER NOT NULL DEFAULT 0,
    legacy_data_mark   INTEGER NOT NULL,
    legacy_change_mark TEXT
);
INSERT INTO change_cursor (id, absorbed, legacy_data_mark, legacy_change_mark)
SELECT 1, 0, coalesce(max(id), 0), (SELECT max(changed_at) FROM ingestion_log) FROM ingestion_log;
