// The TypeScript MCP SDK client with its own OAuth (an in-memory OAuthClientProvider), driven
// by test_oauth_node_clients.py: it prints {"authorize": url} when the SDK sends the person away,
// reads the callback URL the person came back to on stdin, finishes the flow, calls tools and
// prints {"tools": [...], "created": {...}, "tokens": {...}, "client": {...}}.
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

try {
  await connect();
  throw new Error("connected without signing in");
} catch (e) {
  if (!(e instanceof UnauthorizedError)) throw e;
}
const callback = new URL((await lines.next()).value);
const code = callback.searchParams.get("code");
if (!code) throw new Error(`no code in ${callback}`);
const finishing = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
await finishing.finishAuth(code);

const { client } = await connect();
const tools = (await client.listTools()).tools.map((t) => t.name).sort();
const created = await client.callTool({ name: "create_todo", arguments: { title: "from typescript" } });
if (created.isError) throw new Error(JSON.stringify(created));
say({
  tools,
  created: JSON.parse(created.content[0].text),
  tokens: provider.saved.tokens,
  client: provider.saved.client,
});
await client.close();
process.exit(0);
