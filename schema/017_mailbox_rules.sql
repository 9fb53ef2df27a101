-- 017: per-user mailbox rules (docs/mailbox-rules.md).
--
-- A rule set belongs to exactly one owner: an end user (for all of the
-- user's addresses) or a group (for the group's address).  Its rules run in
-- `position` order after the server rules, per recipient.  `definition` is
-- the rule object as the API carries it (name, enabled, when, except,
-- actions, comment); `name` and `enabled` repeat two of its fields for
-- listing and search.
--
-- Any change to a set's rules bumps the set's own `generation` (not the
-- policy generation): compiled sets are cached by (id, generation), and one
-- user's edit must not rebuild everybody's policy snapshot.  Hit counts
-- change with mail, not with the rules, so they bump nothing.
-- `has_refuse` is 1 when an enabled rule of the set can refuse; the writer
-- keeps it true in the same transaction as the change of rules.
CREATE TABLE IF NOT EXISTS mailbox_ruleset (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER UNIQUE REFERENCES dir_user(id) ON DELETE CASCADE,
    group_id    INTEGER UNIQUE REFERENCES dir_group(id) ON DELETE CASCADE,
    generation  INTEGER NOT NULL DEFAULT 1,
    has_refuse  INTEGER NOT NULL DEFAULT 0 CHECK (has_refuse IN (0, 1)),
    CHECK ((user_id IS NULL) <> (group_id IS NULL))
);

CREATE TABLE IF NOT EXISTS mailbox_rule (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: logs and quarantine name rules by id
    ruleset_id  INTEGER NOT NULL REFERENCES mailbox_ruleset(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    name        TEXT NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    definition  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,                   -- unix ms
    updated_at  INTEGER NOT NULL,                   -- unix ms
    hits        INTEGER NOT NULL DEFAULT 0,
    last_hit    INTEGER                             -- unix ms; NULL: never
);
CREATE INDEX IF NOT EXISTS mailbox_rule_position ON mailbox_rule(ruleset_id, position, id);

CREATE TRIGGER IF NOT EXISTS mailbox_rule_ins AFTER INSERT ON mailbox_rule
    BEGIN UPDATE mailbox_ruleset SET generation = generation + 1 WHERE id = NEW.ruleset_id; END;
CREATE TRIGGER IF NOT EXISTS mailbox_rule_upd AFTER UPDATE OF position, name, enabled, definition ON mailbox_rule
    BEGIN UPDATE mailbox_ruleset SET generation = generation + 1 WHERE id = NEW.ruleset_id; END;
CREATE TRIGGER IF NOT EXISTS mailbox_rule_del AFTER DELETE ON mailbox_rule
    BEGIN UPDATE mailbox_ruleset SET generation = generation + 1 WHERE id = OLD.ruleset_id; END;
