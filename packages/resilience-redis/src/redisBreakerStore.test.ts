// redisBreakerStore on a real redis-server of the test's own: saves, loads, TTLs, adoption between
// two connections, and outages (SIGKILL, restart, a hung Redis) without a call ever waiting.
import { randomUUID } from 'node:crypto';
import { circuitBreaker, isXError, type CircuitBreaker } from '@x/resilience';
import { startRedisServer, type RedisServer } from '@x/testkit';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { redisSkip } from '../test/redisSkip.js';
import { redisBreakerStore, type RedisBreakerStore } from './redisBreakerStore.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

async function until(check: () => boolean, timeoutMs = 5000): Promise<number> {
  const started = performance.now();
  while (!check()) {
    if (performance.now() - started > timeoutMs) throw new Error(`not true within ${timeoutMs} ms`);
    await sleep(5);
  }
  return performance.now() - started;
}

function client(url: string): Redis {
  const redis = new Redis(url);
  redis.on('error', () => {}); // an application's own handler; outages are expected here
  cleanups.push(() => redis.disconnect());
  return redis;
}

function storeOf(redis: Redis, prefix: string, options = {}): RedisBreakerStore {
  const store = redisBreakerStore(redis, { prefix, ...options });
  cleanups.push(() => store.close());
  return store;
}

function breakerOf(store: RedisBreakerStore, key: string): CircuitBreaker {
  const breaker = circuitBreaker({ key, store, halfOpenAfter: 60_000 });
  cleanups.push(() => breaker.close());
  return breaker;
}

const trip = (breaker: CircuitBreaker) => {
  for (let i = 0; i < 5 && breaker.state === 'closed'; i++)
    breaker.failure(breaker.admit(), new Error('503'), 1);
};

/** ms per call of `n` successful breaker.execute() calls. */
async function callCost(breaker: CircuitBreaker, n = 2000): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < n; i++) await breaker.execute(async () => i);
  return (performance.now() - started) / n;
}

describe('redisBreakerStore: options', () => {
  it('refuses bad options with INVALID_ARGUMENT naming the field, expected and received', () => {
    const fake = {
      status: 'wait',
      duplicate: () => fake,
      pipeline: () => ({}),
    } as unknown as Redis;
    expect(() => redisBreakerStore({} as Redis)).toThrow(/redis: expected an ioredis client/);
    try {
      redisBreakerStore(fake, { ttlMs: 10 });
      expect.fail('no error');
    } catch (error) {
      expect(isXError(error, 'INVALID_ARGUMENT')).toBe(true);
      expect((error as { field: string }).field).toBe('ttlMs');
      expect(String(error)).toMatch(/ttlMs: expected a number of ms >= 1000.*received 10/);
    }
    expect(() => redisBreakerStore(fake, { prefix: '' })).toThrow(
      /prefix: expected a non-empty string, received ""/,
    );
  });
});

describe.skipIf(redisSkip)('redisBreakerStore (real Redis)', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.close();
  });
  const prefix = () => `t:${randomUUID()}`;

  it('saves state under <prefix>:state:<key> with a TTL past the open period, and loads it', async () => {
    const p = prefix();
    const redis = client(server.url);
    const store = storeOf(redis, p, { ttlMs: 5_000 });
    const breaker = breakerOf(store, 'payments');
    await until(() => store.connected);
    trip(breaker);
    let raw: string | null = null; // the save is fire-and-forget: poll for it
    for (let i = 0; i < 200 && raw === null; i++) {
      raw = await redis.get(`${p}:state:payments`);
      if (raw === null) await sleep(10);
    }
    expect(raw).not.toBeNull();
    expect(JSON.parse(raw!)).toMatchObject({ state: 'open', openCount: 1 });
    const pttl = await redis.pttl(`${p}:state:payments`);
    expect(pttl).toBeGreaterThan(60_000); // 60 s open + 5 s
    expect(pttl).toBeLessThanOrEqual(65_000);
    expect(await store.load('payments')).toMatchObject({ state: 'open' });
    expect(await store.load('nothing-saved')).toBeUndefined();
    expect(store.channel).toBe(`${p}:events`);
  });

  it('two connections (as two replicas): open and close are adopted, and a hydrate() starts from the shared state', async () => {
    const p = prefix();
    const storeA = storeOf(client(server.url), p);
    const storeB = storeOf(client(server.url), p);
    const a = breakerOf(storeA, 'k');
    const b = breakerOf(storeB, 'k');
    await until(() => storeA.connected && storeB.connected);
    await sleep(50);
    trip(a);
    expect(a.state).toBe('open');
    const openMs = await until(() => b.state === 'open', 2000);
    a.isolate()(); // closed by hand: saved and published as closed
    const closeMs = await until(() => b.state === 'closed', 2000);
    expect(openMs).toBeLessThan(1000);
    expect(closeMs).toBeLessThan(1000);
    // A third breaker created now with hydrate() picks up the saved (closed) state; trip a again.
    trip(a);
    await until(() => b.state === 'open', 2000);
    const c = circuitBreaker({
      key: 'k',
      halfOpenAfter: 60_000,
      store: storeOf(client(server.url), p),
    });
    cleanups.push(() => c.close());
    await until(() => c.state === 'open', 3000);
    expect(c.retryAfterMs).toBeGreaterThan(50_000);
  });

  it('Redis SIGKILLed: calls are decided locally at the same cost, no unhandled rejection; restarted: it resyncs', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    cleanups.push(() => process.off('unhandledRejection', onUnhandled));
    const own = await startRedisServer();
    cleanups.push(() => own.close());
    const p = prefix();
    const redisA = client(own.url);
    const redisB = client(own.url);
    const storeA = storeOf(redisA, p);
    const storeB = storeOf(redisB, p);
    const a = breakerOf(storeA, 'orders');
    const b = breakerOf(storeB, 'orders');
    await until(() => storeA.connected && storeB.connected);
    await sleep(50);
    await callCost(a, 500); // warm-up
    const baseline = await callCost(a);

    process.kill(own.pid!, 'SIGKILL');
    await until(() => redisA.status !== 'ready' && redisB.status !== 'ready');
    const down = await callCost(a);
    // Open a during the outage: every call returns at once and b cannot hear of it.
    const started = performance.now();
    trip(a);
    const rejected = await a.execute(async () => 1).catch((error: unknown) => error);
    const tripMs = performance.now() - started;
    expect(rejected).toMatchObject({ code: 'CIRCUIT_OPEN' });
    expect(a.state).toBe('open');
    await sleep(300);
    expect(b.state).toBe('closed');
    console.log(
      `[resilience-redis] breaker call: ${(baseline * 1000).toFixed(1)} µs with Redis, ${(down * 1000).toFixed(1)} µs with Redis SIGKILLed; trip+reject ${tripMs.toFixed(1)} ms`,
    );
    // Same order as with Redis (never a wait on it): at most 0.2 ms more per call on a busy machine.
    expect(down).toBeLessThan(baseline * 10 + 0.2);
    expect(tripMs).toBeLessThan(50);

    await until(() => {
      try {
        process.kill(own.pid!, 0);
        return false;
      } catch {
        return true;
      }
    });
    await sleep(100);
    await own.start();
    // Reconnected: a republishes its open circuit, b adopts it.
    const resyncMs = await until(() => b.state === 'open', 10_000);
    console.log(
      `[resilience-redis] resync after restart: b open ${resyncMs.toFixed(0)} ms after restart`,
    );
    expect(unhandled).toEqual([]);
  });

  it('a hung Redis (SIGSTOP): hydrate() gives up after timeoutMs, calls never wait', async () => {
    const own = await startRedisServer();
    cleanups.push(() => own.close());
    const redis = client(own.url);
    const errors: Error[] = [];
    const store = storeOf(redis, prefix(), {
      timeoutMs: 200,
      onError: (e: Error) => errors.push(e),
    });
    const breaker = breakerOf(store, 'slow');
    await until(() => store.connected);
    own.pause();
    cleanups.push(() => own.resume());
    let started = performance.now();
    await breaker.hydrate();
    const hydrateMs = performance.now() - started;
    expect(hydrateMs).toBeGreaterThanOrEqual(150);
    expect(hydrateMs).toBeLessThan(1500);
    started = performance.now();
    trip(breaker);
    const rejected = await breaker.execute(async () => 1).catch((error: unknown) => error);
    expect(performance.now() - started).toBeLessThan(50);
    expect(rejected).toMatchObject({ code: 'CIRCUIT_OPEN' });
    await until(() => errors.some(e => /no answer from Redis within 200 ms/.test(e.message)), 3000);
  });
});
