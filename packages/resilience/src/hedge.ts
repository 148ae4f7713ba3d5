import { duration } from './duration.js';
import type { Clock } from './clock.js';
import { asScope, PolicyBase } from './internal/policyBase.js';
import { invoke } from './internal/invoke.js';
import type { Scope } from './internal/scope.js';
import { LatencyHistogram } from './latencyHistogram.js';
import type { PolicyContext, Task } from './policy.js';
import { RetryBudget } from './retryBudget.js';
import { AbortedError } from './errors.js';

/** How long to wait before sending a hedge. */
export type HedgeDelay =
  | number
  | {
      /** Observed latency percentile in (0, 1), e.g. 0.95. */
      readonly percentile: number;
      /** Delay used until enough samples exist, and the lower bound. Default 10 ms. */
      readonly minMs?: number;
      /** Upper bound. Default 10 000 ms. */
      readonly maxMs?: number;
    };

/** Options of {@link hedge}. */
export interface HedgeOptions {
  /** Fixed delay in ms or a percentile of observed latency. Default `{ percentile: 0.95 }`. */
  readonly delay?: HedgeDelay;
  /** Extra attempts at most. Default 1. */
  readonly maxHedges?: number;
  /** Hedges may add at most this share of load, in [0, 1]. Default 0.1 (Finagle's `maxExtraLoad`). */
  readonly maxExtraLoad?: number;
  readonly clock?: Clock;
}

const LOST = new AbortedError({ cause: 'another hedged attempt answered first' });

/**
 * Hedged (backup) requests: when the first attempt is slower than `delay`, a second one starts,
 * on an endpoint not tried yet when a load balancer sits inside; the first success wins and the
 * others are aborted. A failed attempt starts the next hedge at once. Hedges stay under
 * `maxExtraLoad` of calls. Use only for idempotent work.
 */
export class HedgePolicy extends PolicyBase {
  private readonly delay: HedgeDelay;
  private readonly maxHedges: number;
  private readonly budget: RetryBudget;
  /** Latency of successful attempts, feeding a percentile delay. */
  readonly latency: LatencyHistogram;

  constructor(options: HedgeOptions = {}) {
    super(options.clock);
    const delay = options.delay ?? { percentile: 0.95 };
    this.delay = typeof delay === 'object' ? delay : duration(delay, 'delay');
    this.maxHedges = options.maxHedges ?? 1;
    const maxExtraLoad = options.maxExtraLoad ?? 0.1;
    if (!Number.isInteger(this.maxHedges) || this.maxHedges < 1 || this.maxHedges > 10)
      throw new RangeError(`maxHedges must be an integer in [1, 10], got ${this.maxHedges}`);
    if (
      typeof this.delay !== 'number' &&
      !(this.delay.percentile > 0 && this.delay.percentile < 1)
    ) {
      throw new RangeError('hedge delay must be ms >= 0 or { percentile } in (0, 1)');
    }
    this.budget = new RetryBudget({
      percentCanRetry: maxExtraLoad,
      minRetriesPerSec: 0,
      clock: this.clock,
    });
    this.latency = new LatencyHistogram({ clock: this.clock });
  }

  /** The delay the next call would wait before hedging. */
  get delayMs(): number {
    const d = this.delay;
    if (typeof d === 'number') return d;
    const { minMs = 10, maxMs = 10_000 } = d;
    if (this.latency.count < 20) return minMs;
    return Math.min(maxMs, Math.max(minMs, this.latency.percentile(d.percentile)));
  }

  run<T>(task: Task<T>, context: PolicyContext): Promise<T> {
    const scope = asScope(context, this.clock);
    scope.tried ??= [];
    this.budget.deposit();
    const delayMs = this.delayMs;
    return new Promise<T>((resolve, reject) => {
      const attempts: Scope[] = [];
      let pending = 0;
      let done = false;
      let timer: ReturnType<Clock['setTimeout']> | undefined;
      // Aborts the losers; the winner's signal stays live (its result may still be streaming).
      const finish = (winner?: Scope) => {
        done = true;
        if (timer) this.clock.clearTimeout(timer);
        for (const a of attempts) {
          if (a !== winner) a.abort(LOST);
          a.dispose();
        }
      };
      const launch = () => {
        if (done) return;
        const attempt = scope.fork();
        attempt.attempt = scope.attempt + attempts.length;
        attempts.push(attempt);
        pending++;
        const start = this.clock.now();
        if (attempts.length > 1 && this.events.active)
          this.events.emit({ type: 'hedge', attempt: attempts.length - 1, delayMs });
        if (attempts.length <= this.maxHedges) timer = this.clock.setTimeout(hedgeNow, delayMs);
        invoke(task, attempt).then(
          value => {
            pending--;
            if (done) return;
            this.latency.record(this.clock.now() - start);
            finish(attempt);
            resolve(value);
          },
          error => {
            pending--;
            if (done) return;
            if (!scope.aborted && attempts.length <= this.maxHedges && this.budget.tryWithdraw()) {
              if (timer) this.clock.clearTimeout(timer);
              timer = undefined;
              launch();
            } else if (pending === 0) {
              finish();
              reject(error);
            }
          },
        );
      };
      const hedgeNow = () => {
        timer = undefined;
        if (!done && !scope.aborted && this.budget.tryWithdraw()) launch();
      };
      launch();
    });
  }
}

/** A {@link HedgePolicy}. */
export function hedge(options?: HedgeOptions): HedgePolicy {
  return new HedgePolicy(options);
}
