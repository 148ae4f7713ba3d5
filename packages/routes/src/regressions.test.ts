// One test per micro_framework bug listed in the reference (PART B, B3), each named after it and
// proving the port does not have it.
import { request } from 'node:http';
import {
  constantBackoff,
  isXError,
  linearBackoff,
  ManualClock,
  memoryMetrics,
  prometheusMetrics,
} from '@x/resilience';
import * as promClient from 'prom-client';
import { describe, expect, it } from 'vitest';
import { asyncBackoff, syncBackoff } from './backoffPolicy.js';
import { bullmqEntrypoint } from './bullmqEntrypoint.js';
import { CallbackRoute } from './callbackRoute.js';
import { httpEntrypoint } from './httpEntrypoint.js';
import { memoryQueue } from './memoryQueue.js';
import { route } from './route.js';
import { Runner } from './runner.js';
import { RunnerContext } from './runnerContext.js';
import { testRoute } from './testRoute.js';
import { timerEntrypoint } from './timerEntrypoint.js';
import { json, translator } from './translator.js';
import { deferred } from './test/helpers.js';

class BaseError extends Error {}
class SubError extends BaseError {}

function post(url: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', headers: { 'content-type': 'application/json' } },
      res => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', c => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('micro_framework bugs, fixed', () => {
  it('bug 1: failures were acked and lost: a failed message now reaches the dead letter (with and without a backoff)', async () => {
    const queue = memoryQueue<string>();
    const r = route({
      entrypoint: queue,
      target: (m: string) => {
        throw new Error(`cannot handle ${m}`);
      },
    });
    await r.start();
    queue.publish('no-backoff');
    await queue.idle();
    expect(queue.deadLetters.list()).toMatchObject([
      {
        message: 'no-backoff',
        reason: 'no-backoff',
        error: { message: 'cannot handle no-backoff' },
        attempts: 1,
      },
    ]);
    await r.stop();

    const clock = new ManualClock();
    const q2 = memoryQueue<string>({ clock });
    const r2 = route({
      entrypoint: q2,
      target: () => {
        throw new Error('still failing');
      },
      backoff: asyncBackoff({ maxRetries: 2, delay: 100 }),
    });
    new RunnerContext({ routes: [r2], clock });
    await r2.start();
    q2.publish('gives-up');
    while (q2.deadLetters.size === 0) await clock.next();
    expect(q2.deadLetters.list()).toMatchObject([
      { message: 'gives-up', reason: 'retries-exhausted', attempts: 3 },
    ]);
    expect(q2.size + q2.delayed + q2.inFlight).toBe(0);
    await r2.stop();
  });

  it('bug 2: translator errors were poison messages requeued forever and leaked a worker slot: now terminal, dead-lettered once, slot freed', async () => {
    const metrics = memoryMetrics();
    let translations = 0;
    const queue = memoryQueue<string>();
    const r = route({
      metricLabel: 'poison',
      entrypoint: queue,
      translators: [
        translator('strict', (s: string) => {
          translations++;
          if (s === 'poison') throw new Error('cannot parse');
          return s;
        }),
      ],
      target: (s: string) => s,
      backoff: syncBackoff({ maxRetries: 5, delay: 0 }),
    });
    const context = new RunnerContext({ routes: [r], maxWorkers: 2, metrics });
    await r.start();
    queue.publish('poison');
    await queue.idle();
    expect(translations).toBe(1);
    expect(queue.deadLetters.list()).toMatchObject([
      { message: 'poison', reason: 'translation', error: { code: 'TRANSLATION_FAILED' } },
    ]);
    expect(context.available).toBe(2);
    expect(r.running).toBe(0);
    expect(metrics.snapshot().gauges['route.tasks.in_flight{context=default,route=poison}']).toBe(
      0,
    );
    queue.publish('fine');
    await queue.idle();
    expect(translations).toBe(2);
    await r.stop();
  });

  it('bug 3: MessageTranslator.set_message was a no-op so JSONTranslator returned the string: json() really decodes', async () => {
    let received: unknown;
    const r = route({
      translators: [json()],
      target: input => {
        received = input;
      },
    });
    await testRoute(r).deliver('{"a": 1}');
    expect(received).toEqual({ a: 1 });
    await testRoute(route({ translators: [json()], target: input => (received = input) })).deliver(
      Buffer.from('[1,2]'),
    );
    expect(received).toEqual([1, 2]);
  });

  it('bug 4: translators did not chain (only the last counted, fed the raw input): each now receives the previous output', async () => {
    const inputs: unknown[] = [];
    const r = route({
      translators: [
        json<{ n: number }>(),
        translator('double', (x: { n: number }) => {
          inputs.push(x);
          return x.n * 2;
        }),
        translator('label', (n: number) => {
          inputs.push(n);
          return `n=${n}`;
        }),
      ],
      target: s => s,
    });
    const d = await testRoute(r).deliver('{"n":21}');
    expect(inputs).toEqual([{ n: 21 }, 42]);
    expect(d.outcome).toMatchObject({ kind: 'success', value: 'n=42' });
  });

  it('bug 5: CallbackRoute was broken (raw callback, not awaited, backoff re-applied, recursive): plain function works, awaited, own retry only, never recursive', async () => {
    const events: string[] = [];
    let mainCalls = 0;
    let callbackCalls = 0;
    const r = new CallbackRoute({
      target: (m: unknown) => {
        mainCalls++;
        throw new Error(`main failed on ${String(m)}`);
      },
      backoff: syncBackoff({ maxRetries: 2, delay: 10 }),
      callbackTarget: async event => {
        callbackCalls++;
        await new Promise(resolve => setImmediate(resolve));
        events.push(
          `callback ${String(event.message)} ${(event.error as Error).message} after ${event.attempts}`,
        );
        if (callbackCalls === 1) throw new Error('callback hiccup');
      },
      callbacks: { backoff: syncBackoff({ maxRetries: 3, delay: 5 }) },
    });
    const d = await testRoute(r).deliver('order-9');
    events.push(`settled ${d.outcome.kind}`);
    expect(mainCalls).toBe(3);
    expect(callbackCalls).toBe(2);
    expect(events).toEqual([
      'callback order-9 main failed on order-9 after 3',
      'callback order-9 main failed on order-9 after 3',
      'settled failure',
    ]);
    expect(d.outcome).toMatchObject({
      kind: 'failure',
      terminal: true,
      reason: 'retries-exhausted',
    });
    expect('callbackError' in d.outcome).toBe(false);
    expect(d.callbacks.map(c => [c.callback, c.attempt, c.failed])).toEqual([
      ['onFailure', 0, true],
      ['onFailure', 1, false],
    ]);
  });

  it('bug 6: exception filtering used the exact type: retryOn now matches subclasses (instanceof)', async () => {
    let calls = 0;
    const r = route({
      target: () => {
        if (++calls < 3) throw new SubError('sub');
        return 'ok';
      },
      backoff: syncBackoff({ maxRetries: 3, delay: 1, retryOn: [BaseError] }),
    });
    expect((await testRoute(r).deliver(1)).outcome).toMatchObject({ kind: 'success', attempts: 3 });
  });

  it('bug 7: units were inconsistent (docs said microseconds, code used ms): every delay is milliseconds', async () => {
    const run = async (delay: ReturnType<typeof constantBackoff>) => {
      let n = 0;
      const r = route({
        target: () => {
          if (n++ < 2) throw new Error('x');
        },
        backoff: syncBackoff({ delay }),
      });
      return (await testRoute(r).deliver(1)).attempts.map(a => a.at);
    };
    expect(await run(constantBackoff(250))).toEqual([0, 250, 500]);
    expect(await run(linearBackoff({ initialMs: 1_000, stepMs: 500 }))).toEqual([0, 1_000, 2_500]);
  });

  it('bug 8: can_retry had an interval gate that refused an immediate sync retry: a 0 ms retry runs at once', async () => {
    let n = 0;
    const r = route({
      target: () => {
        if (n++ === 0) throw new Error('first');
        return 'second';
      },
      backoff: syncBackoff({ maxRetries: 1, delay: 0 }),
    });
    const d = await testRoute(r).deliver(1);
    expect(d.outcome).toMatchObject({ kind: 'success', value: 'second', attempts: 2 });
    expect(d.attempts.map(a => a.at)).toEqual([0, 0]);
  });

  it('bug 9: max_retries=0 meant retry forever: 0 now means no retry, infinity is the explicit "infinite", negatives are rejected', async () => {
    let calls = 0;
    const failing = route({
      target: () => {
        calls++;
        throw new Error('x');
      },
      backoff: syncBackoff({ maxRetries: 0, delay: 1 }),
    });
    const d = await testRoute(failing).deliver(1);
    expect(calls).toBe(1);
    expect(d.outcome).toMatchObject({ kind: 'failure', reason: 'retries-exhausted', attempts: 1 });

    let m = 0;
    const forever = route({
      target: () => {
        if (++m < 50) throw new Error('not yet');
        return m;
      },
      backoff: syncBackoff({ maxRetries: 'infinite', delay: 1 }),
    });
    expect((await testRoute(forever).deliver(1)).outcome).toMatchObject({
      kind: 'success',
      value: 50,
      attempts: 50,
    });
    expect(() => syncBackoff({ maxRetries: -1 })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS' }),
    );
  });

  it('bug 10: the AMQP config key was misspelt (AMPQ_URI) so its default never applied: unknown options fail loudly and the documented default applies', () => {
    let error: unknown;
    try {
      bullmqEntrypoint({ queue: 'orders', conection: 'redis://127.0.0.1:6379' } as never);
    } catch (e) {
      error = e;
    }
    expect(isXError(error, 'INVALID_OPTIONS')).toBe(true);
    expect((error as Error).message).toMatch(/unknown option 'conection'/);
    const entrypoint = bullmqEntrypoint({ queue: 'orders' });
    expect(entrypoint.connection).toMatchObject({
      url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    });
    expect(
      bullmqEntrypoint({ queue: 'orders', connection: 'redis://10.0.0.1:6380' }).connection,
    ).toMatchObject({
      url: 'redis://10.0.0.1:6380',
    });
    expect(() => bullmqEntrypoint({ queue: 'orders', connection: 'amqp://x' })).toThrow(
      /redis:\/\//,
    );
  });

  it('bug 11: the gauge and the counter were both named tasks_number (DuplicateTimeseries on prom-client): four distinct names register', async () => {
    const registry = new promClient.Registry();
    const metrics = prometheusMetrics(promClient, { registry, prefix: '' });
    let n = 0;
    const r = route({
      metricLabel: 'orders',
      target: () => {
        if (n++ === 0) throw new Error('x');
        return 1;
      },
    });
    const runner = new Runner({ routes: [r], metrics });
    await runner.start();
    await r.startRoute(1, 1);
    await r.startRoute(2, 2);
    const text = await registry.metrics();
    expect(text).toContain('route_tasks_total{context="default",route="orders"} 2');
    expect(text).toContain('route_task_failures_total{context="default",route="orders"} 1');
    expect(text).toContain('route_tasks_in_flight{context="default",route="orders"} 0');
    expect(text).toContain('route_task_duration_ms_count{context="default",route="orders"} 2');
    const names = registry.getMetricsAsArray().map(m => m.name);
    expect(new Set(names).size).toBe(names.length);
    await runner.stop();
  });

  it('bug 12: stop() in asyncio mode cancelled in-flight workers: stop() now waits for them and reports them completed', async () => {
    const started = deferred();
    let finished = false;
    const queue = memoryQueue<number>();
    const r = route({
      entrypoint: queue,
      target: async () => {
        started.resolve();
        await new Promise(resolve => setTimeout(resolve, 100));
        finished = true;
        return 'done';
      },
    });
    await r.start();
    queue.publish(1);
    await started.promise;
    const report = await r.stop({ timeoutMs: 5_000 });
    expect(finished).toBe(true);
    expect(report).toMatchObject({ completed: 1, killed: [], returned: [], timedOut: false });
    expect(queue.size + queue.inFlight).toBe(0);
  });

  it('bug 13: one entrypoint per route (AsyncBackOff had to fake a second one): one route serves HTTP, a queue and a timer with one policy', async () => {
    const clock = new ManualClock();
    const http = httpEntrypoint({ path: '/orders', port: 0 });
    const queue = memoryQueue<string>({ name: 'orders-queue', clock });
    const timer = timerEntrypoint({ intervalMs: 1_000 });
    const seen: string[] = [];
    let failHttpOnce = true;
    const metrics = memoryMetrics();
    const r = route({
      metricLabel: 'orders',
      entrypoint: [http, queue, timer],
      translators: [
        translator('describe', (m: unknown, ctx) =>
          Buffer.isBuffer(m)
            ? `http:${m.toString()}`
            : typeof m === 'string'
              ? `queue:${m}`
              : `timer:${String(ctx.meta.source ?? 'tick')}`,
        ),
      ],
      target: (s: string) => {
        if (s.startsWith('http') && failHttpOnce) {
          failHttpOnce = false;
          throw new Error('flaky');
        }
        seen.push(s);
        return s;
      },
      backoff: asyncBackoff({ maxRetries: 2, delay: 500, via: queue }),
    });
    new RunnerContext({ routes: [r], clock, metrics });
    await r.start();
    const response = await post(`${http.url}/orders`, 'hello');
    expect(response.status).toBe(202);
    queue.publish('direct');
    await clock.advance(1_000);
    await queue.idle();
    expect(seen.sort()).toEqual(['http:hello', 'queue:direct', 'timer:tick']);
    expect(metrics.snapshot().counters['route.tasks{context=default,route=orders}']).toBe(4);
    await r.stop();
  });
});
