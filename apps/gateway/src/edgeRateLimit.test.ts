import type { IncomingMessage } from 'node:http';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { EdgeRateLimit } from './edgeRateLimit.js';

const req = (address: string, headers: Record<string, string> = {}) =>
  ({ headers, socket: { remoteAddress: address } }) as unknown as IncomingMessage;

describe('EdgeRateLimit without Redis (per process)', () => {
  it('refuses a client over its limit, not the others, and says when to come back', async () => {
    const limit = new EdgeRateLimit(
      {
        perClient: { points: 3, durationMs: 10_000 },
        global: undefined,
        clientAddressHeader: undefined,
      },
      undefined,
      'test',
    );
    expect(limit.active).toBe(true);
    for (let i = 0; i < 3; i++) expect(await limit.check(req('10.0.0.1'))).toBeUndefined();
    const refusal = await limit.check(req('10.0.0.1'));
    expect(refusal?.scope).toBe('client');
    expect(refusal!.retryAfterMs).toBeGreaterThan(0);
    expect(refusal!.retryAfterMs).toBeLessThanOrEqual(10_000);
    expect(await limit.check(req('10.0.0.2'))).toBeUndefined();
  });

  it('counts the client named by a trusted load balancer header, and a global limit for all', async () => {
    const limit = new EdgeRateLimit(
      {
        perClient: { points: 1, durationMs: 10_000 },
        global: { points: 3, durationMs: 10_000 },
        clientAddressHeader: 'x-forwarded-for',
      },
      undefined,
      'test2',
    );
    const viaLb = (client: string) =>
      req('127.0.0.1', { 'x-forwarded-for': `${client}, 10.9.9.9` });
    expect(limit.clientOf(viaLb('203.0.113.7'))).toBe('203.0.113.7');
    expect(limit.clientOf(req('192.0.2.1'))).toBe('192.0.2.1');
    expect(await limit.check(viaLb('a'))).toBeUndefined();
    expect((await limit.check(viaLb('a')))?.scope).toBe('client');
    expect(await limit.check(viaLb('b'))).toBeUndefined();
    // 'a' used the global count twice (a refused request is still counted by the client limit
    // first, the global one only when the client limit admitted it): a, b = 2 global points
    expect(await limit.check(viaLb('c'))).toBeUndefined();
    expect((await limit.check(viaLb('d')))?.scope).toBe('global');
  });

  it('is inactive without limits', () => {
    const limit = new EdgeRateLimit(
      { perClient: undefined, global: undefined, clientAddressHeader: undefined },
      undefined,
      'test3',
    );
    expect(limit.active).toBe(false);
  });
});

const url = process.env.REDIS_URL;
describe.skipIf(!url)('EdgeRateLimit on Redis (one count for every replica)', () => {
  it('two replicas share one global limit', async () => {
    const a = new Redis(url!);
    const b = new Redis(url!);
    const prefix = `edge-test-${process.pid}-${Date.now()}`;
    const config = {
      perClient: undefined,
      global: { points: 10, durationMs: 10_000 },
      clientAddressHeader: undefined,
    };
    try {
      // (until a connection is ready, each replica decides alone: the per-process fallback)
      await Promise.all(
        [a, b].map(r =>
          r.status === 'ready' ? undefined : new Promise(resolve => r.once('ready', resolve)),
        ),
      );
      const limits = [new EdgeRateLimit(config, a, prefix), new EdgeRateLimit(config, b, prefix)];
      let admitted = 0;
      for (let i = 0; i < 30; i++)
        if ((await limits[i % 2]!.check(req('10.0.0.1'))) === undefined) admitted++;
      expect(admitted).toBe(10);
    } finally {
      const keys = await a.keys(`${prefix}*`);
      if (keys.length > 0) await a.del(...keys);
      a.disconnect();
      b.disconnect();
    }
  });
});
