-- The primary keys of settings and sessions are NOT NULL, as on PostgreSQL (SQLite lets a TEXT
-- or BLOB primary key of an ordinary table hold NULL unless told otherwise). SQLite cannot add
-- NOT NULL to a column: each table is rebuilt, keeping its rows.

CREATE TABLE settings_rebuilt (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO settings_rebuilt (name, value)
    SELECT name, value FROM settings WHERE name IS NOT NULL;
DROP TABLE settings;
ALTER TABLE settings_rebuilt RENAME TO settings;

CREATE TABLE sessions_rebuilt (
    token_hash   BLOB    NOT NULL PRIMARY KEY,
    analyst_id   INTEGER NOT NULL REFERENCES analysts (id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL CHECK (kind IN ('web', 'api')),
    csrf_hash    BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
INSERT INTO sessions_rebuilt
        (token_hash, analyst_id, kind, csrf_hash, created_at, last_seen_at, expires_at)
    SELECT token_hash, analyst_id, kind, csrf_hash, created_at, last_seen_at, expires_at
    FROM sessions WHERE token_hash IS NOT NULL;
DROP TABLE sessions;
ALTER TABLE sessions_rebuilt RENAME TO sessions;
CREATE INDEX sessions_by_analyst ON sessions (analyst_id);
