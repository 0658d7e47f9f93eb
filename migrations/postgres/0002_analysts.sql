-- Analyst accounts, their sessions, and the tamper-evident audit trail (PostgreSQL).
-- Keep in step with migrations/sqlite/0002_analysts.sql.

CREATE TABLE analysts (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username        TEXT    NOT NULL UNIQUE,
    role            TEXT    NOT NULL CHECK (role IN ('admin', 'analyst')),
    -- argon2id PHC string.
    password_hash   TEXT    NOT NULL,
    -- The TOTP secret, sealed with a subkey of the server secret (XChaCha20-Poly1305).
    totp_secret     BYTEA   NOT NULL,
    -- The last TOTP time step accepted: a code is never accepted twice.
    totp_last_step  BIGINT  NOT NULL DEFAULT 0,
    failed_attempts BIGINT  NOT NULL DEFAULT 0,
    locked_until    BIGINT  NOT NULL DEFAULT 0,
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT  NOT NULL
);

-- Sessions are found by the SHA-256 of their random 256-bit token; the token itself is only
-- ever in the analyst's cookie or client.
CREATE TABLE sessions (
    token_hash   BYTEA   PRIMARY KEY,
    analyst_id   BIGINT  NOT NULL REFERENCES analysts (id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL CHECK (kind IN ('web', 'api')),
    csrf_hash    BYTEA   NOT NULL,
    created_at   BIGINT  NOT NULL,
    last_seen_at BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL
);
CREATE INDEX sessions_by_analyst ON sessions (analyst_id);

-- Append-only; each entry's hash covers the previous entry's hash (see src/audit.rs).
CREATE TABLE audit_log (
    seq       BIGINT  PRIMARY KEY,
    at        BIGINT  NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    subject   TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);
