import { durationOption } from './internal/durationOption.js';
import { timingSafeEqual } from 'node:crypto';
import {
  Bulkhead,
  noopMetrics,
  silentLogger,
  systemClock,
  type Clock,
  type Logger,
  type Metrics,
  type TimerHandle,
} from '@x/resilience';
import type { Handlers, UntypedApi } from './api.js';
import { isAsynchronous } from './asynchronous.js';
import type { Codec } from './codec.js';
import type { CompressionOption, Compressor } from './compression.js';
import { WorkerRpcError, isWorkerRpcError, toWireError } from './errors.js';
import { DedupeWindow } from './internal/dedupeWindow.js';
import { ExecutionList } from './internal/executionList.js';
import { abortedBy, Execution, type ExecutionOutcome } from './internal/execution.js';
import { HandlerContextImpl, type ExecutionControl } from './internal/handlerContext.js';
import { WorkerCodecs, type DecodedRequest } from './internal/workerCodecs.js';
import { idKey } from './protocol.js';
import { missingSegment, resolveHandler, type ResolvedHandler } from './resolveHandler.js';
import { handleTracer, rpcSystem } from './rpcTracers.js';
import type { WorkerState, WorkerStatus } from './workerStatus.js';
import type { IncomingRequest, WorkerSink, WorkerTransport } from './workerTransport.js';

/** What a handler receives as its second argument. */
export interface HandlerContext {
  /** Request id as 32 hex characters (the same across retries and hedges of one call). */
  readonly requestId: string;
  readonly method: string;
  /** 0 for the first attempt. */
  readonly attempt: number;
  /** Absolute deadline on the worker's clock (`clock.now()` ms), `Infinity` when the caller set none. */
  readonly deadline: number;
  /** Milliseconds left before the deadline. */
  remainingMs(): number;
  /** Aborted on CANCEL, when the deadline passes, or on a forced drain. Created on first read. */
  readonly signal: AbortSignal;
  /** Caller metadata (`x-rpc-meta` / header meta). */
  readonly meta: Readonly<Record<string, string>>;
  /** Sends the early acknowledgement now (toto's `@asynchronous`); the result still follows. */
  ack(): void;
  /** The worker running the handler (toto passed it as the handler's first argument). */
  readonly worker: Worker<any>;
}

/** Dedupe window settings. */
export interface DedupeOptions {
  /** How long a finished result is replayed to duplicates (ms). Default 60 000. */
  readonly ttlMs?: number;
  /** Most remembered requests. Default 10 000. */
  readonly max?: number;
}

/** Options of {@link createWorker}. */
export interface WorkerOptions<Api = UntypedApi> {
  /** One or more transports serving the same handlers (e.g. ZeroMQ and HTTP). */
  readonly transport: WorkerTransport | readonly WorkerTransport[];
  /** Nested handler object addressed by dotted names (toto's `methods.<module>.<fn>`). */
  readonly handlers: NoInfer<Handlers<Api, HandlerContext>>;
  /** Handlers running at once. Default 64. */
  readonly concurrency?: number;
  /** Requests waiting for a slot; beyond it requests fail with OVERLOADED (not started). Default 256. */
  readonly queue?: number;
  /** Dedupe of idempotent requests by id (or idempotency key); `false` to disable. Default `{ ttlMs: 60 000, max: 10 000 }`. */
  readonly dedupe?: DedupeOptions | false;
  /** Codec for toto frames (toto has no codec field). Default JSON. */
  readonly codec?: Codec | 'json' | 'msgpack';
  /** Extra codecs accepted from clients. */
  readonly codecs?: readonly Codec[];
  /** Reply compression threshold, and the compressor used for toto frames. Default: replies above 1 024 bytes use the client's compression. */
  readonly compression?: CompressionOption;
  /** Extra compressors accepted from clients. */
  readonly compressors?: readonly Compressor[];
  /** Largest request body in bytes (also after decompression). Default 16 MiB. */
  readonly maxBodyBytes?: number;
  /** `$status` and `$drain` admin methods (toto's control commands): `true` (default), `false`, or `{ token }` required in `meta.authorization`. */
  readonly admin?: boolean | { readonly token: string };
  /** Include stack traces in INTERNAL error messages (toto's `debug`). Default false. */
  readonly debug?: boolean;
  /** How long `drain()` waits for running handlers before aborting their signals (ms). Default 10 000. */
  readonly drainTimeoutMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly metrics?: Metrics;
}

/** The serving side: dispatches requests from its transports to handlers. Create it with {@link createWorker}. */
export class Worker<Api = UntypedApi> {
  readonly transports: readonly WorkerTransport[];
  readonly clock: Clock;
  readonly concurrency: number;
  readonly queueLimit: number;
  private readonly handlers: unknown;
  private readonly handlerCache = new Map<string, ResolvedHandler>();
  private readonly dedupe: DedupeWindow<Execution | ExecutionOutcome> | undefined;
  private readonly wire: WorkerCodecs;
  readonly maxBodyBytes: number;
  private readonly admin: boolean | { readonly token: string };
  private readonly debug: boolean;
  private readonly drainTimeoutMs: number;
  private readonly logger: Logger;
  private readonly metrics: Metrics | undefined;
  /**
   * Executions being handled or queued, in a linked list rather than a map by id string: no key
   * string, hash or table resize per request; a CANCEL (rare) scans it for the request id.
   */
  private readonly active = new ExecutionList<Execution>();
  /** Handler slots (`concurrency`) and the wait queue (`queue`). */
  private readonly slots: Bulkhead;
  private stateValue: WorkerState = 'idle';
  private completed = 0;
  private failed = 0;
  private rejectedCount = 0;
  private deduplicated = 0;
  private badFrames = 0;
  private startedAt = 0;
  private idleWaiters: (() => void)[] = [];
  private draining: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private readonly sink: WorkerSink;
  private readonly control: ExecutionControl = {
    signalOf: execution => this.signalOf(execution),
    ackAll: execution => this.ackAll(execution),
  };

  constructor(options: WorkerOptions<Api>) {
    const transports = Array.isArray(options.transport) ? options.transport : [options.transport];
    if (
      transports.length === 0 ||
      transports.some(t => typeof (t as WorkerTransport)?.start !== 'function')
    ) {
      throw new TypeError('transport must be a WorkerTransport or a non-empty list of them');
    }
    this.transports = transports as WorkerTransport[];
    if (typeof options.handlers !== 'object' || options.handlers === null)
      throw new TypeError('handlers must be an object');
    this.handlers = options.handlers;
    this.clock = options.clock ?? systemClock;
    this.concurrency = int(options.concurrency ?? 64, 1, 'concurrency');
    this.queueLimit = int(options.queue ?? 256, 0, 'queue');
    const dedupe = options.dedupe ?? {};
    this.dedupe =
      dedupe === false
        ? undefined
        : new DedupeWindow(
            durationOption(dedupe.ttlMs ?? 60_000, 'dedupe.ttlMs', { allowInfinity: false }),
            int(dedupe.max ?? 10_000, 1, 'dedupe.max'),
            this.clock,
          );
    this.slots = new Bulkhead({
      limit: this.concurrency,
      queue: this.queueLimit,
      clock: this.clock,
    });
    this.maxBodyBytes = int(options.maxBodyBytes ?? 16 * 1024 * 1024, 1, 'maxBodyBytes');
    this.admin = options.admin ?? true;
    this.debug = options.debug ?? false;
    this.drainTimeoutMs = durationOption(options.drainTimeoutMs ?? 10_000, 'drainTimeoutMs');
    this.logger = options.logger ?? silentLogger;
    this.wire = new WorkerCodecs({
      codec: options.codec,
      codecs: options.codecs,
      compression: options.compression,
      compressors: options.compressors,
      maxBodyBytes: this.maxBodyBytes,
      debug: this.debug,
      logger: this.logger,
    });
    this.metrics = options.metrics && options.metrics !== noopMetrics ? options.metrics : undefined;
    this.sink = {
      request: request => this.onRequest(request),
      cancel: id => this.onCancel(id),
      credit: () => this.credit,
      rejected: error => {
        this.badFrames++;
        this.logger.debug({ err: error }, 'worker rejected a frame');
      },
      maxBodyBytes: this.maxBodyBytes,
    };
  }

  /** Current state. */
  get state(): WorkerState {
    return this.stateValue;
  }

  /**
   * Credit advertised to clients and brokers: idle handler slots (`concurrency - active`), 0 while
   * draining. Brokers send only to workers with credit, so a slow call never has work queued
   * behind it; the worker's own `queue` only absorbs clients that overcommit.
   */
  get credit(): number {
    if (this.stateValue !== 'running') return 0;
    return Math.max(0, this.concurrency - this.slots.running);
  }

  /** Addresses the transports are bound or connected to. */
  get addresses(): string[] {
    return this.transports.flatMap(t => t.addresses);
  }

  /** Binds/connects every transport and starts serving. */
  async start(): Promise<this> {
    if (this.stateValue !== 'idle')
      throw new WorkerRpcError('CLOSED', `worker is ${this.stateValue}`);
    this.stateValue = 'running';
    this.startedAt = this.clock.now();
    try {
      for (const transport of this.transports) await transport.start(this.sink);
    } catch (error) {
      await this.close();
      throw error;
    }
    return this;
  }

  /** Counters and state (also served as the `$status` admin method, toto's `status` command). */
  status(): WorkerStatus {
    return {
      state: this.stateValue,
      active: this.slots.running,
      queued: this.slots.queued,
      concurrency: this.concurrency,
      queue: this.queueLimit,
      credit: this.credit,
      completed: this.completed,
      failed: this.failed,
      rejected: this.rejectedCount,
      deduplicated: this.deduplicated,
      badFrames: this.badFrames,
      dedupeEntries: this.dedupe?.size ?? 0,
      uptimeMs: this.startedAt ? this.clock.now() - this.startedAt : 0,
      addresses: this.addresses,
    };
  }

  /** Executions being handled or queued (a duplicate joins its original; 0 when idle). */
  get pending(): number {
    return this.active.size;
  }

  /**
   * Graceful drain (toto's `shutdown` command): tells clients and brokers (DRAIN), refuses new
   * requests with UNAVAILABLE (retryable, never started), lets running and queued work finish for
   * up to `timeoutMs` (default `drainTimeoutMs`), then aborts the signals of what is left.
   */
  drain(options: { timeoutMs?: number } = {}): Promise<void> {
    this.draining ??= this.doDrain(options.timeoutMs ?? this.drainTimeoutMs);
    return this.draining;
  }

  private async doDrain(timeoutMs: number): Promise<void> {
    if (this.stateValue === 'running') this.stateValue = 'draining';
    for (const transport of this.transports) {
      try {
        transport.drain();
      } catch (error) {
        this.logger.warn({ err: error }, 'transport drain failed');
      }
    }
    if (this.active.size > 0) {
      let timer: TimerHandle | undefined;
      await new Promise<void>(resolve => {
        this.idleWaiters.push(resolve);
        timer = this.clock.setTimeout(resolve, Math.max(0, timeoutMs));
      });
      if (timer) this.clock.clearTimeout(timer);
    }
    if (this.active.size > 0) {
      const reason = new WorkerRpcError('UNAVAILABLE', 'worker drain timed out', {
        retryable: true,
      });
      for (const execution of this.active.toArray()) {
        if (!execution.started)
          this.complete(execution, {
            ok: false,
            value: undefined,
            error: toWireError(reason),
            cause: reason,
          });
        else this.abortExecution(execution, reason);
      }
    }
  }

  /** Drains (for up to `drainMs`, default 0) and closes every transport. Idempotent. */
  close(options: { drainMs?: number } = {}): Promise<void> {
    this.closing ??= (async () => {
      if (this.stateValue === 'running' || this.stateValue === 'draining')
        await this.drain({ timeoutMs: options.drainMs ?? 0 });
      this.stateValue = 'closed';
      await Promise.all(
        this.transports.map(t =>
          t.close().catch(error => this.logger.warn({ err: error }, 'transport close failed')),
        ),
      );
      for (const execution of this.active.toArray())
        this.abortExecution(execution, new WorkerRpcError('CLOSED', 'worker closed'));
      this.active.clear();
      this.dedupe?.clear();
      this.handlerCache.clear();
    })();
    return this.closing;
  }

  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---------------------------------------------------------------------------------------------

  private onRequest(request: IncomingRequest): void {
    try {
      this.accept(request);
    } catch (error) {
      // never let a bug in one request take the worker down
      this.logger.error({ err: error }, 'worker failed to accept a request');
      this.wire.replyError(request, error, this.credit);
    }
  }

  private accept(request: IncomingRequest): void {
    if (this.stateValue !== 'running') {
      this.rejectedCount++;
      this.refuse(
        request,
        new WorkerRpcError('UNAVAILABLE', `worker is ${this.stateValue}`, { retryable: true }),
      );
      return;
    }
    if (request.budgetMs === 0) {
      this.rejectedCount++;
      this.refuse(
        request,
        new WorkerRpcError('DEADLINE_EXCEEDED', 'budget already spent; not started'),
      );
      return;
    }
    if (request.body !== undefined && request.body.byteLength > this.maxBodyBytes) {
      this.badFrames++;
      this.refuse(
        request,
        new WorkerRpcError(
          'FRAME_TOO_LARGE',
          `body of ${request.body.byteLength} bytes exceeds ${this.maxBodyBytes}`,
        ),
      );
      return;
    }
    const decoded = this.wire.decodeParams(request);
    if (decoded instanceof Promise) {
      decoded.then(
        value => this.admit(request, value),
        (error: unknown) => {
          this.badFrames++;
          this.refuse(request, error);
        },
      );
      return;
    }
    if (decoded instanceof WorkerRpcError) {
      this.badFrames++;
      this.refuse(request, decoded);
      return;
    }
    this.admit(request, decoded);
  }

  private admit(request: IncomingRequest, decoded: DecodedRequest): void {
    if (this.stateValue !== 'running') {
      this.refuse(
        request,
        new WorkerRpcError('UNAVAILABLE', `worker is ${this.stateValue}`, { retryable: true }),
      );
      return;
    }
    const method = decoded.method;
    let handler: ResolvedHandler | undefined;
    if (method.startsWith('$')) {
      handler = this.adminHandler(method, request);
    } else {
      handler = this.handlerCache.get(method);
      if (handler === undefined) {
        handler = resolveHandler(this.handlers, method);
        if (handler !== undefined && this.handlerCache.size < 4096)
          this.handlerCache.set(method, handler);
      }
    }
    if (handler === undefined) {
      this.rejectedCount++;
      this.refuse(
        request,
        request.toto
          ? // toto's TotoWorker resolves the method with getattr() over the dotted name, so a
            // missing one is an AttributeError reported as ERROR_SERVER (1000) with its text
            // (toto/worker.py TotoWorker.start, tests/test_http_worker.py test_bad_method)
            new WorkerRpcError(
              'NOT_FOUND',
              `'module' object has no attribute '${missingSegment(this.handlers, method).slice(0, 200)}'`,
              { appCode: 1000 },
            )
          : new WorkerRpcError('NOT_FOUND', `no method ${JSON.stringify(method.slice(0, 200))}`),
      );
      return;
    }
    let dedupeKey: string | undefined;
    if (this.dedupe && (request.idempotent || request.key !== '')) {
      dedupeKey = request.key !== '' ? `k:${method}:${request.key}` : `i:${idKey(request.id)}`;
      const seen = this.dedupe.get(dedupeKey);
      if (seen !== undefined) {
        this.deduplicated++;
        if (seen instanceof Execution) {
          if (!seen.finished) {
            seen.requests.push(request);
            seen.span?.event('duplicate', { 'x.attempt': request.attempt });
            if (request.ack && (seen.acked || seen.started)) this.ack(request);
            return;
          }
        } else {
          if (request.ack) this.ack(request);
          this.wire.reply(request, seen, this.credit);
          return;
        }
      }
    }
    const now = this.clock.now();
    const deadline = request.budgetMs < 0 ? Infinity : now + request.budgetMs;
    const execution = new Execution(
      request,
      method,
      handler,
      decoded.params,
      deadline,
      dedupeKey,
      now,
    );
    if (handleTracer.enabled)
      execution.span = handleTracer.start(method, {
        kind: 'server',
        parent: request.meta,
        attributes: {
          'rpc.system': rpcSystem(request.toto),
          'rpc.method': method,
          'x.attempt': request.attempt,
        },
      });
    if (this.slots.tryAcquire()) {
      this.register(execution);
      if (request.ack) this.ack(request);
      this.run(execution, now);
    } else if (this.slots.queued < this.queueLimit) {
      this.register(execution);
      if (request.ack) this.ack(request);
      this.enqueue(execution);
    } else {
      this.rejectedCount++;
      this.refuse(
        request,
        new WorkerRpcError(
          'OVERLOADED',
          `worker busy (${this.slots.running} running, ${this.slots.queued} queued)`,
          { retryable: true },
        ),
      );
    }
  }

  /**
   * Waits for a handler slot in the bulkhead. `execution.wait` cancels the wait when it finishes
   * while queued (CANCEL, drain, close); work whose budget is spent by the time it gets a
   * slot is not started.
   */
  private enqueue(execution: Execution): void {
    execution.queued = true;
    const wait = (execution.wait = new AbortController());
    this.slots.acquire(wait.signal)!.then(
      () => {
        execution.queued = false;
        if (execution.finished) {
          this.slots.release();
          return;
        }
        if (execution.deadline <= this.clock.now()) {
          this.slots.release();
          const error = new WorkerRpcError(
            'DEADLINE_EXCEEDED',
            'budget spent while queued; not started',
          );
          this.complete(execution, {
            ok: false,
            value: undefined,
            error: toWireError(error),
            cause: error,
          });
          return;
        }
        this.run(execution);
      },
      () => {
        execution.queued = false; // left the queue: finished while waiting
      },
    );
  }

  private register(execution: Execution): void {
    this.active.add(execution);
    if (execution.dedupeKey !== undefined) this.dedupe!.set(execution.dedupeKey, execution, true);
  }

  private adminHandler(method: string, request: IncomingRequest): ResolvedHandler | undefined {
    if (this.admin === false) return undefined;
    if (typeof this.admin === 'object') {
      const given = Buffer.from(request.meta?.authorization ?? '');
      const expected = Buffer.from(this.admin.token);
      if (given.byteLength !== expected.byteLength || !timingSafeEqual(given, expected))
        return undefined;
    }
    if (method === '$status') return { fn: () => this.status(), self: this };
    if (method === '$drain') {
      return {
        fn: (params: unknown) => {
          const timeoutMs =
            typeof (params as { timeoutMs?: unknown })?.timeoutMs === 'number'
              ? (params as { timeoutMs: number }).timeoutMs
              : undefined;
          // reply first, then drain (the drain waits for this very call to finish)
          setImmediate(() => void this.drain(timeoutMs === undefined ? {} : { timeoutMs }));
          return { state: 'draining' };
        },
        self: this,
      };
    }
    return undefined;
  }

  /** Runs the handler of an execution that holds a slot (`now`: the clock's time, when just read). */
  private run(execution: Execution, now: number = this.clock.now()): void {
    execution.started = true;
    execution.startedAt = now;
    const first = execution.requests[0]!;
    const { fn, self } = execution.handler!;
    if (isAsynchronous(fn)) this.ackAll(execution);
    const ctx: HandlerContext = new HandlerContextImpl(this, this.control, execution, first);
    let result: unknown;
    try {
      const span = execution.span;
      result =
        span === undefined
          ? fn.call(self, execution.params, ctx)
          : span.run(() => fn.call(self, execution.params, ctx));
    } catch (error) {
      const failure = abortedBy(execution, error);
      this.complete(execution, {
        ok: false,
        value: undefined,
        error: toWireError(failure, this.debug),
        cause: failure,
      });
      return;
    }
    if (
      result !== null &&
      typeof result === 'object' &&
      typeof (result as PromiseLike<unknown>).then === 'function'
    ) {
      (result as PromiseLike<unknown>).then(
        value => this.complete(execution, { ok: true, value, error: undefined, cause: undefined }),
        (error: unknown) => {
          const failure = abortedBy(execution, error);
          this.complete(execution, {
            ok: false,
            value: undefined,
            error: toWireError(failure, this.debug),
            cause: failure,
          });
        },
      );
    } else {
      this.complete(execution, { ok: true, value: result, error: undefined, cause: undefined });
    }
  }

  /** The execution's AbortSignal, created on first read, aborted at the deadline. */
  private signalOf(execution: Execution): AbortSignal {
    if (execution.controller) return execution.controller.signal;
    const controller = (execution.controller = new AbortController());
    if (execution.finished) return controller.signal;
    if (execution.deadline !== Infinity) {
      const remaining = execution.deadline - this.clock.now();
      const expire = () => {
        execution.timer = undefined;
        controller.abort(
          new WorkerRpcError('DEADLINE_EXCEEDED', `deadline of ${execution.method} passed`),
        );
      };
      if (remaining <= 0) expire();
      else execution.timer = this.clock.setTimeout(expire, remaining);
    }
    return controller.signal;
  }

  private abortExecution(execution: Execution, reason: WorkerRpcError): void {
    if (execution.finished) return;
    if (execution.queued) execution.wait!.abort(reason);
    if (!execution.controller) execution.controller = new AbortController();
    if (!execution.controller.signal.aborted) execution.controller.abort(reason);
  }

  private ackAll(execution: Execution): void {
    if (execution.acked) return;
    execution.acked = true;
    for (const request of execution.requests) if (!request.ack) this.ack(request);
  }

  private ack(request: IncomingRequest): void {
    this.wire.ack(request, this.credit);
  }

  private complete(execution: Execution, outcome: ExecutionOutcome): void {
    if (execution.finished) return;
    execution.finished = true;
    // the slot goes to the next queued execution (it starts on the next microtask)
    if (execution.started) this.slots.release();
    else if (execution.queued) execution.wait!.abort(); // leaves the bulkhead's queue
    if (execution.timer) {
      this.clock.clearTimeout(execution.timer);
      execution.timer = undefined;
    }
    if (outcome.ok) this.completed++;
    else this.failed++;
    if (this.metrics) {
      const tags = { outcome: outcome.ok ? 'OK' : (outcome.error?.code ?? 'INTERNAL') };
      this.metrics.increment('worker_rpc.worker.requests', 1, tags);
      if (execution.started)
        this.metrics.histogram(
          'worker_rpc.worker.duration',
          this.clock.now() - execution.startedAt,
          tags,
        );
    }
    if (execution.span !== undefined) {
      execution.span.setAttributes({
        'x.outcome': outcome.ok ? 'ok' : (outcome.error?.code ?? 'INTERNAL'),
      });
      execution.span.end(outcome.ok ? undefined : (outcome.cause ?? outcome.error));
    }
    if (!outcome.ok && outcome.error?.code === 'INTERNAL')
      this.logger.warn({ err: outcome.cause, method: execution.method }, 'handler failed');
    this.active.delete(execution);
    if (execution.dedupeKey !== undefined) {
      // Keep successes and definitive failures for replay; forget transient ones so a retry runs again.
      const transient =
        !outcome.ok &&
        (outcome.error?.retryable === true ||
          outcome.error?.code === 'CANCELLED' ||
          outcome.error?.code === 'DEADLINE_EXCEEDED' ||
          outcome.error?.code === 'UNAVAILABLE');
      if (transient) this.dedupe!.delete(execution.dedupeKey);
      else this.dedupe!.set(execution.dedupeKey, outcome);
    }
    const requests = execution.requests;
    execution.requests = NO_REQUESTS;
    for (const request of requests) {
      if (request.toto && execution.acked) continue; // toto's @asynchronous methods answer with the ACK only
      this.wire.reply(request, outcome, this.credit);
    }
    if (this.active.size === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private onCancel(id: Uint8Array): void {
    // the newest unfinished execution answering request `id` (a retry reuses the id)
    let execution: Execution | undefined;
    let index = -1;
    for (const e of this.active) {
      if (e.finished) continue;
      const i = e.requests.findIndex(r => sameId(r.id, id));
      if (i >= 0) {
        execution = e;
        index = i;
      }
    }
    if (execution === undefined) return;
    const error = new WorkerRpcError('CANCELLED', 'cancelled by the caller');
    const [request] = execution.requests.splice(index, 1);
    this.replyError(request!, error);
    if (execution.requests.length === 0) {
      if (!execution.started) {
        this.complete(execution, {
          ok: false,
          value: undefined,
          error: toWireError(error),
          cause: error,
        });
      } else {
        this.abortExecution(execution, error);
      }
    }
  }

  /** Answers a request that is not run (not admitted, bad frame, unknown method); traced as a `server` span. */
  private refuse(request: IncomingRequest, error: unknown): void {
    if (handleTracer.enabled) {
      const span = handleTracer.start(request.method || 'unknown', {
        kind: 'server',
        parent: request.meta,
        attributes: {
          'rpc.system': rpcSystem(request.toto),
          'rpc.method': request.method || undefined,
          'x.attempt': request.attempt,
          'x.outcome': isWorkerRpcError(error) ? error.code : 'INTERNAL',
        },
      });
      span?.end(error);
    }
    this.replyError(request, error);
  }

  private replyError(request: IncomingRequest, error: unknown): void {
    this.wire.replyError(request, error, this.credit);
  }
}

function sameId(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The requests of a finished execution (frozen: nothing joins it any more). */
const NO_REQUESTS = Object.freeze([]) as unknown as IncomingRequest[];

function int(value: number, min: number, name: string): number {
  if (!(Number.isInteger(value) && value >= min))
    throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
  return value;
}

/**
 * Creates a {@link Worker}; call `start()` to bind. Defaults: `concurrency` 64, `queue` 256,
 * dedupe `{ ttlMs: 60 000, max: 10 000 }`, JSON for toto frames, `$status`/`$drain` admin on.
 *
 * ```ts
 * const worker = await createWorker<Api>({
 *   transport: zmqWorkerTransport({ bind: 'tcp://0.0.0.0:55555' }),
 *   handlers: { math: { add: ({ a, b }) => a + b } },
 * }).start();
 * ```
 */
export function createWorker<Api = UntypedApi>(options: WorkerOptions<Api>): Worker<Api> {
  return new Worker<Api>(options);
}
