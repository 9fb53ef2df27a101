-- 005: authenticated submission — account defence (daemon/account, daemon/store/store_account.c).
--
-- Written by the account worker thread of the mail side and by `moatd accounts`.
-- Account names are dir_user.name (the AUTH identity); rows are kept when a
-- user is deleted, for the record.

-- One row per account that ever submitted: suspension and running totals.
CREATE TABLE account_state (
    user         TEXT PRIMARY KEY,
    suspended    INTEGER NOT NULL DEFAULT 0,  -- unix ms of the suspension, 0 not suspended
    reason       TEXT,                        -- why, when suspended
    score        INTEGER NOT NULL DEFAULT 0,  -- last score computed
    messages     INTEGER NOT NULL DEFAULT 0,  -- accepted MAIL commands, all time
    recipients   INTEGER NOT NULL DEFAULT 0,  -- accepted RCPT commands, all time
    refused      INTEGER NOT NULL DEFAULT 0,  -- refused senders and recipients, all time
    updated      INTEGER NOT NULL             -- unix ms
) WITHOUT ROWID;

-- Per-account rate limits; NULL: the default from the configuration.
CREATE TABLE account_limit (
    user              TEXT PRIMARY KEY,
    messages_minute   INTEGER,
    messages_hour     INTEGER,
    messages_day      INTEGER,
    recipients_minute INTEGER,
    recipients_hour   INTEGER,
    recipients_day    INTEGER
) WITHOUT ROWID;

-- Alerts for the console: suspensions (kind 'suspended') and lifts ('lifted').
CREATE TABLE account_alert (
    id       INTEGER PRIMARY KEY,
    ts       INTEGER NOT NULL,               -- unix ms
    user     TEXT NOT NULL,
    kind     TEXT NOT NULL CHECK (kind IN ('suspended', 'lifted')),
    score    INTEGER,
    detail   TEXT NOT NULL,                  -- the score's parts, human readable
    held     INTEGER NOT NULL DEFAULT 0      -- queue recipients moved to held
);
CREATE INDEX account_alert_ts ON account_alert(ts);
CREATE INDEX account_alert_user ON account_alert(user, ts);
