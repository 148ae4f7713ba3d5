import { isXError } from '@x/resilience';
import { waitFor } from '@x/testkit';
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { asyncBackoff } from './backoffPolicy.js';
import { bullmqEntrypoint, loadBullmq, type BullmqEntrypoint } from './bullmqEntrypoint.js';
import { route, type Route } from './route.js';
import { RunnerContext } from './runnerContext.js';
import { json, schema } from './translator.js';
import { deferred, httpRequest, startFixture } from './test/helpers.js';
import { httpEntrypoint } from './httpEntrypoint.js';
import { describeRedis, REDIS_URL, uniqueName } from './test/redis.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

/** A consumer entrypoint on a fresh queue; its queues are deleted from Redis after the test. */
function entrypoint<M>(
  queue = uniqueName('q'),
  options: Partial<Parameters<typeof bullmqEntrypoint>[0]> = {},
): BullmqEntrypoint<M> {
  const ep = bullmqEntrypoint<M>({
    queue,
    connection: REDIS_URL!,
    lockDurationMs: 2_000,
    stalledIntervalMs: 1_000,
    requeueDelayMs: 50,
    ...options,
  });
  cleanups.push(() => ep.obliterate());
  return ep;
}

function track<T extends Route<any, any, any, any>>(r: T): T {
  cleanups.push(() => r.stop({ timeoutMs: 2_000 }));
  return r;
}

async function jobState(queueName: string, id: string): Promise<{ state: string; job: any }> {
  const queue = new Queue(queueName, { connection: { url: REDIS_URL! } });
  try {
    // State first: a job read before its state could miss a completion that lands in between.
    const state = await queue.getJobState(id);
    return { state: state === 'unknown' ? 'missing' : state, job: await queue.getJob(id) };
  } finally {
    await queue.close();
  }
}

describe('bullmqEntrypoint without Redis', () => {
  it('loads bullmq lazily: a missing optional peer is OPTIONAL_DEPENDENCY_MISSING', async () => {
    const error = await loadBullmq('bullmq-is-not-installed-here').catch((e: unknown) => e);
    expect(isXError(error, 'OPTIONAL_DEPENDENCY_MISSING')).toBe(true);
    expect((error as Error).message).toMatch(/npm install bullmq/);
    expect(typeof (await loadBullmq()).Worker).toBe('function');
  });

  it('rejects bad options with INVALID_OPTIONS', () => {
    for (const options of [
      {},
      { queue: '' },
      { queue: 'a:b' },
      { queue: 'q', deadLetterQueue: 'q' },
      { queue: 'q', concurrency: 0 },
      { queue: 'q', lockDurationMs: -5 },
    ])
      expect(() => bullmqEntrypoint(options as never)).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTIONS' }),
      );
  });
});

describeRedis('bullmqEntrypoint (real Redis)', () => {
  it('completes a job with the target result only after the outcome is settled', async () => {
    const ep = entrypoint<{ n: number }>();
    const r = track(
      route({
        entrypoint: ep,
        translators: [json<{ n: number }>()],
        target: ({ n }, ctx) => ({ doubled: n * 2, meta: ctx.meta }),
      }),
    );
    await r.start();
    const id = await ep.publish({ n: 21 }, { meta: { tenant: 't1' } });
    const done = await waitFor(async () => {
      const s = await jobState(ep.queueName, id);
      return s.state === 'completed' ? s : undefined;
    });
    expect(done.job.returnvalue).toEqual({ doubled: 42, meta: { tenant: 't1' } });
  });

  it('asynchronous backoff moves the same job to the delayed set, then it succeeds', async () => {
    const ep = entrypoint<string>();
    const seen: Array<{ id: string; attempt: number; at: number }> = [];
    const failed = deferred();
    const r = track(
      route({
        entrypoint: ep,
        target: (_m: string, ctx) => {
          seen.push({
            id: (ctx.entryId as { id: string }).id,
            attempt: ctx.attempt,
            at: Date.now(),
          });
          if (ctx.attempt < 2) {
            failed.resolve();
            throw new Error('transient');
          }
          return 'ok';
        },
        backoff: asyncBackoff({ maxRetries: 3, delay: 300 }),
      }),
    );
    await r.start();
    const id = await ep.publish('m');
    await failed.promise;
    await waitFor(async () => (await jobState(ep.queueName, id)).state === 'delayed', {
      timeoutMs: 2_000,
    });
    const done = await waitFor(async () => {
      const s = await jobState(ep.queueName, id);
      return s.state === 'completed' ? s : undefined;
    });
    expect(done.job.returnvalue).toBe('ok');
    expect(done.job.data.meta.backoff.retryCount).toBe(2);
    expect(seen.map(s => [s.id, s.attempt])).toEqual([
      [id, 0],
      [id, 1],
      [id, 2],
    ]);
    expect(seen[1]!.at - seen[0]!.at).toBeGreaterThanOrEqual(280);
    expect(seen[2]!.at - seen[1]!.at).toBeGreaterThanOrEqual(280);
  });

  it('terminal failure reaches the dead-letter queue and can be replayed', async () => {
    const ep = entrypoint<string>();
    let broken = true;
    const handled: Array<{ m: string; replayOf: unknown }> = [];
    const r = track(
      route({
        metricLabel: 'billing',
        entrypoint: ep,
        target: (m: string, ctx) => {
          if (broken) throw new Error(`cannot bill ${m}`);
          handled.push({ m, replayOf: ctx.meta.replayOf });
        },
      }),
    );
    await r.start();
    const first = await ep.publish('a');
    await ep.publish('b');
    const letters = await waitFor(async () => {
      const list = await ep.deadLetters();
      return list.length === 2 ? list : undefined;
    });
    expect(letters.map(l => [l.message, l.reason, l.route, l.error.message])).toEqual([
      ['a', 'no-backoff', 'billing', 'cannot bill a'],
      ['b', 'no-backoff', 'billing', 'cannot bill b'],
    ]);
    const failedJob = await jobState(ep.queueName, first);
    expect(failedJob.state).toBe('failed');
    expect(failedJob.job.attemptsMade).toBe(1);

    broken = false;
    expect(await ep.replay(l => l.message === 'b')).toBe(1);
    await waitFor(() => handled.length === 1);
    expect(handled).toEqual([{ m: 'b', replayOf: 'dl-2' }]);
    expect((await ep.deadLetters()).map(l => l.message)).toEqual(['a']);
    expect((await ep.counts()).deadLetters).toBe(1);
  });

  it('job(id) reads the state BullMQ keeps in Redis, from another entrypoint on the same queue', async () => {
    const ep = entrypoint<{ n: number }>();
    // a second entrypoint, never started (like another gateway replica): reads only
    const reader = bullmqEntrypoint<{ n: number }>({ queue: ep.queueName, connection: REDIS_URL! });
    cleanups.push(() => reader.close());
    const release = deferred();
    const r = track(
      route({
        entrypoint: ep,
        target: async ({ n }: { n: number }) => {
          if (n < 0) throw Object.assign(new Error('negative'), { code: 'BAD_N' });
          await release.promise;
          return { doubled: n * 2 };
        },
      }),
    );
    expect(await reader.job('nope')).toBeUndefined();
    const id = await ep.publish({ n: 21 }, { jobId: 'job-21' });
    expect(id).toBe('job-21');
    await r.start();
    const running = await waitFor(async () => {
      const info = await reader.job(id);
      return info?.state === 'active' ? info : undefined;
    });
    expect(running).toMatchObject({ id, message: { n: 21 }, retries: 0, result: undefined });
    release.resolve();
    const done = await waitFor(async () => {
      const info = await reader.job(id);
      return info?.state === 'completed' ? info : undefined;
    });
    expect(done.result).toEqual({ doubled: 42 });
    expect(done.finishedAt).toBeGreaterThanOrEqual(done.createdAt);
    const bad = await ep.publish({ n: -1 });
    const failed = await waitFor(async () => {
      const info = await reader.job(bad);
      return info?.state === 'failed' ? info : undefined;
    });
    expect(failed.deadLetter?.error).toMatchObject({ code: 'BAD_N', message: 'negative' });
    expect(failed.failedReason).toContain('negative');
  });

  it('an HTTP body whose retry is deferred to BullMQ arrives as the same bytes (Buffers survive the queue)', async () => {
    const queue = entrypoint<Buffer>();
    const http = httpEntrypoint({ port: 0 });
    const received: Buffer[] = [];
    const r = track(
      route({
        entrypoint: [http, queue],
        target: (body: Buffer, ctx) => {
          received.push(body);
          if (ctx.attempt === 0) throw new Error('payment provider down');
          return 'charged';
        },
        backoff: asyncBackoff({ via: queue, delay: 50 }),
      }),
    );
    await r.start();
    const bytes = Buffer.from([0, 255, 10, 13, 0x7b]);
    expect((await httpRequest(http.url, { body: bytes })).status).toBe(202);
    await waitFor(() => received.length === 2);
    expect(Buffer.isBuffer(received[1])).toBe(true);
    expect(received[1]!.equals(bytes)).toBe(true);
  });

  it('a translation failure is dead-lettered once: BullMQ attempts never retry it (one retry owner)', async () => {
    const queueName = uniqueName('poison');
    const ep = entrypoint<unknown>(queueName);
    let translations = 0;
    const r = track(
      route({
        entrypoint: ep,
        translators: [
          (x: unknown) => {
            translations++;
            return x;
          },
          schema((x: unknown): x is { ok: true } => (x as { ok?: unknown })?.ok === true),
        ],
        target: () => 'never',
      }),
    );
    await r.start();
    const producer = new Queue(queueName, { connection: { url: REDIS_URL! } });
    const job = await producer.add('raw', { ok: false }, { attempts: 5, backoff: 10 });
    await producer.close();
    await waitFor(async () => (await jobState(queueName, job.id!)).state === 'failed');
    const { job: failed } = await jobState(queueName, job.id!);
    expect(failed.attemptsMade).toBe(1);
    expect(translations).toBe(1);
    expect(await ep.deadLetters()).toMatchObject([
      { reason: 'translation', message: { ok: false }, error: { code: 'TRANSLATION_FAILED' } },
    ]);
  });

  it('stop() hands back a job waiting for the worker budget: it goes back to the queue and is processed later', async () => {
    const queueName = uniqueName('handback');
    const ep = entrypoint<number>(queueName, { concurrency: 2 });
    const gate = deferred();
    const started = deferred();
    const r = route({
      metricLabel: 'slow',
      entrypoint: ep,
      target: async (n: number) => {
        started.resolve();
        await gate.promise;
        return n;
      },
    });
    new RunnerContext({ routes: [r], maxWorkers: 1 });
    await r.start();
    const a = await ep.publish(1);
    const b = await ep.publish(2);
    await started.promise;
    await waitFor(() => r.inFlight === 2);
    const stopping = r.stop({ timeoutMs: 5_000 });
    await waitFor(async () => (await jobState(queueName, b)).state === 'waiting');
    gate.resolve();
    const report = await stopping;
    expect(report.completed).toBe(1);
    expect(report.returned.map(ref => (ref.entryId as { id: string }).id)).toEqual([b]);
    expect((await jobState(queueName, a)).state).toBe('completed');

    const ep2 = bullmqEntrypoint<number>({ queue: queueName, connection: REDIS_URL! });
    const again = track(route({ entrypoint: ep2, target: (n: number) => n * 10 }));
    await again.start();
    const done = await waitFor(async () => {
      const s = await jobState(queueName, b);
      return s.state === 'completed' ? s : undefined;
    });
    expect(done.job.returnvalue).toBe(20);
  });

  it('a worker process killed mid-job does not lose the job: stalled redelivery after the lock expires', async () => {
    const queueName = uniqueName('killed');
    const producer = entrypoint<{ order: number }>(queueName);
    const child = await startFixture('bullmqWorker', [queueName], { REDIS_URL: REDIS_URL! });
    cleanups.push(() => child.kill('SIGKILL'));
    const id = await producer.publish({ order: 7 });
    await waitFor(() => child.stdout().includes(`STARTED ${id}`), {
      timeoutMs: 10_000,
      message: 'the child never started the job',
    });
    expect((await jobState(queueName, id)).state).toBe('active');
    await child.kill('SIGKILL');

    const seen: Array<{ message: unknown; stalled: number }> = [];
    const consumer = bullmqEntrypoint<{ order: number }>({
      queue: queueName,
      connection: REDIS_URL!,
      lockDurationMs: 1_000,
      stalledIntervalMs: 300,
    });
    const r = track(
      route({
        entrypoint: consumer,
        target: (message: { order: number }, ctx) => {
          seen.push({
            message,
            stalled: (ctx.entryId as { stalledCounter: number }).stalledCounter,
          });
          return 'recovered';
        },
      }),
    );
    await r.start();
    const done = await waitFor(
      async () => {
        const s = await jobState(queueName, id);
        return s.state === 'completed' ? s : undefined;
      },
      { timeoutMs: 15_000, message: 'the job was not redelivered' },
    );
    expect(done.job.returnvalue).toBe('recovered');
    expect(seen).toEqual([{ message: { order: 7 }, stalled: 1 }]);
  });
});
