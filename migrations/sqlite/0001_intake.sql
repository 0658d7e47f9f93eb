-- tipbox schema, SQLite. Keep in step with migrations/postgres/0001_intake.sql.
-- Nothing here identifies a source: no address, no user agent, no file name, no content type,
-- and times are coarsened before they are written.

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Reviewers' public keys. Retired keys stay, so that old key sets remain explainable.
CREATE TABLE reviewer_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT    NOT NULL UNIQUE,
    recipient   TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    label       TEXT    NOT NULL,
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    added_at    INTEGER NOT NULL,
    retired_at  INTEGER
);

-- A key set is the exact set of keys an item was sealed to; every item names one.
CREATE TABLE key_sets (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE key_set_members (
    key_set_id INTEGER NOT NULL REFERENCES key_sets (id),
    key_id     INTEGER NOT NULL REFERENCES reviewer_keys (id),
    PRIMARY KEY (key_set_id, key_id)
);

-- Tips are keyed by a random id, not by an arrival counter: with received times rounded,
-- nothing records the order in which tips arrived within the same period.
CREATE TABLE tips (
    id              TEXT    PRIMARY KEY,
    received_at     INTEGER NOT NULL,
    receipt_hash    BLOB    NOT NULL UNIQUE,
    reply_recipient TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'new'
) WITHOUT ROWID;
CREATE INDEX tips_by_received ON tips (received_at, id);

-- A sealed item: one standard age file. tip_id is NULL while a large attachment is still being
-- received (staged); the submission's single commit attaches it to its tip. Analysts' internal
-- notes are sealed items of kind 'note' on the tip they are about.
CREATE TABLE items (
    id         TEXT    PRIMARY KEY,
    tip_id     TEXT    REFERENCES tips (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('message', 'facts', 'attachment', 'note')),
    size       INTEGER NOT NULL,
    key_set_id INTEGER NOT NULL REFERENCES key_sets (id),
    staged_at  INTEGER
) WITHOUT ROWID;
CREATE INDEX items_by_tip ON items (tip_id, position);
CREATE INDEX items_staged ON items (staged_at) WHERE tip_id IS NULL;
CREATE INDEX items_by_key_set ON items (key_set_id);

-- The age ciphertext of an item, in order.
CREATE TABLE item_chunks (
    item_id TEXT    NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    data    BLOB    NOT NULL,
    PRIMARY KEY (item_id, seq)
) WITHOUT ROWID;
