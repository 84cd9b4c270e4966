// A video room's camera check in Chromium with its fake camera and microphone: the
// preview plays, devices are listed, toggles work, leaving turns the camera off, and
// chat rooms show no video UI. (Sending and receiving: video.test.mjs.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, account, assertNoProblems, axe, launch, person, registerVia, shot } from "./helpers.mjs";

const FAKE_MEDIA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"];

test("a video room checks your camera and microphone; a chat room shows no video", async () => {
  const browser = await launch(FAKE_MEDIA);
  try {
    const host = await person(browser);
    await host.context.grantPermissions(["camera", "microphone"], { origin: BASE });
    const P = host.page;
    await registerVia(P, account("Vera Video"));
    await P.goto(BASE + "/rooms/new");
    await P.getByText("Cameras and microphones").click();
    await P.getByLabel("Title").fill("Face to face");
    await P.getByRole("button", { name: "Open the room" }).click();
    await P.waitForURL(/\/r\//);

    // The fake camera plays in the preview, and the devices are named.
    await P.waitForFunction(() => document.querySelector(".stage video")?.videoWidth > 0);
    await P.getByRole("button", { name: "Join with camera and microphone" }).waitFor();
    assert.ok((await P.locator("#camera-choice option").count()) >= 1);
    assert.ok((await P.locator("#mic-choice option").count()) >= 1);
    await shot(P, "video-room-preview");
    await axe(P, "/r/ID (video)");

    // Camera off: the track is disabled and the button says so.
    await P.getByRole("button", { name: "Camera on" }).click();
    await P.getByRole("button", { name: "Camera off" }).waitFor();
    assert.equal(await P.evaluate(() => document.querySelector(".stage video").srcObject.getVideoTracks()[0].enabled), false);
    await P.getByRole("button", { name: "Microphone on" }).click();
    assert.equal(await P.evaluate(() => document.querySelector(".stage video").srcObject.getAudioTracks()[0].enabled), false);

    // Leaving the room's page stops the camera.
    await P.evaluate(() => (globalThis.__tracks = document.querySelector(".stage video").srcObject.getTracks()));
    await P.getByRole("link", { name: "My rooms" }).click();
    await P.waitForURL(/\/rooms$/);
    assert.deepEqual(await P.evaluate(() => globalThis.__tracks.map((t) => t.readyState)), ["ended", "ended"]);

    // A chat room has no stage and never asks for the camera.
    await P.goto(BASE + "/rooms/new");
    await P.getByLabel("Title").fill("Words only");
    await P.getByRole("button", { name: "Open the room" }).click();
    await P.locator('.status[data-state="live"]').waitFor();
    assert.equal(await P.locator(".stage").count(), 0);
    assertNoProblems(host);
  } finally {
    await browser.close();
  }
});
