-- Passkeys (WebAuthn credentials) and the ceremonies that add and use them. A passkey's
-- credential is its public key and signature counter: nothing secret is stored.

CREATE TABLE passkeys (
    id            TEXT    PRIMARY KEY,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    credential    TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX passkeys_by_user ON passkeys (user_id, created_at);

-- The WebAuthn state of a ceremony (its challenge) stays on the server, used once.
CREATE TABLE passkey_ceremonies (
    id           TEXT    PRIMARY KEY,
    purpose      TEXT    NOT NULL CHECK (purpose IN ('register', 'sign_in')),
    user_id      TEXT    REFERENCES users (id) ON DELETE CASCADE,
    state        TEXT    NOT NULL,
    browser_hash TEXT    NOT NULL,
    return_to    TEXT    NOT NULL,
    resource_id  TEXT,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER
);
CREATE INDEX passkey_ceremonies_by_expiry ON passkey_ceremonies (expires_at);
