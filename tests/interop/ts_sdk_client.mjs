// The TypeScript MCP SDK client with its own OAuth (an in-memory OAuthClientProvider), driven
// by test_oauth_node_clients.py: it prints {"authorize": url} when the SDK sends the person away,
// reads the callback URL the person came back to on stdin, finishes the flow, calls tools and
// prints {"tools": [...], "created": {...}, "tokens": {...}, "client": {...}}.
//
// With PRELOAD (JSON {"client": …, "tokens": …}: a grant from an earlier session), it starts
// from those instead and calls create_todo first: the server's 403 insufficient_scope makes the
// SDK authorize again (step-up), which prints {"authorize": url} the same way.
//
// Usage: node ts_sdk_client.mjs MCP_URL REDIRECT_URI
import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";

const [mcpUrl, redirectUri] = process.argv.slice(2);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

class MemoryProvider {
  constructor() {
    this.saved = {};
  }
  get redirectUrl() {
    return redirectUri;
  }
  get clientMetadata() {
    return {
      client_name: "ts-sdk interop",
      redirect_uris: [redirectUri],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  state() {
    return "ts-state-" + Math.random().toString(36).slice(2);
  }
  clientInformation() {
    return this.saved.client;
  }
  saveClientInformation(info) {
    this.saved.client = info;
  }
  tokens() {
    return this.saved.tokens;
  }
  saveTokens(tokens) {
    this.saved.tokens = tokens;
  }
  redirectToAuthorization(url) {
    say({ authorize: url.toString() });
  }
  saveCodeVerifier(v) {
    this.saved.verifier = v;
  }
  codeVerifier() {
    return this.saved.verifier;
  }
}

const provider = new MemoryProvider();
const connect = async () => {
  const client = new Client({ name: "ts-sdk interop", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
  await client.connect(transport);
  return { client, transport };
};

const create = (client, title) => client.callTool({ name: "create_todo", arguments: { title } });

if (process.env.PRELOAD) {
  Object.assign(provider.saved, JSON.parse(process.env.PRELOAD));
  const { client } = await connect();
  const before = (await client.callTool({ name: "list_todos", arguments: {} })).isError;
  try {
    await create(client, "with a read-only token");
    throw new Error("wrote with a read-only token");
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
  }
  if (before) throw new Error("list_todos failed with the read-only token");
} else {
  try {
    await connect();
    throw new Error("connected without signing in");
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
  }
}
const callback = new URL((await lines.next()).value);
const code = callback.searchParams.get("code");
if (!code) throw new Error(`no code in ${callback}`);
const finishing = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
await finishing.finishAuth(code);

const { client } = await connect();
const tools = (await client.listTools()).tools.map((t) => t.name).sort();
const created = await create(client, "from typescript");
if (created.isError) throw new Error(JSON.stringify(created));
say({
  tools,
  created: JSON.parse(created.content[0].text),
  tokens: provider.saved.tokens,
  client: provider.saved.client,
});
await client.close();
process.exit(0);
