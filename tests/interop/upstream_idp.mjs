// A real upstream OpenID Connect provider for the sign-in tests: node-oidc-provider on
// loopback, with two people and its built-in development login and consent pages.
//
//   node upstream_idp.mjs '{"port": 4000, "redirect_uri": "...", "client_secret": "..."}'
//
// GET /__test/mode/{ok|wrong_nonce|wrong_aud|expired} makes the token endpoint hand out an ID
// token with that one flaw, re-signed with the provider's own key, so that only the check
// under test can catch it (a real provider never does this on purpose; a compromised or
// misconfigured one might).

import { Provider } from "oidc-provider";
import { SignJWT, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK } from "jose";

const opts = JSON.parse(process.argv[2]);
const issuer = `http://127.0.0.1:${opts.port}`;

const { privateKey } = await generateKeyPair("RS256", { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: "idp-key-1", alg: "RS256", use: "sig" };
const signingKey = await importJWK(jwk, "RS256");

const people = {
  grace: { sub: "grace-0001", email: "grace@idp.test", email_verified: true, name: "Grace Hopper", given_name: "Grace", family_name: "Hopper" },
  mallory: { sub: "mallory-0002", email: "mallory@idp.test", email_verified: false, name: "Mallory" },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: "gatehouse",
    client_secret: opts.client_secret,
    redirect_uris: [opts.redirect_uri],
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
  }],
  jwks: { keys: [jwk] },
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name", "given_name", "family_name"] },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    const person = people[id];
    if (!person) return undefined;
    return { accountId: id, claims: async () => ({ ...person }) };
  },
});

let mode = "ok";

provider.use(async (ctx, next) => {
  const m = ctx.path.match(/^\/__test\/mode\/(ok|wrong_nonce|wrong_aud|expired)$/);
  if (m) {
    mode = m[1];
    ctx.body = { mode };
    return;
  }
  await next();
  if (ctx.path === "/token" && mode !== "ok" && ctx.body && ctx.body.id_token) {
    const claims = decodeJwt(ctx.body.id_token);
    const header = decodeProtectedHeader(ctx.body.id_token);
    const now = Math.floor(Date.now() / 1000);
    if (mode === "wrong_nonce") claims.nonce = "a-nonce-from-another-sign-in";
    if (mode === "wrong_aud") claims.aud = "another-client";
    if (mode === "expired") { claims.iat = now - 7200; claims.exp = now - 3600; }
    ctx.body = { ...ctx.body, id_token: await new SignJWT(claims).setProtectedHeader(header).sign(signingKey) };
  }
});

provider.listen(opts.port, "127.0.0.1", () => {
  console.log(`upstream idp at ${issuer}`);
});
