// Faults: three gateway replicas (the CLI, as a user starts it) on one real Redis behind nginx
// (Debian's binary, round robin, `proxy_next_upstream error timeout`, `max_fails=1`). Under load
// (job submits, scheduled jobs, status reads, front-door requests) one replica is SIGKILLed:
// requests in flight on it may fail, every request sent after it succeeds, every accepted job
// completes exactly once, every scheduled job of the dead replica runs on a live one within the
// default takeover time, and every job's status reads the same from every live replica.
//
// The breaker-sharing (100 ms) and global-rate-limit (within 10 %) cases are in
// sharedFleetState.test.ts.
import { Queue, QueueEvents } from 'bullmq';
import { Agent, request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { recordFigure } from '../src/figures.js';
import { startGateway, type RunningGateway } from '../src/gateway.js';
import { nginxBinary, startNginx, type RunningNginx } from '../src/nginx.js';
import { sized } from '../src/profile.js';
import { REDIS_URL, uniqueRedisName } from '../src/redis.js';

const SECTION = 'faults: one of three gateway replicas killed behind nginx';
/** Load before and after the kill. */
const BEFORE_MS = sized({ quick: 3_000, long: 15_000 });
const AFTER_MS = sized({ quick: 6_000, long: 30_000 });
const CLIENTS = 6;
/** When, after the kill, the fleet view is read (staleAfterMs is 2 s). */
const FLEET_CHECK_MS = 4_000;
/** The gateway's default `replicas.eventTakeoverMs` and the requirement on it. */
const TAKEOVER_REQUIRED_MS = 10_000;
/**
 * A job active on the killed replica is redelivered once BullMQ sees it stalled (its lock,
 * 30 s, expires; the stalled check runs every 30 s): up to about a minute.
 */
const JOBS_SETTLE_MS = 120_000;
/** Starting three gateways and nginx, the load, the settling, the checks. */
const TEST_TIMEOUT_MS = 90_000 + BEFORE_MS + AFTER_MS + JOBS_SETTLE_MS;

const NGINX = nginxBinary();
if (!NGINX && process.env.CI)
  throw new Error('nginx must be installed in CI (.ci/run installs it)');
const skip = !REDIS_URL || !NGINX;

const gateways: RunningGateway[] = [];
let nginx: RunningNginx | undefined;
const orphans: number[] = [];
const closers: Array<() => Promise<unknown>> = [];
const agent = new Agent({ connections: 32, headersTimeout: 30_000, bodyTimeout: 30_000 });
afterAll(async () => {
  for (const close of closers) await close().catch(() => undefined);
  await nginx?.close();
  await Promise.all(gateways.map(gw => gw.close()));
  for (const pid of orphans) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await agent.close();
});

interface Call {
  readonly kind: 'submit' | 'schedule' | 'status' | 'front-door' | 'health';
  readonly start: number;
  readonly end: number;
  readonly status: number;
  readonly replica: string | undefined;
  readonly body: any;
}

async function call(base: string, kind: Call['kind'], path: string, body?: unknown): Promise<Call> {
  const start = Date.now();
  try {
    const res = await request(`${base}${path}`, {
      dispatcher: agent,
      method: body === undefined ? 'GET' : 'POST',
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.body.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON
    }
    const replica = res.headers['x-replica'];
    return {
      kind,
      start,
      end: Date.now(),
      status: res.statusCode,
      replica: typeof replica === 'string' ? replica : undefined,
      body: parsed,
    };
  } catch (error) {
    return { kind, start, end: Date.now(), status: 0, replica: undefined, body: String(error) };
  }
}

/** Per job id: `added` (epoch ms, from the event id), `active` and `completed` counts, `failed`. */
async function watchJobs(queueName: string) {
  const connection = { url: REDIS_URL! };
  const events = new QueueEvents(queueName, { connection, lastEventId: '0-0' });
  const added = new Map<string, number>();
  const active = new Map<string, number>();
  const completed = new Map<string, number>();
  const failed = new Set<string>();
  const bump = (map: Map<string, number>, id: string) => map.set(id, (map.get(id) ?? 0) + 1);
  events.on('added', ({ jobId }, id) => {
    if (!added.has(jobId)) added.set(jobId, Number(id.split('-')[0]));
  });
  events.on('active', ({ jobId }) => bump(active, jobId));
  events.on('completed', ({ jobId }) => bump(completed, jobId));
  events.on('failed', ({ jobId }) => failed.add(jobId));
  await events.waitUntilReady();
  return {
    added,
    active,
    completed,
    failed,
    close: async () => {
      await events.close();
      const queue = new Queue(queueName, { connection });
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
    },
  };
}

describe.skipIf(skip)(
  skip
    ? `replicas behind nginx (SKIPPED: ${!REDIS_URL ? 'REDIS_URL is not set' : 'nginx is not installed'})`
    : 'replicas behind nginx (3 gateways, 1 Redis, SIGKILL one)',
  () => {
    it(
      'loses and repeats nothing when one replica is SIGKILLed under load',
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const prefix = uniqueRedisName('fleet');
        const config = {
          redis: { prefix },
          // light replicas: the test is about the gateways, not their backends
          modules: {
            catalog: { versions: { v1: { instances: 1 } } },
            reports: { versions: { v1: { instances: 1 } } },
          },
          shards: { count: 1, replicas: 1 },
          resilience: { reports: { jobRetries: 5 } },
          replicas: { publishIntervalMs: 500, staleAfterMs: 2_000 }, // takeover: the default
        };
        for (const id of ['r1', 'r2', 'r3'])
          gateways.push(
            await startGateway({
              config: { ...config, replicas: { ...config.replicas, id } },
              env: { REDIS_URL },
              readyTimeoutMs: 90_000, // three gateways with their children on a busy 2-core machine
            }),
          );
        nginx = await startNginx({ upstreams: gateways.map(gw => `127.0.0.1:${gw.port}`) });
        const base = nginx.url;
        const [victim, ...survivors] = gateways as [RunningGateway, ...RunningGateway[]];

        const jobEvents = await watchJobs(`${prefix}-reports`);
        closers.push(() => jobEvents.close());

        // ---- load: CLIENTS loops through nginx until stopped --------------------------------
        const calls: Call[] = [];
        const accepted: Array<{ id: string; replica: string; runAt: number | undefined }> = [];
        let stop = false;
        const loops = Array.from({ length: CLIENTS }, async (_, client) => {
          for (let i = 0; !stop; i++) {
            let c: Call;
            switch ((i + client) % 5) {
              case 0:
                c = await call(base, 'submit', 'api/report-jobs', { kind: 'sales', rows: 2 });
                break;
              case 1:
                c = await call(base, 'schedule', 'api/report-jobs', {
                  kind: 'orders',
                  rows: 1,
                  runInMs: 1_000 + ((i * 397) % 3_000),
                });
                break;
              case 2: {
                const known = accepted[(i * 7919) % Math.max(1, accepted.length)];
                c = known
                  ? await call(base, 'status', `api/report-jobs/${known.id}`)
                  : await call(base, 'health', 'healthz');
                break;
              }
              case 3:
                c = await call(base, 'front-door', ''); // the builtin welcome module
                break;
              default:
                c = await call(base, 'health', 'healthz');
            }
            calls.push(c);
            if ((c.kind === 'submit' || c.kind === 'schedule') && c.status === 202)
              accepted.push({
                id: c.body.id,
                replica: c.replica ?? '?',
                runAt: c.body.runAt ? Date.parse(c.body.runAt) : undefined,
              });
          }
        });
        await new Promise(r => setTimeout(r, BEFORE_MS));
        const victimPids = await victim.instancePids().catch(() => [] as number[]);
        orphans.push(...victimPids);
        const killAt = Date.now();
        await victim.process.kill('SIGKILL');
        // requests sent until the process is gone (and its sockets closed) count as in flight
        const goneAt = Date.now();
        for (const pid of victimPids) {
          try {
            process.kill(pid, 'SIGKILL'); // its children die with it, as on a lost host
          } catch {
            // already gone
          }
        }
        await new Promise(r => setTimeout(r, FLEET_CHECK_MS));
        // the fleet, read through nginx (any live replica): under load, 4 s after the kill: r1
        // shown gone (staleAfterMs 2 s), not yet forgotten (12 × 2 s)
        const fleetAfterKill = (await call(base, 'status', '_x/fleet')).body as {
          replicas: Array<{ id: string; alive: boolean }>;
        };
        expect(fleetAfterKill.replicas.map(r => [r.id, r.alive])).toEqual([
          ['r2', true],
          ['r3', true],
          ['r1', false],
        ]);
        await new Promise(r => setTimeout(r, AFTER_MS - FLEET_CHECK_MS));
        stop = true;
        await Promise.all(loops);

        // ---- requests ---------------------------------------------------------------------
        const failed = (c: Call) => c.status === 0 || c.status >= 500;
        const before = calls.filter(c => c.end < killAt);
        const inFlight = calls.filter(c => c.start < goneAt && c.end >= killAt);
        const after = calls.filter(c => c.start >= goneAt);
        const servedBefore = new Set(before.map(c => c.replica));
        const servedAfter = new Set(after.filter(c => c.start > killAt + 100).map(c => c.replica));
        recordFigure({ section: SECTION, name: 'requests through nginx', value: calls.length });
        recordFigure({
          section: SECTION,
          name: 'requests failed before the kill',
          value: before.filter(failed).length,
          target: '0',
        });
        recordFigure({
          section: SECTION,
          name: 'requests in flight at the kill / failed',
          value: `${inFlight.length} / ${inFlight.filter(failed).length}`,
          target: 'may fail',
        });
        recordFigure({
          section: SECTION,
          name: 'requests sent after the kill / failed',
          value: `${after.length} / ${after.filter(failed).length}`,
          target: '0 failed',
        });
        expect(before.filter(failed).map(c => [c.kind, c.status, c.body])).toEqual([]);
        expect(after.filter(failed).map(c => [c.kind, c.status, c.body])).toEqual([]);
        expect(after.length).toBeGreaterThan(50);
        expect([...servedBefore].sort()).toEqual(['r1', 'r2', 'r3']);
        expect(servedAfter.has('r1')).toBe(false);

        // ---- jobs: every accepted one completes, once ------------------------------------------
        // Executions are counted from BullMQ's event stream (read from its start): one
        // `completed` per job id is one execution; BullMQ itself keeps only the last 1 000
        // completed jobs (`keepCompleted`), so their records cannot be the count.
        const ids = accepted.map(a => a.id);
        expect(new Set(ids).size).toBe(ids.length);
        const settleBy = Date.now() + JOBS_SETTLE_MS;
        const settled = () =>
          ids.every(id => jobEvents.completed.has(id) || jobEvents.failed.has(id));
        while (!settled() && Date.now() < settleBy) await new Promise(r => setTimeout(r, 500));
        await new Promise(r => setTimeout(r, 2_000)); // a second completion would show by now
        const open = accepted.filter(
          a => !jobEvents.completed.has(a.id) && !jobEvents.failed.has(a.id),
        );
        const failedJobs = ids.filter(
          id => jobEvents.failed.has(id) && !jobEvents.completed.has(id),
        );
        const twice = ids.filter(id => (jobEvents.completed.get(id) ?? 0) > 1);
        const restarted = ids.filter(id => (jobEvents.active.get(id) ?? 0) > 1);
        recordFigure({
          section: SECTION,
          name: 'jobs accepted (202), of them scheduled / by the killed replica',
          value: `${accepted.length}, ${accepted.filter(a => a.runAt).length} / ${accepted.filter(a => a.replica === 'r1').length}`,
        });
        recordFigure({
          section: SECTION,
          name: 'accepted jobs lost / failed / completed twice',
          value: `${open.length} / ${failedJobs.length} / ${twice.length}`,
          target: '0 / 0 / 0',
        });
        recordFigure({
          section: SECTION,
          name: 'jobs started more than once (a retry, or redelivered after the kill)',
          value: restarted.length,
        });
        expect(
          open.map(a => ({
            ...a,
            added: jobEvents.added.has(a.id),
            active: jobEvents.active.get(a.id),
          })),
        ).toEqual([]);
        expect(failedJobs).toEqual([]);
        expect(twice).toEqual([]);

        // a scheduled job is published by its event: the job's add time is when the event ran
        const lateness = accepted
          .filter(a => a.runAt !== undefined)
          .map(a => ({ ...a, late: jobEvents.added.get(a.id)! - a.runAt! }));
        const orphaned = lateness.filter(a => a.replica === 'r1' && a.runAt! > killAt);
        const orphanLateness = orphaned.map(a => a.late);
        const ownLateness = lateness.filter(a => a.replica !== 'r1').map(a => a.late);
        recordFigure({
          section: SECTION,
          name: 'scheduled jobs of the killed replica due after the kill: count / max ms late',
          value: `${orphaned.length} / ${orphanLateness.length ? Math.max(...orphanLateness) : '-'}`,
          target: `<= ${TAKEOVER_REQUIRED_MS} ms (takeover 3 000 ms + one sweep)`,
        });
        recordFigure({
          section: SECTION,
          name: 'scheduled jobs of live replicas: max ms late',
          value: ownLateness.length ? Math.max(...ownLateness) : '-',
        });
        expect(orphaned.length).toBeGreaterThan(0);
        expect(Math.max(...orphanLateness)).toBeLessThanOrEqual(TAKEOVER_REQUIRED_MS);
        expect(Math.min(...orphanLateness)).toBeGreaterThanOrEqual(0);

        // ---- status: the same from every live replica (the newest jobs: BullMQ keeps 1 000) ----
        for (const a of accepted.slice(-25)) {
          const answers = await Promise.all(
            survivors.map(gw => call(gw.url, 'status', `api/report-jobs/${a.id}`)),
          );
          expect(answers.map(x => x.status)).toEqual(survivors.map(() => 200));
          expect(answers[1]!.body).toEqual(answers[0]!.body);
          expect(answers[0]!.body.state).toBe('done');
        }

        // ---- the fleet: the dashboard shows r1 gone, r2 and r3 alive --------------------------
        const fleet = (await call(base, 'status', '_x/fleet')).body as {
          servedBy: string;
          replicas: Array<{ id: string; alive: boolean }>;
        };
        expect(['r2', 'r3']).toContain(fleet.servedBy);
        // r1 is shown gone, or already forgotten (12 × staleAfterMs after its last write)
        expect(fleet.replicas.filter(r => r.alive).map(r => r.id)).toEqual(['r2', 'r3']);
        expect(fleet.replicas.filter(r => !r.alive).map(r => r.id)).toEqual(
          fleet.replicas.length === 3 ? ['r1'] : [],
        );
      },
    );

    // The shared breakers (100 ms) and the fleet-wide rate limit (10 %) are measured in
    // sharedFleetState.test.ts.
  },
);
