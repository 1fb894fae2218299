-- Why: archiving moves rows out of the database into Parquet files, so the database must
-- know exactly which rows live where. One row per archived part (a month of a source may
-- be archived in several parts when late rows arrive after it was archived). `state` follows
-- each step, so a crash at any step is finished or undone by the next archive command:
--   writing   the file is being written (temporary name) or renamed: undo (rows still here)
--   written   the file is in place: verify it against the rows and finish, or undo
--   archived  verified on disk and the rows deleted, in the same transaction as this state
--   restoring the file is hidden under a temporary name while its rows are loaded back
--   restored  the rows are back in the table (same transaction); the file is then removed
--   undone    a part a crash or a failed check left unfinished: its file removed, its rows never left

CREATE TABLE archive_parts (
    id           INTEGER PRIMARY KEY,
    source       TEXT    NOT NULL,
    month        TEXT    NOT NULL,            -- YYYY-MM in the configured zone
    start_ts     INTEGER NOT NULL,            -- UTC epoch seconds: local month start
    end_ts       INTEGER NOT NULL,            -- UTC epoch seconds: next month start (exclusive)
    path         TEXT    NOT NULL,            -- archive/<source>/year=YYYY/month=MM/part-<id>.parquet
    state        TEXT    NOT NULL,            -- writing, written, archived, restoring, restored, undone
    rows         INTEGER,
    first_row_id INTEGER,                     -- min and max _id of the archived rows
    last_row_id  INTEGER,
    checks       TEXT,                        -- JSON: row count and per-column counts and sums, verified
    sha256       TEXT,                        -- of the Parquet file as verified
    bytes        INTEGER,
    created_at   TEXT    NOT NULL,
    archived_at  TEXT,
    restored_at  TEXT,
    run_id       INTEGER REFERENCES run_history (id)
);
CREATE INDEX archive_parts_window ON archive_parts (state, start_ts, end_ts);
CREATE INDEX archive_parts_month ON archive_parts (source, month, state);
