import { ConstantBackoff, exponentialBackoff, linearBackoff } from '@x/resilience';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { asyncBackoff, BackoffPolicy, syncBackoff } from './backoffPolicy.js';
import { CancelledError, TranslationError } from './errors.js';
import { route } from './route.js';
import { testRoute } from './testRoute.js';

describe('BackoffPolicy', () => {
  it('computes each retry delay in ms from any @x/resilience backoff', () => {
    const p = (delay: ConstructorParameters<typeof BackoffPolicy>[1]) =>
      new BackoffPolicy('sync', delay);
    expect([1, 2, 3].map(n => p({ delay: 250 }).delayFor(n, null))).toEqual([250, 250, 250]);
    expect(
      [1, 2, 3].map(n =>
        p({ delay: linearBackoff({ initialMs: 100, stepMs: 50, maxMs: 180 }) }).delayFor(n, null),
      ),
    ).toEqual([100, 150, 180]);
    expect(
      [1, 2, 3, 4].map(n =>
        p({ delay: exponentialBackoff({ initialMs: 10, exponent: 3, jitter: 'none' }) }).delayFor(
          n,
          null,
        ),
      ),
    ).toEqual([10, 30, 90, 270]);
    expect(
      p({ delay: exponentialBackoff({ initialMs: 10, maxMs: 5_000, jitter: 'none' }) }).delayFor(
        10_000,
        null,
      ),
    ).toBe(5_000);
    expect(p({ delay: linearBackoff({ initialMs: 0, stepMs: 1 }) }).delayFor(1_000, null)).toBe(
      999,
    );
    expect(p({ delay: new ConstantBackoff(7) }).delayFor(3, null)).toBe(7);
  });

  it('property: decorrelated jitter (the default) stays within [0, maxMs]', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), retry => {
        const ms = syncBackoff().delayFor(retry, null);
        expect(ms).toBeGreaterThanOrEqual(0);
        expect(ms).toBeLessThanOrEqual(30_000);
      }),
    );
  });

  it('never retries translation errors, cancellations or UnrecoverableError; abortOn wins over retryOn', () => {
    const p = syncBackoff({ retryOn: e => e instanceof Error, abortOn: [RangeError] });
    expect(p.isRetryable(new Error('x'))).toBe(true);
    expect(p.isRetryable(new RangeError('x'))).toBe(false);
    expect(p.isRetryable('not an error')).toBe(false);
    expect(p.isRetryable(new TranslationError('bad'))).toBe(false);
    expect(p.isRetryable(new CancelledError('stop', true))).toBe(false);
    expect(p.isRetryable(Object.assign(new Error('x'), { name: 'UnrecoverableError' }))).toBe(
      false,
    );
    expect(syncBackoff({ retryOn: TypeError }).isRetryable(new TypeError('x'))).toBe(true);
    expect(syncBackoff({ retryOn: TypeError }).isRetryable(new Error('x'))).toBe(false);
  });

  it("maxRetries: an integer >= 0 or 'infinite'", () => {
    expect(syncBackoff().maxRetries).toBe(3);
    expect(syncBackoff({ maxRetries: 0 }).maxRetries).toBe(0);
    expect(syncBackoff({ maxRetries: 'infinite' }).maxRetries).toBe(Infinity);
    for (const bad of [-1, 1.5, Infinity, '3', null])
      expect(() => syncBackoff({ maxRetries: bad as never })).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTIONS' }),
      );
    expect(() => new BackoffPolicy('later' as never)).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS' }),
    );
    expect(() => syncBackoff({ via: {} } as never)).toThrow(/unknown option 'via'/);
  });
});

describe('BackoffPolicy on @x/resilience retry', () => {
  it('each sync retry is a step of the resilience retry schedule: same delays, its retry events', async () => {
    const backoff = syncBackoff({
      maxRetries: 3,
      delay: exponentialBackoff({ initialMs: 10, exponent: 2, jitter: 'none' }),
    });
    const events: Array<{ type: string; attempt: number; delayMs?: number }> = [];
    backoff.policy.onEvent(e => {
      if (e.type === 'retry') events.push({ type: e.type, attempt: e.attempt, delayMs: e.delayMs });
    });
    let calls = 0;
    const r = route({
      backoff,
      target: () => {
        if (++calls < 4) throw new Error(`fail ${calls}`);
        return 'ok';
      },
    });
    const d = await testRoute(r).deliver('m');
    expect(d.outcome).toMatchObject({ kind: 'success', value: 'ok', attempts: 4 });
    // the route clock advanced exactly by the schedule's delays: 10, 20, 40 ms
    expect(d.attempts.map(a => a.at)).toEqual([0, 10, 30, 70]);
    expect(events).toEqual([
      { type: 'retry', attempt: 1, delayMs: 10 },
      { type: 'retry', attempt: 2, delayMs: 20 },
      { type: 'retry', attempt: 3, delayMs: 40 },
    ]);
  });

  it('an async retry of a redelivered message steps on from its retry count (meta), not from 1', async () => {
    const backoff = asyncBackoff({
      maxRetries: 5,
      delay: exponentialBackoff({ initialMs: 10, exponent: 2, jitter: 'none' }),
    });
    const r = route({
      backoff,
      target: () => {
        throw new Error('down');
      },
    });
    const d = await testRoute(r).deliver('m');
    expect(d.retries.map(x => x.delayMs)).toEqual([10, 20, 40, 80, 160]);
    expect(d.outcome).toMatchObject({ kind: 'failure', reason: 'retries-exhausted' });
  });
});
