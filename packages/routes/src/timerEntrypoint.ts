import type { TimerHandle } from '@x/resilience';
import { deadLetterRecord, type DeadLetterSink } from './deadLetter.js';
import type { Entrypoint, EntryRef, RepublishPayload, RouteHandle } from './entrypoint.js';
import { RouteConfigError } from './errors.js';
import { nextId } from './internal/ids.js';
import { checkKeys, checkMs } from './internal/options.js';
import type { Meta, Outcome } from './outcome.js';
import type { Delivery } from './entrypoint.js';

/** The message a timer delivers. */
export interface TimerTick {
  /** 1 for the first tick. */
  readonly tick: number;
  /** When it was due, on the route clock (ms). */
  readonly firedAt: number;
}

/** Options of {@link timerEntrypoint}. */
export interface TimerEntrypointOptions {
  /** Period in ms (fixed rate: no drift). Required, >= 1. */
  readonly intervalMs: number;
  /** Fire once right at `start()`. Default false (first tick after `intervalMs`). */
  readonly runAtStart?: boolean;
  /** Entrypoint name. Default `'timer'`. */
  readonly name?: string;
  /** Where terminal failures go (they are also logged). Default: logged only. */
  readonly deadLetters?: DeadLetterSink;
}

interface Pending {
  readonly id: string;
  readonly handle: TimerHandle;
}

/**
 * Runs the route every `intervalMs` (≙ `TimeEntrypoint`) on the route clock, so a `ManualClock`
 * drives it in tests. A tick is skipped (counted in `skipped`) while the previous one is still in
 * flight or waits for a retry, so ticks never pile up. Asynchronous retries are one-shot timers in memory (pending ones are handed back at stop);
 * for durable schedules use BullMQ job schedulers through {@link BullmqEntrypoint}.
 */
export class TimerEntrypoint implements Entrypoint<TimerTick> {
  readonly kind = 'timer';
  readonly name: string;
  readonly intervalMs: number;
  readonly runAtStart: boolean;
  /** Ticks delivered so far. */
  ticks = 0;
  /** Ticks skipped because the previous one was still running. */
  skipped = 0;
  private readonly deadLetters: DeadLetterSink | undefined;
  private route: RouteHandle<TimerTick> | undefined = undefined;
  private timer: TimerHandle | undefined = undefined;
  private nextAt = 0;
  private active = 0;
  private running = false;
  private readonly retries = new Map<string, Pending>();

  constructor(options: TimerEntrypointOptions) {
    checkKeys(options, ['intervalMs', 'runAtStart', 'name', 'deadLetters'], 'timerEntrypoint');
    this.intervalMs = checkMs(options.intervalMs, 1, 'intervalMs');
    this.runAtStart = options.runAtStart ?? false;
    this.name = options.name ?? 'timer';
    if (options.deadLetters !== undefined && typeof options.deadLetters.put !== 'function')
      throw new RouteConfigError('deadLetters must have put(record)');
    this.deadLetters = options.deadLetters;
  }

  bind(route: RouteHandle<TimerTick>): void {
    if (this.route !== undefined && this.route !== route)
      throw new RouteConfigError(`timer ${this.name} already drives route ${this.route.name}`);
    this.route = route;
  }

  async start(): Promise<void> {
    const route = this.route;
    if (route === undefined)
      throw new RouteConfigError(`timer ${this.name} is not bound to a route`);
    if (this.running) return;
    this.running = true;
    this.nextAt = route.clock.now() + (this.runAtStart ? 0 : this.intervalMs);
    this.schedule();
  }

  private schedule(): void {
    const clock = this.route!.clock;
    this.timer = clock.setTimeout(() => this.fire(), Math.max(0, this.nextAt - clock.now()));
  }

  private fire(): void {
    if (!this.running) return;
    const firedAt = this.nextAt;
    this.nextAt += this.intervalMs;
    const now = this.route!.clock.now();
    if (this.nextAt <= now) this.nextAt = now + this.intervalMs; // fell behind: no burst of catch-up ticks
    this.schedule();
    if (this.active > 0 || this.retries.size > 0) {
      this.skipped++;
      return;
    }
    this.ticks++;
    this.deliver({ tick: this.ticks, firedAt }, {});
  }

  private deliver(message: TimerTick, meta: Meta): void {
    const route = this.route!;
    this.active++;
    const entryId = { id: nextId(), message };
    route.startRoute(entryId, message, meta, { entrypoint: this }).then(
      outcome => this.settle(entryId.id, message, meta, outcome),
      error =>
        this.settle(entryId.id, message, meta, {
          kind: 'cancelled',
          reason: error,
          started: false,
          attempts: 0,
          meta,
        }),
    );
  }

  private settle(id: string, message: TimerTick, meta: Meta, outcome: Outcome): void {
    this.active--;
    const route = this.route!;
    if (outcome.kind === 'failure') {
      route.logger.warn(
        { err: outcome.error, route: route.name, timer: this.name, reason: outcome.reason },
        'timer tick failed',
      );
      if (outcome.terminal && this.deadLetters !== undefined) {
        route.metrics.increment('route.dead_letters', 1, route.metricTags);
        Promise.resolve(
          this.deadLetters.put(
            deadLetterRecord(
              { id, route: route.name, entrypoint: this.name, message, meta },
              outcome,
              outcome.reason,
            ),
          ),
        ).catch(err => route.logger.error({ err, route: route.name }, 'dead letter sink failed'));
      }
    }
  }

  /** Carries an asynchronous retry as a one-shot in-memory timer. */
  async republish(_delivery: Delivery, payload: RepublishPayload, delayMs: number): Promise<void> {
    const route = this.route;
    if (route === undefined || !this.running)
      throw new RouteConfigError(`timer ${this.name} is not running`);
    const id = nextId();
    const handle = route.clock.setTimeout(() => {
      this.retries.delete(id);
      if (this.running) this.deliver(payload.message as TimerTick, payload.meta);
    }, delayMs);
    this.retries.set(id, { id, handle });
  }

  /** Stops ticking; pending retries are dropped and reported as returned. */
  async stop(): Promise<{ returned: EntryRef[] }> {
    this.running = false;
    const route = this.route;
    if (this.timer !== undefined) route?.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const returned: EntryRef[] = [];
    for (const pending of this.retries.values()) {
      route?.clock.clearTimeout(pending.handle);
      returned.push({ route: route?.name ?? '', entrypoint: this.name, entryId: pending.id });
    }
    this.retries.clear();
    return { returned };
  }

  async close(): Promise<void> {
    await this.stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** A {@link TimerEntrypoint}. */
export function timerEntrypoint(options: TimerEntrypointOptions): TimerEntrypoint {
  return new TimerEntrypoint(options);
}
