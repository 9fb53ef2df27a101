-- 018: per-recipient delivery edits (docs/mailbox-rules.md, "Folders at a
-- gateway"; docs/queue.md).
--
-- queue_rcpt.edit is the recipient's delivery edit as JSON text
-- ({"folder", "subject_prefix", "headers", "importance"}; NULL: the message
-- as it is).  The same address may now be queued more than once for one
-- message (the inbox and a folder copy), so the key gains seq: 0 for the
-- first row of an address in a message, 1, 2, ... for its further copies.
--
-- SQLite cannot change a primary key in place: the table is rebuilt.  The
-- migration runs in one transaction (daemon/store/store.c); a run that
-- fails leaves the old table untouched, and the scratch table of an
-- interrupted run is dropped first, so it can simply run again.  Run again
-- over a table that already has seq (a database set back to an older
-- user_version), every row is kept: seq is numbered afresh per address.
DROP TABLE IF EXISTS queue_rcpt_018;
CREATE TABLE queue_rcpt_018 (
    qid           TEXT NOT NULL REFERENCES queue_message(qid) ON DELETE CASCADE,
    rcpt          TEXT NOT NULL,
    seq           INTEGER NOT NULL DEFAULT 0,
    state         TEXT NOT NULL DEFAULT 'queued'
                  CHECK (state IN ('queued', 'deferred', 'held', 'dead', 'done')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_attempt  INTEGER NOT NULL DEFAULT 0,  -- unix ms
    last_error    TEXT,
    leased        INTEGER NOT NULL DEFAULT 0,
    reason        TEXT,                        -- why held
    final_at      INTEGER,                     -- unix ms, done/dead
    released_at   INTEGER NOT NULL DEFAULT 0,  -- lifetime restarts
    route         TEXT,                        -- last destination tried
    edit          TEXT,                        -- delivery edit (JSON), NULL none
    PRIMARY KEY (qid, rcpt, seq)
) WITHOUT ROWID;
INSERT OR IGNORE INTO queue_rcpt_018 (qid, rcpt, seq, state, attempts, next_attempt,
    last_error, leased, reason, final_at, released_at, route)
    SELECT qid, rcpt, row_number() OVER (PARTITION BY qid, rcpt) - 1, state, attempts,
        next_attempt, last_error, leased, reason, final_at, released_at, route
    FROM queue_rcpt;
DROP TABLE queue_rcpt;
ALTER TABLE queue_rcpt_018 RENAME TO queue_rcpt;
CREATE INDEX IF NOT EXISTS queue_rcpt_due ON queue_rcpt(state, next_attempt);
CREATE INDEX IF NOT EXISTS queue_rcpt_leased ON queue_rcpt(leased) WHERE leased = 1;
CREATE INDEX IF NOT EXISTS queue_rcpt_final ON queue_rcpt(state, final_at);
