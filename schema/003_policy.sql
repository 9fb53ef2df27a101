-- 003: front-door policy — lists, settings, DNS blocklists, the directory,
-- and their statistics.
--
-- Every change to a policy table bumps policy_meta.generation (triggers
-- below), whoever makes it (CLI, API, sqlite3 shell); moatd polls that
-- number and rebuilds its in-memory snapshot.  Statistics tables do not
-- bump it.

CREATE TABLE policy_meta (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    generation  INTEGER NOT NULL
);
INSERT INTO policy_meta (id, generation) VALUES (1, 1);

-- One row per list entry.  list is one of the kinds named in
-- docs/policy.md (conn_allow, conn_deny, sender_allow, ...); value is
-- validated by moatd before it gets here.
CREATE TABLE policy_entry (
    id       INTEGER PRIMARY KEY,
    list     TEXT NOT NULL,
    value    TEXT NOT NULL,
    comment  TEXT NOT NULL DEFAULT '',
    created  INTEGER NOT NULL,               -- unix ms
    UNIQUE (list, value)
);

-- Settings that differ from the built-in defaults (see docs/policy.md).
CREATE TABLE policy_setting (
    key      TEXT PRIMARY KEY,
    value    TEXT NOT NULL,
    updated  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE dnsbl_site (
    id       INTEGER PRIMARY KEY,
    zone     TEXT NOT NULL UNIQUE,
    kind     TEXT NOT NULL DEFAULT 'block' CHECK (kind IN ('block', 'allow')),
    enabled  INTEGER NOT NULL DEFAULT 1,
    action   TEXT NOT NULL DEFAULT 'refuse' CHECK (action IN ('refuse', 'tag', 'log')),
    message  TEXT NOT NULL DEFAULT '',       -- '' means the default text
    codes    TEXT NOT NULL DEFAULT '127.0.0.2-127.0.0.255',
    weight   INTEGER NOT NULL DEFAULT 1,
    comment  TEXT NOT NULL DEFAULT '',
    created  INTEGER NOT NULL
);

-- Per site and UTC day (unix day number).
CREATE TABLE dnsbl_stat (
    zone      TEXT NOT NULL,
    day       INTEGER NOT NULL,
    queries   INTEGER NOT NULL DEFAULT 0,
    hits      INTEGER NOT NULL DEFAULT 0,
    tempfails INTEGER NOT NULL DEFAULT 0,
    last_hit  INTEGER,                       -- unix ms
    PRIMARY KEY (zone, day)
) WITHOUT ROWID;

-- Verdicts per check and UTC day: every refusal, deferral and tag counts.
CREATE TABLE policy_stat (
    check_name TEXT NOT NULL,
    day        INTEGER NOT NULL,
    count      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (check_name, day)
) WITHOUT ROWID;

-- The directory: the truth about local recipients.
CREATE TABLE dir_user (
    id       INTEGER PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    created  INTEGER NOT NULL
);

CREATE TABLE dir_address (
    address  TEXT PRIMARY KEY,               -- lower case
    user_id  INTEGER NOT NULL REFERENCES dir_user(id) ON DELETE CASCADE,
    kind     TEXT NOT NULL DEFAULT 'primary' CHECK (kind IN ('primary', 'alias'))
);
CREATE INDEX dir_address_user ON dir_address(user_id);

CREATE TABLE dir_group (
    id       INTEGER PRIMARY KEY,
    address  TEXT NOT NULL UNIQUE,           -- lower case
    name     TEXT NOT NULL DEFAULT '',
    created  INTEGER NOT NULL
);

CREATE TABLE dir_group_member (
    group_id INTEGER NOT NULL REFERENCES dir_group(id) ON DELETE CASCADE,
    member   TEXT NOT NULL,
    PRIMARY KEY (group_id, member)
);

-- Relay from the local host only, out of the box: a closed relay.
INSERT INTO policy_entry (list, value, comment, created)
    VALUES ('relay_net', '127.0.0.0/8', 'loopback (default)', 0),
           ('relay_net', '::1', 'loopback (default)', 0);

CREATE TRIGGER policy_entry_ins AFTER INSERT ON policy_entry
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER policy_entry_upd AFTER UPDATE ON policy_entry
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER policy_entry_del AFTER DELETE ON policy_entry
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER policy_setting_ins AFTER INSERT ON policy_setting
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER policy_setting_upd AFTER UPDATE ON policy_setting
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER policy_setting_del AFTER DELETE ON policy_setting
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER dnsbl_site_ins AFTER INSERT ON dnsbl_site
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER dnsbl_site_upd AFTER UPDATE ON dnsbl_site
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER dnsbl_site_del AFTER DELETE ON dnsbl_site
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER dir_user_ins AFTER INSERT ON dir_user
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER dir_user_del AFTER DELETE ON dir_user
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER dir_address_ins AFTER INSERT ON dir_address
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER dir_address_del AFTER DELETE ON dir_address
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER dir_group_ins AFTER INSERT ON dir_group
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER dir_group_del AFTER DELETE ON dir_group
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER dir_group_member_ins AFTER INSERT ON dir_group_member
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER dir_group_member_del AFTER DELETE ON dir_group_member
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
