// A person in Debian's Chromium (Playwright) with a virtual authenticator (the DevTools
// protocol's WebAuthn domain: CTAP2, resident keys, user verification) uses passkeys on
// Gatehouse's real pages. Driven by test_sign_in_methods.py, one JSON line each way:
//
// argv[2]: {gatehouse, email, password, redirectUri}
// 1. Signs in with the password, adds a passkey on the account page, signs out.
//    → {"step": "registered", passkeys: [...], credentials: [...]}
// 2. Reads an authorization URL on stdin (the MCP Python SDK's), signs in there with the
//    passkey alone and allows. → {"step": "authorized", callback, signIn: {...}}
// 3. On "remove" from stdin: removes the passkey on the account page, signs out, and tries
//    the passkey again. → {"step": "removed", refused: "..."}
// Console errors and CSP violations are reported in every answer as `problems`.
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const input = JSON.parse(process.argv[2]);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const nextLine = async () => (await lines.next()).value;
const say = (o) => process.stdout.write(JSON.stringify({ ...o, problems }) + "\n");
const problems = [];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  page.on("pageerror", (e) => problems.push(String(e)));

  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  const credentials = async () =>
    (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials.map((c) => ({
      isResidentCredential: c.isResidentCredential,
      rpId: c.rpId,
      userHandle: c.userHandle,
      signCount: c.signCount,
    }));
  const signOut = async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Signed out" }).waitFor();
  };

  // The host's callback: nothing listens there; the browser's arrival is the result.
  let callback;
  await page.route(`${input.redirectUri}**`, async (route) => {
    callback = route.request().url();
    await route.fulfill({ status: 200, contentType: "text/plain", body: "back at the client" });
  });

  // 1. Add a passkey.
  await page.goto(`${input.gatehouse}/account`);
  await page.getByLabel("Email", { exact: true }).fill(input.email);
  await page.getByLabel("Password").fill(input.password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.getByRole("heading", { name: "Your account" }).waitFor();
  await page.getByLabel("Name of the new passkey").fill("Test laptop");
  await page.getByRole("button", { name: "Add a passkey" }).click();
  await page.getByText("Passkey added.").waitFor();
  const passkeys = await page.locator("ul.passkeys li strong").allInnerTexts();
  await signOut();
  say({ step: "registered", passkeys, credentials: await credentials() });

  // 2. Sign in with it where the MCP Python SDK sends the person, and allow.
  const authorizeUrl = await nextLine();
  await page.goto(authorizeUrl);
  const passkeyButton = page.getByRole("button", { name: "Sign in with a passkey" });
  await passkeyButton.waitFor();
  const signIn = {
    buttons: await page.locator("main button:visible").allInnerTexts(),
    hasPasswordField: (await page.locator("input[type=password]").count()) > 0,
  };
  await passkeyButton.click();
  const allow = page.getByRole("button", { name: "Allow" });
  await allow.waitFor();
  await allow.click();
  await page.waitForURL(`${input.redirectUri}**`);
  say({ step: "authorized", callback, signIn, credentials: await credentials() });

  // 3. Remove it; the authenticator still offers it, and Gatehouse refuses it.
  if ((await nextLine()) === "remove") {
    await page.goto(`${input.gatehouse}/account`);
    await page.getByRole("button", { name: "Remove Test laptop" }).click();
    await page.getByText("Passkey removed.").waitFor();
    await signOut();
    await page.goto(`${input.gatehouse}/login`);
    await page.getByRole("button", { name: "Sign in with a passkey" }).click();
    // The page the server answers with, its reason at the top (not the script's status line).
    const reason = page.locator("p.alert:not(.status)");
    await reason.waitFor();
    const refused = await reason.innerText();
    say({ step: "removed", refused });
  }
} finally {
  await browser.close();
}
