-- Sign-in methods: the operator's default policy, connections to other systems that sign
-- people in (bring your own auth, upstream OpenID Connect), login requests through them, and
-- the identities they link to people. Sessions remember how they were started, and an MCP
-- server may name its own sign-in methods.

ALTER TABLE resources ADD COLUMN sign_in_methods TEXT; -- JSON array; NULL: the defaults
ALTER TABLE sessions ADD COLUMN method TEXT NOT NULL DEFAULT 'password';

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL -- JSON
);

CREATE TABLE connections (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    name            TEXT    NOT NULL,
    config          TEXT    NOT NULL, -- JSON, tagged by "kind"
    allowed_domains TEXT    NOT NULL DEFAULT '[]', -- JSON array
    enabled         INTEGER NOT NULL DEFAULT 1,
    created_at      INTEGER NOT NULL
);

CREATE TABLE login_requests (
    id            TEXT    PRIMARY KEY,
    connection_id TEXT    NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    state_hash    TEXT    NOT NULL,
    browser_hash  TEXT    NOT NULL,
    return_to     TEXT    NOT NULL,
    resource_id   TEXT,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    profile       TEXT, -- JSON, once the other system said who signed in
    used_at       INTEGER
);
CREATE INDEX login_requests_by_expiry ON login_requests (expires_at);

CREATE TABLE identities (
    connection_id TEXT    NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    subject       TEXT    NOT NULL,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    profile       TEXT    NOT NULL, -- JSON
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER NOT NULL,
    PRIMARY KEY (connection_id, subject)
);
CREATE INDEX identities_by_user ON identities (user_id);
