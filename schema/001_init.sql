-- 001: the queue index and the message log.
--
-- The spool file spool/queue/<qid> holds the message; these rows hold its
-- envelope.  A row here and a file there exist together or not at all once
-- start-up reconciliation has run.

CREATE TABLE queue_message (
    qid          TEXT PRIMARY KEY,
    sender       TEXT NOT NULL,             -- '' for the null sender <>
    client_addr  TEXT NOT NULL,
    client_name  TEXT NOT NULL,
    helo         TEXT NOT NULL,
    auth_user    TEXT,
    size         INTEGER NOT NULL,          -- octets of the spool file
    received_at  INTEGER NOT NULL,          -- unix ms
    smtputf8     INTEGER NOT NULL DEFAULT 0,
    body_8bit    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE queue_rcpt (
    qid           TEXT NOT NULL REFERENCES queue_message(qid) ON DELETE CASCADE,
    rcpt          TEXT NOT NULL,
    state         TEXT NOT NULL DEFAULT 'queued'
                  CHECK (state IN ('queued', 'deferred', 'held', 'dead', 'done')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_attempt  INTEGER NOT NULL DEFAULT 0,  -- unix ms
    last_error    TEXT,
    PRIMARY KEY (qid, rcpt)
) WITHOUT ROWID;

CREATE INDEX queue_rcpt_due ON queue_rcpt(state, next_attempt);

CREATE TABLE message_log (
    id           INTEGER PRIMARY KEY,
    ts           INTEGER NOT NULL,          -- unix ms
    session_id   TEXT NOT NULL,
    qid          TEXT,
    client_addr  TEXT NOT NULL,
    client_name  TEXT,
    helo         TEXT,
    sender       TEXT,
    recipients   TEXT NOT NULL DEFAULT '[]', -- JSON array
    size         INTEGER,
    result       TEXT NOT NULL
                 CHECK (result IN ('accepted', 'refused', 'deferred', 'aborted')),
    code         TEXT,                      -- '250 2.0.0'
    reason       TEXT,
    check_name   TEXT
);

CREATE INDEX message_log_ts ON message_log(ts);
CREATE INDEX message_log_client ON message_log(client_addr, ts);
CREATE INDEX message_log_sender ON message_log(sender, ts);
CREATE INDEX message_log_qid ON message_log(qid);
