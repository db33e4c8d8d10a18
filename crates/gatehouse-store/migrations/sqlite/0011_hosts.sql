-- What real MCP hosts need: native apps' private-use redirect schemes, switchable per MCP
-- server (on by default).
ALTER TABLE resources ADD COLUMN private_use_redirects INTEGER NOT NULL DEFAULT 1;
