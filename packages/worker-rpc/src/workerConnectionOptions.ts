import type {
  Backoff,
  Balancer,
  Clock,
  HedgeOptions,
  HedgePolicy,
  Logger,
  Metrics,
  RetryBudget,
} from '@x/resilience';
import type { Codec } from './codec.js';
import type { CompressionOption, Compressor } from './compression.js';
import type { EndpointHandle, EndpointState } from './endpointHandle.js';
import type { WorkerRpcError } from './errors.js';
import type { Transport } from './transport.js';

/** Per-method delivery semantics (`methods: { 'math.add': { idempotent: true } }`). */
export interface MethodOptions {
  /** Safe to run twice: retries and hedges apply, and the worker dedupes by request id. Default false. */
  readonly idempotent?: boolean;
  /** Default timeout of this method in ms (overrides the connection's). */
  readonly timeoutMs?: number;
}

/** Retry settings (toto's `auto_retry` / `auto_retry_count`, bounded). */
export interface WorkerRetryOptions {
  /** Attempts in total, the first included. Default 3 when `retry` is given. */
  readonly maxAttempts?: number;
  /**
   * Timeout of one attempt in ms: when it passes, an idempotent call is re-sent (same id, next
   * attempt number) to another endpoint, as toto's `auto_retry` did. Default: none, attempts end
   * only by a reply, a lost connection or the call's deadline.
   */
  readonly attemptTimeoutMs?: number;
  /** Delay between attempts. Default exponential from 25 ms to 1 s with full jitter. */
  readonly backoff?: Backoff;
  /** Shared retry budget. Default a `RetryBudget` (10 % of calls + 10/s) per connection; `false` for none. */
  readonly budget?: RetryBudget | false;
  /** Which failures to retry. Default: errors marked `retryable` (UNAVAILABLE, OVERLOADED, attempt TIMEOUT). */
  readonly retryOn?: (error: unknown, attempt: number) => boolean;
  /**
   * Which calls retry: `'idempotent'` (default: methods marked idempotent and calls with an
   * idempotency key) or `'all'`, toto's `auto_retry` / `auto_retry_count`, which re-sent every call
   * until it got an answer. With `'all'` every call is sent flagged idempotent, so our worker runs a
   * re-sent call once and answers the duplicates from its dedupe window (dedupe is per worker: a
   * re-send that lands on another worker can run there too, as with toto). A call or method with
   * `idempotent: false` still never retries. Hedging, when on, applies to the same calls.
   */
  readonly calls?: 'idempotent' | 'all';
}

/** Options of {@link createWorkerConnection}. */
export interface WorkerConnectionOptions {
  /** Endpoint addresses: a list or a comma-separated string (toto). Default none. */
  readonly addresses?: string | readonly string[];
  /** `zmq` (default for tcp://, ipc://, inproc://), `http` (default for http(s)://) or a {@link Transport}. */
  readonly transport?: Transport | 'zmq' | 'http';
  /** Default deadline of a call in ms. Default 10 000. `Infinity` or a negative value: never. 0 is rejected. */
  readonly timeoutMs?: number;
  /** Retries for idempotent calls: options, a number of attempts, `true` (3 attempts) or `false` (default). */
  readonly retry?: WorkerRetryOptions | number | boolean;
  /** Hedged requests for idempotent calls (`@x/resilience` hedge options or policy). Default off. */
  readonly hedge?: HedgeOptions | HedgePolicy;
  /** Codec of requests. Default JSON. */
  readonly codec?: Codec | 'json' | 'msgpack';
  /** More codecs accepted in replies. */
  readonly codecs?: readonly Codec[];
  /**
   * HTTP `content-type` of requests (toto's `serialization_mime`, e.g. `'application/json'`).
   * Default: the codec's `contentType`. Replies are still decoded with `codec` (and `codecs`).
   */
  readonly serializationMime?: string;
  /** Compression of request bodies above a threshold (replies use the same). Default none. */
  readonly compression?: CompressionOption;
  /** More compressors accepted in replies. */
  readonly compressors?: readonly Compressor[];
  /**
   * `least-outstanding` (default; uses advertised credit), `round-robin` (toto) or any `Balancer`.
   * The connection reads each endpoint's counters (`inFlight`, failures) from the balancer's
   * `load(endpoint)`, so a custom balancer must return its live stats there (as `createBalancer`
   * and every `@x/resilience` balancer do).
   */
  readonly balancer?: 'least-outstanding' | 'round-robin' | Balancer<EndpointHandle>;
  /** Calls sent and awaiting a reply, over all endpoints. Default 10 000. */
  readonly maxInFlight?: number;
  /** Calls waiting locally for an endpoint with credit; beyond it calls fail with OVERLOADED. Default 10 000. */
  readonly maxQueued?: number;
  /** Per-method semantics by dotted name. */
  readonly methods?: Readonly<Record<string, MethodOptions>>;
  /** Metadata sent with every call (merged under the call's own). */
  readonly meta?: Readonly<Record<string, string>>;
  /** Largest request or reply body in bytes (also after decompression). Default 16 MiB. */
  readonly maxBodyBytes?: number;
  /** Slots assumed per endpoint until its worker advertises credit. Default 64. */
  readonly initialCredit?: number;
  /** toto compatibility: resolve `{ error: ... }` values (timeouts, remote errors) instead of rejecting. Default false. */
  readonly legacyErrorsAsValues?: boolean;
  /**
   * gRPC's `waitForReady` for every call (a call can override it): while no endpoint is up or
   * connecting (none configured yet, all down), a call waits in the queue until its deadline
   * instead of failing at once with NO_ENDPOINTS / UNAVAILABLE. For endpoints that follow a
   * process manager (workers still starting, restarting). Default false (fail fast).
   */
  readonly waitForReady?: boolean;
  readonly clock?: Clock;
  /** Random source in [0, 1) for the default backoff jitter. Default `Math.random`. */
  readonly random?: () => number;
  readonly logger?: Logger;
  readonly metrics?: Metrics;
}

/** Options of one call. */
export interface CallOptions {
  /** Deadline of this call in ms (default: the method's, then the connection's). */
  readonly timeoutMs?: number;
  /** Aborting rejects with CANCELLED and sends CANCEL to the worker. */
  readonly signal?: AbortSignal;
  /** Makes the call retryable and deduplicated by this key on the worker. */
  readonly idempotencyKey?: string;
  /** Overrides the method's idempotency. */
  readonly idempotent?: boolean;
  /** Metadata for the handler (`ctx.meta`). */
  readonly meta?: Readonly<Record<string, string>>;
  /** `'result'` (default) waits for the result; `'delivery'` resolves `undefined` once the worker acknowledged. */
  readonly ack?: 'result' | 'delivery';
  /** Attempts for this call (overrides `retry.maxAttempts`; 1 = none). toto's per-call `auto_retry`. */
  readonly maxAttempts?: number;
  /**
   * The handler context (or any `{ deadline, signal }`) this call is made from: the call inherits
   * the earlier deadline and is cancelled with it, so budgets shrink across nested calls.
   */
  readonly parent?: { readonly deadline: number; readonly signal?: AbortSignal };
  /** Waits (until the deadline) for an endpoint when none is up or connecting; see the connection's option. */
  readonly waitForReady?: boolean;
}

/** Options of `close()` and `removeConnection()`. */
export interface DrainOptions {
  /** How long calls in flight may still finish before they fail with CLOSED/UNAVAILABLE. Default 0 for close, 5 000 for removeConnection. */
  readonly drainMs?: number;
}

/** Events of a connection (`conn.onEvent(listener)`). */
export type WorkerConnectionEvent =
  | {
      readonly type: 'endpoint';
      readonly address: string;
      readonly state: EndpointState;
      readonly error?: WorkerRpcError;
    }
  | {
      readonly type: 'retry';
      readonly method: string;
      readonly attempt: number;
      readonly delayMs: number;
      readonly error: WorkerRpcError;
    }
  | {
      readonly type: 'giveUp';
      readonly method: string;
      readonly attempts: number;
      readonly error: WorkerRpcError;
    };
