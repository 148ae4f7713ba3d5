import { duration } from './duration.js';
import type { Clock } from './clock.js';
import { TimeoutError } from './errors.js';
import { asScope, PolicyBase } from './internal/policyBase.js';
import { timerQueue, type TimerQueue } from './timerQueue.js';
import { invoke } from './internal/invoke.js';
import type { PolicyContext, Task } from './policy.js';
import type { Scope } from './internal/scope.js';

/** Options of {@link timeout}. */
export interface TimeoutOptions {
  /** Whether this bounds one attempt (retried only with `retryOnTimeout`) or the whole operation. Default `'operation'`. */
  readonly scope?: 'operation' | 'attempt';
  /** Time source (default: the system clock). */
  readonly clock?: Clock;
}

/**
 * A deadline: the call rejects with `TIMEOUT` when `ms` pass (or an enclosing deadline comes
 * first), and the context's signal is aborted so the work can stop. Unlike cockatiel's timeout it
 * creates no AbortController unless the work reads `signal`, never aborts on success, and shares
 * one timer between all calls.
 */
export class TimeoutPolicy extends PolicyBase {
  private readonly timers: TimerQueue;
  readonly scope: 'operation' | 'attempt';

  /** The limit in ms (`Infinity`: none, also for any value above 2^31−1 ms). */
  readonly ms: number;

  constructor(ms: number, options: TimeoutOptions = {}) {
    super(options.clock);
    this.ms = duration(ms, 'timeout', { exclusiveMin: true });
    this.scope = options.scope ?? 'operation';
    this.timers = timerQueue(this.clock);
  }

  run<T>(task: Task<T>, context: PolicyContext): Promise<T> {
    return this.runAt(task, asScope(context, this.clock), this.clock.now());
  }

  /** {@link run} with the current time already read (saves a clock read on hot paths). */
  runAt<T>(task: Task<T>, outer: Scope, now: number): Promise<T> {
    const until = Math.min(outer.deadline, now + this.ms);
    const limitMs = until < now + this.ms ? Math.max(0, Math.round(until - now)) : this.ms;
    if (until <= now) return Promise.reject(new TimeoutError(limitMs, this.scope));
    const scope = outer.fork();
    scope.deadline = until;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const entry = this.timers.add(until, () => {
        if (settled) return;
        settled = true;
        const error = new TimeoutError(limitMs, this.scope);
        scope.abort(error);
        scope.dispose();
        if (this.events.active) this.events.emit({ type: 'timeout', timeoutMs: limitMs });
        reject(error);
      });
      invoke(task, scope).then(
        value => {
          if (settled) return this.late();
          settled = true;
          this.timers.remove(entry);
          scope.dispose();
          resolve(value);
        },
        (error: unknown) => {
          if (settled) return this.late(error);
          settled = true;
          this.timers.remove(entry);
          scope.dispose();
          reject(error);
        },
      );
    });
  }

  private late(error?: unknown): void {
    if (this.events.active) this.events.emit({ type: 'lateSettle', error });
  }
}

/** A {@link TimeoutPolicy} of `ms` milliseconds. */
export function timeout(ms: number, options?: TimeoutOptions): TimeoutPolicy {
  return new TimeoutPolicy(ms, options);
}
