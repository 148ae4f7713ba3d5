import {
  HttpEntrypoint,
  json,
  route,
  schema,
  testRoute,
  text,
  translator,
  type Route,
  type StandardSchemaLike,
} from '@x/routes';
import fc from 'fast-check';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BAD_INPUT_TIMEOUT_MS,
  BadInputTally,
  recordHeapGrowth,
  xErrorCodes,
} from '../src/badInputTally.js';
import { recordFigure } from '../src/figures.js';
import { heapAfterGc, heapGrowthMbSince } from '../src/heap.js';
import { mutatedBytes, mutatedString } from '../src/mutate.js';
import { sized } from '../src/profile.js';
import { runConcurrently } from '../src/runConcurrently.js';

// Bad input for @x/routes translators (json, text, schema, chain of custom steps), run by real
// routes: in-process deliveries (testRoute) and HTTP bodies to a real HttpEntrypoint. A message
// either reaches the target or fails with TRANSLATION_FAILED (terminal, dead-lettered, HTTP 400).

const RUNS = sized({ quick: 10_000, long: 100_000 });
const HTTP_REQUESTS = sized({ quick: 1_000, long: 10_000 });

interface Order {
  id: string;
  qty: number;
}

/** A hand-written Standard Schema v1 validator for {@link Order}. */
const orderSchema: StandardSchemaLike<Order> = {
  '~standard': {
    validate(value) {
      const v = value as Partial<Order> | null;
      const issues: { message: string; path?: string[] }[] = [];
      if (typeof v !== 'object' || v === null || Array.isArray(v))
        return { issues: [{ message: 'expected an object' }] };
      if (typeof v.id !== 'string' || v.id === '')
        issues.push({ message: 'expected a non-empty string', path: ['id'] });
      if (!Number.isInteger(v.qty) || v.qty! < 1 || v.qty! > 100)
        issues.push({ message: 'expected 1..100', path: ['qty'] });
      return issues.length ? { issues } : { value: { id: v.id!, qty: v.qty! } };
    },
  },
};
const zodLike = {
  safeParse: (value: unknown) => {
    const result = orderSchema['~standard'].validate(value) as { value?: Order; issues?: unknown };
    return result.issues
      ? { success: false as const, error: new Error('not an order') }
      : { success: true as const, data: result.value! };
  },
};
const isLine = (value: unknown): value is string =>
  typeof value === 'string' && /^[\x20-\x7e]{1,80}$/.test(value);

/** Three routes covering every translator kind: json + Standard Schema, text + guard + custom step, async steps. */
function routes(): Route<any, any, any, any>[] {
  return [
    route({ translators: [json(), schema(orderSchema)], target: (o: Order) => o.qty * 2 }),
    route({
      translators: [
        text(),
        schema(isLine, 'line'),
        translator('fields', (s: string) => {
          const [id, qty] = s.split(',');
          if (id === undefined || qty === undefined) throw new Error('expected "id,qty"');
          return { id, qty: Number(qty) };
        }),
      ],
      target: (o: { id: string; qty: number }) => o.id,
    }),
    route({
      translators: [
        translator('async json', async (input: unknown) =>
          json().translate(input, undefined as never),
        ),
        schema(zodLike),
      ],
      target: async (o: Order) => o.id,
    }),
  ];
}

const validOrder = fc.record({
  id: fc.string({ minLength: 1, maxLength: 8 }),
  qty: fc.integer({ min: 1, max: 100 }),
});
const JSON_TRAPS = [
  '{',
  '}',
  '[',
  ']',
  '"',
  ',',
  ':',
  '\\',
  '\\u',
  '\\ud800',
  'null',
  '1e999',
  '-',
  '\0',
  '\ufeff',
  '__proto__',
];
const orderText = validOrder.map(o => JSON.stringify(o));
const message = fc.oneof(
  { arbitrary: orderText, weight: 2 },
  { arbitrary: validOrder.map(o => `${o.id.replace(/[,\s]/g, '') || 'x'},${o.qty}`), weight: 1 },
  { arbitrary: mutatedString(orderText, JSON_TRAPS), weight: 4 },
  { arbitrary: orderText.map(t => Buffer.from(t)), weight: 1 },
  { arbitrary: mutatedBytes(orderText.map(t => new Uint8Array(Buffer.from(t)))), weight: 2 },
  { arbitrary: fc.uint8Array({ maxLength: 60 }).map(b => Buffer.from(b)), weight: 1 },
  { arbitrary: fc.string({ maxLength: 60, unit: 'binary' }), weight: 1 },
  { arbitrary: fc.oneof(validOrder, fc.anything()), weight: 1 }, // already-decoded queue payloads
);

describe('bad input: @x/routes translators', { timeout: BAD_INPUT_TIMEOUT_MS }, () => {
  const started: Route<any, any, any, any>[] = [];
  afterAll(async () => {
    for (const r of started) await r.stop({ timeoutMs: 1_000 });
  });

  it(`testRoute: ${RUNS} messages reach the target or fail with TRANSLATION_FAILED, dead-lettered`, async () => {
    const tally = new BadInputTally(
      'routes: translator chains (testRoute)',
      xErrorCodes(['TRANSLATION_FAILED']),
    );
    const testers = routes().map(r => testRoute(r));
    const heapBefore = await heapAfterGc();
    await fc.assert(
      fc.asyncProperty(fc.nat(testers.length - 1), message, async (which, input) => {
        const start = performance.now();
        const delivery = await testers[which]!.deliver(input);
        const { outcome } = delivery;
        if (outcome.kind === 'success') {
          tally.count('ok', performance.now() - start);
          return;
        }
        expect(outcome.kind).toBe('failure');
        if (outcome.kind !== 'failure') return;
        expect(outcome.terminal).toBe(true);
        expect(delivery.deadLetter).toBeDefined();
        tally.count(tally.codeOf(outcome.error), performance.now() - start);
      }),
      { numRuns: RUNS, plugins: [fc.timeout(2_000)] },
    );
    // dead letters are kept by design, up to their bound; beyond them nothing may stay behind
    const deadLetters = testers.map(t => t.deadLetters.size);
    for (const t of testers) {
      expect(t.deadLetters.size).toBeLessThanOrEqual(t.deadLetters.maxLength);
      t.deadLetters.clear();
      await t.stop({ timeoutMs: 1_000 });
    }
    const growthMb = await heapGrowthMbSince(heapBefore);
    recordFigure({
      section: 'bad input',
      name: 'routes: dead letters kept per route (bound 10 000)',
      value: deadLetters.join(' / '),
    });
    tally.record(RUNS);
    recordHeapGrowth('routes: testRoute', growthMb);
    expect(tally.cases).toBeGreaterThanOrEqual(RUNS);
    expect(tally.outcomes.get('ok')).toBeGreaterThan(RUNS / 20);
    expect(tally.outcomes.get('TRANSLATION_FAILED')).toBeGreaterThan(RUNS / 20);
    expect([...tally.outcomes.keys()].sort()).toEqual(['TRANSLATION_FAILED', 'ok']);
    expect(tally.slowestMs).toBeLessThan(1_000);
    expect(growthMb).toBeLessThan(20);
  });

  it(`HttpEntrypoint: ${HTTP_REQUESTS} requests with bad bodies, methods and headers get 200, 400, 405 or 413`, async () => {
    const http = new HttpEntrypoint<Buffer>({ port: 0, path: '/orders', maxBodyBytes: 2_048 });
    const r = route({
      entrypoint: http,
      translators: [json(), schema(orderSchema)],
      target: (o: Order) => ({ id: o.id }),
    });
    started.push(r);
    await r.start();
    const requestArb = fc.record({
      method: fc.oneof(
        { arbitrary: fc.constant('POST'), weight: 6 },
        fc.constantFrom('PUT', 'GET', 'DELETE', 'PATCH'),
      ),
      path: fc.oneof(
        { arbitrary: fc.constant('/orders'), weight: 6 },
        fc.constantFrom('/orders?x=1', '/orders/', '/other'),
      ),
      contentType: fc.constantFrom(
        'application/json',
        'text/plain',
        'application/x-www-form-urlencoded',
        'application/json; charset=latin1',
        '',
      ),
      body: fc.oneof(
        {
          arbitrary: message.filter(
            m => typeof m === 'string' || Buffer.isBuffer(m),
          ) as fc.Arbitrary<string | Buffer>,
          weight: 9,
        },
        { arbitrary: fc.constant('x'.repeat(3_000)), weight: 1 },
      ),
    });
    const tally = new BadInputTally('routes: HttpEntrypoint bodies', () => undefined);
    const seed = Math.floor(Math.random() * 2 ** 31); // real requests: sampled, not shrunk
    const samples = fc.sample(requestArb, { numRuns: HTTP_REQUESTS, seed });
    const problems: string[] = [];
    await runConcurrently(samples.length, 10, async i => {
      const s = samples[i]!;
      const start = performance.now();
      const res = await request(`${http.url}${s.path}`, {
        method: s.method,
        headers: s.contentType ? { 'content-type': s.contentType } : {},
        body: s.method === 'GET' ? undefined : s.body,
        headersTimeout: 5_000,
        bodyTimeout: 5_000,
      });
      const text = await res.body.text();
      tally.count(String(res.statusCode), performance.now() - start);
      if (![200, 400, 404, 405, 413].includes(res.statusCode))
        problems.push(`${res.statusCode} for ${JSON.stringify(s).slice(0, 200)}`);
      if (res.statusCode === 400 && !/"code":"(TRANSLATION_FAILED|BAD_REQUEST)"/.test(text))
        problems.push(`400 body ${text.slice(0, 200)}`);
    });
    tally.record(HTTP_REQUESTS);
    expect(problems.slice(0, 10), `seed ${seed}: ${problems.length} problems`).toEqual([]);
    expect(tally.outcomes.get('200')).toBeGreaterThan(0);
    expect(tally.outcomes.get('400')).toBeGreaterThan(0);
    expect(tally.slowestMs).toBeLessThan(5_000);
  });
});
