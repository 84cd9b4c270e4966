// The video part of a room's page: before joining, a preview of your camera with a
// choice of camera and microphone; then the grid of everyone's video through the
// room's SFU (lib/media.js): microphone, camera and screen-share toggles that
// everyone sees (`media_state`), the host's mute of anyone's audio or video
// (`mute_media`, enforced by the server), the speaker the server names
// (`active_speaker`) outlined and a connection quality label per person.

import { avatar, h, mount } from "../lib/dom.js";
import { MediaSession, tileKey } from "../lib/media.js";

const STATS_EVERY_MS = 2000;
/** A session the server ended (no connection) is started again this often at most. */
const RESTART_MS = 3000;

/** Ask for camera and microphone, with these device ids if given. */
async function capture(cameraId, micId) {
  return navigator.mediaDevices.getUserMedia({
    video: cameraId ? { deviceId: { exact: cameraId } } : { width: { ideal: 1280 }, height: { ideal: 720 } },
    audio: micId ? { deviceId: { exact: micId } } : true,
  });
}

function stopAll(stream) {
  for (const t of stream?.getTracks() || []) t.stop();
}

/** Words for the errors getUserMedia gives. */
function deviceError(e) {
  switch (e?.name) {
    case "NotAllowedError":
      return "The browser was not allowed to use your camera or microphone. Allow it in the address bar, then try again.";
    case "NotFoundError":
      return "No camera or microphone was found.";
    case "NotReadableError":
      return "Your camera or microphone is in use by another program.";
    default:
      return "Your camera and microphone could not be started.";
  }
}

function quality(s) {
  if (!s || !s.packets) return "connecting…";
  const loss = s.packetsLost / (s.packets + s.packetsLost);
  return loss > 0.1 ? "poor connection" : loss > 0.02 ? "fair connection" : "good connection";
}

/**
 * Draw the stage into `el` for room connection `conn`. Returns a cleanup that ends
 * the media session and stops every captured track (the camera light goes off when
 * you leave the page).
 */
export function mediaStage(el, conn, { name }) {
  let stream = null;
  let screenTrack = null;
  let session = null;
  let gone = false;
  let statsTimer;
  let restartTimer;
  /** What we send: the toggles' state, told to the room as `media_state`. */
  const on = { audio: true, video: true };
  /** tile key → {el, video, label, participantId, screen}. */
  const tiles = new Map();
  const video = h("video", { autoplay: true, muted: true, playsinline: true, "aria-label": "Your camera" });
  const camera = h("select", { id: "camera-choice" });
  const mic = h("select", { id: "mic-choice" });
  const status = h("p", { class: "hint", role: "status" });
  const camBtn = h("button", { type: "button", class: "secondary", "aria-pressed": "true", onclick: () => toggle("video") }, "Camera on");
  const micBtn = h("button", { type: "button", class: "secondary", "aria-pressed": "true", onclick: () => toggle("audio") }, "Microphone on");
  const shareBtn = h("button", { type: "button", class: "secondary", "aria-pressed": "false", onclick: () => (screenTrack ? stopShare() : share()) }, "Share screen");
  const selfCaption = h("figcaption", {}, `${name} (you)`);
  const self = h("figure", { class: "tile self" }, video, selfCaption);
  const grid = h("div", { class: "grid", "aria-label": "Video of the people in the room" });

  const me = () => conn.state.people.get(conn.state.you);
  const blocked = (kind) => !!me()?.[kind === "audio" ? "audioMuted" : "videoMuted"];

  async function start() {
    stopAll(stream);
    stream = null;
    try {
      const s = await capture(camera.value, mic.value);
      if (gone) return stopAll(s);
      stream = s;
      video.srcObject = s;
      status.textContent = "";
      apply("audio");
      apply("video");
      await listDevices();
    } catch (e) {
      status.textContent = deviceError(e);
    }
  }

  async function listDevices() {
    const devices = await navigator.mediaDevices.enumerateDevices();
    const fill = (select, kind, current) => {
      const list = devices.filter((d) => d.kind === kind);
      mount(select, list.map((d, i) => h("option", { value: d.deviceId, selected: d.deviceId === current }, d.label || `${kind === "videoinput" ? "Camera" : "Microphone"} ${i + 1}`)));
    };
    fill(camera, "videoinput", stream?.getVideoTracks()[0]?.getSettings().deviceId);
    fill(mic, "audioinput", stream?.getAudioTracks()[0]?.getSettings().deviceId);
  }

  /** Tell the room what we send (after joining). */
  function tell() {
    if (!session || !stream) return;
    session.keep({ type: "media_state", audio: on.audio && !blocked("audio"), video: on.video && !blocked("video"), screen: !!screenTrack && !blocked("video") });
  }

  function toggle(kind) {
    if (blocked(kind)) return;
    on[kind] = !on[kind];
    apply(kind);
    tell();
  }

  /** Make the captured track, the sender and the button match `on` and the host's mute. */
  function apply(kind) {
    const tracks = kind === "video" ? stream?.getVideoTracks() : stream?.getAudioTracks();
    const live = on[kind] && !blocked(kind);
    for (const t of tracks || []) t.enabled = live;
    // A disabled track still sends (black frames, silence): stop sending it instead,
    // so the others' decoders stop too.
    if (tracks?.length) session?.senders.get(kind)?.replaceTrack(live ? tracks[0] : null).catch(() => {});
    const button = kind === "video" ? camBtn : micBtn;
    const what = kind === "video" ? "Camera" : "Microphone";
    button.setAttribute("aria-pressed", String(live));
    button.disabled = blocked(kind);
    button.textContent = blocked(kind) ? `${what} off (host)` : `${what} ${live ? "on" : "off"}`;
    button.title = blocked(kind) ? `The host turned your ${what.toLowerCase()} off` : "";
    if (kind === "video") self.classList.toggle("camera-off", !live);
  }

  async function share() {
    if (blocked("video")) return;
    try {
      const s = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
      screenTrack = s.getVideoTracks()[0];
      // The browser's own "Stop sharing" ends the track.
      screenTrack.addEventListener("ended", stopShare);
      await session?.shareScreen(screenTrack);
      shareBtn.textContent = "Stop sharing";
      shareBtn.setAttribute("aria-pressed", "true");
      screenTile(true);
      tell();
    } catch (e) {
      if (e?.name !== "NotAllowedError") conn.emit("notice", `Your screen could not be shared: ${e.message}`);
    }
  }

  function stopShare() {
    if (!screenTrack) return;
    screenTrack.removeEventListener("ended", stopShare);
    screenTrack.stop();
    screenTrack = null;
    session?.stopScreen().catch(() => {});
    shareBtn.textContent = "Share screen";
    shareBtn.setAttribute("aria-pressed", "false");
    screenTile(false);
    tell();
  }

  /** Our own screen, as the others see it. */
  let ownScreen = null;
  function screenTile(show) {
    ownScreen?.remove();
    ownScreen = null;
    if (!show) return;
    const v = h("video", { autoplay: true, muted: true, playsinline: true, "aria-label": "Your shared screen" });
    v.srcObject = new MediaStream([screenTrack]);
    ownScreen = h("figure", { class: "tile screen self-screen" }, v, h("figcaption", {}, "Your screen"));
    grid.append(ownScreen);
  }

  function remoteTile({ key, participantId, screen, stream: media }) {
    let t = tiles.get(key);
    if (!t) {
      const v = h("video", { autoplay: true, playsinline: true });
      const label = h("span", { class: "quality" }, "connecting…");
      const badges = h("span", { class: "badges" });
      const tools = h("span", { class: "tools" });
      const who = conn.state.name(participantId);
      const el = h("figure", { class: `tile remote${screen ? " screen" : ""}`, "data-participant": participantId, "data-key": key },
        avatar(participantId, who), v,
        h("figcaption", {}, screen ? `${who}'s screen` : who, badges, " · ", label), tools);
      t = { el, video: v, label, badges, tools, participantId, screen };
      tiles.set(key, t);
      grid.append(el);
      watchSoon();
    }
    if (t.video.srcObject !== media) t.video.srcObject = media;
    decorate(t);
  }

  /** A tile's badges, camera-off look and the host's buttons, from the room state. */
  function decorate(t) {
    const p = conn.state.people.get(t.participantId);
    const sending = p?.sending || {};
    const name = p?.name || conn.state.name(t.participantId);
    if (t.screen) {
      t.el.hidden = !sending.screen || !!p?.videoMuted;
      return;
    }
    t.el.classList.toggle("speaking", conn.state.speaker === t.participantId);
    t.el.classList.toggle("camera-off", !sending.video || !!p?.videoMuted);
    const badges = [];
    if (p?.audioMuted) badges.push(h("span", { class: "badge", title: "The host turned this microphone off" }, "muted by host"));
    else if (!sending.audio) badges.push(h("span", { class: "badge" }, "mic off"));
    if (p?.videoMuted) badges.push(h("span", { class: "badge" }, "video stopped by host"));
    mount(t.badges, badges);
    if (!conn.state.amModerator()) return mount(t.tools);
    mount(t.tools,
      h("button", {
        type: "button", "aria-pressed": String(!!p?.audioMuted),
        "aria-label": p?.audioMuted ? `Allow ${name}'s microphone` : `Mute ${name}'s microphone`,
        onclick: () => conn.send({ type: "mute_media", participantId: t.participantId, kind: "audio", muted: !p?.audioMuted }),
      }, p?.audioMuted ? "Allow mic" : "Mute mic"),
      h("button", {
        type: "button", "aria-pressed": String(!!p?.videoMuted),
        "aria-label": p?.videoMuted ? `Allow ${name}'s video` : `Stop ${name}'s video`,
        onclick: () => conn.send({ type: "mute_media", participantId: t.participantId, kind: "video", muted: !p?.videoMuted }),
      }, p?.videoMuted ? "Allow video" : "Stop video"),
    );
  }

  /** The room state changed: redraw the tiles' badges, follow the host's mutes of us. */
  let wasBlocked = { audio: false, video: false };
  function onChange(e) {
    if (!["media", "people", "all"].includes(e.detail)) return;
    for (const t of tiles.values()) decorate(t);
    self.classList.toggle("speaking", !!session && conn.state.speaker === conn.state.you);
    for (const kind of ["audio", "video"]) {
      const now = blocked(kind);
      if (now === wasBlocked[kind]) continue;
      wasBlocked[kind] = now;
      const what = kind === "audio" ? "microphone" : "video";
      if (now) on[kind] = false;
      if (now && kind === "video") stopShare();
      apply(kind);
      tell();
      if (session) conn.emit("notice", now ? `The host turned your ${what} off.` : `The host allowed your ${what} again; turn it on when you are ready.`);
    }
  }
  conn.addEventListener("change", onChange);

  /**
   * A hidden tab watches nobody's video (the server stops sending it); audio
   * stays. A visible one says how tall it shows each camera, so the server can
   * send a small tile a small layer.
   */
  let lastWatch = "";
  function watchAsVisible() {
    const heights = {};
    for (const t of tiles.values()) {
      const px = Math.round(t.video.clientHeight * (window.devicePixelRatio || 1));
      if (!t.screen && px > 0) heights[t.participantId] = px;
    }
    const frame = { type: "watch", video: document.visibilityState === "hidden" ? [] : null, heights };
    const text = JSON.stringify(frame);
    if (text === lastWatch || !session) return;
    lastWatch = text;
    session.keep(frame);
  }
  document.addEventListener("visibilitychange", watchAsVisible);
  let resizeTimer;
  function watchSoon() {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(watchAsVisible, 300);
  }
  const resized = new ResizeObserver(watchSoon);
  resized.observe(grid);

  async function pollStats() {
    if (!session || gone) return;
    const stats = await session.stats().catch(() => new Map());
    for (const [key, t] of tiles) {
      const s = stats.get(key);
      t.el.dataset.framesDecoded = String(s?.framesDecoded || 0);
      t.el.dataset.frameHeight = String(s?.frameHeight || 0);
      t.el.dataset.audioPackets = String(s?.audioPackets || 0);
      t.label.textContent = quality(s);
    }
    const sent = stats.get("sent") || {};
    self.dataset.layers = Object.keys(sent).filter((rid) => sent[rid].bytesSent > 0).sort().join(" ");
    const transport = stats.get("transport") || "";
    if (grid.dataset.transport !== transport) {
      grid.dataset.transport = transport;
      selfCaption.textContent = transport === "tcp" ? `${name} (you) · over TCP` : `${name} (you)`;
      selfCaption.title = transport === "tcp" ? "Your network does not let video through over UDP, so it goes over TCP: it may lag a little more." : "";
    }
    statsTimer = setTimeout(pollStats, STATS_EVERY_MS);
  }

  function begin() {
    session = new MediaSession(conn, stream);
    lastWatch = "";
    conn.media = session;
    session.addEventListener("remote", (e) => remoteTile(e.detail));
    session.addEventListener("gone", (e) => {
      tiles.get(e.detail.key)?.el.remove();
      tiles.delete(e.detail.key);
      watchSoon();
    });
    session.addEventListener("ended", () => {
      conn.emit("notice", "Video could not connect to the room; trying again… (a network that blocks UDP stops video)");
      clearTimeout(restartTimer);
      restartTimer = setTimeout(() => {
        if (session && !gone) {
          stopShare();
          // The new session's first offer is followed by what `keep` holds.
          session.start();
          apply("audio");
          apply("video");
        }
      }, RESTART_MS);
    });
    apply("audio");
    apply("video");
    tell();
    watchAsVisible();
  }

  function join(withMedia) {
    if (!withMedia) {
      stopAll(stream);
      stream = null;
    }
    begin();
    grid.replaceChildren(...(stream ? [self] : []));
    mount(el, grid, h("div", { class: "row media-controls" },
      stream ? [micBtn, camBtn, shareBtn] : h("span", { class: "hint" }, "You watch and listen without camera or microphone."),
      h("button", { type: "button", class: "secondary", onclick: leaveMedia }, "Leave video"),
    ));
    pollStats();
  }

  function leaveMedia() {
    clearTimeout(statsTimer);
    clearTimeout(restartTimer);
    stopShare();
    session?.stop(true);
    session = null;
    conn.media = null;
    tiles.clear();
    stopAll(stream);
    stream = null;
    drawPreview();
    start();
  }

  function drawPreview() {
    mount(el,
      h("div", { class: "prejoin" },
        self,
        h("div", { class: "stack devices" },
          h("label", { for: "camera-choice" }, "Camera"), camera,
          h("label", { for: "mic-choice" }, "Microphone"), mic,
          h("div", { class: "row" }, camBtn, micBtn),
          h("div", { class: "row" },
            h("button", { type: "button", onclick: () => join(true) }, "Join with camera and microphone"),
            h("button", { type: "button", class: "secondary", onclick: () => join(false) }, "Join without"),
          ),
          status,
        ),
      ),
    );
  }

  camera.addEventListener("change", start);
  mic.addEventListener("change", start);
  drawPreview();
  start();
  return () => {
    gone = true;
    clearTimeout(statsTimer);
    clearTimeout(restartTimer);
    clearTimeout(resizeTimer);
    resized.disconnect();
    conn.removeEventListener("change", onChange);
    document.removeEventListener("visibilitychange", watchAsVisible);
    // Another page of the app: the room's socket stays, so say the media ended.
    session?.stop(true);
    if (conn.media === session) conn.media = null;
    stopAll(stream);
    if (screenTrack) screenTrack.stop();
  };
}
