// Redis outages and an unreachable Redis. Each test runs a redis-server of its own (never the
// shared REDIS_URL one), so it can stop, restart and pause it.
import { freePort, startRedisServer, type RedisServer } from '@x/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { inProcess } from './backends/inProcess.js';
import { createDispatcher } from './createDispatcher.js';
import { EventStoreUnavailableError } from './errors.js';
import type { EventStore, StoredEvent } from './eventStore.js';
import { redisEventStore } from './redisEventStore.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function redis(): Promise<RedisServer> {
  const server = await startRedisServer();
  cleanups.push(() => server.close());
  return server;
}

function store(options: Parameters<typeof redisEventStore>[0]): EventStore {
  const s = redisEventStore(options);
  cleanups.push(() => s.close());
  return s;
}

async function timed(p: Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const started = performance.now();
  let error: unknown;
  try {
    await p;
  } catch (e) {
    error = e;
  }
  return { ms: performance.now() - started, error };
}

const event = (id: string, eta = Date.now() + 60_000): StoredEvent => ({
  id,
  service: undefined,
  eventId: undefined,
  eta,
  handler: 'h',
  payload: { id },
});

describe('redisEventStore: unreachable Redis', () => {
  it("the dispatcher's start() fails with EVENT_STORE_UNAVAILABLE within startTimeoutMs, naming the URL without its password", async () => {
    const port = await freePort(); // nothing listens there
    const d = createDispatcher({
      modules: { default: { versions: { v1: { backend: inProcess(() => ({})) } } } },
      eventStore: redisEventStore({
        url: `redis://app:s3cret@127.0.0.1:${port}`,
        startTimeoutMs: 1_000,
      }),
    });
    cleanups.push(() => d.close());
    const { ms, error } = await timed(d.start());
    expect(error).toBeInstanceOf(EventStoreUnavailableError);
    const e = error as EventStoreUnavailableError;
    expect([e.code, e.status, e.operation]).toEqual(['EVENT_STORE_UNAVAILABLE', 503, 'connect']);
    expect(e.message).toContain(`redis://app:***@127.0.0.1:${port}`);
    expect(e.message).toMatch(/ECONNREFUSED/);
    expect(e.message).not.toContain('s3cret');
    // 1 s bound + loading ioredis on a loaded machine; before the fix it never settled
    expect(ms).toBeLessThan(1_000 + 4_000);
  });

  it('rejects a non-positive startTimeoutMs or commandTimeoutMs with INVALID_CONFIG', () => {
    for (const bad of [{ startTimeoutMs: 0 }, { commandTimeoutMs: -5 }, { commandTimeoutMs: NaN }])
      expect(() => redisEventStore(bad)).toThrow(
        expect.objectContaining({ code: 'INVALID_CONFIG' }),
      );
  });
});

describe('redisEventStore: Redis stopped and restarted', () => {
  it('put fails at once while Redis is down, the events stored before the outage survive it, and the store works again after the restart', async () => {
    const server = await redis();
    const s = store({ url: server.url, commandTimeoutMs: 1_000 });
    await s.put(event('before'));
    await server.stop();
    const outage: number[] = [];
    for (let i = 0; i < 5; i++) {
      const { ms, error } = await timed(s.put(event(`during-${i}`)));
      expect(error).toBeInstanceOf(EventStoreUnavailableError);
      expect((error as EventStoreUnavailableError).retryAfterMs).toBeGreaterThan(0);
      outage.push(ms);
    }
    // connection refused: no command is held offline until the deadline
    expect(Math.max(...outage)).toBeLessThan(1_000 + 1_000);
    await server.start();
    const started = performance.now();
    for (;;) {
      const { error } = await timed(s.put(event('after')));
      if (!error) break;
      expect(performance.now() - started).toBeLessThan(10_000); // reconnects within 2 s
      await new Promise(r => setTimeout(r, 100));
    }
    const ids = (await s.load(Date.now() + 120_000, 100)).map(e => e.id).sort();
    expect(ids).toEqual(['after', 'before']);
  });

  it('a durable event due while Redis is down runs once after Redis returns (its claim is retried, not dropped)', async () => {
    const server = await redis();
    const fired: unknown[] = [];
    const errors: unknown[] = [];
    const d = createDispatcher({
      modules: { default: { versions: { v1: { backend: inProcess(() => ({})) } } } },
      eventStore: redisEventStore({ url: server.url, commandTimeoutMs: 500 }),
      eventHandlers: { note: payload => void fired.push(payload) },
    });
    cleanups.push(() => d.close());
    d.on(e => {
      if (e.type === 'event-error') errors.push(e);
    });
    await d.start();
    await d.addEvent(
      { handler: 'note', payload: 'due-during-outage' },
      Date.now() + 300,
      'svc',
      'a',
    );
    await server.stop();
    const deadline = Date.now() + 10_000;
    while (errors.length === 0 && Date.now() < deadline) await new Promise(r => setTimeout(r, 50));
    expect(errors.length).toBeGreaterThan(0); // reported, never silent
    expect(fired).toEqual([]);
    await server.start();
    while (fired.length === 0 && Date.now() < deadline + 10_000)
      await new Promise(r => setTimeout(r, 50));
    expect(fired).toEqual(['due-during-outage']);
    await new Promise(r => setTimeout(r, 300));
    expect(fired).toHaveLength(1);
  });

  it('a claim sent again with the same lease is true (its first answer was lost); another lease is false', async () => {
    const server = await redis();
    const s = store({ url: server.url });
    await s.put(event('e', 1_000));
    expect(await s.claim('e', 1_000, 90_000)).toBe(true);
    expect(await s.claim('e', 1_000, 90_000)).toBe(false); // a first claim never takes a leased event
    expect(await s.claim('e', 1_000, 90_000, true)).toBe(true); // the same claim sent again
    expect(await s.claim('e', 1_000, 90_001, true)).toBe(false); // another runner's lease
  });

  it('an event whose claim reached a hung Redis (SIGSTOP) but whose answer was lost runs once after SIGCONT', async () => {
    const server = await redis();
    const fired: unknown[] = [];
    const errors: unknown[] = [];
    const d = createDispatcher({
      modules: { default: { versions: { v1: { backend: inProcess(() => ({})) } } } },
      eventStore: redisEventStore({ url: server.url, commandTimeoutMs: 500 }),
      eventHandlers: { note: payload => void fired.push(payload) },
    });
    cleanups.push(() => d.close());
    cleanups.push(async () => server.resume());
    d.on(e => {
      if (e.type === 'event-error') errors.push(e);
    });
    await d.start();
    await d.addEvent(
      { handler: 'note', payload: 'claimed-while-hung' },
      Date.now() + 400,
      'svc',
      'h',
    );
    server.pause(); // the claim is sent at +400 ms and applied only after SIGCONT
    const deadline = Date.now() + 10_000;
    while (errors.length === 0 && Date.now() < deadline) await new Promise(r => setTimeout(r, 50));
    expect(errors.length).toBeGreaterThan(0);
    await new Promise(r => setTimeout(r, 1_000));
    server.resume();
    while (fired.length === 0 && Date.now() < deadline + 10_000)
      await new Promise(r => setTimeout(r, 50));
    expect(fired).toEqual(['claimed-while-hung']);
    await new Promise(r => setTimeout(r, 300));
    expect(fired).toHaveLength(1);
  });

  it('an operation on a hung Redis (SIGSTOP) fails with EVENT_STORE_UNAVAILABLE by commandTimeoutMs', async () => {
    const server = await redis();
    const s = store({ url: server.url, commandTimeoutMs: 500 });
    await s.put(event('before'));
    server.pause();
    cleanups.push(async () => server.resume());
    const { ms, error } = await timed(s.put(event('hung')));
    expect(error).toBeInstanceOf(EventStoreUnavailableError);
    expect((error as Error).message).toMatch(/500 ms|timed out/);
    expect(ms).toBeLessThan(500 + 2_000);
    server.resume();
  });
});
