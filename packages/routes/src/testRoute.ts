import { ManualClock, memoryMetrics, TimeoutError, type MemoryMetrics } from '@x/resilience';
import { deadLetterRecord, MemoryDeadLetters, type DeadLetterRecord } from './deadLetter.js';
import type { Entrypoint, EntryRef, RepublishPayload } from './entrypoint.js';
import { RouteConfigError } from './errors.js';
import { nextId } from './internal/ids.js';
import type { Meta, Outcome } from './outcome.js';
import type { DrainReport, StopOptions } from './drainReport.js';
import type { Route } from './route.js';
import { TEST_REPUBLISHER } from './routeRetries.js';
import type { RouteEvent } from './routeEvent.js';
import { RunnerContext } from './runnerContext.js';
import type { CallbackKind } from './routeRuntime.js';
import type { Delivery } from './entrypoint.js';

/** Options of {@link testRoute}. */
export interface TestRouteOptions {
  /** The fake clock driving sleeps, delays and timeouts. Default a new `ManualClock(0)`. */
  readonly clock?: ManualClock;
  /** Where the route's metrics go. Default a new `memoryMetrics()`. */
  readonly metrics?: MemoryMetrics;
  /** `deliver()` advances the clock timer by timer until the message settles. Default true. */
  readonly autoAdvance?: boolean;
  /** Real time `deliver()` waits for progress when no timer is pending. Default 5000 ms. */
  readonly realTimeoutMs?: number;
}

/** One worker run, as seen by {@link testRoute}. */
export interface AttemptRecord {
  /** 0 for the first try. */
  readonly attempt: number;
  /** Clock time it started. */
  readonly at: number;
  readonly durationMs: number;
  readonly failed: boolean;
  readonly error?: unknown;
}

/** One scheduled retry. */
export interface RetryRecord {
  /** 1 for the first retry. */
  readonly attempt: number;
  readonly delayMs: number;
  readonly mode: 'sync' | 'async';
  readonly at: number;
}

/** One callback run. */
export interface CallbackRecord {
  readonly callback: CallbackKind;
  readonly attempt: number;
  readonly at: number;
  readonly failed: boolean;
  readonly error?: unknown;
}

/** The full story of one delivered message. */
export interface TestDelivery<R> {
  /** The final outcome (after every asynchronous retry). */
  readonly outcome: Outcome<R>;
  /** The outcome of each delivery, `deferred` ones included. */
  readonly outcomes: Outcome<R>[];
  readonly attempts: AttemptRecord[];
  readonly retries: RetryRecord[];
  /** The delay before each retry, in ms (`retries.map(r => r.delayMs)`). */
  readonly delays: number[];
  readonly callbacks: CallbackRecord[];
  /** Set when the outcome was a terminal failure. */
  readonly deadLetter: DeadLetterRecord | undefined;
  readonly startedAt: number;
  readonly settledAt: number;
}

/** What {@link testRoute} returns. */
export interface RouteTester<In, R> {
  readonly clock: ManualClock;
  readonly metrics: MemoryMetrics;
  /** Terminal failures of delivered messages. */
  readonly deadLetters: MemoryDeadLetters;
  /** Delivers a message through an in-memory entrypoint and resolves once it settled for good. */
  deliver(message: In, meta?: Meta): Promise<TestDelivery<R>>;
  /** Stops the route (see `Route.stop`). */
  stop(options?: StopOptions): Promise<DrainReport>;
  [Symbol.asyncDispose](): Promise<void>;
}

interface Job<R> {
  readonly id: string;
  final: boolean;
  outcomes: Outcome<R>[];
  attempts: AttemptRecord[];
  retries: RetryRecord[];
  callbacks: CallbackRecord[];
  deadLetter: DeadLetterRecord | undefined;
  startedAt: number;
  settledAt: number;
  resolve: (delivery: TestDelivery<R>) => void;
}

/**
 * Deterministic tests of a route's retry schedule: binds the (unstarted, unbound) route to a test
 * context on a `ManualClock`, and `deliver()`s messages through an in-memory entrypoint that also
 * carries asynchronous retries (whatever the backoff's `via`), advancing the clock timer by timer
 * so every delay, attempt and callback is recorded at its exact time.
 */
export function testRoute<In, Out, R>(
  route: Route<In, Out, R, any>,
  options: TestRouteOptions = {},
): RouteTester<In, R> {
  const {
    clock = new ManualClock(0),
    metrics = memoryMetrics({ clock }),
    autoAdvance = true,
    realTimeoutMs = 5000,
  } = options;
  if (!(clock instanceof ManualClock))
    throw new RouteConfigError('testRoute: clock must be a ManualClock');
  try {
    new RunnerContext({ name: 'test', routes: [route], clock, metrics });
  } catch (cause) {
    throw new RouteConfigError('testRoute needs a route not yet bound to a context (or started)', {
      cause,
    });
  }
  const deadLetters = new MemoryDeadLetters();
  const jobs = new Map<unknown, Job<R>>();
  const pendingRetries = new Set<unknown>();

  const run = (job: Job<R>, message: unknown, meta: Meta): void => {
    route.startRoute(job, message as In, meta, { entrypoint }).then(
      outcome => {
        job.outcomes.push(outcome);
        if (outcome.kind === 'deferred') return;
        if (outcome.kind === 'failure' && outcome.terminal) {
          job.deadLetter = deadLetterRecord(
            { id: job.id, route: route.name, entrypoint: entrypoint.name, message, meta },
            outcome,
            outcome.reason,
          );
          deadLetters.put(job.deadLetter);
        }
        job.final = true;
        job.settledAt = clock.now();
        jobs.delete(job);
        job.resolve({
          outcome,
          outcomes: job.outcomes,
          attempts: job.attempts,
          retries: job.retries,
          delays: job.retries.map(r => r.delayMs),
          callbacks: job.callbacks,
          deadLetter: job.deadLetter,
          startedAt: job.startedAt,
          settledAt: job.settledAt,
        });
      },
      error => {
        job.final = true;
        jobs.delete(job);
        job.resolve({
          outcome: { kind: 'cancelled', reason: error, started: false, attempts: 0, meta },
          outcomes: job.outcomes,
          attempts: job.attempts,
          retries: job.retries,
          delays: job.retries.map(r => r.delayMs),
          callbacks: job.callbacks,
          deadLetter: undefined,
          startedAt: job.startedAt,
          settledAt: clock.now(),
        });
      },
    );
  };

  const entrypoint: Entrypoint<In> = {
    kind: 'test',
    name: 'testRoute',
    bind() {},
    async start() {},
    async stop() {
      const returned: EntryRef[] = [...pendingRetries].map(entryId => ({
        route: route.name,
        entrypoint: 'testRoute',
        entryId,
      }));
      return { returned };
    },
    async close() {},
    async republish(delivery: Delivery, payload: RepublishPayload, delayMs: number) {
      const job = delivery.entryId as Job<R>;
      pendingRetries.add(job);
      clock.setTimeout(() => {
        pendingRetries.delete(job);
        if (!route.stopped) run(job, payload.message, payload.meta);
      }, delayMs);
    },
  };
  route[TEST_REPUBLISHER] = entrypoint;

  route.onEvent((event: RouteEvent) => {
    const job = jobs.get(event.entryId);
    if (job === undefined) return;
    if (event.type === 'attempt')
      job.attempts.push({
        attempt: event.attempt,
        at: event.at,
        durationMs: event.durationMs,
        failed: event.failed,
        ...(event.failed ? { error: event.error } : {}),
      });
    else if (event.type === 'retry')
      job.retries.push({
        attempt: event.attempt,
        delayMs: event.delayMs,
        mode: event.mode,
        at: event.at,
      });
    else if (event.type === 'callback')
      job.callbacks.push({
        callback: event.callback,
        attempt: event.attempt,
        at: event.at,
        failed: event.failed,
        ...(event.failed ? { error: event.error } : {}),
      });
  });

  let ready: Promise<void> | undefined;

  return {
    clock,
    metrics,
    deadLetters,
    async deliver(message: In, meta: Meta = {}): Promise<TestDelivery<R>> {
      await (ready ??= route.startDependencies());
      let resolve!: (d: TestDelivery<R>) => void;
      const settled = new Promise<TestDelivery<R>>(r => (resolve = r));
      const job: Job<R> = {
        id: nextId(),
        final: false,
        outcomes: [],
        attempts: [],
        retries: [],
        callbacks: [],
        deadLetter: undefined,
        startedAt: clock.now(),
        settledAt: 0,
        resolve,
      };
      jobs.set(job, job);
      run(job, message, meta);
      if (!autoAdvance) return settled;
      let idleSince = Date.now();
      while (!job.final) {
        await new Promise<void>(r => setImmediate(r));
        if (job.final) break;
        if (clock.pending > 0) {
          await clock.next();
          idleSince = Date.now();
        } else if (Date.now() - idleSince > realTimeoutMs) {
          throw new TimeoutError(realTimeoutMs, 'operation');
        }
      }
      return settled;
    },
    stop: stopOptions => route.stop(stopOptions),
    async [Symbol.asyncDispose]() {
      await route.stop({ timeoutMs: 0 });
    },
  };
}
