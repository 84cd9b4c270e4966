// Shared by the browser tests: Debian's Chromium through playwright-core, a person
// (browser context + page) whose console errors and CSP violations fail the test,
// and the few steps every test takes through the real page.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const BASE = process.env.RENDEZVOUS_URL;
if (!BASE) throw new Error("RENDEZVOUS_URL is not set: run these through `cargo test --test browser`");
export const OUT = process.env.RENDEZVOUS_ARTIFACTS || "/tmp/rendezvous-ui";
mkdirSync(OUT, { recursive: true });
export const CHROMIUM = process.env.RENDEZVOUS_CHROMIUM || "/usr/bin/chromium";
/** The flags verified on this machine (../shared/notes/browser-and-peers.md). */
export const FLAGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
/** Generous: two cores may be busy with builds. Tests wait for state, not for time. */
export const TIMEOUT = 20_000;

export function launch(extra = []) {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...FLAGS, ...extra] });
}

/** A person: their own context (cookies), page, and the problems the page logged. */
export async function person(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  context.setDefaultTimeout(TIMEOUT);
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.stack || e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !expectedConsoleError(m.text())) problems.push(`console: ${m.text()}`);
  });
  return { context, page, problems };
}

/**
 * Errors the browser itself logs for things the page does on purpose: a refused
 * request the page then explains (401 on the session check of a visitor, 410 for a
 * closed room's link), and the socket the page closes itself when offline.
 */
function expectedConsoleError(text) {
  return /Failed to load resource: the server responded with a status of (401|404|410)/.test(text) ||
    /WebSocket connection to .* failed/.test(text) ||
    /ERR_INTERNET_DISCONNECTED/.test(text);
}

export function assertNoProblems(...people) {
  for (const p of people) assert.deepEqual(p.problems, [], "the page logged errors");
}

export async function shot(page, name) {
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: false });
}

let counter = 0;
/** A unique account for this run. */
export function account(displayName) {
  counter++;
  const tag = `${Date.now().toString(36)}${counter}`;
  const username = `${displayName.split(" ")[0].toLowerCase()}${tag}`.slice(0, 32);
  return { displayName, username, email: `${username}@example.com`, password: `correct horse ${tag}` };
}

/** Fill and send the page's registration form (the page must be on /register). */
export async function fillRegister(page, acc) {
  await page.getByLabel("Your name").fill(acc.displayName);
  await page.getByLabel("Username").fill(acc.username);
  await page.getByLabel("Email").fill(acc.email);
  await page.getByLabel("Password").fill(acc.password);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL((u) => !u.pathname.startsWith("/register"));
}

/** Register through the page, starting from /register. */
export async function registerVia(page, acc) {
  await page.goto(BASE + "/register");
  await fillRegister(page, acc);
}

/** Open a chat room through the page; returns its invite link. */
export async function openRoom(page, title) {
  await page.goto(BASE + "/rooms/new");
  await page.getByLabel("Title").fill(title);
  await page.getByRole("button", { name: "Open the room" }).click();
  await page.waitForURL(/\/r\//);
  await page.locator('.status[data-state="live"]').waitFor();
  const link = await page.locator(".invite-url").first().inputValue();
  assert.match(link, /\/join\/[A-Za-z0-9_-]+$/);
  return link;
}

/** Type and send a message, and wait until the room has echoed it. */
export async function say(page, text) {
  const box = page.getByLabel("Message");
  await box.fill(text);
  await box.press("Enter");
  await page.locator(".msg:not(.pending) .msg-text", { hasText: text }).last().waitFor();
}

export function messages(page, text) {
  return page.locator(".msg:not(.pending) .msg-text").filter({ hasText: new RegExp(`^${escape(text)}$`) });
}

function escape(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Nothing of a conversation may be kept by the browser. */
export async function assertNothingStored(page, ...texts) {
  const stored = await page.evaluate(async () => {
    const dump = (s) => Object.keys(s).map((k) => k + "=" + s.getItem(k)).join("\n");
    const dbs = indexedDB.databases ? (await indexedDB.databases()).map((d) => d.name) : [];
    return { local: dump(localStorage), session: dump(sessionStorage), dbs, caches: await caches.keys() };
  });
  for (const t of texts) {
    assert.ok(!stored.local.includes(t), `localStorage holds "${t}"`);
    assert.ok(!stored.session.includes(t), `sessionStorage holds "${t}"`);
  }
  assert.deepEqual(stored.dbs, [], "no IndexedDB");
  assert.deepEqual(stored.caches, [], "no Cache API");
}

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/** axe-core on the page as it is: no serious or critical violation. */
export async function axe(page, label) {
  // Evaluated through the DevTools protocol, so the page's CSP (no inline script) stays on.
  await page.evaluate(AXE + "\n;0");
  const violations = await page.evaluate(async () => {
    const r = await globalThis.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")) }));
  });
  for (const v of violations) console.log(`axe ${label}: ${v.impact} ${v.id} (${v.help}) at ${v.nodes.join(", ")}`);
  const bad = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad, [], `axe on ${label}`);
}
