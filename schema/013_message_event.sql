-- 013: what happens to a message after it is accepted, for its timeline
-- (docs/timeline.md): every delivery attempt with the remote reply,
-- quarantine, release, delete, expiry, digest link use — one row each,
-- with who did it.  The SMTP conversation itself is in message_log.
CREATE TABLE IF NOT EXISTS message_event (
    id      INTEGER PRIMARY KEY,
    ts      INTEGER NOT NULL,               -- unix ms
    qid     TEXT NOT NULL,
    rcpt    TEXT,                           -- NULL: the whole message
    event   TEXT NOT NULL,                  -- "delivery.attempt", "quarantine.release", ...
    detail  TEXT NOT NULL DEFAULT '{}',     -- JSON object
    actor   TEXT                            -- "admin:alice", "user:bob", "link", "system"
);
CREATE INDEX IF NOT EXISTS message_event_qid ON message_event(qid, ts);
CREATE INDEX IF NOT EXISTS message_event_ts ON message_event(ts);
