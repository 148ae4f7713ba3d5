import { exponentialBackoff, type Backoff } from './backoff.js';
import { duration } from './duration.js';
import { InvalidArgumentError } from './errors.js';

/** Options of {@link outlierDetection} (Envoy's consecutive-failure outlier detection). */
export interface OutlierDetectionOptions {
  /** Consecutive failures that eject an endpoint. Default 5. */
  readonly consecutiveFailures?: number;
  /** First ejection time; grows with each ejection in a row. Default 30 000 ms. */
  readonly baseEjectionMs?: number;
  /** Longest ejection; also the healthy time after which the growth restarts. Default 300 000 ms. */
  readonly maxEjectionMs?: number;
  /** Most endpoints ejected at once, in percent (at least one when above 0, never all). Default 50. */
  readonly maxEjectedPercent?: number;
  /**
   * Ejection time of the n-th ejection in a row (`attempt` = n). Default
   * `exponentialBackoff({ initialMs: baseEjectionMs, maxMs: maxEjectionMs, jitter: 'none' })`:
   * `baseEjectionMs × 2^(n − 1)`, at most `maxEjectionMs`.
   */
  readonly backoff?: Backoff;
}

/**
 * The per-endpoint state {@link OutlierDetection} reads and writes. The caller owns it (usually
 * the endpoint object itself) and hands it in; the detector keeps which ones are ejected.
 */
export interface OutlierState {
  /** Failures since the last success (the caller counts them). */
  consecutiveFailures: number;
  /** Ejections in a row (reset after `maxEjectionMs` of good health). */
  ejections: number;
  /** Clock time of the last ejection. */
  ejectedAt: number;
  /** Clock time the current ejection ends. */
  ejectedUntil: number;
  /** Clock time of the last readmission. */
  readmittedAt: number;
}

/**
 * Consecutive-failure outlier detection as a policy (Envoy's `consecutive_5xx`): an endpoint
 * whose failure streak reaches `consecutiveFailures` is ejected for a time that grows with each
 * ejection in a row (the `backoff`), as long as fewer than `maxEjectedPercent` of the endpoints
 * are out (never the last one). When the time is over the caller probes it and calls
 * {@link readmit} or {@link eject} again. O(1) per call; no timers (the caller schedules probes).
 */
export class OutlierDetection<S extends OutlierState = OutlierState> {
  readonly consecutiveFailures: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  readonly maxEjectedPercent: number;
  private readonly backoff: Backoff;
  private readonly ejected = new Set<S>();

  constructor(options: OutlierDetectionOptions = {}) {
    const { consecutiveFailures = 5, maxEjectedPercent = 50 } = options;
    if (
      !(Number.isInteger(consecutiveFailures) && consecutiveFailures >= 1) &&
      consecutiveFailures !== Infinity
    ) {
      throw new InvalidArgumentError(
        'consecutiveFailures',
        `consecutiveFailures must be an integer >= 1, got ${String(consecutiveFailures)}`,
      );
    }
    const percentOk =
      typeof maxEjectedPercent === 'number' && maxEjectedPercent >= 0 && maxEjectedPercent <= 100;
    if (!percentOk) {
      throw new InvalidArgumentError(
        'maxEjectedPercent',
        `maxEjectedPercent must be a number in [0, 100], got ${String(maxEjectedPercent)}`,
      );
    }
    this.consecutiveFailures = consecutiveFailures;
    this.maxEjectedPercent = maxEjectedPercent;
    this.baseEjectionMs = duration(options.baseEjectionMs ?? 30_000, 'baseEjectionMs', {
      allowInfinity: false,
    });
    this.maxEjectionMs = duration(options.maxEjectionMs ?? 300_000, 'maxEjectionMs', {
      min: this.baseEjectionMs,
      allowInfinity: false,
    });
    this.backoff =
      options.backoff ??
      exponentialBackoff({
        initialMs: Math.max(this.baseEjectionMs, 0),
        maxMs: this.maxEjectionMs,
        jitter: 'none',
      });
  }

  /** Endpoints ejected now (ejected or on probation). */
  get ejectedCount(): number {
    return this.ejected.size;
  }

  /** True while `state` is ejected (until {@link readmit} or {@link forget}). */
  isEjected(state: S): boolean {
    return this.ejected.has(state);
  }

  /** Most endpoints out at once among `total`: `maxEjectedPercent` of them, at least 1, never all. */
  cap(total: number): number {
    const percent = this.maxEjectedPercent;
    return Math.min(total - 1, Math.max(percent > 0 ? 1 : 0, Math.floor((total * percent) / 100)));
  }

  /** True when a healthy `state` has failed enough in a row and the cap among `total` allows one more. */
  shouldEject(state: S, total: number): boolean {
    return (
      !this.ejected.has(state) &&
      state.consecutiveFailures >= this.consecutiveFailures &&
      this.ejected.size < this.cap(total)
    );
  }

  /** The ejection time of the n-th ejection in a row. */
  ejectionMs(n: number): number {
    let step = this.backoff.next({ attempt: 1, error: undefined });
    for (let i = 1; i < n && step.duration < this.maxEjectionMs; i++)
      step = step.next({ attempt: i + 1, error: undefined });
    return Math.min(this.maxEjectionMs, step.duration);
  }

  /**
   * Ejects `state` at `now` (again, when it failed its probe): the ejections in a row restart
   * after a healthy period of `maxEjectionMs`. Returns the ejection time.
   */
  eject(state: S, now: number): number {
    if (!this.ejected.has(state)) {
      if (state.ejections > 0 && now - state.readmittedAt >= this.maxEjectionMs)
        state.ejections = 0;
      this.ejected.add(state);
    }
    state.ejections++;
    const ms = this.ejectionMs(state.ejections);
    state.ejectedAt = now;
    state.ejectedUntil = now + ms;
    return ms;
  }

  /** Readmits an ejected `state` (its probe passed): the failure streak restarts. */
  readmit(state: S, now: number): void {
    if (!this.ejected.delete(state)) return;
    state.consecutiveFailures = 0;
    state.readmittedAt = now;
  }

  /** A success on a healthy `state`: the ejections in a row restart after `maxEjectionMs` of health. */
  succeeded(state: S, now: number): void {
    if (
      state.ejections > 0 &&
      !this.ejected.has(state) &&
      now - state.readmittedAt >= this.maxEjectionMs
    )
      state.ejections = 0;
  }

  /** Drops `state` (its endpoint was removed). */
  forget(state: S): void {
    this.ejected.delete(state);
  }
}

/** An {@link OutlierDetection} policy (see its options for the defaults). */
export function outlierDetection<S extends OutlierState = OutlierState>(
  options: OutlierDetectionOptions = {},
): OutlierDetection<S> {
  return new OutlierDetection<S>(options);
}
