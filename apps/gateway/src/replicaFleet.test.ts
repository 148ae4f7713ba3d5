// The fleet view: alone without Redis, every replica on one Redis prefix, a clean stop leaves at
// once, a silent one turns gone after staleAfterMs, and an unreachable Redis never throws.
import { randomBytes } from 'node:crypto';
import { waitFor } from '@x/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';
import { ReplicaFleet, type ReplicaFleetOptions } from './replicaFleet.js';

const REDIS_URL = process.env.REDIS_URL;
const log = createLogger('silent');
const fleets: ReplicaFleet[] = [];
afterAll(async () => {
  await Promise.all(fleets.map(f => f.close()));
});

function fleet(id: string, options: Partial<ReplicaFleetOptions> = {}): ReplicaFleet {
  const f = new ReplicaFleet({
    id,
    redisUrl: undefined,
    prefix: 'unused',
    publishIntervalMs: 100,
    staleAfterMs: 400,
    log,
    summary: () => ({
      url: `http://${id}/`,
      startedAt: Date.now(),
      mode: 'redis',
      ready: true,
      draining: false,
      instances: { ready: 1, total: 1 },
      requests: { total: 0, errors: 0, inFlight: 0 },
      jobs: {},
      pendingEvents: 0,
      openCircuits: 0,
      recentEvents: [{ seq: 1, at: 1, level: 'info', source: 'gateway', message: `${id} up` }],
    }),
    ...options,
  });
  fleets.push(f);
  return f;
}

it('without Redis: this replica alone, not shared', () => {
  const view = fleet('solo').view();
  expect(view).toMatchObject({ servedBy: 'solo', shared: false, error: undefined });
  expect(view.replicas.map(r => [r.id, r.alive, r.self])).toEqual([['solo', true, true]]);
});

it('an unreachable Redis: not shared, says why, never throws', async () => {
  const f = fleet('lonely', { redisUrl: 'redis://127.0.0.1:1' });
  await f.tick();
  await waitFor(() => f.view().error !== undefined, { timeoutMs: 5_000 });
  expect(f.view()).toMatchObject({ shared: false });
  expect(f.view().replicas.map(r => r.id)).toEqual(['lonely']);
});

describe.skipIf(!REDIS_URL && !process.env.CI)('on one Redis', () => {
  it('sees every replica; a clean stop leaves at once, a silent one turns gone', async () => {
    const prefix = `x-fleet-test-${randomBytes(4).toString('hex')}`;
    const a = fleet('a', { redisUrl: REDIS_URL, prefix });
    const b = fleet('b', { redisUrl: REDIS_URL, prefix });
    const c = fleet('c', { redisUrl: REDIS_URL, prefix });
    const alive = (f: ReplicaFleet) =>
      f
        .view()
        .replicas.filter(r => r.alive)
        .map(r => r.id);
    // each replica reads the fleet on its own tick: wait until a and b both see all three
    await waitFor(() => alive(a).length === 3 && alive(b).length === 3, { timeoutMs: 5_000 });
    expect(a.view()).toMatchObject({ servedBy: 'a', shared: true });
    expect(b.view().replicas.find(r => r.id === 'a')).toMatchObject({
      url: 'http://a/',
      recentEvents: [{ message: 'a up' }],
      self: false,
      alive: true,
    });
    await c.close(); // a clean stop removes its entry
    await waitFor(() => !a.view().replicas.some(r => r.id === 'c'), { timeoutMs: 5_000 });
    // b stops publishing without removing its entry (like a SIGKILL): gone after staleAfterMs
    (b as unknown as { client: { disconnect(): void } }).client.disconnect();
    await waitFor(() => a.view().replicas.find(r => r.id === 'b')?.alive === false, {
      timeoutMs: 5_000,
    });
    expect(alive(a)).toEqual(['a']);
  });
});
