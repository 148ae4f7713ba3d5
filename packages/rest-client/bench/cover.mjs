// Multicast planning of @x/rest-client: `Shards.cover` (what `multicast` asks before sending)
// against a plain greedy cover written the obvious way, and `new Shards()` construction, in one
// run. No network: the hosts are never contacted (undici pools connect lazily).
//
//   pnpm build && flock /tmp/bench.lock node bench/cover.mjs [--rounds 9] [--ms 200]
//        [--sizes 100x1000,1000x10000] [--replication 3] [--subset 53] [--exact]
//        [--before path/to/another/build/index.js]
//
// Placement: every key on `replication` distinct hosts drawn at random (seeded). For each size the
// cases run in `rounds` interleaved slices of about `ms` ms each; reported are the median and the
// min–max over the slices of the CPU time per call (see `slice`), the wall time, the ratio of the
// medians against the plain greedy cover, and the cover sizes (hosts asked). `--exact` adds the opt-in exact search
// (`cover: 'exact'`, bounded by `coverMaxMs`, 20 ms by default). `--before` adds the rows of
// another build of the package (e.g. the previous release's `dist/index.js`) to the same run.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Resources, Shards } from '../dist/index.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '9' },
    ms: { type: 'string', default: '200' },
    sizes: { type: 'string', default: '100x1000,1000x10000' },
    replication: { type: 'string', default: '3' },
    subset: { type: 'string', default: '53' },
    exact: { type: 'boolean', default: false },
    before: { type: 'string' },
  },
});
const Before = args.before
  ? (await import(pathToFileURL(resolve(args.before)).href)).Shards
  : undefined;
const ROUNDS = Number(args.rounds);
const SLICE_MS = Number(args.ms);
const REPLICATION = Number(args.replication);
const SUBSET = Number(args.subset);
const sizes = args.sizes.split(',').map(s => s.split('x').map(Number));

function prng(seed) {
  let state = seed >>> 0;
  return () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296;
}

/** `{ host: keys }` with every key on REPLICATION distinct random hosts. */
function placementOf(hostCount, keyCount, random) {
  const hosts = Array.from(
    { length: hostCount },
    (_, i) => `http://10.${(i >> 8) & 255}.${i & 255}.1:9200`,
  );
  const multimap = Object.fromEntries(hosts.map(h => [h, []]));
  const replicas = new Map();
  for (let key = 0; key < keyCount; key++) {
    const set = new Set();
    while (set.size < Math.min(REPLICATION, hostCount))
      set.add(hosts[Math.floor(random() * hostCount)]);
    replicas.set(key, [...set]);
    for (const host of set) multimap[host].push(key);
  }
  return { hosts, multimap, replicas };
}

/**
 * The baseline: a plain greedy cover (most uncovered keys first, first host on ties), with the
 * placement indexed once beforehand (as `Shards` does at construction), gains kept per host and
 * decremented as keys get covered. Same input and output as `Shards.cover`: keys in, hosts and a
 * key → host Map out.
 */
function plainGreedyOf(placement) {
  const hostIndex = new Map(placement.hosts.map((h, i) => [h, i]));
  const keyIndex = new Map();
  const replicas = [];
  for (const [key, hosts] of placement.replicas) {
    keyIndex.set(key, replicas.length);
    replicas.push(hosts.map(h => hostIndex.get(h)));
  }
  const hostCount = placement.hosts.length;
  return keys => {
    const unique = [...new Set(keys)];
    const ks = unique.map(k => keyIndex.get(k));
    const gain = new Int32Array(hostCount);
    const hostKeys = Array.from({ length: hostCount }, () => []);
    ks.forEach((k, i) => replicas[k].forEach(h => (gain[h]++, hostKeys[h].push(i))));
    const owner = new Int32Array(ks.length).fill(-1);
    const chosen = [];
    for (let left = ks.length; left > 0;) {
      let best = 0;
      for (let h = 1; h < hostCount; h++) if (gain[h] > gain[best]) best = h;
      chosen.push(placement.hosts[best]);
      for (const i of hostKeys[best]) {
        if (owner[i] >= 0) continue;
        owner[i] = best;
        left--;
        for (const h of replicas[ks[i]]) gain[h]--;
      }
    }
    const assignment = new Map();
    unique.forEach((key, i) => assignment.set(key, placement.hosts[owner[i]]));
    return { hosts: chosen, assignment };
  };
}

const median = values => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const fmtMs = ms => (ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3));

/**
 * Runs `fn` for about `ms` ms (at least once); returns the CPU time (user + system, so GC threads
 * count) and the wall time per call in ms, and the last result. CPU time is the figure: it is what
 * a call takes from the event loop, and other processes on a shared machine move it less.
 */
function slice(fn, ms) {
  let calls = 0;
  let result;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const stop = started + ms;
  do {
    result = fn();
    calls++;
  } while (performance.now() < stop);
  const wall = (performance.now() - started) / calls;
  const used = process.cpuUsage(cpu);
  return { perCall: (used.user + used.system) / 1000 / calls, wall, result };
}

const rows = [];
const construction = [];
for (const [hostCount, keyCount] of sizes) {
  const placement = placementOf(hostCount, keyCount, prng(hostCount * 7919 + keyCount));
  const allKeys = [...placement.replicas.keys()];
  const subsetKeys = allKeys.filter((_, i) => i % Math.ceil(keyCount / SUBSET) === 0);
  const greedy = plainGreedyOf(placement);
  const shards = new Shards(placement.multimap, { health: false });
  const exactShards = args.exact
    ? new Shards(placement.multimap, { health: false, cover: 'exact' })
    : undefined;
  const beforeShards = Before ? new Before(placement.multimap, { health: false }) : undefined;
  const label = `${hostCount} hosts × ${keyCount.toLocaleString('en-US')} keys`;
  const keySets = [
    [`all ${keyCount.toLocaleString('en-US')} keys`, allKeys],
    [`${subsetKeys.length} keys`, subsetKeys],
  ];
  for (const [keysLabel, keys] of keySets) {
    const cases = [
      ['plain greedy (baseline)', () => greedy(keys)],
      ['Shards.cover (default)', () => shards.cover(keys)],
      ...(exactShards ? [["Shards.cover, cover: 'exact'", () => exactShards.cover(keys)]] : []),
      ...(beforeShards
        ? [['Shards.cover, before (--before build)', () => beforeShards.cover(keys)]]
        : []),
    ];
    const times = cases.map(() => []);
    const walls = cases.map(() => []);
    const coverSizes = cases.map(() => []);
    for (const [, fn] of cases) slice(fn, Math.min(SLICE_MS, 50)); // warm-up (JIT)
    for (let round = 0; round < ROUNDS; round++) {
      cases.forEach(([, fn], c) => {
        const { perCall, wall, result } = slice(fn, SLICE_MS);
        times[c].push(perCall);
        walls[c].push(wall);
        coverSizes[c].push(result.hosts.length);
      });
    }
    const base = median(times[0]);
    cases.forEach(([name], c) => {
      rows.push({
        size: label,
        keys: keysLabel,
        name,
        median: median(times[c]),
        min: Math.min(...times[c]),
        max: Math.max(...times[c]),
        wall: median(walls[c]),
        ratio: median(times[c]) / base,
        coverMedian: median(coverSizes[c]),
        coverMin: Math.min(...coverSizes[c]),
        coverMax: Math.max(...coverSizes[c]),
      });
    });
  }
  await Promise.all([shards.close(), exactShards?.close(), beforeShards?.close()]);

  // Construction, interleaved, fewer rounds (the old code took most of a second at 1 000 hosts).
  // `new Resources(hosts)` alone is the part that is not the placement: one undici Pool per host.
  const builders = [
    ['new Shards(placement)', () => new Shards(placement.multimap, { health: false })],
    ['new Resources(hosts) alone', () => new Resources(placement.hosts, { health: false })],
    ...(Before
      ? [['new Shards(placement), before', () => new Before(placement.multimap, { health: false })]]
      : []),
  ];
  const built = builders.map(() => []);
  for (let round = 0; round < Math.min(ROUNDS, 5); round++) {
    for (const [b, [, make]] of builders.entries()) {
      const cpu = process.cpuUsage();
      const made = make();
      const used = process.cpuUsage(cpu);
      built[b].push((used.user + used.system) / 1000);
      await made.close();
    }
  }
  for (const [b, [name]] of builders.entries())
    construction.push({
      size: label,
      name,
      pairs: keyCount * REPLICATION,
      median: median(built[b]),
      min: Math.min(...built[b]),
      max: Math.max(...built[b]),
    });
}

console.log(
  `\nNode ${process.version}, replication ${REPLICATION}, ${ROUNDS} interleaved rounds of ~${SLICE_MS} ms per case\n`,
);
console.log(
  '| placement | keys asked | case | CPU ms/call (median) | min–max | wall ms/call (median) | CPU vs plain greedy | hosts in cover (median, min–max) |',
);
console.log('|---|---|---|---:|---:|---:|---:|---:|');
for (const r of rows)
  console.log(
    `| ${r.size} | ${r.keys} | ${r.name} | ${fmtMs(r.median)} | ${fmtMs(r.min)}–${fmtMs(r.max)} | ${fmtMs(r.wall)} | ${r.ratio.toFixed(2)}x | ${r.coverMedian} (${r.coverMin}–${r.coverMax}) |`,
  );
console.log('\n| placement | (host, key) pairs | construction | CPU ms (median) | min–max |');
console.log('|---|---:|---|---:|---:|');
for (const c of construction)
  console.log(
    `| ${c.size} | ${c.pairs.toLocaleString('en-US')} | ${c.name} | ${fmtMs(c.median)} | ${fmtMs(c.min)}–${fmtMs(c.max)} |`,
  );

const target = rows.filter(r => r.name === 'Shards.cover (default)');
console.log('\n| target (DESIGN.md §5) | measured | target | |');
console.log('|---|---:|---:|---|');
for (const r of target) {
  const base = rows.find(b => b.size === r.size && b.keys === r.keys && b.name.startsWith('plain'));
  const met = r.ratio <= 1.2 && r.coverMedian <= base.coverMedian;
  console.log(
    `| Shards.cover vs plain greedy, ${r.size}, ${r.keys} | ${r.ratio.toFixed(2)}x, ${r.coverMedian} vs ${base.coverMedian} hosts | <= 1.2x, same or smaller cover | ${met ? 'met' : 'MISSED'} |`,
  );
}
process.exit(0);
