// Failover of durable events between dispatchers sharing a Redis store (real Redis): the events
// of a dispatcher that is gone are taken over by a live one within `eventTakeoverMs` (+ one
// sweep), and each runs exactly once even when several live dispatchers adopt it.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inProcess } from './backends/inProcess.js';
import { createDispatcher, type Dispatcher } from './createDispatcher.js';
import { redisEventStore, type RedisLike } from './redisEventStore.js';

const url = process.env.REDIS_URL;
const skip = !url && !process.env.CI;
const redisUrl = url ?? 'redis://127.0.0.1:6379';
const modules = { default: { versions: { v1: { backend: inProcess(() => ({})) } } } };

type Client = RedisLike & {
  keys(pattern: string): Promise<string[]>;
  del(...keys: string[]): Promise<number>;
};

describe.skipIf(skip)(
  skip
    ? 'event failover (skipped: REDIS_URL is not set outside CI)'
    : 'event failover (real Redis)',
  () => {
    let admin: Client;
    const prefixes: string[] = [];
    const open: Dispatcher[] = [];
    const prefix = () => {
      const p = `x:test:failover:${randomUUID()}`;
      prefixes.push(p);
      return p;
    };
    const dispatcher = (
      p: string,
      handlers: Record<string, (x: unknown) => unknown>,
      takeoverMs: number,
    ) => {
      const d = createDispatcher({
        modules,
        eventStore: redisEventStore({ url: redisUrl, prefix: p }),
        eventHandlers: handlers,
        eventTakeoverMs: takeoverMs,
      });
      open.push(d);
      return d;
    };
    beforeAll(async () => {
      const { Redis } = await import('ioredis');
      admin = new Redis(redisUrl) as unknown as Client;
    });
    afterAll(async () => {
      await Promise.all(open.map(d => d.close()));
      for (const p of prefixes) {
        const keys = await admin.keys(`${p}:*`);
        if (keys.length) await admin.del(...keys);
      }
      await admin.quit();
    });

    it('overdue() returns only events past the cut-off and re-pends expired leases; get() reads one', async () => {
      const p = prefix();
      const store = redisEventStore({ url: redisUrl, prefix: p });
      try {
        const event = (id: string, eta: number) => ({
          id,
          service: undefined,
          eventId: undefined,
          eta,
          handler: 'h',
          payload: id,
        });
        await store.put(event('early', 1_000));
        await store.put(event('late', 9_000));
        await store.put(event('leased', 2_000));
        expect(await store.claim('leased', 2_000, 4_000)).toBe(true);
        expect((await store.overdue!(5_000, 3_000, 10)).map(e => e.id)).toEqual(['early']);
        // at 4 000 the lease has ended: pending again with eta 4 000
        expect((await store.overdue!(5_000, 4_000, 10)).map(e => [e.id, e.eta])).toEqual([
          ['early', 1_000],
          ['leased', 4_000],
        ]);
        expect((await store.overdue!(5_000, 4_000, 1)).map(e => e.id)).toEqual(['early']);
        expect(await store.get!('early')).toMatchObject({
          eta: 1_000,
          state: 'pending',
          payload: 'early',
        });
        expect(await store.claim('early', 1_000, 9_000)).toBe(true);
        expect(await store.get!('early')).toMatchObject({ eta: 9_000, state: 'running' });
        await store.complete('early');
        expect(await store.get!('early')).toBeUndefined();
        expect(await store.get!('never')).toBeUndefined();
      } finally {
        await store.close();
      }
    });

    it('a live dispatcher runs the events of a gone one within eventTakeoverMs, once each', async () => {
      const p = prefix();
      const takeoverMs = 1_000;
      const ran = new Map<string, number[]>();
      const record = (who: string) => (x: unknown) => {
        const list = ran.get(x as string) ?? [];
        list.push(Date.now());
        ran.set(x as string, list);
        runners.push(who);
      };
      const runners: string[] = [];
      const b = dispatcher(p, { note: record('b') }, takeoverMs);
      const c = dispatcher(p, { note: record('c') }, takeoverMs);
      await b.start();
      await c.start(); // started before the events exist: their start() load does not see them
      const a = dispatcher(p, { note: record('a') }, takeoverMs);
      await a.start();
      const eta = Date.now() + 300;
      for (let i = 0; i < 10; i++)
        await a.addEvent({ handler: 'note', payload: `e${i}` }, eta, 'svc', `e${i}`);
      await a.close(); // "dies" before they are due: its events stay in Redis, owned by nobody
      await waitUntil(() => ran.size === 10, takeoverMs + 8_000);
      await new Promise(r => setTimeout(r, takeoverMs + 500)); // a duplicate would show by now
      const lateness = [...ran.values()].map(times => times[0]! - eta);
      expect([...ran.values()].every(times => times.length === 1)).toBe(true);
      expect(runners.includes('a')).toBe(false);
      expect(Math.max(...lateness)).toBeGreaterThanOrEqual(takeoverMs);
      expect(Math.max(...lateness)).toBeLessThan(takeoverMs + 5_000);
      expect(await admin.keys(`${p}:*`)).toEqual([]);
    });

    it('events of a live dispatcher run on it, on time, not on the others', async () => {
      const p = prefix();
      const runners: string[] = [];
      const b = dispatcher(p, { note: () => void runners.push('b') }, 1_000);
      await b.start();
      const a = dispatcher(p, { note: () => void runners.push('a') }, 1_000);
      await a.start();
      for (let i = 0; i < 5; i++)
        await a.addEvent({ handler: 'note', payload: i }, Date.now() + 200, 'svc', `k${i}`);
      await waitUntil(() => runners.length === 5, 5_000);
      await new Promise(r => setTimeout(r, 1_500));
      expect(runners).toEqual(['a', 'a', 'a', 'a', 'a']);
    });
  },
);

async function waitUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise(r => setTimeout(r, 10));
  }
}
