// Tokens that run out while people talk: run against an `up` whose access and room
// tokens live 8 seconds (tests/browser.rs sets that), the page keeps both fresh, so
// a conversation that outlives several tokens never meets a refused request.
import { test } from "node:test";
import assert from "node:assert/strict";
import { account, assertNoProblems, launch, messages, openRoom, person, registerVia, say } from "./helpers.mjs";

const TTL_MS = 8_000;

test("a conversation outlives its access and room tokens", async () => {
  const browser = await launch();
  try {
    const host = await person(browser);
    const guest = await person(browser);
    const refused = [];
    for (const p of [host, guest]) {
      p.page.on("response", (r) => {
        if (r.status() === 401) refused.push(`${r.request().method()} ${new URL(r.url()).pathname}`);
      });
    }
    await registerVia(host.page, account("Tess Token"));
    const link = await openRoom(host.page, "Long talk");
    await registerVia(guest.page, account("Rhys Refresh"));
    await guest.page.goto(link);
    await guest.page.locator('.status[data-state="live"]').waitFor();

    // Three lifetimes of both tokens pass while they talk.
    const until = Date.now() + 3 * TTL_MS;
    let n = 0;
    while (Date.now() < until) {
      await say(host.page, `still here ${++n}`);
      await messages(guest.page, `still here ${n}`).waitFor();
      await host.page.waitForTimeout(2_000);
    }

    // A reconnect now needs a room token issued after the first one expired...
    await guest.context.setOffline(true);
    await guest.page.locator('.status[data-state="reconnecting"]').waitFor();
    await guest.context.setOffline(false);
    await guest.page.locator('.status[data-state="live"]').waitFor();
    await say(guest.page, "back with a fresh pass");
    await messages(host.page, "back with a fresh pass").waitFor();
    // ...and an API call an access token issued after the first one expired.
    await host.page.getByRole("button", { name: "New link" }).click();
    await host.page.locator(".invite").nth(1).waitFor();

    assert.deepEqual(refused, [], "no request was refused for an expired token");
    assertNoProblems(host, guest);
  } finally {
    await browser.close();
  }
});
