import { durationOption as ms } from './internal/durationOption.js';
/**
 * Passive health checking of the hosts of a `Resources` (Envoy's outlier detection): consecutive
 * failures (connection errors, timeouts and, by default, 5xx) eject a host for a time that grows
 * with each ejection in a row; then a probe readmits it or ejects it again. At most
 * `maxEjectedPercent` of the hosts are out at once, and never the last one.
 */
export interface HealthOptions {
  /** Consecutive failures that eject a host. Default 5 (`Replicas`: 1). */
  readonly consecutiveFailures?: number;
  /** First ejection time; doubles on each ejection in a row. Default 30 000 ms. */
  readonly baseEjectionMs?: number;
  /** Longest ejection; also the healthy time after which the doubling restarts. Default 300 000 ms. */
  readonly maxEjectionMs?: number;
  /** Most hosts ejected at once, in percent (at least one host, never all). Default 50 (`Replicas`: 100). */
  readonly maxEjectedPercent?: number;
  /** Count 5xx responses as failures. Default true. */
  readonly on5xx?: boolean;
  /**
   * How an ejected host comes back once its ejection time is over:
   * - `'request'` (default): the next real request to it is the probe (one at a time);
   * - `{ path, method, timeoutMs, expect }`: the client sends this request itself (default
   *   `GET`, 2 000 ms, a status below 500) and readmits the host when it passes.
   */
  readonly probe?: 'request' | ProbeOptions;
}

/** An active health probe. */
export interface ProbeOptions {
  readonly path: string;
  /** Default `GET`. */
  readonly method?: string;
  /** Default 2 000 ms. */
  readonly timeoutMs?: number;
  /** Which statuses pass. Default: below 500. */
  readonly expect?: (status: number) => boolean;
}

/** {@link HealthOptions} with defaults applied. */
export interface ResolvedHealth {
  readonly consecutiveFailures: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  readonly maxEjectedPercent: number;
  readonly on5xx: boolean;
  readonly probe: 'request' | Required<ProbeOptions>;
}

/** Validates health options and applies the defaults. */
export function resolveHealth(
  options: HealthOptions | false | undefined,
  defaults: Partial<HealthOptions> = {},
): ResolvedHealth | undefined {
  if (options === false) return undefined;
  const merged = { ...defaults, ...options };
  const {
    consecutiveFailures = 5,
    maxEjectedPercent = 50,
    on5xx = true,
    probe = 'request',
  } = merged;
  if (
    !(Number.isInteger(consecutiveFailures) && consecutiveFailures >= 1) &&
    consecutiveFailures !== Infinity
  ) {
    throw new RangeError(
      `health.consecutiveFailures must be an integer >= 1, got ${String(consecutiveFailures)}`,
    );
  }
  const baseEjectionMs = ms(merged.baseEjectionMs ?? 30_000, 'health.baseEjectionMs', {
    exclusiveMin: false,
    allowInfinity: false,
  });
  const maxEjectionMs = ms(merged.maxEjectionMs ?? 300_000, 'health.maxEjectionMs', {
    min: baseEjectionMs,
    exclusiveMin: false,
    allowInfinity: false,
  });
  if (!(maxEjectedPercent >= 0 && maxEjectedPercent <= 100)) {
    throw new RangeError(
      `health.maxEjectedPercent must be in [0, 100], got ${String(maxEjectedPercent)}`,
    );
  }
  let resolvedProbe: ResolvedHealth['probe'] = 'request';
  if (probe !== 'request') {
    if (typeof probe !== 'object' || probe === null || typeof probe.path !== 'string') {
      throw new TypeError(
        `health.probe must be 'request' or { path }, got ${JSON.stringify(probe)}`,
      );
    }
    resolvedProbe = {
      path: probe.path,
      method: probe.method ?? 'GET',
      timeoutMs: ms(probe.timeoutMs ?? 2_000, 'health.probe.timeoutMs'),
      expect: probe.expect ?? (status => status < 500),
    };
  }
  return {
    consecutiveFailures,
    baseEjectionMs,
    maxEjectionMs,
    maxEjectedPercent,
    on5xx,
    probe: resolvedProbe,
  };
}
