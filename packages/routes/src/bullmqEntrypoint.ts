import type * as BullMQ from 'bullmq';
import { isXError, redactUrl, timeout } from '@x/resilience';
import { deadLetterRecord, replayMeta, type DeadLetterRecord } from './deadLetter.js';
import type { Entrypoint, EntryRef, RepublishPayload, RouteHandle } from './entrypoint.js';
import { BrokerUnavailableError, RouteConfigError } from './errors.js';
import { loadOptional } from './internal/loadOptional.js';
import { checkInt, checkKeys, checkMs } from './internal/options.js';

import type { Meta, Outcome } from './outcome.js';
import { queueSettlement } from './settlement.js';
import type { Delivery } from './entrypoint.js';

/** Options of {@link bullmqEntrypoint}. Times are ms. */
export interface BullmqEntrypointOptions {
  /** BullMQ queue name. Required. */
  readonly queue: string;
  /**
   * Redis: a URL, or BullMQ connection options (ioredis options or instance). Default
   * `process.env.REDIS_URL`, else `'redis://127.0.0.1:6379'`.
   */
  readonly connection?: string | object;
  /** BullMQ key prefix. Default `'bull'`. */
  readonly prefix?: string;
  /** Jobs processed at once by this process. Default: the route's concurrency. */
  readonly concurrency?: number;
  /** Name of the jobs `publish()` adds. Default `'message'`. */
  readonly jobName?: string;
  /** Queue holding dead letters (never processed; `replay()` moves them back). Default `<queue>-dead`. */
  readonly deadLetterQueue?: string;
  /** Deliveries before a message that keeps failing non-terminally is dead-lettered. Default 5. */
  readonly maxDeliveries?: number;
  /** Delay before a non-terminal failure is delivered again. Default 1000 ms. */
  readonly requeueDelayMs?: number;
  /** Job lock TTL: a job whose worker died is redelivered after it. Default 30 000 ms (BullMQ's). */
  readonly lockDurationMs?: number;
  /** How often this worker looks for stalled jobs. Default 30 000 ms (BullMQ's). */
  readonly stalledIntervalMs?: number;
  /** Times a job may stall (its worker died) before BullMQ fails it. Default 1 (BullMQ's). */
  readonly maxStalledCount?: number;
  /** Completed jobs kept in Redis. Default 1000. */
  readonly keepCompleted?: number;
  /** Failed jobs kept in Redis (each is also in the dead-letter queue). Default 1000. */
  readonly keepFailed?: number;
  /** Entrypoint name. Default `'bullmq <queue>'`. */
  readonly name?: string;
  /**
   * `start()` fails with `BROKER_UNAVAILABLE` (logged) when Redis is not connected within this
   * time, instead of waiting forever. Default 10 000 ms.
   */
  readonly startTimeoutMs?: number;
  /**
   * Deadline of each queue operation (`publish`, `counts`, `deadLetters`, `replay`, the
   * dead-letter add): past it, or at once while the connection is down (the queue's commands are
   * never held offline), it rejects with `BROKER_UNAVAILABLE`. Default 5 000 ms.
   */
  readonly commandTimeoutMs?: number;
  /**
   * BullMQ's `telemetry` option, handed to this entrypoint's queue and worker: give
   * `new BullMQOtel('my-service')` (the maintained `bullmq-otel` package) and, with an
   * OpenTelemetry SDK started, `publish()` makes a producer span and carries its context in the
   * job, and each job is processed in a consumer span of the same trace, the route's span inside
   * it. Default none.
   */
  readonly telemetry?: BullMQ.Telemetry;
}

/** Options of {@link BullmqEntrypoint.publish}. */
export interface BullmqPublishOptions {
  /** Process after this many ms (a BullMQ delayed job). Default 0. */
  readonly delayMs?: number;
  readonly meta?: Meta;
  /** BullMQ job id (deduplicates: adding an existing id is a no-op). Default: BullMQ's. */
  readonly jobId?: string;
  /**
   * The caller's remaining budget in ms: the job carries the absolute deadline (epoch ms, in its
   * data, so it survives retries and restarts). A job that starts after it settles as a terminal
   * `DEADLINE_EXCEEDED` failure (dead-lettered), not run; one that runs is bounded by it.
   */
  readonly timeoutMs?: number;
  /** The absolute deadline (epoch ms, `Date.now()` scale) instead of `timeoutMs`. */
  readonly deadline?: number;
}

/**
 * One job as BullMQ keeps it in Redis, read by {@link BullmqEntrypoint.job}: the same answer from
 * every process sharing the queue (whichever ran it).
 */
export interface BullmqJobInfo<M = unknown> {
  readonly id: string;
  /** BullMQ's state: `waiting`, `delayed` (incl. an asynchronous retry's backoff), `active`, `completed`, `failed`, … */
  readonly state: string;
  readonly message: M;
  readonly meta: Meta;
  /** Asynchronous retries so far (`meta.backoff.retryCount`). */
  readonly retries: number;
  /** Epoch ms: added, first taken by a worker, settled. */
  readonly createdAt: number;
  readonly processedAt: number | undefined;
  readonly finishedAt: number | undefined;
  /** The route's result (`completed`). */
  readonly result: unknown;
  /** BullMQ's failure text (`failed`). */
  readonly failedReason: string | undefined;
  /** The dead-letter record (error code and message, attempts) of a dead-lettered job. */
  readonly deadLetter: DeadLetterRecord | undefined;
}

/** What a job carries: the message, its metadata, and how many counted deliveries it had. */
interface Envelope {
  readonly __xroutes: 1;
  readonly message: unknown;
  /** `'base64'` when the message is bytes (a Buffer would not survive BullMQ's JSON). */
  readonly encoding?: 'base64';
  readonly meta: Meta;
  readonly deliveries: number;
  /** Epoch ms after which the message is not run (absent: none). */
  readonly deadline?: number;
}

function isEnvelope(data: unknown): data is Envelope {
  return (
    data !== null &&
    typeof data === 'object' &&
    (data as { __xroutes?: unknown }).__xroutes === 1 &&
    typeof (data as { meta?: unknown }).meta === 'object' &&
    (data as { meta?: unknown }).meta !== null
  );
}

function envelope(message: unknown, meta: Meta, deliveries = 0, deadline?: number): Envelope {
  const at = deadline === undefined ? {} : { deadline };
  if (message instanceof Uint8Array)
    return {
      __xroutes: 1,
      message: Buffer.from(message.buffer, message.byteOffset, message.byteLength).toString(
        'base64',
      ),
      encoding: 'base64',
      meta,
      deliveries,
      ...at,
    };
  return { __xroutes: 1, message, meta, deliveries, ...at };
}

/** The message an envelope (or a dead letter) carries, bytes decoded back into a Buffer. */
function unwrap(data: { message: unknown; encoding?: string }): unknown {
  return data.encoding === 'base64' && typeof data.message === 'string'
    ? Buffer.from(data.message, 'base64')
    : data.message;
}

const KEYS = [
  'queue',
  'connection',
  'prefix',
  'concurrency',
  'jobName',
  'deadLetterQueue',
  'maxDeliveries',
  'requeueDelayMs',
  'lockDurationMs',
  'stalledIntervalMs',
  'maxStalledCount',
  'keepCompleted',
  'keepFailed',
  'name',
  'telemetry',
  'startTimeoutMs',
  'commandTimeoutMs',
];

/** Reconnection delay of the connections made from a URL: 100 ms doubling, at most 2 s. */
function reconnectDelay(times: number): number {
  return Math.min(100 * 2 ** Math.min(times, 5), 2_000);
}

/** A client or cluster instance (not plain options): handed to BullMQ as is. */
function isInstance(connection: object): boolean {
  return typeof (connection as { duplicate?: unknown }).duplicate === 'function';
}

/** Where the connection points, for messages: a URL with no password. */
function describeConnection(connection: object): string {
  const c = connection as {
    url?: unknown;
    host?: unknown;
    port?: unknown;
    options?: { host?: unknown; port?: unknown };
  };
  if (typeof c.url === 'string') return redactUrl(c.url);
  const host = c.host ?? c.options?.host ?? '127.0.0.1';
  const port = c.port ?? c.options?.port ?? 6379;
  return `redis://${String(host)}:${String(port)}`;
}

/** True for the errors ioredis gives while the connection is down or unanswered. */
function isConnectionError(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown; name?: unknown } | null;
  if (e === null || typeof e !== 'object') return false;
  if (e.name === 'MaxRetriesPerRequestError') return true;
  if (
    typeof e.code === 'string' &&
    /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN)$/.test(
      e.code,
    )
  )
    return true;
  return (
    typeof e.message === 'string' &&
    /Stream isn't writeable|Connection is closed|Command timed out|connect ETIMEDOUT|ECONNREFUSED/i.test(
      e.message,
    )
  );
}

/** @internal Loads `bullmq` (an optional peer): `OPTIONAL_DEPENDENCY_MISSING` when absent. */
export function loadBullmq(specifier = 'bullmq'): Promise<typeof BullMQ> {
  return loadOptional<typeof BullMQ>(specifier, 'bullmq');
}

/**
 * A durable queue entrypoint on BullMQ (Redis). `bullmq` is an optional peer, loaded at the first
 * `start()`/`publish()`. A job is completed or failed only after its outcome is settled
 * ({@link queueSettlement}): success completes it; an asynchronous retry moves the same job to
 * the delayed set (`moveToDelayed`, durable); a terminal failure is added to the dead-letter queue
 * and then failed with `UnrecoverableError` (the route owns retries: BullMQ's `attempts` never
 * multiply them); a non-terminal failure or a cancellation goes back to the queue. A job whose
 * worker process died is redelivered by BullMQ's stalled-job check after `lockDurationMs`.
 */
export class BullmqEntrypoint<M = unknown> implements Entrypoint<M> {
  readonly kind = 'bullmq';
  readonly name: string;
  readonly queueName: string;
  readonly deadLetterQueueName: string;
  /** The connection options handed to BullMQ. */
  readonly connection: object;
  readonly maxDeliveries: number;
  readonly requeueDelayMs: number;
  /** Bound of `start()`, ms. */
  readonly startTimeoutMs: number;
  /** Deadline of each queue operation, ms. */
  readonly commandTimeoutMs: number;
  /** The connection URL (or host and port) with no password, for errors and logs. */
  readonly redisUrl: string;
  /** Options of the queues' (non-blocking) connections: no offline queue, a command timeout. */
  private readonly queueConnection: object;
  /** The last connection error any of this entrypoint's clients reported. */
  private lastConnectionError: Error | undefined = undefined;
  private readonly options: BullmqEntrypointOptions;
  private readonly jobName: string;
  private route: RouteHandle<M> | undefined = undefined;
  private bull: typeof BullMQ | undefined = undefined;
  private queue: BullMQ.Queue | undefined = undefined;
  private dlq: BullMQ.Queue | undefined = undefined;
  private worker: BullMQ.Worker | undefined = undefined;
  private readonly tokens = new WeakMap<object, string | undefined>();
  private readonly delayed = new WeakSet<object>();
  private loading: Promise<typeof BullMQ> | undefined = undefined;
  private closed = false;

  constructor(options: BullmqEntrypointOptions) {
    checkKeys(options, KEYS, 'bullmqEntrypoint');
    if (typeof options.queue !== 'string' || options.queue === '' || options.queue.includes(':'))
      throw new RouteConfigError(
        `bullmqEntrypoint: queue must be a non-empty name without ':', got ${String(options.queue)}`,
      );
    this.options = options;
    this.queueName = options.queue;
    this.deadLetterQueueName = options.deadLetterQueue ?? `${options.queue}-dead`;
    if (this.deadLetterQueueName === this.queueName)
      throw new RouteConfigError('the dead-letter queue must differ from the queue');
    this.jobName = options.jobName ?? 'message';
    this.name = options.name ?? `bullmq ${options.queue}`;
    const connection = options.connection ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    if (typeof connection === 'string') {
      if (!/^rediss?:\/\//.test(connection))
        throw new RouteConfigError(
          `bullmqEntrypoint: connection must be a redis:// URL or options, got ${connection}`,
        );
      this.connection = { url: connection, retryStrategy: reconnectDelay };
    } else if (connection !== null && typeof connection === 'object')
      this.connection = isInstance(connection)
        ? connection
        : { retryStrategy: reconnectDelay, ...connection };
    else
      throw new RouteConfigError('bullmqEntrypoint: connection must be a URL or an options object');
    this.startTimeoutMs = checkMs(options.startTimeoutMs ?? 10_000, 1, 'startTimeoutMs');
    this.commandTimeoutMs = checkMs(options.commandTimeoutMs ?? 5_000, 1, 'commandTimeoutMs');
    this.redisUrl = describeConnection(this.connection);
    this.queueConnection = isInstance(this.connection)
      ? this.connection
      : {
          enableOfflineQueue: false,
          commandTimeout: this.commandTimeoutMs,
          ...this.connection,
        };
    this.maxDeliveries = checkInt(options.maxDeliveries ?? 5, 1, 'maxDeliveries');
    this.requeueDelayMs = checkMs(options.requeueDelayMs ?? 1000, 0, 'requeueDelayMs');
    if (options.concurrency !== undefined) checkInt(options.concurrency, 1, 'concurrency');
    checkMs(options.lockDurationMs ?? 30_000, 1, 'lockDurationMs');
    checkMs(options.stalledIntervalMs ?? 30_000, 1, 'stalledIntervalMs');
    checkInt(options.maxStalledCount ?? 1, 0, 'maxStalledCount');
    checkInt(options.keepCompleted ?? 1000, 0, 'keepCompleted');
    checkInt(options.keepFailed ?? 1000, 0, 'keepFailed');
  }

  bind(route: RouteHandle<M>): void {
    if (this.route !== undefined && this.route !== route)
      throw new RouteConfigError(`${this.name} already feeds route ${this.route.name}`);
    this.route = route;
  }

  private load(): Promise<typeof BullMQ> {
    if (this.closed) return Promise.reject(new RouteConfigError(`${this.name} is closed`));
    return (this.loading ??= loadBullmq().then(bull => {
      this.bull = bull;
      return bull;
    }));
  }

  private async queues(): Promise<{ queue: BullMQ.Queue; dlq: BullMQ.Queue }> {
    const bull = await this.load();
    const base = {
      connection: this.queueConnection as BullMQ.ConnectionOptions,
      prefix: this.options.prefix ?? 'bull',
      ...(this.options.telemetry === undefined ? {} : { telemetry: this.options.telemetry }),
    };
    const onError = (error: Error) => {
      this.lastConnectionError = error;
    };
    if (this.queue === undefined) {
      this.queue = new bull.Queue(this.queueName, base);
      this.queue.on('error', onError);
    }
    if (this.dlq === undefined) {
      this.dlq = new bull.Queue(this.deadLetterQueueName, base);
      this.dlq.on('error', onError);
    }
    return { queue: this.queue, dlq: this.dlq };
  }

  /**
   * Runs one Redis operation under a deadline (`@x/resilience`'s `timeout`): connection errors
   * and a missed deadline become {@link BrokerUnavailableError}; other errors pass through. `fn`
   * must check `signal` before it sends anything that should not run late.
   */
  private async bounded<T>(
    operation: string,
    ms: number,
    fn: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    try {
      return await timeout(ms).execute(ctx => fn(ctx.signal));
    } catch (error) {
      if (isXError(error, 'TIMEOUT') || isConnectionError(error)) {
        const last = this.lastConnectionError;
        const why = isXError(error, 'TIMEOUT')
          ? `no answer within ${ms} ms${last ? ` (last error: ${last.message})` : ''}`
          : (error as Error).message;
        throw new BrokerUnavailableError('redis', this.redisUrl, operation, why, 1_000, {
          cause: error,
        });
      }
      throw error;
    }
  }

  /** The queues once their connection is ready, under the command deadline. */
  private readyQueues(
    operation: string,
  ): <T>(fn: (q: { queue: BullMQ.Queue; dlq: BullMQ.Queue }) => Promise<T>) => Promise<T> {
    return fn =>
      this.bounded(operation, this.commandTimeoutMs, async signal => {
        const queues = await this.queues();
        await Promise.all([queues.queue.waitUntilReady(), queues.dlq.waitUntilReady()]);
        signal.throwIfAborted();
        return fn(queues);
      });
  }

  /** Adds a message as a job (works before `start()`, e.g. in a producer process); returns the job id. */
  async publish(message: M, options: BullmqPublishOptions = {}): Promise<string> {
    checkKeys(options, ['delayMs', 'meta', 'jobId', 'timeoutMs', 'deadline'], 'publish');
    const delay = checkMs(options.delayMs ?? 0, 0, 'delayMs');
    if (options.timeoutMs !== undefined && options.deadline !== undefined)
      throw new RouteConfigError('give timeoutMs or deadline, not both');
    let deadline: number | undefined;
    if (options.timeoutMs !== undefined) {
      const ms = checkMs(options.timeoutMs, 0, 'timeoutMs', true);
      if (ms !== Infinity) deadline = Date.now() + ms;
    } else if (options.deadline !== undefined) {
      if (typeof options.deadline !== 'number' || !Number.isFinite(options.deadline))
        throw new RouteConfigError(
          `deadline must be a finite number of epoch ms, got ${String(options.deadline)}`,
        );
      deadline = options.deadline;
    }
    const meta = options.meta ?? {};
    if (meta === null || typeof meta !== 'object')
      throw new RouteConfigError('meta must be an object');
    return this.readyQueues('publish')(async ({ queue }) => {
      const job = await queue.add(this.jobName, envelope(message, meta, 0, deadline), {
        ...(delay > 0 ? { delay } : {}),
        ...(options.jobId === undefined ? {} : { jobId: options.jobId }),
      });
      return job.id!;
    });
  }

  async start(): Promise<void> {
    const route = this.route;
    if (route === undefined) throw new RouteConfigError(`${this.name} is not bound to a route`);
    if (this.worker !== undefined) {
      this.worker.resume();
      return;
    }
    const bull = await this.load();
    const o = this.options;
    const worker = new bull.Worker(this.queueName, this.process, {
      connection: this.connection as BullMQ.ConnectionOptions,
      prefix: o.prefix ?? 'bull',
      concurrency: o.concurrency ?? Math.max(1, Math.min(route.concurrency, 1000)),
      lockDuration: o.lockDurationMs ?? 30_000,
      stalledInterval: o.stalledIntervalMs ?? 30_000,
      maxStalledCount: o.maxStalledCount ?? 1,
      removeOnComplete: { count: o.keepCompleted ?? 1000 },
      removeOnFail: { count: o.keepFailed ?? 1000 },
      ...(o.telemetry === undefined ? {} : { telemetry: o.telemetry }),
    });
    worker.on('error', err => {
      this.lastConnectionError = err;
      route.logger.warn({ err, entrypoint: this.name }, 'bullmq worker error');
    });
    this.worker = worker;
    try {
      await this.bounded('start', this.startTimeoutMs, () => worker.waitUntilReady());
    } catch (error) {
      this.worker = undefined;
      void worker.close(true).catch(() => undefined);
      const failure =
        error instanceof BrokerUnavailableError
          ? error
          : new BrokerUnavailableError(
              'redis',
              this.redisUrl,
              'start',
              (error as Error)?.message ?? String(error),
              1_000,
              { cause: error },
            );
      route.logger.error({ err: failure, entrypoint: this.name }, failure.message);
      throw failure;
    }
  }

  private readonly process = async (
    job: BullMQ.Job,
    token?: string,
    signal?: AbortSignal,
  ): Promise<unknown> => {
    const route = this.route!;
    const data: Envelope = isEnvelope(job.data)
      ? job.data
      : { __xroutes: 1, message: job.data, meta: {}, deliveries: 0 };
    this.tokens.set(job, token);
    let outcome: Outcome;
    try {
      const message = unwrap(data) as M;
      // epoch ms in the job → the route clock (monotonic)
      const deadline =
        typeof data.deadline === 'number'
          ? { deadline: route.clock.now() + (data.deadline - Date.now()) }
          : {};
      outcome = await route.startRoute(
        job,
        message,
        data.meta,
        signal
          ? { entrypoint: this, spanKind: 'consumer', signal, ...deadline }
          : { entrypoint: this, spanKind: 'consumer', ...deadline },
      );
    } catch (error) {
      outcome = { kind: 'cancelled', reason: error, started: false, attempts: 0, meta: data.meta };
    }
    return this.settle(job, token, data, outcome);
  };

  private async settle(
    job: BullMQ.Job,
    token: string | undefined,
    data: Envelope,
    outcome: Outcome,
  ): Promise<unknown> {
    const bull = this.bull!;
    const route = this.route!;
    const decision = queueSettlement(outcome, data.deliveries, this);
    switch (decision.action) {
      case 'ack':
        if (outcome.kind === 'deferred' && this.delayed.has(job)) throw new bull.DelayedError();
        return outcome.kind === 'success' ? (outcome.value ?? null) : null;
      case 'dead-letter': {
        const dlq = await this.readyQueues('dead-letter')(async q => q.dlq);
        const record = deadLetterRecord(
          {
            id: `dl-${job.id}`,
            route: route.name,
            entrypoint: this.name,
            message: data.message,
            meta: data.meta,
          },
          outcome,
          decision.reason,
        );
        await dlq.add(
          'dead-letter',
          data.encoding ? { ...record, encoding: data.encoding } : record,
          { jobId: record.id },
        );
        route.metrics.increment('route.dead_letters', 1, route.metricTags);
        route.logger.warn(
          { route: route.name, queue: this.queueName, job: job.id, reason: decision.reason },
          'job dead-lettered',
        );
        throw new bull.UnrecoverableError(
          `dead-lettered (${decision.reason}): ${record.error.message}`,
        );
      }
      case 'requeue': {
        const meta =
          outcome.kind === 'failure' || outcome.kind === 'cancelled' ? outcome.meta : data.meta;
        await job.updateData({
          ...data,
          meta,
          deliveries: data.deliveries + (decision.countDelivery ? 1 : 0),
        });
        if (decision.delayMs > 0) {
          await job.moveToDelayed(Date.now() + decision.delayMs, token);
          throw new bull.DelayedError();
        }
        await job.moveToWait(token);
        throw new bull.WaitingError();
      }
    }
  }

  /**
   * Carries an asynchronous retry: the job being processed is moved to the delayed set with its
   * updated metadata (the same job id, durable in Redis); a message from another entrypoint is
   * added as a new delayed job.
   */
  async republish(delivery: Delivery, payload: RepublishPayload, delayMs: number): Promise<void> {
    const job = delivery.entryId as BullMQ.Job;
    if (delivery.entrypoint === this && this.tokens.has(job)) {
      const deadline = isEnvelope(job.data) ? job.data.deadline : undefined;
      await job.updateData(envelope(payload.message, payload.meta, 0, deadline));
      await job.moveToDelayed(Date.now() + delayMs, this.tokens.get(job));
      this.delayed.add(job);
      return;
    }
    await this.publish(payload.message as M, { delayMs, meta: payload.meta });
  }

  /** Dead letters of this queue, oldest first (at most `limit`, default 100); bytes come back as Buffers. */
  async deadLetters(limit = 100): Promise<DeadLetterRecord[]> {
    checkInt(limit, 1, 'limit');
    const jobs = await this.readyQueues('deadLetters')(({ dlq }) =>
      dlq.getJobs(['waiting'], 0, limit - 1, true),
    );
    return jobs.map(j => {
      const { encoding: _encoding, ...record } = j.data as DeadLetterRecord & { encoding?: string };
      return { ...record, message: unwrap(j.data as { message: unknown; encoding?: string }) };
    });
  }

  /**
   * Adds matching dead letters back to the queue (retry count reset, `meta.replayOf` set) and
   * removes them from the dead-letter queue; returns how many (at most `limit`, default 1000).
   */
  async replay(
    filter: (record: DeadLetterRecord) => boolean = () => true,
    limit = 1000,
  ): Promise<number> {
    checkInt(limit, 1, 'limit');
    const { queue, dlq } = await this.queues();
    const jobs = await dlq.getJobs(['waiting'], 0, limit - 1, true);
    let n = 0;
    for (const job of jobs) {
      const stored = job.data as DeadLetterRecord & { encoding?: string };
      const record = { ...stored, message: unwrap(stored) };
      if (!filter(record)) continue;
      await queue.add(this.jobName, envelope(record.message, replayMeta(record)));
      await job.remove();
      n++;
    }
    return n;
  }

  /**
   * A job's state from Redis (`Queue.getJob` + `getState`), or undefined when BullMQ has no such
   * job (never added, or removed past `keepCompleted` / `keepFailed`). Works in any process
   * sharing the queue, before `start()` too; `BROKER_UNAVAILABLE` when Redis cannot answer.
   */
  async job(id: string): Promise<BullmqJobInfo<M> | undefined> {
    if (typeof id !== 'string' || id === '')
      throw new RouteConfigError(`job id must be a non-empty string, got ${String(id)}`);
    return this.readyQueues('job')(async ({ queue, dlq }) => {
      // state first: a job read before its state could miss a completion landing in between
      const state = await queue.getJobState(id);
      const job = state === 'unknown' ? undefined : await queue.getJob(id);
      if (!job) return undefined;
      const data: Envelope = isEnvelope(job.data)
        ? job.data
        : { __xroutes: 1, message: job.data, meta: {}, deliveries: 0 };
      const dead =
        state === 'failed' ? await dlq.getJob(`dl-${id}`).catch(() => undefined) : undefined;
      const backoff = (data.meta as { backoff?: { retryCount?: unknown } }).backoff;
      return {
        id,
        state,
        message: unwrap(data) as M,
        meta: data.meta,
        retries: typeof backoff?.retryCount === 'number' ? backoff.retryCount : 0,
        createdAt: job.timestamp,
        processedAt: job.processedOn ?? undefined,
        finishedAt: job.finishedOn ?? undefined,
        result: job.returnvalue ?? undefined,
        failedReason: job.failedReason || undefined,
        deadLetter: dead ? (dead.data as DeadLetterRecord) : undefined,
      };
    });
  }

  /** Job counts of the queue and of the dead-letter queue. */
  async counts(): Promise<{ queue: Record<string, number>; deadLetters: number }> {
    return this.readyQueues('counts')(async ({ queue, dlq }) => ({
      queue: await queue.getJobCounts(),
      deadLetters: await dlq.count(),
    }));
  }

  /** Stops fetching jobs (active ones finish; nothing is held unstarted: BullMQ fetches per free slot). */
  async stop(): Promise<{ returned: EntryRef[] }> {
    await this.worker?.pause(true);
    return { returned: [] };
  }

  /** Closes the worker (after its active jobs settled) and the Redis connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.loading?.catch(() => undefined);
    const worker = this.worker;
    this.worker = undefined;
    await worker?.close();
    await this.queue?.close();
    await this.dlq?.close();
  }

  /** Closes, then deletes the queue and its dead-letter queue from Redis (tests, teardown). */
  async obliterate(): Promise<void> {
    await this.worker?.close(true);
    await this.close();
    const bull = this.bull ?? (await loadBullmq());
    const base = {
      connection: this.connection as BullMQ.ConnectionOptions,
      prefix: this.options.prefix ?? 'bull',
    };
    for (const name of [this.queueName, this.deadLetterQueueName]) {
      const queue = new bull.Queue(name, base);
      try {
        await queue.obliterate({ force: true });
      } finally {
        await queue.close();
      }
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** A {@link BullmqEntrypoint}. */
export function bullmqEntrypoint<M = unknown>(
  options: BullmqEntrypointOptions,
): BullmqEntrypoint<M> {
  return new BullmqEntrypoint<M>(options);
}
