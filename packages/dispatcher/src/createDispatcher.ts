import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import {
  Emitter,
  noopMetrics,
  silentLogger,
  systemClock,
  type Clock,
  type Disposer,
  type Logger,
  type Metrics,
  repeat,
} from '@x/resilience';
import type { DispatcherEvent } from './dispatcherEvent.js';
import type {
  AsyncRequest,
  BackgroundRequestOptions,
  Dispatcher,
  DispatcherStats,
} from './dispatcher.js';
import type { DispatcherOptions } from './dispatcherOptions.js';
import {
  compileDispatchRules,
  noDispatchRules,
  parseDispatchYaml,
  type DispatchRule,
  type DispatchRuleSet,
} from './dispatchRules.js';
import { DispatcherClosedError, InvalidConfigError, InvalidRequestError } from './errors.js';
import { memoryEventStore, type EventStore } from './eventStore.js';
import { adminApi } from './internal/adminApi.js';
import { AsyncRequests } from './internal/asyncRequests.js';
import {
  EventScheduler,
  type EventHandle,
  type EventHandler,
  type EventRunnable,
} from './internal/eventScheduler.js';
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
import { getHeader, toHeaderList } from './internal/headers.js';
import type { UpstreamOptions } from './internal/instance.js';
import { ModuleRegistry } from './internal/moduleRegistry.js';
import { RequestRunner, DEFAULT_SOURCE_IP } from './internal/requestRunner.js';
import { Router, type RoutedModule, type RouterState } from './internal/router.js';
import { RuleFile } from './internal/ruleFile.js';
import { durationOption } from './internal/durationOption.js';
import { positiveOption, timerOption } from './internal/positiveOption.js';
import type { VersionPool } from './internal/versionPool.js';
import type { RouteDecision } from './routeDecision.js';
import { CompiledSplit, type TrafficSplit } from './trafficSplit.js';
import type { DispatchRequest, HeaderList, InstanceInfo, ResponseTuple } from './types.js';

export type { EventHandle, EventHandler, EventRunnable } from './internal/eventScheduler.js';
export type { VersionStats } from './internal/versionPool.js';
export type {
  FrontDoorOptions,
  HttpFrontDoor,
  ListenOptions,
  MountedFrontDoor,
} from './frontDoorOptions.js';
export type { RulesOption, DispatcherOptions } from './dispatcherOptions.js';
export type {
  AsyncRequest,
  BackgroundRequestOptions,
  Dispatcher,
  DispatcherStats,
} from './dispatcher.js';

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
  private readonly registry: ModuleRegistry;
  private readonly modules: ReadonlyMap<string, RoutedModule>;
  private readonly pools: readonly VersionPool[];
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
  private readonly asyncRequests: AsyncRequests;
  /** Mounted and listening front doors: closed with the dispatcher. */
  private readonly frontDoors = new Set<{ close(): Promise<void> }>();
  private defaultDoor: MountedFrontDoor | undefined;
  /** True once start() finished. */
  started = false;
  private listeningPort: number | undefined;
  private startPromise: Promise<void> | undefined;
  private closePromise: Promise<void> | undefined;
  closed = false;
  private readonly runner: RequestRunner;

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
    this.asyncRequests = new AsyncRequests(
      positiveOption('maxAsyncRequests', options.maxAsyncRequests, 64, true),
      options.maxQueuedAsyncRequests === 0
        ? 0
        : positiveOption('maxQueuedAsyncRequests', options.maxQueuedAsyncRequests, 1_000, true),
    );
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
      pipelining: positiveOption('upstream.pipelining', up.pipelining, 1, true),
      keepAliveTimeoutMs: timerOption(
        up.keepAliveTimeoutMs ?? 4_000,
        'upstream.keepAliveTimeoutMs',
      ),
      headersTimeoutMs: timerOption(up.headersTimeoutMs ?? 60_000, 'upstream.headersTimeoutMs'),
      bodyTimeoutMs: timerOption(up.bodyTimeoutMs ?? 60_000, 'upstream.bodyTimeoutMs'),
    };

    this.registry = new ModuleRegistry(options.modules, {
      clock: this.clock,
      log: this.log,
      metrics: this.metrics,
      upstream,
      emit: (event: DispatcherEvent) => this.emit(event),
    });
    this.modules = this.registry.modules;
    this.pools = this.registry.pools;
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
    const limits = { maxBodyBytes: this.maxBodyBytes, maxResponseBytes: this.maxResponseBytes };
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- read live by the runner
    const dispatcher = this;
    this.runner = new RequestRunner({
      clock: this.clock,
      router: this.router,
      requestTimeoutMs: this.requestTimeoutMs,
      backgroundTimeoutMs: this.backgroundTimeoutMs,
      limits,
      get closed() {
        return dispatcher.closed;
      },
      start: () => this.start(),
      pool: decision => this.pool(decision),
      controllable: (module, version, operation) =>
        this.registry.controllable(module, version, operation),
    });

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
      takeoverMs: timerOption(options.eventTakeoverMs ?? 3_000, 'eventTakeoverMs'),
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
        this.ruleWatcher = repeat(
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
      this.asyncRequests.close();
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
    return this.registry.module(name);
  }

  private versionPool(module: string, version: string): VersionPool {
    return this.registry.versionPool(module, version);
  }

  private controllable(module: string, version: string, operation: string): VersionPool {
    return this.registry.controllable(module, version, operation);
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
    const port =
      this.listeningPort !== undefined && this.listeningPort !== 80 ? `:${this.listeningPort}` : '';
    return this.registry.hostname(this.baseHost, port, module, version, instance);
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

  addRequest(request: DispatchRequest): Promise<ResponseTuple> {
    return this.runner.run(request);
  }

  addAsyncRequest(request: DispatchRequest): AsyncRequest {
    if (this.closed) throw new DispatcherClosedError();
    this.runner.prepare(request); // route now: bad requests fail synchronously
    const settled = this.asyncRequests.submit(() => this.addRequest(request));
    const requestId = randomUUID();
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

  sendBackgroundRequest(
    module: string,
    version: string,
    instance: string,
    backgroundRequestId: string,
    options: BackgroundRequestOptions = {},
  ): Promise<ResponseTuple> {
    return this.runner.background(module, version, instance, backgroundRequestId, options);
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
      asyncRequests: { running: this.asyncRequests.running, queued: this.asyncRequests.queued },
      rules: this.routerState.rules.size,
    };
  }
}
