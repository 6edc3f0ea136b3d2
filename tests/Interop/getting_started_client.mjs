// The official client against the getting-started sample (samples/GettingStarted, built from
// the packages by tests/Packaging.Tests): every feature docs/getting-started.md shows.
//
// usage: node getting_started_client.mjs --url http://127.0.0.1:5000 --transport polling|websocket
//
// Exits 0 when every check passed, 1 (with a message on stderr) at the first failure. Every
// wait has a deadline; there are no fixed sleeps.

import assert from "node:assert/strict";
import { parseArgs } from "node:util";
import { io } from "socket.io-client";

const WAIT_MS = 5000;
const TOTAL_MS = 60000;

const { values: argv } = parseArgs({
  options: {
    url: { type: "string", default: "http://127.0.0.1:5000" },
    transport: { type: "string", default: "polling" },
  },
});
const transports = argv.transport === "websocket" ? ["websocket"] : ["polling", "websocket"];
const opened = [];

function within(promise, what, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function next(emitter, event) {
  return within(new Promise((resolve) => emitter.once(event, (...args) => resolve(args))), `"${event}"`);
}

function connect(options = {}) {
  const socket = io(argv.url, { transports, reconnection: false, forceNew: true, ...options });
  opened.push(socket);
  return socket;
}

async function main() {
  // middleware: no token, no connection
  const refused = connect({ auth: {} });
  const [err] = await next(refused, "connect_error");
  assert.equal(err.message, "not authorized");
  assert.deepEqual(err.data, { hint: "send auth: { token }" });

  // the Node example's C# equivalent: "hello" on connection, "howdy" to the server
  const ann = connect({ auth: { token: "let-me-in", user: "ann" } });
  const hello = next(ann, "hello");
  await next(ann, "connect");
  const [world] = await hello;
  assert.equal(world, "world");
  ann.emit("howdy", "stranger");

  // acknowledgements, both ways
  assert.equal(await within(ann.timeout(WAIT_MS).emitWithAck("add", 2, 3), "add ack"), 5);
  ann.on("question", (text, callback) => callback(`${text} yes`));
  assert.equal(await within(ann.timeout(WAIT_MS).emitWithAck("ask"), "ask ack"), "ready? yes");

  // binary
  const [length, reversed] = await within(
    new Promise((resolve, reject) =>
      ann.timeout(WAIT_MS).emit("upload", Buffer.from([1, 2, 3]), (err, ...args) => (err ? reject(err) : resolve(args))),
    ),
    "upload ack",
  );
  assert.equal(length, 3);
  assert.deepEqual(Buffer.from(reversed), Buffer.from([3, 2, 1]));

  // rooms: bob hears ann join the room they share
  const bob = connect({ auth: { token: "let-me-in", user: "bob" } });
  await next(bob, "connect");
  const bobJoined = next(bob, "joined");
  bob.emit("join", "lobby");
  const [room, user] = await bobJoined;
  assert.deepEqual([room, user], ["lobby", "bob"]);
  const heard = next(bob, "joined");
  ann.emit("join", "lobby");
  const [room2, user2] = await heard;
  assert.deepEqual([room2, user2], ["lobby", "ann"]);

  // recovery: ann's connection drops; she comes back with her id and rooms
  const idBefore = ann.id;
  const disconnected = next(ann, "disconnect");
  ann.io.engine.close();
  await disconnected;
  const recovered = next(ann, "recovered");
  ann.connect();
  await next(ann, "connect");
  assert.equal(ann.recovered, true, "socket.recovered after a dropped connection");
  assert.equal(ann.id, idBefore);
  const [roomCount] = await recovered;
  assert.equal(roomCount, 2, "own room + lobby");
}

const timer = setTimeout(() => {
  process.stderr.write(`FAIL [${argv.transport}]: over ${TOTAL_MS} ms\n`);
  process.exit(1);
}, TOTAL_MS);
try {
  await main();
  console.log(`PASS [${argv.transport}]`);
} catch (e) {
  process.stderr.write(`FAIL [${argv.transport}]: ${e.stack ?? e}\n`);
  process.exitCode = 1;
} finally {
  clearTimeout(timer);
  for (const s of opened) s.disconnect();
}
