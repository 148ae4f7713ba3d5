import { STATUS_CODES } from 'node:http';
import { Emitter, silentLogger, systemClock, type Clock, type Disposer } from '@x/resilience';
import type {
  AsyncRequest,
  Dispatcher,
  DispatcherStats,
  HttpFrontDoor,
  MountedFrontDoor,
} from './createDispatcher.js';
import type { DispatcherEvent } from './dispatcherEvent.js';
import {
  DispatcherClosedError,
  InvalidConfigError,
  InvalidInstanceIdError,
  InvalidRequestError,
  ModuleDoesNotExistError,
  NotSupportedWithAutoScalingError,
  VersionDoesNotExistError,
} from './errors.js';
import { memoryEventStore } from './eventStore.js';
import {
  EventScheduler,
  type EventHandle,
  type EventHandler,
  type EventRunnable,
} from './internal/eventScheduler.js';
import type { RouteDecision } from './routeDecision.js';
import type { DispatchRequest, InstanceInfo, ResponseTuple } from './types.js';

/** One module of a fake dispatcher. */
export interface FakeModule {
  readonly versions: readonly string[];
  /** Default: the first version. */
  readonly defaultVersion?: string;
  /** Version → host name returned by `getHostname`. Default `version.module.localhost`. */
  readonly hostnames?: Readonly<Record<string, string>>;
}

/** Options of {@link createFakeDispatcher}. */
export interface FakeDispatcherOptions {
  /** Default: one module `default` with version `v1`. */
  readonly modules?: Readonly<Record<string, FakeModule>>;
  /** Answers `addRequest`. Default: 501 Not Implemented (App Engine's fake). */
  readonly handler?: (request: DispatchRequest) => ResponseTuple | Promise<ResponseTuple>;
  /** Clock for the event scheduler. Default the system clock. */
  readonly clock?: Clock;
  /** Epoch ms for etas. Default `Date.now` (or `clock.now` with an injected clock). */
  readonly now?: () => number;
}

/** The test double: a {@link Dispatcher} plus what it was asked to do. */
export interface FakeDispatcher extends Dispatcher {
  /** Every request given to `addRequest` / `addAsyncRequest`, in order. */
  readonly requests: readonly DispatchRequest[];
}

/**
 * App Engine's `_LocalFakeDispatcher` as a test double: module and version lookups from plain
 * data, every instance-control method throws `NotSupportedWithAutoScalingError` (like the
 * original), `addRequest` answers with `handler` (501 by default) and records the request, and
 * events run on a real in-memory scheduler (drive it with a `ManualClock`).
 */
export function createFakeDispatcher(options: FakeDispatcherOptions = {}): FakeDispatcher {
  const modules = new Map<
    string,
    { versions: string[]; defaultVersion: string; hostnames: Readonly<Record<string, string>> }
  >();
  for (const [name, spec] of Object.entries(options.modules ?? { default: { versions: ['v1'] } })) {
    if (!Array.isArray(spec?.versions) || spec.versions.length === 0)
      throw new InvalidConfigError(`fake module ${name} needs at least one version`);
    const defaultVersion = spec.defaultVersion ?? spec.versions[0]!;
    if (!spec.versions.includes(defaultVersion))
      throw new InvalidConfigError(
        `fake module ${name}: default version ${defaultVersion} is not listed`,
      );
    modules.set(name, {
      versions: [...spec.versions],
      defaultVersion,
      hostnames: spec.hostnames ?? {},
    });
  }
  const defaultModule = modules.has('default') ? 'default' : modules.keys().next().value!;
  const clock = options.clock ?? systemClock;
  const now = options.now ?? (options.clock ? () => clock.now() : Date.now);
  const events = new Emitter<DispatcherEvent>();
  const handlers = new Map<string, EventHandler>();
  const store = memoryEventStore();
  const scheduler = new EventScheduler({
    clock,
    now,
    store,
    handlers,
    maxEvents: 100_000,
    maxConcurrent: 16,
    leaseMs: 60_000,
    emit: event => events.emit(event),
    log: silentLogger,
  });
  const requests: DispatchRequest[] = [];
  let closed = false;
  const handler =
    options.handler ??
    (() => ({ status: 501, reason: STATUS_CODES[501]!, headers: [], body: new Uint8Array(0) }));

  const mod = (name: string) => {
    const found = modules.get(name);
    if (!found) throw new ModuleDoesNotExistError(String(name));
    return found;
  };
  const ver = (name: string, version: string) => {
    const found = mod(name);
    if (!found.versions.includes(version))
      throw new VersionDoesNotExistError(name, String(version));
    return found;
  };
  const resolve = (request: DispatchRequest): RouteDecision => {
    if (
      typeof request !== 'object' ||
      request === null ||
      typeof request.url !== 'string' ||
      !request.url.startsWith('/')
    )
      throw new InvalidRequestError('request needs a url starting with /');
    const module = request.module ?? defaultModule;
    const found = mod(module);
    const version = request.version ?? found.defaultVersion;
    ver(module, version);
    if (request.instance !== undefined)
      throw new NotSupportedWithAutoScalingError(module, version, 'addressing an instance');
    return {
      module,
      version,
      instance: undefined,
      moduleSource: request.module ? 'explicit' : 'default',
      versionSource: request.version ? 'explicit' : 'default',
      rule: undefined,
      bucket: undefined,
      setCookie: undefined,
      reasons: [request.module ? `explicit target module ${module}` : `default module ${module}`],
    };
  };
  const unsupported = (module: string, version: string, operation: string): never => {
    ver(module, version);
    throw new NotSupportedWithAutoScalingError(module, version, operation);
  };
  const addRequest = async (request: DispatchRequest): Promise<ResponseTuple> => {
    if (closed) throw new DispatcherClosedError();
    resolve(request);
    requests.push(request);
    return handler(request);
  };

  const fake: FakeDispatcher = {
    requests,
    start: async () => {
      if (closed) throw new DispatcherClosedError();
    },
    close: async () => {
      closed = true;
      await scheduler.close(1_000);
    },
    [Symbol.asyncDispose]: () => fake.close(),
    getModuleNames: () => [...modules.keys()],
    getVersions: module => [...mod(module).versions],
    getDefaultVersion: module => mod(module).defaultVersion,
    getHostname(module, version, instance) {
      const found = mod(module);
      const v = version ?? found.defaultVersion;
      ver(module, v);
      if (instance !== undefined)
        throw new InvalidInstanceIdError(
          module,
          v,
          instance,
          'the fake dispatcher has no addressable instances',
        );
      return found.hostnames[v] ?? `${v}.${module}.localhost`;
    },
    getNumInstances: (module, version) => unsupported(module, version, 'getNumInstances'),
    setNumInstances: async (module, version) => unsupported(module, version, 'setNumInstances'),
    startVersion: async (module, version) => unsupported(module, version, 'startVersion'),
    stopVersion: async (module, version) => unsupported(module, version, 'stopVersion'),
    getInstances: (module, version): InstanceInfo[] => {
      ver(module, version);
      return [];
    },
    addRequest,
    addAsyncRequest(request): AsyncRequest {
      if (closed) throw new DispatcherClosedError();
      resolve(request);
      const settled = addRequest(request);
      settled.catch(() => {});
      return { requestId: `fake-${requests.length}`, settled };
    },
    sendBackgroundRequest: async (module, version) =>
      unsupported(module, version, 'sendBackgroundRequest'),
    addEvent: (
      runnable: EventRunnable,
      eta: number | Date,
      service?: string,
      eventId?: string,
    ): Promise<EventHandle> => scheduler.add(runnable, eta, service, eventId),
    updateEvent: (eta, service, eventId) => scheduler.update(eta, service, eventId),
    cancelEvent: (service, eventId) => scheduler.cancel(service, eventId),
    registerEventHandler(name, fn) {
      if (typeof fn !== 'function')
        throw new InvalidConfigError('event handler must be a function');
      handlers.set(name, fn);
    },
    explain: resolve,
    setRules() {
      throw new InvalidConfigError('the fake dispatcher has no dispatch rules');
    },
    reloadRules: async () => false,
    setSplit() {
      throw new InvalidConfigError('the fake dispatcher has no traffic splits');
    },
    listen: async (): Promise<HttpFrontDoor> => {
      throw new InvalidConfigError('the fake dispatcher has no front door');
    },
    mount: (): MountedFrontDoor => {
      throw new InvalidConfigError('the fake dispatcher has no front door');
    },
    handler: () => {
      throw new InvalidConfigError('the fake dispatcher has no front door');
    },
    upgrade: (_req, socket) => socket.destroy(),
    matches: () => false,
    on: (listener): Disposer => events.on(listener),
    stats: (): DispatcherStats => ({
      versions: [],
      events: { pending: scheduler.size },
      asyncRequests: { running: 0, queued: 0 },
      rules: 0,
    }),
  };
  return fake;
}
