// Per-call overhead of the default faultTolerant stack against a bare call, cockatiel
// wrap(retry, circuitBreaker) with and without its timeout and opossum fire(); the same call
// traced (an OpenTelemetry BasicTracerProvider with an always-on sampler and a no-op exporter, or
// a diagnostics_channel subscriber) against untraced; fast-fail throughput with an open circuit
// against its floors (an async function rejecting with a new Error, caught; down to one shared
// rejected promise, caught, which is what faultTolerant returns). Each case runs in its
// own child process (no JIT cross-talk);
// rounds interleave the cases, and the table shows the median and the min–max over rounds.
// Usage: pnpm bench   (builds first)
//   node bench/overhead.mjs [--rounds 7] [--calls 300000] [--cases bare,faultTolerant,...] [--clock cpu|wall]
//     [--baseline path/to/other/dist/index.js]   (adds that build's faultTolerant rows, A/B)
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const CALLS = Number(option('calls', 300_000));
const ROUNDS = Number(option('rounds', 7));
const ONLY = option('cases', undefined)?.split(',');
// 'cpu': CPU time of the benchmark process per call (robust on a shared machine: time spent
// descheduled does not count); 'wall': elapsed time.
const CLOCK = option('clock', 'cpu');
// --baseline <dist/index.js of another build>: adds its faultTolerant rows (A/B in the same run)
const BASELINE = option('baseline', undefined);
const dist = () => import(process.env.BENCH_DIST ?? '../dist/index.js');

const cases = {
  async bare() {
    const fn = async () => 42;
    return { run: fn };
  },
  async faultTolerant() {
    const { faultTolerant } = await dist();
    const ft = faultTolerant(async () => 42, { dependencyId: 'bench' });
    return { run: ft, close: () => ft.close() };
  },
  async 'faultTolerant traced: OpenTelemetry'() {
    const { noopTracing } = await import('@x/testkit');
    const tracing = await noopTracing();
    tracing.on();
    const { faultTolerant } = await dist();
    const ft = faultTolerant(async () => 42, { dependencyId: 'bench' });
    return { run: ft, close: () => Promise.all([ft.close(), tracing.shutdown()]) };
  },
  async 'faultTolerant traced: diagnostics_channel'() {
    const { tracingChannel } = await import('node:diagnostics_channel');
    let messages = 0;
    const count = () => void messages++;
    const handlers = { start: count, end: count, asyncStart: count, asyncEnd: count, error: count };
    tracingChannel('x:resilience:faultTolerant').subscribe(handlers);
    tracingChannel('x:resilience:attempt').subscribe(handlers);
    const { faultTolerant } = await dist();
    const ft = faultTolerant(async () => 42, { dependencyId: 'bench' });
    return { run: ft, close: () => ft.close() };
  },
  async 'success floor'() {
    // what any call with a deadline and a measured latency costs at least: its own promise (the
    // deadline must be able to settle it first), settled from then() on the function's promise,
    // and two clock reads (start and end). faultTolerant's overhead cannot go below this one's.
    const fn = async () => 42;
    const captured = { resolve: undefined, reject: undefined };
    const capture = (resolve, reject) => {
      captured.resolve = resolve;
      captured.reject = reject;
    };
    const sink = { spent: 0 }; // keeps the clock reads' result alive
    class Floor {
      start() {
        const promise = new Promise(capture);
        this.resolve = captured.resolve;
        this.reject = captured.reject;
        this.startedAt = performance.now();
        fn().then(
          value => this.done(value),
          error => this.reject(error),
        );
        return promise;
      }
      done(value) {
        sink.spent += performance.now() - this.startedAt;
        this.resolve(value);
      }
    }
    return { run: () => new Floor().start() };
  },
  async 'faultTolerant without tracing check'() {
    // DESIGN: "with tracing available but no tracer registered, within 2 % of the same figure
    // without tracing code". The tracing code's only cost on an untraced call is the check
    // `Tracer.enabled`; replaced by a constant false, V8 inlines it away.
    const { faultTolerant, Tracer } = await dist();
    Object.defineProperty(Tracer.prototype, 'enabled', { get: () => false });
    const ft = faultTolerant(async () => 42, { dependencyId: 'bench' });
    return { run: ft, close: () => ft.close() };
  },
  async 'tracing check'() {
    // the check alone, per call, with @opentelemetry/api loadable and no tracer provider
    const { Tracer } = await dist();
    const tracer = new Tracer('bench', 'x:bench:check');
    const sink = { on: 0 }; // keeps the check's result alive
    return {
      sync: true,
      run: () => {
        if (tracer.enabled) sink.on++;
      },
    };
  },
  async cockatiel() {
    const c = await import('cockatiel');
    const policy = c.wrap(
      c.retry(c.handleAll, { maxAttempts: 3 }),
      c.circuitBreaker(c.handleAll, {
        halfOpenAfter: 10_000,
        breaker: new c.ConsecutiveBreaker(5),
      }),
      c.timeout(5_000, c.TimeoutStrategy.Cooperative),
    );
    const fn = async () => 42;
    return { run: () => policy.execute(fn) };
  },
  async 'cockatiel without timeout'() {
    const c = await import('cockatiel');
    const policy = c.wrap(
      c.retry(c.handleAll, { maxAttempts: 3 }),
      c.circuitBreaker(c.handleAll, {
        halfOpenAfter: 10_000,
        breaker: new c.ConsecutiveBreaker(5),
      }),
    );
    const fn = async () => 42;
    return { run: () => policy.execute(fn) };
  },
  async opossum() {
    const { default: CircuitBreaker } = await import('opossum');
    const breaker = new CircuitBreaker(async () => 42, { timeout: 5_000, resetTimeout: 10_000 });
    return { run: () => breaker.fire(), close: () => breaker.shutdown() };
  },
  async 'faultTolerant open circuit'() {
    const { faultTolerant } = await dist();
    const ft = faultTolerant(async () => 42, { dependencyId: 'bench' });
    await ft();
    ft.breakers.peek('bench').isolate();
    return { run: () => ft().catch(() => 0), close: () => ft.close() };
  },
  async 'open circuit floor'() {
    // what any fast failure costs at least: an async function rejecting with a new Error, caught
    const fn = async () => {
      throw new Error('circuit open');
    };
    return { run: () => fn().catch(() => 0) };
  },
  async 'open circuit floor (cached error)'() {
    // the promise machinery alone: the same with one error made up front (no stack per call)
    const error = new Error('circuit open');
    const fn = async () => {
      throw error;
    };
    return { run: () => fn().catch(() => 0) };
  },
  async 'open circuit floor (then of a rejected promise)'() {
    // the cheapest fresh promise per call: one derived from one rejected, handled promise
    const rejected = Promise.reject(new Error('circuit open'));
    rejected.catch(() => {});
    return { run: () => rejected.then().catch(() => 0) };
  },
  async 'open circuit floor (one shared rejected promise)'() {
    // the technique faultTolerant uses: every call gets one rejected, handled promise
    const rejected = Promise.reject(new Error('circuit open'));
    rejected.catch(() => {});
    return { run: () => rejected.catch(() => 0) };
  },
  async 'cockatiel open circuit'() {
    const c = await import('cockatiel');
    const breaker = c.circuitBreaker(c.handleAll, {
      halfOpenAfter: 10_000,
      breaker: new c.ConsecutiveBreaker(5),
    });
    breaker.isolate();
    const fn = async () => 42;
    return { run: () => breaker.execute(fn).catch(() => 0) };
  },
  async 'opossum open circuit'() {
    const { default: CircuitBreaker } = await import('opossum');
    const breaker = new CircuitBreaker(async () => 42, { timeout: 5_000, resetTimeout: 10_000 });
    breaker.open();
    return { run: () => breaker.fire().catch(() => 0), close: () => breaker.shutdown() };
  },
};

if (BASELINE || process.env.BENCH_DIST) {
  cases['faultTolerant (baseline)'] = cases.faultTolerant;
  cases['faultTolerant open circuit (baseline)'] = cases['faultTolerant open circuit'];
}

async function measure(name) {
  const { run, close, sync } = await cases[name]();
  const loop = sync
    ? async n => {
        for (let i = 0; i < n; i++) run();
      }
    : async n => {
        for (let i = 0; i < n; i++) await run();
      };
  await loop(Math.min(CALLS, 100_000)); // warm up
  const samples = [];
  for (let r = 0; r < 3; r++) {
    const start = process.hrtime.bigint();
    const cpu = process.cpuUsage();
    await loop(CALLS);
    const used = process.cpuUsage(cpu);
    samples.push(
      CLOCK === 'cpu'
        ? ((used.user + used.system) * 1000) / CALLS
        : Number(process.hrtime.bigint() - start) / CALLS,
    );
  }
  await close?.();
  samples.sort((a, b) => a - b);
  return samples[1];
}

if (args[0] === '--case') {
  const ns = await measure(args[1]);
  process.stdout.write(JSON.stringify({ ns }));
  process.exit(0);
}

const self = fileURLToPath(import.meta.url);
const names = Object.keys(cases).filter(name => !ONLY || name === 'bare' || ONLY.includes(name));
const results = {};
for (let round = 0; round < ROUNDS; round++) {
  for (const name of names) {
    const out = spawnSync(
      process.execPath,
      [self, '--case', name, '--calls', String(CALLS), '--clock', CLOCK],
      {
        encoding: 'utf8',
        env:
          BASELINE && name.endsWith('(baseline)')
            ? { ...process.env, BENCH_DIST: pathToFileURL(resolve(BASELINE)).href }
            : process.env,
      },
    );
    if (out.status !== 0) throw new Error(`${name} failed: ${out.stderr}`);
    (results[name] ??= []).push(JSON.parse(out.stdout).ns);
  }
}
const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ns = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]));
const fmt = (x, d = 0) =>
  x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

console.log(
  `@x/resilience overhead — Node ${process.version}, ${CALLS.toLocaleString('en-US')} sequential awaited calls x ${ROUNDS} interleaved rounds, ${CLOCK === 'cpu' ? 'CPU' : 'wall-clock'} time (median, min–max over rounds)\n`,
);
console.log('| case | ns/call | min–max | overhead over bare (ns) | calls/s | ratio |');
console.log('|---|---:|---:|---:|---:|---|');
const ours = ns.faultTolerant - ns.bare;
const has = name => ns[name] !== undefined;
const row = (name, ratio = '') => {
  if (!has(name)) return;
  const xs = results[name];
  console.log(
    `| ${name} | ${fmt(ns[name])} | ${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))} | ${fmt(ns[name] - ns.bare)} | ${fmt(1e9 / ns[name])} | ${ratio} |`,
  );
};
const less = peer =>
  has(peer) && has('faultTolerant')
    ? `faultTolerant has ${fmt((ns[peer] - ns.bare) / ours, 1)}x less overhead`
    : '';
const faster = peer =>
  has(peer) && has('faultTolerant open circuit')
    ? `faultTolerant is ${fmt(ns[peer] / ns['faultTolerant open circuit'], 1)}x faster`
    : '';
const traced = name =>
  has(name) && has('faultTolerant')
    ? `${fmt(ns[name] / ns.faultTolerant, 2)}x untraced faultTolerant`
    : '';
const FLOORS = [
  'open circuit floor',
  'open circuit floor (cached error)',
  'open circuit floor (then of a rejected promise)',
  'open circuit floor (one shared rejected promise)',
];
const floor = name =>
  FLOORS.filter(has)
    .map(f => `${fmt(ns[name] / ns[f], 2)}x ${f.replace('open circuit ', '')}`)
    .join(', ');
row('bare');
row('faultTolerant', 'defaults: timeout 5 s, 3 retries, breaker and limit per netloc; no tracer');
row('faultTolerant traced: OpenTelemetry', traced('faultTolerant traced: OpenTelemetry'));
row(
  'faultTolerant traced: diagnostics_channel',
  traced('faultTolerant traced: diagnostics_channel'),
);
row(
  'faultTolerant (baseline)',
  has('faultTolerant (baseline)') && has('faultTolerant')
    ? `--baseline build: its overhead / this build's = ${fmt((ns['faultTolerant (baseline)'] - ns.bare) / ours, 2)}`
    : '',
);
row(
  'faultTolerant without tracing check',
  has('faultTolerant without tracing check') && has('faultTolerant')
    ? `faultTolerant with the check (tracing available, no tracer): ${fmt((100 * (ns.faultTolerant - ns['faultTolerant without tracing check'])) / ns['faultTolerant without tracing check'], 1)} %, within this A/B's noise (see min–max); the check itself is the next row`
    : '',
);
if (has('tracing check')) {
  const xs = results['tracing check'];
  console.log(
    `| tracing check (Tracer.enabled, no tracer registered) | ${fmt(ns['tracing check'], 1)} | ${fmt(Math.min(...xs), 1)}–${fmt(Math.max(...xs), 1)} | | | ${has('faultTolerant') ? `${fmt((100 * ns['tracing check']) / ns.faultTolerant, 2)} % of a faultTolerant call` : ''} (a plain loop, not awaited) |`,
  );
}
row(
  'success floor',
  has('success floor') && has('faultTolerant')
    ? `own promise settled from then() of the function's promise, two clock reads: faultTolerant's overhead cannot go below ${fmt(ns['success floor'] - ns.bare)} ns`
    : '',
);
row('cockatiel', less('cockatiel'));
row('cockatiel without timeout', less('cockatiel without timeout'));
row('opossum', less('opossum'));
row('open circuit floor', 'async function rejecting with a new Error, caught');
row('open circuit floor (cached error)', 'the same, rejecting with one error made up front');
row(
  'open circuit floor (then of a rejected promise)',
  'then() of one rejected, handled promise, caught',
);
row('open circuit floor (one shared rejected promise)', 'one rejected, handled promise, caught');
row(
  'faultTolerant open circuit',
  has('faultTolerant open circuit') ? floor('faultTolerant open circuit') : '',
);
row(
  'faultTolerant open circuit (baseline)',
  has('faultTolerant open circuit (baseline)') && has('faultTolerant open circuit')
    ? `--baseline build: its ns / this build's = ${fmt(ns['faultTolerant open circuit (baseline)'] / ns['faultTolerant open circuit'], 2)}`
    : '',
);
row('cockatiel open circuit', faster('cockatiel open circuit'));
row('opossum open circuit', faster('opossum open circuit'));
const verdict = ok => (ok ? 'met' : 'MISSED');
const targets = [];
if (has('faultTolerant')) {
  targets.push(
    `overhead <= 250 ns: ${verdict(ours <= 250)} (${fmt(ours)} ns${has('success floor') ? `; floor ${fmt(ns['success floor'] - ns.bare)} ns` : ''})`,
  );
  if (has('tracing check'))
    targets.push(
      `tracing available, no tracer, within 2 % of no tracing code: ${verdict(ns['tracing check'] <= 0.02 * ns.faultTolerant)} (the check is ${fmt((100 * ns['tracing check']) / ns.faultTolerant, 2)} % of a call)`,
    );
  if (has('cockatiel without timeout'))
    targets.push(
      `ahead of cockatiel wrap(retry, breaker) without timeout: ${verdict(ns.faultTolerant < ns['cockatiel without timeout'])}`,
    );
  if (has('opossum'))
    targets.push(`faster than opossum: ${verdict(ns.faultTolerant < ns.opossum)}`);
}
if (has('faultTolerant open circuit')) {
  const rate = 1e9 / ns['faultTolerant open circuit'];
  targets.push(`open circuit >= 5M calls/s: ${verdict(rate >= 5e6)} (${fmt(rate / 1e6, 2)}M)`);
  for (const name of FLOORS)
    if (has(name)) targets.push(`${name}: ${fmt(1e9 / ns[name] / 1e6, 2)}M calls/s`);
}
console.log(`\ntargets (DESIGN.md §5): ${targets.join('; ')}`);
