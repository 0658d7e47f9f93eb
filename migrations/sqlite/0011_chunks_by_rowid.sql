-- no-transaction
-- Sealed chunks in a rowid table (SQLite). Keep in step with
-- migrations/postgres/0011_chunks_by_rowid.sql (nothing to do there).
--
-- `item_chunks` was a WITHOUT ROWID table: its rows live in an index b-tree keyed by the whole
-- row, and a chunk (up to 1 MiB) never fits in a page, so every search through it (an insert,
-- a read by (item_id, seq)) loaded the full ciphertext of each overflowing row it compared
-- with — several MiB read per 1 MiB written. SQLite's documentation advises WITHOUT ROWID only
-- for small rows. As a rowid table, searches go through the small (item_id, seq) index and the
-- integer rowid; the ciphertext is read only when asked for.
--
-- The table is rebuilt with foreign keys off (as in 0004), in our own transaction; nothing
-- refers to `item_chunks`, and its own reference to `items` is declared again.

PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

DROP TABLE IF EXISTS item_chunks_rebuilt;
CREATE TABLE item_chunks_rebuilt (
    item_id TEXT    NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    data    BLOB    NOT NULL,
    PRIMARY KEY (item_id, seq)
);
INSERT INTO item_chunks_rebuilt (item_id, seq, data)
    SELECT item_id, seq, data FROM item_chunks ORDER BY item_id, seq;
DROP TABLE item_chunks;
ALTER TABLE item_chunks_rebuilt RENAME TO item_chunks;

COMMIT;
PRAGMA foreign_keys = ON;
