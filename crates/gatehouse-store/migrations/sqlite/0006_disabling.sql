-- Operators can disable a client or a person without deleting them: a disabled client gets no
-- tokens, a disabled person cannot sign in. NULL means enabled. Disabling a client also
-- revokes every access token issued to it so far: `tokens_revoked_at` keeps that instant, also
-- after the client is enabled again.
ALTER TABLE clients ADD COLUMN disabled_at INTEGER;
ALTER TABLE clients ADD COLUMN tokens_revoked_at INTEGER;
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
