// The protocol document's "Client Implementation Example", line by line, with the official
// socket.io-client (installed by tests/Interop/package.json), against a running gateway.
//
// usage: node client_example.mjs <gatewayUrl> <token> <projectId> <userId> <username>
//
// Talks to the test that drives it with one JSON object per line:
//   stdout: {"step": "joined"|"resolved"|"rejoined"|"done", ...}   stdin: nothing (the test publishes over HTTP)
// Exits 0 when every check passed, 1 with "FAIL: ..." on stderr otherwise. Every wait has a deadline.

import assert from "node:assert/strict";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const interop = process.env.INTEROP_DIR ?? path.resolve(here, "../../Interop");
const require = createRequire(path.join(interop, "package.json"));
const { io } = require("socket.io-client");

const [url, token, currentProjectId, userId, username] = process.argv.slice(2);
const WAIT_MS = 10000;

function fail(message) {
  process.stderr.write(`FAIL: ${message}\n`);
  process.exit(1);
}

process.on("unhandledRejection", (err) => fail(err?.stack ?? String(err)));
setTimeout(() => fail("the scenario did not finish within 60 s"), 60000).unref();

function report(step, extra = {}) {
  process.stdout.write(JSON.stringify({ step, ...extra }) + "\n");
}

/** A queue per event so that nothing received before we look is lost. */
const queues = new Map();
function queue(event) {
  if (!queues.has(event)) {
    queues.set(event, { items: [], waiters: [] });
  }
  return queues.get(event);
}
function record(event, value) {
  const q = queue(event);
  const waiter = q.waiters.shift();
  if (waiter) {
    waiter(value);
  } else {
    q.items.push(value);
  }
}
function take(event, ms = WAIT_MS) {
  const q = queue(event);
  if (q.items.length > 0) {
    return Promise.resolve(q.items.shift());
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for "${event}"`)), ms);
    q.waiters.push((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

// ---- the document's example -------------------------------------------------------------

const socket = io(`${url}/builder`, {
  auth: {
    token, // localStorage.getItem('jwt')
  },
});

// 认证成功
socket.on("authenticated", (data) => {
  record("authenticated", data);
});

// 加入项目房间
socket.emit("join-project", { projectId: currentProjectId });
socket.on("project-joined", (data) => record("project-joined", data));

// 监听Agent状态更新
socket.on("agent:status:update", (event) => {
  record("agent:status:update", event); // updateAgentUI(event.payload)
});

// 监听构建进度
socket.on("build:progress", (event) => {
  assert.equal(typeof event.payload.overallProgress, "number"); // updateProgressBar(event.payload.overallProgress)
  record("build:progress", event);
});

// 处理用户决策请求
socket.on("user:decision:required", (event) => {
  record("user:decision:required", event); // showDecisionModal(event.payload)
});

// 发送决策响应
function respondToDecision(decisionId, optionId) {
  socket.emit("user:decision:response", {
    decisionId,
    selectedOptionId: optionId,
  });
}

// 断线重连 — the document writes socket.on('reconnect'); in socket.io-client v4 that event is
// emitted by the Manager, socket.io (the socket itself no longer emits it).
socket.io.on("reconnect", () => {
  record("reconnect", true);
  socket.emit("join-project", { projectId: currentProjectId });
});

// ---- the rest of the document's server → client events ------------------------------------

for (const event of [
  "agent:output", "agent:error", "build:started", "build:completed", "build:failed",
  "deployment:progress", "deployment:success", "error", "user:decision:resolved", "project:snapshot",
]) {
  socket.on(event, (e) => record(event, e));
}
socket.on("connect_error", (err) => fail(`connect_error: ${err.message} ${JSON.stringify(err.data)}`));

// ---- checks --------------------------------------------------------------------------------

const isInt = (v) => Number.isInteger(v);
const isStr = (v) => typeof v === "string" && v.length > 0;
const optional = (v, check) => v === undefined || check(v);

let lastSeq = 0;
function envelope(event, type) {
  assert.equal(event.type, type, `type of ${type}`);
  assert.ok(isInt(event.timestamp), `${type}: timestamp is an integer (ms)`);
  assert.ok(Math.abs(event.timestamp - Date.now()) < 24 * 3600 * 1000, `${type}: timestamp ${event.timestamp} is a Unix time in ms`);
  assert.equal(typeof event.payload, "object", `${type}: payload is an object`);
  assert.ok(event.payload !== null && !Array.isArray(event.payload), `${type}: payload is an object`);
  assert.equal(event.projectId, currentProjectId, `${type}: projectId`);
  assert.ok(isInt(event.seq) && event.seq > lastSeq, `${type}: seq ${event.seq} after ${lastSeq}`);
  lastSeq = event.seq;
  assert.ok(isStr(event.eventId), `${type}: eventId`);
  return event.payload;
}

const shapes = {
  "agent:status:update": (p) => {
    assert.ok(isStr(p.agentId));
    assert.ok(["ui", "backend", "database", "integration", "deployment"].includes(p.agentType));
    assert.ok(["idle", "working", "waiting", "completed", "failed"].includes(p.status));
    assert.ok(optional(p.currentTask, isStr));
    assert.ok(optional(p.progress, (v) => typeof v === "number" && v >= 0 && v <= 100));
    assert.ok(optional(p.message, isStr));
  },
  "agent:output": (p) => {
    assert.ok(isStr(p.agentId));
    assert.equal(p.agentType, "database");
    assert.ok(Array.isArray(p.output.entities));
    assert.ok(Array.isArray(p.output.migrations));
    assert.ok(isStr(p.summary));
  },
  "agent:error": (p) => {
    assert.ok(isStr(p.agentId));
    assert.equal(p.agentType, "backend");
    assert.ok(isStr(p.error.code));
    assert.ok(isStr(p.error.message));
    assert.equal(typeof p.error.retryable, "boolean");
    assert.ok(optional(p.error.retryCount, isInt));
  },
  "build:started": (p) => {
    assert.equal(p.projectId, currentProjectId);
    assert.equal(typeof p.estimatedDuration, "number");
    assert.deepEqual(p.phases, ["analyze", "design", "generate", "validate"]);
  },
  "build:progress": (p) => {
    assert.equal(p.projectId, currentProjectId);
    assert.ok(isStr(p.currentPhase));
    for (const k of ["phaseProgress", "overallProgress"]) {
      assert.ok(typeof p[k] === "number" && p[k] >= 0 && p[k] <= 100, k);
    }
    assert.ok(optional(p.message, isStr));
    assert.ok(optional(p.estimatedTimeRemaining, (v) => typeof v === "number"));
  },
  "build:completed": (p) => {
    assert.equal(p.projectId, currentProjectId);
    assert.equal(typeof p.duration, "number");
    assert.ok(isStr(p.previewUrl));
    for (const k of ["componentsGenerated", "apiEndpointsCreated", "dataModelsCreated"]) {
      assert.ok(isInt(p.stats[k]), k);
    }
  },
  "build:failed": (p) => {
    assert.equal(p.projectId, currentProjectId);
    assert.ok(isStr(p.error.phase));
    assert.ok(isStr(p.error.message));
    assert.ok(Array.isArray(p.error.suggestions) && p.error.suggestions.every(isStr));
  },
  "deployment:progress": (p) => {
    assert.ok(isStr(p.deploymentId));
    assert.ok(isStr(p.environment));
    assert.ok(["building", "deploying", "health-check"].includes(p.stage));
    assert.ok(typeof p.progress === "number" && p.progress >= 0 && p.progress <= 100);
    assert.ok(optional(p.message, isStr));
  },
  "deployment:success": (p) => {
    assert.ok(isStr(p.deploymentId));
    assert.ok(isStr(p.environment));
    assert.ok(isStr(p.url));
    assert.ok(isStr(p.healthStatus));
    assert.equal(typeof p.duration, "number");
  },
  error: (p) => {
    assert.ok(isStr(p.code));
    assert.ok(isStr(p.message));
    assert.equal(typeof p.recoverable, "boolean");
    assert.ok(optional(p.actions, (a) => Array.isArray(a) && a.every((x) => isStr(x.label) && isStr(x.action))));
  },
};

async function main() {
  const authenticated = await take("authenticated");
  assert.deepEqual(authenticated, { userId, username }, "authenticated");

  const joined = await take("project-joined");
  assert.equal(joined.projectId, currentProjectId);
  assert.ok(isInt(joined.members) && joined.members >= 1, "members");
  assert.ok(isInt(joined.seq), "seq");
  lastSeq = joined.seq;
  report("joined", { seq: joined.seq, members: joined.members });

  // the test now publishes one event of each type, in this order, then a decision
  for (const type of Object.keys(shapes)) {
    const event = await take(type);
    try {
      shapes[type](envelope(event, type));
    } catch (err) {
      fail(`${type} does not have the documented shape: ${err.message}\n${JSON.stringify(event)}`);
    }
  }

  const required = await take("user:decision:required");
  const decision = envelope(required, "user:decision:required");
  assert.equal(decision.projectId, currentProjectId);
  assert.ok(isStr(decision.agentId));
  assert.ok(isStr(decision.decisionId));
  assert.ok(isStr(decision.question));
  assert.ok(isInt(decision.timeout));
  assert.ok(Array.isArray(decision.options) && decision.options.length === 2);
  for (const option of decision.options) {
    assert.ok(isStr(option.id) && isStr(option.label));
    assert.ok(option.description == null || isStr(option.description));
    assert.ok(option.preview == null || isStr(option.preview));
  }
  assert.equal(decision.options[0].preview, "url-to-preview-image");

  respondToDecision(decision.decisionId, decision.options[1].id);
  const resolved = await take("user:decision:resolved");
  const resolution = envelope(resolved, "user:decision:resolved");
  assert.equal(resolution.decisionId, decision.decisionId);
  assert.equal(resolution.selectedOptionId, decision.options[1].id);
  assert.equal(resolution.resolvedBy, "user");
  assert.equal(resolution.userId, userId);
  report("resolved", { decisionId: decision.decisionId, seq: lastSeq });

  // drop the transport: the client reconnects by itself and the example re-joins
  socket.io.engine.close();
  await take("reconnect");
  const rejoined = await take("project-joined");
  assert.equal(rejoined.projectId, currentProjectId);
  assert.ok(isInt(rejoined.seq) && rejoined.seq >= lastSeq, "seq after reconnect");
  assert.ok(socket.connected);
  report("rejoined", { seq: rejoined.seq, recovered: socket.recovered });

  // the test publishes one more event after the rejoin
  const after = await take("agent:status:update");
  envelope(after, "agent:status:update");
  assert.equal(after.payload.message, "after reconnect");
  if (queue("agent:status:update").items.length > 0) {
    fail("the event published after the reconnect arrived twice");
  }

  socket.disconnect();
  report("done");
  process.exit(0);
}

main().catch((err) => fail(err?.stack ?? String(err)));
