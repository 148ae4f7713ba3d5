import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
// The gateway is an application, not a library: its package has no exports, and its bundled
// dist/cli.js runs the CLI on import. The parser is reached through its source (the CLI itself is
// checked below on a few files).
import { parseConfig } from '../../../apps/gateway/src/config.js';
import { ConfigError } from '../../../apps/gateway/src/configError.js';
import { BAD_INPUT_TIMEOUT_MS, BadInputTally, recordHeapGrowth } from '../src/badInputTally.js';
import { recordFigure } from '../src/figures.js';
import { heapAfterGc, heapGrowthMbSince } from '../src/heap.js';
import { mutatedString } from '../src/mutate.js';
import { sized } from '../src/profile.js';
import { YAML_ALIAS_BOMB, YAML_TRAPS } from '../src/yamlTraps.js';

// Bad input for the gateway's YAML configuration (parseConfig): only a GatewayConfig or a
// ConfigError (code INVALID_CONFIG) naming at least one field; the CLI exits 2 on such files.

const RUNS = sized({ quick: 10_000, long: 100_000 });
const CLI_RUNS = sized({ quick: 2, long: 30 });
const APP_DIR = dirname(createRequire(import.meta.url).resolve('@x/gateway/package.json'));
const CLI = join(APP_DIR, 'dist', 'cli.js');
const BACKENDS_DIR = join(APP_DIR, 'dist', 'backends');
const DEFAULT_TEXT = readFileSync(join(APP_DIR, 'gateway.config.yaml'), 'utf8');
const FILE = '/etc/x/gateway.config.yaml';
const SECTIONS = new Set(DEFAULT_TEXT.match(/^[a-z]+(?=:)/gm));

/** A ConfigError with at least one issue is the gateway's typed configuration error. */
function configErrorCode(error: unknown): string | undefined {
  return error instanceof ConfigError && error.code === 'INVALID_CONFIG' && error.issues.length > 0
    ? error.code
    : undefined;
}

/**
 * The smallest valid configuration (required sections, every other one defaulted): YAML parsing
 * is most of a case's cost, so most mutations start from it rather than the commented default.
 */
const MINIMAL_TEXT = `modules:
  catalog:
    versions:
      v1:
        backend:
          script: catalog
        instances: 2
  reports:
    versions:
      v1:
        backend:
          script: reports
          protocol: zmq
dispatch:
  - url: '*/catalog/*'
    module: catalog
splits:
  - module: catalog
    weights:
      v1: 1
shards:
  module: catalog
  version: v1
  count: 2
  replicas: 1
workers:
  reports:
    module: reports
    version: v1
server:
  port: 8080
`;
const validText = fc.oneof(
  { arbitrary: fc.constant(DEFAULT_TEXT), weight: 1 },
  { arbitrary: fc.constant(MINIMAL_TEXT), weight: 3 },
);
/** Indexes of the lines of `text` that hold a field (`key: value`, or `key:` opening a section). */
function fieldLines(text: string): number[] {
  return text.split('\n').flatMap((line, i) => (/^\s*-?\s*[A-Za-z0-9_]+:/.test(line) ? [i] : []));
}
const FIELD_LINES = new Map([DEFAULT_TEXT, MINIMAL_TEXT].map(text => [text, fieldLines(text)]));

const value = fc.oneof(
  fc.constantFrom(0, -1, 1.5, 64, 65, 65_536, 1e21, Number.NaN, Infinity, '', 'x', 'v1', 'v9'),
  fc.constantFrom('catalog', 'reports', 'tcp://127.0.0.1:1', 'http://x', '../x', 'zmq', null, true),
  fc.constantFrom([], {}, ['http://a:1'], { script: 'catalog' }, { v1: 0, v2: 0 }),
  fc.string({ maxLength: 12 }),
  fc.anything({ maxDepth: 2 }),
);
const fieldEdit = fc.record({
  line: fc.nat(),
  action: fc.constantFrom('set', 'set', 'delete', 'add'),
  key: fc.oneof(
    fc.constantFrom('extra', '__proto__', 'instnaces', 'constructor', 'instances', 'module'),
    fc.string({ maxLength: 8 }),
  ),
  value: value.map(v => (v === undefined ? '' : (JSON.stringify(v) ?? ''))),
});
/**
 * A valid file with one to four fields given another value (rendered as JSON, which YAML
 * reads as a flow value), removed, or joined by a sibling field: wrong types, out-of-range
 * numbers, unknown keys and missing sections, through the same text the operator edits.
 */
const fieldsMutated = fc
  .tuple(validText, fc.array(fieldEdit, { minLength: 1, maxLength: 4 }))
  .map(([text, edits]) => {
    const lines = text.split('\n');
    const fields = FIELD_LINES.get(text)!;
    for (const { line: n, action, key, value: v } of edits) {
      const line = fields[n % fields.length]!;
      const current = lines[line] ?? '';
      const [, indent = '', name = ''] = /^(\s*-?\s*)([A-Za-z0-9_]+):/.exec(current) ?? [];
      if (action === 'delete') lines[line] = '';
      else if (action === 'set') lines[line] = `${indent}${name}: ${v}`;
      else lines[line] = `${current}\n${indent.replace('-', ' ')}${key}: ${v}`;
    }
    return lines.join('\n');
  });
const CONFIG_TRAPS = [
  ...YAML_TRAPS,
  'catalog',
  'v1',
  'instances: ',
  'script: ',
  'module: ',
  '99999',
  'tcp://',
  '../',
];
const configText = fc.oneof(
  { arbitrary: fieldsMutated, weight: 4 },
  { arbitrary: mutatedString(validText, CONFIG_TRAPS), weight: 4 },
  {
    arbitrary: fc.constantFrom(
      DEFAULT_TEXT,
      MINIMAL_TEXT,
      YAML_ALIAS_BOMB,
      'server: &s {host: *s}\n',
      '',
    ),
    weight: 1,
  },
  { arbitrary: fc.string({ maxLength: 200 }), weight: 1 },
);

describe('bad input: gateway configuration', { timeout: BAD_INPUT_TIMEOUT_MS }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'x-reliability-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(`parseConfig: ${RUNS} files give a configuration or a ConfigError naming the bad fields`, async () => {
    const tally = new BadInputTally('gateway config: parseConfig', configErrorCode);
    const sections = new Map<string, number>();
    for (const text of [DEFAULT_TEXT, MINIMAL_TEXT])
      parseConfig(text, { file: FILE, backendsDir: BACKENDS_DIR });
    const heapBefore = await heapAfterGc();
    fc.assert(
      fc.property(configText, text => {
        const parse = () => parseConfig(text, { file: FILE, backendsDir: BACKENDS_DIR });
        const start = performance.now();
        try {
          const config = parse();
          tally.count('ok', performance.now() - start, parse);
          expect(Object.keys(config.modules).length).toBeGreaterThan(0);
        } catch (error) {
          tally.count(tally.codeOf(error), performance.now() - start, parse);
          for (const issue of (error as ConfigError).issues) {
            const top = issue.path.split(/[.[]/)[0] ?? '';
            const section = /^line \d+/.test(issue.path)
              ? 'YAML syntax'
              : top === ''
                ? '(root)'
                : SECTIONS.has(top)
                  ? top
                  : '(unknown key)';
            sections.set(section, (sections.get(section) ?? 0) + 1);
          }
        }
      }),
      { numRuns: RUNS },
    );
    const growthMb = await heapGrowthMbSince(heapBefore);
    tally.record(RUNS);
    recordFigure({
      section: 'bad input',
      name: 'gateway config: issues by section',
      value: [...sections]
        .sort((a, b) => b[1] - a[1])
        .map(([s, n]) => `${s} ${n}`)
        .join(' · '),
    });
    recordHeapGrowth('gateway config:', growthMb);
    expect(tally.cases).toBeGreaterThanOrEqual(RUNS);
    expect(tally.outcomes.get('ok')).toBeGreaterThan(0); // the default file (and harmless edits) pass
    expect(tally.outcomes.get('INVALID_CONFIG')).toBeGreaterThan(RUNS / 2);
    expect(await tally.slowestReplayedMs()).toBeLessThan(500);
    expect(growthMb).toBeLessThan(20);
  });

  it(`the CLI exits 2 naming the field for an alias bomb and ${CLI_RUNS} other bad files`, () => {
    const samples = fc.sample(
      configText.filter(text => {
        try {
          parseConfig(text, { file: FILE, backendsDir: BACKENDS_DIR });
          return false;
        } catch {
          return true;
        }
      }),
      { numRuns: CLI_RUNS },
    );
    for (const [i, text] of [YAML_ALIAS_BOMB, ...samples].entries()) {
      const file = join(dir, `bad-${i}.yaml`);
      writeFileSync(file, text);
      const run = spawnSync(process.execPath, [CLI, '--config', file, '--port', '0'], {
        encoding: 'utf8',
        timeout: 15_000,
      });
      expect(run.status, run.stderr).toBe(2);
      expect(run.stderr).toContain(`invalid configuration in ${file}`);
    }
  });
});
