import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '@x/resilience';
import { inProcess } from './backends/inProcess.js';
import { createDispatcher } from './createDispatcher.js';
import { redisEventStore, type RedisLike } from './redisEventStore.js';

const url = process.env.REDIS_URL;
const skip = !url && !process.env.CI;
if (skip)
  console.warn('[@x/dispatcher] Redis tests skipped: REDIS_URL is not set (they never skip in CI)');
const redisUrl = url ?? 'redis://127.0.0.1:6379';

type Client = RedisLike & {
  keys(pattern: string): Promise<string[]>;
  del(...keys: string[]): Promise<number>;
  zrange(k: string, a: number, b: number): Promise<string[]>;
};

describe.skipIf(skip)(
  skip
    ? 'redisEventStore (skipped: REDIS_URL is not set outside CI)'
    : 'redisEventStore (real Redis)',
  () => {
    let admin: Client;
    const prefixes: string[] = [];
    const prefix = () => {
      const p = `x:test:dispatcher:${randomUUID()}`;
      prefixes.push(p);
      return p;
    };
    beforeAll(async () => {
      const { Redis } = await import('ioredis');
      admin = new Redis(redisUrl) as unknown as Client;
    });
    afterAll(async () => {
      for (const p of prefixes) {
        const keys = await admin.keys(`${p}:*`);
        if (keys.length) await admin.del(...keys);
      }
      await admin.quit();
    });

    it('puts, reschedules, claims once, completes and removes atomically', async () => {
      const p = prefix();
      const store = redisEventStore({ url: redisUrl, prefix: p });
      try {
        const event = {
          id: 'svc\u0000e1',
          service: 'svc',
          eventId: 'e1',
          eta: 1_000,
          handler: 'h',
          payload: { a: [1, 2] },
        };
        await store.put(event);
        expect(await store.load(0, 10)).toEqual([event]);
        expect(await store.reschedule('svc\u0000e1', 2_000)).toBe(true);
        expect(await store.reschedule('nope', 2_000)).toBe(false);
        expect(await store.claim('svc\u0000e1', 1_000, 10_000)).toBe(false); // stale eta
        expect(await store.claim('svc\u0000e1', 2_000, 10_000)).toBe(true);
        expect(await store.claim('svc\u0000e1', 2_000, 10_000)).toBe(false);
        expect(await store.claim('svc\u0000e1', 2_000, 10_000, true)).toBe(true); // sent again
        expect(await store.claim('svc\u0000e1', 2_000, 10_001, true)).toBe(false); // not ours
        expect(await store.reschedule('svc\u0000e1', 3_000)).toBe(false); // running
        expect(await store.load(5_000, 10)).toEqual([]);
        expect(await store.load(10_000, 10)).toEqual([{ ...event, eta: 10_000 }]); // lease expired: pending again
        expect(await store.claim('svc\u0000e1', 10_000, 20_000)).toBe(true);
        await store.complete('svc\u0000e1');
        expect(await store.load(1e12, 10)).toEqual([]);
        await store.put({ ...event, id: 'x' });
        expect(await store.remove('x')).toBe(true);
        expect(await store.remove('x')).toBe(false);
        expect(await admin.keys(`${p}:*`)).toEqual([]);
      } finally {
        await store.close();
      }
    });

    it('events survive a dispatcher restart and fire once, in order', async () => {
      const p = prefix();
      const clock = new ManualClock(1_700_000_000_000);
      const modules = { default: { versions: { v1: { backend: inProcess(() => ({})) } } } };
      const fired: unknown[] = [];
      const first = createDispatcher({
        clock,
        modules,
        eventStore: redisEventStore({ url: redisUrl, prefix: p }),
        eventHandlers: { note: x => void fired.push(x) },
      });
      const t0 = clock.now();
      await first.addEvent({ handler: 'note', payload: 'second' }, t0 + 2_000, 'svc', 'b');
      await first.addEvent({ handler: 'note', payload: 'first' }, t0 + 1_000, 'svc', 'a');
      await first.addEvent({ handler: 'note', payload: 'cancelled' }, t0 + 1_500, 'svc', 'c');
      await first.addEvent({ handler: 'note', payload: 'third' }, t0 + 2_500);
      expect(await first.updateEvent(t0 + 500, 'svc', 'a')).toBe(true);
      expect(await first.cancelEvent('svc', 'c')).toBe(true);
      await first.close(); // the process "stops": nothing fired
      expect(fired).toEqual([]);

      const second = createDispatcher({
        clock,
        modules,
        eventStore: redisEventStore({ url: redisUrl, prefix: p }),
        eventHandlers: { note: x => void fired.push(x) },
      });
      try {
        await second.start();
        expect(second.stats().events.pending).toBe(3);
        expect(await second.updateEvent(t0 + 2_200, 'svc', 'b')).toBe(true); // found after the restart
        await clock.advance(500);
        await waitUntil(() => fired.length === 1);
        await clock.advance(3_000);
        await waitUntil(() => fired.length === 3);
        expect(fired).toEqual(['first', 'second', 'third']);
        expect(await second.updateEvent(t0 + 9_000, 'svc', 'b')).toBe(false);
        await waitUntil(async () => (await admin.keys(`${p}:*`)).length === 0);
      } finally {
        await second.close();
      }
    });

    it('two dispatchers sharing a prefix run an event only once', async () => {
      const p = prefix();
      const clock = new ManualClock(1_700_000_000_000);
      const modules = { default: { versions: { v1: { backend: inProcess(() => ({})) } } } };
      let runs = 0;
      const handlers = { count: () => void runs++ };
      const a = createDispatcher({
        clock,
        modules,
        eventStore: redisEventStore({ url: redisUrl, prefix: p }),
        eventHandlers: handlers,
      });
      await a.addEvent({ handler: 'count' }, clock.now() + 100, 'svc', 'once');
      const b = createDispatcher({
        clock,
        modules,
        eventStore: redisEventStore({ url: redisUrl, prefix: p }),
        eventHandlers: handlers,
      });
      try {
        await b.start();
        expect(b.stats().events.pending).toBe(1);
        await clock.advance(100);
        await waitUntil(async () => (await admin.keys(`${p}:*`)).length === 0);
        await new Promise(r => setTimeout(r, 50));
        expect(runs).toBe(1);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('a claimed event whose runner died runs again after its lease', async () => {
      const p = prefix();
      const store = redisEventStore({ url: redisUrl, prefix: p });
      await store.put({
        id: 'job',
        service: 's',
        eventId: 'job',
        eta: 1_000,
        handler: 'h',
        payload: null,
      });
      expect(await store.claim('job', 1_000, 5_000)).toBe(true); // the runner then "crashes"
      await store.close();
      const clock = new ManualClock(6_000);
      let runs = 0;
      const d = createDispatcher({
        clock,
        modules: { default: { versions: { v1: { backend: inProcess(() => ({})) } } } },
        eventStore: redisEventStore({ url: redisUrl, prefix: p }),
        eventHandlers: { h: () => void runs++ },
      });
      try {
        await d.start();
        await clock.advance(0);
        await waitUntil(() => runs === 1);
      } finally {
        await d.close();
      }
    });

    it('uses a client you pass without closing it', async () => {
      const p = prefix();
      const { Redis } = await import('ioredis');
      const client = new Redis(redisUrl);
      const store = redisEventStore({ client: client as unknown as RedisLike, prefix: p });
      await store.put({
        id: 'k',
        service: undefined,
        eventId: undefined,
        eta: 1,
        handler: 'h',
        payload: 1,
      });
      await store.close();
      expect(await client.zrange(`${p}:due`, 0, -1)).toEqual(['k']);
      await client.quit();
      await expect(
        store.put({
          id: 'k',
          service: undefined,
          eventId: undefined,
          eta: 1,
          handler: 'h',
          payload: 1,
        }),
      ).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
    });
  },
);

async function waitUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise(r => setTimeout(r, 10));
  }
}
