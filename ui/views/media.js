// The video part of a room's page: before joining, a preview of your camera with a
// choice of camera and microphone; then the grid of everyone's video through the
// room's SFU (lib/media.js), with camera and microphone toggles and a connection
// quality label per person.

import { h, mount } from "../lib/dom.js";
import { MediaSession } from "../lib/media.js";

const STATS_EVERY_MS = 2000;

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
  let session = null;
  let gone = false;
  let statsTimer;
  const tiles = new Map();
  const video = h("video", { autoplay: true, muted: true, playsinline: true, "aria-label": "Your camera" });
  const camera = h("select", { id: "camera-choice" });
  const mic = h("select", { id: "mic-choice" });
  const status = h("p", { class: "hint", role: "status" });
  const camBtn = h("button", { type: "button", class: "secondary", "aria-pressed": "true", onclick: () => toggle("video", camBtn) }, "Camera on");
  const micBtn = h("button", { type: "button", class: "secondary", "aria-pressed": "true", onclick: () => toggle("audio", micBtn) }, "Microphone on");
  const self = h("figure", { class: "tile self" }, video, h("figcaption", {}, `${name} (you)`));
  const grid = h("div", { class: "grid", "aria-label": "Video of the people in the room" });

  async function start() {
    stopAll(stream);
    stream = null;
    try {
      const s = await capture(camera.value, mic.value);
      if (gone) return stopAll(s);
      stream = s;
      video.srcObject = s;
      status.textContent = "";
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

  function toggle(kind, button) {
    const tracks = kind === "video" ? stream?.getVideoTracks() : stream?.getAudioTracks();
    if (!tracks?.length) return;
    const on = !tracks[0].enabled;
    for (const t of tracks) t.enabled = on;
    // A disabled track still sends (black frames, silence): stop sending it instead,
    // so the others' decoders stop too.
    session?.senders.get(kind)?.replaceTrack(on ? tracks[0] : null).catch(() => {});
    button.setAttribute("aria-pressed", String(on));
    button.textContent = `${kind === "video" ? "Camera" : "Microphone"} ${on ? "on" : "off"}`;
    if (kind === "video") self.classList.toggle("camera-off", !on);
  }

  function remoteTile(participantId, media) {
    let t = tiles.get(participantId);
    if (!t) {
      const v = h("video", { autoplay: true, playsinline: true });
      const label = h("span", { class: "quality" }, "connecting…");
      const el = h("figure", { class: "tile remote", "data-participant": participantId }, v,
        h("figcaption", {}, conn.state.name(participantId), " · ", label));
      t = { el, video: v, label };
      tiles.set(participantId, t);
      grid.append(el);
    }
    if (t.video.srcObject !== media) t.video.srcObject = media;
  }

  async function pollStats() {
    if (!session || gone) return;
    const stats = await session.stats().catch(() => new Map());
    for (const [id, t] of tiles) {
      const s = stats.get(id);
      t.el.dataset.framesDecoded = String(s?.framesDecoded || 0);
      t.el.dataset.audioPackets = String(s?.audioPackets || 0);
      t.label.textContent = quality(s);
    }
    statsTimer = setTimeout(pollStats, STATS_EVERY_MS);
  }

  function join(withMedia) {
    if (!withMedia) {
      stopAll(stream);
      stream = null;
    }
    session = new MediaSession(conn, stream);
    conn.media = session;
    session.addEventListener("remote", (e) => remoteTile(e.detail.participantId, e.detail.stream));
    session.addEventListener("gone", (e) => {
      tiles.get(e.detail.participantId)?.el.remove();
      tiles.delete(e.detail.participantId);
    });
    grid.replaceChildren(...(stream ? [self] : []));
    mount(el, grid, h("div", { class: "row media-controls" },
      stream ? [camBtn, micBtn] : h("span", { class: "hint" }, "You watch and listen without camera or microphone."),
      h("button", { type: "button", class: "secondary", onclick: leaveMedia }, "Leave video"),
    ));
    pollStats();
  }

  function leaveMedia() {
    clearTimeout(statsTimer);
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
    // Another page of the app: the room's socket stays, so say the media ended.
    session?.stop(true);
    if (conn.media === session) conn.media = null;
    stopAll(stream);
  };
}
