-- 020: the statistical filter's token store (docs/score.md).
--
-- A model is identified by uid: 0 is the global model, a directory user's id
-- (dir_user.id) is that user's own model.  Tokens are 64-bit keyed hashes
-- (SipHash-2-4 with the key in bayes_meta), stored as SQLite's signed
-- INTEGER; the text of a token is never stored.  spam / ham count the
-- learned messages of each class that contained the token (once per
-- message); last_seen is the day (unix time / 86400) it was last learned,
-- which expiry uses to drop rare tokens nobody has seen in a long time.
--
-- IF NOT EXISTS: run again over a database set back to an older
-- user_version, the tables and what was learned are kept.

CREATE TABLE IF NOT EXISTS bayes_token (
    uid        INTEGER NOT NULL,
    hash       INTEGER NOT NULL,
    spam       INTEGER NOT NULL DEFAULT 0,
    ham        INTEGER NOT NULL DEFAULT 0,
    last_seen  INTEGER NOT NULL,
    PRIMARY KEY (uid, hash)
) WITHOUT ROWID;

-- Messages learned per class, per model.
CREATE TABLE IF NOT EXISTS bayes_model (
    uid        INTEGER PRIMARY KEY,
    spam_msgs  INTEGER NOT NULL DEFAULT 0,
    ham_msgs   INTEGER NOT NULL DEFAULT 0,
    updated    INTEGER NOT NULL            -- unix ms
);

-- Every learned message by its SHA-256 (of the message without an mbox
-- "From " line, line ends as LF), so that learning it again is a no-op and
-- learning it as the other class moves it.  class is 's' or 'h'.
CREATE TABLE IF NOT EXISTS bayes_learned (
    uid        INTEGER NOT NULL,
    digest     BLOB NOT NULL,
    class      TEXT NOT NULL CHECK (class IN ('s', 'h')),
    learned_at INTEGER NOT NULL,           -- unix ms
    PRIMARY KEY (uid, digest)
) WITHOUT ROWID;

-- key: the hash key (32 hex digits), made once at the first learning.
CREATE TABLE IF NOT EXISTS bayes_meta (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL
);
