-- 004: API authentication, sessions, tokens, login throttling and the audit
-- log (daemon/store/store_auth.c).
--
-- dir_user (003) is the one user table: a directory user may also log in to
-- the console when it has a password_hash.  Secrets are never stored in the
-- clear: passwords as Argon2id encoded strings, session ids and API tokens
-- as SHA-256 hex of the random value the client holds.

ALTER TABLE dir_user ADD COLUMN password_hash TEXT;     -- NULL: cannot log in
ALTER TABLE dir_user ADD COLUMN role TEXT NOT NULL DEFAULT 'user'
    CHECK (role IN ('admin', 'user'));
ALTER TABLE dir_user ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE dir_user ADD COLUMN password_changed INTEGER;  -- unix ms

CREATE TABLE api_session (
    id_hash     TEXT PRIMARY KEY,            -- sha256 hex of the cookie value
    user_id     INTEGER NOT NULL REFERENCES dir_user(id) ON DELETE CASCADE,
    csrf        TEXT NOT NULL,
    client_addr TEXT NOT NULL,
    created     INTEGER NOT NULL,            -- unix ms
    last_seen   INTEGER NOT NULL,            -- unix ms
    expires     INTEGER NOT NULL             -- absolute expiry, unix ms
) WITHOUT ROWID;
CREATE INDEX api_session_user ON api_session(user_id);

CREATE TABLE api_token (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES dir_user(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE,        -- sha256 hex of the token
    prefix      TEXT NOT NULL,               -- first characters, to recognise it
    scope       TEXT NOT NULL CHECK (scope IN ('admin', 'user')),
    created     INTEGER NOT NULL,
    last_used   INTEGER,                     -- unix ms, NULL never
    revoked     INTEGER                      -- unix ms, NULL active
);
CREATE INDEX api_token_user ON api_token(user_id);

-- Failed logins only; a sliding window counts them per address and account.
CREATE TABLE api_login_failure (
    id          INTEGER PRIMARY KEY,
    ts          INTEGER NOT NULL,
    client_addr TEXT NOT NULL,
    account     TEXT NOT NULL                -- as typed, lower case
);
CREATE INDEX api_login_failure_addr ON api_login_failure(client_addr, ts);
CREATE INDEX api_login_failure_account ON api_login_failure(account, ts);

-- Every change made through the API.
CREATE TABLE api_audit (
    id          INTEGER PRIMARY KEY,
    ts          INTEGER NOT NULL,
    actor_id    INTEGER,                     -- NULL: the system (first start)
    actor       TEXT NOT NULL,               -- user name at the time
    via         TEXT NOT NULL,               -- session | token | system
    client_addr TEXT NOT NULL,
    action      TEXT NOT NULL,               -- e.g. user.create
    object_type TEXT NOT NULL,
    object_id   TEXT,
    before      TEXT,                        -- JSON or NULL
    after       TEXT                         -- JSON or NULL
);
CREATE INDEX api_audit_ts ON api_audit(ts);
