// Issue 14, items 1, 2 and 5 on the composed product: gateway replicas on one Redis share their
// breakers (a circuit one replica opens is open on the others within 100 ms, adopted through
// @x/resilience-redis's pub/sub) and one global edge rate limit (within 10 % across the fleet).
// Real gateway CLIs with their child processes, a real Redis; nothing is mocked.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordFigure } from '../src/figures.js';
import { startGateway, type RunningGateway } from '../src/gateway.js';
import { REDIS_URL, uniqueRedisName } from '../src/redis.js';

const SECTION = 'replicas: shared breakers and rate limits';
const GLOBAL_POINTS = 100;

interface OrdersCircuit {
  readonly key: string;
  readonly state: string;
}

const circuits = async (gw: RunningGateway): Promise<OrdersCircuit[]> =>
  ((await gw.state()) as unknown as { orders: { circuits: OrdersCircuit[] } }).orders.circuits;

describe.skipIf(!REDIS_URL)(
  REDIS_URL
    ? 'replicas share breakers and the global rate limit through Redis'
    : 'replicas share state (SKIPPED: REDIS_URL is not set)',
  () => {
    const prefix = uniqueRedisName('shared');
    const gateways: RunningGateway[] = [];
    let redis: Redis;

    beforeAll(async () => {
      redis = new Redis(REDIS_URL!);
      const config = {
        redis: { prefix },
        modules: {
          catalog: { versions: { v1: { instances: 1 } } },
          reports: { versions: { v1: { instances: 1 } } },
        },
        shards: { count: 1, replicas: 1 },
        // the orders circuits open after 3 failures and stay open for the whole test
        resilience: { orders: { retries: 0, circuitOpenAfter: 3, circuitResetMs: 600_000 } },
        rateLimit: { global: { points: GLOBAL_POINTS, durationMs: 60_000 } },
      };
      // replica a's orders instances fail every request; b's and c's never do
      const envs = [{ ORDERS_FAIL_RATE: '1' }, {}, {}];
      for (const [i, env] of envs.entries())
        gateways.push(
          await startGateway({
            config: { ...config, replicas: { id: `r${i}` } },
            env: { REDIS_URL, ...env },
            readyTimeoutMs: 90_000,
          }),
        );
    }, 300_000);

    afterAll(async () => {
      for (const gw of gateways) await gw.close().catch(() => undefined);
      if (redis) {
        const keys = await redis.keys(`${prefix}*`);
        if (keys.length > 0) await redis.del(...keys);
        redis.disconnect();
      }
    });

    it('a circuit one replica opens is open on the others (adopted through pub/sub)', async () => {
      const [a, b, c] = gateways as [RunningGateway, RunningGateway, RunningGateway];
      // the moment replica a announces its open circuit, seen on the store's channel
      const subscriber = redis.duplicate();
      let announcedAt = 0;
      let announcedKey = '';
      await subscriber.subscribe(`${prefix}:breakers:events`);
      subscriber.on('message', (_channel, message: string) => {
        if (announcedAt === 0 && message.includes('"open"')) {
          announcedAt = performance.now();
          announcedKey = /"key":"([^"]+)"/.exec(message)?.[1] ?? '';
        }
      });
      try {
        // b's and c's orders breakers exist (closed) before a opens: the split spreads ids over versions
        for (const other of [b, c])
          for (let i = 0; i < 12; i++)
            await (await fetch(`${other.url}api/orders/${i + 1}`)).arrayBuffer();
        for (const other of [b, c])
          expect((await circuits(other)).every(x => x.state === 'closed')).toBe(true);
        for (let i = 0; i < 20 && announcedAt === 0; i++) {
          const res = await fetch(`${a.url}api/orders/${i + 1}`);
          await res.arrayBuffer();
        }
        expect(announcedAt, 'replica a never opened an orders circuit').toBeGreaterThan(0);
        expect(announcedKey).toMatch(/^orders\//);
        // poll the other replicas' dashboards until they show the same circuit open
        const adoptedMs: number[] = [];
        for (const other of [b, c]) {
          let open = false;
          while (!open && performance.now() - announcedAt < 5_000) {
            open = (await circuits(other)).some(x => x.key === announcedKey && x.state === 'open');
          }
          expect(open, `${announcedKey} not open on another replica within 5 s`).toBe(true);
          adoptedMs.push(performance.now() - announcedAt);
        }
        const worst = Math.round(Math.max(...adoptedMs));
        recordFigure({
          section: SECTION,
          name: 'circuit opened on one replica, seen open on the other two (dashboard poll included)',
          value: `${adoptedMs.map(ms => Math.round(ms)).join(' ms, ')} ms`,
          target: '<= 100 ms',
        });
        // a generous bound for a busy machine; the figure above is what is compared with 100 ms
        expect(worst).toBeLessThan(2_000);
        // and the adopted circuit fails fast on b: its healthy orders of that version are not
        // called, the route answers from its fallback naming the open circuit
        const answers: string[] = [];
        for (let i = 0; i < 12; i++)
          answers.push(await (await fetch(`${b.url}api/orders/${i + 1}`)).text());
        expect(answers.some(text => text.includes('CIRCUIT_OPEN'))).toBe(true);
      } finally {
        subscriber.disconnect();
      }
    });

    it('one global rate limit holds across the fleet (within 10 %)', async () => {
      // a fresh window: the limit's key for the whole fleet
      const key = `${prefix}:rl:global:all`;
      await redis.del(key);
      const statuses = new Map<number, number>();
      const perReplica = gateways.map(() => ({ ok: 0, limited: 0 }));
      const TOTAL = GLOBAL_POINTS * 3;
      let next = 0;
      const worker = async () => {
        while (next < TOTAL) {
          const i = next++;
          const r = i % gateways.length;
          const res = await fetch(gateways[r]!.url); // the front door: the welcome module
          await res.arrayBuffer();
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (res.status === 200) perReplica[r]!.ok++;
          if (res.status === 429) {
            perReplica[r]!.limited++;
            expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
          }
        }
      };
      await Promise.all(Array.from({ length: 24 }, worker));
      expect(await redis.exists(key), `the limit is counted under ${key}`).toBe(1);
      const admitted = statuses.get(200) ?? 0;
      const limited = statuses.get(429) ?? 0;
      recordFigure({
        section: SECTION,
        name: `global limit ${GLOBAL_POINTS} per window, ${TOTAL} requests over 3 replicas: admitted`,
        value: `${admitted} (${perReplica.map(p => p.ok).join(' + ')}), ${limited} refused with 429`,
        target: `${GLOBAL_POINTS} ± 10 %`,
      });
      expect(admitted + limited).toBe(TOTAL);
      expect(admitted).toBeGreaterThanOrEqual(GLOBAL_POINTS * 0.9);
      expect(admitted).toBeLessThanOrEqual(GLOBAL_POINTS * 1.1);
      // every replica refused some: the count is the fleet's, not each replica's
      for (const p of perReplica) expect(p.limited).toBeGreaterThan(0);
    });
  },
);
