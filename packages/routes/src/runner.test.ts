import { isXError, memoryMetrics } from '@x/resilience';
import { describe, expect, it } from 'vitest';
import type { Dependency } from './dependency.js';
import { memoryQueue } from './memoryQueue.js';
import { route } from './route.js';
import { Runner } from './runner.js';
import { RunnerContext } from './runnerContext.js';
import { deferred } from './test/helpers.js';

function recorder(log: string[], name: string): Dependency<string> {
  return {
    setup: () => void log.push(`${name}.setup`),
    start: () => void log.push(`${name}.start`),
    get: () => name,
    stop: () => void log.push(`${name}.stop`),
    kill: () => void log.push(`${name}.kill`),
  };
}

describe('Runner', () => {
  it('starts shared dependencies once, then every entrypoint; stop() drains all routes under one deadline and returns one report', async () => {
    const log: string[] = [];
    const shared = recorder(log, 'db');
    const fastQueue = memoryQueue<number>({ name: 'fast' });
    const stuckQueue = memoryQueue<number>({ name: 'stuck' });
    const fastStarted = deferred();
    const stuckStarted = deferred();
    const fast = route({
      metricLabel: 'fast',
      entrypoint: fastQueue,
      dependencies: { db: shared },
      target: async () => {
        fastStarted.resolve();
        await new Promise(resolve => setTimeout(resolve, 30));
        return 'ok';
      },
    });
    const stuck = route({
      metricLabel: 'stuck',
      entrypoint: stuckQueue,
      dependencies: { db: shared },
      target: () => {
        stuckStarted.resolve();
        return new Promise(() => {});
      },
    });
    const metrics = memoryMetrics();
    const runner = new Runner({
      contexts: [
        new RunnerContext({ name: 'a', routes: [fast], maxWorkers: 2 }),
        new RunnerContext({ name: 'b', routes: [stuck] }),
      ],
      metrics,
    });
    await runner.start();
    expect(log).toEqual(['db.setup', 'db.start']);
    fastQueue.publish(1);
    stuckQueue.publish(2);
    await Promise.all([fastStarted.promise, stuckStarted.promise]);
    const report = await runner.stop({ timeoutMs: 300 });
    expect(report.timedOut).toBe(true);
    expect(report.completed).toBe(1);
    expect(report.killed).toMatchObject([{ route: 'stuck', entrypoint: 'stuck' }]);
    expect(report.returned).toEqual([]);
    expect(report.durationMs).toBeGreaterThanOrEqual(250);
    expect(log).toEqual(['db.setup', 'db.start', 'db.stop']);
    expect(stuckQueue.size).toBe(1);
    expect(metrics.snapshot().counters['route.tasks{context=a,route=fast}']).toBe(1);
    expect(await runner.stop()).toBe(report);
  });

  it('kill() cancels in-flight work at once (requeued) and kills the dependencies', async () => {
    const log: string[] = [];
    const queue = memoryQueue<number>();
    const started = deferred();
    let aborted: unknown;
    const r = route({
      entrypoint: queue,
      dependencies: { cache: recorder(log, 'cache') },
      target: (_n: number, ctx) =>
        new Promise(() => {
          started.resolve();
          ctx.signal.addEventListener('abort', () => (aborted = ctx.signal.reason));
        }),
    });
    const runner = new Runner({ routes: [r], maxWorkers: 4 });
    await runner.start();
    queue.publish(1);
    await started.promise;
    await runner.kill();
    expect(isXError(aborted, 'CANCELLED')).toBe(true);
    expect(queue.size).toBe(1);
    expect(log).toEqual(['cache.setup', 'cache.start', 'cache.kill']);
    await expect(r.startRoute(1, 1)).rejects.toMatchObject({ code: 'ROUTE_STOPPED' });
  });

  it('hands back work waiting for the budget when stopping', async () => {
    const gate = deferred();
    const r = route({ target: () => gate.promise });
    const runner = new Runner({ routes: [r], maxWorkers: 1 });
    await runner.start();
    const first = r.startRoute('first', 1);
    const second = r.startRoute('second', 2);
    await new Promise(resolve => setImmediate(resolve));
    const stopping = runner.stop({ timeoutMs: 5_000 });
    expect(await second).toMatchObject({ kind: 'cancelled', started: false });
    gate.resolve();
    expect((await first).kind).toBe('success');
    const report = await stopping;
    expect(report.returned).toEqual([
      { route: 'Route__anonymous', entrypoint: 'direct', entryId: 'second' },
    ]);
    expect(report.completed).toBe(1);
  });

  it('rejects bad options with INVALID_OPTIONS', () => {
    const r = route({ target: () => 1 });
    expect(() => new Runner({ contexts: [], routes: [r] })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS' }),
    );
    expect(() => new Runner({ contexts: [new RunnerContext(), new RunnerContext()] })).toThrow(
      /two contexts/,
    );
    expect(() => new Runner({ workers: 3 } as never)).toThrow(/unknown option 'workers'/);
    new RunnerContext({ routes: [r] });
    expect(() => new RunnerContext({ routes: [r] })).toThrow(/already bound/);
  });
});
