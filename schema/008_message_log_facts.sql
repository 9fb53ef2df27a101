-- 008: facts of a message-log row in their own columns instead of inside the
-- reason text: the authenticated account (searchable: which mail did this
-- login send?), the TLS protocol and cipher of the session, and the list
-- entry, DNSBL site or setting that fired ("conn_deny entry 12 192.0.2.0/24").
ALTER TABLE message_log ADD COLUMN auth_user TEXT;
ALTER TABLE message_log ADD COLUMN tls TEXT;
ALTER TABLE message_log ADD COLUMN entry TEXT;
CREATE INDEX message_log_auth ON message_log(auth_user, ts) WHERE auth_user IS NOT NULL;
