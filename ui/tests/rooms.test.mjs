// One person, several conversations: a support agent in two rooms at once. Switching
// rooms keeps both live; the sidebar and the tab title count what came in elsewhere.
import { test } from "node:test";
import assert from "node:assert/strict";
import { account, assertNoProblems, launch, messages, openRoom, person, registerVia, say } from "./helpers.mjs";

test("one person holds two conversations at once", async () => {
  const browser = await launch();
  try {
    const agent = await person(browser);
    const ann = await person(browser);
    const ben = await person(browser);
    await registerVia(ann.page, account("Ann Customer"));
    const annLink = await openRoom(ann.page, "Ann's order");
    await registerVia(ben.page, account("Ben Customer"));
    const benLink = await openRoom(ben.page, "Ben's refund");

    const A = agent.page;
    await registerVia(A, account("Sam Support"));
    await A.goto(annLink);
    await A.locator('.status[data-state="live"]').waitFor();
    const annRoom = new URL(A.url()).pathname;
    // The second link opened in the same tab (a full page load): both rooms stay.
    await A.goto(benLink);
    await A.locator("main h1", { hasText: "Ben's refund" }).waitFor();
    await A.locator('.status[data-state="live"]').waitFor();
    await A.locator(".sidebar a", { hasText: "Ann's order" }).waitFor();
    await A.locator(".sidebar a", { hasText: "Ben's refund" }).waitFor();

    // Ann writes while Sam looks at Ben's room: counted, not lost.
    await say(ann.page, "where is my parcel?");
    await say(ann.page, "it has been a week");
    await A.locator(".sidebar a", { hasText: "Ann's order" }).locator(".badge", { hasText: "2" }).waitFor();
    await A.waitForFunction(() => document.title.startsWith("(2) "));
    await say(ben.page, "thanks for the refund");
    await messages(A, "thanks for the refund").waitFor();

    // Back in Ann's room: both messages are there, once, and now read.
    await A.locator(".sidebar a", { hasText: "Ann's order" }).click();
    await A.waitForURL((u) => u.pathname === annRoom);
    await messages(A, "it has been a week").waitFor();
    assert.equal(await messages(A, "where is my parcel?").count(), 1);
    await A.waitForFunction(() => !document.title.startsWith("("));
    await ann.page.getByText("Seen by Sam Support").waitFor();
    await say(A, "checking now");
    await messages(ann.page, "checking now").waitFor();
    // Ben's conversation went on meanwhile; Ben sees Sam's reply in his room too.
    await A.locator(".sidebar a", { hasText: "Ben's refund" }).click();
    await say(A, "you're welcome");
    await messages(ben.page, "you're welcome").waitFor();
    assertNoProblems(agent, ann, ben);
  } finally {
    await browser.close();
  }
});
