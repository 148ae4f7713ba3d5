import { ConsecutiveBreaker } from 'cockatiel';
import { describe, expect, it } from 'vitest';
import { systemClock } from './clock.js';
import { coarseNow, coarseNowOf } from './coarseNow.js';
import { faultTolerant } from './faultTolerant.js';
import { ManualClock } from './manualClock.js';

/** Burns `ms` of wall time without yielding to the event loop. */
function spin(ms: number): void {
  const until = systemClock.now() + ms;
  while (systemClock.now() < until);
}

const nextTurn = () => new Promise(resolve => setImmediate(resolve));

describe('coarseNow', () => {
  it('shares one reading within a burst, at most 32 uses', async () => {
    await nextTurn();
    const first = coarseNow();
    spin(2);
    const readings = [first];
    for (let i = 1; i < 40; i++) readings.push(coarseNow());
    // the first 32 uses share the reading; the 33rd reads the clock again (2 ms later)
    expect(new Set(readings.slice(0, 32)).size).toBe(1);
    expect(readings[32]! - first).toBeGreaterThanOrEqual(2);
  });

  it('reads the clock again after a turn of the event loop', async () => {
    await nextTurn();
    const before = coarseNow();
    spin(2);
    await nextTurn();
    expect(coarseNow() - before).toBeGreaterThanOrEqual(2);
  });

  it('reads any other clock as is', async () => {
    const clock = new ManualClock(1_000);
    const now = coarseNowOf(clock);
    expect(now()).toBe(1_000);
    await clock.advance(5);
    expect(now()).toBe(1_005);
    expect(coarseNowOf(systemClock)).toBe(coarseNow);
  });

  it('an open circuit probes within 32 calls of its reset time in a loop that never yields to timers', async () => {
    let runs = 0;
    let fail = true;
    const fn = faultTolerant(
      () => {
        runs++;
        if (fail) throw new Error('down');
        return 1;
      },
      {
        dependencyId: 'coarse',
        retryAttempts: 0,
        circuitResetTimeout: 20,
        circuitBreaker: { strategy: () => new ConsecutiveBreaker(1) },
      },
    );
    await fn().catch(() => {});
    expect(fn.breakers.peek('coarse')!.state).toBe('open');
    fail = false;
    const openedAt = systemClock.now();
    let afterReset = 0;
    for (let i = 0; i < 1_000 && runs === 1; i++) {
      spin(1);
      // awaiting a rejected promise yields to microtasks only: no timer or immediate runs
      await fn().catch(() => {});
      if (systemClock.now() - openedAt > 20) afterReset++;
    }
    expect(runs).toBe(2); // the probe ran
    expect(afterReset).toBeLessThanOrEqual(33);
    expect(fn.breakers.peek('coarse')!.state).toBe('closed');
    await fn.close();
  });
});
