-- 019: account defence that tells a compromised PC from a big legitimate
-- mailing (docs/submission.md, "Compromised-account detection").
--
-- account_state and account_alert gain columns and account_alert a wider
-- kind; SQLite cannot widen a CHECK in place, so both are rebuilt.  The
-- migration runs in one transaction (daemon/store/store.c); the scratch
-- tables of an interrupted run are dropped first, so it can run again, also
-- over tables that already have the new columns (only the old columns are
-- copied then).

DROP TABLE IF EXISTS account_state_019;
CREATE TABLE account_state_019 (
    user          TEXT PRIMARY KEY,
    suspended     INTEGER NOT NULL DEFAULT 0,  -- unix ms of the suspension, 0 not suspended
    reason        TEXT,                        -- why, when suspended
    score         INTEGER NOT NULL DEFAULT 0,  -- last score computed
    messages      INTEGER NOT NULL DEFAULT 0,  -- accepted MAIL commands, all time
    recipients    INTEGER NOT NULL DEFAULT 0,  -- accepted RCPT commands, all time
    refused       INTEGER NOT NULL DEFAULT 0,  -- refused senders and recipients, all time
    updated       INTEGER NOT NULL,            -- unix ms
    trusted_until INTEGER NOT NULL DEFAULT 0,  -- unix ms: trusted for bulk mail until; 0 not
    signals       TEXT,                        -- JSON: the last score's parts
    volume_day    INTEGER NOT NULL DEFAULT 0,  -- messages accepted in the last 24 h
    last_client   TEXT,                        -- client address of the latest message
    bulk_seen     INTEGER NOT NULL DEFAULT 0   -- unix ms: first seen sending identical content
                                               -- to many domains unsuspended; 0 never
) WITHOUT ROWID;
INSERT INTO account_state_019 (user, suspended, reason, score, messages, recipients, refused,
                               updated)
    SELECT user, suspended, reason, score, messages, recipients, refused, updated
    FROM account_state;
DROP TABLE account_state;
ALTER TABLE account_state_019 RENAME TO account_state;
CREATE INDEX account_state_score ON account_state(score);
CREATE INDEX account_state_volume ON account_state(volume_day);

DROP TABLE IF EXISTS account_alert_019;
CREATE TABLE account_alert_019 (
    id       INTEGER PRIMARY KEY,
    ts       INTEGER NOT NULL,               -- unix ms
    user     TEXT NOT NULL,
    kind     TEXT NOT NULL CHECK (kind IN ('suspended', 'lifted', 'trusted', 'untrusted')),
    score    INTEGER,
    detail   TEXT NOT NULL,                  -- the score's parts, human readable
    held     INTEGER NOT NULL DEFAULT 0,     -- queue recipients moved to held
    signals  TEXT,                           -- JSON: [{name,label,value,weight,points}]
    clients  TEXT,                           -- JSON: [{addr,messages,new}]
    samples  TEXT,                           -- JSON: [{qid,sender,recipient,subject,size}]
    actor    TEXT NOT NULL DEFAULT 'moatd',  -- 'moatd' (automatic) or who acted
    action   TEXT,                           -- lifted: keep | release | delete; trusted: until
    notified INTEGER NOT NULL DEFAULT 0      -- 0 to send; unix ms sent; -1 nothing to send
);
INSERT INTO account_alert_019 (id, ts, user, kind, score, detail, held, notified)
    SELECT id, ts, user, kind, score, detail, held, -1 FROM account_alert;
DROP TABLE account_alert;
ALTER TABLE account_alert_019 RENAME TO account_alert;
CREATE INDEX account_alert_ts ON account_alert(ts);
CREATE INDEX account_alert_user ON account_alert(user, ts);
CREATE INDEX account_alert_pending ON account_alert(notified) WHERE notified = 0;

-- The account's own learned volume: per hour of the week (0 = Monday 00h
-- UTC .. 167), messages per hour smoothed over the weeks observed.
CREATE TABLE IF NOT EXISTS account_baseline (
    user    TEXT NOT NULL,
    how     INTEGER NOT NULL CHECK (how BETWEEN 0 AND 167),
    rate    REAL NOT NULL,                   -- messages per hour, smoothed
    weeks   INTEGER NOT NULL DEFAULT 1,      -- weeks this hour has been observed
    updated INTEGER NOT NULL,                -- unix ms
    PRIMARY KEY (user, how)
) WITHOUT ROWID;

-- Client networks (/24 for IPv4, /64 for IPv6) an account has sent from.
CREATE TABLE IF NOT EXISTS account_network (
    user       TEXT NOT NULL,
    net        TEXT NOT NULL,
    first_seen INTEGER NOT NULL,             -- unix ms
    last_seen  INTEGER NOT NULL,
    messages   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user, net)
) WITHOUT ROWID;

DROP TABLE IF EXISTS account_limit_019;
CREATE TABLE account_limit_019 (
    user              TEXT PRIMARY KEY,
    messages_minute   INTEGER,
    messages_hour     INTEGER,
    messages_day      INTEGER,
    recipients_minute INTEGER,
    recipients_hour   INTEGER,
    recipients_day    INTEGER,
    messages_second   INTEGER,
    recipients_second INTEGER
) WITHOUT ROWID;
INSERT INTO account_limit_019 (user, messages_minute, messages_hour, messages_day,
                               recipients_minute, recipients_hour, recipients_day)
    SELECT user, messages_minute, messages_hour, messages_day, recipients_minute,
           recipients_hour, recipients_day
    FROM account_limit;
DROP TABLE account_limit;
ALTER TABLE account_limit_019 RENAME TO account_limit;
