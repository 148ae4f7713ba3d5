import { CircuitState, type IBreaker } from 'cockatiel';

/** Options of {@link SlowCallBreaker}. */
export interface SlowCallBreakerOptions {
  /** A call at least this slow counts as slow (dace's `expected_in`). */
  readonly thresholdMs: number;
  /** Fraction (0, 1] of slow calls in the window that opens the circuit. Default 0.8. */
  readonly rate?: number;
  /** Calls in the sliding window. Default 20. */
  readonly size?: number;
  /** Calls needed in the window before the slow rate is judged. Default `size`. */
  readonly minimumCalls?: number;
  /** Strategy that judges failures (default: none, only slowness opens). */
  readonly inner?: IBreaker;
}

/**
 * Opens on the rate of slow calls over the last `size` calls (resilience4j's slow-call rate),
 * and also whenever the `inner` strategy opens on failures. The circuit breaker passes each call's
 * duration as the second argument; `success` returning true opens the circuit.
 */
export class SlowCallBreaker implements IBreaker {
  private readonly thresholdMs: number;
  private readonly rate: number;
  private readonly minimumCalls: number;
  private readonly inner: IBreaker | undefined;
  private window: Uint8Array;
  private index = 0;
  private filled = 0;
  private slow = 0;

  constructor(options: SlowCallBreakerOptions) {
    const { thresholdMs, rate = 0.8, size = 20 } = options;
    if (!(thresholdMs > 0))
      throw new RangeError(`slow-call thresholdMs must be > 0, got ${thresholdMs}`);
    if (!(rate > 0 && rate <= 1))
      throw new RangeError(`slow-call rate must be in (0, 1], got ${rate}`);
    if (!Number.isInteger(size) || size < 1)
      throw new RangeError(`slow-call window size must be an integer >= 1, got ${size}`);
    this.thresholdMs = thresholdMs;
    this.rate = rate;
    this.minimumCalls = Math.min(size, options.minimumCalls ?? size);
    this.inner = options.inner;
    this.window = new Uint8Array(size);
  }

  get state(): unknown {
    return {
      window: Array.from(this.window),
      index: this.index,
      filled: this.filled,
      slow: this.slow,
      inner: this.inner?.state,
    };
  }

  set state(value: unknown) {
    const v = value as {
      window: number[];
      index: number;
      filled: number;
      slow: number;
      inner: unknown;
    };
    this.window = Uint8Array.from(v.window);
    this.index = v.index;
    this.filled = v.filled;
    this.slow = v.slow;
    if (this.inner) this.inner.state = v.inner;
  }

  success(state: CircuitState, durationMs = 0): boolean {
    this.inner?.success(state);
    if (state === CircuitState.HalfOpen) this.clear();
    return this.push(durationMs >= this.thresholdMs);
  }

  failure(state: CircuitState, durationMs = 0): boolean {
    const open = this.inner ? this.inner.failure(state) : state !== CircuitState.Closed;
    return this.push(durationMs >= this.thresholdMs) || open;
  }

  private push(isSlow: boolean): boolean {
    const bit = isSlow ? 1 : 0;
    if (this.filled === this.window.length) this.slow -= this.window[this.index]!;
    else this.filled++;
    this.window[this.index] = bit;
    this.slow += bit;
    this.index = (this.index + 1) % this.window.length;
    return this.filled >= this.minimumCalls && this.slow >= this.rate * this.filled;
  }

  private clear(): void {
    this.window.fill(0);
    this.index = this.filled = this.slow = 0;
  }
}
