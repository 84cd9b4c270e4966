// One room's conversation as the page knows it, fed by the room protocol's events
// (room-server/docs/protocol.md). Pure: no DOM, no socket, no clock, so it is tested
// on its own (ui/tests/chat.test.mjs). Messages live only in this object's memory.

/** How long after the last message from someone the next one still joins its group. */
const GROUP_MS = 5 * 60_000;

export class ChatState {
  constructor() {
    this.you = null;
    /**
     * id → {id, name, moderator, muted, connected, sending: {audio, video, screen},
     * audioMuted, videoMuted} for people in the room now.
     */
    this.people = new Map();
    /** Every name seen, so messages of people who left keep theirs. */
    this.names = new Map();
    /** id → message, in `order`. */
    this.messages = new Map();
    this.order = [];
    /** clientId → a message sent but not yet echoed. */
    this.pending = new Map();
    /** participantId → last `seq` they have read. */
    this.receipts = new Map();
    this.typing = new Set();
    this.locked = false;
    /** Who speaks now, by the SFU's `active_speaker` (null: nobody). */
    this.speaker = null;
    this.limits = null;
    /** Why the room ended (`room_closed.reason`), or null while it lives. */
    this.closed = null;
    this.lastSeq = 0;
  }

  /** Apply a server event. Returns what changed: "messages", "people", "media", "typing", "room" or null. */
  apply(ev) {
    if (typeof ev.seq === "number" && ev.type !== "welcome") {
      // A replayed event we already hold (a resume overlapping what we saw) changes nothing.
      if (ev.seq <= this.lastSeq) return null;
      this.lastSeq = ev.seq;
    }
    switch (ev.type) {
      case "welcome":
        return this.welcome(ev);
      case "joined":
        this.person(ev.participant);
        return "people";
      case "disconnected":
      case "reconnected": {
        const p = this.people.get(ev.participantId);
        if (p) p.connected = ev.type === "reconnected";
        if (ev.type === "disconnected") this.typing.delete(ev.participantId);
        return "people";
      }
      case "left":
        this.people.delete(ev.participantId);
        this.typing.delete(ev.participantId);
        return "people";
      case "message":
        this.typing.delete(ev.from);
        this.addMessage({ id: ev.id, ts: ev.ts, from: ev.from, text: ev.text, edited: false, reactions: [] });
        if (ev.clientId && ev.from === this.you) this.pending.delete(ev.clientId);
        return "messages";
      case "edited": {
        const m = this.messages.get(ev.messageId);
        if (m && !m.deleted) Object.assign(m, { text: ev.text, edited: true });
        return "messages";
      }
      case "deleted": {
        const m = this.messages.get(ev.messageId);
        if (m) Object.assign(m, { deleted: true, text: "", reactions: new Map() });
        return "messages";
      }
      case "reacted": {
        const m = this.messages.get(ev.messageId);
        if (!m) return null;
        const who = m.reactions.get(ev.emoji) || new Set();
        if (ev.removed) who.delete(ev.participantId);
        else who.add(ev.participantId);
        if (who.size) m.reactions.set(ev.emoji, who);
        else m.reactions.delete(ev.emoji);
        return "messages";
      }
      case "typing":
        if (ev.typing && ev.participantId !== this.you) this.typing.add(ev.participantId);
        else this.typing.delete(ev.participantId);
        return "typing";
      case "read":
        if ((this.receipts.get(ev.participantId) || 0) < ev.upTo) this.receipts.set(ev.participantId, ev.upTo);
        return "messages";
      case "muted": {
        const p = this.people.get(ev.participantId);
        if (p) p.muted = ev.muted;
        return "people";
      }
      case "media_state": {
        const p = this.people.get(ev.participantId);
        if (p) p.sending = { audio: ev.audio, video: ev.video, screen: ev.screen };
        return "media";
      }
      case "media_muted": {
        const p = this.people.get(ev.participantId);
        if (p) p[ev.kind === "audio" ? "audioMuted" : "videoMuted"] = ev.muted;
        return "media";
      }
      case "active_speaker":
        this.speaker = ev.participantId ?? null;
        return "media";
      case "locked":
        this.locked = ev.locked;
        return "room";
      case "room_closed":
        this.closed = ev.reason;
        return "room";
      case "error":
        if (ev.clientId && this.pending.has(ev.clientId)) {
          this.pending.get(ev.clientId).failed = ev.code;
          return "messages";
        }
        return null;
      default:
        return null;
    }
  }

  welcome(w) {
    this.you = w.you;
    this.people.clear();
    for (const p of w.participants) this.person(p);
    this.receipts = new Map(w.receipts.map((r) => [r.participantId, r.upTo]));
    this.locked = w.locked;
    this.limits = w.limits;
    this.typing.clear();
    if (!w.resumed) {
      // Not everything since our last event is still held: the backlog is the truth.
      this.messages.clear();
      this.order = [];
      for (const m of w.backlog) this.addMessage(m);
    }
    // `missed` holds what came after our last `seq` (they are numbered before the
    // welcome itself); a fresh join's backlog is already in.
    for (const ev of w.missed || []) this.apply(ev);
    this.lastSeq = Math.max(this.lastSeq, w.seq);
    return "all";
  }

  person(p) {
    this.people.set(p.id, { ...p });
    this.names.set(p.id, p.name);
  }

  addMessage(m) {
    if (this.messages.has(m.id)) return;
    const reactions = new Map((m.reactions || []).map((r) => [r.emoji, new Set(r.participants)]));
    this.messages.set(m.id, { ...m, reactions, deleted: false });
    // Ids are room-wide sequence numbers: keep them in order even if one arrives late.
    let i = this.order.length;
    while (i > 0 && this.order[i - 1] > m.id) i--;
    this.order.splice(i, 0, m.id);
  }

  /** A message we are sending, shown until the server echoes it. */
  addPending(clientId, text, now) {
    this.pending.set(clientId, { clientId, text, ts: now, from: this.you, failed: null });
  }

  name(id) {
    return this.names.get(id) || "Someone";
  }

  /** The messages in order, each with `first` (starts a group by one sender). */
  timeline() {
    const out = [];
    let prev = null;
    for (const id of this.order) {
      const m = this.messages.get(id);
      const first = !prev || prev.from !== m.from || m.ts - prev.ts > GROUP_MS;
      out.push({ ...m, first, mine: m.from === this.you });
      prev = m;
    }
    return out;
  }

  /** Your newest message that is not deleted (for Up-to-edit). */
  lastOwn() {
    for (let i = this.order.length - 1; i >= 0; i--) {
      const m = this.messages.get(this.order[i]);
      if (m.from === this.you && !m.deleted) return m;
    }
    return null;
  }

  /** The newest message id, or 0. */
  newestId() {
    return this.order.length ? this.order[this.order.length - 1] : 0;
  }

  /** Others who have read message `id` (receipts at or past it). */
  seenBy(id) {
    const out = [];
    for (const [pid, upTo] of this.receipts) if (pid !== this.you && upTo >= id) out.push(this.name(pid));
    return out.sort();
  }

  /** Messages from others after what you have read. */
  unread() {
    const read = this.receipts.get(this.you) || 0;
    let n = 0;
    for (let i = this.order.length - 1; i >= 0 && this.order[i] > read; i--) {
      const m = this.messages.get(this.order[i]);
      if (m.from !== this.you && !m.deleted) n++;
    }
    return n;
  }

  typingNames() {
    return [...this.typing].map((id) => this.name(id)).sort();
  }

  amModerator() {
    return !!this.people.get(this.you)?.moderator;
  }
}
