-- 007: the message log's recipients, one row each, so that a search by recipient
-- (GET /api/v1/messages?recipient=, daemon/store/store_report.c) is an index lookup
-- instead of a scan of every row's JSON.  Recipients are stored lower case.
--
-- Written by the trigger below in the same statement as the message_log row
-- (store_log_insert, and anything else that inserts there); removed with it.
CREATE TABLE message_log_rcpt (
    log_id  INTEGER NOT NULL REFERENCES message_log(id) ON DELETE CASCADE,
    rcpt    TEXT NOT NULL
);
CREATE INDEX message_log_rcpt_rcpt ON message_log_rcpt(rcpt, log_id);
CREATE INDEX message_log_rcpt_log ON message_log_rcpt(log_id);

INSERT INTO message_log_rcpt (log_id, rcpt)
    SELECT m.id, lower(j.value)
    FROM message_log m,
         json_each(CASE WHEN json_valid(m.recipients) THEN m.recipients ELSE '[]' END) j
    WHERE j.type = 'text';

CREATE TRIGGER message_log_rcpt_ins AFTER INSERT ON message_log BEGIN
    INSERT INTO message_log_rcpt (log_id, rcpt)
        SELECT NEW.id, lower(j.value)
        FROM json_each(CASE WHEN json_valid(NEW.recipients) THEN NEW.recipients ELSE '[]' END) j
        WHERE j.type = 'text';
END;
