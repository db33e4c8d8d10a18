// An administrator in Debian's Chromium (Playwright) works through the dashboard. Driven by
// test_browser.py. Input (argv[2], JSON): {base, email, password, consentServer, shots}.
// Output (stdout, JSON): what the pages showed, the agent secret, any console errors.
import { chromium } from "playwright-core";

const input = JSON.parse(process.argv[2]);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const shot = (page, name) => page.screenshot({ path: `${input.shots}/dashboard-${name}.png`, fullPage: true });
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  page.on("pageerror", (e) => problems.push(String(e)));
  const seen = {};

  // Sign in through the redirect from /admin.
  await page.goto(`${input.base}/admin`);
  await page.getByLabel("Email").fill(input.email);
  await page.getByLabel("Password").fill(input.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "MCP servers" }).waitFor();
  await shot(page, "servers");

  // Register an MCP server.
  await page.locator("#name").fill("Calendar");
  await page.locator("#url").fill("https://calendar.example/mcp");
  await page.locator("#scopes").fill("calendar:read=See your calendar\ncalendar:write=Change your calendar");
  await page.getByRole("button", { name: "Register" }).click();
  await page.getByRole("heading", { name: "Calendar" }).waitFor();
  seen.serverUrl = page.url();
  seen.prm = await page.locator("pre.copy").first().innerText();
  await shot(page, "server");

  // An agent client for it: the secret is shown once.
  await page.getByLabel("New agent client").fill("nightly report");
  await page.getByPlaceholder("scopes, space-separated").fill("calendar:read");
  await page.getByRole("button", { name: "Create" }).click();
  await page.getByRole("heading", { name: "Agent client created" }).waitFor();
  seen.agentSecret = await page.locator("#secret").innerText();
  seen.agentFacts = await page.locator("dl.facts").innerText();
  await shot(page, "agent-secret");

  // Revoke the person's consent at the to-do server.
  await page.goto(`${input.base}/admin/servers/${input.consentServer}`);
  const consents = page.locator("#consents + div table tbody tr");
  seen.consentsBefore = await consents.count();
  await shot(page, "consents");
  await consents.first().getByRole("button", { name: "Revoke" }).click();
  await page.getByRole("heading", { name: "Consents" }).waitFor();
  seen.consentsAfter = await page.locator("#consents + div table tbody tr").count();

  // People and keys, and the audit log.
  await page.getByRole("link", { name: "People & API keys" }).click();
  await page.getByRole("heading", { name: "People" }).waitFor();
  await shot(page, "people");
  // A person's page: sessions, new password, disable.
  await page.getByRole("link", { name: input.personEmail }).click();
  await page.getByRole("heading", { name: input.personEmail }).waitFor();
  await shot(page, "person");

  // Signing keys: rotate now; the next key is published and waits its turn.
  await page.getByRole("link", { name: "Signing keys" }).click();
  await page.getByRole("heading", { name: "Signing keys" }).waitFor();
  seen.keyStatesBefore = await page.locator("table tbody tr td:nth-child(3)").allInnerTexts();
  await page.getByRole("button", { name: "Rotate now" }).click();
  await page.getByRole("heading", { name: "Signing keys" }).waitFor();
  seen.keyStatesAfter = await page.locator("table tbody tr td:nth-child(3)").allInnerTexts();
  await shot(page, "signing-keys");

  await page.getByRole("link", { name: "Audit log" }).click();
  await page.getByRole("heading", { name: "Audit log" }).waitFor();
  seen.auditEvents = await page.locator("table.log tbody tr td:nth-child(2)").allInnerTexts();
  await shot(page, "audit");

  // The same dashboard on a phone.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  await phone.addCookies(await context.cookies());
  const small = await phone.newPage();
  await small.goto(`${input.base}/admin`);
  await small.getByRole("heading", { name: "MCP servers" }).waitFor();
  seen.phoneOverflows = await small.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  await small.screenshot({ path: `${input.shots}/dashboard-servers-phone.png`, fullPage: true });

  process.stdout.write(JSON.stringify({ ...seen, problems }) + "\n");
} finally {
  await browser.close();
}
