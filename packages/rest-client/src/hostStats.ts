import type { RestClientError } from './errors.js';

/** Health state of a host: eligible, ejected, or readmitted on probation until its probe answers. */
export type HostState = 'healthy' | 'ejected' | 'probing';

/** A snapshot of one host's counters, read in O(1) (`stats()` of a `Resource` or `Resources`). */
export interface HostStats {
  /** Origin, e.g. `http://10.0.0.1:8080`. */
  readonly host: string;
  /** Requests sent and not finished (body included). */
  readonly inFlight: number;
  /** Requests waiting for a free connection (in flight beyond `connections`). */
  readonly pending: number;
  /** Open connections. */
  readonly connected: number;
  /** Open connections not in use (lupyne's "cached" connections): `connected - inFlight`, at least 0. */
  readonly idle: number;
  /** Tries completed. */
  readonly requests: number;
  /** Tries that failed for health purposes: transport errors, timeouts and (by default) 5xx. */
  readonly failures: number;
  /** Failures since the last success. */
  readonly consecutiveFailures: number;
  /** Responses with a 5xx status. */
  readonly status5xx: number;
  /** Stale keep-alive (or 408) replays. */
  readonly replays: number;
  /** Tries retried after failing on this host. */
  readonly retries: number;
  /** Peak-EWMA latency of tries in ms (0 before the first one). */
  readonly ewmaMs: number;
  readonly state: HostState;
  /** True while ejected or on probation. */
  readonly ejected: boolean;
  /** Clock time (ms) the ejection ends, while ejected. */
  readonly ejectedUntil: number | undefined;
  /** Ejections in a row (reset after a healthy period of `maxEjectionMs`). */
  readonly ejections: number;
  /** The last failure seen on this host. */
  readonly lastError: RestClientError | undefined;
}

/**
 * The live, read-only view of a host that balancers receive as their endpoint type (for example
 * `balancers.lupyne()` scores `-idle`).
 */
export interface Upstream {
  readonly origin: string;
  readonly inFlight: number;
  readonly connected: number;
  readonly idle: number;
  readonly state: HostState;
}
