import { durationOption, timerOptions } from './internal/durationOption.js';
import { validateAddress } from './validateAddress.js';
import {
  Fifo,
  noopMetrics,
  silentLogger,
  systemClock,
  type Clock,
  type Logger,
  type Metrics,
} from '@x/resilience';
import { WorkerRpcError } from './errors.js';
import { splitEnvelope } from './internal/envelope.js';
import { loadZmq, type Zmq } from './internal/loadZmq.js';
import { receiveLoop } from './internal/receiveLoop.js';
import { BATCH_ALLOWANCE_BYTES, SendQueue, splitPairs } from './internal/sendQueue.js';
import {
  FIXED_HEADER_BYTES,
  ID_BYTES,
  Kind,
  decodeHeader,
  encodeHeader,
  idKey,
  setHeaderBudget,
  setHeaderCredit,
} from './protocol.js';

/** Options of {@link createBroker}. */
export interface BrokerOptions {
  /** Addresses to bind the client-facing ROUTER to (toto's `worker_bind_address`). */
  readonly frontend: string | readonly string[];
  /** Addresses to bind the worker-facing ROUTER to (toto's `worker_socket_address`); workers connect here. */
  readonly backend: string | readonly string[];
  /** Requests waiting for a worker with credit; beyond it clients get OVERLOADED. Default 10 000. */
  readonly maxQueue?: number;
  /** Requests forwarded and unanswered, over all workers. Default 100 000. */
  readonly maxInFlight?: number;
  /** How often idle workers are pinged and the queue swept (ms). Default 1 000. */
  readonly heartbeatIntervalMs?: number;
  /** A worker silent for this long is dropped and its calls fail UNAVAILABLE (ms). Default 3 000. */
  readonly workerTimeoutMs?: number;
  /** Largest body relayed (bytes); bigger messages make libzmq drop the sender. Default 16 MiB. */
  readonly maxBodyBytes?: number;
  /** CURVE secret keys of the two sockets (clients and workers use the matching public keys). */
  readonly curve?: { readonly frontendSecretKey?: string; readonly backendSecretKey?: string };
  readonly lingerMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly metrics?: Metrics;
}

/** One worker as the broker sees it. */
export interface BrokerWorkerStatus {
  readonly id: string;
  readonly credit: number;
  readonly inFlight: number;
  readonly draining: boolean;
  readonly lastSeenMsAgo: number;
}

/** What {@link Broker.status} reports. */
export interface BrokerStatus {
  readonly workers: readonly BrokerWorkerStatus[];
  readonly queued: number;
  readonly inFlight: number;
  readonly forwarded: number;
  readonly rejected: number;
  readonly badFrames: number;
}

interface WorkerEntry {
  readonly key: string;
  readonly identity: Buffer;
  credit: number;
  inFlight: number;
  lastSeen: number;
  draining: boolean;
}

interface Pending {
  readonly client: Buffer[];
  readonly workers: Set<WorkerEntry>;
}

interface Queued {
  readonly key: string;
  readonly client: Buffer[];
  readonly header: Buffer;
  readonly body: Buffer | undefined;
  readonly receivedAt: number;
  readonly budgetMs: number;
  readonly exclude: WorkerEntry | undefined;
  cancelled: boolean;
}

const ZERO_ID = new Uint8Array(ID_BYTES);

function list(value: string | readonly string[]): string[] {
  return (typeof value === 'string' ? value.split(',') : [...value])
    .map(s => s.trim())
    .filter(Boolean);
}

/**
 * A load-balancing broker (the zguide LB pattern, Majordomo-like) for wrpc/1: clients connect to
 * the frontend ROUTER, workers connect a DEALER to the backend ROUTER and announce credit (idle
 * handler slots). A request goes only to a worker with credit — the one with the most — otherwise
 * it waits in a bounded FIFO, so a slow call never blocks the calls behind it (toto's QUEUE device
 * round-robins blindly). Budgets shrink by the time spent queued; CANCEL is forwarded; a retry of
 * the same id goes to another worker; silent workers are dropped and their calls fail UNAVAILABLE.
 */
export class Broker {
  frontendAddresses: string[] = [];
  backendAddresses: string[] = [];
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly metrics: Metrics | undefined;
  private readonly maxQueue: number;
  private readonly maxInFlight: number;
  private frontend: InstanceType<Zmq['Router']> | undefined;
  private backend: InstanceType<Zmq['Router']> | undefined;
  private frontQueue: SendQueue | undefined;
  private backQueue: SendQueue | undefined;
  private readonly workers = new Map<string, WorkerEntry>();
  private readonly pending = new Map<string, Pending>();
  /** Requests waiting for a worker with credit; cancelled ones stay until they reach the head. */
  private readonly queue = new Fifo<Queued>();
  private queued = 0;
  private readonly queuedByKey = new Map<string, Queued>();
  private inFlight = 0;
  private forwarded = 0;
  private rejected = 0;
  private badFrames = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private closed = false;

  constructor(private readonly options: BrokerOptions) {
    if (list(options.frontend).length === 0 || list(options.backend).length === 0)
      throw new TypeError('broker needs frontend and backend addresses');
    for (const a of list(options.frontend)) validateAddress(a, 'zmq-bind', 'frontend');
    for (const a of list(options.backend)) validateAddress(a, 'zmq-bind', 'backend');
    const interval = { exclusiveMin: true, allowInfinity: false };
    durationOption(options.heartbeatIntervalMs ?? 1000, 'heartbeatIntervalMs', interval);
    durationOption(options.workerTimeoutMs ?? 3000, 'workerTimeoutMs', interval);
    timerOptions(options, ['lingerMs']);
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.metrics = options.metrics && options.metrics !== noopMetrics ? options.metrics : undefined;
    this.maxQueue = options.maxQueue ?? 10_000;
    this.maxInFlight = options.maxInFlight ?? 100_000;
  }

  /** Binds both sockets and starts routing. */
  async start(): Promise<this> {
    const zmq = await loadZmq();
    const o = this.options;
    const common = {
      linger: o.lingerMs ?? 0,
      mandatory: true,
      sendTimeout: 1000,
      sendHighWaterMark: 100_000,
      receiveHighWaterMark: 100_000,
      heartbeatInterval: 1000,
      heartbeatTimeout: 3000,
      maxMessageSize: (o.maxBodyBytes ?? 16 * 1024 * 1024) + BATCH_ALLOWANCE_BYTES,
    };
    this.frontend = new zmq.Router({
      ...common,
      ...(o.curve?.frontendSecretKey
        ? { curveServer: true, curveSecretKey: o.curve.frontendSecretKey }
        : {}),
    });
    this.backend = new zmq.Router({
      ...common,
      ...(o.curve?.backendSecretKey
        ? { curveServer: true, curveSecretKey: o.curve.backendSecretKey }
        : {}),
    });
    this.frontQueue = new SendQueue(this.frontend, 100_000, () => {});
    this.backQueue = new SendQueue(this.backend, 100_000, () => {});
    for (const a of list(o.frontend)) {
      await this.frontend.bind(a);
      this.frontendAddresses.push(this.frontend.lastEndpoint ?? a);
    }
    for (const a of list(o.backend)) {
      await this.backend.bind(a);
      this.backendAddresses.push(this.backend.lastEndpoint ?? a);
    }
    void this.loop(this.frontend, frames => this.onClient(frames));
    void this.loop(this.backend, frames => this.onWorker(frames));
    this.timer = setInterval(() => this.tick(), o.heartbeatIntervalMs ?? 1000);
    this.timer.unref?.();
    return this;
  }

  private async loop(
    socket: InstanceType<Zmq['Router']>,
    handle: (frames: Buffer[]) => void,
  ): Promise<void> {
    try {
      await receiveLoop(socket, frames => {
        try {
          handle(frames);
        } catch (error) {
          this.badFrames++;
          this.logger.debug({ err: error }, 'broker dropped a message');
        }
      });
    } catch (error) {
      if (!this.closed) this.logger.warn({ err: error }, 'broker receive loop ended');
    }
  }

  /** Free worker slots plus free queue places (advertised to clients). */
  get credit(): number {
    let sum = 0;
    for (const w of this.workers.values()) if (!w.draining && w.credit > 0) sum += w.credit;
    return sum + Math.max(0, this.maxQueue - this.queued);
  }

  private replyError(
    client: Buffer[],
    id: Uint8Array,
    attempt: number,
    error: WorkerRpcError,
  ): void {
    this.rejected++;
    const header = encodeHeader({
      kind: Kind.ERR,
      id,
      attempt,
      codec: 'json',
      credit: this.credit,
    });
    const body = Buffer.from(
      JSON.stringify({ code: error.code, message: error.message, retryable: error.retryable }),
    );
    this.frontQueue!.pushPair(client, header, body);
  }

  private onClient(frames: Buffer[]): void {
    const split = splitEnvelope(frames, 1);
    const pairs = split && splitPairs(split.content);
    if (!split || !pairs) {
      this.badFrames++;
      return;
    }
    for (const [first, body] of pairs) this.onClientPair(split.routing, first, body);
  }

  private onClientPair(client: Buffer[], first: Buffer, body: Buffer | undefined): void {
    let header;
    try {
      header = decodeHeader(first);
    } catch (error) {
      this.badFrames++;
      if (first.byteLength >= FIXED_HEADER_BYTES && first[0] === 1)
        this.replyError(
          client,
          first.subarray(4, 4 + ID_BYTES),
          first[3]!,
          error as WorkerRpcError,
        );
      return;
    }
    switch (header.kind) {
      case Kind.REQ: {
        if (header.budgetMs === 0)
          return this.replyError(
            client,
            header.id,
            header.attempt,
            new WorkerRpcError('DEADLINE_EXCEEDED', 'budget already spent'),
          );
        const key = idKey(header.id);
        const previous = this.pending.get(key);
        const exclude =
          previous && previous.workers.size > 0
            ? previous.workers.values().next().value
            : undefined;
        const item: Queued = {
          key,
          client,
          header: first,
          body,
          receivedAt: this.clock.now(),
          budgetMs: header.budgetMs,
          exclude,
          cancelled: false,
        };
        if (this.queued === 0 && this.forward(item)) return;
        if (this.queued >= this.maxQueue) {
          return this.replyError(
            client,
            header.id,
            header.attempt,
            new WorkerRpcError('OVERLOADED', `broker queue full (${this.maxQueue})`, {
              retryable: true,
            }),
          );
        }
        this.queue.push(item);
        this.queuedByKey.set(key, item);
        this.queued++;
        return;
      }
      case Kind.CANCEL: {
        const key = idKey(header.id);
        const waiting = this.queuedByKey.get(key);
        if (waiting && !waiting.cancelled) {
          waiting.cancelled = true;
          this.queuedByKey.delete(key);
          this.queued--;
          this.replyError(
            client,
            header.id,
            header.attempt,
            new WorkerRpcError('CANCELLED', 'cancelled while queued in the broker'),
          );
        }
        const pending = this.pending.get(key);
        if (pending)
          for (const w of pending.workers)
            this.backQueue!.pushPair([w.identity, ...pending.client], first, undefined);
        return;
      }
      case Kind.PING:
        this.frontQueue!.pushPair(
          client,
          encodeHeader({ kind: Kind.PONG, id: header.id, credit: this.credit }),
          undefined,
        );
        return;
      default:
        return;
    }
  }

  /** Sends `item` to the worker with the most credit; false when none has any. */
  private forward(item: Queued): boolean {
    if (this.inFlight >= this.maxInFlight) return false;
    let best: WorkerEntry | undefined;
    let fallback: WorkerEntry | undefined;
    for (const w of this.workers.values()) {
      if (w.draining || w.credit <= 0) continue;
      if (w === item.exclude) {
        fallback ??= w; // a retry of this id goes elsewhere when it can
        continue;
      }
      if (
        best === undefined ||
        w.credit > best.credit ||
        (w.credit === best.credit && w.inFlight < best.inFlight)
      )
        best = w;
    }
    best ??= fallback;
    if (best === undefined) return false;
    if (item.budgetMs > 0) {
      const left = item.budgetMs - (this.clock.now() - item.receivedAt);
      if (left <= 0) {
        this.replyError(
          item.client,
          item.header.subarray(4, 4 + ID_BYTES),
          item.header[3]!,
          new WorkerRpcError('DEADLINE_EXCEEDED', 'budget spent while queued in the broker'),
        );
        return true;
      }
      setHeaderBudget(item.header, left);
    }
    best.credit--;
    best.inFlight++;
    this.inFlight++;
    this.forwarded++;
    let pending = this.pending.get(item.key);
    if (!pending) {
      pending = { client: item.client, workers: new Set() };
      this.pending.set(item.key, pending);
    }
    pending.workers.add(best);
    this.backQueue!.pushPair([best.identity, ...item.client], item.header, item.body);
    this.metrics?.increment('worker_rpc.broker.forwarded');
    return true;
  }

  private dispatch(): void {
    for (let item = this.queue.peek(); item !== undefined; item = this.queue.peek()) {
      if (!item.cancelled) {
        if (!this.forward(item)) break;
        this.queuedByKey.delete(item.key);
        this.queued--;
      }
      this.queue.shift();
    }
  }

  private onWorker(frames: Buffer[]): void {
    const split = splitEnvelope(frames, 1);
    const pairs = split && splitPairs(split.content);
    if (!split || !pairs) {
      this.badFrames++;
      return;
    }
    const identity = split.routing[0]!;
    const key = identity.toString('latin1');
    let worker = this.workers.get(key);
    if (!worker) {
      worker = { key, identity, credit: 0, inFlight: 0, lastSeen: 0, draining: false };
      this.workers.set(key, worker);
      this.logger.info({ workers: this.workers.size }, 'broker: worker joined');
    }
    worker.lastSeen = this.clock.now();
    const client = split.routing.slice(1);
    for (const [first, body] of pairs) this.onWorkerPair(worker, client, first, body);
    this.dispatch();
  }

  private onWorkerPair(
    worker: WorkerEntry,
    client: Buffer[],
    first: Buffer,
    body: Buffer | undefined,
  ): void {
    let header;
    try {
      header = decodeHeader(first);
    } catch {
      this.badFrames++;
      return;
    }
    switch (header.kind) {
      case Kind.CREDIT:
      case Kind.PONG:
        if (header.credit >= 0) worker.credit = header.credit;
        worker.draining = false;
        return;
      case Kind.DRAIN:
        worker.draining = true;
        worker.credit = 0;
        return;
      case Kind.RES:
      case Kind.ERR:
      case Kind.ACK: {
        if (client.length === 0) return;
        if (header.credit >= 0) worker.credit = header.credit;
        if (header.kind !== Kind.ACK) {
          const id = idKey(header.id);
          const pending = this.pending.get(id);
          if (pending && pending.workers.delete(worker)) {
            worker.inFlight--;
            this.inFlight--;
            if (pending.workers.size === 0) this.pending.delete(id);
          }
        }
        setHeaderCredit(first, this.credit);
        this.frontQueue!.pushPair(client, first, body);
        return;
      }
      default:
        return;
    }
  }

  private tick(): void {
    if (this.closed) return;
    const now = this.clock.now();
    const timeout = this.options.workerTimeoutMs ?? 3000;
    const interval = this.options.heartbeatIntervalMs ?? 1000;
    for (const worker of [...this.workers.values()]) {
      if (now - worker.lastSeen > timeout) {
        this.dropWorker(worker);
      } else if (now - worker.lastSeen >= interval * 0.9) {
        this.backQueue!.pushPair(
          [worker.identity],
          encodeHeader({ kind: Kind.PING, id: ZERO_ID }),
          undefined,
        );
      }
    }
    // expire queued requests whose budget ran out
    for (const item of this.queue) {
      if (item.cancelled || item.budgetMs < 0) continue;
      if (now - item.receivedAt >= item.budgetMs) {
        item.cancelled = true;
        this.queuedByKey.delete(item.key);
        this.queued--;
        this.replyError(
          item.client,
          item.header.subarray(4, 4 + ID_BYTES),
          item.header[3]!,
          new WorkerRpcError('DEADLINE_EXCEEDED', 'budget spent while queued in the broker'),
        );
      }
    }
    this.dispatch();
  }

  private dropWorker(worker: WorkerEntry): void {
    this.workers.delete(worker.key);
    this.logger.warn({}, 'broker: worker timed out');
    for (const [key, pending] of this.pending) {
      if (!pending.workers.delete(worker)) continue;
      this.inFlight--;
      if (pending.workers.size === 0) {
        this.pending.delete(key);
        const id = Buffer.from(key, 'latin1');
        this.replyError(
          pending.client,
          id,
          0,
          new WorkerRpcError('UNAVAILABLE', 'worker lost', { retryable: true }),
        );
      }
    }
  }

  /** Workers, queue and counters. */
  status(): BrokerStatus {
    const now = this.clock.now();
    return {
      workers: [...this.workers.values()].map(w => ({
        id: Buffer.from(w.key, 'latin1').toString('hex'),
        credit: w.credit,
        inFlight: w.inFlight,
        draining: w.draining,
        lastSeenMsAgo: now - w.lastSeen,
      })),
      queued: this.queued,
      inFlight: this.inFlight,
      forwarded: this.forwarded,
      rejected: this.rejected,
      badFrames: this.badFrames,
    };
  }

  /** Closes both sockets and the heartbeat timer. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.frontQueue?.close();
    this.backQueue?.close();
    if (this.frontend && !this.frontend.closed) this.frontend.close();
    if (this.backend && !this.backend.closed) this.backend.close();
    this.workers.clear();
    this.pending.clear();
    this.queue.drain();
    this.queuedByKey.clear();
    this.queued = 0;
  }

  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Creates a {@link Broker}; call `start()` to bind. Defaults: `maxQueue` 10 000, heartbeat 1 000 ms, worker timeout 3 000 ms. */
export function createBroker(options: BrokerOptions): Broker {
  return new Broker(options);
}
