import { InvalidArgumentError } from './errors.js';
import { describe, expect, it } from 'vitest';
import { ManualClock } from './manualClock.js';
import { sleep } from './clock.js';
import { hedge } from './hedge.js';
import { loadBalance } from './loadBalance.js';
import { pipeline } from './pipeline.js';
import { roundRobin } from './balancers/roundRobin.js';
import type { Endpoint } from './endpoint.js';
import type { PolicyContext, PolicyEvent } from './policy.js';

function track<T>(promise: Promise<T>) {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    value => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

/** Records each attempt; attempt i behaves as `plan[i]` ('hang', a delay in ms, or 'fail'). */
function attempts(clock: ManualClock, plan: Array<'hang' | 'fail' | number>) {
  const seen: Array<{ attempt: number; at: number; signal: AbortSignal; endpoint?: string }> = [];
  const task = (ctx: PolicyContext) => {
    const i = seen.length;
    seen.push({
      attempt: ctx.attempt,
      at: clock.now(),
      signal: ctx.signal,
      endpoint: ctx.endpoint?.netloc,
    });
    const step = plan[Math.min(i, plan.length - 1)]!;
    if (step === 'hang') return new Promise<string>(() => {});
    if (step === 'fail') return Promise.reject(new Error(`attempt ${i} failed`));
    return sleep(clock, step).then(() => `attempt ${i}`);
  };
  return { seen, task };
}

describe('hedge', () => {
  it('fires a second attempt after the fixed delay; the first success wins', async () => {
    const clock = new ManualClock();
    const policy = hedge({ delay: 100, maxExtraLoad: 1, clock });
    const events: PolicyEvent[] = [];
    policy.onEvent(e => events.push(e));
    const { seen, task } = attempts(clock, ['hang', 10]);
    const p = track(policy.execute(task));
    await clock.advance(99);
    expect(seen).toHaveLength(1);
    await clock.advance(1);
    expect(seen.map(s => [s.attempt, s.at])).toEqual([
      [0, 0],
      [1, 100],
    ]);
    expect(events).toEqual([{ type: 'hedge', attempt: 1, delayMs: 100 }]);
    await clock.advance(10);
    expect(p.value).toBe('attempt 1');
    expect(seen[0]!.signal.aborted).toBe(true); // the loser is cancelled
    expect((seen[0]!.signal.reason as { code?: string }).code).toBe('ABORTED');
    expect(seen[1]!.signal.aborted).toBe(false);
  });

  it('does not hedge a call that answers before the delay', async () => {
    const clock = new ManualClock();
    const policy = hedge({ delay: 100, maxExtraLoad: 1, clock });
    const { seen, task } = attempts(clock, [50]);
    const p = track(policy.execute(task));
    await clock.advance(500);
    expect(p.value).toBe('attempt 0');
    expect(seen).toHaveLength(1);
  });

  it('the original attempt can still win after the hedge started', async () => {
    const clock = new ManualClock();
    const { seen, task } = attempts(clock, [150, 1000]);
    const p = track(hedge({ delay: 100, maxExtraLoad: 1, clock }).execute(task));
    await clock.advance(150);
    expect(p.value).toBe('attempt 0');
    expect(seen).toHaveLength(2);
    expect(seen[1]!.signal.aborted).toBe(true); // the loser is cancelled
    expect(seen[0]!.signal.aborted).toBe(false); // the winner's result may still be streaming
  });

  it('a failing first attempt starts the hedge at once', async () => {
    const clock = new ManualClock();
    const { seen, task } = attempts(clock, ['fail', 5]);
    const p = track(hedge({ delay: 1000, maxExtraLoad: 1, clock }).execute(task));
    await clock.advance(0);
    expect(seen.map(s => s.at)).toEqual([0, 0]);
    await clock.advance(5);
    expect(p.value).toBe('attempt 1');
  });

  it('rejects with the last error when every attempt failed', async () => {
    const clock = new ManualClock();
    const { seen, task } = attempts(clock, ['fail']);
    const p = track(hedge({ delay: 10, maxHedges: 2, maxExtraLoad: 1, clock }).execute(task));
    await clock.advance(0);
    expect(p.error).toMatchObject({ message: 'attempt 1 failed' }); // the budget allowed one hedge
    expect(seen).toHaveLength(2);
  });

  it('maxHedges bounds the extra attempts', async () => {
    const clock = new ManualClock();
    const policy = hedge({ delay: 10, maxHedges: 2, maxExtraLoad: 1, clock });
    await policy.execute(() => 'warm');
    await policy.execute(() => 'up'); // the budget now holds enough for two hedges
    const { seen, task } = attempts(clock, ['hang']);
    const p = track(policy.execute(task));
    await clock.advance(1000);
    expect(seen.map(s => [s.attempt, s.at])).toEqual([
      [0, 0],
      [1, 10],
      [2, 20],
    ]);
    expect(p.settled).toBe(false);
  });

  it('maxExtraLoad caps hedges to a share of calls', async () => {
    const clock = new ManualClock();
    const policy = hedge({ delay: 10, maxExtraLoad: 0.5, clock });
    let hedges = 0;
    policy.onEvent(e => e.type === 'hedge' && hedges++);
    for (let i = 0; i < 10; i++) {
      const p = policy.execute(() => sleep(clock, 50).then(() => i));
      await clock.advance(50);
      await p;
    }
    expect(hedges).toBe(5);
  });

  it('with 0 extra load never hedges', async () => {
    const clock = new ManualClock();
    const policy = hedge({ delay: 10, maxExtraLoad: 0, clock });
    let attemptsSeen = 0;
    for (let i = 0; i < 50; i++) {
      const p = policy.execute(() => {
        attemptsSeen++;
        return sleep(clock, 50);
      });
      await clock.advance(50);
      await p;
    }
    expect(attemptsSeen).toBe(50);

    // not even after a failure
    const failing = hedge({ delay: 10, maxExtraLoad: 0, clock });
    let tries = 0;
    for (let i = 0; i < 20; i++) {
      await failing
        .execute(() => {
          tries++;
          throw new Error('x');
        })
        .catch(() => {});
    }
    expect(tries).toBe(20);
  });

  it('a percentile delay follows the recorded latency', async () => {
    const clock = new ManualClock();
    const policy = hedge({
      delay: { percentile: 0.5, minMs: 10, maxMs: 5000 },
      maxExtraLoad: 1,
      clock,
    });
    expect(policy.delayMs).toBe(10); // too few samples
    for (let i = 0; i < 20; i++) {
      const p = policy.execute(() => sleep(clock, 200));
      await clock.advance(200);
      await p;
    }
    expect(policy.latency.count).toBe(20);
    expect(Math.abs(policy.delayMs - 200)).toBeLessThanOrEqual(200 * 0.02);
    const delay = policy.delayMs;
    const { seen, task } = attempts(clock, ['hang', 1]);
    const p = track(policy.execute(task));
    await clock.advance(Math.floor(delay) - 1);
    expect(seen).toHaveLength(1);
    await clock.advance(2);
    expect(seen).toHaveLength(2);
    await clock.advance(1);
    expect(p.value).toBe('attempt 1');
  });

  it('clamps a percentile delay to maxMs', async () => {
    const clock = new ManualClock();
    const policy = hedge({
      delay: { percentile: 0.9, minMs: 5, maxMs: 50 },
      maxExtraLoad: 1,
      clock,
    });
    for (let i = 0; i < 20; i++) {
      const p = policy.execute(() => sleep(clock, 30));
      await clock.advance(30);
      await p;
    }
    for (let i = 0; i < 20; i++) policy.latency.record(1000);
    expect(policy.delayMs).toBe(50);
  });

  it('sends hedges to different endpoints when a load balancer is inside', async () => {
    const clock = new ManualClock();
    const endpoints = ['http://a:1', 'http://b:2', 'http://c:3'];
    const policy = pipeline(
      hedge({ delay: 20, maxHedges: 2, maxExtraLoad: 1, clock }),
      loadBalance({ endpoints, balancer: roundRobin<Endpoint>() }, { clock }),
    );
    await policy.execute(() => 'warm up the budget');
    await policy.execute(() => 'twice');
    const { seen, task } = attempts(clock, ['hang', 'hang', 5]);
    const p = track(policy.execute(task));
    await clock.advance(50);
    expect(p.value).toBe('attempt 2');
    const used = seen.map(s => s.endpoint);
    expect(new Set(used).size).toBe(3);
    expect(seen.map(s => s.attempt)).toEqual([0, 1, 2]);
  });

  it('validates options', () => {
    expect(() => hedge({ maxHedges: 0 })).toThrow(RangeError);
    expect(() => hedge({ maxHedges: 11 })).toThrow(RangeError);
    expect(() => hedge({ delay: -1 })).toThrow(InvalidArgumentError);
    expect(() => hedge({ delay: '5' as never })).toThrow(/delay: expected .* received "5"/);
    expect(() => hedge({ delay: { percentile: 1 } })).toThrow(RangeError);
    expect(() => hedge({ delay: { percentile: 0 } })).toThrow(RangeError);
    expect(() => hedge({ maxExtraLoad: 1.5 })).toThrow(RangeError);
  });
});
