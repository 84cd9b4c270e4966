// ChatState on its own: the room protocol's events in, the conversation out.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ChatState } from "../lib/chat.js";

const limits = { maxTextChars: 4000, maxFrameBytes: 16384, rateLimitMessages: 10, rateLimitWindowMs: 10000 };
const person = (id, name, extra = {}) => ({ id, name, moderator: false, muted: false, connected: true, ...extra });
const welcome = (seq, extra = {}) => ({
  type: "welcome", seq, ts: 1000, protocolVersion: 1, roomId: "r", you: "a",
  participants: [person("a", "Ada", { moderator: true }), person("b", "Bo")],
  backlog: [], receipts: [], locked: false, resumed: false, missed: [], limits, ...extra,
});
const msg = (seq, from, text, extra = {}) => ({ type: "message", seq, ts: seq * 1000, id: seq, from, text, ...extra });

test("a fresh welcome takes the backlog, people and receipts", () => {
  const s = new ChatState();
  s.apply(welcome(5, {
    backlog: [{ id: 3, ts: 3000, from: "b", text: "hi", edited: false, reactions: [{ emoji: "👍", participants: ["a"] }] }],
    receipts: [{ participantId: "b", upTo: 3 }],
  }));
  assert.equal(s.you, "a");
  assert.deepEqual([...s.people.keys()], ["a", "b"]);
  assert.equal(s.timeline()[0].text, "hi");
  assert.deepEqual([...s.messages.get(3).reactions.get("👍")], ["a"]);
  assert.equal(s.receipts.get("b"), 3);
  assert.equal(s.lastSeq, 5);
  assert.ok(s.amModerator());
});

test("a resume applies what was missed once, and replays change nothing", () => {
  const s = new ChatState();
  s.apply(welcome(1));
  s.apply(msg(2, "b", "one"));
  // The connection drops after seq 2; the server replays 3 and 4 in the welcome.
  s.apply(welcome(5, { resumed: true, missed: [msg(3, "b", "two"), msg(4, "a", "three", { clientId: "c1" })] }));
  assert.deepEqual(s.timeline().map((m) => m.text), ["one", "two", "three"]);
  // The same events again (an overlapping replay) are ignored.
  assert.equal(s.apply(msg(3, "b", "two")), null);
  assert.equal(s.apply(msg(4, "a", "three")), null);
  assert.equal(s.timeline().length, 3);
  s.apply(msg(6, "b", "four"));
  assert.deepEqual(s.timeline().map((m) => m.id), [2, 3, 4, 6]);
});

test("a welcome that could not resume replaces the conversation with its backlog", () => {
  const s = new ChatState();
  s.apply(welcome(1));
  s.apply(msg(2, "b", "old"));
  s.apply(welcome(90, { backlog: [{ id: 80, ts: 80000, from: "b", text: "newer", edited: false, reactions: [] }] }));
  assert.deepEqual(s.timeline().map((m) => m.text), ["newer"]);
});

test("the echo of a sent message replaces its pending copy", () => {
  const s = new ChatState();
  s.apply(welcome(1));
  s.addPending("c1", "hello", 1500);
  assert.equal(s.pending.size, 1);
  s.apply(msg(2, "a", "hello", { clientId: "c1" }));
  assert.equal(s.pending.size, 0);
  assert.equal(s.timeline()[0].mine, true);
  // A refused send marks its pending copy with the reason.
  s.addPending("c2", "x", 1600);
  s.apply({ type: "error", seq: 3, code: "rate_limited", message: "slow down", clientId: "c2" });
  assert.equal(s.pending.get("c2").failed, "rate_limited");
});

test("edits, deletes and reactions change the message they name", () => {
  const s = new ChatState();
  s.apply(welcome(1));
  s.apply(msg(2, "a", "helo"));
  s.apply({ type: "edited", seq: 3, messageId: 2, text: "hello" });
  assert.equal(s.messages.get(2).text, "hello");
  assert.equal(s.messages.get(2).edited, true);
  s.apply({ type: "reacted", seq: 4, messageId: 2, participantId: "b", emoji: "🎉", removed: false });
  s.apply({ type: "reacted", seq: 5, messageId: 2, participantId: "a", emoji: "🎉", removed: false });
  assert.equal(s.messages.get(2).reactions.get("🎉").size, 2);
  s.apply({ type: "reacted", seq: 6, messageId: 2, participantId: "b", emoji: "🎉", removed: true });
  assert.deepEqual([...s.messages.get(2).reactions.get("🎉")], ["a"]);
  s.apply({ type: "deleted", seq: 7, messageId: 2 });
  assert.equal(s.messages.get(2).deleted, true);
  assert.equal(s.messages.get(2).text, "");
  assert.equal(s.lastOwn(), null);
});

test("messages group by sender within five minutes", () => {
  const s = new ChatState();
  s.apply(welcome(1));
  s.apply({ ...msg(2, "b", "a"), ts: 0 });
  s.apply({ ...msg(3, "b", "b"), ts: 60_000 });
  s.apply({ ...msg(4, "a", "c"), ts: 61_000 });
  s.apply({ ...msg(5, "a", "d"), ts: 61_000 + 6 * 60_000 });
  assert.deepEqual(s.timeline().map((m) => m.first), [true, false, true, true]);
});

test("presence, typing, receipts, unread and seen-by", () => {
  const s = new ChatState();
  s.apply(welcome(1));
  s.apply({ type: "joined", seq: 2, participant: person("c", "Cy") });
  s.apply({ type: "typing", seq: 3, participantId: "c", typing: true });
  assert.deepEqual(s.typingNames(), ["Cy"]);
  s.apply(msg(4, "c", "hi @Ada"));
  assert.deepEqual(s.typingNames(), [], "a message ends its sender's typing");
  s.apply(msg(5, "b", "yo"));
  assert.equal(s.unread(), 2);
  s.apply({ type: "read", seq: 6, participantId: "a", upTo: 4 });
  assert.equal(s.unread(), 1);
  s.apply(msg(7, "a", "mine"));
  s.apply({ type: "read", seq: 8, participantId: "b", upTo: 7 });
  s.apply({ type: "read", seq: 9, participantId: "c", upTo: 5 });
  assert.deepEqual(s.seenBy(7), ["Bo"]);
  // Receipts only move forward.
  s.apply({ type: "read", seq: 10, participantId: "b", upTo: 2 });
  assert.deepEqual(s.seenBy(7), ["Bo"]);
  s.apply({ type: "disconnected", seq: 11, participantId: "c" });
  assert.equal(s.people.get("c").connected, false);
  s.apply({ type: "reconnected", seq: 12, participantId: "c" });
  assert.equal(s.people.get("c").connected, true);
  s.apply({ type: "left", seq: 13, participantId: "c", reason: "kicked" });
  assert.equal(s.people.has("c"), false);
  assert.equal(s.name("c"), "Cy", "a name outlives its owner's presence");
  s.apply({ type: "muted", seq: 14, participantId: "b", muted: true, by: "a" });
  assert.equal(s.people.get("b").muted, true);
  s.apply({ type: "locked", seq: 15, locked: true, by: "a" });
  assert.equal(s.locked, true);
  s.apply({ type: "room_closed", seq: 16, reason: "ended" });
  assert.equal(s.closed, "ended");
});
