// Faults: the @x/routes BullMQ entrypoint, in a real child process, consumes N jobs from a real
// Redis; each job calls a worker-rpc worker (another child process). Mid-run the worker-rpc worker
// is SIGKILLed and restarted (its failed calls retry with backoff), then the consumer itself is
// SIGKILLed and a new one started. Every job must complete at least once: none lost.
import { bullmqEntrypoint } from '@x/routes';
import { freePort, waitFor, type NodeProcess } from '@x/testkit';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { recordFigure } from '../src/figures.js';
import { startFixture } from '../src/fixtureProcess.js';
import { sized } from '../src/profile.js';
import { REDIS_SKIP_REASON, REDIS_URL, uniqueRedisName } from '../src/redis.js';

const JOBS = sized({ quick: 300, long: 5_000 });
/** Time the worker-rpc step of each job takes. */
const JOB_MS = 10;
const SECTION = 'faults: BullMQ entrypoint with worker-rpc, both killed';

const children: NodeProcess[] = [];
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const child of children) await child.kill('SIGKILL');
  for (const cleanup of cleanups) await cleanup().catch(() => undefined);
});

async function start(name: string, args: string[]): Promise<NodeProcess & { ready: string }> {
  const child = await startFixture(name, args, { REDIS_URL: REDIS_URL! });
  children.push(child);
  return child;
}

describe.skipIf(!REDIS_URL)(
  `BullMQ entrypoint loses no job when its consumer and the worker-rpc worker are killed${REDIS_SKIP_REASON ? ` — ${REDIS_SKIP_REASON}` : ''}`,
  () => {
    it(`completes all ${JOBS} jobs at least once across a worker-rpc restart and a consumer SIGKILL`, async () => {
      const queue = uniqueRedisName('noloss');
      const prefix = `${queue}:test`;
      const redis = new Redis(REDIS_URL!);
      const producer = bullmqEntrypoint<{ id: string; ms: number }>({
        queue,
        connection: REDIS_URL!,
      });
      cleanups.push(
        () => producer.obliterate(),
        () => redis.del(`${prefix}:done`, `${prefix}:rpc-failures`),
        () => redis.quit(),
      );
      const doneCount = () => redis.hlen(`${prefix}:done`);

      const ids = Array.from({ length: JOBS }, (_, i) => `job-${i}`);
      for (let i = 0; i < JOBS; i += 250)
        await Promise.all(
          ids.slice(i, i + 250).map(id => producer.publish({ id, ms: JOB_MS }, { jobId: id })),
        );

      const rpcPort = await freePort();
      let rpc = await start('rpcWorker', ['zmq', String(rpcPort)]);
      const startedAt = performance.now();
      const first = await start('bullmqConsumer', [queue, rpc.ready, prefix]);

      // 1. The worker-rpc worker dies and comes back on the same endpoint.
      await waitFor(async () => (await doneCount()) >= JOBS * 0.2, {
        timeoutMs: 60_000,
        intervalMs: 5,
        message: '20% of the jobs done',
      });
      await rpc.kill('SIGKILL');
      rpc = await start('rpcWorker', ['zmq', String(rpcPort)]);

      // 2. The consumer dies mid-run; a new one takes over.
      const atKill = await waitFor(
        async () => {
          const n = await doneCount();
          return n >= JOBS * 0.5 ? n : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 5, message: '50% of the jobs done' },
      );
      await first.kill('SIGKILL');
      const killedAt = performance.now();
      // Jobs the dead consumer held: still locked, redelivered once their lock expires.
      const orphaned = (await producer.counts()).queue.active ?? 0;
      await start('bullmqConsumer', [queue, rpc.ready, prefix]);

      const counts = await waitFor(
        async () => {
          const c = await producer.counts();
          const q = c.queue;
          const pending =
            (q.waiting ?? 0) + (q.active ?? 0) + (q.delayed ?? 0) + (q.prioritized ?? 0);
          return pending === 0 && (await doneCount()) >= JOBS ? c : undefined;
        },
        { timeoutMs: 90_000, intervalMs: 20, message: 'every job settled' },
      );
      const recoveredMs = performance.now() - killedAt;
      const totalMs = performance.now() - startedAt;

      const done = await redis.hgetall(`${prefix}:done`);
      const rpcFailures = await redis.hgetall(`${prefix}:rpc-failures`);
      const lost = ids.filter(id => done[id] === undefined);
      const executions = Object.values(done).reduce((sum, n) => sum + Number(n), 0);
      const duplicates = executions - Object.keys(done).length;

      recordFigure({ section: SECTION, name: 'jobs published', value: JOBS });
      recordFigure({
        section: SECTION,
        name: 'jobs completed at least once / lost',
        value: `${JOBS - lost.length} / ${lost.length}`,
        target: `${JOBS} / 0`,
      });
      recordFigure({
        section: SECTION,
        name: 'duplicate executions (at-least-once)',
        value: `${duplicates} (${orphaned} jobs active, ${atKill} done at the kill)`,
        target: '<= jobs in flight at the kill (16)',
      });
      recordFigure({
        section: SECTION,
        name: 'worker-rpc failures retried by the backoff, by code',
        value: JSON.stringify(rpcFailures),
      });
      recordFigure({
        section: SECTION,
        name: 'consumer SIGKILL → every job settled (ms)',
        value: Math.round(recoveredMs),
        target: 'lock 2 000 ms + stalled check 500 ms + rest of the run',
      });
      recordFigure({
        section: SECTION,
        name: 'whole run (ms), jobs/s',
        value: `${Math.round(totalMs)}, ${Math.round(JOBS / (totalMs / 1000))}`,
      });
      recordFigure({
        section: SECTION,
        name: 'BullMQ completed / failed / dead letters',
        value: `${counts.queue.completed ?? 0} / ${counts.queue.failed ?? 0} / ${counts.deadLetters}`,
        target: `${JOBS} / 0 / 0`,
      });

      expect(orphaned).toBeGreaterThan(0); // the kill really was mid-job
      expect(lost).toEqual([]);
      expect(Object.keys(done).sort()).toEqual([...ids].sort());
      expect(counts.queue.completed).toBe(JOBS);
      expect({ failed: counts.queue.failed ?? 0, deadLetters: counts.deadLetters }).toEqual({
        failed: 0,
        deadLetters: 0,
      });
      // At-least-once: only jobs that were running when the consumer died may run twice.
      expect(duplicates).toBeLessThanOrEqual(16);
      // The worker-rpc kill really hit calls in flight, and they were retried.
      expect(Number(rpcFailures.UNAVAILABLE ?? 0)).toBeGreaterThan(0);
    });
  },
);
