// Regression tests for bugs found in review; each failed before its fix.
import { describe, expect, it } from 'vitest';
import { bulkhead } from './bulkhead.js';
import { constantBackoff } from './backoff.js';
import { concurrencyLimit } from './concurrencyLimit.js';
import { faultTolerant } from './faultTolerant.js';
import { ManualClock } from './manualClock.js';
import { retry } from './retry.js';
import { RetryBudget } from './retryBudget.js';
import { timeout } from './timeout.js';

describe('regressions', () => {
  it('retry: a caller abort during the backoff sleep cancels the sleep timer', async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const p = retry({ backoff: constantBackoff(10_000), clock }).execute(() => {
      throw new Error('x');
    }, controller.signal);
    p.catch(() => {});
    await clock.advance(5);
    expect(clock.pending).toBe(1);
    controller.abort();
    await clock.advance(0);
    expect(clock.pending).toBe(0);
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' });
  });

  it('policy.execute: a caller abort reaches a context signal first read after an await', async () => {
    const controller = new AbortController();
    let signal: AbortSignal | undefined;
    const p = bulkhead(1).execute(async ctx => {
      await Promise.resolve();
      signal = ctx.signal;
      return new Promise(() => {});
    }, controller.signal);
    await new Promise(r => setImmediate(r));
    controller.abort();
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' });
    expect(signal!.aborted).toBe(true);
  });

  it('faultTolerant: close() is idempotent', async () => {
    const fn = faultTolerant(() => 1);
    await fn();
    await fn.close();
    await expect(fn.close()).resolves.toBeUndefined();
  });

  it('faultTolerant: per-netloc options are validated at creation', () => {
    expect(() => faultTolerant(() => 1, { maxOpenPerNetloc: 0 })).toThrow(RangeError);
    expect(() => faultTolerant(() => 1, { maxQueuedPerNetloc: -1 })).toThrow(RangeError);
    expect(() => faultTolerant(() => 1, { circuitResetTimeout: -5 })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => faultTolerant(() => 1, { circuitBreaker: { halfOpenProbes: 0 } })).toThrow(
      RangeError,
    );
  });

  it('faultTolerant: a call never throws synchronously, even when a load balancer function throws', async () => {
    const fn = faultTolerant(() => 1, {
      loadBalancer: () => {
        throw new Error('no idea where to go');
      },
      retryAttempts: 0,
    });
    let p: Promise<unknown> | undefined;
    expect(() => {
      p = fn();
    }).not.toThrow();
    await expect(p).rejects.toThrow('no idea where to go');
    await fn.close();
  });

  it('faultTolerant: a hedged call deposits into the retry budget once', async () => {
    const clock = new ManualClock();
    const budget = new RetryBudget({ percentCanRetry: 0.1, minRetriesPerSec: 0, clock });
    const fn = faultTolerant(() => 'ok', { clock, hedge: true, retryBudget: budget });
    for (let i = 0; i < 10; i++) await fn();
    await fn.close();
    expect(budget.balance).toBe(1);
  });

  it('timeout: a 101 ms deadline does not fire at 100 ms on a manual clock', async () => {
    const clock = new ManualClock();
    let at = -1;
    timeout(100, { clock })
      .execute(() => new Promise(() => {}))
      .catch(() => {});
    timeout(101, { clock })
      .execute(() => new Promise(() => {}))
      .catch(() => {
        at = clock.now();
      });
    await clock.advance(100);
    expect(at).toBe(-1);
    await clock.advance(1);
    expect(at).toBe(101);
  });

  it('concurrencyLimit: a bad limit throws at creation', () => {
    expect(() => concurrencyLimit({ limit: 0 })).toThrow(RangeError);
  });
});
