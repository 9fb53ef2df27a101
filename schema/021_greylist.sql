-- 021: greylisting (docs/score.md, "Greylisting").
--
-- greylist_triplet: one row per (client network, sender key, recipient).
-- network is the client's /24 (IPv4) or /64 (IPv6) as text
-- ("192.0.2.0/24", "2001:db8:1:2::/64"); sender is the envelope sender
-- lower-cased, "<>" for the null sender, or the SPF-authenticated domain
-- (no "@") when SPF passed; rcpt is the recipient lower-cased.  A row is
-- waiting while passed_at is 0 and passed once a retry came inside the
-- window.  expires (unix ms) is when the row means nothing any more: for a
-- waiting row the end of its retry window, for a passed one its last use
-- plus the lifetime; expired rows are deleted a few at a time by the
-- greylist check itself.
--
-- greylist_network: per client network, how many of its triplets passed
-- (a retry after the delay).  At greylist_auto_allow passes the network is
-- no longer greylisted, for as long as it keeps sending (expires = last
-- use + lifetime).  Rows below the threshold are candidates.
--
-- IF NOT EXISTS: run again over a database set back to an older
-- user_version, the tables and what they hold are kept.

CREATE TABLE IF NOT EXISTS greylist_triplet (
    id          INTEGER PRIMARY KEY,
    network     TEXT NOT NULL,
    sender      TEXT NOT NULL,
    rcpt        TEXT NOT NULL,
    first_seen  INTEGER NOT NULL,            -- unix ms: first attempt of this round
    last_seen   INTEGER NOT NULL,            -- unix ms: latest attempt or use
    attempts    INTEGER NOT NULL DEFAULT 1,  -- attempts in this round (deferred and passed)
    passed_at   INTEGER NOT NULL DEFAULT 0,  -- unix ms of the retry that passed; 0 waiting
    passes      INTEGER NOT NULL DEFAULT 0,  -- messages let through since passed_at
    expires     INTEGER NOT NULL,            -- unix ms
    UNIQUE (network, sender, rcpt)
);
CREATE INDEX IF NOT EXISTS greylist_triplet_expires ON greylist_triplet(expires);
CREATE INDEX IF NOT EXISTS greylist_triplet_sender ON greylist_triplet(sender);
CREATE INDEX IF NOT EXISTS greylist_triplet_rcpt ON greylist_triplet(rcpt);
CREATE INDEX IF NOT EXISTS greylist_triplet_last ON greylist_triplet(last_seen);

CREATE TABLE IF NOT EXISTS greylist_network (
    id          INTEGER PRIMARY KEY,
    network     TEXT NOT NULL UNIQUE,
    passes      INTEGER NOT NULL DEFAULT 0,  -- triplets of this network that passed
    first_seen  INTEGER NOT NULL,            -- unix ms: first triplet that passed
    last_seen   INTEGER NOT NULL,            -- unix ms: latest pass or use
    expires     INTEGER NOT NULL             -- unix ms
);
CREATE INDEX IF NOT EXISTS greylist_network_expires ON greylist_network(expires);
CREATE INDEX IF NOT EXISTS greylist_network_passes ON greylist_network(passes);
