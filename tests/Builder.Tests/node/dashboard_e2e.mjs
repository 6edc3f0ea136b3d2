// Drives the development dashboard (web/, served by the gateway in Development) in Debian's headless
// Chromium through playwright-core (installed by tests/E2E/package.json; it downloads no browser),
// as a person would: two tabs join a project, one starts a simulated build with deployment, answers
// the layout decision in the modal ("Classic Table") and the other tab's modal closes too; both see
// the build reach 100 %, every agent card "completed" (the deployment agent's included, its output
// naming the deployed URL) and the deployment URL. The second tab loses its
// connection while the decision is open and must catch up (reconnect, join-project with lastSeq,
// and the server's connection state recovery) without missing or repeating an event. A third tab opened afterwards renders the same state from
// project:snapshot. Then screenshots (the modal, the finished build).
//
// usage: node dashboard_e2e.mjs <gatewayUrl> [projectId]
//
// stdout, one JSON object per line: {"step": "connected"} → {"step": "joined"} → {"step": "build-started", buildId}
// → {"step": "answered", decisionId, modalScreenshot} → {"step": "done", screenshot, deploymentUrl, agents, previewUrl, events}.
// Exits 0 when every check passed, 1 with "FAIL: ..." on stderr otherwise. Waits only for
// conditions, each with a deadline.

import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const e2eDir = process.env.E2E_DIR ?? path.resolve(here, "../../E2E");
const require = createRequire(path.join(e2eDir, "package.json"));
const { chromium } = require("playwright-core");

const [url, projectArg] = process.argv.slice(2);
if (!url) {
  process.stderr.write("usage: node dashboard_e2e.mjs <gatewayUrl> [projectId]\n");
  process.exit(2);
}
const base = url.replace(/\/$/, "");
const projectId = projectArg ?? `e2e-${Date.now()}`;
const STEP_MS = 20000;
const BUILD_MS = 60000;
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

let browser = null;
const modalScreenshot = path.join(os.tmpdir(), `dashboard-e2e-${process.pid}-decision.png`);

async function fail(message) {
  process.stderr.write(`FAIL: ${message}\n`);
  try {
    await browser?.close();
  } finally {
    process.exit(1);
  }
}

process.on("unhandledRejection", (err) => fail(err?.stack ?? String(err)));
setTimeout(() => fail("the whole scenario took longer than 120 s"), 120000).unref();

function report(step, extra = {}) {
  process.stdout.write(JSON.stringify({ step, ...extra }) + "\n");
}

/** Runs a step; a timeout or a failed check names the step and what the page showed. */
async function step(name, page, action) {
  try {
    return await action();
  } catch (err) {
    let shown = "";
    if (page) {
      shown = await page.evaluate(() => ({
        connection: document.getElementById("connection-status")?.textContent,
        project: document.getElementById("project-status")?.textContent,
        buildRequest: document.getElementById("build-request-status")?.textContent,
        build: document.getElementById("build-state")?.textContent,
        progress: document.getElementById("build-progress")?.getAttribute("aria-valuenow"),
        agents: [...document.querySelectorAll("[data-testid=agent-card]")].map((c) => `${c.dataset.agentType}:${c.dataset.status}`),
        deployment: document.getElementById("deployment-state")?.textContent,
        errors: [...document.querySelectorAll("#errors li")].map((li) => li.textContent),
        events: [...document.querySelectorAll("#events li")].slice(0, 15).map((li) => li.textContent),
      })).then((s) => `\npage: ${JSON.stringify(s, null, 1)}`, () => "");
    }
    await fail(`${name}: ${err.message}${shown}`);
  }
}

function watchConsole(page, label) {
  page.on("pageerror", (err) => fail(`${label}: uncaught error in the page: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") {
      fail(`${label}: console error: ${msg.text()}`);
    }
  });
}

async function openDashboard(context, user, label) {
  const page = await context.newPage();
  watchConsole(page, label);
  await step(`${label}: open the dashboard`, page, async () => {
    const response = await page.goto(`${base}/dashboard?user=${encodeURIComponent(user)}&project=${encodeURIComponent(projectId)}`, { timeout: STEP_MS });
    if (!response || response.status() !== 200) {
      throw new Error(`GET /dashboard answered ${response?.status()}`);
    }
    await page.waitForFunction((u) => document.getElementById("user").textContent.includes(u), user, { timeout: STEP_MS });
    await page.waitForFunction(() => document.getElementById("connection-status").textContent.startsWith("connected"), null, { timeout: STEP_MS });
  });
  return page;
}

async function join(page, label) {
  await step(`${label}: join ${projectId}`, page, async () => {
    await page.getByLabel("Project id").fill(projectId);
    await page.getByRole("button", { name: "Join" }).click({ timeout: STEP_MS });
    await page.waitForFunction((p) => document.getElementById("project-status").textContent.startsWith(`joined ${p}`), projectId, { timeout: STEP_MS });
  });
}

/** The finished build as the page shows it: progress 100, completed, every agent card completed, deployed. */
async function waitForFinishedBuild(page, label) {
  return step(`${label}: the finished build`, page, async () => {
    await page.waitForFunction(() => {
      const cards = [...document.querySelectorAll("[data-testid=agent-card]")];
      return document.getElementById("build-progress").getAttribute("aria-valuenow") === "100"
        && document.getElementById("build-state").textContent === "completed"
        && cards.length >= 5 && cards.every((c) => c.dataset.status === "completed")
        && document.getElementById("deployment-state").textContent === "succeeded"
        && document.getElementById("deployment-url").textContent.length > 0;
    }, null, { timeout: BUILD_MS });
    return page.evaluate(() => ({
      progressText: document.getElementById("build-progress-text").textContent,
      deploymentUrl: document.getElementById("deployment-url").getAttribute("href"),
      deploymentShown: !document.getElementById("deployment-result").hidden,
      previewUrl: document.getElementById("preview-url")?.getAttribute("href") ?? null,
      agents: [...document.querySelectorAll("[data-testid=agent-card]")].map((c) => ({
        type: c.dataset.agentType,
        status: c.dataset.status,
        progress: c.querySelector("[role=progressbar]").getAttribute("aria-valuenow"),
        title: c.querySelector(".agent-type").textContent,
        output: c.querySelector(".agent-output").textContent,
      })),
      stages: [...document.querySelectorAll("#deployment-stages li")].map((li) => li.className),
      outputs: [...document.querySelectorAll("#outputs li")].map((li) => li.textContent),
      errors: [...document.querySelectorAll("#errors li")].map((li) => li.textContent),
    }));
  });
}

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  timeout: STEP_MS,
}).catch((err) => fail(`Chromium (${CHROMIUM}) did not start: ${err.message}`));

const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
const page = await openDashboard(context, "e2e-user", "tab 1");
const watcher = await openDashboard(context, "e2e-watcher", "tab 2");
report("connected");

await join(page, "tab 1");
await join(watcher, "tab 2");
report("joined");

const buildId = await step("start a simulated build", page, async () => {
  await page.getByLabel("Deploy when built").check();
  await page.getByLabel("Speed ×").fill("200");
  await page.getByRole("button", { name: "Start simulated build" }).click({ timeout: STEP_MS });
  await page.waitForFunction(() => /^build \S+ started$/.test(document.getElementById("build-request-status").textContent), null, { timeout: STEP_MS });
  return (await page.textContent("#build-request-status")).split(" ")[1];
});
report("build-started", { buildId });

const decisionId = await step("answer the decision in the modal", page, async () => {
  const modal = page.getByRole("dialog");
  await modal.waitFor({ state: "visible", timeout: STEP_MS });
  await watcher.getByRole("dialog").waitFor({ state: "visible", timeout: STEP_MS });
  const question = await page.textContent("#decision-question");
  check(question === "Which layout style do you prefer?", `the modal asks "${question}"`);
  const labels = await page.locator("[data-testid=decision-option] strong").allTextContents();
  check(JSON.stringify(labels) === JSON.stringify(["Modern Dashboard", "Classic Table"]), `the options are ${JSON.stringify(labels)}`);
  const id = await page.getAttribute("#decision-modal", "data-decision-id");
  await page.screenshot({ path: modalScreenshot });

  // the network drops under tab 2 (its transport closes); socket.io-client reconnects by itself 2 s
  // later, while the answer and the rest of the build go by
  await watcher.evaluate(() => {
    const manager = window.builderDashboard.socket.io;
    manager.reconnectionDelay(2000);
    manager.reconnectionDelayMax(2000);
    manager.randomizationFactor(0);
    manager.engine.close();
  });
  await watcher.waitForFunction(() => !document.getElementById("connection-status").textContent.startsWith("connected"), null, { timeout: STEP_MS });
  await modal.getByRole("button", { name: /Classic Table/ }).click({ timeout: STEP_MS });
  await modal.waitFor({ state: "hidden", timeout: STEP_MS });
  return id;
});
await step("the other tab's modal closes on user:decision:resolved, once it is back", watcher, async () => {
  await watcher.getByRole("dialog").waitFor({ state: "hidden", timeout: STEP_MS });
});
report("answered", { decisionId, modalScreenshot });

const seen = await waitForFinishedBuild(page, "tab 1");
await step("what tab 1 shows", page, async () => {
  check(seen.progressText === "100%", `progress text ${seen.progressText}`);
  check(seen.deploymentShown, "the deployment result is hidden");
  check(/^https?:\/\//.test(seen.deploymentUrl), `deployment URL ${seen.deploymentUrl}`);
  check(seen.stages.every((c) => c === "done"), `deployment stages ${seen.stages}`);
  check(seen.previewUrl !== null, "no preview link");
  const types = seen.agents.map((a) => a.type).sort();
  for (const type of ["backend", "database", "integration", "ui", "deployment"]) {
    check(types.includes(type), `no ${type} agent card (cards: ${types})`);
  }
  check(seen.agents.every((a) => a.progress === "100"), `agent progress ${JSON.stringify(seen.agents)}`);
  check(seen.outputs.some((o) => o.includes("Classic Table") && o.includes("e2e-user")), `no decision line naming Classic Table and e2e-user in the outputs: ${JSON.stringify(seen.outputs)}`);
  check(seen.outputs.some((o) => o.startsWith("Database agent: Created 3 data tables")), `no database output summary: ${JSON.stringify(seen.outputs)}`);
  check(seen.errors.length === 0, `errors shown: ${JSON.stringify(seen.errors)}`);
  // the deployment agent's card: completed at 100 %, its output the deployed URL
  const deployer = seen.agents.find((a) => a.type === "deployment");
  check(deployer.status === "completed" && deployer.progress === "100", `deployment agent card ${JSON.stringify(deployer)}`);
  check(deployer.title === "Deployment agent", `deployment agent card title ${deployer.title}`);
  check(deployer.output.includes(seen.deploymentUrl), `the deployment agent card's output "${deployer.output}" does not name ${seen.deploymentUrl}`);
});
const watched = await waitForFinishedBuild(watcher, "tab 2");
const eventCount = await page.evaluate(() => window.builderDashboard.eventCount);
const recovery = await step("tab 2 caught up after its reconnect, each event once", watcher, async () => {
  check(watched.deploymentUrl === seen.deploymentUrl, `tab 2 shows ${watched.deploymentUrl}, tab 1 ${seen.deploymentUrl}`);
  const logged = await watcher.locator("#events li").allTextContents();
  check(logged.some((line) => line.includes("reconnected after")), `tab 2 did not reconnect: ${JSON.stringify(logged.slice(0, 5))}`);
  check(logged.some((line) => / [1-9]\d* missed event\(s\) replayed/.test(line)), `tab 2 rejoined without a replay (join-project with lastSeq): ${JSON.stringify(logged.slice(0, 10))}`);
  const shown = await watcher.evaluate(() => ({ count: window.builderDashboard.eventCount, lastSeq: window.builderDashboard.lastSeq }));
  check(shown.count === eventCount && shown.lastSeq === eventCount, `tab 2 applied ${shown.count} events up to seq ${shown.lastSeq}; tab 1 applied ${eventCount}`);
  check(watched.errors.length === 0, `tab 2 shows errors: ${JSON.stringify(watched.errors)}`);
  return logged.filter((line) => /reconnected|recovered|rejoined/.test(line)).reverse();
});

// a late joiner renders the finished build from project:snapshot
const late = await openDashboard(context, "e2e-late", "tab 3");
await join(late, "tab 3");
const snapshot = await waitForFinishedBuild(late, "tab 3 (snapshot)");
await step("tab 3 renders the snapshot", late, async () => {
  check(snapshot.deploymentUrl === seen.deploymentUrl, `tab 3 shows ${snapshot.deploymentUrl}`);
  check(snapshot.agents.length === seen.agents.length, `tab 3 shows ${snapshot.agents.length} agent cards, tab 1 ${seen.agents.length}`);
  const logged = await late.locator("#events li").allTextContents();
  check(logged.some((line) => line.includes("snapshot of")), `no snapshot in tab 3's event log: ${JSON.stringify(logged.slice(0, 5))}`);
});

const screenshot = path.join(os.tmpdir(), `dashboard-e2e-${process.pid}-build.png`);
await step("screenshot", page, async () => {
  await page.screenshot({ path: screenshot, fullPage: true });
});
process.stderr.write(`screenshots: ${modalScreenshot} ${screenshot}\n`);
report("done", { screenshot, deploymentUrl: seen.deploymentUrl, previewUrl: seen.previewUrl, agents: seen.agents, events: eventCount, recovery });
await browser.close();
process.exit(0);
