// Two gateway replicas (real CLI processes) on one real Redis: job status is the same on both
// whichever ran the job, each answer names its replica (X-Replica), the dashboard shows the
// fleet, and the scheduled events of a SIGKILLed replica run on the live one, once each.
import { randomBytes } from 'node:crypto';
import { waitFor } from '@x/testkit';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { FleetView } from '../src/replicaFleet.js';
import {
  alive,
  descendants,
  json,
  removeConfigs,
  startGateway,
  testConfig,
  type RunningGateway,
} from './helpers.js';

afterAll(removeConfigs);

const REDIS_URL = process.env.REDIS_URL;

describe.skipIf(!REDIS_URL && !process.env.CI)('replicas on one Redis', () => {
  const prefix = `x-gateway-replicas-${randomBytes(4).toString('hex')}`;
  const running: RunningGateway[] = [];
  const orphans: number[] = [];

  /** A replica named by `replicas.id`, or (`viaEnv`) by `GATEWAY_REPLICA_ID` over another id. */
  const start = async (id: string, viaEnv = false) => {
    const config = testConfig();
    config.redis.prefix = prefix;
    config.replicas = {
      id: viaEnv ? 'overridden' : id,
      publishIntervalMs: 200,
      staleAfterMs: 1_000,
      eventTakeoverMs: 1_000,
    };
    // lighter replicas: one catalog instance holding the one shard key, one reports worker
    config.modules.catalog.versions.v1.instances = 1;
    config.shards = { ...config.shards, count: 1, replicas: 1 };
    config.modules.reports.versions.v1.instances = 1;
    config.resilience.reports.jobRetries = 5; // a loaded machine can time a worker call out
    const gw = await startGateway(config, {
      REDIS_URL,
      ...(viaEnv ? { GATEWAY_REPLICA_ID: id } : {}),
    });
    running.push(gw);
    return gw;
  };

  afterAll(async () => {
    await Promise.all(running.map(gw => gw.process.kill('SIGTERM')));
    for (const pid of orphans) if (alive(pid)) process.kill(pid, 'SIGKILL');
    if (!REDIS_URL) return;
    const redis = new Redis(REDIS_URL);
    for (const pattern of [`bull:${prefix}*`, `${prefix}:*`]) {
      const keys = await redis.keys(pattern);
      if (keys.length) await redis.del(...keys);
    }
    await redis.quit();
  });

  it('job status, X-Replica, the fleet view, and takeover of a killed replica’s events', async () => {
    expect(REDIS_URL, 'REDIS_URL must be set in CI').toBeTruthy();
    const a = await start('replica-a');
    const b = await start('replica-b', true);

    // every answer names the replica that served it
    expect((await fetch(`${a.url}healthz`)).headers.get('x-replica')).toBe('replica-a');
    expect((await fetch(`${b.url}healthz`)).headers.get('x-replica')).toBe('replica-b');

    // 12 jobs submitted to A (both replicas consume the queue): every status readable on B
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await json(`${a.url}api/report-jobs`, {
        method: 'POST',
        body: JSON.stringify({ kind: 'sales', rows: 3, delayMs: 100 }),
      });
      expect(res.status).toBe(202);
      ids.push(res.body.id);
    }
    for (const id of ids) {
      const onB = await waitFor(
        async () => {
          const res = await json(`${b.url}api/report-jobs/${id}`);
          return res.status === 200 && ['done', 'failed'].includes(res.body.state)
            ? res.body
            : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 200, message: `job ${id} not settled on B` },
      );
      expect(onB.error).toBeUndefined();
      const onA = (await json(`${a.url}api/report-jobs/${id}`)).body;
      expect(onA).toEqual(onB); // the same record, whichever replica ran it
      expect(onB).toMatchObject({ kind: 'sales', result: { rows: 3 } });
      expect(onB.attempts).toBeGreaterThanOrEqual(1);
    }
    expect((await json(`${b.url}api/report-jobs/no-such-job`)).status).toBe(404);

    // a scheduled job submitted to A reads "scheduled" on B, with its due time
    const later = await json(`${a.url}api/report-jobs`, {
      method: 'POST',
      body: JSON.stringify({ kind: 'orders', rows: 2, runInMs: 60_000 }),
    });
    const seenOnB = (await json(`${b.url}api/report-jobs/${later.body.id}`)).body;
    expect(seenOnB).toMatchObject({ state: 'scheduled', kind: 'orders' });
    expect(new Date(seenOnB.runAt).toISOString()).toBe(later.body.runAt);

    // the fleet: both replicas, alive, on both dashboards
    const fleetOf = async (gw: RunningGateway) => (await json<FleetView>(`${gw.url}_x/fleet`)).body;
    await waitFor(async () => (await fleetOf(a)).replicas.filter(r => r.alive).length === 2, {
      timeoutMs: 5_000,
      message: 'A never saw B',
    });
    const fleet = await fleetOf(b);
    expect(fleet).toMatchObject({ servedBy: 'replica-b', shared: true });
    expect(fleet.replicas.map(r => [r.id, r.alive, r.self])).toEqual([
      ['replica-a', true, false],
      ['replica-b', true, true],
    ]);
    expect((await b.state()).replica).toBe('replica-b');

    // SIGKILL A with 6 scheduled jobs due in 1.5 s: B runs every one, once
    const due: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await json(`${a.url}api/report-jobs`, {
        method: 'POST',
        body: JSON.stringify({ kind: 'inventory', rows: 1, runInMs: 1_500 }),
      });
      due.push(res.body.id);
    }
    orphans.push(...descendants(a.process.pid!));
    const killedAt = Date.now();
    await a.process.kill('SIGKILL');
    for (const pid of orphans) if (alive(pid)) process.kill(pid, 'SIGKILL');
    for (const id of due)
      await waitFor(
        async () => (await json(`${b.url}api/report-jobs/${id}`)).body.state === 'done',
        { timeoutMs: 60_000, intervalMs: 200, message: `scheduled job ${id} never ran on B` },
      );
    const takeoverMs = Date.now() - killedAt;
    const redis = new Redis(REDIS_URL!);
    try {
      // each was published once (one BullMQ job per id: the job id dedupes) and completed
      for (const id of due) {
        expect(await redis.exists(`bull:${prefix}-reports:${id}`)).toBe(1);
        expect((await json(`${b.url}api/report-jobs/${id}`)).body.state).toBe('done');
      }
      expect(await redis.zrangebyscore(`${prefix}:events:due`, '-inf', Date.now())).toEqual([]);
      expect(await redis.zcard(`${prefix}:events:leased`)).toBe(0);
    } finally {
      await redis.quit();
    }
    expect(takeoverMs).toBeLessThan(30_000); // 1.5 s + takeover 1 s + a sweep, on a busy machine
    // A is gone from the fleet once its key expired
    await waitFor(
      async () => (await fleetOf(b)).replicas.find(r => r.id === 'replica-a')?.alive === false,
      { timeoutMs: 5_000, message: 'B still shows A alive' },
    );
  });
});
