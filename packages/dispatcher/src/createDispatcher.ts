import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import {
  AbortedError,
  Emitter,
  noopMetrics,
  silentLogger,
  systemClock,
  type Clock,
  type Disposer,
  type Logger,
  type Metrics,
  DEADLINE_HEADER,
  deadlineHeaderValue,
  readDeadlineHeader,
} from '@x/resilience';
import type { DispatcherEvent } from './dispatcherEvent.js';
import {
  compileDispatchRules,
  noDispatchRules,
  parseDispatchYaml,
  type DispatchRule,
  type DispatchRuleSet,
} from './dispatchRules.js';
import {
  BackgroundThreadLimitReachedError,
  DeadlineExceededError,
  DispatcherClosedError,
  InvalidConfigError,
  InvalidInstanceIdError,
  InvalidRequestError,
  ModuleDoesNotExistError,
  NoCapacityError,
  NotSupportedWithAutoScalingError,
  VersionDoesNotExistError,
  VersionStoppedError,
} from './errors.js';
import { memoryEventStore, type EventStore } from './eventStore.js';
import { isHostLabel } from './hostHeader.js';
import { adminApi } from './internal/adminApi.js';
import { bodyToIterable } from './internal/body.js';
import {
  EventScheduler,
  type EventHandle,
  type EventHandler,
  type EventRunnable,
} from './internal/eventScheduler.js';
import { exchangeToTuple, type PreparedRequest } from './internal/exchange.js';
import { FrontDoorHandler, type FrontDoorHost } from './internal/frontDoorHandler.js';
import { FrontDoorServer } from './internal/frontDoorServer.js';
import {
  frontDoorHandlerSettings,
  frontDoorServerSettings,
  type FrontDoorOptions,
  type HttpFrontDoor,
  type ListenOptions,
  type MountedFrontDoor,
} from './frontDoorOptions.js';
import { getHeader, isMethod, toHeaderList } from './internal/headers.js';
import type { Instance, UpstreamOptions } from './internal/instance.js';
import { Router, type RoutedModule, type RouterState } from './internal/router.js';
import { RuleFile } from './internal/ruleFile.js';
import { durationOption } from './internal/durationOption.js';
import { positiveOption, timerOption } from './internal/positiveOption.js';
import { every, timeoutSignal } from './internal/timers.js';
import { VersionPool, type Deadline, type VersionStats } from './internal/versionPool.js';
import type { RouteDecision } from './routeDecision.js';
import { CompiledSplit, type TrafficSplit } from './trafficSplit.js';
import type { DispatchRequest, HeaderList, InstanceInfo, ResponseTuple } from './types.js';
import { normalizeVersionSpec, type ModuleSpec } from './versionSpec.js';

export type { EventHandle, EventHandler, EventRunnable } from './internal/eventScheduler.js';
export type { VersionStats } from './internal/versionPool.js';
export type {
  FrontDoorOptions,
  HttpFrontDoor,
  ListenOptions,
  MountedFrontDoor,
} from './frontDoorOptions.js';

/** Dispatch rules: a list, `dispatch.yaml` text, or a file that is hot-reloaded. */
export type RulesOption =
  readonly DispatchRule[] | string | { readonly file: string; readonly pollIntervalMs?: number };

/** Options of {@link createDispatcher}. */
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
  /** Where scheduled events live. Default {@link memoryEventStore}. The dispatcher closes it. */
  readonly eventStore?: EventStore;
  /** Named handlers for durable events (`addEvent({ handler, payload }, …)`). */
  readonly eventHandlers?: Readonly<Record<string, EventHandler>>;
  /** Pending events kept. Default 100 000. */
  readonly maxEvents?: number;
  /** Events running at once. Default 16. */
  readonly maxConcurrentEvents?: number;
  /** How long a claimed durable event stays claimed before another run may take it. Default 60 000 ms. */
  readonly eventLeaseMs?: number;
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

const DEFAULT_SOURCE_IP = '0.1.0.1';
const BACKGROUND_SOURCE_IP = '0.1.0.3';
const MIB = 1024 * 1024;

/**
 * Creates a dispatcher. Validation happens here (typed `INVALID_CONFIG` / `INVALID_DISPATCH_RULE`
 * errors); instances start on `start()`, which every other async method calls first.
 *
 * ```ts
 * const dispatcher = createDispatcher({
 *   modules: { default: { versions: { v1: { backend: inProcess(() => ({ body: 'hi' })) } } } },
 * });
 * const { status, body } = await dispatcher.addRequest({ url: '/' });
 * ```
 */
export function createDispatcher(options: DispatcherOptions): Dispatcher {
  return new DispatcherImpl(options);
}

class DispatcherImpl implements Dispatcher, FrontDoorHost {
  readonly clock: Clock;
  readonly log: Logger;
  readonly requestTimeoutMs: number;
  private readonly metrics: Metrics;
  private readonly now: () => number;
  private readonly modules = new Map<string, RoutedModule>();
  private readonly pools: VersionPool[] = [];
  private readonly router: Router;
  private readonly routerState: RouterState;
  private readonly events = new Emitter<DispatcherEvent>();
  private readonly scheduler: EventScheduler;
  private readonly store: EventStore;
  private readonly handlers = new Map<string, EventHandler>();
  private readonly ruleFile: RuleFile | undefined;
  private readonly rulePollMs: number;
  private readonly maxRules: number | undefined;
  private ruleWatcher: { stop: () => void } | undefined;
  private readonly baseHost: string;
  private readonly maxBodyBytes: number;
  private readonly maxResponseBytes: number;
  private readonly backgroundTimeoutMs: number;
  private readonly maxAsync: number;
  private readonly maxQueuedAsync: number;
  private asyncRunning = 0;
  private readonly asyncQueue: Array<() => void> = [];
  /** Mounted and listening front doors: closed with the dispatcher. */
  private readonly frontDoors = new Set<{ close(): Promise<void> }>();
  private defaultDoor: MountedFrontDoor | undefined;
  /** True once start() finished. */
  started = false;
  private listeningPort: number | undefined;
  private startPromise: Promise<void> | undefined;
  private closePromise: Promise<void> | undefined;
  private closed = false;

  constructor(options: DispatcherOptions) {
    if (typeof options !== 'object' || options === null)
      throw new InvalidConfigError('createDispatcher() needs options');
    this.clock = options.clock ?? systemClock;
    if (typeof this.clock.now !== 'function' || typeof this.clock.setTimeout !== 'function')
      throw new InvalidConfigError('clock must be a Clock (now, setTimeout, clearTimeout)');
    this.now = options.now ?? (options.clock ? () => this.clock.now() : Date.now);
    this.log = options.logger ?? silentLogger;
    this.metrics = options.metrics ?? noopMetrics;
    const random = options.random ?? Math.random;
    if (typeof random !== 'function') throw new InvalidConfigError('random must be a function');
    const deadline = { exclusiveMin: true };
    this.requestTimeoutMs = durationOption(
      options.requestTimeoutMs ?? 60_000,
      'requestTimeoutMs',
      deadline,
    );
    this.backgroundTimeoutMs = durationOption(
      options.backgroundTimeoutMs ?? 3_600_000,
      'backgroundTimeoutMs',
      deadline,
    );
    this.maxBodyBytes = positiveOption('maxBodyBytes', options.maxBodyBytes, 32 * MIB, true);
    this.maxResponseBytes = positiveOption(
      'maxResponseBytes',
      options.maxResponseBytes,
      32 * MIB,
      true,
    );
    this.maxAsync = positiveOption('maxAsyncRequests', options.maxAsyncRequests, 64, true);
    this.maxQueuedAsync =
      options.maxQueuedAsyncRequests === 0
        ? 0
        : positiveOption('maxQueuedAsyncRequests', options.maxQueuedAsyncRequests, 1_000, true);
    const host = options.host ?? 'localhost';
    if (
      typeof host !== 'string' ||
      host === '' ||
      host.includes(':') ||
      host !== host.toLowerCase()
    )
      throw new InvalidConfigError('host must be a lowercase host name without port');
    this.baseHost = host;
    const up = options.upstream ?? {};
    const upstream: UpstreamOptions = {
      connections:
        up.connections === undefined
          ? undefined
          : positiveOption('upstream.connections', up.connections, 1, true),
      keepAliveTimeoutMs: timerOption(
        up.keepAliveTimeoutMs ?? 4_000,
        'upstream.keepAliveTimeoutMs',
      ),
      headersTimeoutMs: timerOption(up.headersTimeoutMs ?? 60_000, 'upstream.headersTimeoutMs'),
      bodyTimeoutMs: timerOption(up.bodyTimeoutMs ?? 60_000, 'upstream.bodyTimeoutMs'),
    };

    const specs = options.modules;
    if (typeof specs !== 'object' || specs === null || Object.keys(specs).length === 0)
      throw new InvalidConfigError('modules must name at least one module');
    const services = {
      clock: this.clock,
      log: this.log,
      metrics: this.metrics,
      upstream,
      emit: (event: DispatcherEvent) => this.emit(event),
    };
    for (const [name, spec] of Object.entries(specs)) {
      if (!isHostLabel(name) || name !== name.toLowerCase())
        throw new InvalidConfigError(
          `module name ${JSON.stringify(name)} must be a lowercase host-name label`,
        );
      if (
        typeof spec !== 'object' ||
        spec === null ||
        typeof spec.versions !== 'object' ||
        spec.versions === null
      )
        throw new InvalidConfigError(`module ${name}: versions must be an object`);
      const versionNames = Object.keys(spec.versions);
      if (versionNames.length === 0) throw new InvalidConfigError(`module ${name} has no version`);
      const versions = new Map<string, VersionPool>();
      for (const version of versionNames) {
        if (!isHostLabel(version) || version !== version.toLowerCase())
          throw new InvalidConfigError(
            `version name ${JSON.stringify(version)} must be a lowercase host-name label`,
          );
        const normalized = normalizeVersionSpec(`${name}/${version}`, spec.versions[version]!);
        const pool = new VersionPool(name, version, normalized, services);
        versions.set(version, pool);
        this.pools.push(pool);
      }
      const defaultVersion = spec.defaultVersion ?? versionNames[0]!;
      if (!versions.has(defaultVersion))
        throw new InvalidConfigError(
          `module ${name}: default version ${JSON.stringify(defaultVersion)} does not exist`,
        );
      this.modules.set(name, { name, defaultVersion, versions });
    }
    const defaultModule =
      options.defaultModule ??
      (this.modules.has('default') ? 'default' : this.modules.keys().next().value!);
    if (!this.modules.has(defaultModule))
      throw new InvalidConfigError(
        `default module ${JSON.stringify(defaultModule)} does not exist`,
      );

    const ruleOptions = {
      modules: [...this.modules.keys()],
      ...(options.maxRules !== undefined ? { maxRules: options.maxRules } : {}),
    };
    this.maxRules = options.maxRules;
    let rules: DispatchRuleSet = noDispatchRules;
    const rulesOption = options.rules;
    this.rulePollMs = 1_000;
    if (typeof rulesOption === 'string') rules = parseDispatchYaml(rulesOption, ruleOptions);
    else if (Array.isArray(rulesOption))
      rules = compileDispatchRules(rulesOption as DispatchRule[], ruleOptions);
    else if (rulesOption !== undefined) {
      const { file, pollIntervalMs } = rulesOption as { file: string; pollIntervalMs?: number };
      if (typeof file !== 'string' || file === '')
        throw new InvalidConfigError('rules.file must be a path');
      this.rulePollMs = timerOption(pollIntervalMs ?? 1_000, 'rules.pollIntervalMs');
      this.ruleFile = new RuleFile(file, ruleOptions);
      rules = this.ruleFile.loadSync();
    }
    this.routerState = { rules, splits: this.compileSplits(options.split ?? []) };
    this.router = new Router(
      this.modules,
      this.routerState,
      defaultModule,
      host,
      options.softRouting ?? false,
      random,
    );

    for (const [name, handler] of Object.entries(options.eventHandlers ?? {}))
      this.registerEventHandler(name, handler);
    this.store = options.eventStore ?? memoryEventStore();
    if (
      typeof this.store !== 'object' ||
      this.store === null ||
      typeof this.store.claim !== 'function'
    )
      throw new InvalidConfigError('eventStore must implement EventStore');
    this.scheduler = new EventScheduler({
      clock: this.clock,
      now: this.now,
      store: this.store,
      handlers: this.handlers,
      maxEvents: positiveOption('maxEvents', options.maxEvents, 100_000, true),
      maxConcurrent: positiveOption('maxConcurrentEvents', options.maxConcurrentEvents, 16, true),
      leaseMs: timerOption(options.eventLeaseMs ?? 60_000, 'eventLeaseMs'),
      emit: event => this.emit(event),
      log: this.log,
    });
  }

  private compileSplits(splits: readonly TrafficSplit[]): Map<string, CompiledSplit> {
    if (!Array.isArray(splits)) throw new InvalidConfigError('split must be a list');
    const out = new Map<string, CompiledSplit>();
    for (const split of splits) {
      const mod = this.modules.get(split?.module);
      if (!mod)
        throw new InvalidConfigError(
          `split: module ${JSON.stringify(split?.module)} does not exist`,
        );
      if (out.has(mod.name))
        throw new InvalidConfigError(`split: module ${mod.name} is split twice`);
      out.set(mod.name, new CompiledSplit(split, new Set(mod.versions.keys())));
    }
    return out;
  }

  private emit(event: DispatcherEvent): void {
    if (this.events.active) this.events.emit(event);
    if (event.type === 'error')
      this.log.error({ err: event.error, where: event.where }, 'dispatcher error');
    // an instance that died on its own is one warning line, not a stack
    else if (event.type === 'instance-died')
      this.log.warn(
        {
          module: event.module,
          version: event.version,
          instance: event.instance,
          pid: event.pid,
          reason: event.signal ?? `exit code ${event.code}`,
        },
        'instance died',
      );
  }

  // ---- lifecycle -------------------------------------------------------------------------

  start(): Promise<void> {
    if (this.closed) return Promise.reject(new DispatcherClosedError());
    this.startPromise ??= (async () => {
      await Promise.all(this.pools.map(pool => pool.start()));
      await this.scheduler.start();
      if (this.ruleFile && !this.closed) {
        this.ruleWatcher = every(
          this.clock,
          this.rulePollMs,
          () => this.pollRules().then(() => {}),
          error => this.emit({ type: 'error', where: 'rule watcher', error }),
        );
      }
      this.started = true;
    })();
    return this.startPromise;
  }

  ensureStarted(): Promise<void> {
    return this.start();
  }

  close(options: { readonly drainTimeoutMs?: number } = {}): Promise<void> {
    this.closePromise ??= (async () => {
      this.closed = true;
      await Promise.allSettled([...this.frontDoors].map(door => door.close()));
      this.ruleWatcher?.stop();
      for (const run of this.asyncQueue.splice(0)) run();
      await this.startPromise?.catch(() => {});
      await this.scheduler.close(5_000);
      await Promise.allSettled(this.pools.map(pool => pool.close(options.drainTimeoutMs)));
      await this.store.close().catch(() => {});
    })();
    return this.closePromise;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- Modules API -----------------------------------------------------------------------

  private module(name: string): RoutedModule {
    const mod = typeof name === 'string' ? this.modules.get(name) : undefined;
    if (!mod) throw new ModuleDoesNotExistError(String(name));
    return mod;
  }

  private versionPool(module: string, version: string): VersionPool {
    const mod = this.module(module);
    const pool = typeof version === 'string' ? mod.versions.get(version) : undefined;
    if (!pool) throw new VersionDoesNotExistError(mod.name, String(version));
    return pool;
  }

  private controllable(module: string, version: string, operation: string): VersionPool {
    const pool = this.versionPool(module, version);
    if (pool.kind === 'automatic')
      throw new NotSupportedWithAutoScalingError(module, version, operation);
    return pool;
  }

  getModuleNames(): string[] {
    return [...this.modules.keys()];
  }

  getVersions(module: string): string[] {
    return [...this.module(module).versions.keys()];
  }

  getDefaultVersion(module: string): string {
    return this.module(module).defaultVersion;
  }

  getHostname(module: string, version?: string, instance?: string): string {
    const mod = this.module(module);
    const port =
      this.listeningPort !== undefined && this.listeningPort !== 80 ? `:${this.listeningPort}` : '';
    if (version === undefined) {
      if (instance !== undefined)
        throw new InvalidInstanceIdError(
          mod.name,
          mod.defaultVersion,
          instance,
          'give the version with the instance',
        );
      return `${mod.name}.${this.baseHost}${port}`;
    }
    const pool = this.versionPool(module, version);
    if (instance === undefined) return `${version}.${mod.name}.${this.baseHost}${port}`;
    if (pool.kind === 'automatic')
      throw new InvalidInstanceIdError(
        mod.name,
        version,
        String(instance),
        'instances of automatic scaling are not addressable',
      );
    if (!pool.instances.has(instance))
      throw new InvalidInstanceIdError(mod.name, version, String(instance));
    return `${instance}.${version}.${mod.name}.${this.baseHost}${port}`;
  }

  getNumInstances(module: string, version: string): number {
    return this.controllable(module, version, 'getNumInstances').getNumInstances();
  }

  async setNumInstances(module: string, version: string, instances: number): Promise<void> {
    const pool = this.controllable(module, version, 'setNumInstances');
    await this.start();
    await pool.setNumInstances(instances);
  }

  async startVersion(module: string, version: string): Promise<void> {
    const pool = this.controllable(module, version, 'startVersion');
    await this.start();
    await pool.startVersion();
  }

  async stopVersion(module: string, version: string): Promise<void> {
    const pool = this.controllable(module, version, 'stopVersion');
    await this.start();
    await pool.stopVersion();
  }

  getInstances(module: string, version: string): InstanceInfo[] {
    return this.versionPool(module, version).infos();
  }

  // ---- routing ---------------------------------------------------------------------------

  route(
    path: string,
    host: string | undefined,
    cookie: string | undefined,
    sourceIp: string,
    headers: () => HeaderList,
  ): RouteDecision {
    return this.router.resolve({ path, host, cookie, sourceIp, headers, target: undefined }, false);
  }

  pool(decision: RouteDecision): VersionPool {
    if (this.closed) throw new DispatcherClosedError();
    return this.modules.get(decision.module)!.versions.get(decision.version)!;
  }

  private prepare(request: DispatchRequest): {
    decision: RouteDecision;
    prepared: PreparedRequest;
  } {
    if (typeof request !== 'object' || request === null)
      throw new InvalidRequestError('request must be an object');
    const method = request.method ?? 'GET';
    if (typeof method !== 'string' || !isMethod(method))
      throw new InvalidRequestError(`invalid method ${JSON.stringify(method)}`);
    const url = request.url;
    if (
      typeof url !== 'string' ||
      url.charCodeAt(0) !== 47 ||
      url.length > 65_536 ||
      /[\s\0]/.test(url)
    )
      throw new InvalidRequestError(
        'url must be a path starting with / (no spaces or control characters)',
      );
    const sourceIp = request.sourceIp ?? DEFAULT_SOURCE_IP;
    if (typeof sourceIp !== 'string') throw new InvalidRequestError('sourceIp must be a string');
    for (const key of ['module', 'version', 'instance'] as const) {
      const value = request[key];
      if (value !== undefined && typeof value !== 'string')
        throw new InvalidRequestError(`${key} must be a string`);
    }
    const headers = toHeaderList(request.headers);
    const q = url.indexOf('?');
    const decision = this.router.resolve(
      {
        path: q < 0 ? url : url.slice(0, q),
        host: getHeader(headers, 'host'),
        cookie: getHeader(headers, 'cookie'),
        sourceIp,
        headers: () => headers,
        target: request,
      },
      false,
    );
    if (getHeader(headers, 'x-forwarded-for') === undefined)
      headers.push(['x-forwarded-for', sourceIp]);
    if (getHeader(headers, 'x-request-id') === undefined)
      headers.push(['x-request-id', randomUUID()]);
    const body = bodyToIterable(request.body);
    return { decision, prepared: { method, url, headers, body, sourceIp, kind: 'normal' } };
  }

  explain(request: DispatchRequest): RouteDecision {
    if (typeof request !== 'object' || request === null)
      throw new InvalidRequestError('request must be an object');
    const url = request.url;
    if (typeof url !== 'string' || url.charCodeAt(0) !== 47)
      throw new InvalidRequestError('url must be a path starting with /');
    const headers = toHeaderList(request.headers);
    const q = url.indexOf('?');
    return this.router.resolve(
      {
        path: q < 0 ? url : url.slice(0, q),
        host: getHeader(headers, 'host'),
        cookie: getHeader(headers, 'cookie'),
        sourceIp: request.sourceIp ?? DEFAULT_SOURCE_IP,
        headers: () => headers,
        target: request,
      },
      true,
    );
  }

  setRules(rules: readonly DispatchRule[] | string): void {
    const options = {
      modules: [...this.modules.keys()],
      ...(this.maxRules !== undefined ? { maxRules: this.maxRules } : {}),
    };
    this.routerState.rules =
      typeof rules === 'string'
        ? parseDispatchYaml(rules, options)
        : compileDispatchRules(rules, options);
  }

  async reloadRules(): Promise<boolean> {
    if (!this.ruleFile) throw new InvalidConfigError('no rules file configured');
    return this.pollRules();
  }

  private async pollRules(): Promise<boolean> {
    const file = this.ruleFile!;
    try {
      const rules = await file.poll();
      if (!rules) return false;
      this.routerState.rules = rules;
      this.emit({ type: 'rules-reloaded', file: file.path, rules: rules.size });
      return true;
    } catch (error) {
      this.log.warn(
        { err: error, file: file.path },
        'dispatch rules not reloaded; keeping the previous rules',
      );
      this.emit({ type: 'rules-reload-failed', file: file.path, error });
      return false;
    }
  }

  setSplit(split: readonly TrafficSplit[]): void {
    this.routerState.splits = this.compileSplits(split);
  }

  // ---- requests --------------------------------------------------------------------------

  async addRequest(request: DispatchRequest): Promise<ResponseTuple> {
    if (this.closed) throw new DispatcherClosedError();
    const { decision, prepared } = this.prepare(request);
    const ownMs =
      request.timeoutMs === undefined
        ? this.requestTimeoutMs
        : durationOption(request.timeoutMs, 'timeoutMs', { exclusiveMin: true, request: true });
    // a budget in the request's headers (x-request-timeout-ms) shortens the deadline
    const headerMs = readDeadlineHeader(
      { [DEADLINE_HEADER]: prepared.headers.filter(h => h[0] === DEADLINE_HEADER).map(h => h[1]) },
      { maxMs: ownMs },
    );
    if (headerMs === 0) throw new DeadlineExceededError(0); // the caller stopped waiting already
    const timeoutMs = headerMs ?? ownMs;
    if (request.signal?.aborted) throw new AbortedError({ cause: request.signal.reason });
    await this.start();
    const pool = this.pool(decision);
    const startedAt = this.clock.now();
    const deadline: Deadline = { at: startedAt + timeoutMs, timeoutMs };
    const { signal, clear } = timeoutSignal(
      this.clock,
      timeoutMs,
      () => new DeadlineExceededError(timeoutMs),
      request.signal,
    );
    let instance: Instance | undefined;
    let ok = false;
    try {
      instance =
        decision.instance !== undefined
          ? await pool.acquireInstance(decision.instance, deadline, signal)
          : await pool.acquire(deadline, signal);
      const tuple = await exchangeToTuple(
        instance,
        withBudget(prepared, deadline.at - this.clock.now()),
        { maxBodyBytes: this.maxBodyBytes, maxResponseBytes: this.maxResponseBytes },
        signal,
      );
      ok = tuple.status < 500;
      instance.answered();
      if (decision.setCookie) tuple.headers.push(['set-cookie', decision.setCookie]);
      return tuple;
    } catch (error) {
      // the instance held the request past its deadline: counts towards passive ejection
      if (instance !== undefined && signal.reason instanceof DeadlineExceededError)
        instance.requestTimedOut();
      throw signal.aborted ? abortFailure(signal.reason) : error;
    } finally {
      clear();
      if (instance) {
        const durationMs = this.clock.now() - startedAt;
        pool.release(instance, ok, durationMs);
      }
    }
  }

  addAsyncRequest(request: DispatchRequest): AsyncRequest {
    if (this.closed) throw new DispatcherClosedError();
    this.prepare(request); // route now: bad requests fail synchronously
    if (this.asyncRunning >= this.maxAsync && this.asyncQueue.length >= this.maxQueuedAsync) {
      throw new NoCapacityError(
        `${this.asyncRunning} async requests running and ${this.asyncQueue.length} queued (maxAsyncRequests / maxQueuedAsyncRequests)`,
        'async-requests',
        1_000,
      );
    }
    const requestId = randomUUID();
    const settled = new Promise<ResponseTuple>((resolve, reject) => {
      const run = () => {
        if (this.closed) {
          reject(new DispatcherClosedError());
          return;
        }
        this.asyncRunning++;
        this.addRequest(request)
          .then(resolve, reject)
          .finally(() => {
            this.asyncRunning--;
            const next = this.asyncQueue.shift();
            if (next) next();
          });
      };
      if (this.asyncRunning < this.maxAsync) run();
      else this.asyncQueue.push(run);
    });
    settled.then(
      tuple =>
        this.emit({
          type: 'async-request-settled',
          requestId,
          status: tuple.status,
          error: undefined,
        }),
      error => this.emit({ type: 'async-request-settled', requestId, status: undefined, error }),
    );
    return { requestId, settled };
  }

  async sendBackgroundRequest(
    module: string,
    version: string,
    instance: string,
    backgroundRequestId: string,
    options: BackgroundRequestOptions = {},
  ): Promise<ResponseTuple> {
    if (this.closed) throw new DispatcherClosedError();
    const pool = this.controllable(module, version, 'sendBackgroundRequest');
    if (
      typeof backgroundRequestId !== 'string' ||
      backgroundRequestId === '' ||
      /[\r\n\0]/.test(backgroundRequestId)
    )
      throw new InvalidRequestError(
        'backgroundRequestId must be a non-empty string without line breaks',
      );
    const target = pool.instances.get(instance);
    if (!target) throw new InvalidInstanceIdError(module, version, String(instance));
    await this.start();
    if (pool.stopped) throw new VersionStoppedError(module, version);
    const timeoutMs =
      options.timeoutMs === undefined
        ? this.backgroundTimeoutMs
        : durationOption(options.timeoutMs, 'timeoutMs', { exclusiveMin: true, request: true });
    if (target.state !== 'ready') {
      const ready =
        target.state === 'stopped' && pool.kind === 'basic'
          ? target.start('start')
          : target.whenReady();
      if (!ready)
        throw new NoCapacityError(
          `instance ${instance} of ${module}/${version} is ${target.state}`,
          'instances',
          1_000,
        );
      await ready;
    }
    if (!target.reserveBackground())
      throw new BackgroundThreadLimitReachedError(
        module,
        version,
        instance,
        pool.spec.maxBackgroundThreads,
      );
    const { signal, clear } = timeoutSignal(
      this.clock,
      timeoutMs,
      () => new DeadlineExceededError(timeoutMs),
      options.signal,
    );
    try {
      return await exchangeToTuple(
        target,
        {
          method: 'GET',
          url: '/_ah/background',
          headers: [
            ['x-appengine-backgroundrequest', backgroundRequestId],
            ['x-forwarded-for', BACKGROUND_SOURCE_IP],
          ],
          body: null,
          sourceIp: BACKGROUND_SOURCE_IP,
          kind: 'background',
        },
        { maxBodyBytes: this.maxBodyBytes, maxResponseBytes: this.maxResponseBytes },
        signal,
      );
    } catch (error) {
      throw signal.aborted ? abortFailure(signal.reason) : error;
    } finally {
      clear();
      target.releaseBackground();
    }
  }

  // ---- events ----------------------------------------------------------------------------

  async addEvent(
    runnable: EventRunnable,
    eta: number | Date,
    service?: string,
    eventId?: string,
  ): Promise<EventHandle> {
    await this.start();
    return this.scheduler.add(runnable, eta, service, eventId);
  }

  async updateEvent(eta: number | Date, service: string, eventId: string): Promise<boolean> {
    await this.start();
    return this.scheduler.update(eta, service, eventId);
  }

  async cancelEvent(service: string, eventId: string): Promise<boolean> {
    await this.start();
    return this.scheduler.cancel(service, eventId);
  }

  registerEventHandler(name: string, handler: EventHandler): void {
    if (typeof name !== 'string' || name === '')
      throw new InvalidConfigError('event handler name must be a non-empty string');
    if (typeof handler !== 'function')
      throw new InvalidConfigError(`event handler ${name} must be a function`);
    this.handlers.set(name, handler);
  }

  // ---- front door ------------------------------------------------------------------------

  mount(options: FrontDoorOptions = {}): MountedFrontDoor {
    if (this.closed) throw new DispatcherClosedError();
    const door = new FrontDoorHandler(
      this,
      frontDoorHandlerSettings(options, { maxBodyBytes: this.maxBodyBytes }),
    );
    this.frontDoors.add(door);
    const close = async () => {
      await door.close();
      this.frontDoors.delete(door);
    };
    return {
      handler: door.handler,
      upgrade: door.upgrade,
      matches: req => door.matches(req),
      close,
      [Symbol.asyncDispose]: close,
    };
  }

  /** The default mount behind `handler`, `upgrade` and `matches`. */
  private get defaultMount(): MountedFrontDoor {
    return (this.defaultDoor ??= this.mount());
  }

  readonly handler: MountedFrontDoor['handler'] = (req, res, next) =>
    this.defaultMount.handler(req, res, next);

  readonly upgrade: MountedFrontDoor['upgrade'] = (req, socket, head) =>
    this.defaultMount.upgrade(req, socket, head);

  matches(req: IncomingMessage): boolean {
    return this.defaultMount.matches(req);
  }

  async listen(options: ListenOptions = {}): Promise<HttpFrontDoor> {
    if (this.closed) throw new DispatcherClosedError();
    const handler = new FrontDoorHandler(
      this,
      frontDoorHandlerSettings(options, { maxBodyBytes: this.maxBodyBytes }),
    );
    const server = new FrontDoorServer(handler, frontDoorServerSettings(options));
    await this.start();
    const address = await server.listen();
    this.frontDoors.add(server);
    this.listeningPort ??= address.port;
    const hostForUrl = address.host.includes(':') ? `[${address.host}]` : address.host;
    const close = async () => {
      await server.close();
      this.frontDoors.delete(server);
    };
    return {
      url: `http://${hostForUrl}:${address.port}`,
      host: address.host,
      port: address.port,
      close,
      [Symbol.asyncDispose]: close,
    };
  }

  admin(
    method: string,
    path: string,
    query: URLSearchParams,
    body: unknown,
  ): Promise<{ status: number; body: unknown }> {
    return adminApi(this, method, path, query, body);
  }

  on(listener: (event: DispatcherEvent) => void): Disposer {
    return this.events.on(listener);
  }

  stats(): DispatcherStats {
    return {
      versions: this.pools.map(pool => pool.stats()),
      events: { pending: this.scheduler.size },
      asyncRequests: { running: this.asyncRunning, queued: this.asyncQueue.length },
      rules: this.routerState.rules.size,
    };
  }
}

/** What a call aborted by `reason` fails with: its deadline, or `AbortedError` for anything else. */
function abortFailure(reason: unknown): Error {
  return reason instanceof DeadlineExceededError ? reason : new AbortedError({ cause: reason });
}

/** The request with its remaining budget (after queueing) in `DEADLINE_HEADER`, replacing any. */
function withBudget(prepared: PreparedRequest, remainingMs: number): PreparedRequest {
  if (!(remainingMs > 0) || remainingMs === Infinity) return prepared;
  const headers = prepared.headers.filter(h => h[0] !== DEADLINE_HEADER);
  headers.push([DEADLINE_HEADER, deadlineHeaderValue(remainingMs)]);
  return { ...prepared, headers };
}
