// Interop scenarios for the reference JavaScript client (socket.io-client, see package.json).
//
// usage: node node_client.mjs --url http://127.0.0.1:3000 --transport polling|websocket --scenario <name>|all [--parser msgpack]
//
//   polling   = the client default: HTTP long-polling first, then upgrade to WebSocket
//   websocket = transports: ["websocket"] (no polling at all)
//
// Exits 0 when the scenario passed, 1 (with a message on stderr) when it failed. Every wait
// has a deadline; there are no fixed sleeps.

import assert from "node:assert/strict";
import { parseArgs } from "node:util";
import { io, Manager } from "socket.io-client";
import * as msgpackParser from "socket.io-msgpack-parser";

const WAIT_MS = 5000;
const SCENARIO_MS = 30000;

const { values: argv } = parseArgs({
  options: {
    url: { type: "string", default: "http://127.0.0.1:3000" },
    transport: { type: "string", default: "polling" },
    scenario: { type: "string", default: "all" },
    parser: { type: "string", default: "json" },
  },
});

const BASE = argv.url.replace(/\/+$/, "");
const MODE = argv.transport;
if (MODE !== "polling" && MODE !== "websocket") {
  fail(`unknown --transport ${MODE} (expected polling or websocket)`);
}

const opened = [];

function fail(message) {
  process.stderr.write(`FAIL [${argv.scenario}/${argv.transport}]: ${message}\n`);
  process.exit(1);
}

if (argv.parser !== "json" && argv.parser !== "msgpack") {
  fail(`unknown --parser ${argv.parser} (expected json or msgpack)`);
}

/** The transports of --transport, and socket.io-msgpack-parser when --parser msgpack. */
function transportOptions() {
  const parser = argv.parser === "msgpack" ? { parser: msgpackParser } : {};
  return MODE === "websocket" ? { transports: ["websocket"], ...parser } : { transports: ["polling", "websocket"], ...parser };
}

/** Resolves with the promise's value, or rejects after `ms` with a message naming what was awaited. */
function within(promise, what, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Next occurrence of `event` on `emitter`, as the array of its arguments. */
function next(emitter, event, ms = WAIT_MS) {
  return within(
    new Promise((resolve) => emitter.once(event, (...args) => resolve(args))),
    `"${event}"`,
    ms,
  );
}

/** A queue of every occurrence of `event`, so that nothing received before we look is lost. */
function collect(socket, event) {
  const items = [];
  const waiters = [];
  socket.on(event, (...args) => {
    const waiter = waiters.shift();
    if (waiter) {
      waiter(args);
    } else {
      items.push(args);
    }
  });
  return {
    items,
    take(ms = WAIT_MS) {
      if (items.length > 0) {
        return Promise.resolve(items.shift());
      }
      return within(new Promise((resolve) => waiters.push(resolve)), `"${event}"`, ms);
    },
  };
}

/**
 * The server runs with connection state recovery on, so (as the reference server does) every
 * non-volatile event it emits without asking for an ack carries its offset as an extra trailing
 * string argument. Drop it before comparing payloads; the payloads used here never end in a string.
 */
function payload(socket, args, expectedLength) {
  const copy = normalize(args);
  if (socket._pid && copy.length === expectedLength + 1 && typeof copy[copy.length - 1] === "string") {
    copy.pop();
  }
  return copy;
}

/** Binary arrives as Buffer, ArrayBuffer or a typed array depending on transport: make it Buffer. */
function normalize(value) {
  if (Buffer.isBuffer(value)) {
    return Buffer.from(value);
  }
  if (value instanceof ArrayBuffer) {
    return Buffer.from(value);
  }
  if (ArrayBuffer.isView(value)) {
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  }
  if (Array.isArray(value)) {
    return value.map(normalize);
  }
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalize(v)]));
  }
  return value;
}

function expectArgs(socket, actual, expected, what) {
  assert.deepStrictEqual(payload(socket, actual, expected.length), expected, `${what}: unexpected arguments`);
}

/** Creates a socket (own Manager) and waits for "connect"; rejects on connect_error. */
async function connect(nsp = "/", options = {}) {
  const socket = io(BASE + nsp, {
    forceNew: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 500,
    randomizationFactor: 0,
    timeout: WAIT_MS,
    ...transportOptions(),
    ...options,
  });
  opened.push(socket);
  await awaitConnect(socket, `connection to ${nsp}`);
  return socket;
}

function awaitConnect(socket, what) {
  return within(
    new Promise((resolve, reject) => {
      const onConnect = () => {
        socket.off("connect_error", onError);
        resolve();
      };
      const onError = (err) => {
        socket.off("connect", onConnect);
        reject(new Error(`connect_error during ${what}: ${err.message} ${JSON.stringify(err.data ?? null)}`));
      };
      socket.once("connect", onConnect);
      socket.once("connect_error", onError);
    }),
    what,
  );
}

/** A round trip through the server on `socket`: everything the server queued earlier for it has arrived. */
async function barrier(socket) {
  const [echo] = await within(
    socket.timeout(WAIT_MS).emitWithAck("message-with-ack", { barrier: true }).then((arg) => [arg]),
    "barrier ack",
  );
  assert.deepStrictEqual(echo, { barrier: true }, "barrier ack payload");
}

async function waitForTransport(socket, name) {
  const engine = socket.io.engine;
  if (engine.transport.name === name) {
    return;
  }
  await within(
    new Promise((resolve) => engine.once("upgrade", resolve)),
    `transport upgrade to ${name}`,
  );
  assert.equal(engine.transport.name, name, "transport after upgrade");
}

function uniqueRoom(prefix) {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
}

// ---------------------------------------------------------------------------------------------
// scenarios
// ---------------------------------------------------------------------------------------------

const scenarios = {
  async "connect-auth"() {
    const auth = { token: "abc", nested: { n: 1, list: [1, "two", null, true] } };
    const socket = io(BASE + "/", {
      forceNew: true,
      auth,
      reconnection: false,
      ...transportOptions(),
    });
    opened.push(socket);
    const authEvent = next(socket, "auth");
    await awaitConnect(socket, "connection to /");
    assert.equal(typeof socket.id, "string", "socket.id after connect");
    assert.ok(socket.id.length > 0, "socket.id is empty");
    expectArgs(socket, await authEvent, [auth], "auth event");

    if (MODE === "polling") {
      // the connection must have started on polling and then upgraded to websocket
      await waitForTransport(socket, "websocket");
    } else {
      assert.equal(socket.io.engine.transport.name, "websocket", "websocket-only transport");
    }
    // still usable after the upgrade
    await barrier(socket);

    // no auth at all: the server sees an empty object
    const bare = io(BASE + "/", { forceNew: true, reconnection: false, ...transportOptions() });
    opened.push(bare);
    const bareAuth = next(bare, "auth");
    await awaitConnect(bare, "connection without auth");
    expectArgs(bare, await bareAuth, [{}], "auth event without auth");
    assert.notEqual(bare.id, socket.id, "two connections share an id");
  },

  async "emit-ack"() {
    const socket = await connect("/");
    const args = [1, "two", { three: [3, 3.5], four: null, five: false }];

    // client -> server -> client event
    const back = next(socket, "message-back");
    socket.emit("message", ...args);
    expectArgs(socket, await back, args, "message-back");

    // client -> server ack (all arguments)
    const acked = await within(
      new Promise((resolve, reject) =>
        socket.timeout(WAIT_MS).emit("message-with-ack", ...args, (err, ...ackArgs) =>
          err ? reject(err) : resolve(ackArgs),
        ),
      ),
      "ack of message-with-ack",
    );
    assert.deepStrictEqual(normalize(acked), args, "ack arguments");

    // emitWithAck (promise form, first argument)
    const first = await within(socket.timeout(WAIT_MS).emitWithAck("message-with-ack", { a: "b" }), "emitWithAck");
    assert.deepStrictEqual(first, { a: "b" }, "emitWithAck result");

    // server -> client ack: the server asks, the client acks, the server reports what it got
    socket.on("question", (...qArgs) => {
      const cb = qArgs.pop();
      assert.equal(typeof cb, "function", "server question must request an ack");
      cb({ got: qArgs, from: "node" });
    });
    const answer = next(socket, "answer");
    socket.emit("server-ask", { q: 42 });
    expectArgs(socket, await answer, [{ got: [{ q: 42 }], from: "node" }], "answer");
  },

  async binary() {
    const socket = await connect("/");
    const blob = Buffer.from([0, 1, 2, 127, 128, 254, 255]);
    const args = [blob, { name: "blob", data: Buffer.from("hello"), list: [Buffer.alloc(0), 5] }, 7];

    const back = next(socket, "message-back");
    socket.emit("message", ...args);
    expectArgs(socket, await back, args, "binary message-back");

    const acked = await within(
      new Promise((resolve, reject) =>
        socket.timeout(WAIT_MS).emit("message-with-ack", ...args, (err, ...ackArgs) =>
          err ? reject(err) : resolve(ackArgs),
        ),
      ),
      "binary ack",
    );
    assert.deepStrictEqual(normalize(acked), args, "binary ack arguments");

    // server -> client binary event with a binary ack back
    socket.on("question", (...qArgs) => {
      const cb = qArgs.pop();
      const [q] = normalize(qArgs);
      cb({ echo: Buffer.concat([q, Buffer.from([9])]) });
    });
    const answer = next(socket, "answer");
    socket.emit("server-ask", Buffer.from([4, 5, 6]));
    expectArgs(socket, await answer, [{ echo: Buffer.from([4, 5, 6, 9]) }], "binary answer");

    // a large binary payload (still well below maxPayload)
    const big = Buffer.alloc(200_000);
    for (let i = 0; i < big.length; i++) {
      big[i] = (i * 31) & 0xff;
    }
    const bigBack = next(socket, "message-back");
    socket.emit("message", big, { n: 1 });
    expectArgs(socket, await bigBack, [big, { n: 1 }], "large binary message-back");
  },

  async rooms() {
    const room = uniqueRoom("room");
    const [a, b, c] = await Promise.all([connect("/"), connect("/"), connect("/")]);
    const aGot = collect(a, "broadcasted");
    const bGot = collect(b, "broadcasted");
    const cGot = collect(c, "broadcasted");

    assert.equal(await within(a.timeout(WAIT_MS).emitWithAck("join", room), "join ack (A)"), true, "join ack A");
    assert.equal(await within(b.timeout(WAIT_MS).emitWithAck("join", room), "join ack (B)"), true, "join ack B");

    const body = { hello: room, n: [1, 2, 3] };
    a.emit("broadcast", room, body);
    expectArgs(b, await bGot.take(), [body], "broadcasted at B");

    // A (the sender: socket.to(room) excludes it) and C (not in the room) must get nothing
    await barrier(a);
    await barrier(c);
    assert.equal(aGot.items.length, 0, `sender received its own room broadcast: ${JSON.stringify(aGot.items)}`);
    assert.equal(cGot.items.length, 0, `socket outside the room received the broadcast: ${JSON.stringify(cGot.items)}`);

    // binary through a room broadcast, other direction
    const bin = { data: Buffer.from([1, 2, 3]) };
    b.emit("broadcast", room, bin);
    expectArgs(a, await aGot.take(), [bin], "binary broadcasted at A");
    await barrier(b);
    await barrier(c);
    assert.equal(bGot.items.length, 0, "sender B received its own broadcast");
    assert.equal(cGot.items.length, 0, "C received a broadcast for a room it is not in");
  },

  async namespace() {
    const manager = new Manager(BASE, {
      reconnection: false,
      ...transportOptions(),
    });
    const root = manager.socket("/", { auth: { ns: "root" } });
    const custom = manager.socket("/custom", { auth: { ns: "custom" } });
    opened.push(root, custom);
    const rootAuth = next(root, "auth");
    const customAuth = next(custom, "auth");
    root.connect();
    custom.connect();
    await Promise.all([awaitConnect(root, "connection to /"), awaitConnect(custom, "connection to /custom")]);
    expectArgs(root, await rootAuth, [{ ns: "root" }], "auth on /");
    expectArgs(custom, await customAuth, [{ ns: "custom" }], "auth on /custom");
    assert.notEqual(root.id, custom.id, "namespace sockets must have distinct ids");

    const rootBack = collect(root, "message-back");
    const customBack = collect(custom, "message-back");
    custom.emit("message", "in-custom", { n: 1 });
    expectArgs(custom, await customBack.take(), ["in-custom", { n: 1 }], "message-back on /custom");
    const acked = await within(custom.timeout(WAIT_MS).emitWithAck("message-with-ack", { ns: "custom" }), "ack on /custom");
    assert.deepStrictEqual(acked, { ns: "custom" }, "ack on /custom");
    await barrier(root);
    assert.equal(rootBack.items.length, 0, "/ received an event meant for /custom");

    // leaving one namespace keeps the other alive on the same connection
    custom.disconnect();
    await barrier(root);
    assert.ok(root.connected, "/ disconnected when /custom left");

    // unknown namespace
    const nope = manager.socket("/nope");
    opened.push(nope);
    const err = next(nope, "connect_error");
    nope.connect();
    const [e] = await err;
    assert.equal(e.message, "Invalid namespace", "connect_error message for an unknown namespace");
    await barrier(root);
  },

  async "connect-error"() {
    for (const auth of [{ token: "bad" }, undefined]) {
      const socket = io(BASE + "/secure", { forceNew: true, ...transportOptions(), ...(auth ? { auth } : {}) });
      opened.push(socket);
      let connectedOnce = false;
      socket.on("connect", () => {
        connectedOnce = true;
      });
      const [err] = await next(socket, "connect_error");
      assert.ok(err instanceof Error, "connect_error argument must be an Error");
      assert.equal(err.message, "Authentication failed", "err.message");
      assert.ok(err.data, `err.data missing (auth ${JSON.stringify(auth)})`);
      assert.equal(err.data.code, "TOKEN_INVALID", "err.data.code");
      assert.equal(connectedOnce || socket.connected, false, "socket must not be connected");
      assert.equal(socket.active, false, "a middleware rejection must not be retried automatically");
      socket.close();
    }

    const good = io(BASE + "/secure", { forceNew: true, auth: { token: "good" }, ...transportOptions() });
    opened.push(good);
    const goodAuth = next(good, "auth");
    await awaitConnect(good, "connection to /secure with a good token");
    expectArgs(good, await goodAuth, [{ token: "good" }], "auth on /secure");
    await barrier(good);
  },

  async "server-disconnect"() {
    const socket = await connect("/");
    const disconnected = next(socket, "disconnect");
    socket.emit("disconnect-me");
    const [reason] = await disconnected;
    assert.equal(reason, "io server disconnect", "disconnect reason");
    assert.equal(socket.connected, false, "connected after server disconnect");
    assert.equal(socket.active, false, "the client must not reconnect after a server-side disconnect");
  },

  async reconnect() {
    const socket = await connect("/", { reconnectionAttempts: 20 });
    const firstId = socket.id;
    await barrier(socket);

    const disconnected = next(socket, "disconnect");
    const reconnected = next(socket.io, "reconnect", 10000);
    const connectedAgain = next(socket, "connect", 10000);
    socket.emit("drop-transport");
    const [reason] = await disconnected;
    assert.ok(
      reason === "transport close" || reason === "transport error",
      `disconnect reason after a dropped transport: ${reason}`,
    );
    assert.equal(socket.active, true, "the client must try to reconnect after a transport drop");
    await connectedAgain;
    await reconnected;
    assert.ok(socket.connected, "connected after reconnection");
    assert.equal(typeof socket.id, "string", "socket.id after reconnection");
    void firstId;

    // the new session works both ways
    const back = next(socket, "message-back");
    socket.emit("message", { again: true });
    expectArgs(socket, await back, [{ again: true }], "message-back after reconnection");
    await barrier(socket);
  },

  async recovery() {
    const room = uniqueRoom("recovery");
    // A reconnects by hand (reconnection: false) so that the missed events are certainly emitted
    // while it is away; the reference client sends { pid, offset } on any reconnect.
    const a = await connect("/", { reconnection: false });
    const b = await connect("/");
    assert.ok(a._pid, "the server did not send a pid in the CONNECT packet (connection state recovery off?)");
    assert.equal(a.recovered, false, "recovered must be false on a first connection");
    const missed = collect(a, "missed");

    assert.equal(await within(a.timeout(WAIT_MS).emitWithAck("join", room), "join ack"), true, "join ack");
    // one live event first: it also gives the client an offset to resume from
    await within(b.timeout(WAIT_MS).emitWithAck("emit-to-room", room, "missed", { n: 0 }), "emit-to-room ack");
    expectArgs(a, await missed.take(), [{ n: 0 }], "live room event");
    const idBefore = a.id;
    const pidBefore = a._pid;

    const disconnected = next(a, "disconnect");
    a.emit("drop-transport");
    const [reason] = await disconnected;
    assert.ok(reason === "transport close" || reason === "transport error", `disconnect reason: ${reason}`);

    for (let n = 1; n <= 3; n++) {
      await within(b.timeout(WAIT_MS).emitWithAck("emit-to-room", room, "missed", { n }), `emit-to-room ack ${n}`);
    }
    await within(
      b.timeout(WAIT_MS).emitWithAck("emit-to-room", room, "missed", { n: 4, bin: Buffer.from([4]) }),
      "emit-to-room ack 4",
    );

    const reconnected = awaitConnect(a, "reconnection of A");
    a.connect();
    await reconnected;
    assert.equal(a.recovered, true, "socket.recovered after reconnecting within maxDisconnectionDuration");
    assert.equal(a.id, idBefore, "a recovered socket keeps its id");
    assert.equal(a._pid, pidBefore, "a recovered session keeps its pid");

    for (let n = 1; n <= 3; n++) {
      expectArgs(a, await missed.take(), [{ n }], `missed event ${n}`);
    }
    expectArgs(a, await missed.take(), [{ n: 4, bin: Buffer.from([4]) }], "missed binary event 4");

    // the room membership survived the recovery
    await within(b.timeout(WAIT_MS).emitWithAck("emit-to-room", room, "missed", { n: 5 }), "emit-to-room ack 5");
    expectArgs(a, await missed.take(), [{ n: 5 }], "live event after recovery");
    await barrier(a);
    assert.equal(missed.items.length, 0, `unexpected extra events: ${JSON.stringify(missed.items)}`);
  },

  async "recovery-auto"() {
    // same as "recovery", but A comes back through the client's own automatic reconnection
    // (1 s delay: B's emits, each acknowledged by the server, normally all land before it)
    const room = uniqueRoom("recovery-auto");
    const a = await connect("/", { reconnectionDelay: 1000, reconnectionDelayMax: 1000, randomizationFactor: 0 });
    const b = await connect("/");
    assert.ok(a._pid, "the server did not send a pid in the CONNECT packet (connection state recovery off?)");
    const missed = collect(a, "missed");
    assert.equal(await within(a.timeout(WAIT_MS).emitWithAck("join", room), "join ack"), true, "join ack");
    await within(b.timeout(WAIT_MS).emitWithAck("emit-to-room", room, "missed", { n: 0 }), "emit-to-room ack");
    expectArgs(a, await missed.take(), [{ n: 0 }], "live room event");
    const idBefore = a.id;

    const disconnected = next(a, "disconnect");
    const reconnected = next(a, "connect", 10000);
    a.emit("drop-transport");
    const [reason] = await disconnected;
    assert.ok(reason === "transport close" || reason === "transport error", `disconnect reason: ${reason}`);
    for (let n = 1; n <= 3; n++) {
      await within(b.timeout(WAIT_MS).emitWithAck("emit-to-room", room, "missed", { n }), `emit-to-room ack ${n}`);
    }
    await reconnected;
    assert.equal(a.recovered, true, "socket.recovered after an automatic reconnection");
    assert.equal(a.id, idBefore, "a recovered socket keeps its id");
    for (let n = 1; n <= 3; n++) {
      expectArgs(a, await missed.take(), [{ n }], `missed event ${n}`);
    }
    await barrier(a);
    assert.equal(missed.items.length, 0, `unexpected extra events: ${JSON.stringify(missed.items)}`);
  },
};

async function run(name) {
  const scenario = scenarios[name];
  if (!scenario) {
    fail(`unknown scenario ${name}; known: ${Object.keys(scenarios).join(", ")}, all`);
  }
  await within(scenario(), `scenario ${name} to finish`, SCENARIO_MS);
  for (const socket of opened.splice(0)) {
    socket.io.opts.reconnection = false;
    socket.disconnect();
  }
  process.stdout.write(`PASS ${name} (${MODE})\n`);
}

try {
  const names = argv.scenario === "all" ? Object.keys(scenarios) : [argv.scenario];
  for (const name of names) {
    await run(name);
  }
  process.exit(0);
} catch (err) {
  fail(err && err.stack ? err.stack : String(err));
}
