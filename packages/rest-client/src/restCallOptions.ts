import type {
  Backoff,
  HedgeOptions,
  HedgePolicy,
  RetryBudget,
  RetryBudgetOptions,
} from '@x/resilience';
import type { RestClientError } from './errors.js';
import type { RestQuery } from './internal/path.js';

export type { RestQuery } from './internal/path.js';

/** How a response body is decoded. `auto` (default): JSON for JSON content types, text otherwise. */
export type DecodeMode = 'auto' | 'json' | 'text' | 'bytes';

/** Deadlines of a call, in milliseconds. */
export interface Timeouts {
  /** The whole call: queueing, every try, replay and backoff. Default 30 000. `Infinity` disables it. */
  readonly total?: number;
  /** One try, from sending to the end of the body. Default: the total timeout. */
  readonly perTry?: number;
}

/** Retry rules of a client (`retry` option). Retries never repeat a side effect. */
export interface RestRetryOptions {
  /** Retries after the first try. Default 2. */
  readonly maxRetries?: number;
  /**
   * Delay before a retry on the same host (a retry to a host not tried yet goes at once).
   * Default `exponentialBackoff({ initialMs: 25, maxMs: 1_000, jitter: 'full' })`, at least any
   * `Retry-After` (up to `maxRetryAfterMs`).
   */
  readonly backoff?: Backoff;
  /** Retry a try that hit its `perTry` timeout (only idempotent requests). Default false. */
  readonly retryOnTimeout?: boolean;
  /** Statuses retried for idempotent requests. Default `RETRYABLE_STATUSES` (408, 429, 500, 502, 503, 504). */
  readonly statuses?: ReadonlySet<number>;
  /**
   * Replaces the default rule. The default retries: connection failures where nothing was sent
   * (`CONNECT`, connect `TIMEOUT`), always; and, only for idempotent requests (an idempotent method
   * or an idempotency key), `SOCKET` failures, retryable statuses and (with `retryOnTimeout`) try
   * timeouts. Never `ABORTED`, `DECODE`, `RESPONSE_TOO_LARGE`, `NO_HOST`, `CLOSED`, a total timeout.
   */
  readonly retryOn?: (error: RestClientError, attempt: number) => boolean;
  /**
   * Shared token bucket limiting retries to a share of calls (Finagle). Default: one budget per
   * client, `@x/resilience`'s default: 10 % of calls plus 10 retries per second. `false` disables it.
   */
  readonly budget?: RetryBudget | RetryBudgetOptions | false;
  /** Longest `Retry-After` honoured; a longer one gives up. Default 30 000. */
  readonly maxRetryAfterMs?: number;
}

/** Per-call options of `call`, `unicast`, `broadcast` and the verb methods. */
export interface RestCallOptions {
  /** Query parameters appended to the path (arrays repeat the key). */
  readonly query?: RestQuery;
  /** A JSON body (sent with `content-type: application/json`). */
  readonly json?: unknown;
  /** A raw body, the alternative to `json`. */
  readonly body?: string | Uint8Array;
  /** Request headers, merged over the client's `headers`. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Aborts the call (`ABORTED`, or `TIMEOUT` for an `AbortSignal.timeout()` signal). */
  readonly signal?: AbortSignal;
  /** Total timeout in ms, or total and per-try timeouts. Default: the client's. */
  readonly timeout?: number | Timeouts;
  /**
   * Sends an `idempotency-key` header (`true` generates a UUID) and makes the request safe to
   * retry on another host whatever its method. The same key goes with every retry.
   */
  readonly idempotencyKey?: string | true;
  /** Overrides the idempotency given by the method (GET, HEAD, OPTIONS, PUT, DELETE, TRACE are). */
  readonly idempotent?: boolean;
  /** Body decoding. Default: the client's (`auto`). */
  readonly decode?: DecodeMode;
  /** `false` disables retries for this call. Default: the client's retry rules. */
  readonly retry?: false;
  /** Hedge this call (idempotent reads only). Default: true when the client has a `hedge` policy. */
  readonly hedge?: boolean;
}

/** Hedging option of a client: a policy from `@x/resilience`, its options, or false. */
export type HedgeOption = HedgePolicy | HedgeOptions | false;
