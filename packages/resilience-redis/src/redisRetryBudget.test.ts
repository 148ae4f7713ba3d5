// redisRetryBudget on a real redis-server of the test's own: one budget for every connection
// sharing a key, synchronous decisions, and the local budget while Redis is killed.
import { randomUUID } from 'node:crypto';
import { faultTolerant, isXError, RetryBudget } from '@x/resilience';
import { startRedisServer, type RedisServer } from '@x/testkit';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { redisSkip } from '../test/redisSkip.js';
import { redisRetryBudget, type RedisRetryBudget } from './redisRetryBudget.js';

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

function budgetOf(options: Parameters<typeof redisRetryBudget>[0]): RedisRetryBudget {
  const budget = redisRetryBudget(options);
  cleanups.push(() => budget.close());
  return budget;
}

describe('redisRetryBudget: options', () => {
  const redis = {
    status: 'wait',
    duplicate: () => redis,
    pipeline: () => ({}),
  } as unknown as Redis;
  it('refuses bad options with INVALID_ARGUMENT (or the RetryBudget RangeError) naming the field', () => {
    const failure = (options: object) => {
      try {
        budgetOf({ redis, key: 'k', ...options });
      } catch (error) {
        return error as Error & { field?: string };
      }
      throw new Error('no error');
    };
    expect(failure({ key: '' })).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'key' });
    expect(failure({ refreshMs: 1 }).message).toMatch(
      /refreshMs: expected a number of ms >= 10.*received 1/,
    );
    expect(isXError(failure({ staleAfterMs: 'soon' }), 'INVALID_ARGUMENT')).toBe(true);
    expect(failure({ percentCanRetry: 2 }).message).toMatch(
      /percentCanRetry must be in \[0, 1\], got 2/,
    );
    expect(failure({ redis: {} }).message).toMatch(/redis: expected an ioredis client/);
  });
});

describe.skipIf(redisSkip)('redisRetryBudget (real Redis)', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('is a RetryBudget (accepted wherever one is) and shares one budget across connections', async () => {
    const key = `t:${randomUUID()}`;
    const options = { key, percentCanRetry: 0.1, minRetriesPerSec: 0 };
    const a = budgetOf({ redis: await client(server.url), ...options });
    const b = budgetOf({ redis: await client(server.url), ...options });
    expect(a).toBeInstanceOf(RetryBudget);
    faultTolerant(async () => 1, { retryBudget: a }).close?.();
    expect(await a.sync()).toBe(true);
    expect(await b.sync()).toBe(true);
    expect(a.shared && b.shared).toBe(true);
    for (let i = 0; i < 100; i++) a.deposit();
    expect(a.balance).toBe(10); // its own calls count at once
    expect(b.balance).toBe(0); // until the next sync
    await a.sync();
    await b.sync();
    expect(b.balance).toBe(10);
    let granted = 0;
    for (let i = 0; i < 15; i++) if (b.tryWithdraw()) granted++;
    expect(granted).toBe(10);
    await b.sync();
    await a.sync();
    expect(a.balance).toBe(0);
    expect(a.tryWithdraw()).toBe(false);
  });

  it('syncs by itself every refreshMs', async () => {
    const key = `t:${randomUUID()}`;
    const a = budgetOf({
      redis: await client(server.url),
      key,
      minRetriesPerSec: 0,
      refreshMs: 50,
    });
    const b = budgetOf({
      redis: await client(server.url),
      key,
      minRetriesPerSec: 0,
      refreshMs: 50,
    });
    for (let i = 0; i < 50; i++) a.deposit();
    const started = performance.now();
    while (b.balance !== 5 && performance.now() - started < 3000) await sleep(5);
    expect(b.balance).toBe(5);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('Redis SIGKILLed: decisions stay synchronous and fall back to the local budget; restarted: shared again', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    cleanups.push(() => process.off('unhandledRejection', onUnhandled));
    const own = await startRedisServer();
    cleanups.push(() => own.close());
    const key = `t:${randomUUID()}`;
    const redis = await client(own.url);
    const peer = budgetOf({ redis: await client(own.url), key, minRetriesPerSec: 0 });
    const budget = budgetOf({ redis, key, minRetriesPerSec: 0, staleAfterMs: 300 });
    for (let i = 0; i < 1000; i++) peer.deposit(); // another replica's calls: 100 shared retries
    await peer.sync();
    await budget.sync();
    expect(budget.balance).toBe(100);

    process.kill(own.pid!, 'SIGKILL');
    while (redis.status === 'ready') await sleep(5);
    await sleep(350);
    expect(budget.shared).toBe(false);
    for (let i = 0; i < 50; i++) budget.deposit();
    const started = performance.now();
    let granted = 0;
    for (let i = 0; i < 20; i++) if (budget.tryWithdraw()) granted++;
    expect(performance.now() - started).toBeLessThan(20);
    expect(granted).toBe(5); // only this process's own 50 calls now count

    await own.stop().catch(() => {});
    await own.start();
    const back = performance.now();
    while (!budget.shared && performance.now() - back < 10_000) await sleep(10);
    expect(budget.shared).toBe(true);
    expect(budget.balance).toBe(100); // the fleet's 1000 calls again (counts made offline are not sent)
    expect(unhandled).toEqual([]);
  });
});
