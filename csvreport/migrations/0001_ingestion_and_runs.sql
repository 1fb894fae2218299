-- Why: ingest must load every file exactly once and account for every row, and every run
-- must be visible afterwards. ingestion_log is the record of each file version (its
-- content hash decides "known already"); run_history is one row per command run;
-- seen_files lets a run skip an unchanged file (same path, size and mtime) without
-- reading it again.

CREATE TABLE run_history (
    id                INTEGER PRIMARY KEY,
    command           TEXT    NOT NULL,            -- ingest, hourly, daily, recover replay, ...
    arguments         TEXT    NOT NULL DEFAULT '{}', -- JSON of the options given
    pid               INTEGER,
    started_at        TEXT    NOT NULL,            -- UTC, ISO 8601
    finished_at       TEXT,
    status            TEXT    NOT NULL DEFAULT 'running', -- running, ok, warn, failed, skipped
    files_seen        INTEGER NOT NULL DEFAULT 0,
    files_loaded      INTEGER NOT NULL DEFAULT 0,
    files_skipped     INTEGER NOT NULL DEFAULT 0,
    files_quarantined INTEGER NOT NULL DEFAULT 0,
    rows_loaded       INTEGER NOT NULL DEFAULT 0,
    rows_rejected     INTEGER NOT NULL DEFAULT 0,
    rows_quarantined  INTEGER NOT NULL DEFAULT 0,
    workbooks_written INTEGER NOT NULL DEFAULT 0,
    error             TEXT
);
CREATE INDEX run_history_command ON run_history (command, id);

CREATE TABLE ingestion_log (
    id              INTEGER PRIMARY KEY,
    source          TEXT    NOT NULL,
    path            TEXT    NOT NULL,              -- where the file was found
    sha256          TEXT    NOT NULL,
    size            INTEGER NOT NULL,
    mtime_ns        INTEGER,
    status          TEXT    NOT NULL,              -- loaded, quarantined, superseded, purged, replayed
    rows_read       INTEGER,                       -- data rows in the file (NULL: file unreadable)
    rows_loaded     INTEGER NOT NULL DEFAULT 0,
    rows_rejected   INTEGER NOT NULL DEFAULT 0,
    first_row_id    INTEGER,                       -- rowid range of the rows this load inserted
    last_row_id     INTEGER,
    min_ts          INTEGER,                       -- event-time span (UTC epoch seconds) of the rows
    max_ts          INTEGER,
    reason          TEXT,                          -- why it was quarantined
    first_bad_line  INTEGER,
    quarantine_path TEXT,
    rejects_path    TEXT,
    started_at      TEXT    NOT NULL,
    finished_at     TEXT    NOT NULL,
    changed_at      TEXT,                          -- when status last changed after the load
    run_id          INTEGER REFERENCES run_history (id)
);
CREATE INDEX ingestion_log_content ON ingestion_log (source, sha256);
CREATE INDEX ingestion_log_path ON ingestion_log (source, path);
CREATE INDEX ingestion_log_status ON ingestion_log (status, source);

CREATE TABLE seen_files (
    source       TEXT    NOT NULL,
    path         TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    mtime_ns     INTEGER NOT NULL,
    sha256       TEXT    NOT NULL,
    ingestion_id INTEGER REFERENCES ingestion_log (id),
    PRIMARY KEY (source, path)
) WITHOUT ROWID;
