import {
  createDispatcher,
  inProcess,
  isHostLabel,
  parseHostHeader,
  type Dispatcher,
  type HostHeaderMatch,
} from '@x/dispatcher';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BAD_INPUT_TIMEOUT_MS,
  BadInputTally,
  recordHeapGrowth,
  xErrorCodes,
} from '../src/badInputTally.js';
import { heapAfterGc, heapGrowthMbSince } from '../src/heap.js';
import { mutatedString } from '../src/mutate.js';
import { sized } from '../src/profile.js';

// Bad input for Host headers: parseHostHeader never throws and answers a well-formed match; the
// dispatcher routes any Host header to a real module/version/instance or fails with a typed error.

const RUNS = sized({ quick: 10_000, long: 100_000 });
const BASE = 'example.com';
const ROUTING_CODES = [
  'INVALID_REQUEST',
  'MODULE_DOES_NOT_EXIST',
  'VERSION_DOES_NOT_EXIST',
  'INVALID_INSTANCE_ID',
  'NOT_SUPPORTED_WITH_AUTO_SCALING',
];

const label = fc.constantFrom(
  '0',
  '1',
  '2',
  '7',
  'v1',
  'v2',
  'api',
  'default',
  'nope',
  '_x',
  'a-b',
);
const validHost = fc
  .tuple(
    fc.array(label, { maxLength: 3 }),
    fc.boolean(),
    fc.oneof(
      { arbitrary: fc.constant(BASE), weight: 4 },
      { arbitrary: fc.constantFrom('other.org', 'localhost', '[::1]', '127.0.0.1'), weight: 1 },
    ),
    fc.option(fc.integer({ min: 0, max: 65_535 }), { nil: undefined }),
  )
  .map(([labels, dashDot, base, port]) => {
    const prefix = labels.length ? labels.join(dashDot ? '-dot-' : '.') + '.' : '';
    return `${base.startsWith('[') ? base : prefix + base}${port === undefined ? '' : `:${port}`}`;
  });
const HOST_TRAPS = [
  '.',
  ':',
  '-dot-',
  '[',
  ']',
  '::',
  '..',
  '-',
  '_',
  ' ',
  '\t',
  '%2e',
  'Ä',
  '\0',
  ':99999',
  ':0x1',
  'EXAMPLE.COM',
];
const hostHeader = fc.oneof(
  { arbitrary: validHost, weight: 2 },
  { arbitrary: mutatedString(validHost, HOST_TRAPS), weight: 4 },
  { arbitrary: fc.string({ maxLength: 40 }), weight: 1 },
  { arbitrary: fc.string({ maxLength: 40, unit: 'binary' }), weight: 1 },
  { arbitrary: fc.string({ minLength: 250, maxLength: 400 }).map(s => `${s}.${BASE}`), weight: 1 },
);

/** The structural promises of a parse result. */
function checkMatch(match: HostHeaderMatch): void {
  switch (match.kind) {
    case 'none':
      return;
    case 'invalid':
      expect(match.reason.length).toBeGreaterThan(0);
      return;
    case 'prefix':
      expect(match.labels.length).toBeGreaterThanOrEqual(1);
      expect(match.labels.length).toBeLessThanOrEqual(3);
      for (const l of match.labels) expect(isHostLabel(l)).toBe(true);
      expect(match.hostname.endsWith(`.${BASE}`)).toBe(true);
      break;
    case 'base':
      expect(match.hostname).toBe(BASE);
      break;
    case 'other':
      expect(match.hostname).toBe(match.hostname.toLowerCase());
      break;
  }
  if (match.port !== undefined) {
    expect(Number.isInteger(match.port)).toBe(true);
    expect(match.port).toBeLessThanOrEqual(65_535);
  }
}

describe('bad input: Host headers', { timeout: BAD_INPUT_TIMEOUT_MS }, () => {
  let dispatcher: Dispatcher;
  beforeAll(async () => {
    const backend = inProcess(() => ({ body: 'ok' }));
    dispatcher = createDispatcher({
      host: BASE,
      modules: {
        default: {
          versions: {
            v1: { backend, scaling: { kind: 'manual', instances: 2 } },
            v2: { backend },
          },
        },
        api: {
          versions: {
            v1: { backend, scaling: { kind: 'manual', instances: 3 } },
            v2: { backend, scaling: { kind: 'automatic' } },
          },
        },
      },
      rules: [{ url: '*/api/*', module: 'api' }],
      split: [{ module: 'api', weights: { v1: 1, v2: 1 } }],
    });
    await dispatcher.start();
  });
  afterAll(() => dispatcher?.close());

  it(`parseHostHeader: ${RUNS} headers give a well-formed match, never a throw`, async () => {
    // parseHostHeader reports malformed headers as { kind: 'invalid', reason } rather than
    // throwing: outcomes are counted by kind, and any throw fails the property
    const tally = new BadInputTally('Host header: parseHostHeader', () => undefined);
    fc.assert(
      fc.property(
        fc.oneof({ arbitrary: hostHeader, weight: 20 }, { arbitrary: fc.anything(), weight: 1 }),
        value => {
          const start = performance.now();
          const match = parseHostHeader(value as string, BASE);
          tally.count(match.kind, performance.now() - start, () =>
            parseHostHeader(value as string, BASE),
          );
          checkMatch(match);
        },
      ),
      { numRuns: RUNS },
    );
    tally.record(RUNS);
    expect(tally.cases).toBeGreaterThanOrEqual(RUNS);
    for (const kind of ['base', 'prefix', 'other', 'invalid'])
      expect(tally.outcomes.get(kind)).toBeGreaterThan(0);
    expect(await tally.slowestReplayedMs()).toBeLessThan(100);
  });

  it(`routing: ${RUNS} Host headers route to an existing instance or fail with a typed error`, async () => {
    const tally = new BadInputTally(
      'Host header: dispatcher routing (explain)',
      xErrorCodes(ROUTING_CODES),
    );
    const heapBefore = await heapAfterGc();
    fc.assert(
      fc.property(hostHeader, fc.constantFrom('/', '/api/x', '/_ah/start'), (host, url) => {
        const decision = tally.run(() => dispatcher.explain({ url, headers: { host } })) as
          ReturnType<Dispatcher['explain']> | undefined;
        if (decision === undefined) return;
        expect(dispatcher.getVersions(decision.module)).toContain(decision.version);
        if (decision.instance !== undefined)
          expect(
            dispatcher.getInstances(decision.module, decision.version).map(i => i.id),
          ).toContain(decision.instance);
      }),
      { numRuns: RUNS },
    );
    // the router caches parsed Host headers: thousands of distinct ones must not pile up
    const growthMb = await heapGrowthMbSince(heapBefore);
    tally.record(RUNS);
    recordHeapGrowth('Host header: routing', growthMb);
    expect(tally.cases).toBeGreaterThanOrEqual(RUNS);
    expect(tally.outcomes.get('ok')).toBeGreaterThan(RUNS / 10);
    expect(tally.outcomes.get('INVALID_REQUEST')).toBeGreaterThan(0);
    expect(await tally.slowestReplayedMs()).toBeLessThan(100);
    expect(growthMb).toBeLessThan(20);
  });
});
