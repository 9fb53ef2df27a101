-- 016: quarantine digests with signed single-use links (docs/digest.md).
--
-- Each user chooses how often a digest of their quarantine comes
-- (digest_interval; 'daily' unless changed) and the digest job remembers
-- when it last looked (digest_last_at, unix ms; NULL: never), so that a
-- digest lists only what arrived since the previous one.
ALTER TABLE dir_user ADD COLUMN digest_interval TEXT NOT NULL DEFAULT 'daily'
    CHECK (digest_interval IN ('none', 'hourly', 'daily', 'weekly'));
ALTER TABLE dir_user ADD COLUMN digest_last_at INTEGER;

-- A link acts once: its nonce is recorded when it is used.  A row is kept
-- until the link itself expires (after that the signature check refuses it
-- anyway), then the digest job purges it.
CREATE TABLE digest_link_used (
    nonce       TEXT PRIMARY KEY,            -- hex, from the signed payload
    used_at     INTEGER NOT NULL,            -- unix ms
    expires_at  INTEGER NOT NULL             -- unix ms: the link's own expiry
) WITHOUT ROWID;
CREATE INDEX digest_link_used_expires ON digest_link_used(expires_at);

-- The administrator's template: at most one row.  No row means the
-- built-in default (daemon/digest/digest_render.c), so a database that never
-- edited it follows improvements of the default.
CREATE TABLE digest_template (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    subject  TEXT NOT NULL,
    text     TEXT NOT NULL,
    html     TEXT NOT NULL,
    updated  INTEGER NOT NULL                -- unix ms
);
