-- 023: score thresholds per domain and per directory user (docs/score.md,
-- "Thresholds").
--
-- A row overrides the global settings score_tag, score_quarantine,
-- score_refuse and score_greylist for the recipients of one domain (exact
-- domain, lower case) or of one directory user (dir_user.name: the user's
-- primary address and aliases).  A NULL value inherits: a user row from the
-- recipient's domain row, a domain row from the global setting.  A user row
-- names its user rather than referencing dir_user's id so that it survives
-- the user being removed and added again (an import); the snapshot matches
-- it by name.  Every change bumps the policy generation: the snapshot holds
-- the rows.
--
-- IF NOT EXISTS: run again over a database set back to an older
-- user_version, the rows are kept.

CREATE TABLE IF NOT EXISTS score_threshold (
    id          INTEGER PRIMARY KEY,
    scope       TEXT NOT NULL CHECK (scope IN ('domain', 'user')),
    name        TEXT NOT NULL,            -- a domain, or a directory user's name
    tag         REAL,                     -- NULL: inherit
    quarantine  REAL,
    refuse      REAL,
    greylist    REAL,
    updated     INTEGER NOT NULL,         -- unix ms
    UNIQUE (scope, name)
);

CREATE TRIGGER IF NOT EXISTS score_threshold_ins AFTER INSERT ON score_threshold
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS score_threshold_upd AFTER UPDATE ON score_threshold
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS score_threshold_del AFTER DELETE ON score_threshold
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
