-- Portable between SQLite and PostgreSQL: TEXT ids, BIGINT Unix seconds, no BLOBs.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    -- Stored lower-cased; unique case-insensitively by construction.
    email         TEXT NOT NULL UNIQUE,
    -- Stored lower-cased; [a-z0-9._-].
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    -- PHC string (argon2id); never leaves this service.
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Rotating refresh tokens, stored only as SHA-256 hashes. A family is one login;
-- presenting a token that was already rotated revokes its whole family.
CREATE TABLE refresh_tokens (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    family_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    revoked_at BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- Ed25519 signing keys (PKCS#8, base64). The newest unretired key signs; retired
-- keys stay published until every token they signed has expired.
CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    private_key TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);
