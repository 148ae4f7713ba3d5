import type { Balancer } from '../balancers/balancer.js';
import type { Bulkhead } from '../bulkhead.js';
import type { CircuitBreaker } from '../circuitBreaker.js';
import type { Clock, TimerHandle } from '../clock.js';
import type { Endpoint } from '../endpoint.js';
import { AbortedError, TimeoutError } from '../errors.js';
import type { KeyedPolicy } from '../keyed.js';
import type { LoadBalancePolicy } from '../loadBalance.js';
import type { RetryPolicy, RetrySchedule } from '../retry.js';
import type { RetryBudget } from '../retryBudget.js';
import { rejectSoon } from './rejectLater.js';
import { Scope } from './scope.js';
import type { TimerEntry, TimerQueue } from '../timerQueue.js';
import { errorType, type TraceSpan } from '../tracing.js';
import { faultTolerantAttemptTracer } from './faultTolerantAttemptTracer.js';

/** The policies one `faultTolerant` function runs its calls through. */
export interface FaultTolerantLayers {
  readonly clock: Clock;
  readonly dependencyId: string;
  readonly timeoutMs: number;
  readonly timers: TimerQueue;
  readonly retry: RetryPolicy;
  readonly budget: RetryBudget | undefined;
  readonly loadBalance: LoadBalancePolicy | undefined;
  readonly breakers: KeyedPolicy<CircuitBreaker>;
  readonly limits: KeyedPolicy<Bulkhead>;
  readonly onTimeout: () => void;
  /** Runs the wrapped function for one attempt with the caller's arguments. */
  readonly invoke: (scope: Scope, args: readonly unknown[]) => unknown;
  /** Told how a call ended (`now` is the clock time it ended), before its promise settles. */
  readonly settled: OnSettled;
  /** Answers a failed call from its final error and the caller's arguments. */
  readonly fallback: ((error: unknown, args: readonly unknown[]) => unknown) | undefined;
}

/** Told how a call ended: its duration and `now`, the clock time it ended. */
export type OnSettled = (ok: boolean, error: unknown, durationMs: number, now: number) => void;

/** Where {@link capture} leaves a new promise's functions (an executor runs synchronously). */
const captured = {
  resolve: undefined as unknown as (value: unknown) => void,
  reject: undefined as unknown as (error: unknown) => void,
};

/** A promise executor shared by every call: no closure per call. */
function capture(resolve: (value: never) => void, reject: (error: unknown) => void): void {
  captured.resolve = resolve as (value: unknown) => void;
  captured.reject = reject;
}

/** Placeholder of the promise functions until {@link FaultTolerantCall.start} sets them. */
function unset(): void {}

/**
 * One call of a `faultTolerant` function: deadline → retry → load balancing → breaker per netloc
 * → limit per netloc → the function. The same policy objects as the composable API decide (breaker
 * admission and accounting, bulkhead slots, retry schedule and budget, endpoint choice); this only
 * sequences them with plain callbacks and a single promise, which keeps the per-call overhead
 * under a microsecond and makes fast-fail cheap (no rethrow per layer, one late rejection).
 */
export class FaultTolerantCall<R> extends Scope implements TimerEntry {
  // Every field is assigned once in the constructor, in a fixed order (see Scope).
  declare private readonly layers: FaultTolerantLayers;
  declare private readonly args: readonly unknown[];
  declare private readonly callerSignal: AbortSignal | undefined;
  /** An incoming budget (ms left upstream): the deadline is the smaller of it and `timeoutMs`. */
  declare private readonly budgetMs: number | undefined;
  /** The call's span when tracing is on: attempts become its children, retries its events. */
  declare private readonly trace: TraceSpan | undefined;
  // The call is its own deadline entry in the shared timer queue (no entry object, no closure).
  declare at: number;
  declare prev: TimerEntry | undefined;
  declare next: TimerEntry | undefined;
  declare queued: boolean;
  declare private resolve: (value: R | PromiseLike<R>) => void;
  declare private reject: (error: unknown) => void;
  declare private settled: boolean;
  declare private starting: boolean;
  declare private retryTimer: TimerHandle | undefined;
  declare private schedule: RetrySchedule | undefined;
  // the attempt in progress (attempts run one after another)
  declare private scope: Scope;
  declare private breaker: CircuitBreaker;
  declare private permit: number;
  declare private limit: Bulkhead | undefined;
  declare private chosen: Endpoint | undefined;
  declare private balancer: Balancer<Endpoint> | undefined;
  declare private attemptStart: number;
  declare private attemptSpan: TraceSpan | undefined;
  declare private abortListener: (() => void) | undefined;

  constructor(
    layers: FaultTolerantLayers,
    args: readonly unknown[],
    callerSignal: AbortSignal | undefined,
    budgetMs?: number,
    trace?: TraceSpan,
  ) {
    // The call is also the root scope of its attempts (one object less per call).
    super(layers.clock, undefined, callerSignal);
    this.layers = layers;
    this.args = args;
    this.callerSignal = callerSignal;
    this.budgetMs = budgetMs;
    this.trace = trace;
    this.at = Infinity;
    this.prev = undefined;
    this.next = undefined;
    this.queued = false;
    this.resolve = unset;
    this.reject = unset;
    this.settled = false;
    this.starting = true;
    this.retryTimer = undefined;
    this.schedule = undefined;
    this.scope = this;
    this.breaker = undefined as unknown as CircuitBreaker;
    this.permit = -1;
    this.limit = undefined;
    this.chosen = undefined;
    this.balancer = undefined;
    this.attemptStart = 0;
    this.attemptSpan = undefined;
    this.abortListener = undefined;
  }

  /** The call's deadline in ms: its own timeout, or the incoming budget when smaller. */
  private get limitMs(): number {
    const { budgetMs } = this;
    return budgetMs === undefined || budgetMs >= this.layers.timeoutMs
      ? this.layers.timeoutMs
      : Math.max(0, Math.round(budgetMs));
  }

  start(): Promise<R> {
    const promise = new Promise<R>(capture);
    this.resolve = captured.resolve as (value: R | PromiseLike<R>) => void;
    this.reject = captured.reject;
    const { layers } = this;
    // The call is the root scope: its first attempt runs on it.
    const limitMs = this.limitMs;
    if (limitMs !== Infinity) this.deadline = this.startedAt + limitMs;
    if (limitMs <= 0) {
      // the caller's budget is already spent: nothing is sent
      layers.onTimeout();
      this.finish(false, undefined, new TimeoutError(0, 'operation'));
      this.starting = false;
      return promise;
    }
    layers.budget?.deposit(this.startedAt);
    this.tryAttempt(this);
    this.starting = false;
    // Timers and listeners only for calls still running after the synchronous part (fast-fail skips them).
    if (!this.settled) {
      if (this.deadline !== Infinity) {
        this.at = this.deadline;
        layers.timers.insert(this);
      }
      if (this.callerSignal) {
        this.abortListener = () => this.onAbort();
        this.callerSignal.addEventListener('abort', this.abortListener, { once: true });
      }
    }
    return promise;
  }

  private tryAttempt(scope: Scope): void {
    let wait: Promise<void> | undefined;
    try {
      if (!this.admit(scope)) return;
      wait = this.limit!.acquire(scope);
    } catch (error) {
      this.failed(error); // a call never throws synchronously, whatever a layer does
      return;
    }
    if (wait === undefined) this.run(scope.startedAt);
    else
      wait.then(
        () => this.afterQueue(),
        error => this.onQueueFailure(error),
      );
  }

  /** Chooses the endpoint and passes its breaker; false when the call was rejected (and handled). */
  private admit(scope: Scope): boolean {
    const { layers } = this;
    this.scope = scope;
    this.limit = undefined;
    let key = layers.dependencyId;
    if (layers.loadBalance) {
      this.chosen = layers.loadBalance.choose(scope, endpoint => this.circuitOpen(endpoint));
      key = this.chosen.netloc;
      this.balancer = layers.loadBalance.picker;
    }
    this.breaker = layers.breakers.get(key, scope.startedAt);
    this.permit = this.breaker.tryAdmit();
    if (this.permit < 0) {
      this.trace?.event('circuit.reject', { 'x.breaker_key': key });
      this.failed(this.breaker.rejection());
      return false;
    }
    this.limit = layers.limits.get(key, scope.startedAt);
    return true;
  }

  private afterQueue(): void {
    if (!this.settled) return this.run(this.layers.clock.now());
    this.limit!.release();
    this.breaker.release(this.permit);
  }

  private run(now: number): void {
    if (this.chosen) this.balancer?.start(this.chosen);
    this.attemptStart = now;
    let result: unknown;
    try {
      if (this.trace === undefined) result = this.layers.invoke(this.scope, this.args);
      else result = this.tracedAttempt();
    } catch (error) {
      this.onError(error);
      return;
    }
    if (result !== null && typeof (result as PromiseLike<unknown>)?.then === 'function') {
      (result as PromiseLike<unknown>).then(
        value => this.onValue(value),
        error => this.onError(error),
      );
    } else {
      this.onValue(result);
    }
  }

  /** One attempt as a child span of the call (with the chosen endpoint), run inside it. */
  private tracedAttempt(): unknown {
    const scope = this.scope;
    const span = (this.attemptSpan = faultTolerantAttemptTracer.start('attempt', {
      parent: this.trace,
      attributes: {
        'x.attempt': scope.attempt,
        'server.address': this.chosen?.netloc,
      },
    }));
    return span
      ? span.run(() => this.layers.invoke(scope, this.args))
      : this.layers.invoke(scope, this.args);
  }

  private onValue(value: unknown): void {
    this.attemptSpan?.end();
    this.attemptSpan = undefined;
    const now = this.layers.clock.now();
    const durationMs = now - this.attemptStart;
    this.limit!.release();
    this.breaker.success(this.permit, durationMs);
    if (this.chosen) this.balancer?.end(this.chosen, { ok: true, durationMs });
    this.finish(true, value as R, undefined, now);
  }

  private onError(error: unknown): void {
    this.attemptSpan?.end(error);
    this.attemptSpan = undefined;
    const durationMs = this.layers.clock.now() - this.attemptStart;
    this.limit!.release();
    // The caller walking away is not the service's fault; our own deadline is.
    const scope = this.scope;
    const reason = scope.aborted ? scope.abortReason : error;
    if (!scope.aborted || reason instanceof TimeoutError)
      this.breaker.failure(this.permit, reason, durationMs);
    else this.breaker.release(this.permit);
    if (this.chosen) this.balancer?.end(this.chosen, { ok: false, durationMs });
    this.failed(error);
  }

  private onQueueFailure(error: unknown): void {
    this.breaker.release(this.permit);
    this.failed(error);
  }

  private failed(error: unknown): void {
    if (this.settled) return;
    const schedule = (this.schedule ??= this.layers.retry.schedule(this));
    const delay = schedule.next(error);
    if (this.trace !== undefined && delay >= 0)
      this.trace.event('retry', { 'x.attempt': schedule.attempt, 'x.delay_ms': delay });
    if (delay < 0) this.finish(false, undefined, schedule.finalError);
    else if (delay === 0) this.retryNow();
    else this.retryTimer = this.layers.clock.setTimeout(() => this.retryNow(), delay);
  }

  private retryNow(): void {
    this.retryTimer = undefined;
    if (this.settled) return;
    const scope = this.fork();
    scope.attempt = this.schedule!.attempt;
    scope.startedAt = this.layers.clock.now();
    this.tryAttempt(scope);
  }

  private circuitOpen(endpoint: Endpoint): boolean {
    return this.layers.breakers.peek(endpoint.netloc)?.wouldReject() ?? false;
  }

  /** The deadline passed (called by the timer queue). */
  fire(): void {
    if (this.settled) return;
    const error = new TimeoutError(this.limitMs, 'operation');
    this.abort(error);
    this.layers.onTimeout();
    this.finish(false, undefined, error);
  }

  private onAbort(): void {
    if (this.settled) return;
    const error = new AbortedError({ cause: this.callerSignal!.reason });
    this.abort(error);
    this.finish(false, undefined, error);
  }

  private finish(
    ok: boolean,
    value: R | undefined,
    error: unknown,
    now = this.starting ? this.startedAt : this.layers.clock.now(),
  ): void {
    if (this.settled) return;
    this.settled = true;
    if (this.queued) this.layers.timers.remove(this);
    if (this.retryTimer) this.layers.clock.clearTimeout(this.retryTimer);
    if (this.abortListener) this.callerSignal!.removeEventListener('abort', this.abortListener);
    this.dispose();
    this.layers.settled(ok, error, now - this.startedAt, now);
    if (ok) return this.resolve(value as R);
    const fallback = this.layers.fallback;
    if (!fallback) return this.rejectAfterHandlers(error);
    this.trace?.event('fallback', { 'error.type': errorType(error) });
    try {
      this.resolve(fallback(error, this.args) as R | PromiseLike<R>);
    } catch (failure) {
      this.rejectAfterHandlers(failure);
    }
  }

  /**
   * Rejects only once the caller has attached its handlers: a promise rejected with no handler
   * costs Node's unhandled-rejection bookkeeping (~0.8 µs), more than the whole call.
   */
  private rejectAfterHandlers(error: unknown): void {
    if (this.starting) rejectSoon(this.reject, error);
    else this.reject(error);
  }
}
