-- Why: `csvreport sync` pulls files from SharePoint document libraries and must survive
-- being killed at any point without downloading a file twice into a drop folder or marking
-- one processed that did not arrive whole. Each remote item is remembered by its id and the
-- eTag of the version taken; `state` records each step before the next begins:
--   placing     the verified file sits under its hidden temporary name; local_path is where
--               it goes. The next run finishes the rename (or sees it was done).
--   downloaded  the file is in the drop folder, complete and verified (size and quickXorHash)
--   marked      the item was moved to the processed folder in SharePoint
--   gone        the item vanished from SharePoint before it could be marked
-- sharepoint_remotes keeps, per [[sharepoint]] name, the last attempt and the last success,
-- which `status` shows and `status --check` judges against max_sync_age_hours.
-- run_history gains files_marked; a sync run counts files_seen (items matching the pattern),
-- files_loaded (downloaded) and files_skipped (already downloaded) in the existing columns.

CREATE TABLE sharepoint_items (
    id             INTEGER PRIMARY KEY,
    remote         TEXT    NOT NULL,            -- the [[sharepoint]] name
    item_id        TEXT    NOT NULL,            -- the driveItem id (stable across moves and renames)
    drive_id       TEXT    NOT NULL,
    etag           TEXT    NOT NULL,            -- of the version downloaded
    name           TEXT    NOT NULL,            -- the name in SharePoint when downloaded
    size           INTEGER NOT NULL,
    quick_xor_hash TEXT,                        -- base64, as SharePoint reports it and as verified
    state          TEXT    NOT NULL,            -- placing, downloaded, marked, gone
    local_path     TEXT    NOT NULL,            -- the file in download_to
    temp_path      TEXT,                        -- the hidden temporary file while placing
    downloaded_at  TEXT,                        -- UTC ISO 8601
    marked_at      TEXT,
    processed_name TEXT,                        -- the name in processed_folder (renamed on a clash)
    last_error     TEXT,
    run_id         INTEGER REFERENCES run_history (id),
    UNIQUE (remote, item_id)
);
CREATE INDEX sharepoint_items_state ON sharepoint_items (remote, state);
CREATE INDEX sharepoint_items_local ON sharepoint_items (local_path);

CREATE TABLE sharepoint_remotes (
    name              TEXT PRIMARY KEY,
    last_attempt_at   TEXT,
    last_status       TEXT,                     -- ok, warn, failed
    last_error        TEXT,
    last_success_at   TEXT,                     -- the last sync that listed the folder and finished its files
    files_seen        INTEGER NOT NULL DEFAULT 0,  -- of the last attempt
    files_downloaded  INTEGER NOT NULL DEFAULT 0,
    files_marked      INTEGER NOT NULL DEFAULT 0,
    run_id            INTEGER REFERENCES run_history (id)
);

ALTER TABLE run_history ADD COLUMN files_marked INTEGER NOT NULL DEFAULT 0;
