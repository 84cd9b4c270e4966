// The rooms this tab is in. Each keeps its connection while you look at another, so
// several conversations stay live at once. The tab remembers only which rooms and by
// which invite link (sessionStorage: ids, titles and codes, never a message), so a
// reload can walk back in; closing the tab forgets even that.

import { api, session } from "./api.js";
import { RoomConnection } from "./conn.js";
import { mentionedNames } from "./dom.js";

const KEY = "rendezvous.rooms";

/** id → {id, title, kind, code, creatorName, mine, conn} */
export const joined = new Map();
/** The caller's own live rooms (GET /api/rooms), refreshed by `loadMine`. */
export let mine = [];
/** `change` when the list, a room's unread count or its status changes. */
export const changes = new EventTarget();
const changed = () => changes.dispatchEvent(new Event("change"));

function remembered() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY)) || [];
  } catch {
    return [];
  }
}

function remember() {
  const live = [...joined.values()]
    .filter((r) => !r.conn?.ended)
    .map(({ id, title, kind, code }) => ({ id, title, kind, code }));
  // Rooms still being walked back into after a reload stay remembered.
  const pending = remembered().filter((r) => !joined.has(r.id));
  sessionStorage.setItem(KEY, JSON.stringify([...live, ...pending]));
}

/** The code at the end of an invite URL. */
export function codeOf(url) {
  return new URL(url, location.href).pathname.split("/").pop();
}

/** Walk into a room through an invite code; returns the room id. */
export async function enter(code) {
  const j = await api("POST", `/api/join/${encodeURIComponent(code)}`);
  const id = j.room.id;
  let r = joined.get(id);
  if (!r || r.conn?.ended) {
    r = {
      id,
      title: j.room.title,
      kind: j.room.kind,
      code,
      creatorName: j.room.creatorName || "",
      mine: j.room.creator === session.user?.id,
      conn: new RoomConnection({ roomId: id, token: j.token, wsUrl: j.wsUrl, room: j.room }),
    };
    r.conn.addEventListener("change", changed);
    const room = r;
    r.conn.addEventListener("message", (e) => notify(room, e.detail));
    r.conn.addEventListener("status", changed);
    joined.set(id, r);
  }
  remember();
  changed();
  return id;
}

/** A room by id: in memory, or back in through the link this tab (or its creator) has. */
export async function open(id) {
  const r = joined.get(id);
  if (r && !r.conn.ended) return r;
  const known = remembered().find((x) => x.id === id);
  let code = known?.code;
  if (!code) {
    // Our own room: its creator may always use its link.
    const room = await api("GET", `/api/rooms/${encodeURIComponent(id)}`);
    if (!room.inviteUrl) throw Object.assign(new Error("This room has no live invite link."), { code: "invite_revoked" });
    code = codeOf(room.inviteUrl);
  }
  await enter(code);
  return joined.get(id);
}

/**
 * After a reload: walk back into every room this tab was in, so the sidebar and
 * its conversations come back, not only the room on screen. A room that ended
 * meanwhile is dropped.
 */
export function resumeAll() {
  for (const r of remembered()) {
    if (joined.has(r.id)) continue;
    enter(r.code).catch(() => {
      const left = remembered().filter((x) => x.id !== r.id);
      sessionStorage.setItem(KEY, JSON.stringify(left));
    });
  }
}

/** Stop following a room (after it ended, or when you leave it). */
export function forget(id) {
  const r = joined.get(id);
  if (r && !r.conn.ended) r.conn.leave();
  joined.delete(id);
  remember();
  changed();
}

export async function loadMine() {
  try {
    mine = (await api("GET", "/api/rooms")) || [];
  } catch {
    mine = [];
  }
  changed();
  return mine;
}

/** Unread messages over every room. */
export function totalUnread() {
  let n = 0;
  for (const r of joined.values()) n += r.conn.ended ? 0 : r.conn.state.unread();
  return n;
}

/** Drop everything (log-out). */
export function clear() {
  for (const r of joined.values()) if (!r.conn.ended) r.conn.leave();
  joined.clear();
  mine = [];
  sessionStorage.removeItem(KEY);
  changed();
}

/** Whether the person asked for desktop notifications (and the browser allows them). */
export function notifyOn() {
  return "Notification" in self && Notification.permission === "granted" && localStorage.getItem("rendezvous.notify") === "1";
}

/**
 * A desktop notification for a message while the tab is hidden. It names the sender
 * and the room, never the text: notification centres keep what they are shown.
 */
function notify(r, ev) {
  if (!document.hidden || !notifyOn()) return;
  const s = r.conn.state;
  const mention = mentionedNames(ev.text).some(isMe);
  const body = mention ? `${s.name(ev.from)} mentioned you in ${r.title}` : `New message from ${s.name(ev.from)} in ${r.title}`;
  try {
    const n = new Notification("Rendezvous", { body, tag: r.id });
    n.onclick = () => {
      focus();
      n.close();
    };
  } catch {
    // Some browsers only allow notifications from a service worker; nothing to do.
  }
}

/** Whether `name` (after an @) names the signed-in person. */
export function isMe(name) {
  const u = session.user;
  if (!u) return false;
  const n = name.toLowerCase();
  const display = u.displayName.toLowerCase();
  return n === u.username?.toLowerCase() || n === display.replace(/\s+/g, "") || n === display.split(/\s+/)[0];
}
