// One participant's media session with the room's SFU: an RTCPeerConnection whose
// signalling rides on the room socket (room-server/docs/protocol.md, "Media"):
// we offer first (our tracks, or only a data channel to receive), the server
// answers, then renegotiates with its own offers as people publish and leave; its
// `track` events say whose track each m-line carries. We offer again ourselves to
// add a shared screen; when our offer crosses one of the server's, ours wins (the
// server rolls its own back and offers again after).

/**
 * The camera goes out three times (simulcast): a quarter, half and full size.
 * The server sends each viewer the one that fits their bandwidth and the size
 * of the tile they show it in; the browser drops the upper ones itself when its
 * own uplink or CPU cannot carry them.
 */
export const CAMERA_LAYERS = [
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", maxBitrate: 1_500_000 },
];

/** The key of one tile: a person's camera and microphone, or their shared screen. */
export function tileKey(participantId, screen) {
  return screen ? `${participantId}:screen` : participantId;
}

/**
 * Events: `remote` (detail {key, participantId, screen, stream}) when someone's
 * media arrives or changes, `gone` (detail {key}) when all of it stopped, `state`
 * (detail: the connection state), `ended` when the server ended the session (no
 * connection could be made).
 */
export class MediaSession extends EventTarget {
  constructor(conn, stream) {
    super();
    this.conn = conn;
    this.stream = stream;
    /** mid → {participantId, kind, streamId, screen} from the server's `track` events. */
    this.mids = new Map();
    /** tile key → MediaStream of the forwarded tracks. */
    this.remote = new Map();
    this.pc = null;
    /** Our shared screen's transceiver, kept once made (sharing again reuses it). */
    this.screen = null;
    /**
     * type → the last `media_state` / `watch` frame: the server forgets both when a
     * media session ends, so each new session's first offer is followed by them.
     */
    this.kept = new Map();
    this.start();
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  start() {
    this.pc?.close();
    for (const key of this.remote.keys()) this.emit("gone", { key });
    this.remote.clear();
    this.mids.clear();
    this.screen = null;
    this.wantOffer = false;
    this.offered = false;
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" });
    this.pc = pc;
    /** kind → our RTCRtpSender (camera off replaces its track with none). */
    this.senders = new Map();
    if (this.stream) {
      for (const track of this.stream.getTracks()) {
        const init = { direction: "sendonly", streams: [this.stream] };
        if (track.kind === "video") init.sendEncodings = CAMERA_LAYERS.map((l) => ({ ...l }));
        const t = pc.addTransceiver(track, init);
        this.senders.set(track.kind, t.sender);
      }
    } else {
      // Receiving only: a data channel gives the first offer something to negotiate.
      pc.createDataChannel("bootstrap");
    }
    pc.onicecandidate = (e) => {
      if (!e.candidate) return;
      this.conn.send({ type: "ice_candidate", candidate: e.candidate.candidate, sdpMid: e.candidate.sdpMid ?? undefined });
    };
    pc.onconnectionstatechange = () => this.emit("state", pc.connectionState);
    pc.ontrack = (e) => this.attach(e.transceiver.mid, e.track);
    this.offer();
  }

  /**
   * Run signalling steps one at a time, in arrival order: an `offer` that comes
   * right behind the `answer` must see the answer applied.
   */
  serial(step) {
    this.queue = (this.queue || Promise.resolve()).then(step, step);
    return this.queue;
  }

  /** Offer now, or as soon as the signalling state is stable again. */
  offer() {
    return this.serial(() => this.makeOffer());
  }

  async makeOffer() {
    const pc = this.pc;
    if (!pc) return;
    if (pc.signalingState !== "stable") {
      this.wantOffer = true;
      return;
    }
    this.wantOffer = false;
    try {
      await pc.setLocalDescription(await pc.createOffer());
      if (this.pc !== pc) return;
      const screen = this.screen?.mid ? [this.screen.mid] : undefined;
      this.conn.send({ type: "offer", sdp: pc.localDescription.sdp, screen });
      if (!this.offered) {
        this.offered = true;
        for (const frame of this.kept.values()) this.conn.send(frame);
      }
    } catch (err) {
      this.conn.emit("notice", `Video could not start: ${err.message}`);
    }
  }

  /**
   * Send a session-wide state frame (`media_state`, `watch`) now, or after this
   * session's first offer, and again after every new session's.
   */
  keep(frame) {
    this.kept.set(frame.type, frame);
    if (this.offered) this.conn.send(frame);
  }

  /** Send `track` as our shared screen (a new m-line the first time). */
  async shareScreen(track) {
    if (this.screen) {
      await this.screen.sender.replaceTrack(track);
      return;
    }
    const stream = new MediaStream([track]);
    this.screen = this.pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
    await this.offer();
  }

  /** Stop sending the shared screen; its m-line stays for the next share. */
  async stopScreen() {
    await this.screen?.sender.replaceTrack(null);
  }

  attach(mid, track) {
    const info = this.mids.get(mid);
    if (!info) return;
    const key = tileKey(info.participantId, info.screen);
    let stream = this.remote.get(key);
    if (!stream) {
      stream = new MediaStream();
      this.remote.set(key, stream);
    }
    for (const old of stream.getTracks()) if (old.kind === track.kind && old !== track) stream.removeTrack(old);
    stream.addTrack(track);
    this.emit("remote", { key, participantId: info.participantId, screen: info.screen, stream });
  }

  /** A signalling event from the room socket. */
  handle(ev) {
    return this.serial(() => this.process(ev));
  }

  async process(ev) {
    const pc = this.pc;
    if (!pc) return;
    try {
      switch (ev.type) {
        case "answer":
          await pc.setRemoteDescription({ type: "answer", sdp: ev.sdp });
          if (this.wantOffer) await this.makeOffer();
          break;
        case "offer":
          // Ours is on its way: the server rolls its offer back when ours arrives.
          if (pc.signalingState === "have-local-offer") break;
          await pc.setRemoteDescription({ type: "offer", sdp: ev.sdp });
          await pc.setLocalDescription(await pc.createAnswer());
          this.conn.send({ type: "answer", sdp: pc.localDescription.sdp });
          // Tracks whose m-line already existed get no new `track` event from the browser.
          for (const t of pc.getTransceivers()) if (t.receiver.track && t.currentDirection !== "inactive" && this.mids.has(t.mid)) this.attach(t.mid, t.receiver.track);
          if (this.wantOffer) await this.makeOffer();
          break;
        case "ice_candidate":
          await pc.addIceCandidate(ev.candidate ? { candidate: ev.candidate, sdpMid: ev.sdpMid ?? "0" } : null);
          break;
        case "track":
          if (ev.removed) this.unmap(ev.mid);
          else this.mids.set(ev.mid, { participantId: ev.participantId, kind: ev.kind, streamId: ev.streamId, screen: !!ev.screen });
          break;
        case "media_ended":
          this.emit("ended", ev.reason);
          break;
        case "error":
          // `negotiation_failed`: an offer of ours the server refused is taken back,
          // so the server's next offer is answered again.
          if (pc.signalingState === "have-local-offer") await pc.setLocalDescription({ type: "rollback" });
          break;
      }
    } catch (err) {
      this.conn.emit("notice", `Video negotiation failed: ${err.message}`);
    }
  }

  unmap(mid) {
    const info = this.mids.get(mid);
    this.mids.delete(mid);
    if (!info) return;
    const key = tileKey(info.participantId, info.screen);
    const stream = this.remote.get(key);
    const left = [...this.mids.values()].some((i) => tileKey(i.participantId, i.screen) === key);
    if (!left) {
      this.remote.delete(key);
      this.emit("gone", { key });
    } else if (stream) {
      for (const t of stream.getTracks()) if (t.kind === info.kind) stream.removeTrack(t);
      this.emit("remote", { key, participantId: info.participantId, screen: info.screen, stream });
    }
  }

  /**
   * Per tile key: video frames decoded and their height, audio packets received;
   * under the key "sent", the simulcast layers of our camera that go out
   * (rid → {bytesSent, frameHeight}).
   */
  async stats() {
    const out = new Map();
    if (!this.pc) return out;
    const report = await this.pc.getStats();
    const sent = {};
    for (const s of report.values()) {
      if (s.type === "outbound-rtp" && s.kind === "video" && s.rid) {
        sent[s.rid] = { bytesSent: s.bytesSent || 0, frameHeight: s.frameHeight || 0 };
      }
    }
    out.set("sent", sent);
    // How the session reaches the room: "udp", or "tcp" (ICE-TCP) where the
    // network drops UDP.
    for (const s of report.values()) {
      if (s.type !== "transport" || !s.selectedCandidatePairId) continue;
      const pair = report.get(s.selectedCandidatePairId);
      const local = pair && report.get(pair.localCandidateId);
      if (local?.protocol) out.set("transport", local.protocol);
    }
    for (const s of report.values()) {
      if (s.type !== "inbound-rtp") continue;
      const info = this.mids.get(s.mid);
      if (!info) continue;
      const key = tileKey(info.participantId, info.screen);
      const o = out.get(key) || { framesDecoded: 0, audioPackets: 0, packetsLost: 0, packets: 0 };
      if (s.kind === "video") {
        o.framesDecoded += s.framesDecoded || 0;
        o.frameHeight = s.frameHeight || 0;
      }
      if (s.kind === "audio") o.audioPackets += s.packetsReceived || 0;
      o.packets += s.packetsReceived || 0;
      o.packetsLost += Math.max(0, s.packetsLost || 0);
      out.set(key, o);
    }
    return out;
  }

  /** End the session; `tell` the room so (when the socket stays open). */
  stop(tell = false) {
    if (tell && this.pc) this.conn.send({ type: "stop_media" });
    this.pc?.close();
    this.pc = null;
  }
}
