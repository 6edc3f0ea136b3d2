'use strict';
// Node.js socket.io 4.8.4 reference server of the end-to-end benchmark (bench/run.sh).
// Same contract as bench/BenchHost and bench/RawKestrel:
//   namespace /builder (auth payload accepted), `join-project {projectId}` joins room
//   `project:<id>`, answers `project-joined` and acks {ok:true};
//   GET /bench/burst?project=P&count=K&rate=R&batch=B&burstId=I emits K agent:status:update
//   envelopes to room project:P and answers JSON once the last one is handed to the transport;
//   GET /bench/stats answers the process's memory figures.
// Usage: node server.js --port N [--msgpack] [--redis-port R [--redis-key K]]
//   (--msgpack: the socket.io-msgpack-parser 3.x parser instead of the default JSON one;
//   --redis-port: a cluster node, rooms shared through @socket.io/redis-adapter 8.3 on the
//   redis-server at 127.0.0.1:R, key K (default "socket.io"); bench/cluster.sh starts three)
const http = require('http');
const { Server } = require('socket.io');
const { performance } = require('perf_hooks');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const port = Number(arg('--port', '3100'));
const nowMs = () => performance.timeOrigin + performance.now();

function json(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function envelope(seq, burstId) {
  const sentAt = nowMs();
  return {
    type: 'agent:status:update',
    timestamp: Math.floor(sentAt),
    payload: {
      agentId: 'agent-uuid',
      agentType: 'ui',
      status: 'working',
      currentTask: 'Generating UI layout for Dashboard page',
      progress: 65,
      message: 'Selected 5 components from library',
      seq,
      burstId,
      sentAt,
    },
  };
}

const httpServer = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname === '/bench/stats') {
    const m = process.memoryUsage();
    json(res, 200, { server: 'node', rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, clients: io.engine.clientsCount });
    return;
  }
  if (url.pathname === '/bench/burst') {
    const project = url.searchParams.get('project') || 'p0';
    const count = Math.max(0, Math.min(10_000_000, Number(url.searchParams.get('count') || '200')));
    const rate = Math.max(0, Number(url.searchParams.get('rate') || '0'));
    const batch = Math.max(1, Number(url.searchParams.get('batch') || '1'));
    const burstId = url.searchParams.get('burstId') || '0';
    const room = io.of('/builder').to('project:' + project);
    const t0 = nowMs();
    let seq = 0;
    const done = () => json(res, 200, { server: 'node', count, elapsedMs: nowMs() - t0, recipients: io.of('/builder').adapter.rooms.get('project:' + project)?.size ?? 0 });
    if (count === 0) { done(); return; }
    if (rate === 0) {
      // as fast as possible: `batch` events per event-loop turn
      const turn = () => {
        for (let i = 0; i < batch && seq < count; i++, seq++) room.emit('agent:status:update', envelope(seq, burstId));
        if (seq < count) setImmediate(turn); else done();
      };
      turn();
    } else {
      // event i due at t0 + i*1000/rate
      const tick = () => {
        const now = nowMs();
        while (seq < count && t0 + (seq * 1000) / rate <= now) { room.emit('agent:status:update', envelope(seq, burstId)); seq++; }
        if (seq < count) setTimeout(tick, Math.max(0, t0 + (seq * 1000) / rate - nowMs())); else done();
      };
      tick();
    }
    return;
  }
  json(res, 404, { error: 'not found' });
});

const redisPort = Number(arg('--redis-port', '0'));
let adapter;
if (redisPort > 0) {
  const { createAdapter } = require('@socket.io/redis-adapter');
  const Redis = require('ioredis');
  const pub = new Redis({ host: '127.0.0.1', port: redisPort });
  const sub = pub.duplicate();
  for (const c of [pub, sub]) c.on('error', (err) => console.error('redis: ' + err.message));
  adapter = createAdapter(pub, sub, { key: arg('--redis-key', 'socket.io') });
}
const msgpack = process.argv.includes('--msgpack');
const serverOptions = { serveClient: false };
if (adapter) serverOptions.adapter = adapter;
if (msgpack) serverOptions.parser = require('socket.io-msgpack-parser');
const io = new Server(httpServer, serverOptions);
io.of('/builder').on('connection', (socket) => {
  socket.on('join-project', (data, ack) => {
    const projectId = data && typeof data.projectId === 'string' ? data.projectId : null;
    if (!projectId) { if (typeof ack === 'function') ack({ ok: false }); return; }
    const room = 'project:' + projectId;
    socket.join(room);
    socket.emit('project-joined', { projectId, members: io.of('/builder').adapter.rooms.get(room)?.size ?? 0, seq: 0 });
    if (typeof ack === 'function') ack({ ok: true, projectId });
  });
});

httpServer.listen(port, '127.0.0.1', () => {
  console.log(`node-ref listening on 127.0.0.1:${port} (socket.io ${require('socket.io/package.json').version}, ${msgpack ? 'msgpack' : 'json'} parser)`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
