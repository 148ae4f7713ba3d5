import { randomUUID } from 'node:crypto';
import type { Clock, Logger, TimerHandle } from '@x/resilience';
import { Fifo, setTimer } from '@x/resilience';
import type { DispatcherEvent } from '../dispatcherEvent.js';
import {
  DispatcherClosedError,
  EventLimitReachedError,
  InvalidConfigError,
  InvalidRequestError,
} from '../errors.js';
import type { EventStore, StoredEvent } from '../eventStore.js';
import { startEventTakeover } from './eventTakeover.js';

/** A function run by a scheduled event, or a named handler with a JSON payload (durable). */
export type EventRunnable =
  (() => unknown) | { readonly handler: string; readonly payload?: unknown };

/** A handler for durable events, registered by name. */
export type EventHandler = (
  payload: unknown,
  event: {
    readonly id: string;
    readonly service: string | undefined;
    readonly eventId: string | undefined;
    readonly eta: number;
  },
) => unknown;

/** What `addEvent` returns. */
export interface EventHandle {
  readonly id: string;
  readonly service: string | undefined;
  readonly eventId: string | undefined;
  readonly eta: number;
  /** Same as `cancelEvent(service, eventId)`; for unkeyed events, cancels this one. */
  cancel(): Promise<boolean>;
  /** Same as `updateEvent(eta, service, eventId)`. */
  reschedule(eta: number | Date): Promise<boolean>;
}

interface Entry {
  readonly id: string;
  readonly service: string | undefined;
  readonly eventId: string | undefined;
  readonly eta: number;
  readonly seq: number;
  readonly run: (() => unknown) | undefined;
  readonly handler: string | undefined;
  readonly payload: unknown;
  cancelled: boolean;
  /** When to try again after the store failed (the stored eta stays `eta`). */
  readonly due?: number;
  /** Store failures so far (the retry delay doubles with each). */
  readonly storeFailures?: number;
  /** The lease of a claim whose answer was lost: sent again, so a claim that did apply counts. */
  readonly claimLease?: number;
}

/** First delay before an event whose claim failed (store unreachable) is tried again. */
const STORE_RETRY_MS = 500;
/** Longest delay between two tries of such an event. */
const STORE_RETRY_MAX_MS = 5_000;

/** Options of the scheduler. */
export interface EventSchedulerOptions {
  readonly clock: Clock;
  /** Epoch ms (event etas are epoch ms). */
  readonly now: () => number;
  readonly store: EventStore;
  readonly handlers: Map<string, EventHandler>;
  readonly maxEvents: number;
  readonly maxConcurrent: number;
  readonly leaseMs: number;
  /** Events of a shared store still pending this long after their eta are taken over here. */
  readonly takeoverMs: number;
  readonly emit: (event: DispatcherEvent) => void;
  readonly log: Logger;
}

const MAX_DELAY = 2 ** 31 - 1;

/**
 * App Engine's `ScheduledExecutor`, bounded and observable: a binary heap ordered by (eta, insertion
 * order) with lazy deletion, one clock timer for the head, keyed events (`service`, `eventId`)
 * that can be rescheduled and cancelled, bounded concurrency for running them, and a store that
 * makes named events durable.
 */
export class EventScheduler {
  private heap: Entry[] = [];
  private readonly byId = new Map<string, Entry>();
  private seq = 0;
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;
  private running = 0;
  private readonly ready = new Fifo<Entry>();
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;
  private takeover: { stop: () => void } | undefined;
  private takeoverFailing = false;
  private readonly unhandled = new Set<string>();

  constructor(private readonly options: EventSchedulerOptions) {}

  /** Pending events. */
  get size(): number {
    return this.byId.size;
  }

  /** Loads pending events from the store (after a restart), then starts the takeover sweep. */
  async start(): Promise<void> {
    const { store, maxEvents, now, clock, takeoverMs, log } = this.options;
    this.adopt(await store.load(now(), maxEvents));
    if (this.closed || this.takeover) return;
    this.takeover = startEventTakeover({
      clock,
      now,
      store,
      takeoverMs,
      adopt: events => {
        this.takeoverFailing = false;
        this.adopt(events);
      },
      onError: error => {
        if (this.takeoverFailing) return; // one warning per outage, not one per sweep
        this.takeoverFailing = true;
        log.warn({ err: error }, 'event takeover: the store cannot be read; trying again');
      },
    });
  }

  /** Schedules stored events this scheduler does not have yet (its own pending ones are kept). */
  adopt(events: readonly StoredEvent[]): void {
    const { handlers, log, maxEvents } = this.options;
    if (this.closed) return;
    for (const event of events) {
      if (this.byId.size >= maxEvents) break;
      if (this.byId.has(event.id)) continue;
      if (!handlers.has(event.handler)) {
        if (this.unhandled.size < 1_000 && !this.unhandled.has(event.id)) {
          this.unhandled.add(event.id); // warned once, not at every takeover sweep
          log.warn(
            { event: event.id, handler: event.handler },
            'stored event has no registered handler; left in the store',
          );
        }
        continue;
      }
      this.insert({ ...fromStored(event), seq: this.seq++, run: undefined, cancelled: false });
    }
    this.arm();
  }

  async add(
    runnable: EventRunnable,
    eta: number | Date,
    service: string | undefined,
    eventId: string | undefined,
  ): Promise<EventHandle> {
    if (this.closed) throw new DispatcherClosedError();
    const at = toEta(eta, this.options.now());
    let run: (() => unknown) | undefined;
    let handler: string | undefined;
    let payload: unknown;
    if (typeof runnable === 'function') run = runnable;
    else if (
      typeof runnable === 'object' &&
      runnable !== null &&
      typeof runnable.handler === 'string'
    ) {
      if (!this.options.handlers.has(runnable.handler))
        throw new InvalidConfigError(
          `no event handler named ${JSON.stringify(runnable.handler)} (register it first)`,
        );
      handler = runnable.handler;
      payload = runnable.payload;
      try {
        JSON.stringify(payload);
      } catch (error) {
        throw new InvalidRequestError('event payload must be JSON-serializable', { cause: error });
      }
    } else {
      throw new InvalidRequestError('runnable must be a function or { handler, payload }');
    }
    if ((service === undefined) !== (eventId === undefined))
      throw new InvalidRequestError('give both service and eventId, or neither');
    const id = service !== undefined ? keyOf(service, eventId!) : randomUUID();
    const previous = this.byId.get(id);
    if (!previous && this.byId.size >= this.options.maxEvents)
      throw new EventLimitReachedError(this.options.maxEvents);
    if (handler !== undefined) {
      await this.options.store.put({ id, service, eventId, eta: at, handler, payload });
    } else if (previous?.handler !== undefined) {
      await this.options.store.remove(id);
    }
    if (previous) previous.cancelled = true; // a new event with the same key replaces the old one
    const entry: Entry = {
      id,
      service,
      eventId,
      eta: at,
      seq: this.seq++,
      run,
      handler,
      payload,
      cancelled: false,
    };
    this.insert(entry);
    this.arm();
    return this.handle(entry);
  }

  /** Moves a pending keyed event to a new eta; false when no such event is pending. */
  async update(eta: number | Date, service: string, eventId: string): Promise<boolean> {
    if (this.closed) throw new DispatcherClosedError();
    const at = toEta(eta, this.options.now());
    return this.reschedule(keyOf(service, eventId), at);
  }

  private async reschedule(id: string, at: number): Promise<boolean> {
    const entry = this.byId.get(id);
    if (!entry) return false;
    if (entry.handler !== undefined) {
      const found = await this.options.store.reschedule(id, at);
      if (!found || this.byId.get(id) !== entry) return false;
    }
    entry.cancelled = true;
    const { due: _due, storeFailures: _failures, claimLease: _lease, ...rest } = entry; // a new eta: no retry
    this.insert({ ...rest, eta: at, seq: this.seq++, cancelled: false });
    this.arm();
    return true;
  }

  /** Cancels a pending keyed event; false when no such event is pending. */
  async cancel(service: string, eventId: string): Promise<boolean> {
    if (this.closed) throw new DispatcherClosedError();
    return this.cancelId(keyOf(service, eventId));
  }

  private async cancelId(id: string): Promise<boolean> {
    const entry = this.byId.get(id);
    if (!entry) return false;
    entry.cancelled = true;
    this.byId.delete(id);
    if (entry.handler !== undefined) await this.options.store.remove(id);
    this.arm();
    return true;
  }

  private handle(entry: Entry): EventHandle {
    return {
      id: entry.id,
      service: entry.service,
      eventId: entry.eventId,
      eta: entry.eta,
      cancel: () => this.cancelId(entry.id),
      reschedule: eta => this.reschedule(entry.id, toEta(eta, this.options.now())),
    };
  }

  private insert(entry: Entry): void {
    this.byId.set(entry.id, entry);
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
    // lazy deletion leaves stale entries behind: rebuild when they dominate
    if (heap.length > 64 && heap.length > 2 * this.byId.size + 64) this.rebuild();
  }

  private rebuild(): void {
    const live = this.heap.filter(e => !e.cancelled && this.byId.get(e.id) === e);
    live.sort((a, b) => (before(a, b) ? -1 : 1));
    this.heap = live;
  }

  private peek(): Entry | undefined {
    const heap = this.heap;
    while (heap.length > 0) {
      const head = heap[0]!;
      if (!head.cancelled && this.byId.get(head.id) === head) return head;
      this.pop();
    }
    return undefined;
  }

  private pop(): Entry | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last !== undefined) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && before(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && before(heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  }

  /** Keeps one timer, for the earliest pending event. */
  private arm(): void {
    if (this.closed) return;
    const head = this.peek();
    const at = head ? dueOf(head) : Infinity;
    if (at === this.timerAt && this.timer) return;
    const { clock, now } = this.options;
    if (this.timer) clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = at;
    if (at === Infinity) return;
    this.timer = clock.setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = Infinity;
        this.fire();
      },
      Math.min(MAX_DELAY, Math.max(0, at - now())),
    );
    this.timer.unref?.();
  }

  private fire(): void {
    if (this.closed) return;
    const now = this.options.now();
    for (;;) {
      const head = this.peek();
      if (!head || dueOf(head) > now) break;
      this.pop();
      this.byId.delete(head.id);
      this.ready.push(head);
    }
    this.drainReady();
    this.arm();
  }

  private drainReady(): void {
    while (this.running < this.options.maxConcurrent && this.ready.length > 0) {
      const entry = this.ready.shift()!;
      this.running++;
      const promise = this.runOne(entry).finally(() => {
        this.running--;
        this.inFlight.delete(promise);
        this.drainReady();
      });
      this.inFlight.add(promise);
    }
  }

  private async runOne(entry: Entry): Promise<void> {
    const { store, handlers, emit, now, leaseMs } = this.options;
    const meta = { id: entry.id, service: entry.service, eventId: entry.eventId };
    try {
      if (entry.handler !== undefined) {
        let claimed: boolean;
        // a retried claim sends the lease of the lost one again (while at least half is left)
        const again = entry.claimLease !== undefined && entry.claimLease - now() >= leaseMs / 2;
        const lease = again ? entry.claimLease! : now() + leaseMs;
        try {
          claimed = await store.claim(entry.id, entry.eta, lease, again);
        } catch (error) {
          // The store cannot be reached: the event is still in it (or the claim applied and
          // only its answer was lost). Try again later (500 ms, doubling up to 5 s) with the
          // same lease instead of dropping it until the next restart loads it.
          this.retryLater(entry, lease);
          throw error;
        }
        if (!claimed) return; // another runner has it
        const handler = handlers.get(entry.handler);
        if (!handler)
          throw new InvalidConfigError(`no event handler named ${JSON.stringify(entry.handler)}`);
        try {
          await handler(entry.payload, { ...meta, eta: entry.eta });
        } finally {
          await store.complete(entry.id);
        }
      } else {
        await entry.run!();
      }
      emit({ type: 'event-fired', ...meta });
    } catch (error) {
      // errors are reported, never swallowed silently (App Engine lost them in a thread)
      emit({ type: 'event-error', ...meta, error });
    }
  }

  private retryLater(entry: Entry, claimLease: number): void {
    if (this.closed || this.byId.has(entry.id)) return; // closed, or replaced by a newer event
    const failures = (entry.storeFailures ?? 0) + 1;
    const delay = Math.min(STORE_RETRY_MAX_MS, STORE_RETRY_MS * 2 ** (failures - 1));
    this.insert({
      ...entry,
      seq: this.seq++,
      cancelled: false,
      due: this.options.now() + delay,
      storeFailures: failures,
      claimLease,
    });
    this.arm();
  }

  /** Stops the timer; pending in-memory events are dropped, durable ones stay in the store. */
  async close(waitMs: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.takeover?.stop();
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.byId.clear();
    this.heap = [];
    this.ready.drain();
    if (this.inFlight.size > 0) {
      await Promise.race([
        Promise.allSettled([...this.inFlight]),
        new Promise(resolve => setTimer(() => resolve(undefined), waitMs).unref()),
      ]);
    }
  }
}

/** When an entry should run: its eta, or its retry time after a store failure. */
function dueOf(entry: Entry): number {
  return entry.due ?? entry.eta;
}

function before(a: Entry, b: Entry): boolean {
  const da = dueOf(a);
  const db = dueOf(b);
  return da < db || (da === db && a.seq < b.seq);
}

function keyOf(service: string, eventId: string): string {
  if (
    typeof service !== 'string' ||
    typeof eventId !== 'string' ||
    service === '' ||
    eventId === ''
  )
    throw new InvalidRequestError('service and eventId must be non-empty strings');
  if (service.includes('\u0000') || eventId.includes('\u0000'))
    throw new InvalidRequestError('service and eventId must not contain NUL');
  return `${service}\u0000${eventId}`;
}

/** A clock reading at least this (2001-09-09 in ms) is a real epoch-ms clock. */
const EPOCH_MS_CLOCK = 1e12;
/** 30 years in seconds: an eta this close to now read in seconds is App Engine's unit. */
const SECONDS_WINDOW = 30 * 365.25 * 24 * 3600;

/**
 * Epoch ms of an eta. App Engine's `add_event` took seconds since the epoch: a number that is
 * within 30 years of now when read as seconds (and in 1970 when read as ms) can only be
 * seconds, and is refused rather than fired at once.
 */
function toEta(eta: number | Date, now: number): number {
  const at = eta instanceof Date ? eta.getTime() : eta;
  if (typeof at !== 'number' || !Number.isFinite(at))
    throw new InvalidRequestError('eta must be a finite epoch time in ms or a Date');
  if (now >= EPOCH_MS_CLOCK && !(eta instanceof Date) && Math.abs(at - now / 1000) < SECONDS_WINDOW)
    throw new InvalidRequestError(
      `eta must be epoch milliseconds or a Date, got ${at}, which is seconds since the epoch (App Engine's unit): pass ${Math.round(at * 1000)} or new Date(${Math.round(at * 1000)})`,
    );
  return at;
}

function fromStored(event: StoredEvent): Omit<Entry, 'seq' | 'run' | 'cancelled'> {
  return {
    id: event.id,
    service: event.service,
    eventId: event.eventId,
    eta: event.eta,
    handler: event.handler,
    payload: event.payload,
  };
}
