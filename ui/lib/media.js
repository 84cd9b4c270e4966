// One participant's media session with the room's SFU: an RTCPeerConnection whose
// signalling rides on the room socket (room-server/docs/protocol.md, "Media"):
// we offer first (our tracks, or only a data channel to receive), the server
// answers, then renegotiates with its own offers as people publish and leave; its
// `track` events say whose track each m-line carries.

/**
 * Events: `remote` (detail {participantId, stream}) when someone's media arrives or
 * changes, `gone` (detail {participantId}) when all of it stopped, `state` (detail:
 * the connection state).
 */
export class MediaSession extends EventTarget {
  constructor(conn, stream) {
    super();
    this.conn = conn;
    this.stream = stream;
    /** mid → {participantId, kind, streamId} from the server's `track` events. */
    this.mids = new Map();
    /** participantId → MediaStream of their forwarded tracks. */
    this.remote = new Map();
    this.pc = null;
    this.start();
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  start() {
    this.pc?.close();
    for (const id of this.remote.keys()) this.emit("gone", { participantId: id });
    this.remote.clear();
    this.mids.clear();
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" });
    this.pc = pc;
    /** kind → our RTCRtpSender (camera off replaces its track with none). */
    this.senders = new Map();
    if (this.stream) {
      for (const track of this.stream.getTracks()) {
        const t = pc.addTransceiver(track, { direction: "sendonly", streams: [this.stream] });
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
    (async () => {
      await pc.setLocalDescription(await pc.createOffer());
      this.conn.send({ type: "offer", sdp: pc.localDescription.sdp });
    })().catch((err) => this.conn.emit("notice", `Video could not start: ${err.message}`));
  }

  attach(mid, track) {
    const info = this.mids.get(mid);
    if (!info) return;
    let stream = this.remote.get(info.participantId);
    if (!stream) {
      stream = new MediaStream();
      this.remote.set(info.participantId, stream);
    }
    for (const old of stream.getTracks()) if (old.kind === track.kind && old !== track) stream.removeTrack(old);
    stream.addTrack(track);
    this.emit("remote", { participantId: info.participantId, stream });
  }

  /** A signalling event from the room socket. */
  async handle(ev) {
    const pc = this.pc;
    try {
      switch (ev.type) {
        case "answer":
          await pc.setRemoteDescription({ type: "answer", sdp: ev.sdp });
          break;
        case "offer":
          await pc.setRemoteDescription({ type: "offer", sdp: ev.sdp });
          await pc.setLocalDescription(await pc.createAnswer());
          this.conn.send({ type: "answer", sdp: pc.localDescription.sdp });
          // Tracks whose m-line already existed get no new `track` event from the browser.
          for (const t of pc.getTransceivers()) if (t.receiver.track && t.currentDirection !== "inactive" && this.mids.has(t.mid)) this.attach(t.mid, t.receiver.track);
          break;
        case "ice_candidate":
          await pc.addIceCandidate(ev.candidate ? { candidate: ev.candidate, sdpMid: ev.sdpMid ?? "0" } : null);
          break;
        case "track":
          if (ev.removed) this.unmap(ev.mid);
          else this.mids.set(ev.mid, { participantId: ev.participantId, kind: ev.kind, streamId: ev.streamId });
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
    const stream = this.remote.get(info.participantId);
    const left = [...this.mids.values()].some((i) => i.participantId === info.participantId);
    if (!left) {
      this.remote.delete(info.participantId);
      this.emit("gone", { participantId: info.participantId });
    } else if (stream) {
      for (const t of stream.getTracks()) if (t.kind === info.kind) stream.removeTrack(t);
      this.emit("remote", { participantId: info.participantId, stream });
    }
  }

  /** Per participant: video frames decoded and audio packets received so far. */
  async stats() {
    const out = new Map();
    if (!this.pc) return out;
    const report = await this.pc.getStats();
    for (const s of report.values()) {
      if (s.type !== "inbound-rtp") continue;
      const info = this.mids.get(s.mid);
      if (!info) continue;
      const o = out.get(info.participantId) || { framesDecoded: 0, audioPackets: 0, packetsLost: 0, packets: 0 };
      if (s.kind === "video") o.framesDecoded += s.framesDecoded || 0;
      if (s.kind === "audio") o.audioPackets += s.packetsReceived || 0;
      o.packets += s.packetsReceived || 0;
      o.packetsLost += Math.max(0, s.packetsLost || 0);
      out.set(info.participantId, o);
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
