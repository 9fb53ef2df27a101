-- Login throttling: failed logins are throttled per (account, client
-- address); the per-account limit over all addresses never applies to an
-- address from which the account has logged in before.  Both the API and
-- SMTP AUTH write here.
CREATE TABLE IF NOT EXISTS login_known_addr (
    account     TEXT NOT NULL,               -- as in api_login_failure: lower case
    client_addr TEXT NOT NULL,
    first_ok    INTEGER NOT NULL,            -- unix ms of the first successful login
    last_ok     INTEGER NOT NULL,            -- unix ms of the latest
    PRIMARY KEY (account, client_addr)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS api_login_failure_pair ON api_login_failure(account, client_addr, ts);
