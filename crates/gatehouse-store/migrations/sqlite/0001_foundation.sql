-- Gatehouse schema 1: MCP servers, clients, signing keys, revoked tokens.
-- Times are Unix seconds. Secrets are stored only as SHA-256 hashes.

-- Moves on every change to resources, clients or keys; caches in every process compare it.
CREATE TABLE change_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO change_version (id, version) VALUES (1, 0);

CREATE TABLE resources (
    seq                  INTEGER PRIMARY KEY AUTOINCREMENT,
    id                   TEXT    NOT NULL UNIQUE,
    name                 TEXT    NOT NULL,
    url                  TEXT    NOT NULL,
    url_key              TEXT    NOT NULL UNIQUE, -- canonical form of url
    scopes               TEXT    NOT NULL,        -- JSON array of {name, description}
    token_ttl            INTEGER NOT NULL,
    signing_alg          TEXT    NOT NULL,
    dynamic_registration INTEGER NOT NULL,
    metadata_documents   INTEGER NOT NULL,
    created_at           INTEGER NOT NULL
);

CREATE TABLE clients (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT    NOT NULL UNIQUE,
    resource_id TEXT    NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    secret_hash TEXT,                             -- NULL for public clients
    scopes      TEXT    NOT NULL,                 -- space-delimited
    created_at  INTEGER NOT NULL
);
CREATE INDEX clients_by_resource ON clients (resource_id);

CREATE TABLE signing_keys (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    kid           TEXT    NOT NULL UNIQUE,
    alg           TEXT    NOT NULL,
    private_pkcs8 BLOB    NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE revoked_tokens (
    jti         TEXT    PRIMARY KEY,
    resource_id TEXT    NOT NULL,
    client_id   TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER NOT NULL
);
CREATE INDEX revoked_tokens_by_resource ON revoked_tokens (resource_id, revoked_at);
