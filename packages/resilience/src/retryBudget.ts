import { systemClock, type Clock } from './clock.js';

/** Options of {@link retryBudget}. */
export interface RetryBudgetOptions {
  /** Share of calls that may be retried, in [0, 1]. Default 0.1 (10 %). */
  readonly percentCanRetry?: number;
  /** Retries always allowed per second, whatever the traffic. Default 10. */
  readonly minRetriesPerSec?: number;
  /** How long a deposit counts. Default 10 000 ms. */
  readonly ttlMs?: number;
  readonly clock?: Clock;
}

const SLICES = 10;
const DEPOSIT = 1000;

/**
 * Finagle's retry budget: every call deposits, every retry withdraws, deposits expire after
 * `ttlMs`, so retries stay under `percentCanRetry` of calls plus `minRetriesPerSec`. Share one
 * budget between all calls to a dependency so a failing backend cannot cause a retry storm.
 */
export class RetryBudget {
  private readonly depositAmount: number;
  private readonly withdrawal: number;
  private readonly reserve: number;
  private readonly sliceMs: number;
  private readonly clock: Clock;
  private readonly slices = new Float64Array(SLICES);
  private sliceIndex = 0;
  private sliceStart: number;
  private sum = 0;

  constructor(options: RetryBudgetOptions = {}) {
    const { percentCanRetry = 0.1, minRetriesPerSec = 10, ttlMs = 10_000 } = options;
    if (!(percentCanRetry >= 0 && percentCanRetry <= 1))
      throw new RangeError(`percentCanRetry must be in [0, 1], got ${percentCanRetry}`);
    if (!(minRetriesPerSec >= 0))
      throw new RangeError(`minRetriesPerSec must be >= 0, got ${minRetriesPerSec}`);
    if (!(ttlMs >= 1000 && ttlMs <= 60_000))
      throw new RangeError(`ttlMs must be in [1000, 60000], got ${ttlMs}`);
    this.clock = options.clock ?? systemClock;
    // As Finagle: with no percentage, calls earn nothing and every retry comes from the reserve.
    this.depositAmount = percentCanRetry === 0 ? 0 : DEPOSIT;
    this.withdrawal = percentCanRetry === 0 ? 1 : DEPOSIT / percentCanRetry;
    this.reserve = minRetriesPerSec * (ttlMs / 1000) * this.withdrawal;
    this.sliceMs = ttlMs / SLICES;
    this.sliceStart = this.clock.now();
  }

  /** Records one call (call it once per call, not per retry). `now` saves a clock read. */
  deposit(now?: number): void {
    this.rotate(now);
    this.slices[this.sliceIndex]! += this.depositAmount;
    this.sum += this.depositAmount;
  }

  /** Takes one retry from the budget; false when the budget is spent. */
  tryWithdraw(now?: number): boolean {
    this.rotate(now);
    if (this.sum + this.reserve < this.withdrawal) return false;
    this.slices[this.sliceIndex]! -= this.withdrawal;
    this.sum -= this.withdrawal;
    return true;
  }

  /** Retries available now. */
  get balance(): number {
    this.rotate();
    return Math.max(0, Math.floor((this.sum + this.reserve) / this.withdrawal));
  }

  private rotate(now = this.clock.now()): void {
    if (now - this.sliceStart < this.sliceMs) return; // the usual case: still in the current slice
    let elapsed = Math.floor((now - this.sliceStart) / this.sliceMs);
    if (elapsed <= 0) return;
    this.sliceStart += elapsed * this.sliceMs;
    for (elapsed = Math.min(elapsed, SLICES); elapsed > 0; elapsed--) {
      this.sliceIndex = (this.sliceIndex + 1) % SLICES;
      this.sum -= this.slices[this.sliceIndex]!;
      this.slices[this.sliceIndex] = 0;
    }
  }
}

/** A {@link RetryBudget}. */
export function retryBudget(options?: RetryBudgetOptions): RetryBudget {
  return new RetryBudget(options);
}
