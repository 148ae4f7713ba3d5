// Echo benchmark: req/s, p50 and p99 at 1, 16 and 64 calls in flight for
//   raw zeromq DEALER/ROUTER (the floor), our ZeroMQ transport, our HTTP transport, and Moleculer
//   with its TCP transporter; the servers run in a separate child process (bench/server.mjs).
// Usage: node bench/echo.mjs [--duration 3000] [--warmup 700] [--inflight 1,16,64] [--cases raw,zmq,http,moleculer]
// The machine is shared: run it as `flock /tmp/bench.lock node bench/echo.mjs`.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import zmq from 'zeromq';
import { ServiceBroker } from 'moleculer';
import { createWorkerConnection, httpTransport, zmqTransport } from '../dist/index.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '3000' },
    warmup: { type: 'string', default: '700' },
    inflight: { type: 'string', default: '1,16,64' },
    cases: { type: 'string', default: 'raw,zmq,http,moleculer' },
    rounds: { type: 'string', default: '1' },
  },
});
const DURATION = Number(values.duration);
const WARMUP = Number(values.warmup);
const WINDOWS = values.inflight.split(',').map(Number);
const CASES = values.cases.split(',');
const ROUNDS = Number(values.rounds);
const PARAMS = { a: 1, b: 'hello world', c: [1, 2, 3, 4, 5] };

const here = dirname(fileURLToPath(import.meta.url));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startServer(moleculerServer, moleculerClient) {
  const child = spawn(
    process.execPath,
    [
      join(here, 'server.mjs'),
      '--moleculer-server',
      String(moleculerServer),
      '--moleculer-client',
      String(moleculerClient),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  const info = await new Promise((resolve, reject) => {
    child.once('exit', code => reject(new Error(`bench server exited with ${code}`)));
    child.stdout.on('data', chunk => {
      out += chunk;
      const m = /READY (.*)\n/.exec(out);
      if (m) resolve(JSON.parse(m[1]));
    });
  });
  return { child, info };
}

/** Keeps `window` calls in flight for `ms`; returns latencies (ms) of calls completed in the window. */
async function drive(call, window, ms) {
  const latencies = [];
  let stop = false;
  let completed = 0;
  const started = performance.now();
  const end = started + ms;
  async function lane() {
    while (!stop) {
      const t0 = performance.now();
      await call();
      const t1 = performance.now();
      if (t1 > end) {
        stop = true;
        return;
      }
      latencies.push(t1 - t0);
      completed++;
    }
  }
  await Promise.all(Array.from({ length: window }, lane));
  const elapsed = Math.min(performance.now(), end) - started;
  return { completed, elapsed, latencies };
}

function summarize({ completed, elapsed, latencies }) {
  const sorted = Float64Array.from(latencies).sort();
  const q = p =>
    sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] : NaN;
  return { rps: (completed / elapsed) * 1000, p50: q(0.5), p99: q(0.99) };
}

// ---- clients ---------------------------------------------------------------------------------

/** Raw floor: one DEALER, toto-style ['', id, json] frames, a correlation map, one send loop. */
function rawClient(address) {
  const sock = new zmq.Dealer({
    linger: 0,
    sendHighWaterMark: 100_000,
    receiveHighWaterMark: 100_000,
  });
  sock.connect(address);
  const pending = new Map();
  let seq = 0;
  const queue = [];
  let sending = false;
  async function pump() {
    sending = true;
    while (queue.length) await sock.send(queue.shift());
    sending = false;
  }
  void (async () => {
    for await (const [, id, body] of sock) {
      const key = id.toString();
      const resolve = pending.get(key);
      if (resolve) {
        pending.delete(key);
        resolve(JSON.parse(body.toString()));
      }
    }
  })().catch(() => {});
  return {
    call: () =>
      new Promise(resolve => {
        const id = String(++seq);
        pending.set(id, resolve);
        queue.push(['', id, JSON.stringify({ method: 'bench.echo', params: PARAMS })]);
        if (!sending) void pump();
      }),
    close: async () => sock.close(),
  };
}

function ourClient(address, transport) {
  const conn = createWorkerConnection({
    addresses: address,
    transport,
    timeoutMs: 10_000,
    maxInFlight: 100_000,
  });
  return { call: () => conn.invoke('bench.echo', PARAMS), close: () => conn.close() };
}

async function moleculerClient(urls, port) {
  const broker = new ServiceBroker({
    nodeID: 'bench-client',
    logger: false,
    transporter: { type: 'TCP', options: { udpDiscovery: false, urls, port } },
  });
  await broker.start();
  await broker.waitForServices(['bench'], 10_000);
  return { call: () => broker.call('bench.echo', PARAMS), close: () => broker.stop() };
}

// ---- run --------------------------------------------------------------------------------------

const moleculerServerPort = await freePort();
const moleculerClientPort = await freePort();
const { child, info } = await startServer(moleculerServerPort, moleculerClientPort);
const results = {}; // results[case][window] = [{rps,p50,p99}, ...]
const labels = {
  raw: 'raw zeromq DEALER/ROUTER (floor)',
  zmq: '@x/worker-rpc ZeroMQ',
  http: '@x/worker-rpc HTTP',
  moleculer: 'Moleculer 0.14 TCP transporter',
};
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of CASES) {
      const client =
        name === 'raw'
          ? rawClient(info.raw)
          : name === 'zmq'
            ? ourClient(info.zmq, zmqTransport())
            : name === 'http'
              ? ourClient(info.http, httpTransport())
              : await moleculerClient(info.moleculerUrls, moleculerClientPort);
      try {
        for (const window of WINDOWS) {
          await drive(client.call, window, WARMUP);
          const r = summarize(await drive(client.call, window, DURATION));
          ((results[name] ??= {})[window] ??= []).push(r);
          process.stderr.write(
            `${labels[name]} W=${window}: ${Math.round(r.rps)} req/s p50 ${r.p50.toFixed(3)} ms p99 ${r.p99.toFixed(3)} ms\n`,
          );
        }
      } finally {
        await client.close();
      }
    }
  }
} finally {
  child.kill('SIGTERM');
}

// median over rounds
const pick = (name, w) => {
  const rs = results[name]?.[w];
  if (!rs) return undefined;
  const sorted = [...rs].sort((a, b) => a.rps - b.rps);
  return sorted[Math.floor(sorted.length / 2)];
};
const fmt = n =>
  n === undefined || Number.isNaN(n)
    ? '—'
    : n >= 100
      ? Math.round(n).toLocaleString('en-US')
      : n.toFixed(2);
const lines = [];
lines.push(
  `Node ${process.version}, ${DURATION} ms per case (after ${WARMUP} ms warm-up), payload ${JSON.stringify(PARAMS).length} B JSON, server in a child process, ${ROUNDS} round(s)`,
);
lines.push('');
lines.push('| transport | in flight | req/s | p50 (ms) | p99 (ms) | vs raw | ZMQ is |');
lines.push('|---|---:|---:|---:|---:|---:|---|');
for (const w of WINDOWS) {
  const raw = pick('raw', w);
  const ours = pick('zmq', w);
  for (const name of CASES) {
    const r = pick(name, w);
    if (!r) continue;
    const vsRaw = raw ? `${(r.rps / raw.rps).toFixed(2)}x` : '—';
    const zmqIs =
      ours && name !== 'zmq' && name !== 'raw' ? `${(ours.rps / r.rps).toFixed(2)}x faster` : '';
    lines.push(
      `| ${labels[name]} | ${w} | ${fmt(r.rps)} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${vsRaw} | ${zmqIs} |`,
    );
  }
}
const at = 64;
const raw64 = pick('raw', at),
  zmq64 = pick('zmq', at),
  http64 = pick('http', at),
  mol64 = pick('moleculer', at);
if (zmq64) {
  lines.push('');
  lines.push(`DESIGN.md §5 targets at ${at} in flight:`);
  const check = (label, ratio, target) =>
    lines.push(
      `- ${label}: ${ratio === undefined ? 'not measured' : `${ratio.toFixed(2)}x (target >= ${target}x) ${ratio >= target ? 'met' : 'MISSED'}`}`,
    );
  check('ZMQ transport vs raw zeromq', raw64 && zmq64.rps / raw64.rps, 0.8);
  check('ZMQ transport vs our HTTP transport', http64 && zmq64.rps / http64.rps, 3);
  check('ZMQ transport vs Moleculer TCP', mol64 && zmq64.rps / mol64.rps, 2);
}
console.log(lines.join('\n'));
process.exit(0);
