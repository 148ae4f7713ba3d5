import { duration } from './duration.js';
import { exponentialBackoff, type Backoff } from './backoff.js';
import { isRetryable } from './classify.js';
import { sleep, type Clock } from './clock.js';
import { RetryBudgetExhaustedError } from './errors.js';
import { asScope, PolicyBase } from './internal/policyBase.js';
import { invoke } from './internal/invoke.js';
import type { Scope } from './internal/scope.js';
import type { PolicyContext, PolicyEvent, Task } from './policy.js';
import type { RetryBudget } from './retryBudget.js';
import type { IBackoff } from 'cockatiel';

/** Options of {@link retry}. */
export interface RetryOptions {
  /** Retries after the first try (dace's `retry_attempts`). Default 3. */
  readonly maxRetries?: number;
  /** Delay between tries. Default exponential from 100 ms to 10 s with decorrelated jitter. */
  readonly backoff?: Backoff;
  /** Which failures to retry. Default {@link isRetryable} with the options below. */
  readonly retryOn?: (error: unknown, attempt: number) => boolean;
  /** Retry attempt timeouts. Default false. */
  readonly retryOnTimeout?: boolean;
  /** The operation is idempotent (default true). When false only never-sent failures are retried. */
  readonly idempotent?: boolean;
  /** Shared budget limiting retries to a share of calls. */
  readonly budget?: RetryBudget;
  /** Wait at least the `retryAfterMs` an error carries (from `Retry-After`). Default true. */
  readonly respectRetryAfter?: boolean;
  /** Longest `Retry-After` honoured; beyond it the retry is given up. Default 30 000 ms. */
  readonly maxRetryAfterMs?: number;
  readonly clock?: Clock;
}

/**
 * Decides retries for one execution: the logic shared by {@link RetryPolicy} and `faultTolerant`.
 * `next(error)` returns the delay before the next try, or throws the error to give up with.
 */
export class RetrySchedule {
  attempt = 0;
  /** The error to give up with, once {@link next} returned -1. */
  finalError: unknown = undefined;
  private backoff: IBackoff<unknown> | undefined;

  constructor(
    private readonly policy: RetryPolicy,
    private readonly scope: Scope,
  ) {}

  /** The delay before retrying after `error`, or -1 to give up with {@link finalError}. */
  next(error: unknown): number {
    const { options, events } = this.policy;
    const attempt = this.attempt;
    if (this.scope.aborted) return this.giveUp('aborted', error, error);
    if (!this.policy.retryOn(error, attempt)) return this.giveUp('notRetryable', error, error);
    if (attempt >= options.maxRetries) return this.giveUp('maxRetries', error, error);
    const context = { attempt: attempt + 1, error };
    this.backoff = this.backoff ? this.backoff.next(context) : options.backoff.next(context);
    let delay = this.backoff.duration;
    const retryAfter = (error as { retryAfterMs?: unknown } | null)?.retryAfterMs;
    if (options.respectRetryAfter && typeof retryAfter === 'number') {
      if (retryAfter > options.maxRetryAfterMs) return this.giveUp('deadline', error, error);
      delay = Math.max(delay, retryAfter);
    }
    if (delay >= this.scope.remaining()) return this.giveUp('deadline', error, error);
    if (options.budget && !options.budget.tryWithdraw()) {
      return this.giveUp('budget', error, new RetryBudgetExhaustedError({ cause: error }));
    }
    this.attempt = attempt + 1;
    if (events.active) events.emit({ type: 'retry', attempt: attempt + 1, delayMs: delay, error });
    return delay;
  }

  private giveUp(
    reason: Extract<PolicyEvent, { type: 'giveUp' }>['reason'],
    error: unknown,
    final: unknown,
  ): number {
    const events = this.policy.events;
    if (events.active) events.emit({ type: 'giveUp', attempt: this.attempt, error, reason });
    this.finalError = final;
    return -1;
  }
}

type ResolvedRetryOptions = Required<
  Omit<RetryOptions, 'budget' | 'retryOn' | 'clock' | 'retryOnTimeout' | 'idempotent'>
> & {
  readonly budget: RetryBudget | undefined;
};

/**
 * Retries failed calls with backoff. Honours `Retry-After`, a shared retry budget and the deadline
 * (no sleep that cannot finish in time), cancels its sleep when the call is aborted, never retries
 * an open circuit or a full bulkhead, and gives each try a fresh context whose `attempt` counts up.
 */
export class RetryPolicy extends PolicyBase {
  readonly options: ResolvedRetryOptions;
  readonly retryOn: (error: unknown, attempt: number) => boolean;
  declare readonly events: PolicyBase['events'];
  private firstGiveUp: Extract<PolicyEvent, { type: 'giveUp' }> | undefined;

  constructor(options: RetryOptions = {}) {
    super(options.clock);
    const maxRetries = options.maxRetries ?? 3;
    if (!(Number.isInteger(maxRetries) || maxRetries === Infinity) || maxRetries < 0) {
      throw new RangeError(`maxRetries must be an integer >= 0, got ${maxRetries}`);
    }
    this.options = {
      maxRetries,
      backoff: options.backoff ?? exponentialBackoff(),
      respectRetryAfter: options.respectRetryAfter ?? true,
      maxRetryAfterMs: duration(options.maxRetryAfterMs ?? 30_000, 'maxRetryAfterMs'),
      budget: options.budget,
    };
    const rules = {
      retryOnTimeout: options.retryOnTimeout ?? false,
      idempotent: options.idempotent ?? true,
    };
    this.retryOn = options.retryOn ?? (error => isRetryable(error, rules));
  }

  /**
   * For executors that fail a call before its first try ran with an error {@link retryOn} refused:
   * emits the `giveUp` event a {@link RetrySchedule} would (no schedule is allocated).
   */
  giveUpFirst(error: unknown): void {
    if (!this.events.active) return;
    // fast failures repeat one error (an open circuit's, one per open period): one event for it
    let event = this.firstGiveUp;
    if (event === undefined || event.error !== error)
      event = this.firstGiveUp = { type: 'giveUp', attempt: 0, error, reason: 'notRetryable' };
    this.events.emit(event);
  }

  /** A schedule for one execution, for composite executors (which deposit into the budget themselves). */
  schedule(context: PolicyContext): RetrySchedule {
    return new RetrySchedule(this, asScope(context, this.clock));
  }

  run<T>(task: Task<T>, context: PolicyContext): Promise<T> {
    const scope = asScope(context, this.clock);
    this.options.budget?.deposit(scope.startedAt);
    // The first try runs on the caller's context; a schedule exists only once something failed.
    return invoke(task, scope).catch((error: unknown) => this.retryAfter(error, task, scope));
  }

  private async retryAfter<T>(firstError: unknown, task: Task<T>, scope: Scope): Promise<T> {
    const schedule = new RetrySchedule(this, scope);
    scope.tried ??= [];
    let error = firstError;
    for (;;) {
      const delay = schedule.next(error);
      if (delay < 0) throw schedule.finalError;
      if (delay > 0) await sleep(this.clock, delay, scope.signal);
      if (scope.aborted) throw scope.abortReason;
      const attempt = scope.fork();
      attempt.attempt = schedule.attempt;
      attempt.startedAt = this.clock.now();
      try {
        return await invoke(task, attempt);
      } catch (failure) {
        error = failure;
      } finally {
        attempt.dispose();
      }
    }
  }
}

/** A {@link RetryPolicy}. */
export function retry(options?: RetryOptions): RetryPolicy {
  return new RetryPolicy(options);
}
