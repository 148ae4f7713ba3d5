// @x/routes overhead, as ratios measured side by side in one run:
//   1. in-process: a route (translator, worker, metrics) per message vs a bare awaited call;
//   2. HTTP: httpEntrypoint + route vs a bare node:http handler doing the same work, req/s at a fixed
//      concurrency, load from a separate child process (keep-alive node:http agent);
//   3. BullMQ: bullmqEntrypoint + route vs a raw BullMQ Worker, jobs/s draining a pre-filled queue.
// Each case runs in its own child process (no JIT cross-talk), several rounds, median.
// Usage (shared machine: always under the lock):
//   flock /tmp/bench.lock node bench/overhead.mjs            full run
//   flock /tmp/bench.lock node bench/overhead.mjs --quick    short dev run
//   node bench/overhead.mjs --quick --only=in-process         only some parts (in-process, http, bullmq)
//   node bench/overhead.mjs --quick --only=in-process --base=.bench-base --rounds=7
//     --base=DIR: an older build's dist/ as extra in-process A/B rows, interleaved with this build's
//     in the same rounds (`cp -r dist .bench-base` before changing the code). --rounds=N overrides
//     the in-process rounds.
// Needs `pnpm build` first. BullMQ rows use REDIS_URL; unset, the bench starts a redis-server of its
// own on a free loopback port (stopped at the end), or skips those rows (saying why) when none is on
// the PATH. An unreachable Redis skips them within REDIS_CONNECT_MS; a BullMQ case that stalls is
// killed after BULLMQ_CASE_MS: the bench never hangs.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, request, Agent } from 'node:http';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const self = fileURLToPath(import.meta.url);
const QUICK = args.includes('--quick');
const PARTS = ['in-process', 'http', 'bullmq'];
const ONLY = (
  args
    .find(a => a.startsWith('--only='))
    ?.slice(7)
    .split(',') ?? PARTS
).filter(p => {
  if (PARTS.includes(p)) return true;
  throw new Error(`--only: expected some of ${PARTS.join(', ')}, got ${p}`);
});
const option = name => args.find(a => a.startsWith(`--${name}=`))?.slice(name.length + 3);
/** `--base=DIR`: an older build's dist/ (A/B rows); a child gets it as an absolute file URL. */
const BASE = option('base');
const BASE_URL = BASE && pathToFileURL(resolve(BASE, 'index.js')).href;
const REDIS_URL = process.env.REDIS_URL; // the orchestrator sets it for the BullMQ children
const REDIS_CONNECT_MS = 3_000;
const BULLMQ_CASE_MS = QUICK ? 60_000 : 180_000;
const CALLS = QUICK ? 100_000 : 300_000;
const ROUNDS = Number(option('rounds') ?? (QUICK ? 3 : 7));
if (!Number.isInteger(ROUNDS) || ROUNDS < 1)
  throw new Error(`--rounds: expected a positive integer, got ${option('rounds')}`);
const HTTP_CONCURRENCY = 32;
const HTTP_MS = QUICK ? 1_000 : 2_000;
const HTTP_ROUNDS = QUICK ? 1 : 5;
const JOBS = QUICK ? 1_000 : 4_000;
const JOB_ROUNDS = QUICK ? 1 : 5;
const JOB_CONCURRENCY = 16;
/** DESIGN §5: in-process route dispatch overhead per message. */
const TARGET_NS = 500;

/**
 * A metrics sink that does the minimum a real one does: keep counters. It records no histograms
 * and says so (`recordsHistograms: false`, which lets a route skip timing its workers) unless
 * `declared` is false.
 */
function countingMetrics(declared = true) {
  const counters = new Map();
  return {
    increment(name, value = 1) {
      counters.set(name, (counters.get(name) ?? 0) + value);
    },
    gauge() {},
    histogram() {},
    ...(declared && { recordsHistograms: false }),
  };
}

// ---- 1. in-process -------------------------------------------------------------------------

/** A route with the counting sink (or `metrics`) from the build at `dist` (this one, or --base). */
async function routeCase(dist, metrics = countingMetrics()) {
  const { route, Runner } = await import(dist);
  const r = route({ translators: [x => x], target: x => x + 1 });
  const runner = new Runner({ routes: [r], metrics });
  await runner.start();
  return { run: x => r.startRoute(null, x), close: () => runner.stop() };
}

const perf = globalThis.performance;

const inProcess = {
  async bare() {
    const translate = x => x;
    const fn = async x => translate(x) + 1;
    return { run: fn };
  },
  async 'floor: bare + counters + outcome'() {
    // The least a route does per message beyond the bare call: count the task (one counter, the
    // in-flight gauge up and down) and resolve with an outcome object of its own.
    const metrics = countingMetrics();
    const tags = Object.freeze({ context: 'default', route: 'bench' });
    const translate = x => x;
    let running = 0;
    const fn = async x => {
      metrics.increment('route.tasks', 1, tags);
      metrics.gauge('route.tasks.in_flight', ++running, tags);
      const value = translate(x) + 1;
      metrics.gauge('route.tasks.in_flight', --running, tags);
      return { kind: 'success', value, attempts: 1 };
    };
    return { run: fn };
  },
  async 'floor + 2 clock reads'() {
    // the same, timing the call (what a duration histogram or an attempt listener needs)
    const metrics = countingMetrics();
    const tags = Object.freeze({ context: 'default', route: 'bench' });
    const translate = x => x;
    let running = 0;
    const fn = async x => {
      const startedAt = perf.now();
      metrics.increment('route.tasks', 1, tags);
      metrics.gauge('route.tasks.in_flight', ++running, tags);
      const value = translate(x) + 1;
      metrics.gauge('route.tasks.in_flight', --running, tags);
      metrics.histogram('route.task.duration', perf.now() - startedAt, tags);
      return { kind: 'success', value, attempts: 1 };
    };
    return { run: fn };
  },
  route: () => routeCase('../dist/index.js'),
  'route, sink without recordsHistograms': () =>
    routeCase('../dist/index.js', countingMetrics(false)),
  async 'route + memoryMetrics'() {
    const { memoryMetrics } = await import('@x/resilience');
    return routeCase('../dist/index.js', memoryMetrics());
  },
  ...(BASE_URL && {
    'base: route': () => routeCase(BASE_URL),
    async 'base: route + memoryMetrics'() {
      const { memoryMetrics } = await import('@x/resilience');
      return routeCase(BASE_URL, memoryMetrics());
    },
  }),
};

async function measureInProcess(name) {
  const { run, close } = await inProcess[name]();
  const loop = async n => {
    for (let i = 0; i < n; i++) await run(i);
  };
  await loop(Math.min(CALLS, 100_000));
  // CPU time of this process (user + system), not wall time: on a shared machine the wall clock
  // also counts the time other processes held the CPU.
  const samples = [];
  for (let r = 0; r < 3; r++) {
    const start = process.cpuUsage();
    await loop(CALLS);
    const used = process.cpuUsage(start);
    samples.push(((used.user + used.system) * 1000) / CALLS);
  }
  await close?.();
  return samples.sort((a, b) => a - b)[1];
}

async function measureQueue() {
  const { route, Runner, memoryQueue } = await import('../dist/index.js');
  const queue = memoryQueue({ maxLength: CALLS + 1 });
  const r = route({ entrypoint: queue, translators: [x => x], target: x => x + 1 });
  const runner = new Runner({ routes: [r], metrics: countingMetrics() });
  await runner.start();
  const once = async n => {
    const start = process.cpuUsage();
    for (let i = 0; i < n; i++) queue.publish(i);
    await queue.idle();
    const used = process.cpuUsage(start);
    return ((used.user + used.system) * 1000) / n;
  };
  await once(Math.min(CALLS, 50_000));
  const samples = [await once(CALLS), await once(CALLS), await once(CALLS)].sort((a, b) => a - b);
  await runner.stop();
  return samples[1];
}

// ---- 2. HTTP -------------------------------------------------------------------------------

/** `GET /__stats`: CPU time used by this server process (µs) and requests served, for the load child. */
let served = 0;
function stats(req, res) {
  if (req.url !== '/__stats') return false;
  const { user, system } = process.cpuUsage();
  res
    .writeHead(200, { 'content-type': 'application/json' })
    .end(JSON.stringify({ cpuMicros: user + system, served }));
  return true;
}

async function startHttpServer(kind) {
  if (kind === 'bare') {
    const server = createServer((req, res) => {
      if (stats(req, res)) return;
      served++;
      if (req.method !== 'POST' || req.url !== '/') {
        res.writeHead(404).end();
        return;
      }
      const chunks = [];
      req.on('data', c => chunks.push(c));
      req.on('end', () => {
        let order;
        try {
          order = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          res.writeHead(400).end();
          return;
        }
        const body = JSON.stringify({ id: order.id, ok: true });
        res.writeHead(200, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        });
        res.end(body);
      });
    });
    await new Promise(resolve => server.listen(0, '127.0.0.1', resolve));
    return server.address().port;
  }
  const { route, httpEntrypoint, json, Runner } = await import('../dist/index.js');
  const http = httpEntrypoint({ path: '/' }); // mounted, so the same server also answers /__stats
  const r = route({
    entrypoint: http,
    translators: [json()],
    target: order => ({ id: order.id, ok: true }),
  });
  // A worker budget as large as the load's concurrency: the bare handler has no limit either.
  await new Runner({
    routes: [r],
    maxWorkers: HTTP_CONCURRENCY,
    metrics: countingMetrics(),
  }).start();
  const server = createServer((req, res) => {
    if (stats(req, res)) return;
    served++;
    http.handler(req, res);
  });
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve));
  return server.address().port;
}

function getStats(port) {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/__stats', agent: false }, res => {
      let text = '';
      res.on('data', c => (text += c));
      res.on('end', () => resolve(JSON.parse(text)));
    })
      .on('error', reject)
      .end();
  });
}

async function runLoad(port, concurrency, ms) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const body = JSON.stringify({ id: 7, items: [1, 2, 3] });
  let done = 0;
  let errors = 0;
  const one = () =>
    new Promise(resolve => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/',
          agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        res => {
          if (res.statusCode !== 200) errors++;
          res.resume();
          res.on('end', resolve);
        },
      );
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end(body);
    });
  const worker = async until => {
    while (Date.now() < until) {
      await one();
      done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, () => worker(Date.now() + 300))); // warm up
  done = 0;
  const before = await getStats(port);
  const start = Date.now();
  await Promise.all(Array.from({ length: concurrency }, () => worker(start + ms)));
  const elapsed = Date.now() - start;
  const after = await getStats(port);
  agent.destroy();
  const requests = after.served - before.served - 1; // minus the second /__stats
  return {
    rps: (done * 1000) / elapsed,
    cpuMicrosPerRequest: (after.cpuMicros - before.cpuMicros) / requests,
    errors,
  };
}

function runChild(childArgs, { ready } = {}) {
  const child = spawn(process.execPath, [self, ...childArgs], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const readyLine = new Promise((resolve, reject) => {
    child.stdout.on('data', d => {
      out += d;
      const line = ready && out.split('\n').find(l => l.startsWith(ready));
      if (line) resolve(line);
    });
    child.on('exit', code =>
      code === 0 ? resolve(out) : reject(new Error(`${childArgs.join(' ')} exited ${code}`)),
    );
  });
  return { child, readyLine, output: () => out };
}

async function measureHttp(kind) {
  const server = runChild(['--http-server', kind], { ready: 'PORT ' });
  const port = Number((await server.readyLine).slice(5));
  const load = spawnSync(
    process.execPath,
    [self, '--load', String(port), String(HTTP_CONCURRENCY), String(HTTP_MS)],
    { encoding: 'utf8' },
  );
  server.child.kill('SIGKILL');
  if (load.status !== 0) throw new Error(`load failed: ${load.stderr}`);
  const result = JSON.parse(load.stdout);
  if (result.errors > 0) throw new Error(`${kind}: ${result.errors} failed requests`);
  return result;
}

// ---- 3. BullMQ -----------------------------------------------------------------------------

async function measureBullmq(kind) {
  const { Queue, Worker } = await import('bullmq');
  const connection = { url: REDIS_URL };
  const name = `xroutes-bench-${kind === 'raw' ? 'raw' : 'route'}-${randomBytes(4).toString('hex')}`;
  const queue = new Queue(name, { connection });
  try {
    await queue.addBulk(
      Array.from({ length: JOBS }, (_, i) => ({ name: 'message', data: { id: i } })),
    );
    let processed = 0;
    let close;
    let start;
    let cpu;
    const first = () => {
      // timed from the first job: startup excluded
      if (start === undefined) {
        start = process.hrtime.bigint();
        cpu = process.cpuUsage();
      }
    };
    if (kind === 'raw') {
      const worker = new Worker(
        name,
        async job => {
          first();
          processed++;
          return job.data.id + 1;
        },
        { connection, concurrency: JOB_CONCURRENCY, removeOnComplete: { count: JOBS } },
      );
      close = () => worker.close();
    } else {
      const { route, bullmqEntrypoint, Runner } = await import('../dist/index.js');
      const ep = bullmqEntrypoint({
        queue: name,
        connection: REDIS_URL,
        concurrency: JOB_CONCURRENCY,
        keepCompleted: JOBS,
      });
      const r = route({
        entrypoint: ep,
        translators: [x => x],
        target: message => {
          first();
          processed++;
          return message.id + 1;
        },
      });
      const runner = new Runner({
        routes: [r],
        maxWorkers: JOB_CONCURRENCY,
        metrics: countingMetrics(),
      });
      await runner.start();
      close = () => runner.stop();
    }
    for (;;) {
      const { completed } = await queue.getJobCounts('completed');
      if (completed >= JOBS) break;
      await new Promise(resolve => setTimeout(resolve, 10));
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const used = process.cpuUsage(cpu);
    await close();
    if (processed !== JOBS) throw new Error(`${kind}: processed ${processed} of ${JOBS}`);
    return { jobsPerSec: JOBS / seconds, cpuMicrosPerJob: (used.user + used.system) / JOBS };
  } finally {
    await queue.obliterate({ force: true }).catch(() => undefined);
    const dead = new Queue(`${name}-dead`, { connection });
    await dead.obliterate({ force: true }).catch(() => undefined);
    await dead.close();
    await queue.close();
  }
}

/**
 * The Redis of the BullMQ rows: REDIS_URL, else a redis-server of our own (no persistence) on a free
 * loopback port, checked with a PING within REDIS_CONNECT_MS. `{ skip }` says why there is none.
 */
async function benchRedis() {
  let url = process.env.REDIS_URL;
  let server;
  let note = `REDIS_URL ${url}`;
  if (url === undefined) {
    if (spawnSync('redis-server', ['--version']).error)
      return { skip: 'REDIS_URL is unset and no redis-server is on the PATH' };
    const { freePort } = await import('@x/testkit');
    const port = await freePort();
    server = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    process.on('exit', () => server.kill('SIGKILL'));
    url = `redis://127.0.0.1:${port}`;
    note = `own redis-server on 127.0.0.1:${port} (REDIS_URL unset)`;
  }
  const { Queue } = await import('bullmq');
  const probe = new Queue('xroutes-bench-probe', {
    connection: { url, connectTimeout: REDIS_CONNECT_MS, retryStrategy: () => 200 },
  });
  let timer;
  try {
    await Promise.race([
      (async () => {
        const client = await probe.client;
        await client.ping();
      })(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer from ${url} within ${REDIS_CONNECT_MS} ms`)),
          REDIS_CONNECT_MS,
        );
      }),
    ]);
  } catch (error) {
    server?.kill('SIGKILL');
    return { skip: `Redis not reachable: ${error.message.split('\n')[0]}` };
  } finally {
    clearTimeout(timer);
    probe.disconnect().catch(() => undefined); // not awaited: it waits for a connection that may never come
  }
  return { url, note, stop: () => server?.kill('SIGTERM') };
}

// ---- child entry points --------------------------------------------------------------------

if (args[0] === '--case') {
  const ns = await measureInProcess(args[1]);
  process.stdout.write(JSON.stringify({ ns }));
  process.exit(0);
}
if (args[0] === '--queue') {
  process.stdout.write(JSON.stringify({ ns: await measureQueue() }));
  process.exit(0);
}
if (args[0] === '--http-server') {
  process.on('SIGINT', () => process.exit(0)); // a clean exit (lets --cpu-prof write its profile)
  const port = await startHttpServer(args[1]);
  console.log(`PORT ${port}`);
  await new Promise(() => {});
}
if (args[0] === '--load') {
  const result = await runLoad(Number(args[1]), Number(args[2]), Number(args[3]));
  process.stdout.write(JSON.stringify(result));
  process.exit(0);
}
if (args[0] === '--bullmq') {
  process.stdout.write(JSON.stringify(await measureBullmq(args[1])));
  process.exit(0);
}

// ---- orchestration -------------------------------------------------------------------------

const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x, d = 0) =>
  x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const child = (childArgs, timeoutMs) => {
  const out = spawnSync(process.execPath, [self, ...childArgs], {
    encoding: 'utf8',
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
  });
  if (out.error?.code === 'ETIMEDOUT')
    throw new Error(`${childArgs.join(' ')} stalled: killed after ${timeoutMs} ms`);
  if (out.status !== 0) throw new Error(`${childArgs.join(' ')} failed: ${out.stderr}`);
  return JSON.parse(out.stdout);
};

const has = part => ONLY.includes(part);
let inproc;
let inprocRange;
let queueNs;
if (has('in-process')) {
  const ns = {};
  // rounds interleave the cases (and the --base build's): drift on a shared machine hits all alike
  const caseArgs = name => ['--case', name, ...(BASE ? [`--base=${BASE}`] : [])];
  for (let round = 0; round < ROUNDS; round++)
    for (const name of Object.keys(inProcess))
      (ns[name] ??= []).push(child(caseArgs(name)).ns);
  inproc = Object.fromEntries(Object.entries(ns).map(([k, v]) => [k, median(v)]));
  // overhead over bare per round (same round, so drift between rounds cancels), then its range
  inprocRange = Object.fromEntries(
    Object.entries(ns).map(([k, v]) => {
      const over = v.map((x, i) => x - ns.bare[i]);
      return [k, { median: median(over), min: Math.min(...over), max: Math.max(...over) }];
    }),
  );
  queueNs = median(Array.from({ length: QUICK ? 1 : 3 }, () => child(['--queue']).ns));
}

let http;
if (has('http')) {
  const httpRuns = { bare: [], route: [] };
  for (let round = 0; round < HTTP_ROUNDS; round++)
    for (const kind of ['bare', 'route']) httpRuns[kind].push(await measureHttp(kind));
  http = Object.fromEntries(
    Object.entries(httpRuns).map(([k, v]) => [
      k,
      { rps: median(v.map(x => x.rps)), cpu: median(v.map(x => x.cpuMicrosPerRequest)) },
    ]),
  );
}

let jobs;
const redis = has('bullmq') ? await benchRedis() : {};
if (!has('bullmq')) jobs = undefined;
else if (redis.skip) jobs = { error: redis.skip };
else
  try {
    process.env.REDIS_URL = redis.url;
    const runs = { raw: [], route: [] };
    for (let round = 0; round < JOB_ROUNDS; round++)
      for (const kind of ['raw', 'route'])
        runs[kind].push(child(['--bullmq', kind], BULLMQ_CASE_MS));
    jobs = Object.fromEntries(
      Object.entries(runs).map(([k, v]) => [
        k,
        {
          jobsPerSec: median(v.map(x => x.jobsPerSec)),
          cpu: median(v.map(x => x.cpuMicrosPerJob)),
        },
      ]),
    );
  } catch (error) {
    jobs = { error: error.message.split('\n')[0] };
  } finally {
    redis.stop();
  }

const verdict = ok => (ok ? 'met' : 'MISSED');

console.log(
  `@x/routes overhead — Node ${process.version}, ${QUICK ? 'QUICK ' : ''}in-process ${fmt(CALLS)} sequential awaited messages x ${ROUNDS} rounds (CPU time per message); ` +
    `HTTP ${HTTP_CONCURRENCY} concurrent keep-alive requests for ${HTTP_MS} ms x ${HTTP_ROUNDS}; BullMQ ${fmt(JOBS)} jobs, concurrency ${JOB_CONCURRENCY} x ${JOB_ROUNDS} (medians). ` +
    `CPU figures are the CPU time of the measured process, robust on a shared machine; wall-clock rates are shown for reference.` +
    (ONLY.length < PARTS.length ? ` Only: ${ONLY.join(', ')}.` : '') +
    '\n',
);
console.log('| case | figure | baseline | @x/routes | ratio | target |');
console.log('|---|---|---:|---:|---|---|');
if (inproc) {
  const over = name => inprocRange[name];
  const range = name =>
    ROUNDS > 1 ? ` (${fmt(over(name).min)} to ${fmt(over(name).max)} over ${ROUNDS} rounds)` : '';
  const signed = x => (x < 0 ? '' : '+') + fmt(x);
  const overhead = over('route').median;
  console.log(
    `| in-process route (translator, worker, counting metrics) vs bare awaited call | CPU ns/message | ${fmt(inproc.bare)} | ${fmt(inproc.route)} | ${signed(overhead)} ns/message${range('route')} | <= ${fmt(TARGET_NS)} ns (DESIGN §5): ${verdict(overhead <= TARGET_NS)} |`,
  );
  console.log(
    `| same, with memoryMetrics (histograms) | CPU ns/message | ${fmt(inproc.bare)} | ${fmt(inproc['route + memoryMetrics'])} | ${signed(over('route + memoryMetrics').median)} ns/message${range('route + memoryMetrics')} | (information) |`,
  );
  console.log(
    `| same, counting sink that does not declare \`recordsHistograms: false\` (workers timed) | CPU ns/message | ${fmt(inproc.bare)} | ${fmt(inproc['route, sink without recordsHistograms'])} | ${signed(over('route, sink without recordsHistograms').median)} ns/message${range('route, sink without recordsHistograms')} | (information) |`,
  );
  for (const [floor, what] of [
    ['floor: bare + counters + outcome', 'no route: the least its work per message costs'],
    ['floor + 2 clock reads', 'the same, timed'],
  ])
    console.log(
      `| ${floor} (${what}) | CPU ns/message | ${fmt(inproc.bare)} | ${fmt(inproc[floor])} | ${signed(over(floor).median)} ns/message${range(floor)} | (information) |`,
    );
  for (const name of ['base: route', 'base: route + memoryMetrics'].filter(n => n in inproc)) {
    const ours = name.replace('base: ', '');
    const delta = () => inproc[ours] - inproc[name];
    console.log(
      `| A/B: ${name.slice(6)} with the build in ${BASE} | CPU ns/message | ${fmt(inproc.bare)} | ${fmt(inproc[name])} | ${signed(over(name).median)} ns/message${range(name)} | this build ${signed(delta())} ns/message |`,
    );
  }
  console.log(
    `| memory queue publish → settled (route as above) | CPU ns/message | — | ${fmt(queueNs)} | ${fmt(1e9 / queueNs)} messages/s per core | (information) |`,
  );
}
if (http) {
  const httpCapacity = http.bare.cpu / http.route.cpu;
  console.log(
    `| httpEntrypoint + route vs bare node:http handler (JSON in/out) | server CPU µs/request | ${fmt(http.bare.cpu, 1)} | ${fmt(http.route.cpu, 1)} | ${fmt(httpCapacity, 2)}x capacity | >= 0.80x (own goal): ${verdict(httpCapacity >= 0.8)} |`,
  );
  console.log(
    `| same | req/s (wall) | ${fmt(http.bare.rps)} | ${fmt(http.route.rps)} | ${fmt(http.route.rps / http.bare.rps, 2)}x | (information) |`,
  );
}
if (jobs?.error) {
  console.log(
    `| bullmqEntrypoint + route vs raw BullMQ Worker | jobs/s | — | — | not measured: ${jobs.error} | — |`,
  );
  console.log(`\nBullMQ rows skipped: ${jobs.error}.`);
} else if (jobs) {
  const capacity = jobs.raw.cpu / jobs.route.cpu;
  console.log(
    `| bullmqEntrypoint + route vs raw BullMQ Worker | worker CPU µs/job | ${fmt(jobs.raw.cpu, 1)} | ${fmt(jobs.route.cpu, 1)} | ${fmt(capacity, 2)}x capacity | >= 0.80x (own goal): ${verdict(capacity >= 0.8)} |`,
  );
  console.log(
    `| same | jobs/s (wall) | ${fmt(jobs.raw.jobsPerSec)} | ${fmt(jobs.route.jobsPerSec)} | ${fmt(jobs.route.jobsPerSec / jobs.raw.jobsPerSec, 2)}x | (information) |`,
  );
}
if (redis.note) console.log(`\nBullMQ against ${redis.note}.`);
process.exit(0); // nothing may keep the bench alive (a Redis client retrying, a stray handle)
