-- Triage: assignee and labels on tips, and which analyst has pulled which item (SQLite).
-- Keep in step with migrations/postgres/0003_triage.sql.

ALTER TABLE tips ADD COLUMN assignee_id INTEGER REFERENCES analysts (id) ON DELETE SET NULL;
CREATE INDEX tips_by_status ON tips (status, received_at, id);
CREATE INDEX tips_by_assignee ON tips (assignee_id, received_at, id);

CREATE TABLE tip_labels (
    tip_id TEXT NOT NULL REFERENCES tips (id) ON DELETE CASCADE,
    label  TEXT NOT NULL,
    PRIMARY KEY (tip_id, label)
) WITHOUT ROWID;
CREATE INDEX tip_labels_by_label ON tip_labels (label, tip_id);

-- `tipbox review pull` fetches what this analyst has not pulled yet.
CREATE TABLE item_pulls (
    analyst_id INTEGER NOT NULL REFERENCES analysts (id) ON DELETE CASCADE,
    item_id    TEXT    NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    PRIMARY KEY (analyst_id, item_id)
) WITHOUT ROWID;
