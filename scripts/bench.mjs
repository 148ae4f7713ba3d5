#!/usr/bin/env node
// `pnpm bench`: runs every package's benchmark one after the other (never two at once: the
// machine is shared and the figures are ratios measured side by side inside each run), then writes
// docs/BENCHMARKS.md: the machine and its load at the time, and each package's tables as its
// benchmark printed them (absolute figures, ratios against peers and the floor from the same run).
//
//   node scripts/bench.mjs [--quick] [--only resilience,rest-client] [--out docs/BENCHMARKS.md]
//
// nginx and wrk (Debian) serve the dispatcher's benchmark: they are installed when missing and the
// script runs as root; without them that benchmark measures what it can and says so.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const flag = name => argv.includes(`--${name}`);
const option = name => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const quick = flag('quick');
const out = resolve(root, option('out') ?? 'docs/BENCHMARKS.md');

/** Each package's benchmark: its folder, the command and the arguments of a quick run. */
const benches = [
  { pkg: 'resilience', file: 'bench/overhead.mjs', quick: ['--rounds', '3', '--calls', '100000'] },
  {
    pkg: 'rest-client',
    file: 'bench/throughput.mjs',
    quick: ['--duration', '1500', '--rounds', '3'],
  },
  { pkg: 'rest-client', file: 'bench/cover.mjs', quick: ['--rounds', '5', '--ms', '100'] },
  { pkg: 'worker-rpc', file: 'bench/echo.mjs', quick: ['--duration', '1000', '--warmup', '300'] },
  { pkg: 'routes', file: 'bench/overhead.mjs', quick: ['--quick'] },
  { pkg: 'dispatcher', file: 'bench/proxy.mjs', quick: ['--quick'] },
];
const only = option('only')?.split(',');

const sh = cmd => spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
const has = name => sh(`command -v ${name}`).status === 0;

function ensureSystemTools() {
  const missing = ['nginx', 'wrk'].filter(t => !has(t) && !existsSync(`/usr/sbin/${t}`));
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    console.warn(`bench: ${missing.join(', ')} missing and not root: their rows are skipped`);
    return;
  }
  console.log(`bench: installing ${missing.join(', ')} (Debian)`);
  const r = sh(
    `(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing.join(' ')}) >/dev/null 2>&1`,
  );
  if (r.status !== 0) console.warn(`bench: could not install ${missing.join(', ')}`);
}

function machine() {
  const cpus = os.cpus();
  const [l1, l5, l15] = os.loadavg().map(x => x.toFixed(2));
  return [
    `- Date: ${new Date().toISOString()}`,
    `- Node ${process.version} on ${os.type()} ${os.release()} (${os.arch()})`,
    `- CPU: ${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown'}; memory ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `- Load average (1/5/15 min) at the start: ${l1} / ${l5} / ${l15}`,
  ].join('\n');
}

ensureSystemTools();
if (!flag('no-build')) {
  const build = spawnSync('pnpm', ['build'], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}

const header = machine();
const sections = [];
let failed = 0;
for (const bench of benches) {
  if (only && !only.includes(bench.pkg)) continue;
  const cwd = join(root, 'packages', bench.pkg);
  if (!existsSync(join(cwd, bench.file))) continue;
  const args = [bench.file, ...(quick ? bench.quick : [])];
  console.log(`\n=== @x/${bench.pkg}: node ${args.join(' ')}`);
  const started = Date.now();
  const load = os.loadavg()[0].toFixed(2);
  const run = spawnSync(process.execPath, args, {
    cwd,
    encoding: 'utf8',
    maxBuffer: 64 * 2 ** 20,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  process.stdout.write(run.stdout ?? '');
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  if (run.status !== 0) {
    failed++;
    sections.push(
      `## @x/${bench.pkg} (${bench.file})\n\nFailed (exit ${run.status}); see the console.`,
    );
    continue;
  }
  sections.push(
    `## @x/${bench.pkg} (${bench.file})\n\n` +
      `\`node ${args.join(' ')}\` in \`packages/${bench.pkg}\`, ${seconds} s, 1-minute load ${load} at its start.\n\n` +
      run.stdout.trim(),
  );
}

// with --only, the other packages' sections of the last full run are kept
const kept = new Map();
if (only && existsSync(out))
  for (const part of readFileSync(out, 'utf8')
    .split(/\n(?=## @x\/)/)
    .slice(1))
    kept.set(part.split('\n', 1)[0], part.trim());
for (const s of sections) kept.set(s.split('\n', 1)[0], s);
const text = [
  '# Benchmarks',
  '',
  'Written by `pnpm bench` (`scripts/bench.mjs`); do not edit by hand. Each package runs its',
  'benchmark alone, with its peers and the floor (raw undici, raw zeromq, nginx) side by side in the',
  'same run, in interleaved rounds; ratios come from the same run. Targets are in DESIGN.md §5.',
  quick ? '\nThis was a quick run (`--quick`): shorter rounds, wider spread.' : '',
  '',
  '## Machine',
  '',
  header,
  '',
  ...[...kept.values()].flatMap(s => [s, '']),
].join('\n');
writeFileSync(out, text);
console.log(`\nbench: wrote ${out}`);
process.exit(failed ? 1 : 0);
