import type { IncomingMessage } from 'node:http';
import type { Disposer } from '@x/resilience';
import type { DispatcherEvent } from './dispatcherEvent.js';
import type { DispatchRule } from './dispatchRules.js';
import type {
  FrontDoorOptions,
  HttpFrontDoor,
  ListenOptions,
  MountedFrontDoor,
} from './frontDoorOptions.js';
import type { EventHandle, EventHandler, EventRunnable } from './internal/eventScheduler.js';
import type { VersionStats } from './internal/versionPool.js';
import type { RouteDecision } from './routeDecision.js';
import type { TrafficSplit } from './trafficSplit.js';
import type { DispatchRequest, InstanceInfo, ResponseTuple } from './types.js';

/** An `addAsyncRequest` in progress. */
export interface AsyncRequest {
  readonly requestId: string;
  /** Settles with the response, or rejects with a typed error. */
  readonly settled: Promise<ResponseTuple>;
}

/** Options of `sendBackgroundRequest`. */
export interface BackgroundRequestOptions {
  readonly signal?: AbortSignal;
  /** Default: the dispatcher's `backgroundTimeoutMs`. */
  readonly timeoutMs?: number;
}

/** Everything `stats()` reports. */
export interface DispatcherStats {
  readonly versions: readonly VersionStats[];
  readonly events: { readonly pending: number };
  readonly asyncRequests: { readonly running: number; readonly queued: number };
  readonly rules: number;
}

/** App Engine's dispatcher: the Modules API, requests, events, routing and the front door. */
export interface Dispatcher extends AsyncDisposable {
  /** Starts manual instances, the autoscalers, the rule watcher and loads stored events. Idempotent; other methods call it. */
  start(): Promise<void>;
  /** Stops everything: front doors, timers, events, instances (child processes killed and reaped). */
  close(options?: { readonly drainTimeoutMs?: number }): Promise<void>;

  getModuleNames(): string[];
  /** @throws ModuleDoesNotExistError */
  getVersions(module: string): string[];
  /** @throws ModuleDoesNotExistError */
  getDefaultVersion(module: string): string;
  /**
   * `[instance.][version.]module.<host>[:port]`, the name that routes to it through the front door.
   * @throws ModuleDoesNotExistError, VersionDoesNotExistError, InvalidInstanceIdError
   */
  getHostname(module: string, version?: string, instance?: string): string;
  /** Manual: instance count; basic: the maximum. @throws NotSupportedWithAutoScalingError */
  getNumInstances(module: string, version: string): number;
  /** Manual: starts or drains instances; basic: sets the maximum. @throws NotSupportedWithAutoScalingError */
  setNumInstances(module: string, version: string, instances: number): Promise<void>;
  /** @throws VersionAlreadyStartedError, NotSupportedWithAutoScalingError */
  startVersion(module: string, version: string): Promise<void>;
  /** @throws VersionAlreadyStoppedError, NotSupportedWithAutoScalingError */
  stopVersion(module: string, version: string): Promise<void>;
  /** Snapshots of the instances of a version (pids, ports, load). */
  getInstances(module: string, version: string): InstanceInfo[];

  /** Routes and runs a request; resolves with the response tuple. */
  addRequest(request: DispatchRequest): Promise<ResponseTuple>;
  /** Like `addRequest`, without waiting: bounded (NO_CAPACITY when full), outcome in `settled`. */
  addAsyncRequest(request: DispatchRequest): AsyncRequest;
  /**
   * `GET /_ah/background` with `X-AppEngine-BackgroundRequest: <id>` on a background slot of the
   * instance (`maxBackgroundThreads`, separate from request slots).
   */
  sendBackgroundRequest(
    module: string,
    version: string,
    instance: string,
    backgroundRequestId: string,
    options?: BackgroundRequestOptions,
  ): Promise<ResponseTuple>;

  /** Runs `runnable` at `eta` (epoch ms or Date); `service` + `eventId` make it a keyed event. */
  addEvent(
    runnable: EventRunnable,
    eta: number | Date,
    service?: string,
    eventId?: string,
  ): Promise<EventHandle>;
  /** Moves a pending keyed event; false when none is pending (App Engine silently did nothing). */
  updateEvent(eta: number | Date, service: string, eventId: string): Promise<boolean>;
  /** Cancels a pending keyed event; false when none is pending. */
  cancelEvent(service: string, eventId: string): Promise<boolean>;
  /** Registers a named handler for durable events. */
  registerEventHandler(name: string, handler: EventHandler): void;

  /** Where `request` would go and why (rule, module, version, instance). Throws what `addRequest` would. */
  explain(request: DispatchRequest): RouteDecision;
  /** Replaces the dispatch rules (a list or `dispatch.yaml` text). */
  setRules(rules: readonly DispatchRule[] | string): void;
  /** Re-reads the rule file now; true when new rules were loaded. */
  reloadRules(): Promise<boolean>;
  /** Replaces the traffic splits. */
  setSplit(split: readonly TrafficSplit[]): void;

  /** Serves real HTTP traffic on its own `node:http` server (a {@link mount} of its own). */
  listen(options?: ListenOptions): Promise<HttpFrontDoor>;
  /**
   * The front door as listeners for a server of yours: `handler(req, res, next?)`, `upgrade`,
   * `matches(req)`. Closed with the dispatcher. Starts the dispatcher on the first request.
   */
  mount(options?: FrontDoorOptions): MountedFrontDoor;
  /** `mount()`'s handler with default options (made on first use). */
  readonly handler: MountedFrontDoor['handler'];
  /** `mount()`'s upgrade listener with default options. */
  readonly upgrade: MountedFrontDoor['upgrade'];
  /** `mount()`'s `matches` with default options. */
  matches(req: IncomingMessage): boolean;
  /** Subscribes to instance, scaling, rule, event and async-request events. */
  on(listener: (event: DispatcherEvent) => void): Disposer;
  stats(): DispatcherStats;
}
