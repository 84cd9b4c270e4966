-- A key is published from creation but signs only from `activates_at`, so every
-- replica and every verifier's JWKS cache has it before the first token it signs.
-- Keys from before this migration have been signing all along.
ALTER TABLE signing_keys ADD COLUMN activates_at BIGINT NOT NULL DEFAULT 0;
