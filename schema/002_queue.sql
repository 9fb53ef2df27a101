-- 002: delivery queue (routes, attempts, held and dead mail).
--
-- queue_rcpt.state: queued (never tried) | deferred (4xx, waits for
-- next_attempt) | held (kept until released; reason says why) | dead (5xx,
-- null MX, queue lifetime over; last_error keeps the remote reply) | done.
-- A row the runner has picked is leased: next_attempt is pushed into the
-- future and leased = 1 until its outcome is written.  At start every
-- lease is taken back (due at once): a crash never strands a recipient.

ALTER TABLE queue_rcpt ADD COLUMN leased INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queue_rcpt ADD COLUMN reason TEXT;                      -- why held
ALTER TABLE queue_rcpt ADD COLUMN final_at INTEGER;                 -- unix ms, done/dead
ALTER TABLE queue_rcpt ADD COLUMN released_at INTEGER NOT NULL DEFAULT 0; -- lifetime restarts
ALTER TABLE queue_rcpt ADD COLUMN route TEXT;                       -- last destination tried

CREATE INDEX queue_rcpt_leased ON queue_rcpt(leased) WHERE leased = 1;
CREATE INDEX queue_message_received ON queue_message(received_at);
CREATE INDEX queue_message_sender ON queue_message(sender);
CREATE INDEX queue_message_client ON queue_message(client_addr);
