-- 015: one timeline per message (docs/timeline.md).  The SMTP conversation
-- of a transaction travels with the message-log row the session writes
-- anyway (no extra write per command): a JSON array of
-- {"ts", "stage", "event", "recipient"?, "detail"} objects, bounded by the
-- session.  message_id is the Message-ID header field of an accepted
-- message (angle brackets removed), for lookup by it.
ALTER TABLE message_log ADD COLUMN timeline TEXT;
ALTER TABLE message_log ADD COLUMN message_id TEXT;
CREATE INDEX IF NOT EXISTS message_log_message_id ON message_log(message_id)
    WHERE message_id IS NOT NULL;
