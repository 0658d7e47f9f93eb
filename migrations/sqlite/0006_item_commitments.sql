-- Item commitments, re-key marks and acknowledged key sets (SQLite). Keep in step with
-- migrations/postgres/0006_item_commitments.sql.

-- HMAC-SHA256 of an item's plaintext under a key sealed inside its submission (src/commitment.rs):
-- written once, at intake, and never changed, so that readers can check that a re-keyed item
-- still holds what was received. NULL for items received before commitments existed.
ALTER TABLE items ADD COLUMN commitment BLOB;
-- The last re-keying of an item (a new header or a fresh encryption): when (rounded like
-- received times) and by which analyst. NULL if it was never re-keyed.
ALTER TABLE items ADD COLUMN replaced_at INTEGER;
ALTER TABLE items ADD COLUMN replaced_by TEXT;

-- The key set an analyst last acknowledged on the desk; the queue page shows what changed
-- since. NULL: never acknowledged.
ALTER TABLE analysts ADD COLUMN seen_key_set INTEGER REFERENCES key_sets (id);
