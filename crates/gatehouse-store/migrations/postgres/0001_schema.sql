-- Gatehouse on PostgreSQL: the schema SQLite reaches through its migrations 0001 to 0010, in
-- one step. Later changes get a migration here and one in ../sqlite, each in its dialect.
-- Times are Unix seconds (BIGINT). Secrets are stored only as SHA-256 hashes. `seq` columns
-- keep insertion order for listings.

-- Moves on every change to resources, clients or keys; caches in every node compare it.
CREATE TABLE change_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT  NOT NULL
);
INSERT INTO change_version (id, version) VALUES (1, 0);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL -- JSON
);

CREATE TABLE resources (
    seq                  BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                   TEXT    NOT NULL UNIQUE,
    name                 TEXT    NOT NULL,
    url                  TEXT    NOT NULL,
    url_key              TEXT    NOT NULL UNIQUE, -- canonical form of url
    scopes               TEXT    NOT NULL,        -- JSON array of {name, description}
    token_ttl            BIGINT  NOT NULL,
    signing_alg          TEXT    NOT NULL,
    dynamic_registration BOOLEAN NOT NULL,
    metadata_documents   BOOLEAN NOT NULL,
    refresh_tokens       TEXT    NOT NULL,
    sign_in_methods      TEXT,                    -- JSON array; NULL: the defaults
    created_at           BIGINT  NOT NULL
);

CREATE TABLE clients (
    seq                     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                      TEXT   NOT NULL UNIQUE,
    resource_id             TEXT   REFERENCES resources (id) ON DELETE CASCADE,
    name                    TEXT   NOT NULL,
    kind                    TEXT   NOT NULL,
    secret_hash             TEXT,                 -- NULL for public clients
    scopes                  TEXT   NOT NULL,      -- space-delimited
    redirect_uris           TEXT   NOT NULL DEFAULT '[]', -- JSON array
    auth_method             TEXT   NOT NULL DEFAULT 'client_secret_basic',
    metadata                TEXT   NOT NULL DEFAULT '{}', -- JSON object, as registered
    registration_token_hash TEXT,
    created_at              BIGINT NOT NULL,
    last_used_at            BIGINT,
    disabled_at             BIGINT,
    tokens_revoked_at       BIGINT
);
CREATE INDEX clients_by_resource ON clients (resource_id);

CREATE TABLE signing_keys (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kid           TEXT   NOT NULL UNIQUE,
    alg           TEXT   NOT NULL,
    private_pkcs8 BYTEA  NOT NULL,
    created_at    BIGINT NOT NULL,
    activates_at  BIGINT NOT NULL
);

CREATE TABLE revoked_tokens (
    jti         TEXT   PRIMARY KEY,
    resource_id TEXT   NOT NULL,
    client_id   TEXT   NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_by_resource ON revoked_tokens (resource_id, revoked_at);

CREATE TABLE revoked_clients (
    client_id   TEXT   PRIMARY KEY,
    resource_id TEXT,
    revoked_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX revoked_clients_by_time ON revoked_clients (revoked_at);

CREATE TABLE users (
    seq           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            TEXT    NOT NULL UNIQUE,
    email         TEXT    NOT NULL UNIQUE, -- lower-cased
    password_hash TEXT    NOT NULL,        -- argon2id PHC string
    created_at    BIGINT  NOT NULL,
    admin         BOOLEAN NOT NULL DEFAULT FALSE,
    disabled_at   BIGINT
);

CREATE TABLE api_keys (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY,
    id          TEXT   PRIMARY KEY,
    name        TEXT   NOT NULL,
    user_id     TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_hash TEXT   NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX api_keys_by_user ON api_keys (user_id);

CREATE TABLE sessions (
    hash         TEXT   PRIMARY KEY,
    user_id      TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    method       TEXT   NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE consents (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY,
    user_id     TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id   TEXT   NOT NULL, -- a URL for metadata-document clients, so no foreign key
    resource_id TEXT   NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    scopes      TEXT   NOT NULL,
    granted_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id, resource_id)
);
CREATE INDEX consents_by_client ON consents (client_id);

CREATE TABLE grants (
    id          TEXT   PRIMARY KEY,
    client_id   TEXT   NOT NULL,
    user_id     TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    resource_id TEXT   NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    issuer      TEXT   NOT NULL,
    scopes      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX grants_by_client ON grants (client_id);
CREATE INDEX grants_by_user ON grants (user_id);

CREATE TABLE authorization_codes (
    hash              TEXT    PRIMARY KEY,
    grant_id          TEXT    NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    redirect_uri      TEXT    NOT NULL,
    redirect_uri_sent BOOLEAN NOT NULL,
    challenge         TEXT    NOT NULL,
    expires_at        BIGINT  NOT NULL,
    used_at           BIGINT
);
CREATE INDEX authorization_codes_by_grant ON authorization_codes (grant_id);

CREATE TABLE grant_access_tokens (
    jti        TEXT   PRIMARY KEY,
    grant_id   TEXT   NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);
CREATE INDEX grant_access_tokens_by_grant ON grant_access_tokens (grant_id);

CREATE TABLE refresh_tokens (
    hash               TEXT   PRIMARY KEY,
    grant_id           TEXT   NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    rotated_at         BIGINT,
    retry_request_hash TEXT,
    retry_sealed       BYTEA  -- the answer to an identical retry, sealed with the token
);
CREATE INDEX refresh_tokens_by_grant ON refresh_tokens (grant_id);

-- The audit log: events name what they concern by id and are kept after it is deleted, so no
-- foreign keys.
CREATE TABLE audit_events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,
    event       TEXT   NOT NULL,
    outcome     TEXT   NOT NULL CHECK (outcome IN ('success', 'failure')),
    resource_id TEXT,
    client_id   TEXT,
    user_id     TEXT,
    actor       TEXT,
    details     TEXT   NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_event ON audit_events (event, seq);
CREATE INDEX audit_events_resource ON audit_events (resource_id, seq);
CREATE INDEX audit_events_client ON audit_events (client_id, seq);
CREATE INDEX audit_events_user ON audit_events (user_id, seq);

CREATE TABLE connections (
    seq             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT    NOT NULL UNIQUE,
    name            TEXT    NOT NULL,
    config          TEXT    NOT NULL, -- JSON, tagged by "kind"
    allowed_domains TEXT    NOT NULL DEFAULT '[]', -- JSON array
    enabled         BOOLEAN NOT NULL DEFAULT TRUE,
    created_at      BIGINT  NOT NULL
);

CREATE TABLE login_requests (
    id            TEXT   PRIMARY KEY,
    connection_id TEXT   NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    state_hash    TEXT   NOT NULL,
    browser_hash  TEXT   NOT NULL,
    return_to     TEXT   NOT NULL,
    resource_id   TEXT,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    profile       TEXT, -- JSON, once the other system said who signed in
    used_at       BIGINT
);
CREATE INDEX login_requests_by_expiry ON login_requests (expires_at);

CREATE TABLE identities (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY,
    connection_id TEXT   NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    subject       TEXT   NOT NULL,
    user_id       TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    profile       TEXT   NOT NULL, -- JSON
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT NOT NULL,
    PRIMARY KEY (connection_id, subject)
);
CREATE INDEX identities_by_user ON identities (user_id);

CREATE TABLE email_challenges (
    id           TEXT   PRIMARY KEY,
    email        TEXT   NOT NULL,
    code_hash    TEXT   NOT NULL,
    link_hash    TEXT   NOT NULL,
    browser_hash TEXT   NOT NULL,
    return_to    TEXT   NOT NULL,
    resource_id  TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    used_at      BIGINT
);
CREATE INDEX email_challenges_by_email ON email_challenges (email, created_at);
CREATE INDEX email_challenges_by_expiry ON email_challenges (expires_at);

CREATE TABLE passkeys (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY,
    id            TEXT   PRIMARY KEY,
    user_id       TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id TEXT   NOT NULL UNIQUE,
    name          TEXT   NOT NULL,
    credential    TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX passkeys_by_user ON passkeys (user_id, created_at);

CREATE TABLE passkey_ceremonies (
    id           TEXT   PRIMARY KEY,
    purpose      TEXT   NOT NULL CHECK (purpose IN ('register', 'sign_in')),
    user_id      TEXT   REFERENCES users (id) ON DELETE CASCADE,
    state        TEXT   NOT NULL,
    browser_hash TEXT   NOT NULL,
    return_to    TEXT   NOT NULL,
    resource_id  TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT
);
CREATE INDEX passkey_ceremonies_by_expiry ON passkey_ceremonies (expires_at);
