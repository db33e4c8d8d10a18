-- The audit log. Events name what they concern by id and are kept after it is deleted, so no
-- foreign keys. `seq` orders events and pages through them; AUTOINCREMENT never reuses one,
-- even after old events are pruned.
CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    event       TEXT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),
    resource_id TEXT,
    client_id   TEXT,
    user_id     TEXT,
    actor       TEXT,
    details     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_event ON audit_events (event, seq);
CREATE INDEX audit_events_resource ON audit_events (resource_id, seq);
CREATE INDEX audit_events_client ON audit_events (client_id, seq);
CREATE INDEX audit_events_user ON audit_events (user_id, seq);
