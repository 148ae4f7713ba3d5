import type { Clock, Logger, Metrics } from '@x/resilience';
import type { DispatchRule } from './dispatchRules.js';
import type { EventStore } from './eventStore.js';
import type { EventHandler } from './internal/eventScheduler.js';
import type { TrafficSplit } from './trafficSplit.js';
import type { ModuleSpec } from './versionSpec.js';

/** Dispatch rules: a list, `dispatch.yaml` text, or a file that is hot-reloaded. */
export type RulesOption =
  readonly DispatchRule[] | string | { readonly file: string; readonly pollIntervalMs?: number };

/** Options of `createDispatcher()`. */
export interface DispatcherOptions {
  /** Module name → its versions. Names must be lowercase host-name labels. */
  readonly modules: Readonly<Record<string, ModuleSpec>>;
  /** Dispatch rules (`dispatch.yaml` semantics). A `{ file }` is polled every `pollIntervalMs` (default 1 000 ms). */
  readonly rules?: RulesOption;
  /** Most dispatch rules accepted (in `rules`, reloads and `setRules`). Default 20, App Engine's limit; raise it to lift the limit. */
  readonly maxRules?: number;
  /** Weighted, sticky splits of a module's traffic between its versions. */
  readonly split?: readonly TrafficSplit[];
  /** Module for requests nothing else routes. Default `'default'` if it exists, else the first module. */
  readonly defaultModule?: string;
  /** App Engine's fallback (unknown module → default → any module). Default false: unknown modules are a 404. */
  readonly softRouting?: boolean;
  /** Host name the Host header is parsed against (`[instance.][version.]module.<host>`). Default `'localhost'`. */
  readonly host?: string;
  /** Timers of the autoscaler, restarts, health checks and events. Default the system clock. */
  readonly clock?: Clock;
  /** Epoch ms for event etas. Default `Date.now` (or `clock.now` when a clock is injected). */
  readonly now?: () => number;
  /** Random source in [0, 1) for split buckets. Default `Math.random`. */
  readonly random?: () => number;
  /** Where scheduled events live. Default `memoryEventStore()`. The dispatcher closes it. */
  readonly eventStore?: EventStore;
  /** Named handlers for durable events (`addEvent({ handler, payload }, …)`). */
  readonly eventHandlers?: Readonly<Record<string, EventHandler>>;
  /** Pending events kept. Default 100 000. */
  readonly maxEvents?: number;
  /** Events running at once. Default 16. */
  readonly maxConcurrentEvents?: number;
  /** How long a claimed durable event stays claimed before another run may take it. Default 60 000 ms. */
  readonly eventLeaseMs?: number;
  /**
   * Failover with a shared durable store: an event still pending this long after its eta (its
   * dispatcher died) is taken over by another dispatcher; the claim lets exactly one run it.
   * Default 3 000 ms (`internal/eventTakeover.ts`).
   */
  readonly eventTakeoverMs?: number;
  /** `addAsyncRequest`s running at once. Default 64. */
  readonly maxAsyncRequests?: number;
  /** `addAsyncRequest`s waiting to run. Default 1 000; beyond that NO_CAPACITY. */
  readonly maxQueuedAsyncRequests?: number;
  /** Deadline of `addRequest` (and of the wait for an instance at the front door). Default 60 000 ms. */
  readonly requestTimeoutMs?: number;
  /** Deadline of background requests. Default 3 600 000 ms. */
  readonly backgroundTimeoutMs?: number;
  /** Largest request body. Default 32 MiB (App Engine's limit). */
  readonly maxBodyBytes?: number;
  /** Largest response body collected by `addRequest`. Default 32 MiB. */
  readonly maxResponseBytes?: number;
  /** undici pools to instance origins. */
  readonly upstream?: {
    /** Connections per instance. Default `maxConcurrentRequests + maxBackgroundThreads`. */
    readonly connections?: number;
    /**
     * Requests in flight at once on one upstream connection (HTTP/1.1 pipelining; undici only
     * pipelines idempotent requests without a streamed body, others wait for the connection).
     * Default 1. More saves CPU on both sides (fewer reads and wake-ups per request), but a slow
     * response delays those pipelined behind it, and a request aborted mid-flight (deadline,
     * client gone) closes its connection: the request at the head of it may fail (502) and those
     * behind it are sent again. Use it for fast, uniform, idempotent GETs. Health probes and
     * lifecycle requests get a connection of their own.
     */
    readonly pipelining?: number;
    /** Default 4 000 ms (below Node's 5 s server keep-alive). */
    readonly keepAliveTimeoutMs?: number;
    /** Wait for response headers. Default 60 000 ms. */
    readonly headersTimeoutMs?: number;
    /** Idle time between body chunks. Default 60 000 ms. */
    readonly bodyTimeoutMs?: number;
  };
  /** pino-compatible logger. Default silent. */
  readonly logger?: Logger;
  /** Metrics sink (`dispatcher.requests`, `dispatcher.request.duration`, `dispatcher.cold_start`, …). */
  readonly metrics?: Metrics;
}
