// The Node.js side of tests/SocketIO.Redis.Tests: a socket.io 4.8 server with
// @socket.io/redis-adapter 8.3 (classic Pub/Sub adapter), socket.io-client 4.8 clients (which may
// connect to any server, ours included) and a @socket.io/redis-emitter 5.1 emitter, all driven by
// JSON lines on stdin ({id, op, ...}); it answers {id, ok, result} or {id, error} and reports
// every event a client receives as {recv: client, event, args}. Binary is {"$bin": base64}.
//
//   node peer.js <redis port> [key] [specific]   ("specific": publishOnSpecificResponseChannel)
"use strict";

const http = require("http");
const readline = require("readline");
const { Server } = require("socket.io");
const { io: connect } = require("socket.io-client");
const { createAdapter } = require("@socket.io/redis-adapter");
const { Emitter } = require("@socket.io/redis-emitter");
const Redis = require("ioredis");

const redisPort = Number(process.argv[2]);
const key = process.argv[3] || "socket.io";
const publishOnSpecificResponseChannel = process.argv[4] === "specific";

const pub = new Redis({ port: redisPort, host: "127.0.0.1", lazyConnect: false });
const sub = pub.duplicate();
const emitterClient = pub.duplicate();
for (const c of [pub, sub, emitterClient]) c.on("error", (err) => log("redis error " + err.message));

const httpServer = http.createServer();
const io = new Server(httpServer, { adapter: createAdapter(pub, sub, { key, requestsTimeout: 3000, publishOnSpecificResponseChannel }) });
const emitter = new Emitter(emitterClient, { key });
const clients = new Map();
const held = new Map(); // client -> ack callbacks kept back ("hold")
const pending = new Map(); // name -> result of a started emitWithAck

function log(text) {
  process.stderr.write(text + "\n");
}

function out(obj) {
  process.stdout.write(JSON.stringify(obj, (k, v) => v) + "\n");
}

// Buffers to {"$bin": base64} and back
function toWire(value) {
  if (Buffer.isBuffer(value)) return { $bin: value.toString("base64") };
  if (value instanceof ArrayBuffer) return { $bin: Buffer.from(value).toString("base64") };
  if (Array.isArray(value)) return value.map(toWire);
  if (value && typeof value === "object") {
    if (value.type === "Buffer" && Array.isArray(value.data)) return { $bin: Buffer.from(value.data).toString("base64") };
    const o = {};
    for (const [k, v] of Object.entries(value)) o[k] = toWire(v);
    return o;
  }
  return value;
}

function fromWire(value) {
  if (Array.isArray(value)) return value.map(fromWire);
  if (value && typeof value === "object") {
    if (typeof value.$bin === "string") return Buffer.from(value.$bin, "base64");
    const o = {};
    for (const [k, v] of Object.entries(value)) o[k] = fromWire(v);
    return o;
  }
  return value;
}

function target(op, cmd) {
  let t = op;
  if (cmd.rooms && cmd.rooms.length) t = t.to(cmd.rooms);
  if (cmd.except && cmd.except.length) t = t.except(cmd.except);
  return t;
}

io.on("connection", (socket) => {
  socket.data.server = "node";
  socket.on("join", (room, cb) => {
    socket.join(room);
    if (cb) cb(true);
  });
  socket.on("leave", (room, cb) => {
    socket.leave(room);
    if (cb) cb(true);
  });
  socket.on("broadcast", (event, payload, cb) => {
    socket.broadcast.emit(event, payload);
    if (cb) cb(true);
  });
});

// server-side emits from other nodes (ours included)
io.on("server-ping", (...args) => {
  const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
  out({ serverEvent: "server-ping", args: toWire(args) });
  if (cb) cb({ from: "node", got: args[0] });
});

const ops = {
  async connect(cmd) {
    const socket = connect(cmd.url, { transports: ["websocket"], forceNew: true, reconnection: false });
    clients.set(cmd.client, socket);
    socket.onAny((event, ...args) => {
      const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
      out({ recv: cmd.client, event, args: toWire(args) });
      const answer = { from: cmd.client, echo: args[0] === undefined ? null : args[0] };
      if (cb && cmd.hold) held.set(cmd.client, [...(held.get(cmd.client) || []), () => cb(answer)]);
      else if (cb && !cmd.silent) cb(answer);
    });
    socket.on("disconnect", (reason) => out({ recv: cmd.client, event: "disconnect", args: [reason] }));
    await new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    });
    return socket.id;
  },
  // answers the acks a "hold" client has kept back
  async release(cmd) {
    const callbacks = held.get(cmd.client) || [];
    held.delete(cmd.client);
    for (const cb of callbacks) cb();
    return callbacks.length;
  },
  // starts a broadcast with acks without waiting; "emitWithAckResult" collects its result
  async emitWithAckStart(cmd) {
    pending.set(cmd.name, ops.emitWithAck(cmd));
    return true;
  },
  async emitWithAckResult(cmd) {
    return await pending.get(cmd.name);
  },
  async clientEmit(cmd) {
    const socket = clients.get(cmd.client);
    return await socket.timeout(5000).emitWithAck(cmd.event, ...fromWire(cmd.args || []));
  },
  async close(cmd) {
    clients.get(cmd.client).disconnect();
    clients.delete(cmd.client);
    return true;
  },
  async emit(cmd) {
    target(io, cmd).emit(cmd.event, ...fromWire(cmd.args || []));
    return true;
  },
  async socketBroadcast(cmd) {
    io.of("/").sockets.get(cmd.sid).broadcast.emit(cmd.event, ...fromWire(cmd.args || []));
    return true;
  },
  async fetch(cmd) {
    const sockets = await target(io, cmd).fetchSockets();
    return sockets.map((s) => ({ id: s.id, rooms: [...s.rooms], data: s.data, auth: s.handshake.auth }));
  },
  async socketsJoin(cmd) {
    target(io, cmd).socketsJoin(cmd.room);
    return true;
  },
  async socketsLeave(cmd) {
    target(io, cmd).socketsLeave(cmd.room);
    return true;
  },
  async disconnectSockets(cmd) {
    target(io, cmd).disconnectSockets(!!cmd.close);
    return true;
  },
  async emitWithAck(cmd) {
    try {
      const responses = await target(io, cmd).timeout(cmd.timeout).emitWithAck(cmd.event, ...fromWire(cmd.args || []));
      return { responses: toWire(responses) };
    } catch (err) {
      return { error: err.message };
    }
  },
  async serverSideEmitWithAck(cmd) {
    try {
      const responses = await io.serverSideEmitWithAck(cmd.event, ...fromWire(cmd.args || []));
      return { responses };
    } catch (err) {
      return { error: err.message };
    }
  },
  async allRooms() {
    return [...(await io.of("/").adapter.allRooms())];
  },
  async serverCount() {
    return await io.of("/").adapter.serverCount();
  },
  async emitterEmit(cmd) {
    target(emitter, cmd).emit(cmd.event, ...fromWire(cmd.args || []));
    return true;
  },
  async emitterSocketsJoin(cmd) {
    target(emitter, cmd).socketsJoin(cmd.room);
    return true;
  },
  async emitterServerSideEmit(cmd) {
    emitter.serverSideEmit(cmd.event, ...fromWire(cmd.args || []));
    return true;
  },
  async emitterDisconnectSockets(cmd) {
    target(emitter, cmd).disconnectSockets(!!cmd.close);
    return true;
  },
};

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch {
    return;
  }
  try {
    const result = await ops[cmd.op](cmd);
    out({ id: cmd.id, ok: true, result: result === undefined ? null : result });
  } catch (err) {
    out({ id: cmd.id, ok: false, error: String(err && err.message ? err.message : err) });
  }
});
rl.on("close", () => process.exit(0));

Promise.all([new Promise((r) => pub.once("ready", r)), new Promise((r) => sub.once("ready", r))]).then(() => {
  httpServer.listen(0, "127.0.0.1", () => {
    out({ ready: true, port: httpServer.address().port, uid: io.of("/").adapter.uid });
  });
});
