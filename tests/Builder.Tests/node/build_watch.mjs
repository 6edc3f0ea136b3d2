// Watches a whole build with the official socket.io-client (installed by tests/Interop/package.json),
// as a browser would: joins the project, answers the layout decision, and hands every project event
// it received back to the test, in arrival order.
//
// usage: node build_watch.mjs <gatewayUrl> <token> <projectId> <answerOptionId> <endTypes, comma-separated>
//
// stdout, one JSON object per line: {"step": "joined", seq} → {"step": "done", answered:
// {decisionId, selectedOptionId} | null, events: [envelope, ...]}. Exits 0 when its own checks passed (every event an
// envelope named like its type, of this project, seq contiguous from the join; the decision as
// the document shows it, answer acknowledged), 1 with "FAIL: ..." on stderr otherwise.

import assert from "node:assert/strict";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const interop = process.env.INTEROP_DIR ?? path.resolve(here, "../../Interop");
const require = createRequire(path.join(interop, "package.json"));
const { io } = require("socket.io-client");

const [url, token, projectId, answer, endList] = process.argv.slice(2);
const endTypes = new Set(endList.split(","));
const WAIT_MS = 10000;

function fail(message) {
  process.stderr.write(`FAIL: ${message}\n`);
  process.exit(1);
}

process.on("unhandledRejection", (err) => fail(err?.stack ?? String(err)));
setTimeout(() => fail(`the build did not end (${[...endTypes].join(" or ")}) within 60 s; received: ${events.map((e) => e.type).join(", ")}`), 60000).unref();

function report(step, extra = {}) {
  process.stdout.write(JSON.stringify({ step, ...extra }) + "\n");
}

const LAYOUT_QUESTION = "Which layout style do you prefer?";
const DOCUMENT_OPTIONS = [
  { id: "option-1", label: "Modern Dashboard", description: "Card-based layout with charts" },
  { id: "option-2", label: "Classic Table", description: "Traditional table-based layout" },
];

const events = [];
let joinedSeq = null;
let ended = false;

const socket = io(`${url}/builder`, { auth: { token }, reconnection: false });
socket.on("connect_error", (err) => fail(`connect_error: ${err.message} ${JSON.stringify(err.data)}`));
socket.on("disconnect", (reason) => {
  if (!ended) {
    fail(`disconnected before the build ended: ${reason}`);
  }
});

socket.onAny((name, event) => {
  if (name === "authenticated" || name === "project-joined" || name === "project:snapshot" || name === "ping") {
    return;
  }
  try {
    assert.ok(event && typeof event === "object", `${name}: an envelope object`);
    assert.equal(event.type, name, `${name}: type equals the event name`);
    assert.equal(event.projectId, projectId, `${name}: projectId`);
    assert.ok(Number.isInteger(event.timestamp), `${name}: timestamp`);
    assert.ok(typeof event.eventId === "string" && event.eventId.length > 0, `${name}: eventId`);
    assert.ok(event.payload && typeof event.payload === "object" && !Array.isArray(event.payload), `${name}: payload object`);
    assert.ok(joinedSeq !== null, `${name} arrived before project-joined`);
    const expected = (events.length === 0 ? joinedSeq : events[events.length - 1].seq) + 1;
    assert.equal(event.seq, expected, `${name}: seq contiguous from the join`);
  } catch (err) {
    fail(`${err.message}\n${JSON.stringify(event)}`);
  }
  events.push(event);

  if (name === "user:decision:required" && event.payload.question === LAYOUT_QUESTION) {
    onDecision(event.payload);
  }
  if (endTypes.has(name)) {
    ended = true;
    // the ack of the answer may still be on its way
    Promise.resolve(answered).then((answer) => {
      report("done", { answered: answer, events });
      socket.disconnect();
      process.exit(0);
    });
  }
});

let answered = null;

function onDecision(decision) {
  if (answered !== null) {
    fail(`a second layout decision: ${JSON.stringify(decision)}`);
  }
  try {
    assert.equal(decision.projectId, projectId);
    assert.ok(typeof decision.agentId === "string" && decision.agentId.length > 0, "agentId");
    assert.ok(typeof decision.decisionId === "string" && decision.decisionId.length > 0, "decisionId");
    assert.ok(Number.isInteger(decision.timeout) && decision.timeout > 0, "timeout");
    assert.deepEqual(
      decision.options.map((o) => ({ id: o.id, label: o.label, description: o.description })),
      DOCUMENT_OPTIONS,
      "the document's two options");
  } catch (err) {
    fail(`user:decision:required is not the document's layout decision: ${err.message}\n${JSON.stringify(decision)}`);
  }
  answered = new Promise((resolve) => {
    const timer = setTimeout(() => fail("no ack for user:decision:response"), WAIT_MS);
    socket.emit("user:decision:response", { decisionId: decision.decisionId, selectedOptionId: answer }, (ack) => {
      clearTimeout(timer);
      if (!ack?.ok) {
        fail(`the answer was refused: ${JSON.stringify(ack)}`);
      }
      resolve({ decisionId: decision.decisionId, selectedOptionId: answer });
    });
  });
}

const joinTimer = setTimeout(() => fail("no ack for join-project"), WAIT_MS);
socket.emit("join-project", { projectId }, (ack) => {
  clearTimeout(joinTimer);
  if (!ack?.ok || !Number.isInteger(ack.seq)) {
    fail(`join-project refused: ${JSON.stringify(ack)}`);
  }
  joinedSeq = ack.seq;
  report("joined", { seq: ack.seq });
});
