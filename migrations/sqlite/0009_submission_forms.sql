-- Submission forms already used (SQLite). Keep in step with migrations/postgres/0009_submission_forms.sql.
--
-- Every submission form carries a random key; its hash is written in the same transaction as
-- the tip, so that the same form sent twice (Reload on the receipt page, a double click, a
-- browser retrying) never stores a second tip. Nothing links a key to its tip, and keys are
-- deleted a day after use (the receipt page that could resend them has long expired by then).
CREATE TABLE submission_forms (
    key_hash BLOB    NOT NULL PRIMARY KEY,
    used_at  INTEGER NOT NULL
);
CREATE INDEX submission_forms_used_at ON submission_forms (used_at);
