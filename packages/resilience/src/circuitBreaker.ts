import { duration } from './duration.js';
import { CircuitState, ConsecutiveBreaker, type IBackoff, type IBreaker } from 'cockatiel';
import type { Backoff } from './backoff.js';
import type { BreakerSnapshot, BreakerStore } from './breakerStore.js';
import { SlowCallBreaker } from './breakers/slowCallBreaker.js';
import { isServiceFailure } from './classify.js';
import type { Clock } from './clock.js';
import type { Disposer } from './emitter.js';
import { CircuitOpenError, TimeoutError } from './errors.js';
import { asScope, PolicyBase } from './internal/policyBase.js';
import { invoke } from './internal/invoke.js';
import type { CircuitStateName, PolicyContext, PolicyEvent, Task } from './policy.js';
import { withoutStack } from './xError.js';

/** Options of {@link circuitBreaker}. */
export interface CircuitBreakerOptions {
  /** Name in errors, events and the store. Default `'default'`. */
  readonly key?: string;
  /**
   * When to open: a cockatiel breaker strategy (`ConsecutiveBreaker`, `SamplingBreaker`,
   * `CountBreaker`) or a {@link SlowCallBreaker}. Default `new ConsecutiveBreaker(5)`.
   */
  readonly strategy?: IBreaker;
  /** How long it stays open before a probe: ms, or a backoff that grows on repeated opens. Default 10 000 (dace). */
  readonly halfOpenAfter?: number | Backoff;
  /** Probes let through in half-open; all must succeed to close. Default 1. */
  readonly halfOpenProbes?: number;
  /** Which errors count as failures. Default {@link isServiceFailure}. */
  readonly isFailure?: (error: unknown) => boolean;
  /** A success at least this slow emits a `degraded` event. */
  readonly slowCallMs?: number;
  /** Start from a saved state (see {@link CircuitBreaker.toJSON}). */
  readonly initialState?: BreakerSnapshot;
  /** Save state changes here and adopt peers' open/close announcements. */
  readonly store?: BreakerStore;
  readonly clock?: Clock;
}

const STRATEGY_STATE: Record<'closed' | 'half-open', CircuitState> = {
  closed: CircuitState.Closed,
  'half-open': CircuitState.HalfOpen,
};

let instances = 0;

/**
 * A circuit breaker: closed → open when its strategy says so → half-open after `halfOpenAfter`
 * with `halfOpenProbes` trial calls → closed when they all succeed. Open rejections are cheap
 * (`CIRCUIT_OPEN`, no stack). `isolate()` holds it open by hand; `toJSON()`/`initialState` and a
 * {@link BreakerStore} keep state across restarts and replicas.
 */
export class CircuitBreaker extends PolicyBase {
  readonly key: string;
  private readonly strategy: IBreaker;
  private readonly halfOpenAfter: number | Backoff;
  private readonly probeLimit: number;
  private readonly isFailure: (error: unknown) => boolean;
  private readonly slowCallMs: number;
  /** Durations are measured only when something uses them (slow calls), saving two clock reads. */
  private readonly timed: boolean;
  private readonly store: BreakerStore | undefined;
  private readonly id = `cb${++instances}-${process.pid}`;
  private current: CircuitStateName = 'closed';
  private generation = 0;
  private openUntil = 0;
  private openCount = 0;
  private backoff: IBackoff<unknown> | undefined;
  private probes = 0;
  private probeSuccesses = 0;
  private isolations = 0;
  private unsubscribe: Disposer | undefined;
  private cachedRejection: CircuitOpenError | undefined;
  private rejectionGeneration = -1;
  private rejectEvent: PolicyEvent | undefined;

  constructor(options: CircuitBreakerOptions = {}) {
    super(options.clock);
    this.key = options.key ?? 'default';
    this.strategy = options.strategy ?? new ConsecutiveBreaker(5);
    const halfOpenAfter = options.halfOpenAfter ?? 10_000;
    this.halfOpenAfter =
      typeof halfOpenAfter === 'object' && halfOpenAfter !== null
        ? halfOpenAfter
        : duration(halfOpenAfter, 'halfOpenAfter', { allowInfinity: false });
    this.probeLimit = options.halfOpenProbes ?? 1;
    if (!Number.isInteger(this.probeLimit) || this.probeLimit < 1) {
      throw new RangeError(`halfOpenProbes must be an integer >= 1, got ${this.probeLimit}`);
    }
    this.isFailure = options.isFailure ?? isServiceFailure;
    this.slowCallMs = options.slowCallMs ?? Infinity;
    this.timed = this.slowCallMs !== Infinity || this.strategy instanceof SlowCallBreaker;
    this.store = options.store;
    if (options.initialState) this.restore(options.initialState);
    if (this.store?.subscribe)
      this.unsubscribe = this.store.subscribe(this.key, s => this.adopt(s));
  }

  /** The current state (`open` turns `half-open` on the first call after `halfOpenAfter`). */
  get state(): CircuitStateName {
    return this.current;
  }

  /** Milliseconds until an open breaker lets a probe through (0 when not open). */
  get retryAfterMs(): number {
    return this.current === 'open' ? Math.max(0, this.openUntil - this.clock.now()) : 0;
  }

  /**
   * Asks to run one call: returns a permit to hand back to {@link success} or {@link failure}, or
   * throws `CIRCUIT_OPEN`. Completions of permits from an older state are ignored.
   */
  admit(): number {
    const permit = this.tryAdmit();
    if (permit < 0) throw this.rejection();
    return permit;
  }

  /**
   * Like {@link admit} but returns -1 instead of throwing (throwing costs more than the rest of a
   * call). `now`, the clock's current time when the caller has it, saves a clock read.
   */
  tryAdmit(now?: number): number {
    switch (this.current) {
      case 'closed':
        return this.generation;
      case 'open':
        if ((now ?? this.clock.now()) >= this.openUntil) {
          this.transition('half-open');
          this.probes = 1;
          return this.generation;
        }
        break;
      case 'half-open':
        if (this.probes < this.probeLimit) {
          this.probes++;
          return this.generation;
        }
        break;
      case 'isolated':
        break;
    }
    if (this.events.active)
      this.events.emit((this.rejectEvent ??= { type: 'reject', reason: 'circuit', key: this.key }));
    return -1;
  }

  /** True when a call now would be rejected (no state change, no event); `now` saves a clock read. */
  wouldReject(now?: number): boolean {
    switch (this.current) {
      case 'closed':
        return false;
      case 'open':
        return (now ?? this.clock.now()) < this.openUntil;
      case 'half-open':
        return this.probes >= this.probeLimit;
      default:
        return true;
    }
  }

  /** The `CIRCUIT_OPEN` error for a rejected call: one instance per open period, without a stack. */
  rejection(): CircuitOpenError {
    if (this.rejectionGeneration !== this.generation || !this.cachedRejection) {
      const retryAt = this.current === 'isolated' ? 0 : Date.now() + this.retryAfterMs;
      this.cachedRejection = withoutStack(
        () => new CircuitOpenError(this.key, retryAt, this.current === 'isolated'),
      );
      this.rejectionGeneration = this.generation;
    }
    return this.cachedRejection;
  }

  /** Hands back a permit whose call never ran or was abandoned by its caller (frees a half-open probe). */
  release(permit: number): void {
    if (permit === this.generation && this.current === 'half-open' && this.probes > 0)
      this.probes--;
  }

  /** Records a successful call that took `durationMs`. */
  success(permit: number, durationMs: number): void {
    if (durationMs >= this.slowCallMs && this.events.active) {
      this.events.emit({
        type: 'degraded',
        durationMs,
        expectedMs: this.slowCallMs,
        key: this.key,
      });
    }
    if (permit !== this.generation) return;
    if (this.current === 'closed') {
      if (
        (this.strategy.success as (s: CircuitState, d: number) => unknown)(
          CircuitState.Closed,
          durationMs,
        ) === true
      )
        this.open(undefined);
    } else if (this.current === 'half-open') {
      (this.strategy.success as (s: CircuitState, d: number) => unknown)(
        CircuitState.HalfOpen,
        durationMs,
      );
      this.probes--;
      if (++this.probeSuccesses >= this.probeLimit) this.transition('closed');
    }
  }

  /** Records a failed call. Errors that `isFailure` rejects count as successes in half-open and as nothing when closed. */
  failure(permit: number, error: unknown, durationMs: number): void {
    if (permit !== this.generation) return;
    if (!this.isFailure(error)) {
      if (this.current === 'half-open') this.success(permit, durationMs);
      return;
    }
    const state = this.current;
    if (state !== 'closed' && state !== 'half-open') return;
    const open = (this.strategy.failure as (s: CircuitState, d: number) => boolean)(
      STRATEGY_STATE[state],
      durationMs,
    );
    if (open || state === 'half-open') this.open(error);
  }

  run<T>(task: Task<T>, context: PolicyContext): Promise<T> {
    const permit = this.tryAdmit(); // a rejection, never a synchronous throw from execute()/run()
    if (permit < 0) return Promise.reject(this.rejection());
    const scope = asScope(context, this.clock);
    const start = this.timed ? this.clock.now() : 0;
    return invoke(task, scope).then(
      value => {
        this.success(permit, this.timed ? this.clock.now() - start : 0);
        return value;
      },
      error => {
        // The caller walking away is not the service's fault; our own deadline is.
        const reason = scope.aborted ? scope.abortReason : error;
        if (!scope.aborted || reason instanceof TimeoutError)
          this.failure(permit, reason, this.timed ? this.clock.now() - start : 0);
        else this.release(permit);
        throw error;
      },
    );
  }

  /** Holds the circuit open until every returned disposer has been called. */
  isolate(): Disposer {
    this.isolations++;
    if (this.current !== 'isolated') this.transition('isolated');
    let disposed = false;
    return () => {
      if (disposed) return;
      disposed = true;
      if (--this.isolations === 0) this.transition('closed');
    };
  }

  /** The state to save: half-open is saved as open with the probe due now. */
  toJSON(): BreakerSnapshot {
    const wallOffset = Date.now() - this.clock.now();
    return {
      state: this.current === 'half-open' ? 'open' : this.current,
      openUntil: this.current === 'closed' ? 0 : Math.round(this.openUntil + wallOffset),
      openCount: this.openCount,
      strategy: this.strategy.state,
      updatedAt: Date.now(),
      source: this.id,
    };
  }

  /** Loads the saved state from the store, if any. */
  async hydrate(): Promise<void> {
    const snapshot = await this.store?.load(this.key);
    if (snapshot) this.restore(snapshot);
  }

  /** Stops listening to the store. */
  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  private open(error: unknown): void {
    this.openCount++;
    let delay: number;
    if (typeof this.halfOpenAfter === 'number') {
      delay = this.halfOpenAfter;
    } else {
      this.backoff = (this.backoff ?? this.halfOpenAfter).next({ attempt: this.openCount, error });
      delay = this.backoff.duration;
    }
    this.openUntil = this.clock.now() + delay;
    this.transition('open');
  }

  private transition(to: CircuitStateName, save = true): void {
    const from = this.current;
    this.current = to;
    this.generation++;
    this.probes = 0;
    this.probeSuccesses = 0;
    if (to === 'closed') {
      this.openCount = 0;
      this.backoff = undefined;
    }
    if (this.events.active) this.events.emit({ type: 'stateChange', key: this.key, from, to });
    if (save && this.store && to !== 'half-open')
      this.store.save(this.key, this.toJSON()).catch(() => {});
  }

  private restore(snapshot: BreakerSnapshot): void {
    this.openCount = snapshot.openCount;
    if (snapshot.strategy !== undefined) this.strategy.state = snapshot.strategy;
    this.openUntil = snapshot.openUntil - (Date.now() - this.clock.now());
    if (snapshot.state !== this.current)
      this.transition(snapshot.state === 'isolated' ? 'open' : snapshot.state, false);
  }

  private adopt(snapshot: BreakerSnapshot): void {
    if (snapshot.source === this.id || this.current === 'isolated') return;
    if (snapshot.state === 'open' && this.current === 'closed') {
      this.openCount = snapshot.openCount;
      this.openUntil = snapshot.openUntil - (Date.now() - this.clock.now());
      this.transition('open', false);
    } else if (snapshot.state === 'closed' && this.current !== 'closed') {
      this.transition('closed', false);
    }
  }
}

/** A {@link CircuitBreaker}. */
export function circuitBreaker(options?: CircuitBreakerOptions): CircuitBreaker {
  return new CircuitBreaker(options);
}
