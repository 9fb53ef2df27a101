-- 024: the score of each message (docs/score.md).  score is the highest of
-- its recipients' scores, score_parts that recipient's named parts as a
-- JSON array [{"name", "points", "detail"?}]; both NULL when the message
-- was not scored (refused before DATA, or score_enabled = no).
ALTER TABLE message_log ADD COLUMN score REAL;
ALTER TABLE message_log ADD COLUMN score_parts TEXT;
CREATE INDEX IF NOT EXISTS message_log_score ON message_log(score, ts)
    WHERE score IS NOT NULL;
