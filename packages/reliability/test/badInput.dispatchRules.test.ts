import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  compileDispatchRules,
  createDispatcher,
  inProcess,
  parseDispatchYaml,
  type DispatchRule,
} from '@x/dispatcher';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  BAD_INPUT_TIMEOUT_MS,
  BadInputTally,
  recordHeapGrowth,
  xErrorCodes,
} from '../src/badInputTally.js';
import { recordFigure } from '../src/figures.js';
import { heapAfterGc, heapGrowthMbSince } from '../src/heap.js';
import { mutatedString } from '../src/mutate.js';
import { sized } from '../src/profile.js';
import { YAML_ALIAS_BOMB, YAML_TRAPS } from '../src/yamlTraps.js';

// Bad input for dispatch rules: rule lists (compileDispatchRules), dispatch.yaml text
// (parseDispatchYaml) and a polled rules file (dispatcher.reloadRules). Only rules or
// INVALID_DISPATCH_RULE, never another error, a hang or leftover memory.

const RUNS = sized({ quick: 10_000, long: 100_000 });
const FILE_RUNS = sized({ quick: 300, long: 3_000 });
const MODULES = ['default', 'api', 'static'];
const typed = xErrorCodes(['INVALID_DISPATCH_RULE']);

const hostPattern = fc.constantFrom(
  '',
  '*',
  '*.example.com',
  'example.com',
  'admin.example.com',
  '*x.org',
  '*.',
  'a-b.c0.io',
);
const pathPattern = fc
  .array(fc.constantFrom('api', 'static', 'a-b', '_x', 'v1', '%20', '~u'), { maxLength: 4 })
  .chain(segments =>
    fc.constantFrom('', '/', '/*', '*').map(end => `/${segments.join('/')}${end}`),
  );
const validRule: fc.Arbitrary<DispatchRule> = fc
  .tuple(hostPattern, pathPattern, fc.constantFrom(...MODULES), fc.boolean())
  .map(([host, path, module, asService]) =>
    asService ? { url: host + path, service: module } : { url: host + path, module },
  );
const URL_TRAPS = ['*', '/', '?', '#', '-dot-', '/_ah/', '1.2.3.4', ':', '..', ' ', 'Ä', '\0'];
const mutatedRule = fc
  .tuple(
    mutatedString(
      validRule.map(rule => rule.url),
      URL_TRAPS,
    ),
    mutatedString(fc.constantFrom(...MODULES), ['-', 'A', '_', '.', '']),
    fc.boolean(),
    fc.option(
      fc.tuple(fc.constantFrom('url', 'module', 'service', 'extra', '__proto__'), fc.anything()),
      { nil: undefined },
    ),
  )
  .map(([url, module, asService, extra]) => {
    const rule: Record<string, unknown> = asService ? { url, service: module } : { url, module };
    // sometimes one more field: unknown, a second target, or a non-string in place of one
    if (extra) {
      const [key, value] = extra;
      Object.defineProperty(rule, key, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return rule;
  });
const ruleList = fc.oneof(
  fc.array(validRule, { maxLength: 8 }),
  fc.array(fc.oneof(validRule, mutatedRule), { maxLength: 8 }),
  fc.array(fc.oneof(mutatedRule, fc.anything()), { maxLength: 5 }),
  fc.anything(),
);

/** Hand-written documents aimed at the YAML layer: aliases (self-referencing too), tags, merges. */
const YAML_SPECIALS = [
  'dispatch: &r\n  - url: "*/x"\n    module: *r\n',
  'dispatch:\n  - &u {url: "*/a", module: api}\n  - *u\n',
  'dispatch:\n  - <<: {url: "*/a"}\n    module: api\n',
  'dispatch: !!set {a, b}\n',
  'dispatch:\n  - url: !!binary aGVsbG8=\n    module: api\n',
  'dispatch:\n  - {url: "*/a", module: api, module: api}\n',
  YAML_ALIAS_BOMB,
  'dispatch: &l [*l]\n',
  '? [a]\n: b\n',
  '__proto__: {dispatch: []}\n',
  'dispatch:\n  - url: "*/a"\n    module: [api]\n',
];
const validYaml = fc
  .tuple(fc.array(validRule, { maxLength: 6 }), fc.boolean())
  .map(([rules, app]) =>
    stringify(app ? { application: 'x', dispatch: rules } : { dispatch: rules }),
  );
const DISPATCH_TRAPS = [
  ...YAML_TRAPS,
  'dispatch',
  'application',
  'url',
  'module',
  'service',
  '*/',
  '/_ah/',
  '-dot-',
];
const yamlText = fc.oneof(
  { arbitrary: validYaml, weight: 1 },
  { arbitrary: mutatedString(validYaml, DISPATCH_TRAPS), weight: 5 },
  { arbitrary: mutatedString(fc.constantFrom(...YAML_SPECIALS), DISPATCH_TRAPS), weight: 2 },
  { arbitrary: fc.constantFrom(...YAML_SPECIALS), weight: 1 },
  { arbitrary: fc.string({ maxLength: 200 }), weight: 1 },
  { arbitrary: fc.string({ maxLength: 100, unit: 'binary' }), weight: 1 },
);

describe('bad input: dispatch rules', { timeout: BAD_INPUT_TIMEOUT_MS }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'x-reliability-rules-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(`rule lists: ${RUNS} cases compile or fail with INVALID_DISPATCH_RULE; matching stays within the rules`, async () => {
    const tally = new BadInputTally('dispatch rules: compileDispatchRules', typed);
    fc.assert(
      fc.property(
        ruleList,
        fc.string({ maxLength: 30 }),
        fc.string({ maxLength: 40 }),
        (list, host, path) => {
          const set = tally.run(() =>
            compileDispatchRules(list as DispatchRule[], { modules: MODULES }),
          ) as ReturnType<typeof compileDispatchRules> | undefined;
          if (set === undefined) return;
          for (const rule of set.rules) {
            expect(MODULES).toContain(rule.module);
            expect(rule.path.startsWith('/')).toBe(true);
          }
          const hit = set.match(host, path);
          if (hit) {
            expect(set.rules).toContain(hit);
            expect(hit.pathPrefix ? path.startsWith(hit.path) : path === hit.path).toBe(true);
          }
        },
      ),
      { numRuns: RUNS },
    );
    tally.record(RUNS);
    expect(tally.cases).toBeGreaterThanOrEqual(RUNS);
    expect(tally.outcomes.get('ok')).toBeGreaterThan(RUNS / 10); // valid lists do compile
    expect(tally.outcomes.get('INVALID_DISPATCH_RULE')).toBeGreaterThan(RUNS / 10);
    expect(await tally.slowestReplayedMs()).toBeLessThan(250);
  });

  it(`dispatch.yaml: ${RUNS} texts parse or fail with INVALID_DISPATCH_RULE, leaving no memory behind`, async () => {
    const tally = new BadInputTally('dispatch rules: parseDispatchYaml', typed);
    const heapBefore = await heapAfterGc();
    fc.assert(
      fc.property(yamlText, text => {
        tally.run(() => parseDispatchYaml(text, { modules: MODULES }));
      }),
      { numRuns: RUNS },
    );
    const growthMb = await heapGrowthMbSince(heapBefore);
    tally.record(RUNS);
    recordHeapGrowth('dispatch rules: parseDispatchYaml', growthMb);
    expect(tally.cases).toBeGreaterThanOrEqual(RUNS);
    expect(tally.outcomes.get('ok')).toBeGreaterThan(RUNS / 20);
    expect(await tally.slowestReplayedMs()).toBeLessThan(250);
    expect(growthMb).toBeLessThan(20);
  });

  it('oversized input is refused by the size limits, quickly', async () => {
    const tally = new BadInputTally('dispatch rules: size limits', typed);
    const many = Array.from({ length: 101 }, () => ({ url: '*/a', module: 'api' }));
    const cases = [
      () => parseDispatchYaml(`dispatch:\n${'  - {url: "*/a", module: api}\n'.repeat(40_000)}`),
      () => parseDispatchYaml(`# ${'x'.repeat(1_000_001)}`),
      () => compileDispatchRules(many),
      () => parseDispatchYaml(stringify({ dispatch: many })),
      () => compileDispatchRules([{ url: `*/${'a'.repeat(100)}`, module: 'api' }]),
      () => parseDispatchYaml(YAML_ALIAS_BOMB),
    ];
    for (const run of cases) {
      expect(tally.run(run)).toBeUndefined();
    }
    expect(tally.outcomes.get('INVALID_DISPATCH_RULE')).toBe(cases.length);
    expect(await tally.slowestReplayedMs()).toBeLessThan(1_000);
  });

  it(`a polled rules file: ${FILE_RUNS} rewrites never throw, and a bad file keeps the previous rules`, async () => {
    const file = join(dir, 'dispatch.yaml');
    writeFileSync(file, stringify({ dispatch: [{ url: '*/api/*', module: 'api' }] }));
    const backend = inProcess(() => ({ body: 'ok' }));
    const dispatcher = createDispatcher({
      host: 'example.com',
      modules: {
        default: { versions: { v1: { backend } } },
        api: { versions: { v1: { backend } } },
        static: { versions: { v1: { backend } } },
      },
      rules: { file, pollIntervalMs: 3_600_000 },
    });
    const tally = new BadInputTally('dispatch rules: rules file reload', typed);
    let reloaded = 0;
    try {
      await fc.assert(
        fc.asyncProperty(yamlText, fc.nat(), async (text, n) => {
          const before = dispatcher.stats().rules;
          // a unique trailing comment line changes size and content even for equal texts
          writeFileSync(file, `${text}\n# ${n}\n`);
          const parsed = tally.run(() =>
            parseDispatchYaml(`${text}\n# ${n}\n`, { modules: MODULES }),
          ) as { size: number } | undefined;
          const ok = await dispatcher.reloadRules();
          if (ok) reloaded++;
          if (parsed === undefined) {
            expect(ok).toBe(false);
            expect(dispatcher.stats().rules).toBe(before);
          } else if (ok) {
            expect(dispatcher.stats().rules).toBe(parsed.size);
          }
        }),
        { numRuns: FILE_RUNS, plugins: [fc.timeout(2_000)] },
      );
    } finally {
      await dispatcher.close();
    }
    tally.record(FILE_RUNS);
    recordFigure({
      section: 'bad input',
      name: 'dispatch rules: rules file reloads accepted',
      value: reloaded,
    });
    expect(reloaded).toBeGreaterThan(0);
    expect(tally.outcomes.get('INVALID_DISPATCH_RULE')).toBeGreaterThan(0);
  });
});
