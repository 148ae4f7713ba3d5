import { systemClock, sleep, type Clock } from './clock.js';
import { RateLimitedError } from './errors.js';
import { asScope, PolicyBase } from './internal/policyBase.js';
import { invoke } from './internal/invoke.js';
import type { PolicyContext, Task } from './policy.js';
import { withoutStack } from './xError.js';

/** Options of {@link rateLimit}. */
export interface RateLimitOptions {
  /** Tokens added per second. Required, > 0. */
  readonly perSecond: number;
  /** Bucket size (largest burst). Default `perSecond`. */
  readonly burst?: number;
  /** Wait up to this long for a token instead of rejecting at once. Default 0. */
  readonly maxWaitMs?: number;
  readonly clock?: Clock;
}

/**
 * A token bucket: `perSecond` calls per second with bursts up to `burst`. Without a token the call
 * rejects with `RATE_LIMITED` (carrying `retryAfterMs`), or waits up to `maxWaitMs` for one.
 */
export class RateLimiter extends PolicyBase {
  private readonly perMs: number;
  readonly burst: number;
  private readonly maxWaitMs: number;
  private tokens: number;
  private updated: number;

  constructor(options: RateLimitOptions) {
    super(options.clock ?? systemClock);
    const { perSecond, burst = perSecond, maxWaitMs = 0 } = options;
    if (!(perSecond > 0)) throw new RangeError(`perSecond must be > 0, got ${perSecond}`);
    if (!(burst >= 1)) throw new RangeError(`burst must be >= 1, got ${burst}`);
    if (!(maxWaitMs >= 0)) throw new RangeError(`maxWaitMs must be >= 0, got ${maxWaitMs}`);
    this.perMs = perSecond / 1000;
    this.burst = burst;
    this.maxWaitMs = maxWaitMs;
    this.tokens = burst;
    this.updated = this.clock.now();
  }

  /** Tokens available now. */
  get available(): number {
    this.refill();
    return this.tokens;
  }

  /**
   * Takes a token: returns 0 when taken, else the ms until one is available (a token is then
   * reserved when that wait is within `maxWaitMs`, see {@link run}).
   */
  tryTake(): number {
    this.refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return (1 - this.tokens) / this.perMs;
  }

  run<T>(task: Task<T>, context: PolicyContext): Promise<T> {
    const scope = asScope(context, this.clock);
    const wait = this.tryTake();
    if (wait === 0) return invoke(task, scope);
    if (wait <= this.maxWaitMs && wait < scope.remaining()) {
      this.tokens -= 1; // reserve the token that arrives after `wait`
      return sleep(this.clock, wait, scope.signal).then(
        () => invoke(task, scope),
        (error: unknown) => {
          this.tokens += 1; // aborted while waiting: the call never runs, give its token back
          throw error;
        },
      );
    }
    if (this.events.active) this.events.emit({ type: 'reject', reason: 'rateLimit' });
    return Promise.reject(withoutStack(() => new RateLimitedError(wait)));
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + (now - this.updated) * this.perMs);
    this.updated = now;
  }
}

/** A {@link RateLimiter}. */
export function rateLimit(options: RateLimitOptions): RateLimiter {
  return new RateLimiter(options);
}
