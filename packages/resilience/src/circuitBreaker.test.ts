import { describe, expect, it } from 'vitest';
import { ConsecutiveBreaker, CountBreaker, SamplingBreaker } from 'cockatiel';
import { ManualClock } from './manualClock.js';
import { sleep } from './clock.js';
import { circuitBreaker, type CircuitBreaker } from './circuitBreaker.js';
import { SlowCallBreaker } from './breakers/slowCallBreaker.js';
import { memoryBreakerStore } from './breakerStore.js';
import { exponentialBackoff } from './backoff.js';
import { timeout } from './timeout.js';
import { pipeline } from './pipeline.js';
import { CircuitOpenError, HttpError, InvalidArgumentError } from './errors.js';
import type { PolicyEvent } from './policy.js';

const fail =
  (error: unknown = new Error('down')) =>
  () =>
    Promise.reject(error);
const ok = () => 'ok';

/** Runs `n` failing calls through `breaker`, swallowing their errors. */
async function failTimes(breaker: CircuitBreaker, n: number, error?: unknown): Promise<void> {
  for (let i = 0; i < n; i++) await breaker.execute(fail(error)).catch(() => {});
}

/** A task that stays pending until released. */
function gate<T = string>() {
  let release!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    release = res;
    reject = rej;
  });
  return { promise, release, reject, task: () => promise };
}

describe('circuitBreaker', () => {
  it('opens after N consecutive failures; a success resets the count', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({ strategy: new ConsecutiveBreaker(3), clock });
    await failTimes(breaker, 2);
    await breaker.execute(ok);
    await failTimes(breaker, 2);
    expect(breaker.state).toBe('closed');
    await failTimes(breaker, 1);
    expect(breaker.state).toBe('open');
  });

  it('defaults to 5 consecutive failures and 10 s open', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({ clock });
    await failTimes(breaker, 4);
    expect(breaker.state).toBe('closed');
    await failTimes(breaker, 1);
    expect(breaker.state).toBe('open');
    expect(breaker.retryAfterMs).toBe(10_000);
  });

  it('rejects fast with CIRCUIT_OPEN carrying retryAfterMs, without running the task', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      key: 'api',
      strategy: new ConsecutiveBreaker(1),
      halfOpenAfter: 1000,
      clock,
    });
    const events: PolicyEvent[] = [];
    breaker.onEvent(e => events.push(e));
    await failTimes(breaker, 1);
    await clock.advance(400);
    let ran = false;
    const error = await breaker
      .execute(() => {
        ran = true;
        return 1;
      })
      .catch((e: unknown) => e);
    expect(ran).toBe(false);
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(error).toMatchObject({ code: 'CIRCUIT_OPEN', key: 'api', isolated: false });
    // retryAfterMs counts down in wall-clock time from the 600 ms left on the breaker clock (the
    // lower bound leaves a busy machine room between the rejection and this read)
    const retryAfterMs = (error as CircuitOpenError).retryAfterMs;
    expect(retryAfterMs).toBeGreaterThan(300);
    expect(retryAfterMs).toBeLessThanOrEqual(600);
    expect(breaker.retryAfterMs).toBe(600);
    expect(events).toContainEqual({ type: 'reject', reason: 'circuit', key: 'api' });
  });

  it('goes half-open after halfOpenAfter and closes when the probe succeeds', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      key: 'k',
      strategy: new ConsecutiveBreaker(1),
      halfOpenAfter: 1000,
      clock,
    });
    const events: PolicyEvent[] = [];
    breaker.onEvent(e => e.type === 'stateChange' && events.push(e));
    await failTimes(breaker, 1);
    await clock.advance(999);
    await expect(breaker.execute(ok)).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
    expect(breaker.retryAfterMs).toBe(1);
    await clock.advance(1);
    expect(breaker.state).toBe('open'); // half-open is entered by the next call
    const probe = gate();
    const running = breaker.execute(probe.task);
    expect(breaker.state).toBe('half-open');
    probe.release('fine');
    await expect(running).resolves.toBe('fine');
    expect(breaker.state).toBe('closed');
    expect(events).toEqual([
      { type: 'stateChange', key: 'k', from: 'closed', to: 'open' },
      { type: 'stateChange', key: 'k', from: 'open', to: 'half-open' },
      { type: 'stateChange', key: 'k', from: 'half-open', to: 'closed' },
    ]);
  });

  it('halfOpenProbes: 3 lets exactly 3 concurrent probes through and closes after all 3 succeed', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      strategy: new ConsecutiveBreaker(1),
      halfOpenAfter: 100,
      halfOpenProbes: 3,
      clock,
    });
    await failTimes(breaker, 1);
    await clock.advance(100);
    const probes = [gate(), gate(), gate()];
    const running = probes.map(p => breaker.execute(p.task));
    await expect(breaker.execute(ok)).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
    probes[0]!.release('a');
    probes[1]!.release('b');
    await Promise.all(running.slice(0, 2));
    expect(breaker.state).toBe('half-open');
    probes[2]!.release('c');
    await expect(Promise.all(running)).resolves.toEqual(['a', 'b', 'c']);
    expect(breaker.state).toBe('closed');
    await expect(breaker.execute(ok)).resolves.toBe('ok');
  });

  it('a probe failure reopens at once', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      strategy: new ConsecutiveBreaker(3),
      halfOpenAfter: 100,
      halfOpenProbes: 2,
      clock,
    });
    await failTimes(breaker, 3);
    await clock.advance(100);
    const good = gate();
    const first = breaker.execute(good.task);
    await failTimes(breaker, 1); // the second probe fails
    expect(breaker.state).toBe('open');
    expect(breaker.retryAfterMs).toBe(100);
    good.release('late');
    await expect(first).resolves.toBe('late');
    expect(breaker.state).toBe('open'); // the stale probe success changes nothing
  });

  it('grows the open duration with a backoff: 100, 200, 400, and resets on close', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      strategy: new ConsecutiveBreaker(1),
      halfOpenAfter: exponentialBackoff({ jitter: 'none', initialMs: 100 }),
      clock,
    });
    const openDurations: number[] = [];
    await failTimes(breaker, 1);
    for (let i = 0; i < 3; i++) {
      openDurations.push(breaker.retryAfterMs);
      await clock.advance(breaker.retryAfterMs);
      await failTimes(breaker, 1); // failed probe
    }
    expect(openDurations).toEqual([100, 200, 400]);
    expect(breaker.retryAfterMs).toBe(800);
    await clock.advance(800);
    await breaker.execute(ok);
    expect(breaker.state).toBe('closed');
    await failTimes(breaker, 1);
    expect(breaker.retryAfterMs).toBe(100);
  });

  it('works with cockatiel CountBreaker', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      strategy: new CountBreaker({ threshold: 0.5, size: 4 }),
      clock,
    });
    await breaker.execute(ok);
    await failTimes(breaker, 2);
    expect(breaker.state).toBe('closed'); // 3 calls < 4
    await breaker.execute(ok);
    expect(breaker.state).toBe('closed'); // 2 of 4 failed: not more than half
    await failTimes(breaker, 1); // window: fail, fail, ok, fail → 3 of 4
    expect(breaker.state).toBe('open');
  });

  it('works with cockatiel SamplingBreaker', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      strategy: new SamplingBreaker({ threshold: 0.5, duration: 10_000, minimumRps: 1 }),
      clock,
    });
    // needs at least 10 calls in the 10 s window, more than half failed
    for (let i = 0; i < 4; i++) await breaker.execute(ok);
    await failTimes(breaker, 5);
    expect(breaker.state).toBe('closed'); // 9 calls
    await failTimes(breaker, 1); // 10 calls, 6 failed
    expect(breaker.state).toBe('open');
  });

  it('SlowCallBreaker opens on slow successes', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      strategy: new SlowCallBreaker({ thresholdMs: 100, size: 4, rate: 0.5 }),
      clock,
    });
    const slowCall = async () => {
      const p = breaker.execute(() => sleep(clock, 150).then(() => 'slow'));
      await clock.advance(150);
      return p;
    };
    await breaker.execute(ok);
    await slowCall();
    await breaker.execute(ok);
    expect(breaker.state).toBe('closed'); // 3 calls < window of 4
    await expect(slowCall()).resolves.toBe('slow');
    expect(breaker.state).toBe('open'); // 2 of 4 slow
  });

  it('SlowCallBreaker stays closed on fast calls and delegates failures to its inner strategy', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      strategy: new SlowCallBreaker({
        thresholdMs: 100,
        size: 4,
        inner: new ConsecutiveBreaker(2),
      }),
      clock,
    });
    for (let i = 0; i < 10; i++) await breaker.execute(ok);
    expect(breaker.state).toBe('closed');
    await failTimes(breaker, 1);
    expect(breaker.state).toBe('closed');
    await failTimes(breaker, 1);
    expect(breaker.state).toBe('open');
  });

  it('SlowCallBreaker validates its options', () => {
    expect(() => new SlowCallBreaker({ thresholdMs: 0 })).toThrow(RangeError);
    expect(() => new SlowCallBreaker({ thresholdMs: 10, rate: 0 })).toThrow(RangeError);
    expect(() => new SlowCallBreaker({ thresholdMs: 10, rate: 1.1 })).toThrow(RangeError);
    expect(() => new SlowCallBreaker({ thresholdMs: 10, size: 0 })).toThrow(RangeError);
  });

  it('emits degraded for successes slower than slowCallMs', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({ key: 'k', slowCallMs: 50, clock });
    const events: PolicyEvent[] = [];
    breaker.onEvent(e => events.push(e));
    const p = breaker.execute(() => sleep(clock, 80));
    await clock.advance(80);
    await p;
    const q = breaker.execute(() => sleep(clock, 10));
    await clock.advance(10);
    await q;
    expect(events).toEqual([{ type: 'degraded', durationMs: 80, expectedMs: 50, key: 'k' }]);
  });

  it('does not count 4xx HttpErrors (but counts 5xx, 408 and 429)', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({ strategy: new ConsecutiveBreaker(1), clock });
    for (const status of [400, 401, 404, 409, 422]) {
      await failTimes(
        breaker,
        1,
        new HttpError(status, 'GET', 'http://h/', {}, '', undefined, true),
      );
    }
    expect(breaker.state).toBe('closed');
    for (const status of [500, 408, 429]) {
      const b = circuitBreaker({ strategy: new ConsecutiveBreaker(1), clock });
      await failTimes(b, 1, new HttpError(status, 'GET', 'http://h/', {}, '', undefined, true));
      expect(b.state).toBe('open');
    }
  });

  it('uses a custom isFailure', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      strategy: new ConsecutiveBreaker(1),
      isFailure: e => (e as Error).message === 'counts',
      clock,
    });
    await failTimes(breaker, 3, new Error('ignored'));
    expect(breaker.state).toBe('closed');
    await failTimes(breaker, 1, new Error('counts'));
    expect(breaker.state).toBe('open');
  });

  it('does not count a caller abort, but counts its own deadline', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({ strategy: new ConsecutiveBreaker(1), clock });
    const controller = new AbortController();
    const waitForAbort = (ctx: { signal: AbortSignal }) =>
      new Promise((_, reject) =>
        ctx.signal.addEventListener('abort', () => reject(new Error('cancelled'))),
      );
    const p = breaker.execute(waitForAbort, controller.signal);
    controller.abort();
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' });
    await clock.advance(0);
    expect(breaker.state).toBe('closed');

    const q = pipeline(timeout(50, { clock }), breaker).execute(waitForAbort);
    const check = expect(q).rejects.toMatchObject({ code: 'TIMEOUT' });
    await clock.advance(50);
    await check;
    expect(breaker.state).toBe('open');
  });

  it('isolate() holds the circuit open until every disposer ran', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({ key: 'iso', halfOpenAfter: 10, clock });
    const release1 = breaker.isolate();
    const release2 = breaker.isolate();
    expect(breaker.state).toBe('isolated');
    await clock.advance(60_000);
    await expect(breaker.execute(ok)).rejects.toMatchObject({
      code: 'CIRCUIT_OPEN',
      isolated: true,
      retryAfterMs: 0,
    });
    release1();
    release1(); // idempotent
    expect(breaker.state).toBe('isolated');
    await expect(breaker.execute(ok)).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
    release2();
    expect(breaker.state).toBe('closed');
    await expect(breaker.execute(ok)).resolves.toBe('ok');
  });

  it('toJSON() and initialState restore an open breaker in a new instance', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      strategy: new ConsecutiveBreaker(1),
      halfOpenAfter: 1000,
      clock,
    });
    await failTimes(breaker, 1);
    await clock.advance(200);
    const snapshot = JSON.parse(JSON.stringify(breaker));
    expect(snapshot).toMatchObject({ state: 'open', openCount: 1 });

    const clock2 = new ManualClock(5_000);
    const restored = circuitBreaker({
      strategy: new ConsecutiveBreaker(1),
      halfOpenAfter: 1000,
      initialState: snapshot,
      clock: clock2,
    });
    expect(restored.state).toBe('open');
    expect(Math.abs(restored.retryAfterMs - 800)).toBeLessThanOrEqual(20);
    await expect(restored.execute(ok)).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
    await clock2.advance(restored.retryAfterMs);
    await expect(restored.execute(ok)).resolves.toBe('ok');
    expect(restored.state).toBe('closed');
  });

  it('initialState restores the strategy state of a closed breaker', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({ strategy: new ConsecutiveBreaker(3), clock });
    await failTimes(breaker, 2);
    const snapshot = breaker.toJSON();
    expect(snapshot.state).toBe('closed');
    const restored = circuitBreaker({
      strategy: new ConsecutiveBreaker(3),
      initialState: snapshot,
      clock,
    });
    await failTimes(restored, 1);
    expect(restored.state).toBe('open');
  });

  it("memoryBreakerStore: breakers sharing a key adopt each other's open and close", async () => {
    const clock = new ManualClock();
    const store = memoryBreakerStore();
    const options = {
      key: 'svc',
      strategy: new ConsecutiveBreaker(1),
      halfOpenAfter: 1000,
      store,
      clock,
    };
    const a = circuitBreaker(options);
    const b = circuitBreaker({ ...options, strategy: new ConsecutiveBreaker(1) });
    const other = circuitBreaker({ ...options, key: 'other', strategy: new ConsecutiveBreaker(1) });
    await failTimes(a, 1);
    expect(a.state).toBe('open');
    expect(b.state).toBe('open');
    expect(other.state).toBe('closed');
    await expect(b.execute(ok)).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', key: 'svc' });
    expect(Math.abs(b.retryAfterMs - 1000)).toBeLessThanOrEqual(20);

    await clock.advance(1000);
    await a.execute(ok); // a's probe closes a
    expect(a.state).toBe('closed');
    expect(b.state).toBe('closed');
    expect(store.size).toBe(1);

    // a late-coming breaker loads the saved state
    await failTimes(a, 1);
    const c = circuitBreaker({ ...options, strategy: new ConsecutiveBreaker(1) });
    expect(c.state).toBe('closed');
    await c.hydrate();
    expect(c.state).toBe('open');

    // closed breakers stop listening
    b.close();
    await clock.advance(1000);
    await a.execute(ok);
    expect(a.state).toBe('closed');
    expect(c.state).toBe('closed');
    expect(b.state).toBe('open');
  });

  it('ignores stale completions of calls admitted before the breaker opened', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      strategy: new ConsecutiveBreaker(2),
      halfOpenAfter: 100,
      clock,
    });
    const stale = gate();
    const staleCall = breaker.execute(stale.task);
    await failTimes(breaker, 2);
    expect(breaker.state).toBe('open');
    await clock.advance(100);
    const probe = gate();
    const probeCall = breaker.execute(probe.task);
    expect(breaker.state).toBe('half-open');
    stale.reject(new Error('old failure'));
    await expect(staleCall).rejects.toThrow('old failure');
    expect(breaker.state).toBe('half-open'); // the stale failure did not reopen it
    probe.release('ok');
    await probeCall;
    expect(breaker.state).toBe('closed');

    // and a stale success does not close an open breaker
    const stale2 = gate();
    const staleCall2 = breaker.execute(stale2.task);
    await failTimes(breaker, 2);
    stale2.release('late');
    await staleCall2;
    expect(breaker.state).toBe('open');
  });

  it('rejects (never throws synchronously) from execute when open', async () => {
    const breaker = circuitBreaker();
    breaker.isolate();
    let promise: Promise<unknown> | undefined;
    expect(() => {
      promise = breaker.execute(ok);
    }).not.toThrow();
    await expect(promise).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
  });

  it('validates options', () => {
    expect(() => circuitBreaker({ halfOpenAfter: -1 })).toThrow(InvalidArgumentError);
    expect(() => circuitBreaker({ halfOpenProbes: 0 })).toThrow(RangeError);
    expect(() => circuitBreaker({ halfOpenProbes: 1.5 })).toThrow(RangeError);
  });
});
