-- no-transaction
-- Reports (SQLite). Keep in step with migrations/postgres/0010_reports.sql.
--
-- Items gain the kind 'report': one of a source's sends sealed as one item, its message and its
-- facts together (src/report.rs), so that a text submission costs one age header instead of
-- two. Items stored before keep their kinds ('message' and 'facts'); readers accept both.
--
-- SQLite cannot change a CHECK constraint in place, so `items` is rebuilt as in
-- 0004_followup.sql (foreign keys off, so that dropping the old table does not cascade to the
-- sealed chunks, replies and pulls; hence no-transaction, with our own transaction).

PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

DROP TABLE IF EXISTS items_rebuilt;
CREATE TABLE items_rebuilt (
    id          TEXT    PRIMARY KEY,
    tip_id      TEXT    REFERENCES tips (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    kind        TEXT    NOT NULL
                CHECK (kind IN ('report', 'message', 'facts', 'attachment', 'note', 'reply')),
    size        INTEGER NOT NULL,
    key_set_id  INTEGER NOT NULL REFERENCES key_sets (id),
    staged_at   INTEGER,
    added_at    INTEGER,
    commitment  BLOB,
    replaced_at INTEGER,
    replaced_by TEXT
) WITHOUT ROWID;
INSERT INTO items_rebuilt (id, tip_id, position, kind, size, key_set_id, staged_at, added_at,
                           commitment, replaced_at, replaced_by)
    SELECT id, tip_id, position, kind, size, key_set_id, staged_at, added_at,
           commitment, replaced_at, replaced_by FROM items;
DROP TABLE items;
ALTER TABLE items_rebuilt RENAME TO items;
CREATE INDEX items_by_tip ON items (tip_id, position);
CREATE INDEX items_staged ON items (staged_at) WHERE tip_id IS NULL;
CREATE INDEX items_by_key_set ON items (key_set_id);

COMMIT;
PRAGMA foreign_keys = ON;
