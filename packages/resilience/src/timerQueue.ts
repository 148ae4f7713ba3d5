import { systemClock, type Clock, type TimerHandle } from './clock.js';

/**
 * One scheduled expiry, kept by the caller to cancel it in O(1). Hot paths can make their own
 * request objects implement it and {@link TimerQueue.insert} them (no allocation per deadline).
 */
export interface TimerEntry {
  /** Expiry on the queue's clock. */
  at: number;
  /** Called once when `at` passes while the entry is queued. */
  fire(): void;
  prev: TimerEntry | undefined;
  next: TimerEntry | undefined;
  queued: boolean;
}

/**
 * Deadlines for many concurrent calls on one clock timer. Entries sit in a list sorted by expiry
 * (inserting from the tail is O(1) when, as usual, deadlines grow with time); removal is O(1).
 * The single timer is re-armed lazily, and unref'd while no entry waits, so an idle process can
 * exit. This replaces a setTimeout/clearTimeout pair and an AbortController per call.
 */
export class TimerQueue {
  private head: TimerEntry | undefined;
  private tail: TimerEntry | undefined;
  private timer: TimerHandle | undefined;
  private armedAt = Infinity;
  private refed = false;
  /** A check is scheduled to unref the timer if the queue is still empty on the next loop turn. */
  private unrefPending = false;

  /** Real timers may fire up to 1 ms early against performance.now() (libuv rounds to whole ms). */
  private readonly toleranceMs: number;

  constructor(private readonly clock: Clock) {
    this.toleranceMs = clock === systemClock ? 1 : 0;
  }

  /** Schedules `fire` at `at` (clock time); keep the entry to {@link remove} it. */
  add(at: number, fire: () => void): TimerEntry {
    const entry: TimerEntry = { at, fire, prev: undefined, next: undefined, queued: false };
    this.insert(entry);
    return entry;
  }

  /** Queues a caller-owned entry to fire at `entry.at` (`Infinity`: never, not queued). */
  insert(entry: TimerEntry): void {
    const at = entry.at;
    if (entry.queued || at === Infinity) return;
    entry.queued = true;
    let after = this.tail;
    while (after && after.at > at) after = after.prev;
    if (after) {
      entry.prev = after;
      entry.next = after.next;
      if (after.next) after.next.prev = entry;
      else this.tail = entry;
      after.next = entry;
    } else {
      entry.prev = undefined;
      entry.next = this.head;
      if (this.head) this.head.prev = entry;
      else this.tail = entry;
      this.head = entry;
    }
    if (at < this.armedAt) this.arm(at);
    if (!this.refed) {
      this.refed = true;
      this.timer?.ref?.();
    }
  }

  remove(entry: TimerEntry): void {
    if (!entry.queued) return;
    entry.queued = false;
    if (entry.prev) entry.prev.next = entry.next;
    else this.head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else this.tail = entry.prev;
    entry.prev = entry.next = undefined;
    // Unref on the next loop turn, not now: a call that adds an entry right after (the usual
    // steady stream) would pay a ref and an unref of the libuv timer (~100 ns) per call.
    if (!this.head && this.refed && !this.unrefPending) {
      this.unrefPending = true;
      setImmediate(this.unrefIfIdle);
    }
  }

  private readonly unrefIfIdle = (): void => {
    this.unrefPending = false;
    if (!this.head && this.refed) {
      this.refed = false;
      this.timer?.unref?.();
    }
  };

  /** Entries waiting (O(n): for tests and stats). */
  get size(): number {
    let n = 0;
    for (let e = this.head; e; e = e.next) n++;
    return n;
  }

  /** Cancels the timer of a private queue being closed (entries stay queued, unfired). */
  stop(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = Infinity;
  }

  private arm(at: number): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.armedAt = at;
    this.timer = this.clock.setTimeout(this.onTimer, Math.max(0, Math.ceil(at - this.clock.now())));
    if (!this.refed) this.timer.unref?.();
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.armedAt = Infinity;
    const now = this.clock.now() + this.toleranceMs;
    while (this.head && this.head.at <= now) {
      const entry = this.head;
      this.remove(entry);
      entry.fire();
    }
    if (this.head) this.arm(this.head.at);
  };
}

const queues = new WeakMap<Clock, TimerQueue>();

/** The shared {@link TimerQueue} of a clock. */
export function timerQueue(clock: Clock): TimerQueue {
  let queue = queues.get(clock);
  if (!queue) queues.set(clock, (queue = new TimerQueue(clock)));
  return queue;
}
