-- 006: indexes for the dashboard's aggregates (GET /api/v1/stats/top,
-- daemon/store/store_report.c): per result over a time range, and per check.
CREATE INDEX message_log_result_ts ON message_log(result, ts);
CREATE INDEX message_log_check ON message_log(check_name, ts);
