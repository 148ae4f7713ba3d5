import {
  childProcess,
  createDispatcher,
  inProcess,
  remote,
  type Backend,
  type Dispatcher,
  type EventHandler,
  type EventStore,
  type ModuleSpec,
  type VersionSpec,
} from '@x/dispatcher';
import { exponentialBackoff, type Logger, type Metrics } from '@x/resilience';
import type { BackendConfig, GatewayConfig, VersionConfig } from './config.js';
import { welcome } from './welcome.js';

/** What the dispatcher needs besides the configuration. */
export interface DispatcherDeps {
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Where scheduled events live (`redisEventStore()` makes them durable). */
  readonly eventStore: EventStore | undefined;
  /** Named handlers of durable events. */
  readonly eventHandlers: Readonly<Record<string, EventHandler>>;
  /** The gateway's admin token, given to every backend as `X_ADMIN_TOKEN` (their own admin methods). */
  readonly adminToken: string;
  /** More environment for every backend process (`X_TRACES_URL`: where to report spans). */
  readonly childEnv?: Readonly<Record<string, string>>;
}

/** A configured backend as an `@x/dispatcher` backend. */
function backendOf(config: BackendConfig, env: Readonly<Record<string, string>>): Backend {
  switch (config.kind) {
    case 'builtin':
      return inProcess(welcome);
    case 'remote':
      return remote(config.urls);
    case 'process':
      return childProcess({
        command: config.command,
        args: config.args,
        env,
        // Keep the children's output (the last 8 KiB shows up in start errors), not the terminal.
        output: 'pipe',
        // ZeroMQ workers do not speak HTTP: no /_ah/start, ready once the port accepts connections.
        lifecycleRequests: config.protocol === 'http',
        killTimeoutMs: 3_000,
      });
  }
}

/**
 * Health checks of a version: HTTP instances (processes and remote URLs) only; in-process
 * handlers cannot hang apart from the gateway and ZeroMQ workers do not answer HTTP.
 */
function healthCheckOf(spec: VersionConfig): Pick<VersionSpec, 'healthCheck'> {
  const http =
    spec.backend.kind === 'remote' ||
    (spec.backend.kind === 'process' && spec.backend.protocol === 'http');
  if (!http || spec.healthCheck === false) return {};
  return { healthCheck: { ...spec.healthCheck } };
}

/**
 * Environment a version's processes get: the gateway's `childEnv`, its own `env`, the admin
 * token and the gateway's pid (`X_GATEWAY_PID`: an instance whose parent is gone exits), plus the
 * shard layout for the shards version.
 */
function envOf(
  config: GatewayConfig,
  module: string,
  version: string,
  spec: VersionConfig,
  adminToken: string,
  childEnv: Readonly<Record<string, string>>,
) {
  const env = {
    ...childEnv,
    ...spec.env,
    X_ADMIN_TOKEN: adminToken,
    X_GATEWAY_PID: String(process.pid),
  };
  const { shards } = config;
  if (shards.module !== module || shards.version !== version) return env;
  return { ...env, SHARD_COUNT: String(shards.count), SHARD_REPLICAS: String(shards.replicas) };
}

/**
 * `@x/dispatcher` from `gateway.config.yaml`: `modules` (versions, instances, restart policy),
 * `dispatch` rules and `splits`. Every version uses manual scaling, so instances are addressable
 * (`0`, `1`, …) and the admin API can set their number, start and stop them.
 */
export function createGatewayDispatcher(config: GatewayConfig, deps: DispatcherDeps): Dispatcher {
  const modules: Record<string, ModuleSpec> = {};
  for (const [name, mod] of Object.entries(config.modules)) {
    const versions: Record<string, ModuleSpec['versions'][string]> = {};
    for (const [version, spec] of Object.entries(mod.versions)) {
      versions[version] = {
        backend: backendOf(
          spec.backend,
          envOf(config, name, version, spec, deps.adminToken, deps.childEnv ?? {}),
        ),
        scaling: { kind: 'manual', instances: spec.instances },
        maxConcurrentRequests: spec.maxConcurrentRequests,
        restart: {
          backoff: exponentialBackoff({
            initialMs: spec.restart.initialDelayMs,
            maxMs: spec.restart.maxDelayMs,
            jitter: 'none', // predictable: the dashboard shows when a dead instance comes back
          }),
          maxRestarts: spec.restart.maxRestarts,
        },
        lifecycle: { drainTimeoutMs: config.server.drainTimeoutMs, readyTimeoutMs: 15_000 },
        ...healthCheckOf(spec),
      };
    }
    modules[name] = {
      versions,
      ...(mod.defaultVersion ? { defaultVersion: mod.defaultVersion } : {}),
    };
  }
  return createDispatcher({
    modules,
    host: config.dispatcher.host,
    ...(config.dispatcher.defaultModule ? { defaultModule: config.dispatcher.defaultModule } : {}),
    rules: config.dispatch,
    split: config.splits.map(s => ({ module: s.module, weights: s.weights, stickyBy: s.stickyBy })),
    requestTimeoutMs: config.dispatcher.requestTimeoutMs,
    maxBodyBytes: config.server.maxBodyBytes,
    ...(deps.eventStore ? { eventStore: deps.eventStore } : {}),
    eventTakeoverMs: config.replicas.eventTakeoverMs,
    eventHandlers: deps.eventHandlers,
    logger: deps.logger,
    metrics: deps.metrics,
  });
}
