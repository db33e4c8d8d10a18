// A person in Debian's Chromium (Playwright) signs in and consents on Gatehouse's real pages.
// Driven by test_browser.py. Input (argv[2], JSON): {authorizeUrl, redirectUri, email, password,
// viewport: {width, height, mobile}, shots: folder, name}. Output (stdout, JSON): the callback
// URL the browser was sent to, what the pages showed, and any console errors or CSP violations.
import { chromium } from "playwright-core";

const input = JSON.parse(process.argv[2]);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
try {
  const context = await browser.newContext({
    viewport: { width: input.viewport.width, height: input.viewport.height },
    isMobile: input.viewport.mobile,
    hasTouch: input.viewport.mobile,
    deviceScaleFactor: input.viewport.mobile ? 2 : 1,
  });
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  page.on("pageerror", (e) => problems.push(String(e)));

  // The host's callback: nothing listens there; the browser's arrival is the result.
  let callback;
  await page.route(`${input.redirectUri}**`, async (route) => {
    callback = route.request().url();
    await route.fulfill({ status: 200, contentType: "text/plain", body: "back at the client" });
  });

  await page.goto(input.authorizeUrl);
  await page.getByLabel("Email").waitFor();
  const signIn = {
    url: page.url(),
    title: await page.title(),
    heading: await page.locator("h1").innerText(),
    lead: await page.locator("p.lead").innerText().catch(() => null),
  };
  await page.screenshot({ path: `${input.shots}/${input.name}-sign-in.png`, fullPage: true });

  await page.getByLabel("Email").fill(input.email);
  await page.getByLabel("Password").fill(input.password);
  await page.getByRole("button", { name: "Sign in" }).click();

  const allow = page.getByRole("button", { name: "Allow" });
  await allow.waitFor();
  const consent = {
    url: page.url(),
    title: await page.title(),
    heading: await page.locator("h1").innerText(),
    scopes: await page.locator("ul.scopes li").allInnerTexts(),
    warning: await page.locator(".warning").innerText().catch(() => null),
    // Whether the page fits the screen: no sideways scrolling on a phone.
    overflows: await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth),
  };
  await page.screenshot({ path: `${input.shots}/${input.name}-consent.png`, fullPage: true });

  await allow.click();
  await page.waitForURL(`${input.redirectUri}**`);
  process.stdout.write(JSON.stringify({ signIn, consent, callback, problems }) + "\n");
} finally {
  await browser.close();
}
