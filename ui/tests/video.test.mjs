// Video through the room's SFU in Chromium with fake cameras and microphones: every
// page decodes every other publisher's video and receives their audio; a camera
// turned off stops the others' decoders; a viewer without camera sees everyone; the
// host's mute stops someone's audio at the server; a shared screen gets a tile;
// cameras go out in simulcast layers and a small tile gets a small one; a page
// that cannot reach the room over UDP gets there over ICE-TCP; the room offers
// subscribers RTX and takes publishers without it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, account, assertNoProblems, launch, person, registerVia, shot } from "./helpers.mjs";

const FAKE_MEDIA = [
  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
  "--autoplay-policy=no-user-gesture-required", "--disable-features=WebRtcHideLocalIpsWithMdns",
  "--auto-select-desktop-capture-source=Entire screen",
];

/** The height of the frames `page` decodes of `name`'s camera (its last stats poll). */
async function heightOf(page, name) {
  const tile = page.locator(".tile.remote:not(.screen)", { hasText: name });
  return Number((await tile.getAttribute("data-frame-height")) || 0);
}

async function framesOf(page, name) {
  const tile = page.locator(".tile.remote", { hasText: name });
  return Number((await tile.getAttribute("data-frames-decoded")) || 0);
}

/** Wait until `page` has decoded more than `after` frames of `name`'s video. */
async function decodes(page, name, after = 0) {
  await page.waitForFunction(
    ([n, a]) => [...document.querySelectorAll(".tile.remote")].some((t) => t.textContent.includes(n) && Number(t.dataset.framesDecoded) > a),
    [name, after],
    { timeout: 30_000 },
  );
}

async function joinVideo(p, link, withCamera = true) {
  await p.context.grantPermissions(["camera", "microphone"], { origin: BASE });
  await p.page.goto(link);
  await p.page.locator('.status[data-state="live"]').waitFor();
  await p.page.getByRole("button", { name: withCamera ? "Join with camera and microphone" : "Join without" }).click();
}

/** Keep every RTCPeerConnection `p`'s pages make in `window.__pcs`, to read their SDP. */
async function recordPeerConnections(p) {
  await p.context.addInitScript(() => {
    const Original = window.RTCPeerConnection;
    window.__pcs = [];
    window.RTCPeerConnection = function (...args) {
      const pc = new Original(...args);
      window.__pcs.push(pc);
      return pc;
    };
    window.RTCPeerConnection.prototype = Original.prototype;
    Object.setPrototypeOf(window.RTCPeerConnection, Original);
  });
}

/** The video m-sections of an SDP, each with its mid. */
function videoSections(sdp) {
  return sdp.split("\r\nm=").slice(1).map((m) => "m=" + m).filter((m) => m.startsWith("m=video"))
    .map((m) => ({ text: m, mid: (m.match(/a=mid:(\S+)/) || [])[1] }));
}

/** `p` (registered) opens a video room titled `title`; returns its invite link. */
async function openVideoRoom(p, title) {
  await p.page.goto(BASE + "/rooms/new");
  await p.page.getByText("Cameras and microphones").click();
  await p.page.getByLabel("Title").fill(title);
  await p.page.getByRole("button", { name: "Open the room" }).click();
  await p.page.waitForURL(/\/r\//);
  return p.page.locator(".invite-url").first().inputValue();
}

/** Both pages decode each other's video and receive each other's audio. */
async function seeAndHearEachOther(a, aName, b, bName) {
  await decodes(a.page, bName);
  await decodes(b.page, aName);
  for (const p of [a, b]) {
    await p.page.waitForFunction(() => [...document.querySelectorAll(".tile.remote")].some((t) => Number(t.dataset.audioPackets) > 0));
  }
}

test("people in a video room see and hear each other through the SFU", async () => {
  const browser = await launch(FAKE_MEDIA);
  try {
    const ana = await person(browser);
    const ben = await person(browser);
    const cam = await person(browser);
    await registerVia(ana.page, account("Ana Video"));
    const link = await openVideoRoom(ana, "Stand-up");
    await registerVia(ben.page, account("Ben Video"));
    await registerVia(cam.page, account("Cam Viewer"));
    await recordPeerConnections(ben);

    await joinVideo(ana, link);
    await joinVideo(ben, link);
    await seeAndHearEachOther(ana, "Ana Video", ben, "Ben Video");
    // RTX: the room offers Ben its retransmission format for Ana's video (paired
    // in an FID group) and Chromium keeps it; Ben's own camera the room takes
    // without RTX (he resends on the stream itself).
    const sdp = await ben.page.evaluate(() => {
      const pc = window.__pcs.filter((p) => p.connectionState === "connected").at(-1);
      return { room: pc.currentRemoteDescription.sdp, ben: pc.currentLocalDescription.sdp };
    });
    const room = videoSections(sdp.room);
    const sent = room.filter((m) => m.text.includes("a=sendonly"));
    assert.ok(sent.length >= 1, `the room sends Ben video: ${sdp.room}`);
    for (const m of sent) {
      assert.match(m.text, /rtx\/90000/);
      assert.match(m.text, /a=ssrc-group:FID \d+ \d+/);
      const answer = videoSections(sdp.ben).find((b) => b.mid === m.mid);
      assert.match(answer.text, /rtx\/90000/, "Chromium keeps RTX for the video it receives");
    }
    const taken = room.filter((m) => m.text.includes("a=recvonly"));
    assert.ok(taken.length >= 1, `the room receives Ben's camera: ${sdp.room}`);
    for (const m of taken) assert.doesNotMatch(m.text, /rtx\/90000/, "Ben's camera is taken without RTX");
    // Simulcast: Ana's camera goes out in two layers or more (the browser drops
    // those its uplink or CPU cannot carry); Ben gets one of them, whole.
    await ana.page.waitForFunction(() => (document.querySelector(".tile.self")?.dataset.layers || "").split(" ").filter(Boolean).length >= 2, null, { timeout: 30_000 });

    // A viewer without camera: sees both, sends nothing (so nobody gets a tile of them).
    await joinVideo(cam, link, false);
    await decodes(cam.page, "Ana Video");
    await decodes(cam.page, "Ben Video");
    await shot(cam.page, "video-room-grid");
    assert.equal(await ana.page.locator(".tile.remote", { hasText: "Cam Viewer" }).count(), 0);

    // A fourth page, publishing too: four people at once, everyone decodes everyone
    // who sends. Then Dee leaves the video, to spare the machine's two cores.
    const dee = await person(browser);
    await registerVia(dee.page, account("Dee Video"));
    await joinVideo(dee, link);
    for (const who of ["Ana Video", "Ben Video"]) await decodes(dee.page, who);
    for (const p of [ana, ben, cam]) await decodes(p.page, "Dee Video");
    // The SFU names who speaks (the fake microphones beep): their tile is outlined.
    await cam.page.locator(".tile.remote.speaking").first().waitFor({ timeout: 20_000 });
    await shot(cam.page, "video-room-four");
    await dee.page.getByRole("button", { name: "Leave video" }).click();
    await ana.page.locator(".tile.remote", { hasText: "Dee Video" }).waitFor({ state: "detached", timeout: 30_000 });

    // Ana turns her camera off: Ben's decoder of her video stops.
    await ana.page.getByRole("button", { name: "Camera on" }).click();
    await ana.page.getByRole("button", { name: "Camera off" }).waitFor();
    await ben.page.waitForTimeout(3_000); // the last frames in flight, and a stats poll
    const before = await framesOf(ben.page, "Ana Video");
    await ben.page.waitForTimeout(4_000);
    const after = await framesOf(ben.page, "Ana Video");
    assert.ok(after - before <= 2, `frames still decoded with the camera off: ${before} → ${after}`);
    // And on again: decoding resumes.
    await ana.page.getByRole("button", { name: "Camera off" }).click();
    await decodes(ben.page, "Ana Video", after);

    // Cam's tab goes to the background: the server stops sending it video (its
    // decoders stop); back in front, the video comes back at once.
    const setHidden = (hidden) => cam.page.evaluate((h) => {
      Object.defineProperty(document, "visibilityState", { value: h ? "hidden" : "visible", configurable: true });
      document.dispatchEvent(new Event("visibilitychange"));
    }, hidden);
    await setHidden(true);
    await cam.page.waitForTimeout(3_000);
    const hidden0 = await framesOf(cam.page, "Ana Video");
    await cam.page.waitForTimeout(4_000);
    const hidden1 = await framesOf(cam.page, "Ana Video");
    assert.ok(hidden1 - hidden0 <= 2, `video still sent to a hidden tab: ${hidden0} → ${hidden1}`);
    await setHidden(false);
    await decodes(cam.page, "Ana Video", hidden1 + 10);

    // Cam's video grid narrows to one small column: Ana's tile is smaller than
    // the layer Cam gets, so the server switches Cam to a smaller layer of her
    // camera (the page tells it the tile's height), and Cam's decoder goes on
    // across the seam. Wide again, the larger layer comes back.
    const tileHeight = () => cam.page.evaluate(() => document.querySelector(".tile.remote:not(.screen) video").clientHeight);
    await cam.page.waitForFunction((n) => [...document.querySelectorAll(".tile.remote:not(.screen)")].some((t) => t.textContent.includes(n) && Number(t.dataset.frameHeight) > 0), "Ana Video");
    const wide = await tileHeight();
    const tall = await heightOf(cam.page, "Ana Video");
    await cam.page.evaluate(() => { document.querySelector(".grid").style.width = "240px"; });
    const narrow = await tileHeight();
    const smaller = ([n, h]) => [...document.querySelectorAll(".tile.remote:not(.screen)")].some((t) => t.textContent.includes(n) && Number(t.dataset.frameHeight) > 0 && Number(t.dataset.frameHeight) < h);
    await cam.page.waitForFunction(smaller, ["Ana Video", tall], { timeout: 30_000 });
    const small = await heightOf(cam.page, "Ana Video");
    await decodes(cam.page, "Ana Video", (await framesOf(cam.page, "Ana Video")) + 10);
    await cam.page.evaluate(() => { document.querySelector(".grid").style.width = ""; });
    await cam.page.waitForFunction(([n, h]) => [...document.querySelectorAll(".tile.remote:not(.screen)")].some((t) => t.textContent.includes(n) && Number(t.dataset.frameHeight) > h), ["Ana Video", small], { timeout: 30_000 });
    console.log(`simulcast: Cam decodes Ana at ${tall} px in a ${wide} px tile, at ${small} px in a ${narrow} px tile`);

    // Everyone sees that Ana's camera is off (her `media_state`), not a frozen frame.
    await ana.page.getByRole("button", { name: "Camera on" }).click();
    await ben.page.locator(".tile.remote.camera-off", { hasText: "Ana Video" }).waitFor();
    await ana.page.getByRole("button", { name: "Camera off" }).click();
    await ben.page.locator(".tile.remote:not(.camera-off)", { hasText: "Ana Video" }).waitFor();

    // The host mutes Ben's microphone: the server stops forwarding it, Ben's own
    // toggle says so and cannot undo it.
    const benTile = ana.page.locator(".tile.remote:not(.screen)", { hasText: "Ben Video" });
    await benTile.hover();
    await ana.page.getByRole("button", { name: "Mute Ben Video's microphone" }).click();
    await ben.page.getByRole("button", { name: "Microphone off (host)" }).waitFor();
    assert.ok(await ben.page.getByRole("button", { name: "Microphone off (host)" }).isDisabled());
    await cam.page.locator(".tile.remote", { hasText: "muted by host" }).waitFor();
    await ben.page.locator("#toast", { hasText: "The host turned your microphone off." }).waitFor();
    await shot(ben.page, "video-room-muted-by-host");
    const audioOf = async (page, who) => Number(await page.locator(".tile.remote:not(.screen)", { hasText: who }).getAttribute("data-audio-packets"));
    await cam.page.waitForTimeout(3_000);
    const muted0 = await audioOf(cam.page, "Ben Video");
    await cam.page.waitForTimeout(4_000);
    const muted1 = await audioOf(cam.page, "Ben Video");
    assert.ok(muted1 - muted0 <= 5, `audio still forwarded while muted by the host: ${muted0} → ${muted1}`);
    // Allowed again: Ben turns it on himself, and it flows again.
    await ana.page.getByRole("button", { name: "Allow Ben Video's microphone" }).click();
    await ben.page.getByRole("button", { name: "Microphone off" }).click();
    await ben.page.getByRole("button", { name: "Microphone on" }).waitFor();
    await cam.page.waitForFunction(([who, n]) => [...document.querySelectorAll(".tile.remote")].some((t) => t.textContent.includes(who) && !t.classList.contains("screen") && Number(t.dataset.audioPackets) > n + 20), ["Ben Video", muted1], { timeout: 30_000 });

    // Ben shares his screen: a tile of its own for everyone else; it goes when he stops.
    await ben.page.getByRole("button", { name: "Share screen" }).click();
    await ben.page.getByRole("button", { name: "Stop sharing" }).waitFor();
    for (const p of [ana, cam]) {
      await p.page.waitForFunction(() => [...document.querySelectorAll(".tile.remote.screen")].some((t) => !t.hidden && t.textContent.includes("Ben Video's screen") && Number(t.dataset.framesDecoded) > 0), null, { timeout: 30_000 });
    }
    await shot(ana.page, "video-room-screen-share");
    await ben.page.getByRole("button", { name: "Stop sharing" }).click();
    await ana.page.locator(".tile.remote.screen", { hasText: "Ben Video's screen" }).waitFor({ state: "hidden" });

    // All along, every page kept its one room connection.
    for (const p of [ana, ben, cam, dee]) assert.equal(await p.page.locator('.status[data-state="live"]').count(), 1);

    // Ben leaves the video: his tile goes everywhere.
    await ben.page.getByRole("button", { name: "Leave video" }).click();
    for (const p of [ana, cam]) {
      await p.page.locator(".tile.remote:not(.screen)", { hasText: "Ben Video" }).waitFor({ state: "detached", timeout: 30_000 });
      await p.page.locator(".tile.remote.screen", { hasText: "Ben Video" }).waitFor({ state: "detached", timeout: 30_000 });
    }
    assertNoProblems(ana, ben, cam, dee);
  } finally {
    await browser.close();
  }
});

/**
 * A page whose network passes no UDP to the room: the room's UDP candidates never
 * reach its peer connection (withheld from every description and trickled
 * candidate), as a network that drops UDP leaves only the TCP path.
 */
async function withoutUdp(p) {
  await p.context.addInitScript(() => {
    const udp = (line) => /^(a=)?candidate:\S+ \d+ udp /i.test(line);
    const strip = (sdp) => sdp.split("\r\n").filter((l) => !udp(l)).join("\r\n");
    const setRemote = RTCPeerConnection.prototype.setRemoteDescription;
    RTCPeerConnection.prototype.setRemoteDescription = function (d) {
      return setRemote.call(this, d && d.sdp ? { type: d.type, sdp: strip(d.sdp) } : d);
    };
    const addCandidate = RTCPeerConnection.prototype.addIceCandidate;
    RTCPeerConnection.prototype.addIceCandidate = function (c) {
      return c && c.candidate && udp(c.candidate) ? Promise.resolve() : addCandidate.call(this, c);
    };
  });
}

test("a browser that cannot reach the room over UDP meets the others over ICE-TCP", async () => {
  const browser = await launch(FAKE_MEDIA);
  try {
    const ana = await person(browser);
    const ben = await person(browser);
    await withoutUdp(ana);
    await registerVia(ana.page, account("Ana Tcp"));
    const link = await openVideoRoom(ana, "Behind a firewall");
    await registerVia(ben.page, account("Ben Udp"));

    await joinVideo(ana, link);
    await joinVideo(ben, link);
    await seeAndHearEachOther(ana, "Ana Tcp", ben, "Ben Udp");
    // Each page's selected candidate pair says how it got there.
    await ana.page.locator('.grid[data-transport="tcp"]').waitFor();
    await ben.page.locator('.grid[data-transport="udp"]').waitFor();
    await ana.page.locator(".tile.self figcaption", { hasText: "over TCP" }).waitFor();
    await shot(ana.page, "video-room-over-tcp");
    assertNoProblems(ana, ben);
  } finally {
    await browser.close();
  }
});
