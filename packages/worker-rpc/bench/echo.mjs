// Echo benchmark: req/s, p50, p99 and CPU per request (client process + server process) at 1, 16,
//   64 and 1 024 calls in flight for raw zeromq DEALER/ROUTER (the floor), our ZeroMQ transport,
//   our HTTP transport, and Moleculer with its TCP transporter, then 1 KB and 64 KB payloads at 64
//   in flight; the servers run in a separate child process (bench/server.mjs).
// Usage: node bench/echo.mjs [--duration 3000] [--warmup 700] [--inflight 1,16,64,1024]
//   [--warmup-calls 3000] [--cases raw,zmq,http,moleculer] [--rounds 1] [--payloads 1024,65536] [--payload-inflight 64]
//   [--baseline <dist folder of another build>] [--threads]
// --threads adds a table of where the CPU goes per request (Linux, /proc/<pid>/task): each
// process's main (event-loop) thread, its ZeroMQ I/O thread and its other threads (GC, libuv), and
// how busy each main thread was and how long it waited for a CPU (the rest is idle); `node --cpu-prof bench/echo.mjs` profiles the
// client and the server process (the bench's node flags are passed on to the server).
// --baseline adds the case `base`: that build's client and worker (A/B in the same run, e.g. a copy
// of dist/ made before a change). Rounds are interleaved; figures are medians over rounds.
// The machine is shared: run it as `flock /tmp/bench.lock node bench/echo.mjs`.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import zmq from 'zeromq';
import { ServiceBroker } from 'moleculer';
import { createWorkerConnection, httpTransport, zmqTransport } from '../dist/index.js';
import { noopTracing } from '@x/testkit';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '3000' },
    warmup: { type: 'string', default: '700' },
    'warmup-calls': { type: 'string', default: '3000' },
    inflight: { type: 'string', default: '1,16,64,1024' },
    cases: { type: 'string', default: 'raw,zmq,zmqTraced,http,moleculer' },
    rounds: { type: 'string', default: '1' },
    payloads: { type: 'string', default: '1024,65536' },
    'payload-inflight': { type: 'string', default: '64' },
    baseline: { type: 'string' },
    threads: { type: 'boolean', default: false },
  },
});
const THREADS = values.threads;
const DURATION = Number(values.duration);
const WARMUP = Number(values.warmup);
/**
 * Warm-up also runs until this many calls completed (at most 10 warm-up periods): at 1 in flight a
 * time-only warm-up of a few hundred calls measures V8 still compiling the call path (on its
 * background threads, the `other` column of --threads), not the steady state.
 */
const WARMUP_CALLS = Number(values['warmup-calls']);
const WINDOWS = values.inflight.split(',').map(Number);
const BASELINE = values.baseline ? resolvePath(values.baseline) : undefined;
const CASES = values.cases.split(',').concat(BASELINE ? ['base'] : []);
const ROUNDS = Number(values.rounds);
const PARAMS = { a: 1, b: 'hello world', c: [1, 2, 3, 4, 5] };
const PAYLOADS = values.payloads ? values.payloads.split(',').map(Number) : [];
const PAYLOAD_WINDOW = Number(values['payload-inflight']);
/** A JSON object of about `bytes` bytes. */
const paramsOf = bytes => ({ a: 1, data: 'x'.repeat(Math.max(0, bytes - 18)) });
const base = BASELINE ? await import(pathToFileURL(join(BASELINE, 'index.js')).href) : undefined;

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
      // the bench's own node flags (e.g. --cpu-prof) apply to the server process too
      ...process.execArgv,
      join(here, 'server.mjs'),
      '--moleculer-server',
      String(moleculerServer),
      '--moleculer-client',
      String(moleculerClient),
      ...(BASELINE ? ['--baseline', BASELINE] : []),
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

/** CPU time (ms) the server process used so far, from /proc (Linux); NaN elsewhere. */
function serverCpuMs(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks (USER_HZ 100)
  } catch {
    return NaN;
  }
}

/**
 * CPU time (ms) of every thread of a process so far, by role: `main` (the event loop, whose tid is
 * the pid), `io` (libzmq's `ZMQbg/IO/*` threads) and `other` (V8 GC and compiler threads, libuv's
 * pool, libzmq's reaper). Linux only; empty elsewhere.
 */
function threadCpuMs(pid) {
  const out = { main: 0, io: 0, other: 0, mainWait: 0 };
  let tids;
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
      const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
      const role = tid === String(pid) ? 'main' : comm.startsWith('ZMQbg/IO') ? 'io' : 'other';
      out[role] += ms;
      if (role === 'main') {
        // schedstat: CPU time, time spent runnable but waiting for a CPU, time slices (ns)
        const wait = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')[1];
        out.mainWait = Number(wait) / 1e6;
      }
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}
const threadDelta = (a, b) =>
  a && b
    ? {
        main: b.main - a.main,
        io: b.io - a.io,
        other: b.other - a.other,
        mainWait: b.mainWait - a.mainWait,
      }
    : undefined;

/**
 * Keeps `window` calls in flight for `ms`; returns latencies (ms) of calls completed in the window
 * and the CPU time both processes spent (client: process.cpuUsage, server: /proc).
 */
async function drive(call, window, ms, serverPid) {
  const latencies = [];
  let stop = false;
  let completed = 0;
  const cpu0 = process.cpuUsage();
  const server0 = serverCpuMs(serverPid);
  const clientThreads0 = THREADS ? threadCpuMs(process.pid) : undefined;
  const serverThreads0 = THREADS ? threadCpuMs(serverPid) : undefined;
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
  const cpu = process.cpuUsage(cpu0);
  const clientUs = cpu.user + cpu.system;
  const serverUs = (serverCpuMs(serverPid) - server0) * 1000;
  const threads = THREADS
    ? {
        client: threadDelta(clientThreads0, threadCpuMs(process.pid)),
        server: threadDelta(serverThreads0, threadCpuMs(serverPid)),
        wallMs: performance.now() - started,
      }
    : undefined;
  return { completed, elapsed, latencies, clientUs, serverUs, threads };
}

function summarize({ completed, elapsed, latencies, clientUs, serverUs, threads }) {
  const sorted = Float64Array.from(latencies).sort();
  const q = p =>
    sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] : NaN;
  return {
    rps: (completed / elapsed) * 1000,
    p50: q(0.5),
    p99: q(0.99),
    cpu: completed ? (clientUs + serverUs) / completed : NaN,
    threads: threads && completed ? perRequest(threads, completed) : undefined,
  };
}

/** Thread CPU per request (µs) and how busy each main thread was (share of wall time). */
function perRequest({ client, server, wallMs }, completed) {
  if (!client || !server) return undefined;
  const us = ms => (ms * 1000) / completed;
  return {
    clientMain: us(client.main),
    clientIo: us(client.io),
    clientOther: us(client.other),
    serverMain: us(server.main),
    serverIo: us(server.io),
    serverOther: us(server.other),
    clientBusy: client.main / wallMs,
    serverBusy: server.main / wallMs,
    clientWait: client.mainWait / wallMs,
    serverWait: server.mainWait / wallMs,
  };
}

// ---- clients ---------------------------------------------------------------------------------

/** Raw floor: one DEALER, toto-style ['', id, json] frames, a correlation map, one send loop. */
function rawClient(address, params) {
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
        queue.push(['', id, JSON.stringify({ method: 'bench.echo', params })]);
        if (!sending) void pump();
      }),
    close: async () => sock.close(),
  };
}

function ourClient(address, transport, params, create = createWorkerConnection) {
  const conn = create({
    addresses: address,
    transport,
    timeoutMs: 10_000,
    maxInFlight: 100_000,
  });
  return { call: () => conn.invoke('bench.echo', params), close: () => conn.close() };
}

async function moleculerClient(urls, port, params) {
  const broker = new ServiceBroker({
    nodeID: 'bench-client',
    logger: false,
    transporter: { type: 'TCP', options: { udpDiscovery: false, urls, port } },
  });
  await broker.start();
  await broker.waitForServices(['bench'], 10_000);
  return { call: () => broker.call('bench.echo', params), close: () => broker.stop() };
}

// ---- run --------------------------------------------------------------------------------------

const moleculerServerPort = await freePort();
const moleculerClientPort = await freePort();
const { child, info } = await startServer(moleculerServerPort, moleculerClientPort);
const results = {}; // results[case][window] = [{rps,p50,p99,cpu}, ...]
const payloadResults = {}; // payloadResults[case][bytes] = [...]
const labels = {
  raw: 'raw zeromq DEALER/ROUTER (floor)',
  zmq: '@x/worker-rpc ZeroMQ',
  http: '@x/worker-rpc HTTP',
  moleculer: 'Moleculer 0.14 TCP transporter',
  base: '@x/worker-rpc ZeroMQ, baseline build',
  zmqTraced: '@x/worker-rpc ZeroMQ, traced (OpenTelemetry client spans, no-op exporter)',
};
/** The traced case runs at this many in flight only (it measures the cost of the spans). */
const TRACED_WINDOW = 64;
// The traced case: an OpenTelemetry provider in this (client) process that records every span
// and exports nowhere, registered only while that case runs.
const tracing = await noopTracing();
function clientFor(name, params) {
  if (name === 'raw') return rawClient(info.raw, params);
  if (name === 'zmq' || name === 'zmqTraced') return ourClient(info.zmq, zmqTransport(), params);
  if (name === 'http') return ourClient(info.http, httpTransport(), params);
  if (name === 'base')
    return ourClient(info.base, base.zmqTransport(), params, base.createWorkerConnection);
  return moleculerClient(info.moleculerUrls, moleculerClientPort, params);
}
async function measure(name, params, window, into, key) {
  if (name === 'zmqTraced') tracing.on();
  const client = await clientFor(name, params);
  try {
    let warmed = 0;
    for (let i = 0; i < 10 && (i === 0 || warmed < WARMUP_CALLS); i++)
      warmed += (await drive(client.call, window, WARMUP, child.pid)).completed;
    const r = summarize(await drive(client.call, window, DURATION, child.pid));
    ((into[name] ??= {})[key] ??= []).push(r);
    return r;
  } finally {
    await client.close();
    if (name === 'zmqTraced') tracing.off();
  }
}
const cpuText = r => (Number.isNaN(r.cpu) ? '—' : r.cpu.toFixed(1));
try {
  for (let round = 0; round < ROUNDS; round++) {
    // interleaved: the order of the cases turns every round
    const order = CASES.map((_, i) => CASES[(i + round) % CASES.length]);
    for (const name of order) {
      for (const window of WINDOWS) {
        if (name === 'zmqTraced' && window !== TRACED_WINDOW) continue;
        const r = await measure(name, PARAMS, window, results, window);
        process.stderr.write(
          `${labels[name]} W=${window}: ${Math.round(r.rps)} req/s p50 ${r.p50.toFixed(3)} ms p99 ${r.p99.toFixed(3)} ms CPU ${cpuText(r)} us/req\n`,
        );
      }
    }
    for (const bytes of PAYLOADS) {
      for (const name of order) {
        if (name === 'zmqTraced') continue;
        const r = await measure(name, paramsOf(bytes), PAYLOAD_WINDOW, payloadResults, bytes);
        process.stderr.write(
          `${labels[name]} ${bytes} B W=${PAYLOAD_WINDOW}: ${Math.round(r.rps)} req/s p50 ${r.p50.toFixed(3)} ms p99 ${r.p99.toFixed(3)} ms CPU ${cpuText(r)} us/req\n`,
        );
      }
    }
  }
} finally {
  child.kill('SIGTERM');
}

// median over rounds
const median = rs => {
  if (!rs?.length) return undefined;
  const sorted = [...rs].sort((a, b) => a.rps - b.rps);
  const cpus = rs.map(r => r.cpu).sort((a, b) => a - b);
  return { ...sorted[Math.floor(sorted.length / 2)], cpu: cpus[Math.floor(cpus.length / 2)] };
};
const pick = (name, w) => median(results[name]?.[w]);
const pickPayload = (name, bytes) => median(payloadResults[name]?.[bytes]);
const fmt = n =>
  n === undefined || Number.isNaN(n)
    ? '—'
    : n >= 100
      ? Math.round(n).toLocaleString('en-US')
      : n.toFixed(2);
const lines = [];
lines.push(
  `Node ${process.version}, ${DURATION} ms per case (after ${WARMUP} ms warm-up), payload ${JSON.stringify(PARAMS).length} B JSON, server in a child process, ${ROUNDS} round(s); CPU = client + server process CPU time per request`,
);
lines.push('');
lines.push(
  '| transport | in flight | req/s | p50 (ms) | p99 (ms) | CPU (µs/req) | vs raw | ZMQ is |',
);
lines.push('|---|---:|---:|---:|---:|---:|---:|---|');
const row = (name, r, col, raw, ours) => {
  const vsRaw = raw ? `${(r.rps / raw.rps).toFixed(2)}x` : '—';
  const zmqIs =
    ours && name !== 'zmq' && name !== 'raw' && name !== 'zmqTraced'
      ? `${(ours.rps / r.rps).toFixed(2)}x faster`
      : '';
  return `| ${labels[name]} | ${col} | ${fmt(r.rps)} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${cpuText(r)} | ${vsRaw} | ${zmqIs} |`;
};
for (const w of WINDOWS) {
  const raw = pick('raw', w);
  const ours = pick('zmq', w);
  for (const name of CASES) {
    const r = pick(name, w);
    if (r) lines.push(row(name, r, w, raw, ours));
  }
}
if (PAYLOADS.length > 0) {
  lines.push('');
  lines.push(`Larger payloads (JSON objects of about that size), ${PAYLOAD_WINDOW} in flight:`);
  lines.push('');
  lines.push(
    '| transport | payload | req/s | p50 (ms) | p99 (ms) | CPU (µs/req) | vs raw | ZMQ is |',
  );
  lines.push('|---|---:|---:|---:|---:|---:|---:|---|');
  for (const bytes of PAYLOADS) {
    const raw = pickPayload('raw', bytes);
    const ours = pickPayload('zmq', bytes);
    const size = bytes >= 1024 ? `${bytes / 1024} KB` : `${bytes} B`;
    for (const name of CASES) {
      const r = pickPayload(name, bytes);
      if (r) lines.push(row(name, r, size, raw, ours));
    }
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
  check('ZMQ transport vs raw zeromq', raw64 && zmq64.rps / raw64.rps, 1.0);
  check('ZMQ transport vs our HTTP transport', http64 && zmq64.rps / http64.rps, 3);
  check('ZMQ transport vs Moleculer TCP', mol64 && zmq64.rps / mol64.rps, 2);
  if (mol64 && !Number.isNaN(zmq64.cpu) && !Number.isNaN(mol64.cpu))
    lines.push(
      `- (information) CPU per request, client + server: ZMQ ${zmq64.cpu.toFixed(1)} µs, Moleculer ${mol64.cpu.toFixed(1)} µs (${(mol64.cpu / zmq64.cpu).toFixed(2)}x less for ZMQ)`,
    );
}
const traced64 = pick('zmqTraced', at);
if (zmq64 && traced64 && !Number.isNaN(zmq64.cpu) && !Number.isNaN(traced64.cpu))
  lines.push(
    `- (information, issue 15) traced vs untraced at ${at} in flight, CPU per request: ${traced64.cpu.toFixed(1)} vs ${zmq64.cpu.toFixed(1)} µs (${(traced64.cpu / zmq64.cpu).toFixed(2)}x), req/s ${(traced64.rps / zmq64.rps).toFixed(2)}x`,
  );
if (THREADS) {
  lines.push('');
  lines.push(
    'Where the CPU goes (µs per request; main = event-loop thread, io = libzmq I/O thread, other = GC, libuv pool; busy = main thread CPU / wall time; waiting = runnable but without a CPU (other processes); idle = the rest):',
  );
  lines.push('');
  lines.push(
    '| transport | case | client main | client io | client other | server main | server io | server other | client busy / waiting | server busy / waiting |',
  );
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const pct = x => `${Math.round(x * 100)} %`;
  const threadRow = (name, r, col) => {
    const t = r?.threads;
    if (!t) return;
    const f = x => x.toFixed(1);
    lines.push(
      `| ${labels[name]} | ${col} | ${f(t.clientMain)} | ${f(t.clientIo)} | ${f(t.clientOther)} | ${f(t.serverMain)} | ${f(t.serverIo)} | ${f(t.serverOther)} | ${pct(t.clientBusy)} / ${pct(t.clientWait)} | ${pct(t.serverBusy)} / ${pct(t.serverWait)} |`,
    );
  };
  for (const w of WINDOWS) for (const name of CASES) threadRow(name, pick(name, w), w);
  for (const bytes of PAYLOADS)
    for (const name of CASES)
      threadRow(
        name,
        pickPayload(name, bytes),
        bytes >= 1024 ? `${bytes / 1024} KB` : `${bytes} B`,
      );
}
console.log(lines.join('\n'));
process.exit(0);
