// The room: the conversation (grouped messages, edits, deletes, reactions, typing,
// "seen by"), the composer, the people panel, and the screen a closed room leaves.

import { avatar, clock, h, mentionedNames, mount, richText, toast } from "../lib/dom.js";
import { api, session } from "../lib/api.js";
import * as rooms from "../lib/rooms.js";
import { isMe, notifyOn } from "../lib/rooms.js";
import { drawInvites, drawPeople } from "./people.js";
import { confirmButton } from "./pages.js";
import { mediaStage } from "./media.js";

const QUICK = ["👍", "❤️", "😂", "🎉", "😮", "🙏"];
const TYPING_REPEAT_MS = 3000;
const TYPING_IDLE_MS = 4000;
const NEAR_BOTTOM_PX = 80;

export function roomView(ctx, id) {
  ctx.main.className = "in-room";
  document.body.dataset.title = "Rendezvous";
  const holder = h("div", { class: "closed card", "aria-live": "polite" }, h("h1", {}, "Entering the room…"));
  mount(ctx.main, holder);
  let stop = () => {};
  let gone = false;
  rooms.open(id).then(
    (r) => {
      if (!gone) stop = draw(ctx, r);
    },
    (e) => {
      if (gone) return;
      const closed = ["room_closed", "room_ended", "room_not_found", "not_found"].includes(e.code);
      mount(holder,
        h("h1", {}, closed ? "This room was closed" : "You cannot enter this room"),
        h("p", {}, e.message),
        h("a", { class: "button", href: "/rooms", "data-link": "" }, "My rooms"),
      );
    },
  );
  return () => {
    gone = true;
    stop();
  };
}

function draw(ctx, r) {
  const conn = r.conn;
  const s = conn.state;
  document.body.dataset.title = `${r.title} · Rendezvous`;
  document.title = document.body.dataset.title;
  let editing = null;
  let typingSent = 0;
  let typingTimer;
  let lastRead = 0;
  const items = new Map();

  const status = h("span", { class: "status", role: "status" });
  // The log scrolls; the list inside keeps list semantics.
  const list = h("ol", { class: "timeline" });
  const log = h("div", { class: "messages", role: "log", "aria-label": "Conversation", tabindex: "0" }, list);
  const typing = h("div", { class: "typing", "aria-live": "polite" });
  const box = h("textarea", { rows: 1, "aria-label": "Message", placeholder: "Write a message…", maxlength: 4000 });
  const editNote = h("div", { class: "editing", hidden: true });
  const people = h("div", {});
  const invites = h("div", {});
  const panel = h("aside", { class: "people", id: "people", "aria-label": "People and links" }, people, invites);
  const peopleToggle = h("button", {
    type: "button",
    class: "secondary people-toggle",
    "aria-controls": "people",
    "aria-expanded": "false",
    onclick: () => {
      const open = panel.classList.toggle("open");
      peopleToggle.setAttribute("aria-expanded", String(open));
    },
  }, "People");
  const notifyBtn = h("button", { type: "button", class: "secondary", onclick: toggleNotify });
  const head = h("header", { class: "room-head" },
    h("h1", {}, r.title),
    h("span", { class: "kind" }, r.kind === "chat" ? "chat" : r.kind === "video" ? "video" : "chat + video"),
    status,
    h("span", { class: "row" },
      notifyBtn,
      peopleToggle,
      r.mine
        ? confirmButton("End room", "End it for everyone?", async () => {
            await api("DELETE", "/api/rooms/" + encodeURIComponent(r.id)).catch((e) => conn.emit("notice", e.message));
          }, "danger")
        : h("button", { type: "button", class: "secondary", onclick: () => { rooms.forget(r.id); ctx.navigate("/rooms"); } }, "Leave"),
    ),
  );
  const form = h("form", {
    class: "composer",
    onsubmit: (e) => {
      e.preventDefault();
      submit();
    },
  }, box, h("button", { type: "submit" }, "Send"));
  // Video rooms: the camera check (views/media.js); chat rooms show no video UI.
  const stage = r.kind !== "chat" ? h("section", { class: "stage", "aria-label": "Video" }) : null;
  const stopMedia = stage ? mediaStage(stage, conn, { name: session.user?.displayName || "You" }) : () => {};
  const conversation = h("div", { class: "conversation" }, stage, log, typing, editNote, form);
  const room = h("div", { class: "room" }, head, conversation, panel);
  mount(ctx.main, room);

  function nearBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < NEAR_BOTTOM_PX;
  }

  function drawStatus() {
    const text = { connecting: "connecting…", live: "connected", reconnecting: "reconnecting…", ended: "ended" }[conn.status];
    status.textContent = text;
    status.dataset.state = conn.status;
  }

  function messageItem(m, seen) {
    const mine = m.mine;
    const tools = m.deleted
      ? null
      : h("div", { class: "msg-tools" },
          h("span", { class: "palette" }, QUICK.slice(0, 3).map((e) =>
            h("button", { type: "button", class: "ghost", "aria-label": `React ${e}`, onclick: () => react(m.id, e) }, e))),
          h("button", { type: "button", class: "ghost", "aria-label": "More reactions", onclick: (ev) => morePalette(ev.currentTarget, m.id) }, "＋"),
          mine ? h("button", { type: "button", class: "ghost", onclick: () => startEdit(m) }, "Edit") : null,
          mine ? h("button", { type: "button", class: "ghost", onclick: () => conn.send({ type: "delete", messageId: m.id }) }, "Delete") : null,
        );
    const mentionsMe = !mine && mentionedNames(m.text).some(isMe);
    return h("li", {
        class: `msg${m.first ? " first" : ""}${mine ? " mine" : ""}${m.deleted ? " deleted" : ""}${mentionsMe ? " mentions-me" : ""}`,
        "data-id": m.id,
      },
      avatar(m.from, s.name(m.from)),
      h("div", { class: "msg-head" }, h("strong", {}, s.name(m.from)), h("time", { datetime: new Date(m.ts).toISOString() }, clock(m.ts))),
      h("div", { class: "msg-text" },
        m.deleted ? "message deleted" : richText(m.text, isMe),
        m.edited && !m.deleted ? h("span", { class: "edited" }, " (edited)") : null),
      m.reactions.size
        ? h("div", { class: "reactions" }, [...m.reactions].map(([emoji, who]) =>
            h("button", {
              type: "button",
              class: "reaction",
              "aria-pressed": String(who.has(s.you)),
              "aria-label": `${emoji} ${who.size}: ${[...who].map((w) => s.name(w)).join(", ")}`,
              title: [...who].map((w) => s.name(w)).join(", "),
              onclick: () => react(m.id, emoji),
            }, `${emoji} ${who.size}`)))
        : null,
      seen.length ? h("div", { class: "seen" }, "Seen by " + seen.join(", ")) : null,
      tools,
    );
  }

  function drawMessages() {
    const stick = nearBottom();
    const timeline = s.timeline();
    const lastMine = [...timeline].reverse().find((m) => m.mine && !m.deleted);
    const keep = new Set();
    let prev = null;
    for (const m of timeline) {
      const seen = lastMine && m.id === lastMine.id ? s.seenBy(m.id) : [];
      const sig = JSON.stringify([m.text, m.edited, m.deleted, m.first, [...m.reactions].map(([e, w]) => [e, [...w]]), seen, s.name(m.from)]);
      let item = items.get(m.id);
      if (!item || item.sig !== sig) {
        const el = messageItem(m, seen);
        if (item) item.el.replaceWith(el);
        item = { el, sig };
        items.set(m.id, item);
      }
      keep.add(m.id);
      // Keep DOM order equal to the timeline's.
      const want = prev ? prev.nextSibling : list.firstChild;
      if (want !== item.el) list.insertBefore(item.el, want);
      prev = item.el;
    }
    for (const [id, item] of items) if (!keep.has(id)) { item.el.remove(); items.delete(id); }
    // Messages on their way out: after the real ones.
    list.querySelectorAll(".pending").forEach((el) => el.remove());
    for (const p of s.pending.values()) {
      list.append(h("li", { class: `msg first mine pending${p.failed ? " failed" : ""}` },
        avatar(s.you, s.name(s.you)),
        h("div", { class: "msg-head" }, h("strong", {}, s.name(s.you)), h("time", {}, p.failed ? "not sent" : "sending…")),
        h("div", { class: "msg-text" }, p.text,
          p.failed ? h("button", { type: "button", class: "ghost", onclick: () => conn.retry(p.clientId) }, " Retry") : null),
      ));
    }
    if (!timeline.length && !s.pending.size) {
      list.querySelectorAll(".empty").forEach((el) => el.remove());
      list.append(h("li", { class: "empty" }, r.mine ? "Nobody has said anything yet. Share the invite link and say hello." : "Nobody has said anything yet. Say hello!"));
    } else list.querySelectorAll(".empty").forEach((el) => el.remove());
    if (stick) log.scrollTop = log.scrollHeight;
    markRead();
  }

  function drawTyping() {
    const names = s.typingNames();
    typing.textContent = !names.length ? "" : names.length === 1 ? `${names[0]} is typing…`
      : names.length < 4 ? `${names.join(", ")} are typing…` : "Several people are typing…";
  }

  function drawEnded() {
    const e = conn.ended;
    if (e.reason === "left") return ctx.navigate("/rooms");
    const heading = e.reason === "closed" ? "This room was closed" : e.reason === "kicked" ? "You were removed" : e.reason === "replaced" ? "Open in another place" : "You cannot be in this room";
    mount(ctx.main, h("div", { class: "closed card stack" },
      h("h1", {}, heading),
      h("p", {}, e.text),
      h("p", { class: "hint" }, "Nothing of the conversation was kept."),
      h("div", { class: "row" },
        e.reason === "replaced"
          ? h("button", { type: "button", onclick: () => { rooms.forget(r.id); ctx.navigate("/r/" + encodeURIComponent(r.id), { replace: true }); } }, "Use it here")
          : null,
        h("a", { class: "button secondary", href: "/rooms", "data-link": "" }, "My rooms"),
      ),
    ));
    // The room is over for us: nothing of it stays in this tab.
    if (e.reason !== "replaced") rooms.forget(r.id);
  }

  function markRead() {
    if (document.hidden || !nearBottom()) return;
    const newest = s.newestId();
    const mineRead = s.receipts.get(s.you) || 0;
    if (newest > Math.max(lastRead, mineRead) && conn.status === "live") {
      lastRead = newest;
      conn.send({ type: "read", upTo: newest });
    }
  }

  function react(messageId, emoji) {
    const who = s.messages.get(messageId)?.reactions.get(emoji);
    conn.send({ type: "react", messageId, emoji, remove: !!who?.has(s.you) });
  }

  function morePalette(anchor, messageId) {
    const pal = h("span", { class: "palette", role: "group", "aria-label": "Reactions" },
      QUICK.map((e) => h("button", { type: "button", class: "ghost", "aria-label": `React ${e}`, onclick: () => { react(messageId, e); pal.remove(); } }, e)));
    anchor.replaceWith(pal);
    pal.querySelector("button").focus();
  }

  function startEdit(m) {
    editing = m.id;
    box.value = m.text;
    editNote.textContent = "Editing your message · Enter saves, Esc cancels";
    editNote.hidden = false;
    box.focus();
  }
  function stopEdit() {
    editing = null;
    editNote.hidden = true;
    box.value = "";
  }

  function submit() {
    const text = box.value.trim();
    if (editing !== null) {
      const old = s.messages.get(editing);
      if (text && old && text !== old.text) conn.send({ type: "edit", messageId: editing, text });
      stopEdit();
      return;
    }
    if (!text) return;
    conn.say(text);
    box.value = "";
    typingSent = 0;
    clearTimeout(typingTimer);
    log.scrollTop = log.scrollHeight;
  }

  function sendTyping(on) {
    if (on) {
      if (Date.now() - typingSent < TYPING_REPEAT_MS) return;
      typingSent = Date.now();
    } else {
      if (!typingSent) return;
      typingSent = 0;
    }
    conn.send({ type: "typing", typing: on });
  }

  box.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    } else if (e.key === "Escape" && editing !== null) {
      stopEdit();
    } else if (e.key === "ArrowUp" && !box.value && editing === null) {
      const m = s.lastOwn();
      if (m) {
        e.preventDefault();
        startEdit(m);
      }
    }
  });
  box.addEventListener("input", () => {
    if (editing !== null) return;
    sendTyping(!!box.value.trim());
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => sendTyping(false), TYPING_IDLE_MS);
  });
  box.addEventListener("blur", () => sendTyping(false));
  log.addEventListener("scroll", markRead);

  function drawNotify() {
    const on = notifyOn();
    notifyBtn.textContent = on ? "Notifications on" : "Notify me";
    notifyBtn.setAttribute("aria-pressed", String(on));
    notifyBtn.hidden = !("Notification" in self);
  }
  async function toggleNotify() {
    if (notifyOn()) localStorage.removeItem("rendezvous.notify");
    else if ((await Notification.requestPermission()) === "granted") localStorage.setItem("rendezvous.notify", "1");
    drawNotify();
  }

  const onChange = (e) => {
    if (conn.ended) return drawEnded();
    const what = e.detail;
    if (what === "messages" || what === "all") drawMessages();
    if (what === "typing" || what === "all" || what === "people") drawTyping();
    if (what === "people" || what === "room" || what === "all") {
      drawPeople(people, conn);
      // A name may have arrived with someone who joined.
      if (what !== "room") drawMessages();
    }
  };
  const onStatus = () => drawStatus();
  const onVisible = () => markRead();
  // What the room refused, or the media part has to say: one line, for a moment.
  const onNotice = (e) => toast(e.detail);
  conn.addEventListener("change", onChange);
  conn.addEventListener("status", onStatus);
  conn.addEventListener("notice", onNotice);
  document.addEventListener("visibilitychange", onVisible);

  drawStatus();
  drawNotify();
  if (conn.ended) drawEnded();
  else {
    drawPeople(people, conn);
    drawMessages();
    drawTyping();
    if (r.mine) drawInvites(invites, r.id);
    box.focus();
  }
  return () => {
    stopMedia();
    conn.removeEventListener("change", onChange);
    conn.removeEventListener("status", onStatus);
    conn.removeEventListener("notice", onNotice);
    document.removeEventListener("visibilitychange", onVisible);
    clearTimeout(typingTimer);
    sendTyping(false);
  };
}
