-- Administrators and their API keys. An API key acts as the administrator who created it,
-- with their rights at the time of each request; it is stored as a SHA-256 hash.
ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;

CREATE TABLE api_keys (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_hash TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX api_keys_by_user ON api_keys (user_id);
