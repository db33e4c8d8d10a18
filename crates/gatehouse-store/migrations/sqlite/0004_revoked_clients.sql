-- Clients deleted while tokens issued to them may still be unexpired: MCP servers read them
-- from the revocation feed and refuse those tokens. A row can go once every token the client
-- could hold has expired (`expires_at`). `resource_id` is NULL for a client registered at the
-- root issuer, whose tokens may be for any MCP server.
CREATE TABLE revoked_clients (
    client_id   TEXT    PRIMARY KEY,
    resource_id TEXT,
    revoked_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX revoked_clients_by_time ON revoked_clients (revoked_at);
