// The unmodified @scalekit-sdk/node validateToken against Gatehouse.
// Usage: node scalekit_validate.mjs ENV_URL CLIENT_ID CLIENT_SECRET TOKEN OPTIONS_JSON
// Prints {"ok":true,"claims":{…}} or {"ok":false,"error":"<class>","message":"…"}.
import { ScalekitClient } from "@scalekit-sdk/node";

const [envUrl, clientId, clientSecret, token, options] = process.argv.slice(2);
const client = new ScalekitClient(envUrl, clientId, clientSecret);
try {
  const claims = await client.validateToken(token, JSON.parse(options));
  const valid = await client.validateAccessToken(token, JSON.parse(options));
  console.log(JSON.stringify({ ok: true, valid, claims }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: e.constructor.name, message: String(e.message) }));
}
