-- Key rotation: a key is published when created and signs from `activates_at`. Keys made
-- before rotation existed signed from their creation.
ALTER TABLE signing_keys ADD COLUMN activates_at INTEGER NOT NULL DEFAULT 0;
UPDATE signing_keys SET activates_at = created_at;
