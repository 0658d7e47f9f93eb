-- Triage: assignee and labels on tips, and which analyst has pulled which item (PostgreSQL).
-- Keep in step with migrations/sqlite/0003_triage.sql.

ALTER TABLE tips ADD COLUMN assignee_id BIGINT REFERENCES analysts (id) ON DELETE SET NULL;
CREATE INDEX tips_by_status ON tips (status, received_at, id);
CREATE INDEX tips_by_assignee ON tips (assignee_id, received_at, id);

CREATE TABLE tip_labels (
    tip_id TEXT NOT NULL REFERENCES tips (id) ON DELETE CASCADE,
    label  TEXT NOT NULL,
    PRIMARY KEY (tip_id, label)
);
CREATE INDEX tip_labels_by_label ON tip_labels (label, tip_id);

-- `tipbox review pull` fetches what this analyst has not pulled yet.
CREATE TABLE item_pulls (
    analyst_id BIGINT NOT NULL REFERENCES analysts (id) ON DELETE CASCADE,
    item_id    TEXT   NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    PRIMARY KEY (analyst_id, item_id)
);
