-- no-transaction
-- Two-way follow-up (SQLite). Keep in step with migrations/postgres/0004_followup.sql.
--
-- Items gain the kind 'reply' (the reviewers' copy of an analyst's reply to the source) and
-- `added_at`, the coarsened time an item was added after the tip itself (a source's follow-up,
-- a note, a reply; NULL for the items of the first submission).
--
-- SQLite cannot change a CHECK constraint in place, so `items` is rebuilt (the documented
-- twelve-step procedure). It must run with foreign keys off — with them on, dropping the old
-- table would cascade to every sealed chunk — and `PRAGMA foreign_keys` cannot change inside a
-- transaction; hence no-transaction, with our own transaction around the rebuild.

PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

DROP TABLE IF EXISTS items_rebuilt;
CREATE TABLE items_rebuilt (
    id         TEXT    PRIMARY KEY,
    tip_id     TEXT    REFERENCES tips (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('message', 'facts', 'attachment', 'note', 'reply')),
    size       INTEGER NOT NULL,
    key_set_id INTEGER NOT NULL REFERENCES key_sets (id),
    staged_at  INTEGER,
    added_at   INTEGER
) WITHOUT ROWID;
INSERT INTO items_rebuilt (id, tip_id, position, kind, size, key_set_id, staged_at)
    SELECT id, tip_id, position, kind, size, key_set_id, staged_at FROM items;
DROP TABLE items;
ALTER TABLE items_rebuilt RENAME TO items;
CREATE INDEX items_by_tip ON items (tip_id, position);
CREATE INDEX items_staged ON items (staged_at) WHERE tip_id IS NULL;
CREATE INDEX items_by_key_set ON items (key_set_id);

-- The source's copy of a reply: sealed to the reply recipient derived from the receipt, and to
-- nobody else. Its id is that of the reviewers' copy (an item of kind 'reply'). When the source
-- deletes a reply, its copy is erased (`sealed` NULL; secure_delete overwrites it) and the row
-- stays, so analysts see that it was read and deleted. Times are coarsened.
CREATE TABLE IF NOT EXISTS replies (
    id         TEXT    PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE,
    tip_id     TEXT    NOT NULL REFERENCES tips (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    sealed     BLOB,
    read_at    INTEGER,
    deleted_at INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS replies_by_tip ON replies (tip_id, created_at);

COMMIT;
PRAGMA foreign_keys = ON;
