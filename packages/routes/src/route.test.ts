import { exponentialBackoff, isXError, ManualClock, memoryMetrics } from '@x/resilience';
import { describe, expect, it } from 'vitest';
import { asyncBackoff, syncBackoff } from './backoffPolicy.js';
import type { Dependency } from './dependency.js';
import { httpEntrypoint } from './httpEntrypoint.js';
import { memoryQueue } from './memoryQueue.js';
import { Route, route } from './route.js';
import { Runner } from './runner.js';
import { RunnerContext } from './runnerContext.js';
import { testRoute } from './testRoute.js';
import { json, schema } from './translator.js';
import { RouteWorker } from './routeWorker.js';
import type { WorkerContext } from './workerContext.js';
import { deferred, delay } from './test/helpers.js';
import { captureWarnings } from '@x/testkit';
import { timerEntrypoint } from './timerEntrypoint.js';

class TransientError extends Error {}
class FatalError extends Error {}

/** The synchronous error of `make`, or undefined. */
function thrown(make: () => unknown): (Error & { code?: string }) | undefined {
  try {
    make();
  } catch (error) {
    return error as Error & { code?: string };
  }
  return undefined;
}

describe('Route: durations (issue 12)', () => {
  it('timeoutMs 3e9 means no timeout: the attempt is not aborted early, no TimeoutOverflowWarning', async () => {
    const warnings = captureWarnings();
    const queue = memoryQueue<number>();
    const done = deferred<boolean>();
    const r = route({
      entrypoint: queue,
      timeoutMs: 3e9,
      target: async (_m: number, ctx) => {
        await delay(60);
        done.resolve(ctx.signal.aborted);
        return 1;
      },
    });
    expect(r.timeoutMs).toBe(Infinity);
    await r.start();
    queue.publish(1);
    expect(await done.promise).toBe(false);
    await r.stop({ timeoutMs: 1e12 });
    expect((await warnings.stop()).map(w => w.name)).not.toContain('TimeoutOverflowWarning');
  });

  it('timeoutMs "300", NaN and -1 are INVALID_OPTIONS naming the field, the expected and the received value', () => {
    for (const [value, received] of [
      ['300', '"300"'],
      [Number.NaN, 'NaN'],
      [-1, '-1'],
    ] as const) {
      const error = thrown(() => route({ target: () => 1, timeoutMs: value as never }));
      expect(error?.code).toBe('INVALID_OPTIONS');
      expect(error!.message).toBe(
        `timeoutMs: expected a number of ms >= 1 and <= 2147483647, or Infinity (above: no limit), received ${received}`,
      );
    }
    expect(thrown(() => timerEntrypoint({ intervalMs: 3e9 }))?.message).toBe(
      'intervalMs: expected a number of ms >= 1 and <= 2147483647, received 3000000000',
    );
    expect(thrown(() => memoryQueue({ requeueDelayMs: '10' as never }))?.code).toBe(
      'INVALID_OPTIONS',
    );
    expect(thrown(() => memoryQueue().publish(1, { delayMs: 3e9 }))?.message).toMatch(
      /^delayMs: expected .* received 3000000000$/,
    );
    expect(thrown(() => syncBackoff({ delay: '5' as never }))?.message).toMatch(
      /^delay: expected .* received "5"$/,
    );
  });
});

describe('Route', () => {
  it('runs a function target with the translated message and a worker context', async () => {
    let seen: { input: unknown; ctx: WorkerContext } | undefined;
    const r = route({
      translators: [json<{ a: number }>()],
      target: function handleOrder(input, ctx) {
        seen = { input, ctx };
        return input.a + 1;
      },
    });
    const t = testRoute(r);
    const d = await t.deliver('{"a":41}', { tenant: 't1', callIdStack: ['parent.1'] });
    expect(d.outcome).toEqual({ kind: 'success', value: 42, attempts: 1 });
    expect(seen!.input).toEqual({ a: 41 });
    expect(seen!.ctx.attempt).toBe(0);
    expect(seen!.ctx.meta.tenant).toBe('t1');
    expect(seen!.ctx.route).toBe('Route__handleOrder');
    expect(seen!.ctx.callId.startsWith('Route__handleOrder.')).toBe(true);
    expect(seen!.ctx.callIdStack).toEqual(['parent.1', seen!.ctx.callId]);
    expect(seen!.ctx.signal).toBeInstanceOf(AbortSignal);
    expect(seen!.ctx.signal.aborted).toBe(false);
    expect(r.metricLabel).toBe('Route__handleOrder');
  });

  it('a class target gets a new instance per worker, its dependencies as properties, and methodName (default call)', async () => {
    const instances = new Set<object>();
    const db: Dependency<string> = { get: () => 'db-handle' };
    class Orders {
      db?: string;
      call(input: number) {
        instances.add(this);
        return `${this.db}:${input}`;
      }
      other(input: number) {
        return -input;
      }
    }
    const r = new Route<number, number, string>({ target: Orders, dependencies: { db } });
    const t = testRoute(r);
    expect((await t.deliver(1)).outcome).toMatchObject({ kind: 'success', value: 'db-handle:1' });
    expect((await t.deliver(2)).outcome).toMatchObject({ kind: 'success', value: 'db-handle:2' });
    expect(instances.size).toBe(2);
    expect(r.metricLabel).toBe('Route__Orders.call');
    const other = new Route({ target: Orders, methodName: 'other' });
    expect((await testRoute(other).deliver(5)).outcome).toMatchObject({ value: -5 });
    expect(() => new Route({ target: Orders, methodName: 'missing' })).toThrow(/no method missing/);
  });

  it('a message that fails twice then succeeds: sync backoff, the delays observed on a fake clock', async () => {
    let calls = 0;
    const r = route({
      target: () => {
        if (++calls <= 2) throw new TransientError(`attempt ${calls}`);
        return 'done';
      },
      backoff: syncBackoff({
        maxRetries: 3,
        delay: exponentialBackoff({ initialMs: 100, jitter: 'none' }),
      }),
    });
    const t = testRoute(r, { clock: new ManualClock(1_000) });
    const d = await t.deliver('m');
    expect(d.outcome).toEqual({ kind: 'success', value: 'done', attempts: 3 });
    expect(d.delays).toEqual([100, 200]);
    expect(d.attempts.map(a => [a.attempt, a.at, a.failed])).toEqual([
      [0, 1_000, true],
      [1, 1_100, true],
      [2, 1_300, false],
    ]);
    expect(d.retries.every(r => r.mode === 'sync')).toBe(true);
    expect(d.settledAt).toBe(1_300);
  });

  it('a message that fails twice then succeeds: async backoff republishes it, the delays observed on a fake clock', async () => {
    const attempts: number[] = [];
    const r = route({
      target: (_m: unknown, ctx) => {
        attempts.push(ctx.attempt);
        if (ctx.attempt < 2) throw new TransientError('not yet');
        return ctx.meta.backoff;
      },
      backoff: asyncBackoff({
        maxRetries: 5,
        delay: exponentialBackoff({ initialMs: 1_000, jitter: 'none' }),
      }),
    });
    const t = testRoute(r);
    const d = await t.deliver({ id: 7 });
    expect(d.outcomes.map(o => o.kind)).toEqual(['deferred', 'deferred', 'success']);
    expect(d.outcomes[0]).toMatchObject({
      kind: 'deferred',
      attempt: 1,
      delayMs: 1_000,
      retryAt: 1_000,
      via: 'testRoute',
    });
    expect(d.delays).toEqual([1_000, 2_000]);
    expect(d.attempts.map(a => a.at)).toEqual([0, 1_000, 3_000]);
    expect(attempts).toEqual([0, 1, 2]);
    expect(d.outcome).toMatchObject({ kind: 'success', attempts: 3, value: { retryCount: 2 } });
  });

  it('exponential backoff with full jitter draws from the injected random source', async () => {
    const r = route({
      target: () => {
        throw new TransientError('always');
      },
      backoff: syncBackoff({
        maxRetries: 3,
        delay: exponentialBackoff({ initialMs: 100, jitter: 'full', random: () => 0.5 }),
      }),
    });
    const d = await testRoute(r).deliver(1);
    expect(d.delays).toEqual([50, 100, 200]);
    expect(d.outcome).toMatchObject({
      kind: 'failure',
      terminal: true,
      reason: 'retries-exhausted',
      attempts: 4,
    });
  });

  it('abortOn and retryOn decide what is retried (instanceof or predicate)', async () => {
    const make = (error: Error) =>
      route({
        target: () => {
          throw error;
        },
        backoff: syncBackoff({
          maxRetries: 2,
          delay: 10,
          retryOn: [TransientError],
          abortOn: e => (e as Error).message === 'stop',
        }),
      });
    expect((await testRoute(make(new TransientError('x'))).deliver(1)).attempts).toHaveLength(3);
    const fatal = await testRoute(make(new FatalError('x'))).deliver(1);
    expect(fatal.attempts).toHaveLength(1);
    expect(fatal.outcome).toMatchObject({
      kind: 'failure',
      terminal: true,
      reason: 'not-retryable',
    });
    expect((await testRoute(make(new TransientError('stop'))).deliver(1)).attempts).toHaveLength(1);
    const unrecoverable = Object.assign(new Error('bullmq says no'), {
      name: 'UnrecoverableError',
    });
    expect((await testRoute(make(unrecoverable)).deliver(1)).outcome).toMatchObject({
      reason: 'not-retryable',
    });
  });

  it('without a backoff a failure is terminal at once', async () => {
    const r = route({
      target: () => {
        throw new TransientError('x');
      },
    });
    const d = await testRoute(r).deliver(1);
    expect(d.outcome).toMatchObject({
      kind: 'failure',
      terminal: true,
      reason: 'no-backoff',
      attempts: 1,
    });
    expect(d.deadLetter).toMatchObject({
      reason: 'no-backoff',
      error: { name: 'Error', message: 'x' },
      attempts: 1,
    });
  });

  it('callbacks: onSuccess / onFailure / onSettled run once per settled message, awaited, with their events', async () => {
    const log: string[] = [];
    const r = route({
      translators: [json<{ n: number }>()],
      target: input => {
        if (input.n < 0) throw new FatalError('negative');
        return input.n * 2;
      },
      backoff: syncBackoff({ maxRetries: 1, delay: 5, retryOn: [TransientError] }),
      callbacks: {
        onSuccess: async event => {
          await Promise.resolve();
          log.push(
            `success ${JSON.stringify(event.input)} -> ${event.result} after ${event.attempts}`,
          );
        },
        onFailure: async event => {
          await new Promise(resolve => setImmediate(resolve));
          log.push(
            `failure ${String(event.message)} ${(event.error as Error).message} ${event.reason}`,
          );
        },
        onSettled: event => {
          log.push(`settled ${event.outcome.kind}`);
        },
      },
    });
    const t = testRoute(r);
    const ok = await t.deliver('{"n":2}');
    expect(log).toEqual(['success {"n":2} -> 4 after 1', 'settled success']);
    expect(ok.callbacks.map(c => c.callback)).toEqual(['onSuccess', 'onSettled']);
    log.length = 0;
    await t.deliver('{"n":-1}');
    expect(log).toEqual(['failure {"n":-1} negative not-retryable', 'settled failure']);
    log.length = 0;
    await t.deliver('not json');
    expect(log).toHaveLength(2);
    expect(log[0]).toMatch(/^failure not json json: .+ translation$/);
    expect(log[1]).toBe('settled failure');
  });

  it('a failing callback is retried by its own policy only and never re-triggers a callback', async () => {
    let callbackCalls = 0;
    let targetCalls = 0;
    const r = route({
      target: () => {
        targetCalls++;
        throw new TransientError('main');
      },
      backoff: syncBackoff({ maxRetries: 2, delay: 10 }),
      callbacks: {
        onFailure: () => {
          callbackCalls++;
          throw new Error('callback broke');
        },
        backoff: syncBackoff({ maxRetries: 1, delay: 1_000 }),
      },
    });
    const d = await testRoute(r).deliver('x');
    expect(targetCalls).toBe(3);
    expect(callbackCalls).toBe(2);
    expect(d.callbacks.map(c => [c.attempt, c.at])).toEqual([
      [0, 20],
      [1, 1_020],
    ]);
    expect(d.outcome).toMatchObject({
      kind: 'failure',
      terminal: true,
      reason: 'retries-exhausted',
    });
    expect((d.outcome as { callbackError?: Error }).callbackError?.message).toBe('callback broke');
    expect(() =>
      route({ target: () => 1, callbacks: { onFailure: () => 1, backoff: asyncBackoff() } }),
    ).toThrow(/syncBackoff/);
  });

  it('dependencies follow the nameko lifecycle and are injected as ctx.deps', async () => {
    const calls: string[] = [];
    const db: Dependency<{ query(): string }> = {
      setup: () => void calls.push('setup'),
      start: () => void calls.push('start'),
      workerSetup: ctx => void calls.push(`workerSetup ${ctx.attempt}`),
      get: () => {
        calls.push('get');
        return { query: () => 'rows' };
      },
      workerResult: (_ctx, result, error) =>
        void calls.push(`workerResult ${String(result)} ${String(error)}`),
      workerTeardown: () => void calls.push('workerTeardown'),
      stop: () => void calls.push('stop'),
    };
    const queue = memoryQueue<string>();
    const r = route({
      entrypoint: queue,
      dependencies: { db },
      target: (_m: string, ctx) => {
        calls.push('target');
        return ctx.deps.db.query();
      },
    });
    await r.start();
    queue.publish('go');
    await queue.idle();
    const report = await r.stop();
    expect(calls).toEqual([
      'setup',
      'start',
      'workerSetup 0',
      'get',
      'target',
      'workerResult rows undefined',
      'workerTeardown',
      'stop',
    ]);
    expect(report).toMatchObject({ returned: [], completed: 0, killed: [], timedOut: false });
  });

  it('a dependency failing in get() fails the worker with DEPENDENCY_FAILED, retried like any error', async () => {
    let gets = 0;
    const flaky: Dependency<number> = {
      get: () => {
        if (++gets === 1) throw new Error('pool exhausted');
        return 1;
      },
    };
    const r = route({
      dependencies: { flaky },
      target: (_m: unknown, ctx) => ctx.deps.flaky,
      backoff: syncBackoff({ delay: 10 }),
    });
    const d = await testRoute(r).deliver(0);
    expect(isXError(d.attempts[0]!.error, 'DEPENDENCY_FAILED')).toBe(true);
    expect(d.outcome).toMatchObject({ kind: 'success', value: 1, attempts: 2 });
  });

  it('timeoutMs aborts ctx.signal and fails the attempt with TIMEOUT', async () => {
    let aborted: unknown;
    const r = route({
      timeoutMs: 1_000,
      target: (_m: unknown, ctx) =>
        new Promise((_resolve, reject) =>
          ctx.signal.addEventListener('abort', () => {
            aborted = ctx.signal.reason;
            reject(ctx.signal.reason as Error);
          }),
        ),
    });
    const d = await testRoute(r).deliver(1);
    expect(isXError(aborted, 'TIMEOUT')).toBe(true);
    expect(d.attempts[0]).toMatchObject({ at: 0, durationMs: 1_000, failed: true });
    expect(d.outcome).toMatchObject({ kind: 'failure', terminal: true, reason: 'no-backoff' });
  });

  it('the context budget (maxWorkers) and per-route concurrency bound the workers running at once', async () => {
    let running = 0;
    let peak = 0;
    const peaks: Record<string, number> = { a: 0, b: 0 };
    const perRoute: Record<string, number> = { a: 0, b: 0 };
    const make = (name: 'a' | 'b') =>
      route({
        metricLabel: name,
        concurrency: 2,
        target: async () => {
          running++;
          perRoute[name]!++;
          peak = Math.max(peak, running);
          peaks[name] = Math.max(peaks[name]!, perRoute[name]!);
          await new Promise(resolve => setTimeout(resolve, 5));
          running--;
          perRoute[name]!--;
        },
      });
    const a = make('a');
    const b = make('b');
    const runner = new Runner({ contexts: [new RunnerContext({ routes: [a, b], maxWorkers: 3 })] });
    await runner.start();
    const outcomes = await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => a.startRoute(i, i)),
      ...Array.from({ length: 10 }, (_, i) => b.startRoute(i, i)),
    ]);
    expect(outcomes.every(o => o.kind === 'success')).toBe(true);
    expect(peak).toBe(3);
    expect(peaks.a).toBeLessThanOrEqual(2);
    expect(peaks.b).toBeLessThanOrEqual(2);
    expect(a.context.available).toBe(3);
    await runner.stop();
  });

  it('a full worker queue is a non-terminal failure (overloaded), the target never runs', async () => {
    const gate = deferred();
    let calls = 0;
    const r = route({
      target: async () => {
        calls++;
        await gate.promise;
      },
    });
    new RunnerContext({ routes: [r], maxWorkers: 1, maxQueued: 0 });
    const first = r.startRoute('a', 1);
    const second = await r.startRoute('b', 2);
    expect(second).toMatchObject({
      kind: 'failure',
      terminal: false,
      reason: 'overloaded',
      attempts: 0,
    });
    expect(isXError((second as { error: unknown }).error, 'BULKHEAD_FULL')).toBe(true);
    gate.resolve();
    expect((await first).kind).toBe('success');
    expect(calls).toBe(1);
  });

  it('startRoute after stop() rejects with ROUTE_STOPPED', async () => {
    const r = route({ target: () => 1 });
    await r.stop();
    await expect(r.startRoute(1, 1)).rejects.toMatchObject({ code: 'ROUTE_STOPPED' });
    expect(r.stopped).toBe(true);
  });

  it('the overridable steps: workerClass, getWorkerInstance and handleFinishedWorker', async () => {
    class UpperWorker extends RouteWorker<string, string, string> {
      protected override translate(): string {
        return this.args.toUpperCase();
      }
    }
    class ValidatingRoute extends Route<string, string, string> {
      override async handleFinishedWorker(
        delivery: Parameters<Route['handleFinishedWorker']>[0],
        finished: Parameters<Route<string, string, string>['handleFinishedWorker']>[1],
      ) {
        const outcome = await super.handleFinishedWorker(delivery, finished);
        return outcome.kind === 'success' && outcome.value === 'BAD'
          ? {
              kind: 'failure' as const,
              error: new FatalError('rejected'),
              terminal: true,
              reason: 'not-retryable' as const,
              attempts: 1,
              meta: {},
            }
          : outcome;
      }
    }
    const r = new ValidatingRoute({ target: (s: string) => s, workerClass: UpperWorker });
    const t = testRoute(r);
    expect((await t.deliver('ok')).outcome).toMatchObject({ kind: 'success', value: 'OK' });
    expect((await t.deliver('bad')).outcome).toMatchObject({
      kind: 'failure',
      reason: 'not-retryable',
    });
    expect(r.metricLabel).toBe('ValidatingRoute__anonymous');
  });

  it('records route.tasks, route.tasks.in_flight, route.task.failures and route.task.duration tagged by context and route', async () => {
    const metrics = memoryMetrics();
    let n = 0;
    const r = route({
      metricLabel: 'orders',
      target: () => {
        if (n++ === 0) throw new TransientError('x');
        return 1;
      },
      backoff: syncBackoff({ delay: 0 }),
    });
    const t = testRoute(r, { metrics });
    await t.deliver(1);
    const snap = metrics.snapshot();
    const tags = '{context=test,route=orders}';
    expect(snap.counters[`route.tasks${tags}`]).toBe(2);
    expect(snap.counters[`route.task.failures${tags}`]).toBe(1);
    expect(snap.counters[`route.retries${tags}`]).toBe(1);
    expect(snap.gauges[`route.tasks.in_flight${tags}`]).toBe(0);
    expect(snap.histograms[`route.task.duration${tags}`]?.count).toBe(2);
  });

  it('an async backoff needs an entrypoint that can republish (else INVALID_OPTIONS), or an explicit via', async () => {
    expect(() =>
      route({ entrypoint: httpEntrypoint(), target: () => 1, backoff: asyncBackoff() }),
    ).toThrow(/cannot republish/);
    const queue = memoryQueue();
    const r = route({
      entrypoint: httpEntrypoint(),
      target: () => 1,
      backoff: asyncBackoff({ via: queue }),
    });
    expect(r.backoff?.via).toBe(queue);
  });

  it('rejects bad options with typed errors', () => {
    const bad: Array<() => unknown> = [
      () => new Route({ target: 5 as never }),
      () => new Route({ target: () => 1, concurrency: 0 }),
      () => new Route({ target: () => 1, timeoutMs: -1 }),
      () => new Route({ target: () => 1, translators: [{} as never] }),
      () => new Route({ target: () => 1, backoff: {} as never }),
      () => new Route({ target: () => 1, colour: 'red' } as never),
      () => new Route({ target: () => 1, entrypoint: {} as never }),
      () => new Route({ target: () => 1, dependencies: { db: {} as never } }),
      () => syncBackoff({ maxRetries: -1 }),
      () => syncBackoff({ maxRetries: 1.5 }),
      () => syncBackoff({ delay: Number.NaN }),
      () => syncBackoff({ retryOn: 'TypeError' as never }),
      () => new RunnerContext({ maxWorkers: 0 }),
    ];
    for (const make of bad) {
      let error: unknown;
      try {
        make();
      } catch (e) {
        error = e;
      }
      expect(isXError(error, 'INVALID_OPTIONS'), String(make)).toBe(true);
    }
  });

  it('schema() validates a zod-like, Standard Schema or type-guard schema as a translator', async () => {
    const isOrder = (x: unknown): x is { id: number } =>
      typeof (x as { id?: unknown })?.id === 'number';
    const r = route({ translators: [json(), schema(isOrder)], target: o => o.id });
    const t = testRoute(r);
    expect((await t.deliver('{"id":3}')).outcome).toMatchObject({ kind: 'success', value: 3 });
    expect((await t.deliver('{"id":"3"}')).outcome).toMatchObject({
      kind: 'failure',
      reason: 'translation',
    });
  });
});
