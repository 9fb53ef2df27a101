-- 026: cluster mode (docs/cluster.md).
--
-- cluster_outbox: the changes this node made to shared tables that the
-- cluster thread has not pushed to PostgreSQL yet, filled by triggers that
-- exist only while cluster_pg is set (store_cluster.c).  rid is the row's
-- primary key as a JSON array; the pusher reads the row as it is then, so
-- one entry per change is enough and a later change makes earlier ones moot.
--
-- cluster_state: one row.  node is this node's number (written at start;
-- the CLI reads it for the id range), pulled_seq the last PostgreSQL
-- sequence applied here, joined 1 once the node has seeded or pulled the
-- whole cluster.
--
-- Re-runnable: both are plain tables made only when missing.

CREATE TABLE IF NOT EXISTS cluster_outbox (
    seq        INTEGER PRIMARY KEY,
    tbl        TEXT NOT NULL,
    rid        TEXT NOT NULL,
    op         TEXT NOT NULL              -- i, u, d (as the trigger saw it)
);

CREATE TABLE IF NOT EXISTS cluster_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    node       INTEGER NOT NULL DEFAULT 0,
    pulled_seq INTEGER NOT NULL DEFAULT 0,
    joined     INTEGER NOT NULL DEFAULT 0
);

INSERT OR IGNORE INTO cluster_state (id) VALUES (1);
