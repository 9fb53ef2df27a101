-- 027: the statistical filter's learning, shared in a cluster (docs/cluster.md,
-- "The statistical filter").
--
-- The tokens (bayes_*) stay node-local; what is shared is each learning:
-- one row per message learned, moved or forgotten on this node, written in
-- the learning's own transaction and only while the node is in a cluster
-- with PostgreSQL (cluster_state.node != 0), so a single node writes
-- nothing here.  Another node repeats the learning from the row alone:
--
--   origin    the node that learned (its own rows are never applied to it)
--   uid       the model: 0 global, else dir_user.id (the same on every node)
--   class     's' spam, 'h' ham, 'f' forgotten
--   digest    the message's SHA-256 as bayes_learned keeps it, so that a
--             replay is idempotent and a move subtracts the other class
--   hash_key  the SipHash key the tokens were made with (bayes_meta 'key');
--             a node with another key cannot use them
--   tokens    the tokenizer's distinct 64-bit token hashes, 8 octets each,
--             little-endian (at most BAYES_MAX_FEATURES of them)
--   created   unix ms; rows older than the retention are pruned
--
-- id comes from moat_next_id('bayes_event') (this node's id range).
-- Re-runnable: made only when missing.

CREATE TABLE IF NOT EXISTS bayes_event (
    id         INTEGER PRIMARY KEY,
    origin     INTEGER NOT NULL,
    uid        INTEGER NOT NULL,
    class      TEXT NOT NULL CHECK (class IN ('s', 'h', 'f')),
    digest     BLOB NOT NULL,
    hash_key   BLOB NOT NULL,
    tokens     BLOB NOT NULL,
    created    INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS bayes_event_created ON bayes_event (created);
