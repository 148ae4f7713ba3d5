import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from './manualClock.js';
import { sleep, systemClock } from './clock.js';
import { timeout } from './timeout.js';
import { InvalidArgumentError, TimeoutError } from './errors.js';
import { isXError } from './xError.js';
import type { PolicyContext, PolicyEvent } from './policy.js';

/** Counts AbortControllers constructed while installed (a real subclass, behaviour unchanged). */
function countAbortControllers(): { readonly count: number; restore(): void } {
  const Original = globalThis.AbortController;
  let count = 0;
  globalThis.AbortController = class extends Original {
    constructor() {
      super();
      count++;
    }
  };
  return {
    get count() {
      return count;
    },
    restore: () => {
      globalThis.AbortController = Original;
    },
  };
}

/** A promise's state without awaiting it. */
function track<T>(promise: Promise<T>) {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    value => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

describe('timeout', () => {
  let restore: (() => void) | undefined;
  afterEach(() => {
    restore?.();
    restore = undefined;
  });

  it('rejects with TIMEOUT exactly at the deadline', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    const call = track(policy.execute(() => new Promise(() => {})));
    await clock.advance(99);
    expect(call.settled).toBe(false);
    await clock.advance(1);
    expect(call.settled).toBe(true);
    expect(call.error).toBeInstanceOf(TimeoutError);
    expect(isXError(call.error, 'TIMEOUT')).toBe(true);
    expect((call.error as TimeoutError).timeoutMs).toBe(100);
    expect((call.error as TimeoutError).scope).toBe('operation');
  });

  it('reports the attempt scope when configured', async () => {
    const clock = new ManualClock();
    const p = timeout(10, { clock, scope: 'attempt' }).execute(() => new Promise(() => {}));
    const check = expect(p).rejects.toMatchObject({
      code: 'TIMEOUT',
      scope: 'attempt',
      timeoutMs: 10,
    });
    await clock.advance(10);
    await check;
  });

  it('aborts the context signal with the TimeoutError as reason', async () => {
    const clock = new ManualClock();
    let signal: AbortSignal | undefined;
    const p = timeout(50, { clock }).execute(ctx => {
      signal = ctx.signal;
      return new Promise((_, reject) =>
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
      );
    });
    const check = expect(p).rejects.toBeInstanceOf(TimeoutError);
    expect(signal!.aborted).toBe(false);
    await clock.advance(50);
    await check;
    expect(signal!.aborted).toBe(true);
    expect(signal!.reason).toBeInstanceOf(TimeoutError);
    expect(await p.catch((e: unknown) => e)).toBe(signal!.reason);
  });

  it('creates no AbortController unless the task reads signal', async () => {
    const clock = new ManualClock();
    const policy = timeout(1000, { clock });
    const counter = countAbortControllers();
    restore = counter.restore;
    let deadline = 0;
    const value = await policy.execute(ctx => {
      deadline = ctx.deadline;
      return 'done';
    });
    expect(value).toBe('done');
    expect(deadline).toBe(1000);
    expect(counter.count).toBe(0);

    await policy.execute(ctx => ctx.signal.aborted);
    expect(counter.count).toBeGreaterThan(0);
  });

  it('gives an aborted signal when read only after the deadline passed', async () => {
    const clock = new ManualClock();
    let context: PolicyContext | undefined;
    const p = timeout(20, { clock }).execute(ctx => {
      context = ctx;
      return sleep(clock, 1000).then(() => 'late');
    });
    const check = expect(p).rejects.toMatchObject({ code: 'TIMEOUT' });
    await clock.advance(20);
    await check;
    const signal = context!.signal; // first read, after expiry
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(TimeoutError);
  });

  it('resolves when the task finishes before the deadline and does not abort it', async () => {
    const clock = new ManualClock();
    let signal: AbortSignal | undefined;
    const p = timeout(100, { clock }).execute(async ctx => {
      signal = ctx.signal;
      await sleep(clock, 60);
      return 42;
    });
    await clock.advance(60);
    await expect(p).resolves.toBe(42);
    await clock.advance(100);
    expect(signal!.aborted).toBe(false);
  });

  it('a nested timeout takes the earlier deadline', async () => {
    const clock = new ManualClock();
    const outer = timeout(100, { clock });
    const inner = timeout(1000, { clock });
    const deadlines: number[] = [];
    const p = outer.execute(ctx =>
      inner.run(inner2 => {
        deadlines.push(ctx.deadline, inner2.deadline);
        return new Promise(() => {});
      }, ctx),
    );
    const state = track(p);
    await clock.advance(100);
    expect(deadlines).toEqual([100, 100]);
    expect(state.error).toMatchObject({ code: 'TIMEOUT', timeoutMs: 100 });

    // a shorter inner deadline wins too, and reports its own length
    const clock2 = new ManualClock();
    const p2 = timeout(1000, { clock: clock2 }).execute(ctx =>
      timeout(30, { clock: clock2 }).run(() => new Promise(() => {}), ctx),
    );
    const state2 = track(p2);
    await clock2.advance(30);
    expect(state2.error).toMatchObject({ code: 'TIMEOUT', timeoutMs: 30 });
  });

  it('rejects at once when the enclosing deadline already passed', async () => {
    const clock = new ManualClock();
    let ran = false;
    const p = timeout(100, { clock }).execute(async ctx => {
      await sleep(clock, 100);
      return timeout(50, { clock }).run(() => {
        ran = true;
        return 1;
      }, ctx);
    });
    const check = expect(p).rejects.toMatchObject({ code: 'TIMEOUT' });
    await clock.advance(100);
    await check;
    expect(ran).toBe(false);
  });

  it('emits timeout and lateSettle events', async () => {
    const clock = new ManualClock();
    const policy = timeout(10, { clock });
    const events: PolicyEvent[] = [];
    policy.onEvent(e => events.push(e));
    const lateError = new Error('too late');
    const p = policy.execute(async () => {
      await sleep(clock, 30);
      throw lateError;
    });
    const check = expect(p).rejects.toMatchObject({ code: 'TIMEOUT' });
    await clock.advance(10);
    await check;
    expect(events).toEqual([{ type: 'timeout', timeoutMs: 10 }]);
    await clock.advance(20);
    expect(events).toEqual([
      { type: 'timeout', timeoutMs: 10 },
      { type: 'lateSettle', error: lateError },
    ]);

    const p2 = policy.execute(() => sleep(clock, 30).then(() => 'value'));
    const check2 = expect(p2).rejects.toMatchObject({ code: 'TIMEOUT' });
    await clock.advance(30);
    await check2;
    expect(events.slice(2)).toEqual([
      { type: 'timeout', timeoutMs: 10 },
      { type: 'lateSettle', error: undefined },
    ]);
  });

  it('passes through a synchronous throw and a rejection', async () => {
    const clock = new ManualClock();
    const policy = timeout(10, { clock });
    const events: PolicyEvent[] = [];
    policy.onEvent(e => events.push(e));
    const boom = new Error('boom');
    await expect(
      policy.execute(() => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    await expect(policy.execute(() => Promise.reject(boom))).rejects.toBe(boom);
    await clock.advance(50); // the settled calls' deadlines were withdrawn
    expect(events).toEqual([]);
  });

  it('rejects ABORTED when the caller aborts', async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const p = timeout(1000, { clock }).execute(() => new Promise(() => {}), controller.signal);
    controller.abort();
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' });
  });

  it('throws INVALID_ARGUMENT naming the field on 0, negative, NaN or a string', () => {
    expect(() => timeout(0)).toThrow(InvalidArgumentError);
    expect(() => timeout(-5)).toThrow(/timeout: expected a number of ms > 0.* received -5/);
    expect(() => timeout(Number.NaN)).toThrow(InvalidArgumentError);
    expect(() => timeout('300' as never)).toThrow(/timeout: .* received "300"/);
  });

  it('reads a limit above 2^31-1 ms as no limit: 3e9 does not fire early', async () => {
    expect(timeout(3e9).ms).toBe(Infinity);
    const policy = timeout(3e9);
    await expect(policy.execute(() => sleep(systemClock, 30).then(() => 'done'))).resolves.toBe(
      'done',
    );
  });
});
