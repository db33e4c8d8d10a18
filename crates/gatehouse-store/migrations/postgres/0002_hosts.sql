-- What real MCP hosts need: native apps' private-use redirect schemes, switchable per MCP
-- server (on by default).
ALTER TABLE resources ADD COLUMN private_use_redirects BOOLEAN NOT NULL DEFAULT TRUE;

-- private_key_jwt: each client assertion is used once (RFC 7523 §3), remembered until it
-- expires so that every node agrees.
CREATE TABLE client_assertions (
    client_id  TEXT   NOT NULL,
    jti        TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertions_expiry ON client_assertions (expires_at);

-- Registrations that never got a token are now deleted after a day. Nothing recorded the
-- first use of a registration before this, so every registration that exists keeps the
-- inactivity rule it registered under: its first use is taken to be its creation.
UPDATE clients SET last_used_at = created_at
WHERE kind = 'registered' AND last_used_at IS NULL;
