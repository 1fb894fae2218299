-- Why: a workbook that could not be mailed must not be forgotten. Each row is one written
-- workbook to deliver: the next hourly/daily run retries every row still 'unsent' for 24
-- hours, then marks it 'undeliverable'; `status` reads this table to show what is unsent
-- and since when. A rewrite of the same workbook supersedes an unsent row, and is sent as a
-- correction when an earlier version did reach the recipients.

CREATE TABLE email_delivery (
    id               INTEGER PRIMARY KEY,
    kind             TEXT    NOT NULL,            -- hourly, daily
    path             TEXT    NOT NULL,            -- the workbook file, attached under its own name
    window_start     INTEGER NOT NULL,            -- UTC epoch seconds, start of the workbook's window
    window_end       INTEGER NOT NULL,            -- UTC epoch seconds, end (exclusive)
    window_label     TEXT    NOT NULL,            -- as in the subject, e.g. 2026-03-29 14:00-15:00
    subject          TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    correction       INTEGER NOT NULL DEFAULT 0,  -- 1: an earlier version was sent; subject says Correction:
    status           TEXT    NOT NULL DEFAULT 'unsent', -- unsent, sent, undeliverable, superseded
    attempts         INTEGER NOT NULL DEFAULT 0,
    queued_at        TEXT    NOT NULL,            -- UTC ISO 8601: when the workbook was written
    first_failure_at TEXT,
    last_attempt_at  TEXT,
    last_error       TEXT,                        -- never holds the SMTP password
    sent_at          TEXT,
    recipients       TEXT,                        -- the addresses of the last attempt, comma separated
    sha256           TEXT,                        -- of the attachment as sent
    run_id           INTEGER REFERENCES run_history (id)
);
CREATE INDEX email_delivery_status ON email_delivery (status, queued_at);
CREATE INDEX email_delivery_path ON email_delivery (path, id);
