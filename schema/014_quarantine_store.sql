-- 014: the quarantine store (docs/quarantine.md).  One row per quarantined
-- recipient of a message whose file is kept in spool/quarantine/<qid>;
-- the row now carries what the list and the digest show (kind, subject,
-- Message-ID) and when the purge removes it (expires_at).  Rows get an
-- integer id so that the API and signed links can name one item.
CREATE TABLE IF NOT EXISTS quarantine_new (
    id           INTEGER PRIMARY KEY,
    qid          TEXT NOT NULL,
    rcpt         TEXT NOT NULL,            -- lower case
    kind         TEXT NOT NULL DEFAULT 'policy'
                 CHECK (kind IN ('spam', 'policy', 'virus', 'attachment')),
    reason       TEXT NOT NULL,            -- the rule: "rule 12 name"
    sender       TEXT NOT NULL,
    subject      TEXT NOT NULL DEFAULT '',
    message_id   TEXT NOT NULL DEFAULT '',
    client_addr  TEXT NOT NULL,
    size         INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,         -- unix ms
    expires_at   INTEGER NOT NULL,         -- unix ms: created_at + quarantine_lifetime
    UNIQUE (qid, rcpt)
);
INSERT INTO quarantine_new (qid, rcpt, kind, reason, sender, client_addr, size,
                            created_at, expires_at)
    SELECT qid, lower(rcpt), 'policy', reason, sender, client_addr, size,
           created_at, created_at + 14 * 86400000
      FROM quarantine ORDER BY created_at, qid, rcpt;
DROP TABLE quarantine;
ALTER TABLE quarantine_new RENAME TO quarantine;

-- The list sorts by any of these columns and pages with (column, id); the
-- filters on recipient and sender are equality or prefix matches; kind with
-- a time range is a covering range (the count the console shows before a
-- bulk action); the purge walks expires_at.  Substring filters (subject,
-- reason, q) scan the table (store_quarantine.c says why not an index).
CREATE INDEX IF NOT EXISTS quarantine_created ON quarantine(created_at, id);
CREATE INDEX IF NOT EXISTS quarantine_expires ON quarantine(expires_at, id);
CREATE INDEX IF NOT EXISTS quarantine_size ON quarantine(size, id);
CREATE INDEX IF NOT EXISTS quarantine_rcpt ON quarantine(rcpt, created_at);
CREATE INDEX IF NOT EXISTS quarantine_sender ON quarantine(lower(sender), id);
CREATE INDEX IF NOT EXISTS quarantine_subject ON quarantine(lower(subject), id);
CREATE INDEX IF NOT EXISTS quarantine_kind ON quarantine(kind, created_at, id);

-- Group managers see (and act on) the quarantine of their groups' address.
CREATE TABLE IF NOT EXISTS dir_group_manager (
    group_id INTEGER NOT NULL REFERENCES dir_group(id) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL REFERENCES dir_user(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX IF NOT EXISTS dir_group_manager_user ON dir_group_manager(user_id);

-- Personal sender lists of end users ("My senders"): applied by the policy
-- for the user's own addresses, so a change bumps the policy generation.
CREATE TABLE IF NOT EXISTS user_sender_list (
    id       INTEGER PRIMARY KEY,
    user_id  INTEGER NOT NULL REFERENCES dir_user(id) ON DELETE CASCADE,
    kind     TEXT NOT NULL CHECK (kind IN ('allow', 'block')),
    value    TEXT NOT NULL,                -- user@example.com or @example.com, lower case
    created  INTEGER NOT NULL,             -- unix ms
    UNIQUE (user_id, value)
);

CREATE TRIGGER IF NOT EXISTS user_sender_list_ins AFTER INSERT ON user_sender_list
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS user_sender_list_upd AFTER UPDATE ON user_sender_list
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS user_sender_list_del AFTER DELETE ON user_sender_list
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS dir_group_manager_ins AFTER INSERT ON dir_group_manager
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS dir_group_manager_del AFTER DELETE ON dir_group_manager
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
