import { describe, expect, it } from 'vitest';
import { ManualClock } from './manualClock.js';
import { RetryBudget, retryBudget } from './retryBudget.js';

function withdrawAll(budget: RetryBudget, max = 10_000): number {
  let n = 0;
  while (n < max && budget.tryWithdraw()) n++;
  return n;
}

describe('RetryBudget', () => {
  it('defaults to a reserve of 10 retries/s over 10 s', () => {
    const clock = new ManualClock();
    const budget = retryBudget({ clock });
    expect(budget.balance).toBe(100);
    expect(withdrawAll(budget)).toBe(100);
    expect(budget.balance).toBe(0);
    expect(budget.tryWithdraw()).toBe(false);
  });

  it('lets percentCanRetry of the deposited calls retry', () => {
    const clock = new ManualClock();
    const budget = retryBudget({ percentCanRetry: 0.2, minRetriesPerSec: 0, clock });
    expect(budget.balance).toBe(0);
    expect(budget.tryWithdraw()).toBe(false);
    for (let i = 0; i < 10; i++) budget.deposit();
    expect(budget.balance).toBe(2);
    expect(withdrawAll(budget)).toBe(2);
    for (let i = 0; i < 4; i++) budget.deposit();
    expect(budget.tryWithdraw()).toBe(false); // 0.8 of a retry earned
    budget.deposit();
    expect(budget.tryWithdraw()).toBe(true);
  });

  it('adds percent and reserve: 10 % of 1000 calls + 10/s over 10 s = 200 retries', () => {
    const clock = new ManualClock();
    const budget = retryBudget({ clock });
    for (let i = 0; i < 1000; i++) budget.deposit();
    expect(budget.balance).toBe(200);
    expect(withdrawAll(budget)).toBe(200);
  });

  it('expires deposits after ttl', async () => {
    const clock = new ManualClock();
    const budget = retryBudget({ percentCanRetry: 0.5, minRetriesPerSec: 0, ttlMs: 10_000, clock });
    for (let i = 0; i < 10; i++) budget.deposit();
    expect(budget.balance).toBe(5);
    await clock.advance(9_999);
    expect(budget.balance).toBe(5);
    await clock.advance(1);
    expect(budget.balance).toBe(0);
    expect(budget.tryWithdraw()).toBe(false);
  });

  it('expires each deposit on its own slice', async () => {
    const clock = new ManualClock();
    const budget = retryBudget({ percentCanRetry: 1, minRetriesPerSec: 0, ttlMs: 2000, clock });
    budget.deposit(); // slice [0, 200)
    await clock.advance(1000);
    budget.deposit(); // slice [1000, 1200)
    expect(budget.balance).toBe(2);
    await clock.advance(1000); // t = 2000: the first one is gone
    expect(budget.balance).toBe(1);
    await clock.advance(1000); // t = 3000: both gone
    expect(budget.balance).toBe(0);
  });

  it('refills the reserve as withdrawals expire', async () => {
    const clock = new ManualClock();
    const budget = retryBudget({ percentCanRetry: 0.1, minRetriesPerSec: 5, ttlMs: 1000, clock });
    expect(withdrawAll(budget)).toBe(5);
    await clock.advance(500);
    expect(budget.tryWithdraw()).toBe(false);
    await clock.advance(500);
    expect(withdrawAll(budget)).toBe(5);
  });

  it('uses the explicit now passed to deposit and tryWithdraw', () => {
    const clock = new ManualClock();
    const budget = retryBudget({ percentCanRetry: 1, minRetriesPerSec: 0, ttlMs: 1000, clock });
    budget.deposit(0);
    expect(budget.tryWithdraw(999)).toBe(true);
    budget.deposit(1000);
    expect(budget.tryWithdraw(2000)).toBe(false); // that deposit expired
  });

  it('with no percentage and no reserve, never allows a retry', () => {
    const clock = new ManualClock();
    const budget = retryBudget({ percentCanRetry: 0, minRetriesPerSec: 0, clock });
    for (let i = 0; i < 100; i++) budget.deposit();
    expect(budget.balance).toBe(0);
    expect(budget.tryWithdraw()).toBe(false);
  });

  it('with no percentage, allows only the reserve however many calls', () => {
    const clock = new ManualClock();
    const budget = retryBudget({ percentCanRetry: 0, minRetriesPerSec: 2, ttlMs: 1000, clock });
    for (let i = 0; i < 1000; i++) budget.deposit();
    expect(budget.balance).toBe(2);
    expect(withdrawAll(budget)).toBe(2);
  });

  it('throws RangeError on bad options', () => {
    expect(() => retryBudget({ percentCanRetry: -0.1 })).toThrow(RangeError);
    expect(() => retryBudget({ percentCanRetry: 1.5 })).toThrow(RangeError);
    expect(() => retryBudget({ percentCanRetry: Number.NaN })).toThrow(RangeError);
    expect(() => retryBudget({ minRetriesPerSec: -1 })).toThrow(RangeError);
    expect(() => retryBudget({ ttlMs: 999 })).toThrow(RangeError);
    expect(() => retryBudget({ ttlMs: 60_001 })).toThrow(RangeError);
    expect(
      () => new RetryBudget({ percentCanRetry: 1, minRetriesPerSec: 0, ttlMs: 60_000 }),
    ).not.toThrow();
  });
});
