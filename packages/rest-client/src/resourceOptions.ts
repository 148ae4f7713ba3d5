import type { Clock, Logger, Metrics } from '@x/resilience';
import type { Pool } from 'undici';
import type { DecodeMode, HedgeOption, RestRetryOptions, Timeouts } from './restCallOptions.js';

/** Options of a `Resource` (one host), also accepted by `Resources`, `Shards` and `Replicas`. */
export interface ResourceOptions {
  /** Connections per host (lupyne's `limit`, here also the concurrency per host). Default 16. */
  readonly connections?: number;
  /** HTTP/1.1 pipelining depth per connection (undici). Default 1 (none). */
  readonly pipelining?: number;
  /**
   * Reuse connections (keep-alive). Default true. `false` is lupyne's `limit=0`: every request opens
   * a connection and closes it after the response (undici `pipelining: 0`).
   */
  readonly keepAlive?: boolean;
  /** Idle keep-alive connections close after this long (server hints may shorten it). Default 4 000 ms. */
  readonly keepAliveTimeoutMs?: number;
  /**
   * Deadlines in ms: a number is the total; `{ total = 30 000, perTry = total, connect = 10 000 }`.
   * Every call also honours its own `signal` and `timeout`.
   */
  readonly timeout?: number | (Timeouts & { readonly connect?: number });
  /** Largest response body (after decompression); larger ones fail with `RESPONSE_TOO_LARGE`. Default 16 MiB. */
  readonly maxResponseSize?: number;
  /** Most requests waiting for a connection (per client, all hosts); beyond: `QUEUE_FULL`. Default 1 024. */
  readonly maxPending?: number;
  /** Headers sent with every request. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Ask for compressed responses (`accept-encoding: gzip, deflate, br`). Compressed bodies are always decoded. Default false. */
  readonly compress?: boolean;
  /**
   * Send each request's remaining deadline (the call's `timeout.total`, or `perTry` when earlier,
   * minus the time already spent) in `x-request-timeout-ms` (`DEADLINE_HEADER` of
   * `@x/resilience`), so the server stops working when nobody waits any more. Default true.
   */
  readonly sendDeadline?: boolean;
  /** Body decoding. Default `auto`: JSON for JSON content types, text otherwise. */
  readonly decode?: DecodeMode;
  /** Retry rules, or false. Default `{ maxRetries: 2 }` with a retry budget (see {@link RestRetryOptions}). */
  readonly retry?: RestRetryOptions | false;
  /** Hedged (backup) tries for idempotent reads: a `@x/resilience` `HedgePolicy` or its options. Default false. */
  readonly hedge?: HedgeOption;
  /** Time source for deadlines, backoff, ejection and budgets. Default `systemClock`. */
  readonly clock?: Clock;
  /** Random source in [0, 1) for balancing, jitter and cover tie-breaks. Default `Math.random`. */
  readonly random?: () => number;
  /** Metrics sink (`rest_client.requests`, `.request.duration`, `.retries`, `.replays`, `.hedges`, `.ejections`). Default none. */
  readonly metrics?: Metrics;
  /** Pino-compatible logger for ejections and probes. Default silent. */
  readonly logger?: Logger;
  /** Extra undici `Pool` options (TLS `connect` options, `allowH2`, ...), applied last. */
  readonly pool?: Pool.Options;
}
