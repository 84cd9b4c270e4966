// What the page costs and who can use it: axe-core on every page (light and dark),
// the page's weight over the wire, the time from opening an invite link to the
// backlog (against loading the welcome page, in the same run), and Lighthouse.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { request } from "node:http";
import { join } from "node:path";
import { chromium } from "playwright-core";
import lighthouse from "lighthouse";
import {
  BASE, CHROMIUM, FLAGS, OUT, account, assertNoProblems, axe, launch, messages, openRoom, person,
  registerVia, say,
} from "./helpers.mjs";

test("axe finds no serious or critical violation on any page, light or dark", async () => {
  const browser = await launch();
  try {
    for (const colorScheme of ["light", "dark"]) {
      const visitor = await person(browser, { colorScheme });
      const host = await person(browser, { colorScheme });
      const V = visitor.page;
      const H = host.page;
      for (const path of ["/", "/login", "/register"]) {
        await V.goto(BASE + path);
        await V.locator("main h1").waitFor();
        await axe(V, `${path} (${colorScheme})`);
      }
      await registerVia(H, account("Axe Host"));
      await H.goto(BASE + "/rooms");
      await H.locator("main h1").waitFor();
      await axe(H, `/rooms empty (${colorScheme})`);
      await H.goto(BASE + "/rooms/new");
      await H.locator("main h1").waitFor();
      await axe(H, `/rooms/new (${colorScheme})`);
      const link = await openRoom(H, "Accessible tea");
      await say(H, "a message with a link https://example.com and @someone");
      await axe(H, `/r/ID (${colorScheme})`);
      await V.goto(link);
      await V.getByRole("heading", { name: "Accessible tea" }).waitFor();
      await axe(V, `/join/CODE (${colorScheme})`);
      await H.goto(BASE + "/rooms");
      await H.locator(".rooms li[data-room]").waitFor();
      await axe(H, `/rooms (${colorScheme})`);
      assertNoProblems(visitor, host);
      await visitor.context.close();
      await host.context.close();
    }
  } finally {
    await browser.close();
  }
});

/** Bytes on the wire (gzip accepted) of a path. */
function wireBytes(path) {
  return new Promise((resolve, reject) => {
    const req = request(BASE + path, { headers: { "accept-encoding": "gzip" } }, (res) => {
      let n = 0;
      res.on("data", (c) => (n += c.length));
      res.on("end", () => (res.statusCode === 200 ? resolve(n) : reject(new Error(`${path}: ${res.statusCode}`))));
    });
    req.on("error", reject);
    req.end();
  });
}

test("the page weighs under 60 KB compressed", async () => {
  const html = await (await fetch(BASE + "/")).text();
  const assets = [...html.matchAll(/(?:href|src)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
  // Every module the page imports is preloaded by index.html, so this is all of it.
  assert.ok(assets.some((a) => a.endsWith("/views/room.js")), "index.html preloads every module");
  let total = await wireBytes("/");
  const sizes = {};
  for (const a of new Set(assets)) total += sizes[a] = await wireBytes(a);
  console.log(`page weight: ${(total / 1024).toFixed(1)} KiB compressed over ${Object.keys(sizes).length + 1} files`);
  writeFileSync(join(OUT, "page-weight.json"), JSON.stringify({ total, sizes }, null, 2));
  assert.ok(total < 60 * 1024, `${total} bytes`);
});

function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

test("time from opening an invite link (logged in) to the backlog, against loading the welcome page", async () => {
  const browser = await launch();
  try {
    const host = await person(browser);
    await registerVia(host.page, account("Speedy Host"));
    const link = await openRoom(host.page, "Latency");
    // Ten lines: the room's rate limit (10 messages per 10 s) stops an eleventh.
    for (let i = 1; i <= 10; i++) await say(host.page, `backlog ${i}`);
    const RUNS = 20;
    const joins = [];
    const welcome = [];
    for (let i = 0; i < RUNS; i++) {
      // One person per run: a room lets one user (re)join 10 times a minute, and
      // each run is someone opening the link for the first time.
      const guest = await person(browser);
      const acc = account(`Guest ${i}`);
      const res = await guest.context.request.post(BASE + "/api/browser/users", {
        headers: { "x-rendezvous-csrf": "1" },
        data: acc,
      });
      assert.equal(res.status(), 201, await res.text());
      // They have been to the site before (the browser holds its cached files).
      let page = await guest.context.newPage();
      await page.goto(BASE + "/");
      await page.getByRole("heading", { name: /rooms that vanish/ }).waitFor();
      await page.close();
      // The baseline: the welcome page, same server, same browser, no room.
      page = await guest.context.newPage();
      let t0 = performance.now();
      await page.goto(BASE + "/");
      await page.getByRole("heading", { name: /rooms that vanish/ }).waitFor();
      welcome.push(performance.now() - t0);
      await page.close();
      // The invite link, to the last line of the backlog on screen.
      page = await guest.context.newPage();
      t0 = performance.now();
      await page.goto(link);
      await messages(page, "backlog 10").waitFor();
      joins.push(performance.now() - t0);
      assertNoProblems(guest);
      await guest.context.close();
    }
    const report = {
      runs: RUNS,
      join: { p50: percentile(joins, 50), p95: percentile(joins, 95), max: Math.max(...joins) },
      welcome: { p50: percentile(welcome, 50), p95: percentile(welcome, 95) },
    };
    report.ratio_p50 = report.join.p50 / report.welcome.p50;
    console.log(
      `invite link → backlog: p50 ${report.join.p50.toFixed(0)} ms, p95 ${report.join.p95.toFixed(0)} ms, ` +
        `max ${report.join.max.toFixed(0)} ms; welcome page p50 ${report.welcome.p50.toFixed(0)} ms ` +
        `(×${report.ratio_p50.toFixed(2)})`,
    );
    writeFileSync(join(OUT, "join-latency.json"), JSON.stringify({ ...report, samples: joins }, null, 2));
    assert.equal(joins.length, RUNS);
    assertNoProblems(host);
  } finally {
    await browser.close();
  }
});

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

test("Lighthouse: accessibility, best practices and performance at least 95 on / and /r/ID", async () => {
  const port = await freePort();
  const profile = join(OUT, "lighthouse-profile");
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...FLAGS, `--remote-debugging-port=${port}`],
  });
  try {
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(20_000);
    await registerVia(page, account("Lighthouse Host"));
    const link = await openRoom(page, "Lighthouse");
    await say(page, "measured");
    const roomUrl = page.url();
    // The page leaves the room before Lighthouse opens its own tab of it.
    await page.goto(BASE + "/");
    void link;
    const scores = {};
    const measure = async (name, url) => {
      const result = await lighthouse(url, {
        port,
        output: "json",
        logLevel: "error",
        onlyCategories: ["performance", "accessibility", "best-practices"],
        // Keep the session cookie: /r/ID is for people who are logged in.
        disableStorageReset: true,
      });
      const lhr = result.lhr;
      writeFileSync(join(OUT, `lighthouse-${name}.json`), result.report);
      const score = Object.fromEntries(Object.entries(lhr.categories).map(([k, c]) => [k, Math.round(c.score * 100)]));
      const failing = Object.values(lhr.audits).filter((a) => a.score !== null && a.score < 0.9 && a.scoreDisplayMode !== "informative");
      console.log(`lighthouse ${name}: ${JSON.stringify(score)}; below 0.9: ${failing.map((a) => a.id).join(", ") || "none"}`);
      assert.equal(new URL(lhr.finalDisplayedUrl).pathname, new URL(url).pathname, "Lighthouse saw the page, not a redirect");
      return score;
    };
    for (const [name, url] of [["welcome", BASE + "/"], ["room", roomUrl]]) {
      let score = await measure(name, url);
      // Performance on two shared cores varies run to run (a long task from
      // something else on the machine is "total blocking time"): a low first
      // score is measured twice more and the median of the three counts, as
      // Lighthouse's own guidance on variability says.
      if (score.performance < 95) {
        const runs = [score, await measure(name, url), await measure(name, url)];
        runs.sort((x, y) => x.performance - y.performance);
        score = runs[1];
        console.log(`lighthouse ${name}: median of 3 runs ${JSON.stringify(score)}`);
      }
      scores[name] = score;
    }
    for (const [name, s] of Object.entries(scores)) {
      for (const [cat, v] of Object.entries(s)) assert.ok(v >= 95, `${name} ${cat} ${v}`);
    }
  } finally {
    await context.close();
  }
});
