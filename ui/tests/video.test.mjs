// Video through the room's SFU in Chromium with fake cameras and microphones: every
// page decodes every other publisher's video and receives their audio; a camera
// turned off stops the others' decoders; a viewer without camera sees everyone.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, account, assertNoProblems, launch, person, registerVia, shot } from "./helpers.mjs";

const FAKE_MEDIA = [
  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
  "--autoplay-policy=no-user-gesture-required", "--disable-features=WebRtcHideLocalIpsWithMdns",
];

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

test("people in a video room see and hear each other through the SFU", async () => {
  const browser = await launch(FAKE_MEDIA);
  try {
    const ana = await person(browser);
    const ben = await person(browser);
    const cam = await person(browser);
    await registerVia(ana.page, account("Ana Video"));
    await ana.page.goto(BASE + "/rooms/new");
    await ana.page.getByText("Cameras and microphones").click();
    await ana.page.getByLabel("Title").fill("Stand-up");
    await ana.page.getByRole("button", { name: "Open the room" }).click();
    await ana.page.waitForURL(/\/r\//);
    const link = await ana.page.locator(".invite-url").first().inputValue();
    await registerVia(ben.page, account("Ben Video"));
    await registerVia(cam.page, account("Cam Viewer"));

    await joinVideo(ana, link);
    await joinVideo(ben, link);
    await decodes(ana.page, "Ben Video");
    await decodes(ben.page, "Ana Video");
    await ana.page.waitForFunction(() => [...document.querySelectorAll(".tile.remote")].some((t) => Number(t.dataset.audioPackets) > 0));
    await ben.page.waitForFunction(() => [...document.querySelectorAll(".tile.remote")].some((t) => Number(t.dataset.audioPackets) > 0));

    // A viewer without camera: sees both, sends nothing (so nobody gets a tile of them).
    await joinVideo(cam, link, false);
    await decodes(cam.page, "Ana Video");
    await decodes(cam.page, "Ben Video");
    await shot(cam.page, "video-room-grid");
    assert.equal(await ana.page.locator(".tile.remote", { hasText: "Cam Viewer" }).count(), 0);

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

    // All along, every page kept its one room connection.
    for (const p of [ana, ben, cam]) assert.equal(await p.page.locator('.status[data-state="live"]').count(), 1);

    // Ben leaves the video: his tile goes everywhere.
    await ben.page.getByRole("button", { name: "Leave video" }).click();
    await ana.page.locator(".tile.remote", { hasText: "Ben Video" }).waitFor({ state: "detached", timeout: 30_000 });
    await cam.page.locator(".tile.remote", { hasText: "Ben Video" }).waitFor({ state: "detached", timeout: 30_000 });
    assertNoProblems(ana, ben, cam);
  } finally {
    await browser.close();
  }
});
