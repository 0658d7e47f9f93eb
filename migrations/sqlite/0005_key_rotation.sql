-- Key rotation (SQLite): key history, the keyring's version, and which key sets need
-- re-keying. Keep in step with migrations/postgres/0005_key_rotation.sql.

-- Who holds a key (optional, in clear like the label), and when it was revoked: a revoked key
-- is one that must be assumed to be in someone else's hands.
ALTER TABLE reviewer_keys ADD COLUMN owner TEXT;
ALTER TABLE reviewer_keys ADD COLUMN revoked_at INTEGER;

-- A key set never changes its members. Once one of them is retired or revoked, items sealed
-- to the set should be re-keyed (retired_at); once one is revoked, nothing new may be sealed
-- to it and its items need a fresh file key, not only a new header (revoked_at).
ALTER TABLE key_sets ADD COLUMN retired_at INTEGER;
ALTER TABLE key_sets ADD COLUMN revoked_at INTEGER;

UPDATE key_sets SET retired_at = (
    SELECT MIN(COALESCE(k.retired_at, 0)) FROM key_set_members m
    JOIN reviewer_keys k ON k.id = m.key_id
    WHERE m.key_set_id = key_sets.id AND k.active = FALSE
) WHERE EXISTS (
    SELECT 1 FROM key_set_members m JOIN reviewer_keys k ON k.id = m.key_id
    WHERE m.key_set_id = key_sets.id AND k.active = FALSE
);

-- The keyring's one row: the key set every new item is sealed to, and a version that every
-- key change increments in the same transaction. Nodes read it (one primary-key lookup) at
-- the start of each submission. Version 0: not yet computed (tipbox does it when it opens
-- the database).
CREATE TABLE keyring (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    version    INTEGER NOT NULL,
    key_set_id INTEGER REFERENCES key_sets (id),
    changed_at INTEGER NOT NULL
);
INSERT INTO keyring (id, version, key_set_id, changed_at) VALUES (1, 0, NULL, 0);
