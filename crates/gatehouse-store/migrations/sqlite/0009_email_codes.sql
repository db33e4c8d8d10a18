-- Sign-in codes sent by email. The code is stored only as a hash salted with the browser's
-- secret; the link's token and the browser's secret only as hashes.

CREATE TABLE email_challenges (
    id           TEXT    PRIMARY KEY,
    email        TEXT    NOT NULL,
    code_hash    TEXT    NOT NULL,
    link_hash    TEXT    NOT NULL,
    browser_hash TEXT    NOT NULL,
    return_to    TEXT    NOT NULL,
    resource_id  TEXT,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    used_at      INTEGER
);
CREATE INDEX email_challenges_by_email ON email_challenges (email, created_at);
CREATE INDEX email_challenges_by_expiry ON email_challenges (expires_at);
