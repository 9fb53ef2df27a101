-- 009: dead mail past its retention is found through an index on its final
-- time (the runner's purge, daemon/store/store_queue.c) instead of a walk
-- over every queued message.  Recipients made dead without a time (spool
-- file lost at start, before this release) get one now, so that they too
-- are kept for the retention period.
UPDATE queue_rcpt SET final_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000
    WHERE state = 'dead' AND final_at IS NULL;
CREATE INDEX queue_rcpt_final ON queue_rcpt(state, final_at);
