import { Fifo, type Clock, type TimerHandle } from '@x/resilience';
import {
  deadLetterRecord,
  MemoryDeadLetters,
  replayMeta,
  type DeadLetterRecord,
} from './deadLetter.js';
import type { Entrypoint, EntryRef, RepublishPayload, RouteHandle } from './entrypoint.js';
import { QueueFullError, RouteConfigError } from './errors.js';
import { nextId } from './internal/ids.js';
import { checkInt, checkKeys, checkMs } from './internal/options.js';
import type { Meta, Outcome } from './outcome.js';
import { queueSettlement } from './settlement.js';
import type { Delivery } from './entrypoint.js';

/** Options of {@link MemoryQueue}. */
export interface MemoryQueueOptions {
  /** Entrypoint name (logs, drain reports, dead letters). Default `'memory'`. */
  readonly name?: string;
  /** Messages held (ready + delayed); `publish` beyond it throws `QUEUE_FULL`. Default 10 000. */
  readonly maxLength?: number;
  /** Messages handed to the route at once. Default: the route's concurrency (≙ prefetch = workers). */
  readonly prefetch?: number;
  /** Deliveries before a message that keeps failing non-terminally is dead-lettered. Default 5. */
  readonly maxDeliveries?: number;
  /** Delay before a non-terminal failure (overloaded, republish failed) is delivered again. Default 1000 ms. */
  readonly requeueDelayMs?: number;
  /** Dead letters kept. Default 10 000. */
  readonly maxDeadLetters?: number;
  /** Time source for delays. Default: the route's clock. */
  readonly clock?: Clock;
}

/** Options of {@link MemoryQueue.publish}. */
export interface PublishOptions {
  /** Deliver after this many ms. Default 0. */
  readonly delayMs?: number;
  /** Metadata delivered with the message (`ctx.meta`). Default `{}`. */
  readonly meta?: Meta;
}

/** A message in the queue: what `ctx.entryId` is for this entrypoint. */
export interface QueueRecord<M = unknown> {
  readonly id: string;
  readonly message: M;
  meta: Meta;
  /** Deliveries that ended in a (counted) requeue so far. */
  deliveries: number;
  dueAt: number;
}

const KEYS = [
  'name',
  'maxLength',
  'prefetch',
  'maxDeliveries',
  'requeueDelayMs',
  'maxDeadLetters',
  'clock',
];

/**
 * An in-process queue entrypoint: `publish()` messages, the route consumes them with a bounded
 * prefetch, and each outcome is settled by {@link queueSettlement} (ack, requeue, dead-letter; no
 * failure is lost, no message loops forever). Supports asynchronous backoff (delayed republish)
 * and `replay()` of its dead letters. Nothing survives the process: use {@link BullmqEntrypoint}
 * for durability.
 */
export class MemoryQueue<M = unknown> implements Entrypoint<M> {
  readonly kind = 'memory';
  readonly name: string;
  readonly maxLength: number;
  readonly maxDeliveries: number;
  readonly requeueDelayMs: number;
  /** Terminal failures and exhausted redeliveries, oldest first. */
  readonly deadLetters: MemoryDeadLetters;
  private readonly prefetchOption: number | undefined;
  private readonly clockOption: Clock | undefined;
  private route: RouteHandle<M> | undefined = undefined;
  /** Messages ready, oldest first (the shared `Fifo` of `@x/resilience`). */
  private readonly ready = new Fifo<QueueRecord<M>>();
  /** Messages handed back unstarted (a cancelled delivery): delivered before `ready`, in order. */
  private readonly returned = new Fifo<QueueRecord<M>>();
  private delayedList: QueueRecord<M>[] = [];
  private timer: TimerHandle | undefined = undefined;
  private timerAt = Infinity;
  private active = 0;
  private running = false;
  private idleWaiters: Array<() => void> = [];

  constructor(options: MemoryQueueOptions = {}) {
    checkKeys(options, KEYS, 'MemoryQueue');
    this.name = options.name ?? 'memory';
    if (typeof this.name !== 'string' || this.name === '')
      throw new RouteConfigError('name must be a non-empty string');
    this.maxLength = checkInt(options.maxLength ?? 10_000, 1, 'maxLength');
    this.prefetchOption =
      options.prefetch === undefined ? undefined : checkInt(options.prefetch, 1, 'prefetch');
    this.maxDeliveries = checkInt(options.maxDeliveries ?? 5, 1, 'maxDeliveries');
    this.requeueDelayMs = checkMs(options.requeueDelayMs ?? 1000, 0, 'requeueDelayMs');
    this.deadLetters = new MemoryDeadLetters({
      maxLength: checkInt(options.maxDeadLetters ?? 10_000, 1, 'maxDeadLetters'),
    });
    this.clockOption = options.clock;
  }

  private get clock(): Clock {
    const clock = this.clockOption ?? this.route?.clock;
    if (clock === undefined)
      throw new RouteConfigError(`queue ${this.name} is not bound to a route`);
    return clock;
  }

  /** Messages ready to be delivered. */
  get size(): number {
    return this.ready.length + this.returned.length;
  }

  /** Messages waiting for their delay. */
  get delayed(): number {
    return this.delayedList.length;
  }

  /** Messages delivered to the route and not settled yet. */
  get inFlight(): number {
    return this.active;
  }

  bind(route: RouteHandle<M>): void {
    if (this.route !== undefined && this.route !== route)
      throw new RouteConfigError(`queue ${this.name} already feeds route ${this.route.name}`);
    this.route = route;
  }

  /**
   * Adds a message; returns its id. Throws `QUEUE_FULL` when `maxLength` messages are held, and
   * `INVALID_OPTIONS` for a bad delay.
   */
  publish(message: M, options: PublishOptions = {}): string {
    checkKeys(options, ['delayMs', 'meta'], 'publish');
    const delayMs = checkMs(options.delayMs ?? 0, 0, 'delayMs');
    const meta = options.meta ?? {};
    if (meta === null || typeof meta !== 'object')
      throw new RouteConfigError('meta must be an object');
    if (this.size + this.delayed >= this.maxLength)
      throw new QueueFullError(this.name, this.maxLength);
    const record: QueueRecord<M> = { id: nextId(), message, meta, deliveries: 0, dueAt: 0 };
    this.enqueue(record, delayMs, false);
    return record.id;
  }

  /** Carries an asynchronous retry: the message comes back after `delayMs`. */
  async republish(_delivery: Delivery, payload: RepublishPayload, delayMs: number): Promise<void> {
    this.publish(payload.message as M, { delayMs, meta: payload.meta });
  }

  /**
   * Publishes dead letters of this queue again (retry count reset, `meta.replayOf` set) and removes
   * them from `deadLetters`; returns how many. Stops early (keeping the rest) when the queue fills.
   */
  replay(filter: (record: DeadLetterRecord) => boolean = () => true): number {
    const room = this.maxLength - this.size - this.delayed;
    let n = 0;
    const taken = this.deadLetters.take(r => r.entrypoint === this.name && filter(r) && n++ < room);
    for (const record of taken) this.publish(record.message as M, { meta: replayMeta(record) });
    return taken.length;
  }

  /** Resolves once nothing is ready, delayed or in flight. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise(resolve => this.idleWaiters.push(resolve));
  }

  async start(): Promise<void> {
    if (this.route === undefined)
      throw new RouteConfigError(`queue ${this.name} is not bound to a route`);
    this.running = true;
    this.armTimer();
    this.pump();
  }

  /** Stops delivering. Messages stay queued (nothing is held outside the queue, so none is returned). */
  async stop(): Promise<{ returned: EntryRef[] }> {
    this.running = false;
    return { returned: [] };
  }

  /** Stops and releases the delay timer (messages stay in memory until the queue is dropped). */
  async close(): Promise<void> {
    this.running = false;
    const clock = this.clockOption ?? this.route?.clock;
    if (this.timer !== undefined) clock?.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private enqueue(record: QueueRecord<M>, delayMs: number, front: boolean): void {
    if (delayMs > 0) {
      record.dueAt = this.clock.now() + delayMs;
      let i = this.delayedList.length;
      while (i > 0 && this.delayedList[i - 1]!.dueAt > record.dueAt) i--;
      this.delayedList.splice(i, 0, record);
      this.armTimer();
      return;
    }
    if (front) this.returned.push(record);
    else this.ready.push(record);
    this.pump();
  }

  private armTimer(): void {
    if (!this.running || this.route === undefined) return;
    const first = this.delayedList[0];
    if (first === undefined || first.dueAt >= this.timerAt) return;
    const clock = this.clock;
    if (this.timer !== undefined) clock.clearTimeout(this.timer);
    this.timerAt = first.dueAt;
    this.timer = clock.setTimeout(() => this.promote(), Math.max(0, first.dueAt - clock.now()));
  }

  private promote(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.clock.now();
    let due = 0;
    while (due < this.delayedList.length && this.delayedList[due]!.dueAt <= now) due++;
    for (const record of this.delayedList.splice(0, due)) this.ready.push(record);
    this.armTimer();
    this.pump();
  }

  private get prefetch(): number {
    return this.prefetchOption ?? Math.min(this.route?.concurrency ?? 10, 1000);
  }

  private pump(): void {
    const route = this.route;
    if (!this.running || route === undefined) return;
    const limit = this.prefetch;
    while (this.active < limit) {
      const record = this.returned.shift() ?? this.ready.shift();
      if (record === undefined) break;
      this.active++;
      let pending: Promise<Outcome>;
      try {
        pending = route.startRoute(record, record.message, record.meta, {
          entrypoint: this,
          spanKind: 'consumer',
        });
      } catch (error) {
        pending = Promise.reject(error);
      }
      pending.then(
        outcome => this.settle(record, outcome),
        error =>
          this.settle(record, {
            kind: 'cancelled',
            reason: error,
            started: false,
            attempts: 0,
            meta: record.meta,
          }),
      );
    }
  }

  private settle(record: QueueRecord<M>, outcome: Outcome): void {
    this.active--;
    const route = this.route!;
    const decision = queueSettlement(outcome, record.deliveries, this);
    if (decision.action === 'dead-letter') {
      this.deadLetters.put(
        deadLetterRecord(
          {
            id: record.id,
            route: route.name,
            entrypoint: this.name,
            message: record.message,
            meta: record.meta,
          },
          outcome,
          decision.reason,
        ),
      );
      route.metrics.increment('route.dead_letters', 1, route.metricTags);
      route.logger.warn(
        { route: route.name, queue: this.name, id: record.id, reason: decision.reason },
        'message dead-lettered',
      );
    } else if (decision.action === 'requeue') {
      if (decision.countDelivery) record.deliveries++;
      if (outcome.kind === 'failure' || outcome.kind === 'cancelled') record.meta = outcome.meta;
      this.enqueue(record, decision.delayMs, outcome.kind === 'cancelled');
    }
    this.pump();
    if (this.idleWaiters.length > 0 && this.isIdle()) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private isIdle(): boolean {
    return this.active === 0 && this.size === 0 && this.delayedList.length === 0;
  }
}

/** A {@link MemoryQueue}. */
export function memoryQueue<M = unknown>(options: MemoryQueueOptions = {}): MemoryQueue<M> {
  return new MemoryQueue<M>(options);
}
