import { describe, expect, it } from 'vitest';
import { ManualClock } from './manualClock.js';
import { sleep } from './clock.js';
import { retry } from './retry.js';
import { retryBudget } from './retryBudget.js';
import { timeout } from './timeout.js';
import { pipeline } from './pipeline.js';
import { constantBackoff, exponentialBackoff } from './backoff.js';
import {
  AbortedError,
  BulkheadFullError,
  CircuitOpenError,
  HttpError,
  RateLimitedError,
  RetryBudgetExhaustedError,
  TimeoutError,
} from './errors.js';
import type { PolicyEvent } from './policy.js';

function track<T>(promise: Promise<T>) {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    value => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

/** A task failing with `error` the first `failures` times, then answering 'ok'; records call times. */
function flaky(
  clock: ManualClock,
  failures: number,
  error: () => unknown = () => new Error('flaky'),
) {
  const calls: Array<{ at: number; attempt: number }> = [];
  const task = (ctx: { attempt: number }) => {
    calls.push({ at: clock.now(), attempt: ctx.attempt });
    if (calls.length <= failures) throw error();
    return 'ok';
  };
  return { calls, task };
}

describe('retry', () => {
  it('maxRetries counts retries: 2 retries means 3 calls', async () => {
    const clock = new ManualClock();
    const { calls, task } = flaky(clock, Infinity);
    const p = track(retry({ maxRetries: 2, backoff: constantBackoff(0), clock }).execute(task));
    await clock.advance(0);
    expect(p.error).toMatchObject({ message: 'flaky' });
    expect(calls.map(c => c.attempt)).toEqual([0, 1, 2]);
  });

  it('resolves with the first success and numbers attempts', async () => {
    const clock = new ManualClock();
    const { calls, task } = flaky(clock, 2);
    const p = track(retry({ maxRetries: 5, backoff: constantBackoff(10), clock }).execute(task));
    await clock.advance(20);
    expect(p.value).toBe('ok');
    expect(calls).toEqual([
      { at: 0, attempt: 0 },
      { at: 10, attempt: 1 },
      { at: 20, attempt: 2 },
    ]);
  });

  it('defaults to 3 retries', async () => {
    const clock = new ManualClock();
    const { calls, task } = flaky(clock, Infinity);
    const p = track(retry({ backoff: constantBackoff(1), clock }).execute(task));
    await clock.advance(10);
    expect(p.settled).toBe(true);
    expect(calls).toHaveLength(4);
  });

  it('waits a constant backoff between tries', async () => {
    const clock = new ManualClock();
    const { calls, task } = flaky(clock, 1);
    const p = track(retry({ backoff: constantBackoff(100), clock }).execute(task));
    await clock.advance(99);
    expect(calls).toHaveLength(1);
    expect(p.settled).toBe(false);
    await clock.advance(1);
    expect(calls).toHaveLength(2);
    expect(p.value).toBe('ok');
  });

  it('waits exponentially growing delays without jitter', async () => {
    const clock = new ManualClock();
    const { calls, task } = flaky(clock, 3);
    const p = track(
      retry({ backoff: exponentialBackoff({ jitter: 'none', initialMs: 100 }), clock }).execute(
        task,
      ),
    );
    await clock.advance(10_000);
    expect(p.value).toBe('ok');
    expect(calls.map(c => c.at)).toEqual([0, 100, 300, 700]);
  });

  it('abort during the backoff sleep rejects promptly and tries no more', async () => {
    const clock = new ManualClock();
    const { calls, task } = flaky(clock, Infinity);
    const controller = new AbortController();
    const p = track(
      retry({ backoff: constantBackoff(10_000), clock }).execute(task, controller.signal),
    );
    await clock.advance(5);
    expect(calls).toHaveLength(1);
    expect(clock.pending).toBe(1); // the backoff sleep
    controller.abort(new Error('caller gave up'));
    await clock.advance(0); // no time passes
    expect(p.error).toBeInstanceOf(AbortedError);
    await clock.advance(20_000);
    expect(calls).toHaveLength(1);
  });

  it('an aborted context cancels the backoff sleep at once', async () => {
    const clock = new ManualClock();
    const { calls, task } = flaky(clock, Infinity);
    const controller = new AbortController();
    const context = {
      signal: controller.signal,
      attempt: 0,
      deadline: Infinity,
      endpoint: undefined,
    };
    const p = track(retry({ backoff: constantBackoff(10_000), clock }).run(task, context));
    await clock.advance(5);
    expect(clock.pending).toBe(1); // sleeping
    const reason = new Error('enclosing layer aborted');
    controller.abort(reason);
    await clock.advance(0);
    expect(p.error).toBe(reason);
    expect(clock.pending).toBe(0);
    await clock.advance(20_000);
    expect(calls).toHaveLength(1);
  });

  it('gives up with reason aborted when the context is aborted inside a pipeline', async () => {
    const clock = new ManualClock();
    const policy = retry({ backoff: constantBackoff(50), clock });
    const events: PolicyEvent[] = [];
    policy.onEvent(e => events.push(e));
    const controller = new AbortController();
    let calls = 0;
    const p = track(
      policy.execute(ctx => {
        calls++;
        return new Promise((_, reject) =>
          ctx.signal.addEventListener('abort', () => reject(new Error('stopped'))),
        );
      }, controller.signal),
    );
    await clock.advance(0);
    controller.abort();
    await clock.advance(100);
    expect(p.error).toBeInstanceOf(AbortedError);
    expect(calls).toBe(1);
    expect(events).toEqual([
      expect.objectContaining({ type: 'giveUp', reason: 'aborted', attempt: 0 }),
    ]);
  });

  it.each([
    ['CIRCUIT_OPEN', () => new CircuitOpenError('k', 100)],
    ['BULKHEAD_FULL', () => new BulkheadFullError(1, 0)],
    ['RATE_LIMITED', () => new RateLimitedError(10)],
    ['ABORTED', () => new AbortedError()],
    ['operation TIMEOUT', () => new TimeoutError(100, 'operation')],
    ['attempt TIMEOUT (retryOnTimeout off)', () => new TimeoutError(100, 'attempt')],
  ])('never retries %s', async (_name, make) => {
    const clock = new ManualClock();
    const { calls, task } = flaky(clock, Infinity, make);
    const policy = retry({ backoff: constantBackoff(0), clock });
    const events: PolicyEvent[] = [];
    policy.onEvent(e => events.push(e));
    const p = track(policy.execute(task));
    await clock.advance(0);
    expect(p.settled).toBe(true);
    expect(calls).toHaveLength(1);
    expect(events).toEqual([expect.objectContaining({ type: 'giveUp', reason: 'notRetryable' })]);
  });

  it('retries an attempt timeout with retryOnTimeout', async () => {
    const clock = new ManualClock();
    const { calls, task } = flaky(clock, 1, () => new TimeoutError(100, 'attempt'));
    const p = track(
      retry({ backoff: constantBackoff(0), retryOnTimeout: true, clock }).execute(task),
    );
    await clock.advance(0);
    expect(p.value).toBe('ok');
    expect(calls).toHaveLength(2);
  });

  it('idempotent: false retries only never-sent failures', async () => {
    const clock = new ManualClock();
    const refused = flaky(clock, 1, () =>
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
    );
    const p1 = track(
      retry({ backoff: constantBackoff(0), idempotent: false, clock }).execute(refused.task),
    );
    await clock.advance(0);
    expect(p1.value).toBe('ok');
    expect(refused.calls).toHaveLength(2);

    // the code may sit on the cause (undici)
    const wrapped = flaky(
      clock,
      1,
      () => new Error('fetch failed', { cause: { code: 'ENOTFOUND' } }),
    );
    const p2 = track(
      retry({ backoff: constantBackoff(0), idempotent: false, clock }).execute(wrapped.task),
    );
    await clock.advance(0);
    expect(p2.value).toBe('ok');

    const reset = flaky(clock, 1, () =>
      Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
    );
    const p3 = track(
      retry({ backoff: constantBackoff(0), idempotent: false, clock }).execute(reset.task),
    );
    await clock.advance(0);
    expect(p3.error).toMatchObject({ code: 'ECONNRESET' });
    expect(reset.calls).toHaveLength(1);

    const plain = flaky(clock, 1);
    const p4 = track(
      retry({ backoff: constantBackoff(0), idempotent: false, clock }).execute(plain.task),
    );
    await clock.advance(0);
    expect(p4.error).toMatchObject({ message: 'flaky' });
    expect(plain.calls).toHaveLength(1);
  });

  it('does not retry an HttpError of a non-idempotent request, retries an idempotent 503, not a 400', async () => {
    const clock = new ManualClock();
    const post = flaky(
      clock,
      1,
      () => new HttpError(503, 'POST', 'http://h/x', {}, '', undefined, false),
    );
    const p1 = track(retry({ backoff: constantBackoff(0), clock }).execute(post.task));
    await clock.advance(0);
    expect(p1.error).toMatchObject({ code: 'HTTP_ERROR', status: 503 });
    expect(post.calls).toHaveLength(1);

    const get = flaky(
      clock,
      1,
      () => new HttpError(503, 'GET', 'http://h/x', {}, '', undefined, true),
    );
    const p2 = track(retry({ backoff: constantBackoff(0), clock }).execute(get.task));
    await clock.advance(0);
    expect(p2.value).toBe('ok');
    expect(get.calls).toHaveLength(2);

    const bad = flaky(
      clock,
      1,
      () => new HttpError(400, 'GET', 'http://h/x', {}, '', undefined, true),
    );
    const p3 = track(retry({ backoff: constantBackoff(0), clock }).execute(bad.task));
    await clock.advance(0);
    expect(p3.error).toMatchObject({ status: 400 });
    expect(bad.calls).toHaveLength(1);
  });

  it('honours retryAfterMs over a shorter backoff, and gives up beyond maxRetryAfterMs', async () => {
    const clock = new ManualClock();
    const slow = flaky(clock, 1, () => new HttpError(503, 'GET', 'http://h/x', {}, '', 500, true));
    const p1 = track(retry({ backoff: constantBackoff(10), clock }).execute(slow.task));
    await clock.advance(499);
    expect(slow.calls).toHaveLength(1);
    await clock.advance(1);
    expect(p1.value).toBe('ok');
    expect(slow.calls.map(c => c.at)).toEqual([0, 500]);

    const ignoring = flaky(
      clock,
      1,
      () => new HttpError(503, 'GET', 'http://h/x', {}, '', 500, true),
    );
    const start = clock.now();
    const p2 = track(
      retry({ backoff: constantBackoff(10), respectRetryAfter: false, clock }).execute(
        ignoring.task,
      ),
    );
    await clock.advance(10);
    expect(p2.value).toBe('ok');
    expect(ignoring.calls.map(c => c.at - start)).toEqual([0, 10]);

    const tooLong = flaky(
      clock,
      1,
      () => new HttpError(503, 'GET', 'http://h/x', {}, '', 60_000, true),
    );
    const policy = retry({ backoff: constantBackoff(10), maxRetryAfterMs: 30_000, clock });
    const events: PolicyEvent[] = [];
    policy.onEvent(e => events.push(e));
    const p3 = track(policy.execute(tooLong.task));
    await clock.advance(0);
    expect(p3.error).toMatchObject({ status: 503 });
    expect(tooLong.calls).toHaveLength(1);
    expect(events).toEqual([expect.objectContaining({ type: 'giveUp', reason: 'deadline' })]);
  });

  it('emits retry and giveUp events', async () => {
    const clock = new ManualClock();
    const policy = retry({ maxRetries: 2, backoff: constantBackoff(25), clock });
    const events: PolicyEvent[] = [];
    policy.onEvent(e => events.push(e));
    const errors = [new Error('e0'), new Error('e1'), new Error('e2')];
    let n = 0;
    const p = track(
      policy.execute(() => {
        throw errors[n++];
      }),
    );
    await clock.advance(100);
    expect(p.error).toBe(errors[2]);
    expect(events).toEqual([
      { type: 'retry', attempt: 1, delayMs: 25, error: errors[0] },
      { type: 'retry', attempt: 2, delayMs: 25, error: errors[1] },
      { type: 'giveUp', attempt: 2, error: errors[2], reason: 'maxRetries' },
    ]);
  });

  it('gives up when the delay would pass the deadline', async () => {
    const clock = new ManualClock();
    const policy = retry({ backoff: constantBackoff(2000), clock });
    const events: PolicyEvent[] = [];
    policy.onEvent(e => events.push(e));
    const { calls, task } = flaky(clock, Infinity);
    const p = track(pipeline(timeout(1000, { clock }), policy).execute(task));
    await clock.advance(0);
    expect(p.error).toMatchObject({ message: 'flaky' }); // the real failure, not a timeout
    expect(calls).toHaveLength(1);
    expect(events).toEqual([
      expect.objectContaining({ type: 'giveUp', reason: 'deadline', attempt: 0 }),
    ]);
    expect(clock.now()).toBe(0);
  });

  it('retries within the deadline while the delays fit', async () => {
    const clock = new ManualClock();
    const { calls, task } = flaky(clock, Infinity);
    const p = track(
      pipeline(
        timeout(1000, { clock }),
        retry({ maxRetries: 10, backoff: constantBackoff(300), clock }),
      ).execute(task),
    );
    await clock.advance(1000);
    expect(calls.map(c => c.at)).toEqual([0, 300, 600, 900]);
    expect(p.error).toMatchObject({ message: 'flaky' });
  });

  it('stops with RETRY_BUDGET_EXHAUSTED when the budget is spent', async () => {
    const clock = new ManualClock();
    const budget = retryBudget({ percentCanRetry: 0.5, minRetriesPerSec: 0, clock });
    const policy = retry({ maxRetries: 5, backoff: constantBackoff(0), budget, clock });
    const events: PolicyEvent[] = [];
    policy.onEvent(e => events.push(e));
    const { calls, task } = flaky(clock, Infinity);
    // two deposits buy one retry at 50 %
    const first = track(policy.execute(task));
    await clock.advance(0);
    expect(first.error).toBeInstanceOf(RetryBudgetExhaustedError);
    expect((first.error as RetryBudgetExhaustedError).cause).toMatchObject({ message: 'flaky' });
    expect(calls).toHaveLength(1);
    const second = track(policy.execute(task));
    await clock.advance(0);
    expect(calls).toHaveLength(3); // 1 try + 1 retry
    expect(second.error).toBeInstanceOf(RetryBudgetExhaustedError);
    expect(
      events.filter(e => e.type === 'giveUp').map(e => (e as { reason: string }).reason),
    ).toEqual(['budget', 'budget']);
  });

  it('waits in a sleep that really uses the clock (task can use it too)', async () => {
    const clock = new ManualClock();
    let n = 0;
    const p = track(
      retry({ backoff: constantBackoff(50), clock }).execute(async () => {
        await sleep(clock, 10);
        if (++n < 3) throw new Error('again');
        return clock.now();
      }),
    );
    await clock.advance(200);
    expect(p.value).toBe(10 + 50 + 10 + 50 + 10);
  });

  it('rejects bad maxRetries', () => {
    expect(() => retry({ maxRetries: -1 })).toThrow(RangeError);
    expect(() => retry({ maxRetries: 1.5 })).toThrow(RangeError);
    expect(() => retry({ maxRetries: Number.NaN })).toThrow(RangeError);
    expect(() => retry({ maxRetries: Infinity })).not.toThrow();
  });

  it('uses a custom retryOn', async () => {
    const clock = new ManualClock();
    const seen: number[] = [];
    const { calls, task } = flaky(clock, Infinity, () => new CircuitOpenError('k', 0));
    const p = track(
      retry({
        maxRetries: 5,
        backoff: constantBackoff(0),
        retryOn: (_e, attempt) => {
          seen.push(attempt);
          return attempt < 2;
        },
        clock,
      }).execute(task),
    );
    await clock.advance(0);
    expect(p.error).toBeInstanceOf(CircuitOpenError);
    expect(calls).toHaveLength(3);
    expect(seen).toEqual([0, 1, 2]);
  });
});
