import { describe, expect, it } from 'vitest';
import { ManualClock } from './manualClock.js';
import { rateLimit } from './rateLimit.js';
import { timeout } from './timeout.js';
import { pipeline } from './pipeline.js';
import { RateLimitedError } from './errors.js';
import type { PolicyEvent } from './policy.js';

function track<T>(promise: Promise<T>) {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    value => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

describe('rateLimit', () => {
  it('allows a burst, then rejects RATE_LIMITED with retryAfterMs', async () => {
    const clock = new ManualClock();
    const limiter = rateLimit({ perSecond: 10, burst: 3, clock });
    const events: PolicyEvent[] = [];
    limiter.onEvent(e => events.push(e));
    let ran = 0;
    for (let i = 0; i < 3; i++) await limiter.execute(() => ran++);
    const error = await limiter.execute(() => ran++).catch((e: unknown) => e);
    expect(ran).toBe(3);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 100 });
    expect(events).toEqual([{ type: 'reject', reason: 'rateLimit' }]);
    await clock.advance(40);
    await expect(limiter.execute(() => 1)).rejects.toMatchObject({ retryAfterMs: 60 });
  });

  it('refills over time, up to the burst', async () => {
    const clock = new ManualClock();
    const limiter = rateLimit({ perSecond: 10, burst: 2, clock });
    await limiter.execute(() => 1);
    await limiter.execute(() => 1);
    expect(limiter.available).toBe(0);
    await clock.advance(100);
    expect(limiter.available).toBeCloseTo(1);
    await expect(limiter.execute(() => 'refilled')).resolves.toBe('refilled');
    await expect(limiter.execute(() => 1)).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    await clock.advance(10_000);
    expect(limiter.available).toBe(2);
  });

  it('burst defaults to perSecond', async () => {
    const clock = new ManualClock();
    const limiter = rateLimit({ perSecond: 5, clock });
    expect(limiter.burst).toBe(5);
    let ok = 0;
    for (let i = 0; i < 8; i++) await limiter.execute(() => ok++).catch(() => {});
    expect(ok).toBe(5);
  });

  it('maxWaitMs waits for the next token instead of rejecting', async () => {
    const clock = new ManualClock();
    const limiter = rateLimit({ perSecond: 10, burst: 1, maxWaitMs: 250, clock });
    const starts: number[] = [];
    const task = () => starts.push(clock.now());
    const calls = [0, 1, 2].map(() => track(limiter.execute(task)));
    await clock.advance(0);
    expect(starts).toEqual([0]);
    await clock.advance(100);
    expect(starts).toEqual([0, 100]);
    await clock.advance(100);
    expect(starts).toEqual([0, 100, 200]);
    expect(calls.every(c => c.settled && c.error === undefined)).toBe(true);

    // a wait longer than maxWaitMs still rejects: the bucket is empty, 3 waits queued would need 300 ms
    const waits = [0, 1, 2].map(() => track(limiter.execute(task)));
    await clock.advance(0);
    expect(waits[0]!.settled).toBe(false);
    expect(waits[1]!.settled).toBe(false);
    expect(waits[2]!.error).toMatchObject({ code: 'RATE_LIMITED' });
    await clock.advance(200);
    expect(starts).toEqual([0, 100, 200, 300, 400]);
  });

  it('a call aborted while waiting gives its reserved token back', async () => {
    const clock = new ManualClock();
    const limiter = rateLimit({ perSecond: 10, burst: 1, maxWaitMs: 1000, clock });
    await limiter.execute(() => 1); // bucket empty; next token at 100
    const controller = new AbortController();
    let abandonedRan = false;
    const abandoned = track(limiter.execute(() => (abandonedRan = true), controller.signal));
    controller.abort();
    await clock.advance(0);
    expect(abandoned.error).toMatchObject({ code: 'ABORTED' });
    const starts: number[] = [];
    const next = track(limiter.execute(() => starts.push(clock.now())));
    await clock.advance(100);
    expect(starts).toEqual([100]); // not 200: the abandoned reservation was returned
    expect(next.settled).toBe(true);
    expect(abandonedRan).toBe(false);
  });

  it('does not wait past the deadline', async () => {
    const clock = new ManualClock();
    const limiter = rateLimit({ perSecond: 1, burst: 1, maxWaitMs: 5000, clock });
    await limiter.execute(() => 1);
    const p = track(pipeline(timeout(500, { clock }), limiter).execute(() => 'never'));
    await clock.advance(0);
    expect(p.error).toMatchObject({ code: 'RATE_LIMITED' });
  });

  it('validates options', () => {
    expect(() => rateLimit({ perSecond: 0 })).toThrow(RangeError);
    expect(() => rateLimit({ perSecond: -1 })).toThrow(RangeError);
    expect(() => rateLimit({ perSecond: 1, burst: 0.5 })).toThrow(RangeError);
    expect(() => rateLimit({ perSecond: 1, maxWaitMs: -1 })).toThrow(RangeError);
  });
});
