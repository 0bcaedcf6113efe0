// The web UI end to end, in Debian's Chromium: a person chats a video into being, watches it
// being made, answers the critic, plays and downloads the result, and makes a second version;
// halfway through, the server is killed and started again and the page carries on. Then a
// storyboard is approved on a server that asks for one.
//
// Run by tests/web.rs, which passes:
//   MONTAGE_BIN          the `montage` binary
//   MONTAGE_E2E_DIR      an empty folder for the server's data
//   MONTAGE_FIXTURES     a folder with night.png (a dark picture) and notes.txt (not media)
//   MONTAGE_SCREENSHOTS  where to keep the screenshots

import { chromium } from "playwright-core";
import { spawn, execFileSync } from "node:child_process";
import { createInterface } from "node:readline";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";

const { MONTAGE_BIN, MONTAGE_E2E_DIR, MONTAGE_FIXTURES, MONTAGE_SCREENSHOTS } = process.env;
const MINUTE = 60_000;

function step(text) {
  console.log(`== ${text}`);
}

/** The environment of a `montage` command over the data in `folder`, with `settings`. */
function montageEnv(folder, settings = {}) {
  const env = { ...process.env, MONTAGE_STORAGE__DATA_DIR: join(folder, "data"), RUST_LOG: "warn", ...settings };
  delete env.DATABASE_URL;
  return env;
}

/** `montage serve` on `addr` over the data in `folder`; resolves once it listens. */
function startServer(addr, folder = MONTAGE_E2E_DIR, settings = {}) {
  const env = montageEnv(folder, settings);
  const child = spawn(MONTAGE_BIN, ["serve", "--addr", addr, "--exit-with-stdin"], {
    cwd: folder,
    env,
    stdio: ["pipe", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once("line", (line) => {
      const match = line.match(/^montage listening on http:\/\/(.+)$/);
      if (match) resolve({ child, addr: match[1] });
      else reject(new Error(`unexpected first line ${line}`));
    });
    child.once("exit", (code) => reject(new Error(`montage serve exited with ${code}`)));
  });
}

async function kill(server) {
  const exited = new Promise((resolve) => server.child.once("exit", resolve));
  server.child.kill("SIGKILL");
  await exited;
}

/** Every control a person can reach has a name a screen reader says. */
async function everyControlIsLabelled(page) {
  const unnamed = await page.evaluate(() =>
    [...document.querySelectorAll("button, input, select, textarea, a[href], video")]
      .filter((node) => node.offsetParent !== null || node.id === "file-input")
      .filter((node) => {
        const label = node.labels?.length
          ? [...node.labels].map((l) => l.textContent).join(" ")
          : node.getAttribute("aria-label") || node.textContent || node.getAttribute("title") || "";
        return !label.trim() && node.type !== "hidden";
      })
      .map((node) => node.outerHTML.slice(0, 120)),
  );
  assert.deepEqual(unnamed, [], "controls without a label");
}

/** On a server that wants tokens, the page asks for one, refuses a wrong one, and goes live. */
async function signIn(browser) {
  const folder = join(MONTAGE_E2E_DIR, "tokens");
  mkdirSync(folder, { recursive: true });
  const settings = { MONTAGE_SERVER__AUTH: "tokens" };
  const added = execFileSync(MONTAGE_BIN, ["user", "add", "alice"], { cwd: folder, env: montageEnv(folder, settings) });
  const token = added.toString().match(/^token: (\S+)$/m)[1];
  const server = await startServer("127.0.0.1:0", folder, settings);
  const page = await browser.newPage();
  try {
    await page.goto(`http://${server.addr}`);
    const dialog = page.getByRole("heading", { name: "Sign in" });
    await dialog.waitFor();
    await page.getByLabel("Token").fill("not-a-token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("That token is not valid.").waitFor();
    await page.getByLabel("Token").fill(token);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator('#connection[data-state="open"]').waitFor();
    assert.equal(await dialog.isVisible(), false);
    // The token is kept: a reload goes straight in.
    await page.reload();
    await page.locator('#connection[data-state="open"]').waitFor();
    assert.equal(await dialog.isVisible(), false);
  } finally {
    await page.close();
    await kill(server);
  }
}

/** On a server that stops for the storyboard, the question panel shows each scene's sketch
 * and prompt, offers the storyboard's answers (no skip, a budget), and approving it makes the
 * video. */
async function approveStoryboard(browser) {
  const folder = join(MONTAGE_E2E_DIR, "storyboard");
  mkdirSync(folder, { recursive: true });
  const server = await startServer("127.0.0.1:0", folder, {
    MONTAGE_PIPELINE__STORYBOARD: "always",
    MONTAGE_PIPELINE__MAX_ITERATIONS: "0",
  });
  const page = await browser.newPage();
  try {
    await page.goto(`http://${server.addr}`);
    await page.getByText("Live", { exact: true }).waitFor();
    const box = page.getByLabel("Message", { exact: true });
    await box.fill("make an 8 second video of a lighthouse at dusk");
    await box.press("Enter");
    const panel = page.getByRole("region", { name: "Approve the storyboard" });
    await panel.waitFor({ timeout: 2 * MINUTE });
    await page.locator('.run-card[data-kind="question"]', { hasText: "The storyboard is ready" }).waitFor();
    const sketches = panel.locator(".storyboard-scene img");
    const count = await sketches.count();
    assert.ok(count >= 2, `${count} sketches`);
    await page.waitForFunction(
      () => [...document.querySelectorAll(".storyboard-scene img")].every((img) => img.complete && img.naturalWidth > 0),
    );
    assert.match(await panel.locator(".storyboard-scene").first().innerText(), /Scene 1 \(0\.0–\d+\.\d s\): \w+/);
    assert.equal(await page.getByLabel("Skip to the final video").isVisible(), false, "nothing to skip to yet");
    await page.getByLabel("Change the budget").check();
    await page.getByLabel("The most this video may spend (US dollars)").waitFor();
    await page.getByLabel("Approve: make the pictures").check();
    await page.getByRole("button", { name: "Answer" }).click();
    await panel.waitFor({ state: "hidden" });
    await page.locator("#result-title", { hasText: "Result · version 1" }).waitFor({ timeout: 4 * MINUTE });
  } finally {
    await page.close();
    await kill(server);
  }
}

async function main() {
  let server = await startServer("127.0.0.1:0");
  const base = `http://${server.addr}`;
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--autoplay-policy=no-user-gesture-required"],
  });
  const problems = [];
  try {
    const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1360, height: 900 } });
    const page = await context.newPage();
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      // While the server is down, the browser logs the failed reconnects: those are expected.
      const expected = /WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(message.text());
      if (message.type() === "error" && !expected) problems.push(`console: ${message.text()}`);
    });

    step("the page loads from the binary and says it is live");
    await page.goto(base);
    await page.getByText("Live", { exact: true }).waitFor();
    // Every title the result panel shows, in order: the preview must come before the video.
    await page.evaluate(() => {
      const title = document.getElementById("result-title");
      window.resultTitles = [];
      new MutationObserver(() => window.resultTitles.push(title.textContent)).observe(title, {
        childList: true,
        characterData: true,
        subtree: true,
      });
    });
    await everyControlIsLabelled(page);
    // The message box is reachable from the keyboard alone.
    let reached = false;
    for (let k = 0; k < 12 && !reached; k += 1) {
      await page.keyboard.press("Tab");
      reached = await page.evaluate(() => document.activeElement?.id === "composer-text");
    }
    assert.ok(reached, "Tab reaches the message box");

    step("a file that is not media is refused plainly");
    await page.locator("#file-input").setInputFiles(join(MONTAGE_FIXTURES, "notes.txt"));
    const refused = page.locator(".attachment.failed");
    await refused.waitFor();
    assert.match(await refused.innerText(), /notes\.txt: .*(audio|image|picture)/i);
    await page.getByRole("button", { name: "Remove notes.txt" }).click();
    assert.equal(await page.locator(".attachment").count(), 0);

    step("a picture dropped on the chat uploads with progress, and the request starts a video");
    const dropped = await page.evaluateHandle((base64) => {
      const transfer = new DataTransfer();
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      transfer.items.add(new File([bytes], "night.png", { type: "image/png" }));
      return transfer;
    }, readFileSync(join(MONTAGE_FIXTURES, "night.png")).toString("base64"));
    await page.dispatchEvent(".chat", "dragenter", { dataTransfer: dropped });
    await page.getByText("Drop music or pictures to attach them").waitFor();
    await page.dispatchEvent(".chat", "drop", { dataTransfer: dropped });
    await page.locator(".attachment.ready", { hasText: "night.png" }).waitFor();
    assert.equal(await page.locator(".attachment progress").evaluate((p) => p.value), 1);
    // A setting chosen before the request goes with it.
    const settings = page.locator("#builder");
    await settings.getByLabel("Mood").selectOption("dreamy");
    const box = page.getByLabel("Message", { exact: true });
    await box.fill("make an 8 second bright sunny beach video");
    await box.press("Enter");
    await page.locator(".message.user", { hasText: "sunny beach" }).waitFor();
    await page.locator('.card[data-tool="create_video"]').waitFor();
    assert.equal(await page.locator(".message.user .hint").innerText(), "1 file attached");
    await page.locator("#run").waitFor();

    step("the server is killed mid-run and comes back: the page reconnects by itself");
    await page.locator('#nodes [data-node="intent"][data-state="done"]').waitFor({ timeout: MINUTE });
    await page.locator('#run-status[data-status="running"]').waitFor();
    await page.evaluate(() => {
      window.sameDocument = true;
    });
    await kill(server);
    await page.locator('#connection[data-state="reconnecting"]').waitFor();
    server = await startServer(server.addr);
    await page.locator('#connection[data-state="open"]').waitFor({ timeout: MINUTE });
    assert.equal(await page.evaluate(() => window.sameDocument), true, "the page did not reload");

    step("the run shows its steps, its timeline over the music, and its pictures");
    await page.locator("#timeline-caption", { hasText: "BPM" }).waitFor({ timeout: MINUTE });
    const caption = await page.locator("#timeline-caption").innerText();
    // About the 8 seconds asked for: the plan ends on a beat.
    const planned = Number(caption.match(/\d+ scenes over (\d+\.\d) s; \d+ BPM, \d+ beats, [34]\/4/)?.[1]);
    assert.ok(Math.abs(planned - 8) < 1, caption);
    await page.locator("#scenes img").first().waitFor({ timeout: 2 * MINUTE });
    // The settings came from what was asked.
    assert.equal(await settings.getByLabel("Duration (seconds)").inputValue(), "8");
    assert.ok(await settings.getByLabel("16:9").isChecked());
    assert.equal(await settings.getByLabel("Mood").inputValue(), "dreamy");
    await page.screenshot({ path: join(MONTAGE_SCREENSHOTS, "making.png") });

    step("the critic asks about the dark picture; the answer resumes the run");
    const feedback = page.getByRole("region", { name: "The critic has a question" });
    await feedback.waitFor({ timeout: 3 * MINUTE });
    assert.match(await feedback.innerText(), /scene/i);
    await page.locator('.run-card[data-kind="question"]').waitFor();
    const flagged = await page.locator(".scene.has-issues").count();
    assert.ok(flagged >= 1, "the critic's issue is pinned to its scene");
    await page.screenshot({ path: join(MONTAGE_SCREENSHOTS, "feedback.png") });
    // Choosing to make scenes again shows the scene picks, the flagged one already chosen.
    await page.getByLabel("Make chosen scenes again").check();
    await page.getByLabel("Instruction").waitFor();
    assert.ok((await page.locator("#regenerate-scenes input:checked").count()) >= 1);
    await page.getByLabel("Accept the suggested fixes").check();
    await page.getByRole("button", { name: "Answer" }).click();
    await feedback.waitFor({ state: "hidden" });

    step("the final video plays, and downloads");
    await page.locator("#result-title", { hasText: "Result · version 1" }).waitFor({ timeout: 4 * MINUTE });
    const scenes = await page.locator("#scenes > li").count();
    assert.equal(await page.locator("#scenes img").count(), scenes, "every scene has its picture");
    // Every picture finished once across the restart: no event lost or seen twice.
    assert.equal(await page.locator('#nodes [data-node="assets"] .node-label').innerText(), `Pictures ${scenes}/${scenes}`);
    await page.locator('.run-card[data-kind="ready"]').waitFor();
    const titles = await page.evaluate(() => window.resultTitles);
    const preview = titles.indexOf("Preview");
    assert.ok(preview >= 0 && preview < titles.indexOf("Result · version 1"), `titles ${titles}`);
    const played = await page.evaluate(async () => {
      const video = document.getElementById("player");
      if (video.readyState < 1) await new Promise((r) => video.addEventListener("loadedmetadata", r, { once: true }));
      video.muted = true;
      await video.play();
      const start = video.currentTime;
      await new Promise((r) => setTimeout(r, 1500));
      return { duration: video.duration, advanced: video.currentTime - start, width: video.videoWidth };
    });
    assert.ok(Math.abs(played.duration - planned) < 0.15, `duration ${played.duration}, planned ${planned}`);
    assert.ok(played.advanced > 0.5, `played ${played.advanced} s`);
    assert.equal(played.width, 1920);
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("link", { name: "Video 16:9 (MP4)" }).click(),
    ]);
    const saved = join(MONTAGE_E2E_DIR, "downloaded.mp4");
    await download.saveAs(saved);
    assert.equal(download.suggestedFilename(), "montage-v1-16x9.mp4");
    const probed = execFileSync("ffprobe", ["-v", "error", "-select_streams", "v:0", "-show_entries",
      "stream=codec_name,width,height", "-of", "csv=p=0", saved]).toString().trim();
    assert.equal(probed, "h264,1920,1080");
    assert.ok(statSync(saved).size > 10_000);
    assert.match(await page.locator("#cost").innerText(), /^\$\d+\.\d\d · \d+ model calls, \d+ from the cache$/);
    await page.screenshot({ path: join(MONTAGE_SCREENSHOTS, "result.png"), fullPage: true });

    step("a changed setting makes version 2; both versions show side by side");
    await settings.getByLabel("Pace").selectOption("slow");
    await page.getByRole("button", { name: "Make a new version" }).click();
    await page.locator("#run-title", { hasText: "version 2" }).waitFor();
    await page.locator("#result-title", { hasText: "Result · version 2" }).waitFor({ timeout: 4 * MINUTE });
    await page.locator("#versions > li video").nth(1).waitFor({ timeout: MINUTE });
    assert.equal(await page.locator("#versions > li").count(), 2);
    assert.equal(await settings.getByLabel("Pace").inputValue(), "slow");

    step("a reload comes back to the same chat and video");
    await page.reload();
    await page.locator("#result-title", { hasText: "Result · version 2" }).waitFor();
    assert.ok((await page.locator(".message").count()) >= 2);

    step("on a phone-sized screen nothing is cut off");
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
    await page.screenshot({ path: join(MONTAGE_SCREENSHOTS, "phone.png") });

    step("a server that wants tokens asks for one");
    await signIn(browser);

    step("a storyboard is shown with its sketches, and approving it makes the video");
    await approveStoryboard(browser);

    assert.deepEqual(problems, [], "the page logged errors");
    step("done");
  } catch (error) {
    // What the page showed when it went wrong, for whoever reads the failure.
    const pages = browser.contexts().flatMap((c) => c.pages());
    if (pages.length) await pages[0].screenshot({ path: join(MONTAGE_SCREENSHOTS, "failure.png") }).catch(() => {});
    console.error(problems.join("\n"));
    throw error;
  } finally {
    await browser.close();
    await kill(server).catch(() => {});
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
