import type {
  Dispatcher,
  DispatcherEvent,
  InstanceHealth,
  InstanceState,
  VersionStats,
} from '@x/dispatcher';
import type { CatalogShards } from './catalogShards.js';
import type { GatewayConfig } from './config.js';
import type { EventLog, EventLevel } from './eventLog.js';
import type { OrdersClient } from './ordersClient.js';
import type { FleetView } from './replicaFleet.js';
import type { ReportJobs } from './reportJobs.js';
import type { ReportsClient } from './reportsClient.js';
import type { EndpointTelemetry, Telemetry } from './telemetry.js';

/** How the dashboard names an instance state (`failed` after a crash is "down"). */
export type InstanceView = 'ready' | 'starting' | 'down' | 'draining' | 'stopped';

const VIEW: Record<InstanceState, InstanceView> = {
  ready: 'ready',
  starting: 'starting',
  failed: 'down',
  'crash-loop': 'down',
  draining: 'draining',
  stopped: 'stopped',
};

/** Everything the dashboard draws, sent as JSON on `/_x/state` and over `/_x/events`. */
export interface DashboardSnapshot {
  readonly at: number;
  /** The replica that built this snapshot (and served the page / stream). */
  readonly replica: string;
  /** Every replica on the shared Redis (this one alone without Redis). */
  readonly fleet: FleetView;
  readonly startedAt: number;
  readonly mode: 'memory' | 'redis';
  readonly ready: boolean;
  readonly draining: boolean;
  readonly urls: Readonly<Record<string, string>>;
  readonly modules: ReadonlyArray<{
    readonly name: string;
    readonly defaultVersion: string;
    readonly split: Readonly<Record<string, number>> | undefined;
    readonly role: string;
    readonly versions: ReadonlyArray<{
      readonly name: string;
      readonly stats: VersionStats | undefined;
      readonly instances: ReadonlyArray<{
        readonly id: string;
        readonly state: InstanceView;
        readonly pid: number | undefined;
        readonly port: number | undefined;
        readonly inFlight: number;
        /** Front-door requests plus direct ones (search client tries, worker calls). */
        readonly served: number;
        readonly restarts: number;
        readonly healthy: boolean;
        /** `unchecked` (no health checks), `healthy` or `unhealthy` (out of rotation). */
        readonly health: InstanceHealth;
        readonly unhealthyReason: string | undefined;
        /** Starts that failed in a row, and the last failure (a crash loop when > 0). */
        readonly startFailures: number;
        readonly lastError: string | undefined;
        /** Epoch ms of a scheduled restart of a dead instance. */
        readonly restartAt: number | undefined;
        /** The pid it had before it died. */
        readonly lastPid: number | undefined;
      }>;
    }>;
  }>;
  readonly endpoints: readonly EndpointTelemetry[];
  readonly catalog: {
    readonly hosts: ReadonlyArray<{
      readonly instance: string;
      readonly origin: string;
      readonly shards: readonly number[];
      readonly state: string;
      readonly inFlight: number;
      readonly requests: number;
      readonly failures: number;
      readonly consecutiveFailures: number;
      readonly ewmaMs: number;
      readonly ejectedUntil: number | undefined;
    }>;
    readonly retryBudget: number;
  };
  readonly orders: {
    readonly circuits: ReadonlyArray<{
      readonly key: string;
      readonly state: string;
      readonly retryAfterMs: number;
    }>;
    readonly inFlight: number;
    readonly calls: number;
    readonly fallbacks: number;
    readonly retries: number;
    readonly rejections: number;
    readonly p50: number;
    readonly p99: number;
    readonly retryBudget: number | undefined;
  };
  readonly reports: {
    readonly endpoints: ReturnType<ReportsClient['snapshot']>;
    readonly inFlight: number;
    readonly queued: number;
    readonly totals: ReturnType<ReportsClient['totals']>;
  };
  readonly jobs: ReturnType<ReportJobs['snapshot']> & { readonly mode: string };
  readonly dispatcher: {
    readonly pendingEvents: number;
    readonly rules: number;
    readonly frontDoor: string;
  };
}

/** The parts a snapshot reads. */
export interface DashboardSources {
  readonly config: GatewayConfig;
  readonly dispatcher: Dispatcher;
  readonly telemetry: Telemetry;
  readonly catalog: CatalogShards;
  readonly orders: OrdersClient;
  readonly reports: ReportsClient;
  readonly jobs: ReportJobs;
  readonly events: EventLog;
  readonly urls: Readonly<Record<string, string>>;
  readonly mode: 'memory' | 'redis';
  readonly isReady: () => boolean;
  readonly isDraining: () => boolean;
  /** The replicas (`replicaFleet.ts`). */
  readonly fleet: { readonly id: string; view(): FleetView };
}

/**
 * Builds the dashboard's view of the gateway from the packages' own introspection:
 * `dispatcher.getInstances()` / `stats()`, the search client's `hostStats()` (passive ejection),
 * the orders client's `stats()` (circuits, retry budget), the worker connection's `endpoints()`,
 * and the gateway's latency history. It also turns dispatcher events into "recent events" lines.
 */
export class DashboardState {
  private readonly startedAt = Date.now();
  private readonly restartAt = new Map<string, number>();
  private readonly lastPid = new Map<string, number>();

  constructor(private readonly s: DashboardSources) {
    s.dispatcher.on(event => this.onDispatcherEvent(event));
  }

  private onDispatcherEvent(event: DispatcherEvent): void {
    const log = (level: EventLevel, message: string): void => {
      this.s.events.add('dispatcher', level, message);
    };
    const name = 'instance' in event ? `${event.module}/${event.version}/${event.instance}` : '';
    switch (event.type) {
      case 'instance-ready':
        this.restartAt.delete(name);
        return log(
          'good',
          `${name} ready (pid ${event.pid ?? '-'}, port ${event.port ?? '-'}, ${Math.round(event.startMs)} ms)`,
        );
      case 'instance-died':
        if (event.pid !== undefined) this.lastPid.set(name, event.pid);
        return log(
          'error',
          `${name} died (pid ${event.pid ?? '-'}, ${event.signal ?? `code ${event.code}`})`,
        );
      case 'instance-restart-scheduled':
        this.restartAt.set(name, Date.now() + event.delayMs);
        return log(
          'warn',
          `${name} restarts in ${Math.round(event.delayMs)} ms (attempt ${event.attempt})`,
        );
      case 'instance-start-failed':
        return log(
          'error',
          `${name} failed to start: ${(event.error as Error)?.message ?? String(event.error)}`,
        );
      case 'instance-gave-up':
        return log('error', `${name} gave up after ${event.restarts} restarts`);
      case 'instance-stopped':
        this.restartAt.delete(name);
        return log('info', `${name} stopped`);
      case 'instance-unhealthy':
        return log('warn', `${name} is unhealthy, out of rotation: ${event.reason}`);
      case 'instance-healthy':
        return log('good', `${name} is healthy`);
      case 'scale':
        return log(
          'info',
          `${event.module}/${event.version} scaled ${event.from} → ${event.to} (${event.reason})`,
        );
      case 'event-fired':
        return log('info', `event ${event.service ?? ''}/${event.eventId ?? event.id} fired`);
      case 'event-error':
        return log(
          'error',
          `event ${event.service ?? ''}/${event.eventId ?? event.id} failed: ${String((event.error as Error)?.message ?? event.error)}`,
        );
      case 'error':
        return log(
          'error',
          `${event.where}: ${String((event.error as Error)?.message ?? event.error)}`,
        );
      default:
        return;
    }
  }

  /**
   * Requests an instance served without the front door: the search client's tries (catalog
   * shards, `@x/rest-client` host stats) and the reports connection's calls (`@x/worker-rpc`
   * endpoint stats).
   */
  private direct(module: string, version: string, instance: string): number {
    const { config } = this.s;
    let n = 0;
    if (module === config.shards.module && version === config.shards.version)
      n += this.s.catalog.served(instance);
    const workers = config.workers.reports;
    if (workers.kind === 'module' && module === workers.module && version === workers.version)
      n += this.s.reports.served(instance);
    return n;
  }

  snapshot(): DashboardSnapshot {
    const { config, dispatcher, catalog, orders, reports, jobs } = this.s;
    const stats = dispatcher.stats();
    const roles: Record<string, string> = {
      [config.shards.module]:
        `sharded · ${config.shards.count} keys × ${config.shards.replicas} replicas`,
    };
    if (config.workers.reports.kind === 'module')
      roles[config.workers.reports.module] = 'ZeroMQ workers';
    const modules = dispatcher.getModuleNames().map(name => ({
      name,
      defaultVersion: dispatcher.getDefaultVersion(name),
      split: config.splits.find(s => s.module === name)?.weights,
      role:
        roles[name] ??
        (config.modules[name]?.versions[dispatcher.getDefaultVersion(name)]?.backend.kind ===
        'builtin'
          ? 'in-process'
          : 'HTTP'),
      versions: dispatcher.getVersions(name).map(version => ({
        name: version,
        stats: stats.versions.find(v => v.module === name && v.version === version),
        instances: dispatcher.getInstances(name, version).map(i => ({
          id: i.id,
          state: VIEW[i.state],
          pid: i.pid,
          port: i.port,
          inFlight: i.inFlight,
          // front-door requests plus what reached it directly (search fan-out, worker calls)
          served: i.served + this.direct(name, version, i.id),
          restarts: i.restarts,
          healthy: i.healthy,
          health: i.health,
          unhealthyReason: i.unhealthyReason,
          startFailures: i.startFailures,
          lastError: i.lastError,
          restartAt: this.restartAt.get(`${name}/${version}/${i.id}`),
          lastPid: i.pid === undefined ? this.lastPid.get(`${name}/${version}/${i.id}`) : undefined,
        })),
      })),
    }));
    const ft = orders.stats();
    return {
      at: Date.now(),
      replica: this.s.fleet.id,
      fleet: this.s.fleet.view(),
      startedAt: this.startedAt,
      mode: this.s.mode,
      ready: this.s.isReady(),
      draining: this.s.isDraining(),
      urls: this.s.urls,
      modules,
      endpoints: this.s.telemetry.snapshot(),
      catalog: {
        hosts: catalog.snapshot().map(h => ({
          instance: h.instance,
          origin: h.origin,
          shards: h.shards,
          state: h.stats?.state ?? 'unknown',
          inFlight: h.stats?.inFlight ?? 0,
          requests: h.stats?.requests ?? 0,
          failures: h.stats?.failures ?? 0,
          consecutiveFailures: h.stats?.consecutiveFailures ?? 0,
          ewmaMs: h.stats?.ewmaMs ?? 0,
          ejectedUntil: h.stats?.ejectedUntil,
        })),
        retryBudget: catalog.budget.balance,
      },
      orders: {
        circuits: ft.circuits.map(c => ({
          key: c.key,
          state: c.state,
          retryAfterMs: c.retryAfterMs,
        })),
        inFlight: ft.inFlight,
        calls: ft.calls,
        fallbacks: ft.fallbacks,
        retries: ft.retries,
        rejections: ft.rejections.circuit + ft.rejections.bulkhead + ft.rejections.budget,
        p50: ft.latencyMs.p50,
        p99: ft.latencyMs.p99,
        retryBudget: ft.retryBudget,
      },
      reports: {
        endpoints: reports.snapshot(),
        inFlight: reports.connection.inFlight,
        queued: reports.connection.queued,
        totals: reports.totals(),
      },
      jobs: { ...jobs.snapshot(), mode: jobs.mode },
      dispatcher: {
        pendingEvents: stats.events.pending,
        rules: stats.rules,
        frontDoor: (this.s.urls.frontDoor ?? '').replace(/^http:\/\//, ''),
      },
    };
  }
}
