-- Two-way follow-up (PostgreSQL). Keep in step with migrations/sqlite/0004_followup.sql.
--
-- Items gain the kind 'reply' (the reviewers' copy of an analyst's reply to the source) and
-- `added_at`, the coarsened time an item was added after the tip itself (a source's follow-up,
-- a note, a reply; NULL for the items of the first submission).

ALTER TABLE items DROP CONSTRAINT items_kind_check;
ALTER TABLE items ADD CONSTRAINT items_kind_check
    CHECK (kind IN ('message', 'facts', 'attachment', 'note', 'reply'));
ALTER TABLE items ADD COLUMN added_at BIGINT;

-- The source's copy of a reply: sealed to the reply recipient derived from the receipt, and to
-- nobody else. Its id is that of the reviewers' copy (an item of kind 'reply'). When the source
-- deletes a reply, its copy is erased (`sealed` NULL) and the row stays, so analysts see that
-- it was read and deleted. Times are coarsened.
CREATE TABLE replies (
    id         TEXT    PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE,
    tip_id     TEXT    NOT NULL REFERENCES tips (id) ON DELETE CASCADE,
    created_at BIGINT  NOT NULL,
    sealed     BYTEA,
    read_at    BIGINT,
    deleted_at BIGINT
);
ALTER TABLE replies ALTER COLUMN sealed SET STORAGE EXTERNAL;
CREATE INDEX replies_by_tip ON replies (tip_id, created_at);
