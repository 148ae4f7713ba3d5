import {
  Emitter,
  noopMetrics,
  roundRobin,
  silentLogger,
  systemClock,
  describeValue,
  timerQueue,
  type TimerQueue,
  type Balancer,
  type Clock,
  type Listen,
  type Logger,
  type Metrics,
  type PolicyContext,
} from '@x/resilience';
import type { Client, InvokeArgs, MethodPath, ResultOf, UntypedApi } from './api.js';
import { AdmissionQueue } from './admissionQueue.js';
import { AttemptPolicy, MAX_ATTEMPTS } from './attemptPolicy.js';
import { codecTable, resolveCodec, type Codec } from './codec.js';
import { compressorTable, resolveCompression, type Compressor } from './compression.js';
import { EndpointHandle, type EndpointStats } from './endpointHandle.js';
import { EndpointRegistry } from './endpointRegistry.js';
import { WorkerRpcError } from './errors.js';
import { httpTransport } from './httpTransport.js';
import { IdSource } from './internal/ids.js';
import {
  DEFAULT_TIMEOUT_MS,
  mimeType,
  nonNegativeInt,
  positiveInt,
  validateTimeout,
} from './internal/optionChecks.js';
import { createProxy } from './internal/proxy.js';
import { withEndpoint } from './internal/withEndpoint.js';
import { leastOutstanding } from './leastOutstanding.js';
import { optionsFromEnv } from './optionsFromEnv.js';
import { Attempt, OutgoingCall, type AttemptSink } from './outgoingCall.js';
import { callTracer, endpointAttributes, rpcSystem } from './rpcTracers.js';
import { isHttpAddress, parseAddresses } from './parseAddresses.js';
import { Kind } from './protocol.js';
import { ReplyDecoder } from './replyDecoder.js';
import type {
  ChannelEvents,
  ChannelState,
  OutgoingRequest,
  ReplyFrame,
  Transport,
} from './transport.js';
import { WireDialect } from './wireDialect.js';
import type {
  CallOptions,
  DrainOptions,
  MethodOptions,
  WorkerConnectionEvent,
  WorkerConnectionOptions,
} from './workerConnectionOptions.js';
import { zmqTransport } from './zmqTransport.js';

const NO_SIGNALS: readonly AbortSignal[] = [];
/** The options of a call made without any (shared: no allocation per call). */
const NO_OPTIONS: CallOptions = Object.freeze({});

/**
 * A connection to one or more remote workers (toto's `WorkerConnection`, `ZMQWorkerConnection` and
 * `HTTPWorkerConnection`). Calls go through `invoke` or the typed `proxy`; endpoints are managed
 * with `addConnection`, `removeConnection` and `setConnections`. Create it with
 * {@link createWorkerConnection}.
 *
 * It composes its parts: an {@link EndpointRegistry} (endpoint states and choice), an
 * {@link AdmissionQueue} (calls waiting for credit), an {@link AttemptPolicy} (the retry and hedge
 * path), a {@link ReplyDecoder} and a {@link WireDialect} (wrpc/1 or toto), over a `Transport`
 * whose channels carry the frames.
 */
export class WorkerConnection<Api = UntypedApi> {
  /** The clock deadlines are measured on. */
  readonly clock: Clock;
  /**
   * The typed dynamic proxy: `conn.proxy.math.add({ a, b }, options)`. Awaiting it sends nothing.
   * Names in `PROXY_RESERVED_NAMES` (`then`, `call`, `apply`, `bind`, `toString`, `valueOf`,
   * `inspect`, `constructor`, ...) are never path segments: call such methods with `invoke`.
   */
  readonly proxy: Client<Api, CallOptions>;
  readonly transport: Transport;
  readonly timeoutMs: number;

  private readonly codec: Codec;
  private readonly contentType: string;
  private readonly compressor: Compressor | undefined;
  private readonly thresholdBytes: number;
  private readonly balancer: Balancer<EndpointHandle>;
  private readonly maxInFlight: number;
  private readonly maxQueued: number;
  private readonly methodOptions: Map<string, MethodOptions>;
  private readonly defaultMeta: Readonly<Record<string, string>> | undefined;
  private readonly maxBodyBytes: number;
  private readonly initialCredit: number;
  private readonly dialect: WireDialect;
  /** `waitForReady` of calls that do not set their own. */
  private readonly waitForReady: boolean;
  private readonly decoder: ReplyDecoder;
  private readonly logger: Logger;
  private readonly metrics: Metrics | undefined;
  private readonly policy: AttemptPolicy;
  private readonly ids = new IdSource();
  private readonly calls = new Map<number, OutgoingCall>();
  private readonly endpointsByAddress: EndpointRegistry;
  private readonly queue = new AdmissionQueue();
  /** Call deadlines: one clock timer for all calls (the calls are their own entries). */
  private readonly deadlines: TimerQueue;
  /** Fires a call's deadline (shared by every call, see {@link OutgoingCall.fire}). */
  private readonly expireCall = (call: OutgoingCall): void =>
    this.finish(call, this.timeoutError(call.method, call.timeoutMs), undefined);
  /** The outcome of a call's only attempt goes straight to the call. */
  private readonly directSink: AttemptSink = {
    ok: (call, value) => this.finish(call, undefined, value),
    fail: (call, error) => this.finish(call, error, undefined),
  };
  private sent = 0;
  private closing = false;
  private closed: Promise<void> | undefined;
  /** Resolves `close()`'s drain once no call is pending. */
  private onIdle: (() => void) | undefined;
  private pumping = false;
  /** A failure no endpoint can recover from (the `zeromq` peer is missing). */
  private fatal: WorkerRpcError | undefined;
  private readonly events = new Emitter<WorkerConnectionEvent>();
  /** Subscribes to endpoint state changes, retries and give-ups; returns the unsubscribe function. */
  readonly onEvent: Listen<WorkerConnectionEvent> = this.events.on;

  constructor(options: WorkerConnectionOptions = {}) {
    const addresses = parseAddresses(options.addresses);
    this.clock = options.clock ?? systemClock;
    this.deadlines = timerQueue(this.clock);
    this.timeoutMs = validateTimeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, 'timeoutMs');
    const transport =
      options.transport ??
      (addresses.length > 0 && addresses.every(isHttpAddress) ? 'http' : 'zmq');
    this.transport =
      transport === 'zmq' ? zmqTransport() : transport === 'http' ? httpTransport() : transport;
    if (typeof this.transport?.open !== 'function')
      throw new TypeError('transport must be "zmq", "http" or a Transport');
    const toto = this.transport.protocol === 'toto';
    this.dialect = new WireDialect(toto, options.legacyErrorsAsValues ?? false);
    this.waitForReady = options.waitForReady === true;
    this.codec = resolveCodec(options.codec);
    this.contentType =
      options.serializationMime === undefined
        ? this.codec.contentType
        : mimeType(options.serializationMime, 'serializationMime');
    const compression = resolveCompression(options.compression);
    this.compressor = compression.compressor;
    this.thresholdBytes = toto ? 0 : compression.thresholdBytes;
    this.maxInFlight = positiveInt(options.maxInFlight ?? 10_000, 'maxInFlight');
    this.maxQueued = nonNegativeInt(options.maxQueued ?? 10_000, 'maxQueued');
    this.maxBodyBytes = positiveInt(options.maxBodyBytes ?? 16 * 1024 * 1024, 'maxBodyBytes');
    this.decoder = new ReplyDecoder({
      codec: this.codec,
      codecs: codecTable([...(options.codecs ?? []), this.codec]),
      compressor: this.compressor,
      compressors: compressorTable([
        ...(options.compressors ?? []),
        ...(this.compressor ? [this.compressor] : []),
      ]),
      maxBodyBytes: this.maxBodyBytes,
      toto,
    });
    this.initialCredit = toto
      ? Infinity
      : positiveInt(options.initialCredit ?? 64, 'initialCredit');
    this.logger = options.logger ?? silentLogger;
    this.metrics = options.metrics && options.metrics !== noopMetrics ? options.metrics : undefined;
    this.defaultMeta = options.meta;
    this.methodOptions = new Map(Object.entries(options.methods ?? {}));
    const b = options.balancer ?? 'least-outstanding';
    this.balancer =
      b === 'least-outstanding'
        ? leastOutstanding<EndpointHandle>({ clock: this.clock, capacityOf: e => e.capacity })
        : b === 'round-robin'
          ? roundRobin<EndpointHandle>({ clock: this.clock })
          : b;
    if (typeof this.balancer?.pick !== 'function')
      throw new TypeError('balancer must be "least-outstanding", "round-robin" or a Balancer');
    this.endpointsByAddress = new EndpointRegistry(
      this.balancer,
      !toto,
      this.events,
      this.logger,
      this.initialCredit,
    );
    this.policy = new AttemptPolicy({
      retry: options.retry,
      hedge: options.hedge,
      clock: this.clock,
      random: options.random,
      emit: event => {
        if (this.events.active) this.events.emit(event);
      },
    });
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
    return this.queue.size;
  }

  /** Pending calls (in flight + queued + retrying); 0 when idle. */
  get pending(): number {
    return this.calls.size;
  }

  /** Addresses currently connected or connecting (not removed). */
  get addresses(): string[] {
    return [...this.endpointsByAddress.all()]
      .filter(e => e.state !== 'removing' && e.state !== 'closed')
      .map(e => e.address);
  }

  /** Per-endpoint stats. */
  endpoints(): EndpointStats[] {
    return [...this.endpointsByAddress.all()].map(e => e.stats());
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
    const existing = this.endpointsByAddress.get(addr);
    if (existing && existing.state !== 'removing' && existing.state !== 'closed') return;
    const endpoint = new EndpointHandle(addr, this.initialCredit, this.clock);
    // The zmq and http transports refuse a malformed address here (INVALID_ARGUMENT), before the
    // endpoint is registered: a call never waits out its deadline on an address that cannot work.
    endpoint.channel = this.transport.open(addr, this.eventsFor(endpoint), {
      maxBodyBytes: this.maxBodyBytes,
    });
    this.endpointsByAddress.add(endpoint);
  }

  /**
   * Stops sending to `address`, lets its calls in flight finish for up to `drainMs` (default
   * 5 000), fails the rest with UNAVAILABLE (retried elsewhere when idempotent), then disconnects.
   * Unknown addresses are ignored (toto's HTTP variant raised `KeyError`).
   */
  async removeConnection(address: string, options: DrainOptions = {}): Promise<void> {
    const endpoint = this.endpointsByAddress.get(address.trim());
    if (!endpoint || endpoint.state === 'removing' || endpoint.state === 'closed') return;
    this.endpointsByAddress.setState(endpoint, 'removing');
    this.failStranded();
    await this.drainEndpoint(
      endpoint,
      options.drainMs ?? 5_000,
      () =>
        new WorkerRpcError('UNAVAILABLE', `endpoint ${endpoint.address} was removed`, {
          endpoint: endpoint.address,
        }),
    );
    endpoint.state = 'closed';
    this.endpointsByAddress.delete(endpoint);
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
  invoke(method: string, params?: unknown, options: CallOptions = NO_OPTIONS): Promise<unknown> {
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
    const methodOptions =
      this.methodOptions.size === 0 ? undefined : this.methodOptions.get(method);
    let timeoutMs: number = this.timeoutMs;
    try {
      // the connection's own timeout was validated when it was created
      const given = options.timeoutMs ?? methodOptions?.timeoutMs;
      if (given !== undefined) timeoutMs = validateTimeout(given, 'timeoutMs');
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
    if (typeof key !== 'string' || (key !== '' && Buffer.byteLength(key) > 255))
      return Promise.reject(
        new WorkerRpcError(
          'INVALID_ARGUMENT',
          'idempotencyKey must be a string of at most 255 bytes',
          { method },
        ),
      );
    const idempotent =
      options.idempotent ?? (key !== '' || (methodOptions?.idempotent ?? this.policy.allCalls));
    const meta = options.meta
      ? this.defaultMeta
        ? { ...this.defaultMeta, ...options.meta }
        : options.meta
      : this.defaultMeta;

    let body: Uint8Array;
    try {
      body = this.dialect.encodeParams(this.codec, method, params);
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
        ? this.policy.maxAttempts
        : Math.min(MAX_ATTEMPTS, Math.max(1, Math.floor(options.maxAttempts)));
    // The call is its own plan: made before its body is final (compression may be asynchronous).
    const call = new OutgoingCall(
      this.clock,
      this.ids.nextSeq(),
      this.ids,
      method,
      idempotent,
      key,
      meta,
      options.ack === 'delivery',
      this.codec.name,
      this.contentType,
      this.compressor ? this.compressor.name : '',
      false,
      body,
      deadline,
      now,
      idempotent ? maxAttempts : 1,
      signals,
      timeoutMs,
    );
    call.waitForReady = options.waitForReady ?? this.waitForReady;
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
          bytes => this.start(call.compressedAs(bytes)),
          (error: unknown) =>
            Promise.reject(
              new WorkerRpcError('INTERNAL', `compression failed: ${(error as Error).message}`, {
                method,
                cause: error,
              }),
            ),
        );
      }
      return this.start(call.compressedAs(compressed));
    }
    return this.start(call);
  }

  private start(call: OutgoingCall): Promise<unknown> {
    const { method, deadline, signals, body } = call;
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
    if (this.endpointsByAddress.size === 0 && !call.waitForReady)
      return Promise.reject(
        new WorkerRpcError('NO_ENDPOINTS', 'no active connections', { method }),
      );
    const seq = call.seq;
    const promise = new Promise<unknown>((resolve, reject) => {
      call.resolve = resolve;
      call.reject = reject;
    });
    if (callTracer.enabled)
      call.span = callTracer.start(method, {
        kind: 'client',
        attributes: { 'rpc.system': rpcSystem(this.dialect.toto), 'rpc.method': method },
      });
    this.calls.set(seq, call);
    if (deadline !== Infinity) {
      call.expire = this.expireCall;
      this.deadlines.insert(call);
    }
    if (signals.length > 0) {
      call.onAbort = () => {
        const reason = signals.find(s => s.aborted);
        this.cancel(call, this.cancelledError(method, reason));
      };
      for (const s of signals) s.addEventListener('abort', call.onAbort, { once: true });
    }
    if (call.idempotent && this.policy.applies(call.maxAttempts)) {
      this.runAttempts(call);
    } else {
      if (call.idempotent) this.policy.budget?.deposit();
      this.dispatch(call, this.directSink, undefined, call.startedAt);
    }
    return promise;
  }

  /**
   * The retry/hedge path: the {@link AttemptPolicy} drives the attempts of `call` as promises.
   * A reply settles the call at once, whichever attempt it answers (the first reply wins, even
   * one to an attempt that timed out); the policy is then aborted.
   */
  private runAttempts(call: OutgoingCall): void {
    const controller = (call.abortController = new AbortController());
    this.policy
      .run(call.maxAttempts, call.deadline, controller.signal, context =>
        this.attempt(call, context),
      )
      .then(
        value => this.finish(call, undefined, value),
        (error: WorkerRpcError) => this.finish(call, error, undefined),
      );
  }

  /** One attempt of `call` under its policy: settles when it failed (or lost a hedge). */
  private attempt(call: OutgoingCall, context: PolicyContext): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      if (call.done) return reject(new WorkerRpcError('CANCELLED', 'call already settled'));
      const sink: AttemptSink = {
        ok: (_call, value) => {
          this.finish(call, undefined, value);
          resolve(value);
        },
        fail: (_call, error) => reject(error),
      };
      const before = call.attempts.length;
      this.dispatch(call, sink, context.attempt);
      const attempt =
        call.attempts.length > before ? call.attempts[call.attempts.length - 1] : undefined;
      context.signal.addEventListener(
        'abort',
        () => {
          if (attempt && !attempt.ended) {
            this.endAttempt(attempt, false, 'cancelled');
            if (!call.done) attempt.endpoint.channel.cancel(call.asAttempt(attempt.n));
          }
          reject(new WorkerRpcError('CANCELLED', 'hedged attempt lost'));
        },
        { once: true },
      );
    });
  }

  /** Picks an endpoint and sends the next attempt, or queues the call. */
  private dispatch(
    call: OutgoingCall,
    sink: AttemptSink,
    attemptNumber?: number,
    now?: number,
  ): void {
    if (call.done) return;
    if (call.waiting) {
      // a hedge while the call still waits for an endpoint: nothing to hedge to
      sink.fail(
        call,
        new WorkerRpcError('UNAVAILABLE', 'no endpoint free for a hedge', { method: call.method }),
      );
      return;
    }
    if (attemptNumber !== undefined) call.attempt = attemptNumber;
    const endpoint = this.sent < this.maxInFlight ? this.endpointsByAddress.pick(call) : undefined;
    if (endpoint !== undefined) return this.send(call, endpoint, sink, now);
    if (
      this.endpointsByAddress.upCount === 0 &&
      !this.endpointsByAddress.hasConnecting() &&
      !call.waitForReady
    ) {
      const none = this.endpointsByAddress.size === 0;
      sink.fail(
        call,
        new WorkerRpcError(
          none ? 'NO_ENDPOINTS' : 'UNAVAILABLE',
          none ? 'no active connections' : 'no endpoint is up',
          { method: call.method },
        ),
      );
      return;
    }
    if (this.queue.size >= this.maxQueued) {
      sink.fail(
        call,
        new WorkerRpcError('OVERLOADED', `local queue full (${this.maxQueued})`, {
          method: call.method,
        }),
      );
      return;
    }
    this.queue.add(call, sink);
  }

  /** Sends an attempt now; `now` is the clock's time when the caller just read it. */
  private send(
    call: OutgoingCall,
    endpoint: EndpointHandle,
    sink: AttemptSink,
    now: number = this.clock.now(),
  ): void {
    const attempt = new Attempt(call, endpoint, call.attempt, now, sink);
    if (call.attempts.length === 0) call.attempts = [attempt];
    else call.attempts.push(attempt);
    if (endpoint.credit !== Infinity) endpoint.credit--;
    this.sent++;
    this.balancer.start(endpoint);
    const attemptTimeoutMs = this.policy.attemptTimeoutMs;
    if (attemptTimeoutMs !== Infinity && call.maxAttempts > 1) {
      attempt.timer = this.clock.setTimeout(() => {
        attempt.timer = undefined;
        if (attempt.ended || call.done) return;
        const timeout = new WorkerRpcError(
          'TIMEOUT',
          `attempt ${attempt.n} of ${call.method} timed out after ${attemptTimeoutMs} ms`,
          {
            scope: 'attempt',
            method: call.method,
            endpoint: endpoint.address,
            attempt: attempt.n,
          },
        );
        this.endAttempt(attempt, false, timeout);
        attempt.sink.fail(call, timeout);
      }, attemptTimeoutMs);
    }
    let request: OutgoingRequest = call;
    if (call.span !== undefined) request = this.traceAttempt(call, attempt);
    let error: WorkerRpcError | undefined;
    call.sendingAt = now;
    try {
      error = endpoint.channel.send(request);
    } finally {
      call.sendingAt = undefined;
    }
    if (error) this.attemptFailed(attempt, error);
  }

  /**
   * Starts the `attempt` span (a child of the call's span) and returns the request to send: the
   * call with its `traceparent`/`tracestate` added to the metadata (wrpc/1's header meta, HTTP's
   * `x-rpc-meta`; toto's ZeroMQ frames have no metadata).
   */
  private traceAttempt(call: OutgoingCall, attempt: Attempt): OutgoingRequest {
    const span = (attempt.span = callTracer.start('attempt', {
      kind: 'client',
      parent: call.span,
      attributes: {
        'rpc.system': rpcSystem(this.dialect.toto),
        'rpc.method': call.method,
        ...endpointAttributes(attempt.endpoint),
        'x.attempt': attempt.n,
      },
    }));
    if (span === undefined) return call;
    const meta: Record<string, string> = { ...call.meta };
    span.inject(meta);
    if (meta.traceparent === undefined) return call;
    return Object.create(call, { meta: { value: meta } }) as OutgoingRequest;
  }

  /** Sends queued calls while endpoints have room. */
  private pump(): void {
    if (this.pumping || this.queue.size === 0) return;
    this.pumping = true;
    try {
      while (this.sent < this.maxInFlight) {
        const call = this.queue.peek();
        if (call === undefined) break;
        const endpoint = this.endpointsByAddress.pick(call);
        if (endpoint === undefined) break;
        const sink = this.queue.remove(call)!;
        this.send(call, endpoint, sink);
      }
    } finally {
      this.pumping = false;
    }
  }

  /**
   * Stops counting an attempt in flight; its span ends with `outcome` (the error it failed with,
   * or `cancelled` for a hedge that lost or an attempt the call no longer waits for).
   */
  private endAttempt(
    attempt: Attempt,
    ok: boolean,
    outcome: WorkerRpcError | 'cancelled' | undefined = ok ? undefined : 'cancelled',
  ): void {
    if (attempt.ended) return;
    attempt.ended = true;
    if (attempt.span !== undefined) {
      if (outcome === 'cancelled') {
        attempt.span.setAttributes({ 'x.outcome': 'cancelled' });
        attempt.span.end();
      } else {
        attempt.span.setAttributes({ 'x.outcome': outcome === undefined ? 'ok' : outcome.code });
        attempt.span.end(outcome);
      }
    }
    if (attempt.timer) {
      this.clock.clearTimeout(attempt.timer);
      attempt.timer = undefined;
    }
    const endpoint = attempt.endpoint;
    this.sent--;
    const now = this.clock.now();
    const durationMs = Math.max(0, now - attempt.startedAt);
    this.balancer.end(endpoint, { ok, durationMs });
    if (ok) endpoint.latency.record(durationMs, now);
    endpoint.wakeDrains();
  }

  private attemptFailed(attempt: Attempt, error: WorkerRpcError): void {
    if (attempt.ended && attempt.call.done) return;
    this.endAttempt(attempt, false, error);
    attempt.sink.fail(attempt.call, error);
    this.pump();
  }

  private cancel(call: OutgoingCall, error: WorkerRpcError): void {
    if (call.done) return;
    for (const attempt of call.attempts) {
      if (!attempt.ended) attempt.endpoint.channel.cancel(call.asAttempt(attempt.n));
    }
    this.finish(call, error, undefined);
  }

  /**
   * Settles a call once; releases its timers, listeners, queue slot and attempts. On success,
   * attempts still running elsewhere (hedges, a retry after an attempt timeout) are cancelled.
   */
  private finish(call: OutgoingCall, error: WorkerRpcError | undefined, value: unknown): void {
    if (call.done) return;
    call.done = true;
    this.calls.delete(call.seq);
    if (call.queued) this.deadlines.remove(call);
    if (call.onAbort) {
      for (const s of call.signals) s.removeEventListener('abort', call.onAbort);
      call.onAbort = undefined;
    }
    this.queue.remove(call);
    for (const attempt of call.attempts) {
      if (attempt.ended) continue;
      if (error === undefined && call.attempts.length > 1)
        attempt.endpoint.channel.cancel(call.asAttempt(attempt.n));
      this.endAttempt(attempt, error === undefined, error ?? 'cancelled');
    }
    if (call.abortController) call.abortController.abort();
    if (call.span !== undefined) {
      call.span.setAttributes({
        'x.outcome': error === undefined ? 'ok' : error.code,
        'x.attempts': call.attempts.length,
      });
      call.span.end(error);
    }
    if (this.metrics) {
      const outcome = error ? error.code : 'OK';
      this.metrics.increment('worker_rpc.client.calls', 1, { outcome });
      this.metrics.histogram('worker_rpc.client.duration', this.clock.now() - call.startedAt, {
        outcome,
      });
    }
    if (error === undefined) {
      call.resolve(value);
    } else {
      const legacy = this.dialect.legacyValue(error);
      if (legacy !== undefined) call.resolve(legacy);
      else call.reject(error);
    }
    if (this.onIdle !== undefined && this.calls.size === 0) this.onIdle();
    this.pump();
  }

  private eventsFor(endpoint: EndpointHandle): ChannelEvents {
    return {
      reply: (_channel, id, frame) => this.onReply(endpoint, id, frame),
      fail: (_channel, id, error) => {
        const call = this.calls.get(this.ids.seqOf(id));
        if (!call) return;
        const attempt = call.attemptOn(endpoint);
        if (attempt && !attempt.ended)
          this.attemptFailed(attempt, withEndpoint(error, endpoint, call.method, attempt.n));
      },
      state: (_channel, state, error) => this.onState(endpoint, state, error),
      credit: (_channel, credit) => this.onCredit(endpoint, credit),
    };
  }

  private onCredit(endpoint: EndpointHandle, credit: number): void {
    if (credit < 0 || this.dialect.toto) return;
    endpoint.credit = credit;
    if (credit > endpoint.capacity) endpoint.capacity = credit;
    this.pump();
  }

  /** A channel's state changed: the registry's state machine decides, the calls follow. */
  private onState(endpoint: EndpointHandle, state: ChannelState, error?: WorkerRpcError): void {
    if (error?.code === 'ZMQ_MISSING') {
      this.fatal = error;
      for (const call of [...this.calls.values()]) this.finish(call, error, undefined);
      return;
    }
    const change = this.endpointsByAddress.onChannelState(endpoint, state, error);
    if (change === 'up') this.pump();
    else if (change === 'lost')
      this.failEndpoint(
        endpoint,
        error ??
          new WorkerRpcError('UNAVAILABLE', `lost connection to ${endpoint.address}`, {
            endpoint: endpoint.address,
          }),
      );
    this.failStranded();
  }

  /** Fails every live attempt on `endpoint` (connection lost or drain deadline). */
  private failEndpoint(endpoint: EndpointHandle, error: WorkerRpcError): void {
    if (endpoint.load.inFlight === 0) return;
    for (const call of [...this.calls.values()]) {
      for (const attempt of call.attempts) {
        if (attempt.endpoint === endpoint && !attempt.ended)
          this.attemptFailed(attempt, withEndpoint(error, endpoint, call.method, attempt.n));
      }
    }
  }

  /** Fails the queued calls when no endpoint is up and none may come up. */
  private failStranded(): void {
    const registry = this.endpointsByAddress;
    if (this.queue.size === 0 || registry.upCount > 0 || registry.hasConnecting()) return;
    for (const [call, sink] of this.queue.removeAll()) {
      if (call.waitForReady) {
        this.queue.add(call, sink); // waits for an endpoint until its deadline
        continue;
      }
      sink.fail(
        call,
        new WorkerRpcError('UNAVAILABLE', 'no endpoint is up', { method: call.method }),
      );
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
    const attempt = call.attemptOn(endpoint);
    if (frame.kind === Kind.ACK) {
      if (call.ack || this.dialect.toto) this.settle(call, attempt, undefined);
      return;
    }
    if (frame.kind !== Kind.RES && frame.kind !== Kind.ERR) return;
    let decoded: unknown;
    try {
      decoded = this.decoder.decode(frame);
    } catch (error) {
      // an error status whose body is not ours (a proxy's HTML page, ...): the status says enough
      const e =
        frame.kind === Kind.ERR && frame.fallbackError
          ? frame.fallbackError
          : (error as WorkerRpcError);
      this.failed(
        call,
        attempt,
        withEndpoint(e, endpoint, call.method, attempt?.n ?? call.attempt),
      );
      return;
    }
    if (decoded instanceof Promise) {
      decoded.then(
        value => this.deliver(call, attempt, endpoint, frame, value),
        (error: unknown) => {
          if (call.done) return;
          const e = error as WorkerRpcError;
          this.failed(
            call,
            attempt,
            withEndpoint(e, endpoint, call.method, attempt?.n ?? call.attempt),
          );
        },
      );
      return;
    }
    this.deliver(call, attempt, endpoint, frame, decoded);
  }

  private deliver(
    call: OutgoingCall,
    attempt: Attempt | undefined,
    endpoint: EndpointHandle,
    frame: ReplyFrame,
    value: unknown,
  ): void {
    if (call.done) return;
    if (frame.kind === Kind.RES && !this.dialect.toto) return this.settle(call, attempt, value);
    const n = attempt?.n ?? call.attempt;
    const outcome = this.dialect.outcome(
      frame,
      value,
      { method: call.method, endpoint: endpoint.address, attempt: n },
      fallback => withEndpoint(fallback, endpoint, call.method, n),
    );
    if (outcome.ok) this.settle(call, attempt, outcome.value);
    else this.failed(call, attempt, outcome.error);
  }

  /** A reply won: settle the call through its attempt (even a timed-out one: first reply wins). */
  private settle(call: OutgoingCall, attempt: Attempt | undefined, value: unknown): void {
    if (attempt === undefined) return this.finish(call, undefined, value);
    this.endAttempt(attempt, true);
    attempt.sink.ok(call, value);
  }

  /** An error reply: fails its attempt (ignored when that attempt already ended), or the call. */
  private failed(call: OutgoingCall, attempt: Attempt | undefined, error: WorkerRpcError): void {
    if (attempt === undefined) this.finish(call, error, undefined);
    else if (!attempt.ended) this.attemptFailed(attempt, error);
  }

  private async drainEndpoint(
    endpoint: EndpointHandle,
    drainMs: number,
    error: () => WorkerRpcError,
  ): Promise<void> {
    if (endpoint.load.inFlight > 0 && drainMs > 0) {
      await new Promise<void>(resolve => {
        const timer = this.clock.setTimeout(resolve, drainMs);
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
    if (drainMs > 0 && this.calls.size > 0) {
      // settles when the last pending call settles, or when drainMs passed
      await new Promise<void>(resolve => {
        const timer = this.clock.setTimeout(() => {
          this.onIdle = undefined;
          resolve();
        }, drainMs);
        this.onIdle = () => {
          this.onIdle = undefined;
          this.clock.clearTimeout(timer);
          resolve();
        };
      });
    }
    for (const call of [...this.calls.values()])
      this.finish(call, new WorkerRpcError('CLOSED', 'connection closed'), undefined);
    const endpoints = this.endpointsByAddress.clear();
    await Promise.all(
      endpoints.map(async e => {
        e.state = 'closed';
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
   * `WorkerConnection.instance()`), created on first use; see {@link optionsFromEnv}:
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
