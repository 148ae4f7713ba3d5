import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpEntrypoint } from './httpEntrypoint.js';
import { route, type Route } from './route.js';
import { json, schema } from './translator.js';
import { validator } from './validator.js';
import { httpRequest } from './test/helpers.js';
import type { WorkerContext } from './workerContext.js';

interface Order {
  readonly kind: 'a' | 'b';
  readonly qty?: number;
}

const order = validator<Order>((v, refuse) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return refuse([], 'an object', v);
  const { kind, qty } = v as Record<string, unknown>;
  if (kind !== 'a' && kind !== 'b') refuse('kind', 'one of "a", "b"', kind);
  if (qty !== undefined && !(Number.isInteger(qty) && (qty as number) >= 1))
    refuse(['qty'], 'an integer >= 1', qty);
  return v as Order;
});

const routes: Route<any, any, any, any>[] = [];
afterEach(async () => {
  await Promise.all(routes.splice(0).map(r => r.stop({ timeoutMs: 1_000 })));
});

describe('validator', () => {
  it('is a Standard Schema whose issues name the path, the expected and the received value', () => {
    expect(order['~standard'].validate({ kind: 'a', qty: 2 })).toEqual({
      value: { kind: 'a', qty: 2 },
    });
    expect(order['~standard'].validate({ kind: 'nope' })).toEqual({
      issues: [
        {
          path: ['kind'],
          expected: 'one of "a", "b"',
          received: '"nope"',
          message: 'expected one of "a", "b", received "nope"',
        },
      ],
    });
    expect(order.is({ kind: 'b' })).toBe(true);
    expect(order.is([])).toBe(false);
  });

  it('schema(validator) fails with TRANSLATION_FAILED naming the field (not "rejected a object")', () => {
    const t = schema(order, 'order');
    const fail = (input: unknown) => {
      try {
        t.translate(input, {} as WorkerContext);
      } catch (error) {
        return error as Error & { code: string; issues?: unknown };
      }
      throw new Error('expected a refusal');
    };
    const e = fail({ kind: 'nope' });
    expect(e.code).toBe('TRANSLATION_FAILED');
    expect(e.message).toBe('order: kind: expected one of "a", "b", received "nope"');
    expect(e.issues).toEqual([
      { path: 'kind', message: 'expected one of "a", "b", received "nope"' },
    ]);
    expect(fail({ kind: 'a', qty: 0 }).message).toBe(
      'order: qty: expected an integer >= 1, received 0',
    );
    expect(fail('x').message).toBe('order: expected an object, received "x"');
  });

  it('property: any JSON value is accepted as is, or refused with one issue whose message names what was received', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.jsonValue(), fc.record({ kind: fc.jsonValue(), qty: fc.jsonValue() })),
        value => {
          const result = order['~standard'].validate(value);
          if (result.issues === undefined) {
            expect(result.value).toBe(value);
            return;
          }
          expect(result.issues).toHaveLength(1);
          const [issue] = result.issues;
          expect(issue!.message).toBe(`expected ${issue!.expected}, received ${issue!.received}`);
          expect(['', 'kind', 'qty']).toContain(issue!.path.join('.'));
        },
      ),
    );
  });

  it('an HTTP entrypoint answers 400 TRANSLATION_FAILED with the message and the issues', async () => {
    const http = new HttpEntrypoint<Buffer>({ port: 0, path: '/orders' });
    const r = route({
      entrypoint: http,
      translators: [json(), schema(order, 'order')],
      target: (o: Order) => ({ ok: o.kind }),
    });
    routes.push(r);
    await r.start();
    const post = (body: unknown) =>
      httpRequest(`${http.url}/orders`, {
        body: JSON.stringify(body),
        headers: { 'content-type': 'application/json' },
      });
    const bad = await post({ kind: 'nope' });
    expect(bad.status).toBe(400);
    expect(bad.json()).toEqual({
      error: {
        code: 'TRANSLATION_FAILED',
        message: 'order: kind: expected one of "a", "b", received "nope"',
        issues: [{ path: 'kind', message: 'expected one of "a", "b", received "nope"' }],
      },
    });
    const good = await post({ kind: 'a' });
    expect([good.status, good.json()]).toEqual([200, { ok: 'a' }]);
  });
});
