// The video part of a room's page, as far as it goes today: a preview of your camera
// with a choice of camera and microphone and their toggles. Nothing is sent: the
// room server's SFU and its signalling (the room protocol's `offer` / `answer` /
// `ice_candidate` / `track`) come next, and the page says so plainly.

import { h, mount } from "../lib/dom.js";

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

/**
 * Draw the stage into `el`. Returns a cleanup that stops every captured track (the
 * camera light goes off when you leave the page).
 */
export function mediaStage(el, { name }) {
  let stream = null;
  let gone = false;
  const video = h("video", { autoplay: true, muted: true, playsinline: true, "aria-label": "Your camera" });
  const camera = h("select", { id: "camera-choice" });
  const mic = h("select", { id: "mic-choice" });
  const status = h("p", { class: "hint", role: "status" });
  const camBtn = h("button", { type: "button", class: "secondary", "aria-pressed": "true", onclick: () => toggle("video", camBtn) }, "Camera on");
  const micBtn = h("button", { type: "button", class: "secondary", "aria-pressed": "true", onclick: () => toggle("audio", micBtn) }, "Microphone on");

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
    button.setAttribute("aria-pressed", String(on));
    button.textContent = `${kind === "video" ? "Camera" : "Microphone"} ${on ? "on" : "off"}`;
    tile.classList.toggle("camera-off", kind === "video" ? !on : tile.classList.contains("camera-off"));
  }

  camera.addEventListener("change", start);
  mic.addEventListener("change", start);

  const tile = h("figure", { class: "tile self" }, video, h("figcaption", {}, `${name} (you)`));
  mount(el,
    h("div", { class: "prejoin" },
      tile,
      h("div", { class: "stack devices" },
        h("p", {}, "Video calls are not live yet: nobody can see or hear you. Check your camera and microphone here; talk in the chat below."),
        h("label", { for: "camera-choice" }, "Camera"), camera,
        h("label", { for: "mic-choice" }, "Microphone"), mic,
        h("div", { class: "row" }, camBtn, micBtn),
        status,
      ),
    ),
  );
  start();
  return () => {
    gone = true;
    stopAll(stream);
  };
}
