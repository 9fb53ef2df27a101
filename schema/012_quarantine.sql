-- 012: the quarantine index (docs/rules.md "Quarantine"): one row per
-- quarantined recipient of a message whose file is kept in
-- spool/quarantine/<qid>.  Rows and file are written before the 250, in the
-- same transaction as the message's queue rows.
CREATE TABLE IF NOT EXISTS quarantine (
    qid          TEXT NOT NULL,
    rcpt         TEXT NOT NULL,
    reason       TEXT NOT NULL,            -- the rule: "rule 12 name"
    sender       TEXT NOT NULL,
    client_addr  TEXT NOT NULL,
    size         INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,         -- unix ms
    PRIMARY KEY (qid, rcpt)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS quarantine_created ON quarantine(created_at);
