// One room's WebSocket: connect with the room token as a subprotocol, say hello,
// resume from the last `seq` after a drop (with backoff), refresh the room token
// before it runs out, and tell the page why a room ended.

import { api } from "./api.js";
import { ChatState } from "./chat.js";

/** Close codes after which reconnecting cannot help, and what to tell the person. */
const FINAL = {
  4003: "This pass is for another room.",
  4004: "You may not take part in this room.",
  4005: "The room is full.",
  4006: "The room is locked: nobody new can come in.",
  4007: "You were removed from this room and cannot come back.",
  4009: "This page is out of date. Reload it.",
  4010: "You were removed from this room by its host.",
  4013: "You opened this room somewhere else (another tab or device).",
};
/** Why the server ended a room (`room_closed.reason`), for people. */
export const CLOSED_REASONS = {
  ended: "The host ended the room.",
  closed: "The host closed the room.",
  idle: "The room closed after nobody was in it for a while.",
  lifetime: "The room reached its maximum duration.",
  shutdown: "The service shut down.",
};

/** Server events of the media session (handled by `this.media`, a MediaSession). */
const MEDIA_EVENTS = new Set(["answer", "offer", "ice_candidate", "track", "media_ended"]);

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10_000;

/** Decode a JWT's payload without checking it (only to read `exp`). */
function tokenExpiry(token) {
  try {
    const b64 = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(b64)).exp * 1000;
  } catch {
    return 0;
  }
}

/**
 * Events (EventTarget): `change` (detail: what changed, see ChatState.apply),
 * `status` (detail: connecting | live | reconnecting | ended), `notice` (detail: text).
 */
export class RoomConnection extends EventTarget {
  constructor({ roomId, token, wsUrl, room }) {
    super();
    this.roomId = roomId;
    this.token = token;
    this.wsUrl = wsUrl;
    this.room = room;
    this.state = new ChatState();
    this.status = "connecting";
    /** Set once the room is over for us: {reason, text}. */
    this.ended = null;
    this.attempt = 0;
    this.ws = null;
    this.nextClientId = 1;
    /** The media session (lib/media.js) once the person joins with media. */
    this.media = null;
    this.welcomed = false;
    this.onOffline = () => this.drop("offline");
    this.onOnline = () => this.reconnectNow();
    addEventListener("offline", this.onOffline);
    addEventListener("online", this.onOnline);
    this.scheduleTokenRefresh();
    this.connect();
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this.emit("status", status);
  }

  connect() {
    clearTimeout(this.retryTimer);
    if (this.ended) return;
    if (!navigator.onLine) {
      this.setStatus("reconnecting");
      return; // `online` brings us back.
    }
    const url = new URL(this.wsUrl, location.href);
    url.protocol = url.protocol === "https:" || url.protocol === "wss:" ? "wss:" : "ws:";
    // The token rides in the subprotocol list, never in the URL.
    const ws = new WebSocket(url, ["rendezvous.v1", "bearer." + this.token]);
    this.ws = ws;
    ws.onopen = () => {
      const hello = { type: "hello", protocolVersion: 1 };
      if (this.state.lastSeq) hello.resumeFrom = this.state.lastSeq;
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (e) => {
      let ev;
      try {
        ev = JSON.parse(e.data);
      } catch {
        return;
      }
      if (ev.type === "welcome") {
        this.attempt = 0;
        this.setStatus("live");
        // Media sessions are not resumed: after a reconnect, offer again.
        if (this.welcomed && this.media) this.media.start();
        this.welcomed = true;
      }
      if (MEDIA_EVENTS.has(ev.type)) {
        this.media?.handle(ev);
        return;
      }
      const what = this.state.apply(ev);
      if (ev.type === "welcome") this.resendPending(ev.resumed);
      if (ev.type === "room_closed") this.finish("closed", CLOSED_REASONS[ev.reason] || "The room was closed.");
      if (ev.type === "error" && !ev.clientId) this.emit("notice", ev.message);
      // Our offer was refused: the media session takes it back.
      if (ev.type === "error" && ev.code === "negotiation_failed") this.media?.handle(ev);
      if (what) this.emit("change", what);
      if (ev.type === "message" && what && ev.from !== this.state.you) this.emit("message", ev);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.closed(e.code, e.reason);
    };
  }

  async closed(code, reason) {
    if (this.ended) return;
    if (code === 1000 && this.state.closed) return; // room_closed already handled
    if (FINAL[code]) {
      let text = FINAL[code];
      // The host's reason rides in the close frame: `kicked: REASON`.
      if (code === 4010 && reason?.startsWith("kicked: ")) text += ` They said: “${reason.slice(8)}”`;
      this.finish(code === 4013 ? "replaced" : code === 4010 || code === 4007 ? "kicked" : "refused", text);
      return;
    }
    if (code === 4001 || code === 4002) {
      // The room token ran out or was refused: get a fresh one, then try again.
      if (!(await this.refreshToken())) return;
    }
    this.setStatus("reconnecting");
    // 4029: joins are rate-limited; wait at least window / limit (6 s by default).
    const base = code === 4029 ? 6_000 : Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
    this.attempt++;
    const delay = base * (0.8 + Math.random() * 0.4);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Drop the socket as a lost connection (the server keeps our seat for the grace period). */
  drop(why) {
    if (this.ended || !this.ws) return;
    const ws = this.ws;
    this.ws = null;
    // 4000, not 1000: 1000 would mean "I left".
    ws.close(4000, why);
    this.setStatus("reconnecting");
  }

  reconnectNow() {
    if (this.ended || this.ws) return;
    this.attempt = 0;
    this.connect();
  }

  async refreshToken() {
    try {
      const t = await api("POST", `/api/rooms/${encodeURIComponent(this.roomId)}/token`, { roomToken: this.token });
      this.token = t.token;
      this.wsUrl = t.wsUrl;
      this.scheduleTokenRefresh();
      return true;
    } catch (e) {
      if (e.status === 410 || e.status === 404) {
        this.finish("closed", "This room was closed.");
      } else if (e.status === 401 || e.status === 403) {
        this.finish("refused", e.message);
      } else {
        // Offline or the service is busy: keep the old token and try again later.
        this.scheduleTokenRefresh(15_000);
        return true;
      }
      return false;
    }
  }

  /** Refresh the room token at 80 % of its life, so a reconnect never needs a new one first. */
  scheduleTokenRefresh(inMs) {
    clearTimeout(this.tokenTimer);
    const exp = tokenExpiry(this.token);
    const ms = inMs ?? Math.max(5_000, (exp - Date.now()) * 0.8);
    this.tokenTimer = setTimeout(() => this.refreshToken(), ms);
  }

  finish(reason, text) {
    if (this.ended) return;
    this.ended = { reason, text };
    this.media?.stop();
    clearTimeout(this.retryTimer);
    clearTimeout(this.tokenTimer);
    removeEventListener("offline", this.onOffline);
    removeEventListener("online", this.onOnline);
    this.setStatus("ended");
    this.emit("change", "room");
  }

  send(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Send a chat message; it shows as pending until the server echoes it. */
  say(text) {
    const clientId = "c" + this.nextClientId++;
    this.state.addPending(clientId, text, Date.now());
    if (!this.send({ type: "send", text, clientId })) {
      this.state.pending.get(clientId).failed = "offline";
    }
    this.emit("change", "messages");
    return clientId;
  }

  /**
   * After a welcome, what we sent that the room never echoed did not reach it: send
   * it again. A resume replays our own messages with their `clientId`, so none is
   * doubled; after a fresh welcome (no replay) a backlog message of ours with the
   * same text counts as the echo.
   */
  resendPending(resumed) {
    for (const [clientId, p] of this.state.pending) {
      if (p.failed && p.failed !== "offline") continue;
      const echoed =
        !resumed &&
        this.state.order.some((id) => {
          const m = this.state.messages.get(id);
          return m.from === this.state.you && m.text === p.text && m.ts >= p.ts - 60_000;
        });
      if (echoed) this.state.pending.delete(clientId);
      else {
        p.failed = null;
        this.send({ type: "send", text: p.text, clientId });
      }
    }
  }

  /** Send a pending message again (after it failed). */
  retry(clientId) {
    const p = this.state.pending.get(clientId);
    if (!p) return;
    p.failed = null;
    if (!this.send({ type: "send", text: p.text, clientId })) p.failed = "offline";
    this.emit("change", "messages");
  }

  /** Leave for good: no grace period. */
  leave() {
    if (this.ws) {
      this.send({ type: "leave" });
      this.ws.close(1000, "left");
      this.ws = null;
    }
    this.finish("left", "You left the room.");
  }
}
