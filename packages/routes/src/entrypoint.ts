import type { Clock, Logger, Metrics, Tags, TraceCarrier } from '@x/resilience';
import type { Meta, Outcome } from './outcome.js';

/** One delivery of a message to a route: what the overridable route steps receive. */
export interface Delivery {
  /** Transport handle of the message (≙ `entry_id`): a BullMQ `Job`, an HTTP exchange, a queue record. */
  readonly entryId: unknown;
  /** The entrypoint that delivered it (undefined when `startRoute` is called directly). */
  readonly entrypoint: Entrypoint<any> | undefined;
  /** Aborted when the entrypoint aborts (client gone, job cancelled) or the route kills the work. */
  readonly signal: AbortSignal;
  /** True once a worker got a slot and ran (false while it waits for the worker budget). */
  readonly started: boolean;
  /** The message's deadline on the route clock (`Infinity`: none); see `StartRouteOptions.deadline`. */
  readonly deadline: number;
}

/** A message an asynchronous backoff publishes again: the raw message and its updated metadata. */
export interface RepublishPayload {
  readonly message: unknown;
  readonly meta: Meta;
}

/** A message an entrypoint handed back at stop (it is back in its queue, or was answered 503). */
export interface EntryRef {
  readonly route: string;
  readonly entrypoint: string;
  readonly entryId: unknown;
}

/** Options of {@link RouteHandle.startRoute}. */
export interface StartRouteOptions {
  /** The entrypoint delivering the message (it settles the outcome and may carry async retries). */
  readonly entrypoint?: Entrypoint<any>;
  /** Aborts the work (client disconnected, job cancelled): the target sees it in `ctx.signal`. */
  readonly signal?: AbortSignal;
  /**
   * A cheaper alternative to `signal` for transports that rarely abort: called at once with a
   * function that aborts this delivery (no AbortController is made unless the target reads
   * `ctx.signal`).
   */
  readonly onAbort?: (abort: (reason: unknown) => void) => void;
  /**
   * The message's deadline on the route's clock (`route.clock.now()` + the caller's remaining
   * budget): it bounds every attempt (with the route's `timeoutMs`, the earlier wins), is visible
   * to the target as `ctx.deadline` / `ctx.remainingMs` so it can forward it, and a message whose
   * deadline passed before it ran settles as a terminal `DEADLINE_EXCEEDED` failure, not run.
   */
  readonly deadline?: number;
  /**
   * The span kind of this execution when traced: `server` (HTTP), `consumer` (queues) or
   * `internal` (default: in-process, timers).
   */
  readonly spanKind?: 'server' | 'consumer' | 'internal';
  /** Incoming W3C trace context (`traceparent`, `tracestate` headers) the execution continues. */
  readonly traceContext?: TraceCarrier;
}

/** What an entrypoint sees of the route it feeds. */
export interface RouteHandle<M = unknown> {
  /** The route's metric label. */
  readonly name: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** `{ context, route }`, the tags of every route metric. */
  readonly metricTags: Tags;
  /** How many workers can run for this route at once (per-route concurrency or context budget). */
  readonly concurrency: number;
  /** Runs one message (≙ `start_route`) and resolves with its outcome; rejects `ROUTE_STOPPED` after stop. */
  startRoute(entryId: unknown, args: M, meta?: Meta, options?: StartRouteOptions): Promise<Outcome>;
}

/**
 * Something that delivers messages to a route and settles their outcomes (respond, ack, nack,
 * requeue, dead-letter). Lifecycle: `bind` (once, by the route), `start` (begin intake), `stop`
 * (stop intake, hand back what it holds unstarted), `close` (release everything, after the drain).
 * `republish` is present when the entrypoint can carry asynchronous retries.
 */
export interface Entrypoint<M = unknown> {
  /** `'http'`, `'timer'`, `'memory'`, `'bullmq'`, ... */
  readonly kind: string;
  /** Unique enough to tell entrypoints apart in logs and drain reports. */
  readonly name: string;
  bind(route: RouteHandle<M>): void;
  start(): Promise<void>;
  stop(): Promise<{ returned: EntryRef[] }>;
  close(): Promise<void>;
  /** Publishes a retry of `delivery`'s message after `delayMs` (durable when the transport is). */
  republish?(delivery: Delivery, payload: RepublishPayload, delayMs: number): Promise<void>;
  /** Type-level marker of the message type; never set. */
  readonly __message?: M;
}

/** The message type an entrypoint (or a list of them) delivers. */
export type MessageOf<E> = E extends readonly (infer X)[]
  ? X extends Entrypoint<infer M>
    ? M
    : never
  : E extends Entrypoint<infer M>
    ? M
    : never;
