// Two (then three) people meet through an invite link in real Chromium, against a
// real `rendezvous up`: register, open a room, join logged out, chat (typing, seen,
// edit, delete, react), drop the network and come back with nothing lost or
// doubled, get kicked, see the room end, and find the link closed.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  BASE, account, assertNoProblems, assertNothingStored, fillRegister, launch, messages, openRoom,
  person, registerVia, say, shot,
} from "./helpers.mjs";

test("two people meet through an invite link and talk", async () => {
  const browser = await launch();
  try {
    const ada = await person(browser);
    const bo = await person(browser);
    const cy = await person(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const A = ada.page;
    const B = bo.page;
    const C = cy.page;

    // The welcome page, then an account for Ada.
    await A.goto(BASE + "/");
    await A.getByRole("heading", { name: /rooms that vanish/ }).waitFor();
    await shot(A, "welcome");
    await A.getByRole("link", { name: "Create an account" }).click();
    await A.waitForURL(/\/register$/);
    const adaAcc = account("Ada Lovelace");
    await fillRegister(A, adaAcc);
    await A.waitForURL(/\/rooms$/);

    // Ada opens a room and takes its link.
    const link = await openRoom(A, "Tea at four");
    const roomPath = new URL(A.url()).pathname;

    // Bo opens the link logged out: the room's title and host, then registers and lands inside.
    await B.goto(link);
    await B.getByRole("heading", { name: "Tea at four" }).waitFor();
    await B.getByText("Ada Lovelace invites you to").waitFor();
    await B.getByRole("link", { name: "Create an account" }).click();
    await fillRegister(B, account("Bo Peep"));
    await B.waitForURL((u) => u.pathname === roomPath);
    await B.locator('.status[data-state="live"]').waitFor();
    await A.locator(".person", { hasText: "Bo Peep" }).waitFor();
    await B.locator(".person", { hasText: "Ada Lovelace" }).waitFor();

    // Typing shows on the other side; the message arrives; Bo has seen it.
    await A.getByLabel("Message").pressSequentially("hello Bo", { delay: 20 });
    await B.getByText("Ada Lovelace is typing…").waitFor();
    await A.getByLabel("Message").press("Enter");
    await messages(B, "hello Bo").waitFor();
    await A.getByText("Seen by Bo Peep").waitFor();
    await B.getByText("Ada Lovelace is typing…").waitFor({ state: "hidden" });

    // Shift+Enter makes a new line; links are links; a mention of Ada is marked for her.
    const box = B.getByLabel("Message");
    await box.fill("hi @Ada, the menu:");
    await box.press("Shift+Enter");
    await box.pressSequentially("https://example.com/menu");
    await box.press("Enter");
    const mention = A.locator(".msg.mentions-me");
    await mention.waitFor();
    assert.equal(await mention.locator("a").getAttribute("href"), "https://example.com/menu");
    assert.equal(await mention.locator("a").getAttribute("rel"), "noopener noreferrer nofollow");
    assert.match(await mention.locator(".msg-text").innerText(), /the menu:\nhttps/);

    // Text is text: markup arrives as characters, never as elements.
    await say(A, '<img src=x onerror="document.title=1">');
    await messages(B, '<img src=x onerror="document.title=1">').waitFor();
    assert.equal(await B.locator(".messages img").count(), 0);

    // Up edits Ada's last message; Bo sees the new text, marked edited.
    await A.getByLabel("Message").press("ArrowUp");
    await A.getByText("Editing your message").waitFor();
    await A.getByLabel("Message").fill("no markup here");
    await A.getByLabel("Message").press("Enter");
    const edited = B.locator(".msg", { hasText: "no markup here" });
    await edited.getByText("(edited)").waitFor();

    // Bo reacts to Ada's greeting; Ada sees it.
    const greeting = B.locator(".msg", { hasText: "hello Bo" });
    await greeting.hover();
    await greeting.getByRole("button", { name: "React 👍" }).click();
    await A.locator(".msg", { hasText: "hello Bo" }).locator(".reaction", { hasText: "👍 1" }).waitFor();

    // Ada deletes a message; it goes for Bo too.
    await say(A, "oops, wrong room");
    await messages(B, "oops, wrong room").waitFor();
    const oops = A.locator(".msg", { hasText: "oops, wrong room" });
    await oops.hover();
    await oops.getByRole("button", { name: "Delete" }).click();
    await messages(B, "oops, wrong room").waitFor({ state: "detached" });
    await B.getByText("message deleted").waitFor();

    // Bo's network drops while Ada talks; Bo writes too. Back online, nothing is lost or doubled.
    await bo.context.setOffline(true);
    await B.locator('.status[data-state="reconnecting"]').waitFor();
    await A.locator('.person[data-connected="false"]', { hasText: "Bo Peep" }).waitFor();
    const away = ["while you were away 1", "while you were away 2", "while you were away 3"];
    for (const t of away) await say(A, t);
    await B.getByLabel("Message").fill("typed on the train");
    await B.getByLabel("Message").press("Enter");
    await B.locator(".msg.pending", { hasText: "typed on the train" }).waitFor();
    await bo.context.setOffline(false);
    await B.locator('.status[data-state="live"]').waitFor();
    for (const t of away) {
      await messages(B, t).waitFor();
      assert.equal(await messages(B, t).count(), 1, `"${t}" once`);
    }
    await messages(A, "typed on the train").waitFor();
    assert.equal(await messages(A, "typed on the train").count(), 1);
    await B.locator(".msg.pending").waitFor({ state: "detached" });
    assert.equal(await messages(B, "typed on the train").count(), 1);
    assert.equal(await messages(B, "hello Bo").count(), 1, "the backlog is not doubled either");
    await A.locator('.person[data-connected="true"]', { hasText: "Bo Peep" }).waitFor();
    await A.getByText("Seen by Bo Peep").waitFor();
    await shot(A, "room-conversation");

    // The tab title counts what Bo has not read while looking at another page.
    await B.getByRole("link", { name: "My rooms" }).click();
    await B.waitForURL(/\/rooms$/);
    await say(A, "are you still there?");
    await B.waitForFunction(() => document.title.startsWith("(1) "));
    await B.locator(".sidebar .badge", { hasText: "1" }).waitFor();
    await B.locator(".sidebar a", { hasText: "Tea at four" }).click();
    await messages(B, "are you still there?").waitFor();
    await B.waitForFunction(() => !document.title.startsWith("("));

    // Nothing said is kept by either browser.
    await assertNothingStored(A, "hello Bo", "while you were away", "typed on the train");
    await assertNothingStored(B, "hello Bo", "while you were away", "typed on the train");

    // Cy joins on a phone.
    await C.goto(link);
    await C.getByRole("link", { name: "Create an account" }).click();
    await fillRegister(C, account("Cy Young"));
    await C.waitForURL((u) => u.pathname === roomPath);
    await messages(C, "hello Bo").waitFor();
    await shot(C, "room-mobile");

    // Ada removes Bo, with a reason; Bo sees why.
    await A.getByRole("button", { name: "Remove Bo Peep" }).click();
    await A.getByLabel("Why remove Bo Peep? (they will see it)").fill("too many puns");
    await A.locator(".confirm-remove").getByRole("button", { name: "Remove Bo Peep" }).click();
    await B.getByRole("heading", { name: "You were removed" }).waitFor();
    await B.getByText("too many puns").waitFor();
    await A.locator(".person", { hasText: "Bo Peep" }).waitFor({ state: "detached" });

    // Ada ends the room: Cy sees the closed screen, and the link says so afterwards.
    await A.getByRole("button", { name: "End room" }).click();
    await A.getByRole("button", { name: "End it for everyone?" }).click();
    await C.getByRole("heading", { name: "This room was closed" }).waitFor();
    await C.getByText("The host closed the room.").waitFor();
    await A.getByRole("heading", { name: "This room was closed" }).waitFor();
    await C.goto(link);
    await C.getByRole("heading", { name: "This room was closed" }).waitFor();

    assertNoProblems(ada, bo, cy);
  } finally {
    await browser.close();
  }
});

test("a visitor who logs in from an invite link comes straight into the room", async () => {
  const browser = await launch();
  try {
    const host = await person(browser);
    const guest = await person(browser);
    await registerVia(host.page, account("Hana Host"));
    const link = await openRoom(host.page, "Quick sync");
    await say(host.page, "backlog line");
    const acc = account("Gus Guest");
    // Gus has an account already, and is logged out.
    await registerVia(guest.page, acc);
    await guest.page.getByRole("button", { name: "Log out" }).click();
    await guest.page.waitForURL(BASE + "/");
    await guest.page.goto(link);
    await guest.page.getByRole("link", { name: "Log in" }).last().click();
    await guest.page.getByLabel("Email or username").fill(acc.username);
    await guest.page.getByLabel("Password").fill(acc.password);
    await guest.page.getByRole("button", { name: "Log in" }).click();
    await messages(guest.page, "backlog line").waitFor();
    assert.match(new URL(guest.page.url()).pathname, /^\/r\//);

    // A reload keeps the person in the room (the session cookie, the tab's link).
    await guest.page.reload();
    await messages(guest.page, "backlog line").waitFor();
    assert.equal(await messages(guest.page, "backlog line").count(), 1);

    // Wrong password: words a person understands.
    const other = await person(browser);
    await other.page.goto(BASE + "/login");
    await other.page.getByLabel("Email or username").fill(acc.username);
    await other.page.getByLabel("Password").fill("not the password");
    await other.page.getByRole("button", { name: "Log in" }).click();
    await other.page.getByRole("alert").filter({ hasText: "do not match" }).waitFor();
    assertNoProblems(host, guest);
  } finally {
    await browser.close();
  }
});
