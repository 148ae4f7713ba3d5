// redisRateLimiter on a real redis-server of the test's own: shared windows per key, and local
// limits (never failed calls) while Redis is killed or hung.
import { randomUUID } from 'node:crypto';
import { isXError, RateLimitedError } from '@x/resilience';
import { startRedisServer, type RedisServer } from '@x/testkit';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { redisSkip } from '../test/redisSkip.js';
import { redisRateLimiter } from './redisRateLimiter.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

async function client(url: string): Promise<Redis> {
  const redis = new Redis(url);
  redis.on('error', () => {});
  cleanups.push(() => redis.disconnect());
  while (redis.status !== 'ready') await sleep(5);
  return redis;
}

describe('redisRateLimiter: options', () => {
  const redis = {
    status: 'wait',
    duplicate: () => redis,
    pipeline: () => ({}),
  } as unknown as Redis;
  it.each([
    [{ points: 0, durationMs: 1000 }, 'points', /points: expected an integer >= 1, received 0/],
    [{ points: 1.5, durationMs: 1000 }, 'points', /received 1.5/],
    [{ points: 5, durationMs: 1500 }, 'durationMs', /whole number of seconds.*received 1500/],
    [
      { points: 5, durationMs: '1000' },
      'durationMs',
      /durationMs: expected a number of ms >= 1000.*received "1000"/,
    ],
    [
      { points: 5, durationMs: 1000, keyPrefix: '' },
      'keyPrefix',
      /keyPrefix: expected a non-empty string/,
    ],
    [
      { points: 5, durationMs: 1000, localFallback: { points: -1 } },
      'localFallback.points',
      /received -1/,
    ],
  ])('%o → INVALID_ARGUMENT on %s', (options, field, message) => {
    try {
      redisRateLimiter({ redis, ...(options as { points: number; durationMs: number }) });
      expect.fail('no error');
    } catch (error) {
      expect(isXError(error, 'INVALID_ARGUMENT')).toBe(true);
      expect((error as { field: string }).field).toBe(field);
      expect((error as Error).message).toMatch(message);
    }
  });
});

describe.skipIf(redisSkip)('redisRateLimiter (real Redis)', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('admits points per key per window, shared by two connections; refusals carry retryAfterMs', async () => {
    const keyPrefix = `t:${randomUUID()}`;
    const options = { points: 3, durationMs: 10_000, keyPrefix };
    const a = redisRateLimiter({ redis: await client(server.url), ...options });
    const b = redisRateLimiter({ redis: await client(server.url), ...options });
    const decisions = [
      await a.consume('client-1'),
      await b.consume('client-1'),
      await a.consume('client-1'),
      await b.consume('client-1'),
    ];
    expect(decisions.map(d => d.allowed)).toEqual([true, true, true, false]);
    expect(decisions.map(d => d.remaining)).toEqual([2, 1, 0, 0]);
    expect(decisions[3]!.retryAfterMs).toBeGreaterThan(5_000);
    expect(decisions[3]!.retryAfterMs).toBeLessThanOrEqual(10_000);
    expect((await a.consume('client-2')).allowed).toBe(true); // another key, its own window
    const refused = await b.take('client-1').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(RateLimitedError);
    expect(refused).toMatchObject({ code: 'RATE_LIMITED' });
    expect((refused as RateLimitedError).retryAfterMs).toBeGreaterThan(0);
  });

  it('Redis SIGKILLed: each process applies its local limit at once, no call fails; restarted: shared again', async () => {
    const own = await startRedisServer();
    cleanups.push(() => own.close());
    const redis = await client(own.url);
    const limiter = redisRateLimiter({
      redis,
      points: 100,
      durationMs: 10_000,
      keyPrefix: `t:${randomUUID()}`,
      localFallback: { points: 5 },
      // far above the bound below: "at once" means no wait for a Redis timeout, even on a busy
      // machine
      timeoutMs: 5_000,
    });
    expect((await limiter.consume('k')).remaining).toBe(99);
    process.kill(own.pid!, 'SIGKILL');
    while (redis.status === 'ready') await sleep(5);
    const started = performance.now();
    const decisions = await Promise.all(Array.from({ length: 10 }, () => limiter.consume('k')));
    const elapsed = performance.now() - started;
    expect(decisions.filter(d => d.allowed)).toHaveLength(5); // the local limit
    expect(decisions.filter(d => !d.allowed)[0]!.retryAfterMs).toBeGreaterThan(0);
    expect(elapsed).toBeLessThan(2_000);
    await own.stop().catch(() => {});
    await own.start();
    while ((redis.status as string) !== 'ready') await sleep(10);
    // Back on Redis (the AOF kept the window: 1 consumed there before the outage).
    expect((await limiter.consume('k')).remaining).toBe(98);
  });

  it('a hung Redis (SIGSTOP): the local limit decides after timeoutMs', async () => {
    const own = await startRedisServer();
    cleanups.push(() => own.close());
    const redis = await client(own.url);
    const limiter = redisRateLimiter({
      redis,
      points: 100,
      durationMs: 10_000,
      keyPrefix: `t:${randomUUID()}`,
      localFallback: { points: 2 },
      timeoutMs: 100,
    });
    own.pause();
    cleanups.push(() => own.resume());
    const started = performance.now();
    const decisions = await Promise.all(Array.from({ length: 4 }, () => limiter.consume('k')));
    const elapsed = performance.now() - started;
    expect(decisions.map(d => d.allowed)).toEqual([true, true, false, false]);
    expect(elapsed).toBeGreaterThanOrEqual(90);
    expect(elapsed).toBeLessThan(1000);
  });
});
