-- Server mail rules (docs/rules.md): one ordered set, evaluated at the end
-- of DATA in `position` order.  `definition` is the rule object as the API
-- carries it (name, enabled, when, except, action, comment); `name` and
-- `enabled` repeat two of its fields for listing.  Hit counts change with
-- mail, not with policy, so they do not bump the policy generation.
CREATE TABLE IF NOT EXISTS rule (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: logs and quarantine name rules by id
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    definition TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0,
    last_hit INTEGER
);
CREATE INDEX IF NOT EXISTS rule_position ON rule(position, id);

CREATE TRIGGER IF NOT EXISTS rule_ins AFTER INSERT ON rule
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS rule_upd AFTER UPDATE OF position, name, enabled, definition ON rule
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS rule_del AFTER DELETE ON rule
    BEGIN UPDATE policy_meta SET generation = generation + 1 WHERE id = 1; END;
