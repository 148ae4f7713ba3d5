import { durationOption } from './internal/durationOption.js';
import {
  Emitter,
  HedgePolicy,
  LatencyHistogram,
  RetryBudget,
  RetryPolicy,
  exponentialBackoff,
  noopMetrics,
  pipeline,
  roundRobin,
  silentLogger,
  systemClock,
  describeValue,
  type Backoff,
  type Balancer,
  type Clock,
  type HedgeOptions,
  type Listen,
  type Logger,
  type Metrics,
  type Policy,
  type PolicyContext,
  type RetrySchedule,
  type TimerHandle,
} from '@x/resilience';
import type { Client, InvokeArgs, MethodPath, ResultOf, UntypedApi } from './api.js';
import { codecTable, resolveCodec, type Codec } from './codec.js';
import {
  compressorTable,
  resolveCompression,
  type CompressionOption,
  type Compressor,
} from './compression.js';
import { WorkerRpcError, fromTotoError, fromWireError, isWorkerRpcError } from './errors.js';
import { IdSource } from './internal/ids.js';
import { createProxy, PROXY_RESERVED_NAMES } from './internal/proxy.js';

export { PROXY_RESERVED_NAMES };
import { leastOutstanding } from './leastOutstanding.js';
import { Kind } from './protocol.js';
import type {
  Channel,
  ChannelEvents,
  ChannelState,
  OutgoingRequest,
  ReplyFrame,
  Transport,
} from './transport.js';
import { httpTransport } from './httpTransport.js';
import { zmqTransport } from './zmqTransport.js';

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
  /** `least-outstanding` (default; uses advertised credit), `round-robin` (toto) or any `Balancer`. */
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
}

/** Options of `close()` and `removeConnection()`. */
export interface DrainOptions {
  /** How long calls in flight may still finish before they fail with CLOSED/UNAVAILABLE. Default 0 for close, 5 000 for removeConnection. */
  readonly drainMs?: number;
}

/** State of an endpoint. */
export type EndpointState = 'connecting' | 'up' | 'down' | 'draining' | 'removing' | 'closed';

/** Stats of one endpoint (`conn.endpoints()`). */
export interface EndpointStats {
  readonly address: string;
  readonly state: EndpointState;
  readonly inFlight: number;
  /** Credit left by our estimate (Infinity when the worker does not advertise). */
  readonly credit: number;
  /** Largest credit the worker advertised (its concurrency + queue), or the initial credit. */
  readonly capacity: number;
  readonly requests: number;
  readonly failures: number;
  readonly consecutiveFailures: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
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

/** An endpoint as balancers see it (compared by identity). */
export class EndpointHandle {
  state: EndpointState = 'connecting';
  inFlight = 0;
  /** Estimated free slots on the worker. */
  credit: number;
  /** Largest credit seen. */
  capacity: number;
  requests = 0;
  failures = 0;
  consecutiveFailures = 0;
  readonly latency: LatencyHistogram;
  channel!: Channel;
  drainWaiters: (() => void)[] = [];

  constructor(
    readonly address: string,
    initialCredit: number,
    clock: Clock,
  ) {
    this.credit = initialCredit;
    this.capacity = initialCredit === Infinity ? 1 : initialCredit;
    this.latency = new LatencyHistogram({ clock, windowMs: 60_000 });
  }
}

interface AttemptSink {
  ok(attempt: Attempt, value: unknown): void;
  fail(attempt: Attempt, error: WorkerRpcError): void;
}

class Attempt {
  /** No longer counted in flight (settled, timed out or failed). */
  ended = false;
  timer: TimerHandle | undefined;
  constructor(
    readonly call: Call,
    readonly endpoint: EndpointHandle,
    readonly n: number,
    readonly startedAt: number,
    readonly sink: AttemptSink,
  ) {}
}

class Call implements OutgoingRequest {
  done = false;
  attempt = 0;
  attempts: Attempt[] = [];
  timer: TimerHandle | undefined;
  retryTimer: TimerHandle | undefined;
  schedule: RetrySchedule | undefined;
  queued = false;
  resolve!: (value: unknown) => void;
  reject!: (error: unknown) => void;
  onAbort: (() => void) | undefined;
  abortController: AbortController | undefined;
  ctx: PolicyContext | undefined;
  /** Pending attempt when queued for an endpoint (policy path). */
  pendingSink: AttemptSink | undefined;

  constructor(
    readonly conn: WorkerConnection<any>,
    readonly seq: number,
    readonly id: Buffer,
    readonly method: string,
    readonly idempotent: boolean,
    readonly key: string,
    readonly meta: Readonly<Record<string, string>> | undefined,
    readonly ack: boolean,
    readonly codec: string,
    readonly contentType: string,
    readonly encoding: string,
    readonly compressed: boolean,
    readonly body: Uint8Array,
    readonly deadline: number,
    readonly startedAt: number,
    readonly maxAttempts: number,
    readonly signals: readonly AbortSignal[],
  ) {}

  budgetMs(): number {
    return this.deadline === Infinity ? -1 : Math.max(0, this.deadline - this.conn.clock.now());
  }
}

const DEFAULT_TIMEOUT_MS = 10_000;
const NEVER = new AbortController().signal;
const NO_SIGNALS: readonly AbortSignal[] = [];

/** Whether an address looks like an HTTP URL. */
function isHttpAddress(address: string): boolean {
  return /^https?:\/\//i.test(address);
}

/** Splits a comma-separated address string (or trims a list); drops empties and duplicates. */
export function parseAddresses(addresses: string | readonly string[] | undefined): string[] {
  if (addresses === undefined) return [];
  const list = typeof addresses === 'string' ? addresses.split(',') : [...addresses];
  const out: string[] = [];
  for (const raw of list) {
    if (typeof raw !== 'string') throw new TypeError('addresses must be strings');
    const a = raw.trim();
    if (a && !out.includes(a)) out.push(a);
  }
  return out;
}

/**
 * A connection to one or more remote workers (toto's `WorkerConnection`, `ZMQWorkerConnection` and
 * `HTTPWorkerConnection`). Calls go through `invoke` or the typed `proxy`; endpoints are managed
 * with `addConnection`, `removeConnection` and `setConnections`. Create it with
 * {@link createWorkerConnection}.
 */
export class WorkerConnection<Api = UntypedApi> {
  /** The clock deadlines are measured on. */
  readonly clock: Clock;
  /**
   * The typed dynamic proxy: `conn.proxy.math.add({ a, b }, options)`. Awaiting it sends nothing.
   * Names in {@link PROXY_RESERVED_NAMES} (`then`, `call`, `apply`, `bind`, `toString`, `valueOf`,
   * `inspect`, `constructor`, ...) are never path segments: call such methods with `invoke`.
   */
  readonly proxy: Client<Api, CallOptions>;
  readonly transport: Transport;
  readonly timeoutMs: number;

  private readonly codec: Codec;
  private readonly contentType: string;
  private readonly codecs: Map<string, Codec>;
  private readonly compressor: Compressor | undefined;
  private readonly thresholdBytes: number;
  private readonly compressors: Map<string, Compressor>;
  private readonly balancer: Balancer<EndpointHandle>;
  private readonly usesCredit: boolean;
  private readonly maxInFlight: number;
  private readonly maxQueued: number;
  private readonly methodOptions: Map<string, MethodOptions>;
  private readonly defaultMeta: Readonly<Record<string, string>> | undefined;
  private readonly maxBodyBytes: number;
  private readonly initialCredit: number;
  private readonly legacy: boolean;
  private readonly toto: boolean;
  private readonly logger: Logger;
  private readonly metrics: Metrics | undefined;
  private readonly retryPolicy: RetryPolicy;
  private readonly retryMaxAttempts: number;
  /** `retry.calls === 'all'`: every call is idempotent unless it or its method says otherwise. */
  private readonly retryAllCalls: boolean;
  private readonly attemptTimeoutMs: number;
  private readonly retryBudget: RetryBudget | undefined;
  private readonly hedgePolicy: HedgePolicy | undefined;
  private readonly hedgedPipeline: Policy | undefined;
  private readonly ids = new IdSource();
  private readonly calls = new Map<number, Call>();
  private readonly endpointMap = new Map<string, EndpointHandle>();
  /** Endpoints in state `up`, the balancer's candidates. */
  private up: EndpointHandle[] = [];
  private queue: (Call | undefined)[] = [];
  private queueHead = 0;
  private queuedCount = 0;
  private sent = 0;
  private closing = false;
  private closed: Promise<void> | undefined;
  private pumping = false;
  /** A failure no endpoint can recover from (the `zeromq` peer is missing). */
  private fatal: WorkerRpcError | undefined;
  private readonly events = new Emitter<WorkerConnectionEvent>();
  /** Subscribes to endpoint state changes, retries and give-ups; returns the unsubscribe function. */
  readonly onEvent: Listen<WorkerConnectionEvent> = this.events.on;

  constructor(options: WorkerConnectionOptions = {}) {
    const addresses = parseAddresses(options.addresses);
    this.clock = options.clock ?? systemClock;
    this.timeoutMs = validateTimeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, 'timeoutMs');
    const transport =
      options.transport ??
      (addresses.length > 0 && addresses.every(isHttpAddress) ? 'http' : 'zmq');
    this.transport =
      transport === 'zmq' ? zmqTransport() : transport === 'http' ? httpTransport() : transport;
    if (typeof this.transport?.open !== 'function')
      throw new TypeError('transport must be "zmq", "http" or a Transport');
    this.toto = this.transport.protocol === 'toto';
    this.codec = resolveCodec(options.codec);
    this.codecs = codecTable([...(options.codecs ?? []), this.codec]);
    this.contentType =
      options.serializationMime === undefined
        ? this.codec.contentType
        : mimeType(options.serializationMime, 'serializationMime');
    const compression = resolveCompression(options.compression);
    this.compressor = compression.compressor;
    this.thresholdBytes = this.toto ? 0 : compression.thresholdBytes;
    this.compressors = compressorTable([
      ...(options.compressors ?? []),
      ...(this.compressor ? [this.compressor] : []),
    ]);
    this.maxInFlight = positiveInt(options.maxInFlight ?? 10_000, 'maxInFlight');
    this.maxQueued = nonNegativeInt(options.maxQueued ?? 10_000, 'maxQueued');
    this.maxBodyBytes = positiveInt(options.maxBodyBytes ?? 16 * 1024 * 1024, 'maxBodyBytes');
    this.initialCredit = this.toto
      ? Infinity
      : positiveInt(options.initialCredit ?? 64, 'initialCredit');
    this.legacy = options.legacyErrorsAsValues ?? false;
    this.logger = options.logger ?? silentLogger;
    this.metrics = options.metrics && options.metrics !== noopMetrics ? options.metrics : undefined;
    this.defaultMeta = options.meta;
    this.methodOptions = new Map(Object.entries(options.methods ?? {}));
    const b = options.balancer ?? 'least-outstanding';
    this.usesCredit = !this.toto;
    this.balancer =
      b === 'least-outstanding'
        ? leastOutstanding<EndpointHandle>({ clock: this.clock, capacityOf: e => e.capacity })
        : b === 'round-robin'
          ? roundRobin<EndpointHandle>({ clock: this.clock })
          : b;
    if (typeof this.balancer?.pick !== 'function')
      throw new TypeError('balancer must be "least-outstanding", "round-robin" or a Balancer');

    const retry: WorkerRetryOptions =
      options.retry === true
        ? {}
        : typeof options.retry === 'number'
          ? { maxAttempts: options.retry }
          : options.retry || { maxAttempts: 1 };
    this.retryMaxAttempts = positiveInt(retry.maxAttempts ?? 3, 'retry.maxAttempts');
    if (retry.calls !== undefined && retry.calls !== 'idempotent' && retry.calls !== 'all')
      throw new RangeError(
        `retry.calls must be 'idempotent' or 'all', got ${JSON.stringify(retry.calls)}`,
      );
    this.retryAllCalls = retry.calls === 'all';
    this.attemptTimeoutMs =
      retry.attemptTimeoutMs === undefined
        ? Infinity
        : validateTimeout(retry.attemptTimeoutMs, 'retry.attemptTimeoutMs');
    this.retryBudget =
      retry.budget === false ? undefined : (retry.budget ?? new RetryBudget({ clock: this.clock }));
    const retryOn =
      retry.retryOn ?? ((error: unknown) => isWorkerRpcError(error) && error.retryable);
    // Attempts are capped per call (call.maxAttempts); the schedule supplies backoff, budget and deadline checks.
    this.retryPolicy = new RetryPolicy({
      maxRetries: 254,
      backoff:
        retry.backoff ??
        exponentialBackoff({
          initialMs: 25,
          maxMs: 1000,
          jitter: 'full',
          random: options.random ?? Math.random,
        }),
      retryOn: (error, attempt) =>
        !(isWorkerRpcError(error) && error.code === 'TIMEOUT' && error.scope === 'call') &&
        retryOn(error, attempt),
      ...(this.retryBudget ? { budget: this.retryBudget } : {}),
      respectRetryAfter: true,
      clock: this.clock,
    });
    if (options.hedge) {
      this.hedgePolicy =
        options.hedge instanceof HedgePolicy
          ? options.hedge
          : new HedgePolicy({ ...options.hedge, clock: this.clock });
      this.hedgedPipeline =
        this.retryMaxAttempts > 1 ? pipeline(this.retryPolicy, this.hedgePolicy) : this.hedgePolicy;
    }
    this.proxy = createProxy((method, params, callOptions) =>
      (this as WorkerConnection).invoke(method, params, callOptions as CallOptions),
    ) as Client<Api, CallOptions>;
    if (this.transport.checkAddress)
      for (const address of addresses) this.transport.checkAddress(address);
    for (const address of addresses) this.addConnection(address);
  }

  /** Calls sent and not yet answered. */
  get inFlight(): number {
    return this.sent;
  }

  /** Calls waiting locally for an endpoint. */
  get queued(): number {
    return this.queuedCount;
  }

  /** Pending calls (in flight + queued + retrying); 0 when idle. */
  get pending(): number {
    return this.calls.size;
  }

  /** Addresses currently connected or connecting (not removed). */
  get addresses(): string[] {
    return [...this.endpointMap.values()]
      .filter(e => e.state !== 'removing' && e.state !== 'closed')
      .map(e => e.address);
  }

  /** Per-endpoint stats. */
  endpoints(): EndpointStats[] {
    return [...this.endpointMap.values()].map(e => ({
      address: e.address,
      state: e.state,
      inFlight: e.inFlight,
      credit: e.credit,
      capacity: e.capacity,
      requests: e.requests,
      failures: e.failures,
      consecutiveFailures: e.consecutiveFailures,
      p50Ms: e.latency.percentile(0.5),
      p99Ms: e.latency.percentile(0.99),
    }));
  }

  /** Connects to the worker at `address` (no-op when already connected). */
  addConnection(address: string): void {
    if (this.closing) throw new WorkerRpcError('CLOSED', 'connection is closed');
    const a = typeof address === 'string' ? parseAddresses(address) : [];
    if (a.length !== 1)
      throw new WorkerRpcError(
        'INVALID_ARGUMENT',
        `address: expected one address, received ${describeValue(address)}`,
      );
    const addr = a[0]!;
    const existing = this.endpointMap.get(addr);
    if (existing && existing.state !== 'removing' && existing.state !== 'closed') return;
    const endpoint = new EndpointHandle(addr, this.initialCredit, this.clock);
    // The zmq and http transports refuse a malformed address here (INVALID_ARGUMENT), before the
    // endpoint is registered: a call never waits out its deadline on an address that cannot work.
    endpoint.channel = this.transport.open(addr, this.eventsFor(endpoint), {
      maxBodyBytes: this.maxBodyBytes,
    });
    this.endpointMap.set(addr, endpoint);
  }

  /**
   * Stops sending to `address`, lets its calls in flight finish for up to `drainMs` (default
   * 5 000), fails the rest with UNAVAILABLE (retried elsewhere when idempotent), then disconnects.
   * Unknown addresses are ignored (toto's HTTP variant raised `KeyError`).
   */
  async removeConnection(address: string, options: DrainOptions = {}): Promise<void> {
    const endpoint = this.endpointMap.get(address.trim());
    if (!endpoint || endpoint.state === 'removing' || endpoint.state === 'closed') return;
    this.setState(endpoint, 'removing');
    await this.drainEndpoint(
      endpoint,
      options.drainMs ?? 5_000,
      () =>
        new WorkerRpcError('UNAVAILABLE', `endpoint ${endpoint.address} was removed`, {
          endpoint: endpoint.address,
        }),
    );
    endpoint.state = 'closed';
    if (this.endpointMap.get(endpoint.address) === endpoint)
      this.endpointMap.delete(endpoint.address);
    this.balancer.forget(endpoint);
    await endpoint.channel.close();
  }

  /** Connects to every new address and removes the ones not listed (toto's `set_connections`). */
  async setConnections(
    addresses: string | readonly string[],
    options: DrainOptions = {},
  ): Promise<void> {
    const wanted = new Set(parseAddresses(addresses));
    const removals: Promise<void>[] = [];
    for (const address of this.addresses)
      if (!wanted.has(address)) removals.push(this.removeConnection(address, options));
    for (const address of wanted) this.addConnection(address);
    await Promise.all(removals);
  }

  /**
   * Calls `method` on a worker (toto's `invoke`). Resolves with the result; rejects with a
   * `WorkerRpcError` (`TIMEOUT` when the deadline passes, `CANCELLED` when `signal` aborts, the
   * worker's code for remote errors). Idempotent calls are retried and hedged as configured.
   */
  invoke<M extends MethodPath<Api>>(
    method: M,
    ...args: InvokeArgs<Api, M, CallOptions>
  ): Promise<ResultOf<Api, M>>;
  invoke(method: string, params?: unknown, options: CallOptions = {}): Promise<unknown> {
    if (this.closing)
      return Promise.reject(new WorkerRpcError('CLOSED', 'connection is closed', { method }));
    if (typeof method !== 'string' || method.length === 0 || method.length > 1024) {
      return Promise.reject(
        new WorkerRpcError(
          'INVALID_ARGUMENT',
          'method must be a non-empty string of at most 1024 characters',
        ),
      );
    }
    const methodOptions = this.methodOptions.get(method);
    let timeoutMs: number;
    try {
      timeoutMs = validateTimeout(
        options.timeoutMs ?? methodOptions?.timeoutMs ?? this.timeoutMs,
        'timeoutMs',
      );
    } catch (error) {
      return Promise.reject(
        new WorkerRpcError('INVALID_ARGUMENT', (error as Error).message, { method }),
      );
    }
    const now = this.clock.now();
    let deadline = timeoutMs === Infinity ? Infinity : now + timeoutMs;
    const parent = options.parent;
    if (parent && typeof parent.deadline === 'number' && parent.deadline < deadline)
      deadline = parent.deadline;
    const signals: readonly AbortSignal[] =
      options.signal === undefined && parent?.signal === undefined
        ? NO_SIGNALS
        : [options.signal, parent?.signal].filter((x): x is AbortSignal => x !== undefined);
    for (const s of signals) if (s.aborted) return Promise.reject(this.cancelledError(method, s));
    if (deadline <= now) return Promise.reject(this.timeoutError(method, timeoutMs));
    if (this.calls.size >= this.maxInFlight + this.maxQueued) {
      return Promise.reject(
        new WorkerRpcError(
          'OVERLOADED',
          `${this.calls.size} calls pending (maxInFlight ${this.maxInFlight} + maxQueued ${this.maxQueued})`,
          { method },
        ),
      );
    }
    const key = options.idempotencyKey ?? '';
    if (typeof key !== 'string' || Buffer.byteLength(key) > 255)
      return Promise.reject(
        new WorkerRpcError(
          'INVALID_ARGUMENT',
          'idempotencyKey must be a string of at most 255 bytes',
          { method },
        ),
      );
    const idempotent =
      options.idempotent ?? (key !== '' || (methodOptions?.idempotent ?? this.retryAllCalls));
    const meta = options.meta
      ? this.defaultMeta
        ? { ...this.defaultMeta, ...options.meta }
        : options.meta
      : this.defaultMeta;

    let body: Uint8Array;
    try {
      body = this.toto
        ? this.codec.encode({ method, parameters: params === undefined ? {} : params })
        : params === undefined
          ? EMPTY
          : this.codec.encode(params);
    } catch (error) {
      return Promise.reject(
        new WorkerRpcError(
          'INVALID_ARGUMENT',
          `cannot encode params of ${method} with ${this.codec.name}: ${(error as Error).message}`,
          { method, cause: error },
        ),
      );
    }
    const maxAttempts =
      options.maxAttempts === undefined
        ? this.retryMaxAttempts
        : Math.max(1, Math.floor(options.maxAttempts));
    const compressor = this.compressor;
    if (compressor && body.byteLength >= this.thresholdBytes && body.byteLength > 0) {
      let compressed: Uint8Array | Promise<Uint8Array>;
      try {
        compressed = compressor.compress(body);
      } catch (error) {
        return Promise.reject(
          new WorkerRpcError('INTERNAL', `compression failed: ${(error as Error).message}`, {
            method,
            cause: error,
          }),
        );
      }
      if (compressed instanceof Promise) {
        return compressed.then(
          bytes =>
            this.start(
              method,
              idempotent,
              key,
              meta,
              options,
              bytes,
              true,
              deadline,
              now,
              maxAttempts,
              signals,
              timeoutMs,
            ),
          (error: unknown) =>
            Promise.reject(
              new WorkerRpcError('INTERNAL', `compression failed: ${(error as Error).message}`, {
                method,
                cause: error,
              }),
            ),
        );
      }
      return this.start(
        method,
        idempotent,
        key,
        meta,
        options,
        compressed,
        true,
        deadline,
        now,
        maxAttempts,
        signals,
        timeoutMs,
      );
    }
    return this.start(
      method,
      idempotent,
      key,
      meta,
      options,
      body,
      false,
      deadline,
      now,
      maxAttempts,
      signals,
      timeoutMs,
    );
  }

  private start(
    method: string,
    idempotent: boolean,
    key: string,
    meta: Readonly<Record<string, string>> | undefined,
    options: CallOptions,
    body: Uint8Array,
    compressed: boolean,
    deadline: number,
    startedAt: number,
    maxAttempts: number,
    signals: readonly AbortSignal[],
    timeoutMs: number,
  ): Promise<unknown> {
    if (body.byteLength > this.maxBodyBytes) {
      return Promise.reject(
        new WorkerRpcError(
          'FRAME_TOO_LARGE',
          `request body of ${body.byteLength} bytes exceeds maxBodyBytes ${this.maxBodyBytes}`,
          { method },
        ),
      );
    }
    if (this.closing)
      return Promise.reject(new WorkerRpcError('CLOSED', 'connection is closed', { method }));
    if (this.fatal) return Promise.reject(this.fatal);
    if (this.endpointMap.size === 0)
      return Promise.reject(
        new WorkerRpcError('NO_ENDPOINTS', 'no active connections', { method }),
      );
    const seq = this.ids.nextSeq();
    const id = this.ids.idOf(seq);
    const call = new Call(
      this,
      seq,
      id,
      method,
      idempotent,
      key,
      meta,
      options.ack === 'delivery',
      this.codec.name,
      this.contentType,
      this.compressor ? this.compressor.name : '',
      compressed,
      body,
      deadline,
      startedAt,
      idempotent ? maxAttempts : 1,
      signals,
    );
    const promise = new Promise<unknown>((resolve, reject) => {
      call.resolve = resolve;
      call.reject = reject;
    });
    this.calls.set(seq, call);
    if (deadline !== Infinity) {
      call.timer = this.clock.setTimeout(() => {
        call.timer = undefined;
        this.finish(call, this.timeoutError(method, timeoutMs), undefined);
      }, deadline - startedAt);
    }
    if (signals.length > 0) {
      call.onAbort = () => {
        const reason = signals.find(s => s.aborted);
        this.cancel(call, this.cancelledError(method, reason));
      };
      for (const s of signals) s.addEventListener('abort', call.onAbort, { once: true });
    }
    if (idempotent && this.retryBudget) this.retryBudget.deposit();
    if (idempotent && this.hedgedPipeline) {
      this.runHedged(call);
    } else {
      this.dispatch(call, callSink);
    }
    return promise;
  }

  /** Hedged path: the resilience pipeline (retry around hedge) drives attempts as promises. */
  private runHedged(call: Call): void {
    const controller = (call.abortController = new AbortController());
    const ctx: PolicyContext = {
      signal: controller.signal,
      attempt: 0,
      deadline: call.deadline,
      endpoint: undefined,
    };
    this.hedgedPipeline!.run(
      attemptCtx =>
        new Promise<unknown>((resolve, reject) => {
          if (call.done) return reject(new WorkerRpcError('CANCELLED', 'call already settled'));
          const sink: AttemptSink = {
            ok: (_attempt, value) => resolve(value),
            fail: (_attempt, error) => reject(error),
          };
          const before = call.attempts.length;
          this.dispatch(call, sink, attemptCtx.attempt);
          const attempt =
            call.attempts.length > before ? call.attempts[call.attempts.length - 1] : undefined;
          attemptCtx.signal.addEventListener(
            'abort',
            () => {
              if (attempt && !attempt.ended) {
                this.endAttempt(attempt, false);
                if (!call.done)
                  attempt.endpoint.channel.cancel(this.asAttemptRequest(call, attempt.n));
              }
              reject(new WorkerRpcError('CANCELLED', 'hedged attempt lost'));
            },
            { once: true },
          );
        }),
      ctx,
    ).then(
      value => this.finish(call, undefined, value),
      (error: unknown) =>
        this.finish(
          call,
          isWorkerRpcError(error)
            ? error
            : new WorkerRpcError('INTERNAL', String((error as Error)?.message ?? error), {
                cause: error,
              }),
          undefined,
        ),
    );
  }

  /** Picks an endpoint and sends the next attempt, or queues the call. */
  private dispatch(call: Call, sink: AttemptSink, attemptNumber?: number): void {
    if (call.done) return;
    if (call.queued) {
      // a hedge while the call still waits for an endpoint: nothing to hedge to
      sink.fail(
        new Attempt(call, undefined as never, call.attempt, this.clock.now(), sink),
        new WorkerRpcError('UNAVAILABLE', 'no endpoint free for a hedge', { method: call.method }),
      );
      return;
    }
    const endpoint = this.sent < this.maxInFlight ? this.pick(call) : undefined;
    if (endpoint === undefined) {
      if (this.up.length === 0 && !this.hasConnecting()) {
        const error = new WorkerRpcError(
          this.endpointMap.size === 0 ? 'NO_ENDPOINTS' : 'UNAVAILABLE',
          this.endpointMap.size === 0 ? 'no active connections' : 'no endpoint is up',
          { method: call.method },
        );
        sink.fail(
          new Attempt(call, undefined as never, call.attempt, this.clock.now(), sink),
          error,
        );
        return;
      }
      if (this.queuedCount >= this.maxQueued) {
        sink.fail(
          new Attempt(call, undefined as never, call.attempt, this.clock.now(), sink),
          new WorkerRpcError('OVERLOADED', `local queue full (${this.maxQueued})`, {
            method: call.method,
          }),
        );
        return;
      }
      call.queued = true;
      call.pendingSink = sink;
      if (attemptNumber !== undefined) call.attempt = attemptNumber;
      this.queue.push(call);
      this.queuedCount++;
      return;
    }
    this.send(call, endpoint, sink, attemptNumber);
  }

  private send(
    call: Call,
    endpoint: EndpointHandle,
    sink: AttemptSink,
    attemptNumber?: number,
  ): void {
    if (attemptNumber !== undefined) call.attempt = attemptNumber;
    const attempt = new Attempt(call, endpoint, call.attempt, this.clock.now(), sink);
    call.attempts.push(attempt);
    endpoint.inFlight++;
    endpoint.requests++;
    if (endpoint.credit !== Infinity) endpoint.credit--;
    this.sent++;
    this.balancer.start(endpoint);
    if (this.attemptTimeoutMs !== Infinity && call.maxAttempts > 1) {
      attempt.timer = this.clock.setTimeout(() => {
        attempt.timer = undefined;
        if (attempt.ended || call.done) return;
        this.endAttempt(attempt, false);
        attempt.sink.fail(
          attempt,
          new WorkerRpcError(
            'TIMEOUT',
            `attempt ${attempt.n} of ${call.method} timed out after ${this.attemptTimeoutMs} ms`,
            {
              scope: 'attempt',
              method: call.method,
              endpoint: endpoint.address,
              attempt: attempt.n,
            },
          ),
        );
      }, this.attemptTimeoutMs);
    }
    const error = endpoint.channel.send(call);
    if (error) this.attemptFailed(attempt, error);
  }

  private hasConnecting(): boolean {
    for (const e of this.endpointMap.values())
      if (e.state === 'connecting' || e.state === 'down') return true;
    return false;
  }

  private eligible(e: EndpointHandle): boolean {
    return !this.usesCredit || e.credit > 0 || e.inFlight === 0;
  }

  private pick(call: Call): EndpointHandle | undefined {
    const up = this.up;
    if (up.length === 0) return undefined;
    let candidates = up;
    for (let i = 0; i < up.length; i++) {
      if (!this.eligible(up[i]!)) {
        candidates = up.filter(e => this.eligible(e));
        break;
      }
    }
    if (candidates.length === 0) return undefined;
    if (call.attempts.length > 0) {
      // a retry or hedge: prefer an endpoint this call has not tried
      const tried = new Set<EndpointHandle>();
      for (const a of call.attempts) tried.add(a.endpoint);
      return this.balancer.pick(candidates, tried) ?? this.balancer.pick(candidates);
    }
    return this.balancer.pick(candidates);
  }

  /** Sends queued calls while endpoints have room. */
  private pump(): void {
    if (this.pumping || this.queuedCount === 0) return;
    this.pumping = true;
    try {
      while (this.queueHead < this.queue.length && this.sent < this.maxInFlight) {
        const call = this.queue[this.queueHead];
        if (call === undefined || call.done || !call.queued) {
          this.queue[this.queueHead++] = undefined;
          continue;
        }
        const endpoint = this.pick(call);
        if (endpoint === undefined) break;
        this.queue[this.queueHead++] = undefined;
        call.queued = false;
        this.queuedCount--;
        const sink = call.pendingSink!;
        call.pendingSink = undefined;
        this.send(call, endpoint, sink);
      }
      if (this.queueHead === this.queue.length) {
        this.queue = [];
        this.queueHead = 0;
      } else if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.queueHead);
        this.queueHead = 0;
      }
    } finally {
      this.pumping = false;
    }
  }

  private unqueue(call: Call): void {
    if (call.queued) {
      call.queued = false;
      call.pendingSink = undefined;
      this.queuedCount--;
      if (this.queuedCount === 0) {
        this.queue = [];
        this.queueHead = 0;
      }
    }
  }

  /** Stops counting an attempt in flight. */
  private endAttempt(attempt: Attempt, ok: boolean): void {
    if (attempt.ended) return;
    attempt.ended = true;
    if (attempt.timer) {
      this.clock.clearTimeout(attempt.timer);
      attempt.timer = undefined;
    }
    const endpoint = attempt.endpoint;
    endpoint.inFlight--;
    this.sent--;
    const durationMs = Math.max(0, this.clock.now() - attempt.startedAt);
    this.balancer.end(endpoint, { ok, durationMs });
    if (ok) {
      endpoint.consecutiveFailures = 0;
      endpoint.latency.record(durationMs);
    } else {
      endpoint.failures++;
      endpoint.consecutiveFailures++;
    }
    if (endpoint.inFlight === 0 && endpoint.drainWaiters.length > 0) {
      const waiters = endpoint.drainWaiters;
      endpoint.drainWaiters = [];
      for (const w of waiters) w();
    }
  }

  private attemptFailed(attempt: Attempt, error: WorkerRpcError): void {
    if (attempt.ended && attempt.call.done) return;
    this.endAttempt(attempt, false);
    attempt.sink.fail(attempt, error);
    this.pump();
  }

  /** State-machine path: an attempt failed, retry (same id, next attempt) or give up. */
  retryOrFail(call: Call, error: WorkerRpcError): void {
    if (call.done) return;
    for (const a of call.attempts) if (!a.ended) return; // another attempt may still answer
    if (call.maxAttempts <= 1 || call.attempt + 1 >= call.maxAttempts) {
      this.finish(call, error, undefined);
      return;
    }
    call.ctx ??= {
      signal: call.signals[0] ?? NEVER,
      attempt: 0,
      deadline: call.deadline,
      endpoint: undefined,
    };
    call.schedule ??= this.retryPolicy.schedule(call.ctx);
    call.schedule.attempt = call.attempt;
    const delay = call.schedule.next(error);
    if (delay < 0) {
      const final = call.schedule.finalError;
      if (this.events.active)
        this.events.emit({
          type: 'giveUp',
          method: call.method,
          attempts: call.attempt + 1,
          error,
        });
      // the retry budget said no: keep the last failure's code, note why it was not retried
      this.finish(
        call,
        isWorkerRpcError(final)
          ? final
          : new WorkerRpcError(
              error.code,
              `${error.message} (not retried: ${(final as Error)?.message ?? 'gave up'})`,
              {
                cause: final,
                method: call.method,
                endpoint: error.endpoint,
                attempt: error.attempt,
                retryable: error.retryable,
                remote: error.remote,
              },
            ),
        undefined,
      );
      return;
    }
    const next = call.attempt + 1;
    if (this.events.active)
      this.events.emit({
        type: 'retry',
        method: call.method,
        attempt: next,
        delayMs: delay,
        error,
      });
    if (delay <= 0) {
      this.dispatch(call, callSink, next);
    } else {
      call.retryTimer = this.clock.setTimeout(() => {
        call.retryTimer = undefined;
        this.dispatch(call, callSink, next);
      }, delay);
    }
  }

  private cancel(call: Call, error: WorkerRpcError): void {
    if (call.done) return;
    for (const attempt of call.attempts) {
      if (!attempt.ended) attempt.endpoint.channel.cancel(this.asAttemptRequest(call, attempt.n));
    }
    this.finish(call, error, undefined);
  }

  /** The request as seen for attempt `n` (CANCEL carries the attempt it cancels). */
  private asAttemptRequest(call: Call, n: number): OutgoingRequest {
    if (n === call.attempt) return call;
    return Object.create(call, { attempt: { value: n } }) as OutgoingRequest;
  }

  /** Settles a call once; releases its timers, listeners, queue slot and attempts. */
  finish(call: Call, error: WorkerRpcError | undefined, value: unknown): void {
    if (call.done) return;
    call.done = true;
    this.calls.delete(call.seq);
    if (call.timer) {
      this.clock.clearTimeout(call.timer);
      call.timer = undefined;
    }
    if (call.retryTimer) {
      this.clock.clearTimeout(call.retryTimer);
      call.retryTimer = undefined;
    }
    if (call.onAbort) {
      for (const s of call.signals) s.removeEventListener('abort', call.onAbort);
      call.onAbort = undefined;
    }
    this.unqueue(call);
    for (const attempt of call.attempts) this.endAttempt(attempt, error === undefined);
    if (call.abortController) call.abortController.abort();
    if (this.metrics) {
      const outcome = error ? error.code : 'OK';
      this.metrics.increment('worker_rpc.client.calls', 1, { outcome });
      this.metrics.histogram('worker_rpc.client.duration', this.clock.now() - call.startedAt, {
        outcome,
      });
    }
    if (error === undefined) {
      call.resolve(value);
    } else if (this.legacy && (error.code === 'TIMEOUT' || error.remote)) {
      call.resolve(
        error.code === 'TIMEOUT'
          ? { error: 'timeout' }
          : { error: { code: error.appCode ?? error.code, value: error.message } },
      );
    } else {
      call.reject(error);
    }
    this.pump();
  }

  private eventsFor(endpoint: EndpointHandle): ChannelEvents {
    return {
      reply: (_channel, id, frame) => this.onReply(endpoint, id, frame),
      fail: (_channel, id, error) => {
        const call = this.calls.get(this.ids.seqOf(id));
        if (!call) return;
        const attempt = findAttempt(call, endpoint);
        if (attempt && !attempt.ended)
          this.attemptFailed(attempt, withEndpoint(error, endpoint, call, attempt.n));
      },
      state: (_channel, state, error) => this.onState(endpoint, state, error),
      credit: (_channel, credit) => this.onCredit(endpoint, credit),
    };
  }

  private onCredit(endpoint: EndpointHandle, credit: number): void {
    if (credit < 0 || !this.usesCredit) return;
    endpoint.credit = credit;
    if (credit > endpoint.capacity) endpoint.capacity = credit;
    this.pump();
  }

  private onState(endpoint: EndpointHandle, state: ChannelState, error?: WorkerRpcError): void {
    if (error?.code === 'ZMQ_MISSING') {
      this.fatal = error;
      for (const call of [...this.calls.values()]) this.finish(call, error, undefined);
      return;
    }
    if (endpoint.state === 'removing' || endpoint.state === 'closed') {
      if (state === 'down')
        this.failEndpoint(
          endpoint,
          error ??
            new WorkerRpcError('UNAVAILABLE', `lost connection to ${endpoint.address}`, {
              endpoint: endpoint.address,
            }),
        );
      return;
    }
    if (state === 'up' && endpoint.state !== 'up') {
      this.logger.debug({ endpoint: endpoint.address }, 'worker endpoint up');
      this.setState(endpoint, 'up');
      this.pump();
    } else if (state === 'down') {
      if (endpoint.state !== 'down')
        this.logger.warn(
          { endpoint: endpoint.address, reason: error?.message ?? 'connection lost' },
          'worker endpoint down',
        );
      this.setState(endpoint, 'down', error);
      endpoint.credit = this.initialCredit;
      this.failEndpoint(
        endpoint,
        error ??
          new WorkerRpcError('UNAVAILABLE', `lost connection to ${endpoint.address}`, {
            endpoint: endpoint.address,
          }),
      );
    } else if (state === 'draining') {
      this.setState(endpoint, 'draining');
    }
  }

  /** Fails every live attempt on `endpoint` (connection lost or drain deadline). */
  private failEndpoint(endpoint: EndpointHandle, error: WorkerRpcError): void {
    if (endpoint.inFlight === 0) return;
    for (const call of [...this.calls.values()]) {
      for (const attempt of call.attempts) {
        if (attempt.endpoint === endpoint && !attempt.ended)
          this.attemptFailed(attempt, withEndpoint(error, endpoint, call, attempt.n));
      }
    }
  }

  private setState(endpoint: EndpointHandle, state: EndpointState, error?: WorkerRpcError): void {
    const wasUp = endpoint.state === 'up';
    const changed = endpoint.state !== state;
    endpoint.state = state;
    if (changed && this.events.active)
      this.events.emit({
        type: 'endpoint',
        address: endpoint.address,
        state,
        ...(error ? { error } : {}),
      });
    if (wasUp !== (state === 'up'))
      this.up = [...this.endpointMap.values()].filter(e => e.state === 'up');
    if (this.up.length === 0 && !this.hasConnecting() && this.queuedCount > 0) {
      // nothing will ever take the queued calls
      for (const call of this.queue) {
        if (call && call.queued && !call.done) {
          const sink = call.pendingSink!;
          this.unqueue(call);
          sink.fail(
            new Attempt(call, undefined as never, call.attempt, this.clock.now(), sink),
            new WorkerRpcError('UNAVAILABLE', 'no endpoint is up', { method: call.method }),
          );
        }
      }
    }
  }

  private onReply(endpoint: EndpointHandle, id: Uint8Array, frame: ReplyFrame): void {
    if (frame.credit >= 0) {
      endpoint.credit = frame.credit;
      if (frame.credit > endpoint.capacity) endpoint.capacity = frame.credit;
    }
    const call = this.calls.get(this.ids.seqOf(id));
    if (!call) {
      this.pump();
      return; // late or duplicate reply (the first one won), or a foreign id
    }
    const attempt = findAttempt(call, endpoint);
    if (frame.kind === Kind.ACK) {
      if (call.ack || this.toto) {
        if (attempt) this.settle(attempt, undefined);
        else this.finish(call, undefined, undefined);
      }
      return;
    }
    if (frame.kind !== Kind.RES && frame.kind !== Kind.ERR) return;
    let decoded: unknown;
    try {
      decoded = this.decodeBody(frame);
    } catch (error) {
      // an error status whose body is not ours (a proxy's HTML page, ...): the status says enough
      const e = withEndpoint(
        frame.kind === Kind.ERR && frame.fallbackError
          ? frame.fallbackError
          : (error as WorkerRpcError),
        endpoint,
        call,
        attempt?.n ?? call.attempt,
      );
      if (attempt && !attempt.ended) this.attemptFailed(attempt, e);
      else if (!attempt) this.finish(call, e, undefined);
      return;
    }
    if (decoded instanceof Promise) {
      decoded.then(
        value => this.deliver(call, attempt, endpoint, frame, value),
        (error: unknown) => {
          if (call.done) return;
          const e = withEndpoint(
            error as WorkerRpcError,
            endpoint,
            call,
            attempt?.n ?? call.attempt,
          );
          if (attempt && !attempt.ended) this.attemptFailed(attempt, e);
          else this.finish(call, e, undefined);
        },
      );
      return;
    }
    this.deliver(call, attempt, endpoint, frame, decoded);
  }

  private deliver(
    call: Call,
    attempt: Attempt | undefined,
    endpoint: EndpointHandle,
    frame: ReplyFrame,
    value: unknown,
  ): void {
    if (call.done) return;
    if (frame.kind === Kind.RES && !this.toto) {
      if (attempt) this.settle(attempt, value);
      else this.finish(call, undefined, value);
      return;
    }
    const context = {
      method: call.method,
      endpoint: endpoint.address,
      attempt: attempt?.n ?? call.attempt,
    };
    if (frame.kind === Kind.ERR) {
      const body = frame.wrapped ? (value as { error?: unknown } | undefined)?.error : value;
      if (this.toto && this.legacy && body !== undefined)
        return attempt ? this.settle(attempt, value) : this.finish(call, undefined, value);
      const error =
        body === undefined && frame.fallbackError
          ? withEndpoint(frame.fallbackError, endpoint, call, context.attempt)
          : this.toto
            ? fromTotoError(body, context)
            : fromWireError(body, context);
      if (!attempt) return this.finish(call, error, undefined);
      if (attempt.ended) return; // this attempt already failed (timed out); another one is running
      this.attemptFailed(attempt, error);
      return;
    }
    if (
      this.toto &&
      typeof value === 'object' &&
      value !== null &&
      Object.prototype.hasOwnProperty.call(value, 'error') &&
      Object.keys(value).length === 1
    ) {
      if (this.legacy)
        return attempt ? this.settle(attempt, value) : this.finish(call, undefined, value);
      const error = fromTotoError((value as { error: unknown }).error, context);
      if (attempt && !attempt.ended) this.attemptFailed(attempt, error);
      else this.finish(call, error, undefined);
      return;
    }
    if (attempt) this.settle(attempt, value);
    else this.finish(call, undefined, value);
  }

  /** A reply won: settle the call through its attempt (even a timed-out one: first reply wins). */
  private settle(attempt: Attempt, value: unknown): void {
    this.endAttempt(attempt, true);
    attempt.sink.ok(attempt, value);
  }

  private decodeBody(frame: ReplyFrame): unknown {
    let body = frame.body;
    if (body === undefined || body.byteLength === 0) return undefined;
    if (body.byteLength > this.maxBodyBytes)
      throw new WorkerRpcError(
        'FRAME_TOO_LARGE',
        `reply body of ${body.byteLength} bytes exceeds maxBodyBytes ${this.maxBodyBytes}`,
      );
    const codec = this.codecs.get(frame.codec || this.codec.name);
    if (!codec)
      throw new WorkerRpcError(
        'UNSUPPORTED',
        `reply uses unknown codec ${JSON.stringify(frame.codec)}`,
      );
    const totoModule = this.toto && !frame.wireEncoding; // toto's ZMQ client: every reply
    if (frame.compressed || (totoModule && this.compressor)) {
      const compressor = totoModule ? this.compressor : this.compressors.get(frame.encoding);
      if (!compressor)
        throw new WorkerRpcError(
          'UNSUPPORTED',
          `reply uses unknown compression ${JSON.stringify(frame.encoding)}`,
        );
      const inflated = compressor.decompress(body, this.maxBodyBytes);
      if (inflated instanceof Promise) return inflated.then(bytes => decodeWith(codec, bytes));
      body = inflated;
    }
    return decodeWith(codec, body);
  }

  private async drainEndpoint(
    endpoint: EndpointHandle,
    drainMs: number,
    error: () => WorkerRpcError,
  ): Promise<void> {
    if (endpoint.inFlight > 0 && drainMs > 0) {
      await new Promise<void>(resolve => {
        const timer = this.clock.setTimeout(done, drainMs);
        function done() {
          resolve();
        }
        endpoint.drainWaiters.push(() => {
          this.clock.clearTimeout(timer);
          resolve();
        });
      });
    }
    endpoint.drainWaiters = [];
    this.failEndpoint(endpoint, error());
  }

  private timeoutError(method: string, timeoutMs: number): WorkerRpcError {
    return new WorkerRpcError('TIMEOUT', `${method} timed out after ${timeoutMs} ms`, {
      method,
      scope: 'call',
    });
  }

  private cancelledError(method: string, signal: AbortSignal | undefined): WorkerRpcError {
    return new WorkerRpcError('CANCELLED', `${method} was cancelled`, {
      method,
      cause: signal?.reason,
    });
  }

  /**
   * Stops accepting calls, lets calls in flight finish for up to `drainMs` (default 0), rejects
   * the rest with CLOSED, and releases every channel, timer and socket. Idempotent.
   */
  close(options: DrainOptions = {}): Promise<void> {
    this.closed ??= this.doClose(options.drainMs ?? 0);
    return this.closed;
  }

  private async doClose(drainMs: number): Promise<void> {
    this.closing = true;
    const closedError = () => new WorkerRpcError('CLOSED', 'connection closed');
    if (drainMs > 0 && this.calls.size > 0) {
      const deadline = this.clock.now() + drainMs;
      while (this.calls.size > 0 && this.clock.now() < deadline) {
        await new Promise<void>(resolve => {
          const t = setTimeout(resolve, Math.min(10, Math.max(1, deadline - this.clock.now())));
          t.unref?.();
        });
      }
    }
    for (const call of [...this.calls.values()]) this.finish(call, closedError(), undefined);
    const endpoints = [...this.endpointMap.values()];
    this.endpointMap.clear();
    this.up = [];
    await Promise.all(
      endpoints.map(async e => {
        e.state = 'closed';
        this.balancer.forget(e);
        await e.channel.close();
      }),
    );
    await this.transport.close();
  }

  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private static defaultInstance: WorkerConnection<any> | undefined;

  /**
   * The process-wide connection configured from `WORKER_*` environment variables (toto's
   * `WorkerConnection.instance()`), created on first use:
   * `WORKER_ADDRESS` (comma-separated), `WORKER_TRANSPORT` (`zmq` | `http`), `WORKER_PROTOCOL`
   * (`wrpc` | `toto`), `WORKER_TIMEOUT` (seconds, toto's unit; negative = never; at most 3 600) or
   * `WORKER_TIMEOUT_MS` (milliseconds), `WORKER_AUTO_RETRY` (`true` = 3 attempts of every call,
   * each re-sent after `WORKER_TIMEOUT`), `WORKER_RETRY_COUNT` (retries of every call after the first),
   * `WORKER_SERIALIZATION` (`json` | `msgpack`), `WORKER_SERIALIZATION_MIME` (HTTP content type),
   * `WORKER_COMPRESSION` (`gzip` | `deflate` | `br` |
   * `none`), `WORKER_COMPRESSION_THRESHOLD` (bytes).
   */
  static instance<Api = UntypedApi>(
    env: Readonly<Record<string, string | undefined>> = process.env,
  ): WorkerConnection<Api> {
    WorkerConnection.defaultInstance ??= new WorkerConnection(optionsFromEnv(env));
    return WorkerConnection.defaultInstance as WorkerConnection<Api>;
  }

  /** Closes and forgets the {@link instance} (tests, reconfiguration). */
  static async resetInstance(): Promise<void> {
    const current = WorkerConnection.defaultInstance;
    WorkerConnection.defaultInstance = undefined;
    await current?.close();
  }
}

const EMPTY = new Uint8Array(0);

const callSink: AttemptSink = {
  ok(attempt, value) {
    attempt.call.conn.finish(attempt.call, undefined, value);
  },
  fail(attempt, error) {
    attempt.call.conn.retryOrFail(attempt.call, error);
  },
};

function decodeWith(codec: Codec, bytes: Uint8Array): unknown {
  if (bytes.byteLength === 0) return undefined;
  try {
    return codec.decode(bytes);
  } catch (error) {
    throw new WorkerRpcError(
      'BAD_FRAME',
      `cannot decode reply with ${codec.name}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

function findAttempt(call: Call, endpoint: EndpointHandle): Attempt | undefined {
  let found: Attempt | undefined;
  for (const a of call.attempts) {
    if (a.endpoint === endpoint) {
      if (!a.ended) return a;
      found = a;
    }
  }
  return found;
}

function withEndpoint(
  error: WorkerRpcError,
  endpoint: EndpointHandle,
  call: Call,
  attempt: number,
): WorkerRpcError {
  if (!isWorkerRpcError(error)) {
    return new WorkerRpcError('INTERNAL', String((error as Error)?.message ?? error), {
      cause: error,
      endpoint: endpoint.address,
      method: call.method,
      attempt,
    });
  }
  if (
    error.endpoint === endpoint.address &&
    error.method === call.method &&
    error.attempt === attempt
  )
    return error;
  return new WorkerRpcError(error.code, error.message, {
    cause: error.cause,
    retryable: error.retryable,
    remote: error.remote,
    method: call.method,
    endpoint: endpoint.address,
    attempt,
    details: error.details,
    ...(error.appCode !== undefined ? { appCode: error.appCode } : {}),
    ...(error.scope !== undefined ? { scope: error.scope } : {}),
    ...(error.retryAfterMs !== undefined ? { retryAfterMs: error.retryAfterMs } : {}),
  });
}

/**
 * A deadline in ms by `@x/resilience`'s `duration` rule (above 2^31−1 ms: none), plus toto's
 * "negative means never"; a string, `NaN` or 0 is `INVALID_ARGUMENT` naming the field.
 */
function validateTimeout(value: unknown, name: string): number {
  if (typeof value === 'number' && value < 0) return Infinity;
  return durationOption(value, name, { exclusiveMin: true });
}

const MIME =
  /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+(\s*;\s*[a-z0-9!#$&^_.+-]+=("[^"\r\n]*"|[a-z0-9!#$&^_.+-]+))*$/i;

function mimeType(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length > 255 || !MIME.test(value))
    throw new RangeError(
      `${name} must be a MIME type such as 'application/json', got ${JSON.stringify(value)}`,
    );
  return value;
}

function positiveInt(value: number, name: string): number {
  if (!(Number.isInteger(value) && value >= 1))
    throw new RangeError(`${name} must be an integer >= 1, got ${value}`);
  return value;
}

function nonNegativeInt(value: number, name: string): number {
  if (!(Number.isInteger(value) && value >= 0))
    throw new RangeError(`${name} must be an integer >= 0, got ${value}`);
  return value;
}

function envBool(value: string | undefined): boolean {
  return value !== undefined && /^(1|true|yes|on)$/i.test(value.trim());
}

/** Largest `WORKER_TIMEOUT` taken as seconds; a larger one is surely milliseconds. */
const MAX_ENV_TIMEOUT_S = 3_600;

/**
 * `WORKER_TIMEOUT` in seconds, toto's unit (`worker_timeout`, default 10.0; negative = never), or
 * `WORKER_TIMEOUT_MS` in milliseconds. A `WORKER_TIMEOUT` above an hour is refused as a value
 * written in milliseconds, and so is setting both.
 */
function envTimeoutMs(env: Readonly<Record<string, string | undefined>>): number {
  const seconds = env.WORKER_TIMEOUT?.trim();
  const ms = env.WORKER_TIMEOUT_MS?.trim();
  if (seconds && ms)
    throw new RangeError(
      `set WORKER_TIMEOUT (seconds) or WORKER_TIMEOUT_MS (milliseconds), not both: got WORKER_TIMEOUT=${seconds} and WORKER_TIMEOUT_MS=${ms}`,
    );
  if (ms) {
    const value = Number(ms);
    if (Number.isNaN(value) || value === 0)
      throw new RangeError(
        `WORKER_TIMEOUT_MS must be a non-zero number of milliseconds (negative = never), got ${JSON.stringify(ms)}`,
      );
    return value;
  }
  if (!seconds) return DEFAULT_TIMEOUT_MS;
  const value = Number(seconds);
  if (Number.isNaN(value) || value === 0)
    throw new RangeError(
      `WORKER_TIMEOUT must be a non-zero number of seconds (toto's unit; negative = never), got ${JSON.stringify(seconds)}`,
    );
  if (value > MAX_ENV_TIMEOUT_S)
    throw new RangeError(
      `WORKER_TIMEOUT is in seconds (toto's worker_timeout) and must be at most ${MAX_ENV_TIMEOUT_S}, got ${seconds}: for milliseconds set WORKER_TIMEOUT_MS=${seconds}`,
    );
  return value * 1000;
}

/** Connection options from `WORKER_*` variables (see {@link WorkerConnection.instance}). */
export function optionsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): WorkerConnectionOptions {
  const addresses = parseAddresses(env.WORKER_ADDRESS ?? '');
  const transportName = env.WORKER_TRANSPORT?.trim().toLowerCase();
  const protocol = env.WORKER_PROTOCOL?.trim().toLowerCase() === 'toto' ? 'toto' : 'wrpc/1';
  if (transportName && transportName !== 'zmq' && transportName !== 'http')
    throw new RangeError(`WORKER_TRANSPORT must be zmq or http, got ${transportName}`);
  const useHttp = transportName
    ? transportName === 'http'
    : addresses.length > 0 && addresses.every(isHttpAddress);
  const transport = useHttp ? httpTransport({ protocol }) : zmqTransport({ protocol });
  const timeoutMs = envTimeoutMs(env);
  const retryCount = env.WORKER_RETRY_COUNT?.trim() ? Number(env.WORKER_RETRY_COUNT) : 0;
  if (!(Number.isInteger(retryCount) && retryCount >= 0))
    throw new RangeError(`WORKER_RETRY_COUNT must be an integer >= 0`);
  const autoRetry = envBool(env.WORKER_AUTO_RETRY);
  const attempts = retryCount > 0 ? retryCount + 1 : autoRetry ? 3 : 1;
  const serialization = env.WORKER_SERIALIZATION?.trim().toLowerCase() || 'json';
  if (serialization !== 'json' && serialization !== 'msgpack')
    throw new RangeError(`WORKER_SERIALIZATION must be json or msgpack, got ${serialization}`);
  const compressionName = env.WORKER_COMPRESSION?.trim().toLowerCase() || 'none';
  if (!['none', 'gzip', 'deflate', 'br'].includes(compressionName))
    throw new RangeError(`WORKER_COMPRESSION must be none, gzip, deflate or br`);
  const mime = env.WORKER_SERIALIZATION_MIME?.trim();
  const threshold = env.WORKER_COMPRESSION_THRESHOLD?.trim()
    ? Number(env.WORKER_COMPRESSION_THRESHOLD)
    : 1024;
  const finite = timeoutMs > 0 && timeoutMs !== Infinity;
  return {
    addresses,
    transport,
    timeoutMs: finite && attempts > 1 ? timeoutMs * attempts : timeoutMs,
    // toto's auto_retry / auto_retry_count re-sent every call, not only idempotent ones
    ...(attempts > 1
      ? {
          retry: {
            maxAttempts: attempts,
            calls: 'all' as const,
            ...(finite ? { attemptTimeoutMs: timeoutMs } : {}),
          },
        }
      : {}),
    codec: serialization,
    ...(mime ? { serializationMime: mimeType(mime, 'WORKER_SERIALIZATION_MIME') } : {}),
    compression:
      compressionName === 'none'
        ? 'none'
        : { compressor: compressionName as 'gzip', thresholdBytes: threshold },
  };
}

/**
 * Creates a {@link WorkerConnection}. Defaults: JSON, no compression, `timeoutMs` 10 000,
 * no retry, least-outstanding balancing with worker credit, `maxInFlight` and `maxQueued` 10 000.
 *
 * ```ts
 * const conn = createWorkerConnection<Api>({ addresses: 'tcp://w1:55555,tcp://w2:55555' });
 * const sum = await conn.proxy.math.add({ a: 1, b: 2 });
 * ```
 */
export function createWorkerConnection<Api = UntypedApi>(
  options: WorkerConnectionOptions = {},
): WorkerConnection<Api> {
  return new WorkerConnection<Api>(options);
}
