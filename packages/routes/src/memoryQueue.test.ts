import { isXError, ManualClock } from '@x/resilience';
import { describe, expect, it } from 'vitest';
import { asyncBackoff } from './backoffPolicy.js';
import { memoryQueue } from './memoryQueue.js';
import type { Meta } from './outcome.js';
import { route } from './route.js';
import { RunnerContext } from './runnerContext.js';
import { deferred } from './test/helpers.js';

describe('MemoryQueue', () => {
  it('terminal failure reaches the dead letter and can be replayed', async () => {
    let broken = true;
    const handled: Array<{ message: string; meta: Meta }> = [];
    const queue = memoryQueue<string>({ name: 'orders' });
    const r = route({
      entrypoint: queue,
      target: (message: string, ctx) => {
        if (broken) throw new Error(`bug while handling ${message}`);
        handled.push({ message, meta: { ...ctx.meta } });
        return message;
      },
    });
    await r.start();
    for (const m of ['a', 'b', 'c']) queue.publish(m, { meta: { tenant: 't1' } });
    await queue.idle();
    expect(handled).toEqual([]);
    expect(queue.deadLetters.list().map(d => [d.message, d.reason, d.entrypoint, d.route])).toEqual(
      [
        ['a', 'no-backoff', 'orders', 'Route__anonymous'],
        ['b', 'no-backoff', 'orders', 'Route__anonymous'],
        ['c', 'no-backoff', 'orders', 'Route__anonymous'],
      ],
    );
    expect(queue.deadLetters.list()[0]).toMatchObject({
      error: { name: 'Error', message: 'bug while handling a' },
      attempts: 1,
      meta: { tenant: 't1' },
    });

    broken = false;
    const ids = queue.deadLetters.list().map(d => d.id);
    expect(queue.replay(record => record.message !== 'b')).toBe(2);
    await queue.idle();
    expect(handled.map(h => h.message)).toEqual(['a', 'c']);
    expect(handled[0]!.meta).toEqual({ tenant: 't1', replayOf: ids[0] });
    expect(queue.deadLetters.list().map(d => d.message)).toEqual(['b']);
    await r.stop();
  });

  it('carries async retries as delayed messages on the route clock and acks the original', async () => {
    const clock = new ManualClock();
    const queue = memoryQueue<string>({ clock });
    const times: number[] = [];
    const r = route({
      entrypoint: queue,
      target: (_m: string, ctx) => {
        times.push(clock.now());
        if (ctx.attempt < 2) throw new Error('again');
        return 'ok';
      },
      backoff: asyncBackoff({ maxRetries: 3, delay: 1_000 }),
    });
    new RunnerContext({ routes: [r], clock });
    await r.start();
    queue.publish('x');
    await clock.advance(0);
    expect([queue.size, queue.delayed, queue.inFlight]).toEqual([0, 1, 0]);
    await clock.advance(2_000);
    await queue.idle();
    expect(times).toEqual([0, 1_000, 2_000]);
    expect(queue.deadLetters.size).toBe(0);
    await r.stop();
  });

  it('requeues non-terminal failures (overloaded) and dead-letters them after maxDeliveries', async () => {
    const gate = deferred();
    const queue = memoryQueue<number>({ prefetch: 3, requeueDelayMs: 0, maxDeliveries: 1 });
    const r = route({ entrypoint: queue, target: () => gate.promise });
    new RunnerContext({ routes: [r], maxWorkers: 1, maxQueued: 0 });
    await r.start();
    for (const n of [1, 2, 3]) queue.publish(n);
    await new Promise(resolve => setImmediate(resolve));
    expect(queue.deadLetters.list().map(d => [d.message, d.reason])).toEqual([
      [2, 'max-deliveries'],
      [3, 'max-deliveries'],
    ]);
    expect(isXError(queue.deadLetters.list()[0]!.error, 'BULKHEAD_FULL')).toBe(false);
    expect(queue.deadLetters.list()[0]!.error.code).toBe('BULKHEAD_FULL');
    gate.resolve();
    await queue.idle();
    await r.stop();

    const gate2 = deferred();
    const q2 = memoryQueue<number>({ prefetch: 3, requeueDelayMs: 1, maxDeliveries: 100 });
    const done: number[] = [];
    const r2 = route({
      entrypoint: q2,
      target: async (n: number) => {
        await gate2.promise;
        done.push(n);
      },
    });
    new RunnerContext({ routes: [r2], maxWorkers: 1, maxQueued: 0 });
    await r2.start();
    for (const n of [1, 2, 3]) q2.publish(n);
    await new Promise(resolve => setTimeout(resolve, 20));
    gate2.resolve();
    await q2.idle();
    expect(done.sort()).toEqual([1, 2, 3]);
    expect(q2.deadLetters.size).toBe(0);
    await r2.stop();
  });

  it('stop() drains in-flight work and reports what it handed back', async () => {
    const gate = deferred();
    const started = deferred();
    const done: number[] = [];
    const queue = memoryQueue<number>({ name: 'jobs', prefetch: 3 });
    const r = route({
      metricLabel: 'jobs',
      entrypoint: queue,
      target: async (n: number) => {
        started.resolve();
        await gate.promise;
        done.push(n);
      },
    });
    new RunnerContext({ routes: [r], maxWorkers: 1 });
    await r.start();
    for (const n of [1, 2, 3, 4, 5]) queue.publish(n);
    await started.promise;
    expect([queue.inFlight, queue.size]).toEqual([3, 2]);
    const stopping = r.stop({ timeoutMs: 5_000 });
    await new Promise(resolve => setTimeout(resolve, 20));
    gate.resolve();
    const report = await stopping;
    expect(done).toEqual([1]);
    expect(report.completed).toBe(1);
    expect(report.killed).toEqual([]);
    expect(report.timedOut).toBe(false);
    expect(
      report.returned.map(ref => [
        ref.route,
        ref.entrypoint,
        (ref.entryId as { message: number }).message,
      ]),
    ).toEqual([
      ['jobs', 'jobs', 2],
      ['jobs', 'jobs', 3],
    ]);
    expect([queue.size, queue.inFlight]).toEqual([4, 0]);
  });

  it('a drain timeout kills the stuck worker, requeues its message (counted) and reports it', async () => {
    const started = deferred();
    const queue = memoryQueue<string>({ name: 'stuck' });
    const r = route({
      entrypoint: queue,
      target: () => {
        started.resolve();
        return new Promise(() => {}); // ignores its signal and never settles
      },
    });
    await r.start();
    queue.publish('hang');
    await started.promise;
    const report = await r.stop({ timeoutMs: 50 });
    expect(report.timedOut).toBe(true);
    expect(report.completed).toBe(0);
    expect(report.killed.map(k => (k.entryId as { message: string }).message)).toEqual(['hang']);
    expect(queue.size).toBe(1);
    expect(r.context.available).toBe(r.context.maxWorkers);
  });

  it('is bounded: publish beyond maxLength throws QUEUE_FULL; bad options are INVALID_OPTIONS', async () => {
    const queue = memoryQueue<number>({ maxLength: 2 });
    route({ entrypoint: queue, target: () => 1 });
    queue.publish(1);
    queue.publish(2, { delayMs: 10 });
    expect(() => queue.publish(3)).toThrow(expect.objectContaining({ code: 'QUEUE_FULL' }));
    expect(() => queue.publish(3, { delayMs: -1 })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS' }),
    );
    expect(() => memoryQueue({ prefetch: 0 })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS' }),
    );
    expect(() => memoryQueue({ maxLenght: 3 } as never)).toThrow(/unknown option 'maxLenght'/);
    await queue.close();
  });
});
