-- Analyst accounts, their sessions, and the tamper-evident audit trail (SQLite).
-- Keep in step with migrations/postgres/0002_analysts.sql.

CREATE TABLE analysts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    username        TEXT    NOT NULL UNIQUE,
    role            TEXT    NOT NULL CHECK (role IN ('admin', 'analyst')),
    -- argon2id PHC string.
    password_hash   TEXT    NOT NULL,
    -- The TOTP secret, sealed with a subkey of the server secret (XChaCha20-Poly1305).
    totp_secret     BLOB    NOT NULL,
    -- The last TOTP time step accepted: a code is never accepted twice.
    totp_last_step  INTEGER NOT NULL DEFAULT 0,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until    INTEGER NOT NULL DEFAULT 0,
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      INTEGER NOT NULL
);

-- Sessions are found by the SHA-256 of their random 256-bit token; the token itself is only
-- ever in the analyst's cookie or client.
CREATE TABLE sessions (
    token_hash   BLOB    PRIMARY KEY,
    analyst_id   INTEGER NOT NULL REFERENCES analysts (id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL CHECK (kind IN ('web', 'api')),
    csrf_hash    BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_by_analyst ON sessions (analyst_id);

-- Append-only; each entry's hash covers the previous entry's hash (see src/audit.rs).
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    subject   TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);
