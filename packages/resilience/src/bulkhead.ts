import { duration } from './duration.js';
import type { Clock } from './clock.js';
import { BulkheadFullError } from './errors.js';
import { withoutStack } from './xError.js';
import { asScope, PolicyBase } from './internal/policyBase.js';
import { invoke } from './internal/invoke.js';
import type { Scope } from './internal/scope.js';
import type { PolicyContext, Task } from './policy.js';

/** Options of {@link bulkhead}. */
export interface BulkheadOptions {
  /** Calls allowed to run at once. Required, >= 1. */
  readonly limit: number;
  /** Calls allowed to wait for a slot (FIFO). Default 0: reject at once when full. */
  readonly queue?: number;
  /** Longest wait in the queue before rejecting with `BULKHEAD_FULL`. Default: until the call's deadline. */
  readonly queueTimeoutMs?: number;
  /** Name used in errors and events (keyed bulkheads set it to the key). */
  readonly key?: string;
  readonly clock?: Clock;
}

interface Waiter {
  grant: () => void;
  fail: (error: unknown) => void;
  cancelled: boolean;
}

/**
 * A concurrency limit with a bounded FIFO queue. Queued calls leave the queue as soon as their
 * signal aborts or their wait times out, so aborted entries never starve the queue (the bug
 * cockatiel 3.x has: #112/#114, fixed only in its Node 22 line).
 */
export class Bulkhead extends PolicyBase {
  readonly limit: number;
  readonly queueLimit: number;
  readonly key: string | undefined;
  private readonly queueTimeoutMs: number | undefined;
  private active = 0;
  private waiting: Waiter[] = [];
  private waitingCount = 0;

  constructor(options: BulkheadOptions) {
    super(options.clock);
    const { limit, queue = 0 } = options;
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`bulkhead limit must be an integer >= 1, got ${limit}`);
    if (!(Number.isInteger(queue) || queue === Infinity) || queue < 0)
      throw new RangeError(`bulkhead queue must be an integer >= 0, got ${queue}`);
    this.limit = limit;
    this.queueLimit = queue;
    this.key = options.key;
    this.queueTimeoutMs =
      options.queueTimeoutMs === undefined
        ? undefined
        : duration(options.queueTimeoutMs, 'queueTimeoutMs');
  }

  /** Calls running now. */
  get running(): number {
    return this.active;
  }

  /** Calls waiting for a slot. */
  get queued(): number {
    return this.waitingCount;
  }

  /** Takes a slot if one is free, without waiting. Pair with {@link release}. */
  tryAcquire(): boolean {
    if (this.active < this.limit) {
      this.active++;
      return true;
    }
    return false;
  }

  /**
   * Takes a slot: `undefined` when granted at once (the fast path allocates nothing), otherwise a
   * promise that resolves when granted, or rejects with `BULKHEAD_FULL` or the abort reason.
   * `waiter` is what may abort the wait: a signal, or a policy context (its signal is only read
   * when the call has to queue). Pair every grant with {@link release}.
   */
  acquire(waiter?: AbortSignal | { readonly signal: AbortSignal }): Promise<void> | undefined {
    if (this.active < this.limit) {
      this.active++;
      return undefined;
    }
    if (this.waitingCount >= this.queueLimit) {
      if (this.events.active)
        this.events.emit({ type: 'reject', reason: 'bulkhead', key: this.key });
      return Promise.reject(this.fullError());
    }
    return this.enqueue(
      waiter === undefined || waiter instanceof AbortSignal ? waiter : waiter.signal,
    );
  }

  /** Gives a slot back, handing it to the first live waiter. */
  release(): void {
    while (this.waiting.length > 0) {
      const next = this.waiting.shift()!;
      if (next.cancelled) continue;
      this.waitingCount--;
      next.grant();
      return;
    }
    this.active--;
  }

  run<T>(task: Task<T>, context: PolicyContext): Promise<T> {
    const scope = asScope(context, this.clock);
    const wait = this.acquire(scope);
    if (wait === undefined) return this.runHolding(task, scope);
    return wait.then(() => this.runHolding(task, scope));
  }

  private runHolding<T>(task: Task<T>, scope: Scope): Promise<T> {
    return invoke(task, scope).then(
      value => {
        this.release();
        return value;
      },
      error => {
        this.release();
        throw error;
      },
    );
  }

  private enqueue(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      let timer: ReturnType<Clock['setTimeout']> | undefined;
      const leave = (error: unknown) => {
        if (waiter.cancelled) return;
        waiter.cancelled = true;
        this.waitingCount--;
        cleanup();
        reject(error);
      };
      const onAbort = () => leave(signal!.reason);
      const cleanup = () => {
        signal?.removeEventListener('abort', onAbort);
        if (timer) this.clock.clearTimeout(timer);
      };
      const waiter: Waiter = {
        cancelled: false,
        grant: () => {
          waiter.cancelled = true;
          cleanup();
          resolve();
        },
        fail: leave,
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (this.queueTimeoutMs !== undefined) {
        timer = this.clock.setTimeout(() => leave(this.fullError()), this.queueTimeoutMs);
      }
      if (this.waiting.length > 2 * this.waitingCount + 16)
        this.waiting = this.waiting.filter(w => !w.cancelled);
      this.waiting.push(waiter);
      this.waitingCount++;
    });
  }

  private fullError(): BulkheadFullError {
    return withoutStack(() => new BulkheadFullError(this.limit, this.queueLimit, this.key));
  }
}

/** A {@link Bulkhead}: at most `limit` concurrent calls, `queue` more waiting. */
export function bulkhead(
  limit: number,
  queue = 0,
  options: Omit<BulkheadOptions, 'limit' | 'queue'> = {},
): Bulkhead {
  return new Bulkhead({ ...options, limit, queue });
}
