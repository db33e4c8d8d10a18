-- Gatehouse schema 2: people sign in. Self-registered clients, users, sessions, consents,
-- grants with their authorization codes, access-token records and refresh tokens.
-- Codes, refresh tokens, session ids and registration tokens are stored only as SHA-256.

ALTER TABLE resources ADD COLUMN refresh_tokens TEXT NOT NULL DEFAULT 'offline_access';

-- Clients may now be bound to no MCP server (registered at the root issuer), so the table
-- is rebuilt with a nullable resource_id.
CREATE TABLE clients_v2 (
    seq                     INTEGER PRIMARY KEY AUTOINCREMENT,
    id                      TEXT    NOT NULL UNIQUE,
    resource_id             TEXT    REFERENCES resources (id) ON DELETE CASCADE,
    name                    TEXT    NOT NULL,
    kind                    TEXT    NOT NULL,
    secret_hash             TEXT,                 -- NULL for public clients
    scopes                  TEXT    NOT NULL,     -- space-delimited
    redirect_uris           TEXT    NOT NULL DEFAULT '[]', -- JSON array
    auth_method             TEXT    NOT NULL DEFAULT 'client_secret_basic',
    metadata                TEXT    NOT NULL DEFAULT '{}', -- JSON object, as registered
    registration_token_hash TEXT,
    created_at              INTEGER NOT NULL,
    last_used_at            INTEGER
);
INSERT INTO clients_v2 (seq, id, resource_id, name, kind, secret_hash, scopes, created_at)
    SELECT seq, id, resource_id, name, kind, secret_hash, scopes, created_at FROM clients;
DROP TABLE clients;
ALTER TABLE clients_v2 RENAME TO clients;
CREATE INDEX clients_by_resource ON clients (resource_id);

CREATE TABLE users (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT    NOT NULL UNIQUE,
    email         TEXT    NOT NULL UNIQUE, -- lower-cased
    password_hash TEXT    NOT NULL,        -- argon2id PHC string
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    hash         TEXT    PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE consents (
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id   TEXT    NOT NULL, -- a URL for metadata-document clients, so no foreign key
    resource_id TEXT    NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    scopes      TEXT    NOT NULL,
    granted_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id, resource_id)
);
CREATE INDEX consents_by_client ON consents (client_id);

CREATE TABLE grants (
    id          TEXT    PRIMARY KEY,
    client_id   TEXT    NOT NULL,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    resource_id TEXT    NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    issuer      TEXT    NOT NULL,
    scopes      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX grants_by_client ON grants (client_id);
CREATE INDEX grants_by_user ON grants (user_id);

CREATE TABLE authorization_codes (
    hash              TEXT    PRIMARY KEY,
    grant_id          TEXT    NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    redirect_uri      TEXT    NOT NULL,
    redirect_uri_sent INTEGER NOT NULL,
    challenge         TEXT    NOT NULL,
    expires_at        INTEGER NOT NULL,
    used_at           INTEGER
);
CREATE INDEX authorization_codes_by_grant ON authorization_codes (grant_id);

CREATE TABLE grant_access_tokens (
    jti        TEXT    PRIMARY KEY,
    grant_id   TEXT    NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
);
CREATE INDEX grant_access_tokens_by_grant ON grant_access_tokens (grant_id);

CREATE TABLE refresh_tokens (
    hash               TEXT    PRIMARY KEY,
    grant_id           TEXT    NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    rotated_at         INTEGER,
    retry_request_hash TEXT,
    retry_sealed       BLOB    -- the answer to an identical retry, sealed with the token
);
CREATE INDEX refresh_tokens_by_grant ON refresh_tokens (grant_id);
