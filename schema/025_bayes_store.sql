-- 025: a smaller token store for the statistical filter (docs/score.md,
-- "Store and its bounds").
--
-- The global model's tokens move to a table without the uid column, users'
-- own models to a table of their own; last_seen (a day number, two octets)
-- becomes seen, the 30-day period since 2026-01-01 the token was last
-- learned in (one octet for years).  Counts 0 and 1, most of the store, are
-- stored by SQLite in the record header alone.  What was learned is kept:
-- the rows are copied in key order (which also packs the new b-trees full)
-- and the old table dropped.
--
-- Re-runnable: over a database set back to an older user_version, 020
-- makes an empty bayes_token again, which is copied (nothing) and dropped.

CREATE TABLE IF NOT EXISTS bayes_global_token (
    hash       INTEGER PRIMARY KEY,       -- SipHash-2-4 under bayes_meta's key
    spam       INTEGER NOT NULL DEFAULT 0,
    ham        INTEGER NOT NULL DEFAULT 0,
    seen       INTEGER NOT NULL           -- (unix day - 20454) / 30
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS bayes_user_token (
    uid        INTEGER NOT NULL,          -- dir_user.id
    hash       INTEGER NOT NULL,
    spam       INTEGER NOT NULL DEFAULT 0,
    ham        INTEGER NOT NULL DEFAULT 0,
    seen       INTEGER NOT NULL,
    PRIMARY KEY (uid, hash)
) WITHOUT ROWID;

INSERT OR IGNORE INTO bayes_global_token (hash, spam, ham, seen)
    SELECT hash, spam, ham,
           CASE WHEN last_seen >= 20454 THEN (last_seen - 20454) / 30
                ELSE -((20454 - last_seen + 29) / 30) END
    FROM bayes_token WHERE uid = 0 ORDER BY hash;

INSERT OR IGNORE INTO bayes_user_token (uid, hash, spam, ham, seen)
    SELECT uid, hash, spam, ham,
           CASE WHEN last_seen >= 20454 THEN (last_seen - 20454) / 30
                ELSE -((20454 - last_seen + 29) / 30) END
    FROM bayes_token WHERE uid != 0 ORDER BY uid, hash;

DROP TABLE IF EXISTS bayes_token;

-- Readers that cached the old tokens load them again.
INSERT INTO bayes_meta (name, value) VALUES ('generation', '1')
    ON CONFLICT (name) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT);
