-- Why: `hourly` and `daily` must know, without opening any file, which windows already have
-- a workbook, where it is, what it holds (checksum, so `recover reports` can tell a file that
-- changed on disk) and which data it covered, so that rows arriving or removed later make
-- exactly the touched workbooks stale. One row per window: a rewrite updates it in place.
-- data_mark / change_mark are the newest ingestion_log id and changed_at seen when the
-- workbook was written; a load above the mark, or a status change after it, whose event-time
-- span overlaps the window makes the workbook stale.

CREATE TABLE workbooks (
    id               INTEGER PRIMARY KEY,
    kind             TEXT    NOT NULL,             -- hourly, daily
    window_start     INTEGER NOT NULL,             -- UTC epoch seconds, inclusive
    window_end       INTEGER NOT NULL,             -- UTC epoch seconds, exclusive
    local_start      TEXT    NOT NULL,             -- wall clock with offset, 2026-10-25T02:00:00+01:00
    local_end        TEXT    NOT NULL,
    zone             TEXT    NOT NULL,             -- IANA zone of the window
    path             TEXT    NOT NULL,             -- the workbook file
    sha256           TEXT    NOT NULL,             -- of the file as written
    size             INTEGER NOT NULL,
    rows             INTEGER NOT NULL,             -- source rows inside the window, all sources
    files            INTEGER NOT NULL,             -- ingestions those rows came from
    data_mark        INTEGER NOT NULL DEFAULT 0,   -- max(ingestion_log.id) when written
    change_mark      TEXT,                         -- max(ingestion_log.changed_at) when written
    layout           TEXT    NOT NULL,             -- fingerprint of zone and [[reports]] it was laid out by
    reason           TEXT    NOT NULL,             -- why it was last written: new, stale, missing, layout, requested
    writes           INTEGER NOT NULL DEFAULT 1,   -- how often this window was written
    first_written_at TEXT    NOT NULL,             -- UTC, ISO 8601
    written_at       TEXT    NOT NULL,
    run_id           INTEGER REFERENCES run_history (id),
    UNIQUE (kind, window_start, window_end)
);
CREATE INDEX workbooks_written ON workbooks (kind, written_at);

-- The staleness check asks for status changes (superseded, purged, replayed) after a mark.
CREATE INDEX ingestion_log_changed ON ingestion_log (changed_at) WHERE changed_at IS NOT NULL;
