import { freePort, startRedisServer, type RedisServer } from '@x/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisProbe } from './redisProbe.js';

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function until(check: () => boolean, ms: number): Promise<number> {
  const started = performance.now();
  while (!check()) {
    if (performance.now() - started > ms) throw new Error(`not within ${ms} ms`);
    await new Promise(r => setTimeout(r, 25));
  }
  return performance.now() - started;
}

describe('RedisProbe', () => {
  it('is down against a port where nothing listens, and its detail has no password', async () => {
    const port = await freePort();
    const probe = new RedisProbe(`redis://user:s3cret@127.0.0.1:${port}`, { intervalMs: 200 });
    closers.push(() => probe.close());
    await until(() => /ECONNREFUSED|closed/.test(probe.check().detail), 3_000);
    expect(probe.check().ok).toBe(false);
    expect(probe.check().detail).toContain(`redis://user:***@127.0.0.1:${port}`);
    expect(probe.check().detail).not.toContain('s3cret');
  });

  it('is down while Redis is stopped or hung, and up again within 5 s of its return', async () => {
    const redis: RedisServer = await startRedisServer();
    closers.push(() => redis.close());
    const probe = new RedisProbe(redis.url, { intervalMs: 200 });
    closers.push(() => probe.close());
    await until(() => probe.check().ok, 5_000);

    await redis.stop();
    await until(() => !probe.check().ok, 2_000);
    expect(probe.check().detail).toContain(`Redis at ${redis.url} unavailable`);
    await redis.start();
    expect(await until(() => probe.check().ok, 5_000)).toBeLessThan(5_000);

    redis.pause();
    await until(() => !probe.check().ok, 3_000); // PING unanswered past its 1 s deadline
    redis.resume();
    await until(() => probe.check().ok, 5_000);
  });
});
