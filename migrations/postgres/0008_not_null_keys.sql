-- On SQLite, 0008 makes the primary keys of settings and sessions NOT NULL. PostgreSQL's
-- primary keys always are: nothing to change here (the migration keeps the two histories in
-- step).
SELECT 1;
