// JSON GET throughput of @x/rest-client against its floor (raw undici Pool.request) and its peers,
// all in one run, client and server on loopback, the server in a child process.
//
//   pnpm build && flock /tmp/bench.lock node bench/throughput.mjs [--duration 3000] [--rounds 6]
//        [--concurrency 32] [--connections 32] [--only raw,resource,...]
//        [--before path/to/another/build/index.js]
//
// Each case runs `rounds` slices of `duration / rounds` ms, interleaved with the other cases so
// that drift and noise from other processes hit every case alike. Reported: the median over the
// slices of requests/s and of client CPU per request, p50 and p99 latency over all requests, and
// the ratios DESIGN.md §5 sets targets for. `--before` adds `Resource.get` and `Resources.unicast`
// rows of another build of this package (e.g. a worktree of the previous commit, whose
// `packages/rest-client/dist/index.js` resolves its own undici), interleaved with the others: an
// A/B in one run.
import { spawn } from 'node:child_process';
import { Agent as HttpAgent } from 'node:http';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { BalancedPool, Pool } from 'undici';
import axios from 'axios';
import got from 'got';
import { LatencyHistogram } from '@x/resilience';
import { noopTracing } from '@x/testkit';
import { Resource, Resources } from '../dist/index.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '3000' },
    rounds: { type: 'string', default: '6' },
    concurrency: { type: 'string', default: '32' },
    connections: { type: 'string', default: '32' },
    'broadcast-delay': { type: 'string', default: '2' },
    only: { type: 'string' },
    before: { type: 'string' },
  },
});
const DURATION = Number(args.duration);
const ROUNDS = Number(args.rounds);
const CONCURRENCY = Number(args.concurrency);
const CONNECTIONS = Number(args.connections);
const BROADCAST_DELAY = Number(args['broadcast-delay']);
const only = args.only?.split(',');

function startServer(count, delayMs) {
  const child = spawn(
    process.execPath,
    [fileURLToPath(new URL('./server.mjs', import.meta.url)), String(count)],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, BENCH_DELAY_MS: String(delayMs) },
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.once('exit', code => reject(new Error(`bench server exited with ${code}`)));
    child.stdout.on('data', chunk => {
      out += chunk;
      const match = /listening ([\d ]+)\n/.exec(out);
      if (match)
        resolve({
          child,
          origins: match[1]
            .trim()
            .split(' ')
            .map(port => `http://127.0.0.1:${port}`),
        });
    });
  });
}

const fast = await startServer(3, 0);
const slow = await startServer(8, BROADCAST_DELAY);
const [origin] = fast.origins;
const agentOptions = { keepAlive: true, maxSockets: CONNECTIONS };

const pool = new Pool(origin, { connections: CONNECTIONS });
const balanced = new BalancedPool(fast.origins, { connections: CONNECTIONS });
const resource = new Resource(origin, { connections: CONNECTIONS });
const resources = new Resources(fast.origins, { connections: CONNECTIONS });
const Before = args.before ? await import(pathToFileURL(resolve(args.before)).href) : undefined;
const resourceBefore = Before && new Before.Resource(origin, { connections: CONNECTIONS });
const resourcesBefore = Before && new Before.Resources(fast.origins, { connections: CONNECTIONS });
const axiosClient = axios.create({ baseURL: origin, httpAgent: new HttpAgent(agentOptions) });
const gotClient = got.extend({
  prefixUrl: origin,
  agent: { http: new HttpAgent(agentOptions) },
  retry: { limit: 0 },
});
const broadcast1 = new Resources(slow.origins.slice(0, 1), { connections: CONNECTIONS });
const broadcast8 = new Resources(slow.origins, { connections: CONNECTIONS });
const sequentialPool = new Pool(slow.origins[0], { connections: CONNECTIONS });

// The traced case: an OpenTelemetry provider that records every span and exports nowhere,
// registered only during its own slices, so the other cases run untraced as usual.
const traced = await noopTracing();

/** name → [label, concurrency, one request returning the decoded body, { on, off } around its slices] */
const cases = {
  raw: [
    'undici Pool.request + body.json() (floor)',
    CONCURRENCY,
    async () => (await pool.request({ method: 'GET', path: '/item' })).body.json(),
  ],
  resource: ['Resource.get', CONCURRENCY, () => resource.get('/item')],
  resourceTraced: [
    'Resource.get, traced (OpenTelemetry, no-op exporter)',
    CONCURRENCY,
    () => resource.get('/item'),
    traced,
  ],
  unicast: [
    'Resources.unicast, 3 hosts (P2C)',
    CONCURRENCY,
    async () => (await resources.unicast('GET', '/item')).body,
  ],
  ...(Before && {
    resourceBefore: [
      'Resource.get, before (--before build)',
      CONCURRENCY,
      () => resourceBefore.get('/item'),
    ],
    unicastBefore: [
      'Resources.unicast, 3 hosts, before (--before build)',
      CONCURRENCY,
      async () => (await resourcesBefore.unicast('GET', '/item')).body,
    ],
  }),
  balancedPool: [
    'undici BalancedPool, 3 hosts',
    CONCURRENCY,
    async () => (await balanced.request({ method: 'GET', path: '/item' })).body.json(),
  ],
  axios: [
    'axios (keep-alive agent)',
    CONCURRENCY,
    async () => (await axiosClient.get('/item')).data,
  ],
  got: ['got (keep-alive agent)', CONCURRENCY, () => gotClient.get('item').json()],
  fetch: ['fetch (Node global)', CONCURRENCY, async () => (await fetch(`${origin}/item`)).json()],
  sequentialRaw: [
    `raw Pool.request, sequential, ${BROADCAST_DELAY} ms server`,
    1,
    async () => (await sequentialPool.request({ method: 'GET', path: '/item' })).body.json(),
  ],
  broadcast1: [
    `broadcast to 1 host, sequential, ${BROADCAST_DELAY} ms server`,
    1,
    () => broadcast1.broadcast('GET', '/item'),
  ],
  broadcast8: [
    `broadcast to 8 hosts, sequential, ${BROADCAST_DELAY} ms server`,
    1,
    () => broadcast8.broadcast('GET', '/item'),
  ],
};

const selected = Object.entries(cases).filter(([name]) => !only || only.includes(name));
const results = new Map(
  selected.map(([name]) => [
    name,
    { rps: [], cpu: [], histogram: new LatencyHistogram({ windowMs: Infinity }) },
  ]),
);
const median = values => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

async function slice([name, [, concurrency, one, around]], ms, record) {
  around?.on();
  try {
    await measure(name, concurrency, one, ms, record);
  } finally {
    around?.off();
  }
}

async function measure(name, concurrency, one, ms, record) {
  const result = results.get(name);
  const stop = performance.now() + ms;
  const cpu = process.cpuUsage();
  const started = performance.now();
  let count = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < stop) {
        const t = performance.now();
        await one();
        if (record) result.histogram.record(performance.now() - t);
        count++;
      }
    }),
  );
  if (!record) return;
  const used = process.cpuUsage(cpu);
  result.rps.push((count * 1000) / (performance.now() - started));
  result.cpu.push((used.user + used.system) / count);
}

// Warm-up: JIT, connections.
for (const entry of selected) await slice(entry, 300, false);
for (let round = 0; round < ROUNDS; round++) {
  for (const entry of selected) await slice(entry, DURATION / ROUNDS, true);
}

const rows = [];
const metric = name => {
  const r = results.get(name);
  return (
    r && {
      rps: median(r.rps),
      cpu: median(r.cpu),
      p50: r.histogram.percentile(0.5),
      p99: r.histogram.percentile(0.99),
    }
  );
};
for (const [name, [label, concurrency]] of selected) {
  const m = metric(name);
  rows.push({ name, label, concurrency, ...m });
}
const raw = metric('raw');
const fmt = (n, digits = 0) =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
console.log(
  `\nNode ${process.version}, undici ${(await import('undici/package.json', { with: { type: 'json' } })).default.version}, ${CONCURRENCY} concurrent, ${CONNECTIONS} connections per host, ${DURATION} ms per case in ${ROUNDS} interleaved slices\n`,
);
console.log(
  '| case | concurrency | req/s (median) | client CPU µs/req (median) | p50 ms | p99 ms | req/s vs raw |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const row of rows) {
  const ratio = raw && row.concurrency === CONCURRENCY ? `${(row.rps / raw.rps).toFixed(2)}x` : '';
  console.log(
    `| ${row.label} | ${row.concurrency} | ${fmt(row.rps)} | ${fmt(row.cpu, 1)} | ${fmt(row.p50, 3)} | ${fmt(row.p99, 3)} | ${ratio} |`,
  );
}

const targets = [];
/** A target row whose printed bound and verdict come from one value (`op` '>=' or '<='). */
const target = (label, value, op, bound) =>
  targets.push([
    label,
    value,
    `${op} ${bound}x`,
    op === '>=' ? value >= Number(bound) : value <= Number(bound),
  ]);
const res = metric('resource');
if (res && raw) target('Resource.get req/s vs raw Pool.request', res.rps / raw.rps, '>=', '0.95');
const uni = metric('unicast');
const bp = metric('balancedPool');
if (uni && bp)
  target('Resources.unicast req/s vs undici BalancedPool', uni.rps / bp.rps, '>=', '1.00');
for (const peer of ['axios', 'got']) {
  const p = metric(peer);
  if (res && p) target(`Resource.get req/s vs ${peer}`, res.rps / p.rps, '>=', '4');
}
const b1 = metric('broadcast1');
const b8 = metric('broadcast8');
if (b1 && b8) target('broadcast p50 latency, 8 hosts vs 1', b8.p50 / b1.p50, '<=', '1.5');
const tr = metric('resourceTraced');
if (res && tr)
  targets.push([
    'Resource.get traced (OpenTelemetry, no-op exporter) vs untraced, client CPU per request',
    tr.cpu / res.cpu,
    '(information, issue 15)',
    true,
  ]);
if (targets.length) {
  console.log('\n| target (DESIGN.md §5) | measured | target | |');
  console.log('|---|---:|---:|---|');
  for (const [label, value, target, met] of targets)
    console.log(
      `| ${label} | ${value.toFixed(2)}x | ${target} | ${target.startsWith('(') ? '' : met ? 'met' : 'MISSED'} |`,
    );
}

await Promise.all([
  pool.close(),
  balanced.close(),
  resource.close(),
  resources.close(),
  broadcast1.close(),
  broadcast8.close(),
  sequentialPool.close(),
  resourceBefore?.close(),
  resourcesBefore?.close(),
]);
fast.child.stdin.end();
slow.child.stdin.end();
process.exit(0);
