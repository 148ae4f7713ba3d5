import type { AddressInfo } from 'node:net';
import { redisEventStore, type HttpFrontDoor, type MountedFrontDoor } from '@x/dispatcher';
import { Runner } from '@x/routes';
import { redactUrl } from '@x/resilience';
import { CatalogShards } from './catalogShards.js';
import type { GatewayConfig, LogLevel } from './config.js';
import { Dashboard } from './dashboard.js';
import { DashboardState } from './dashboardState.js';
import { createGatewayDispatcher } from './dispatcherSetup.js';
import { EventLog } from './eventLog.js';
import { GatewayError } from './gatewayError.js';
import { readiness } from './health.js';
import { createGatewayServer } from './httpServer.js';
import { createLogger } from './logger.js';
import { createMetrics } from './metrics.js';
import { createOrdersClient, type OrdersClient } from './ordersClient.js';
import { ordersRoute } from './ordersRoute.js';
import { checkRedis } from './redisCheck.js';
import { RedisProbe } from './redisProbe.js';
import { defaultReplicaId, ReplicaFleet } from './replicaFleet.js';
import { createReportJobs, REDIS_DEADLINE_MS } from './reportJobs.js';
import { ReportsClient } from './reportsClient.js';
import { reportsRoute } from './reportsRoute.js';
import { searchRoute } from './searchRoute.js';
import { redisSharedStores, type SharedStores } from './sharedStores.js';
import { EdgeRateLimit } from './edgeRateLimit.js';
import { Telemetry } from './telemetry.js';
import { TraceIngest } from './traceIngest.js';
import { TracesApi } from './tracesApi.js';
import type { TraceStore } from './traceStore.js';

/** Settings that override the file (command line and environment, see `cli.ts`). */
export interface StartOptions {
  readonly port?: number;
  readonly host?: string;
  readonly adminToken: string;
  /** Redis for durable events and the BullMQ queue; undefined runs everything in memory. */
  readonly redisUrl: string | undefined;
  readonly logLevel?: LogLevel;
  /** State shared with the other replicas (default: per process). */
  readonly shared?: SharedStores;
  /**
   * The dashboard's trace store, fed by the SDK the caller started (`TraceStoreProcessor`); the
   * instances then report their spans to the gateway too. Undefined: no dashboard traces.
   */
  readonly traceStore?: TraceStore;
}

/** A running gateway. */
export interface Gateway {
  readonly url: string;
  readonly dashboardUrl: string;
  readonly metricsUrl: string;
  /**
   * The dispatcher's own loopback listener, with `dispatcher.listen` (for local tools and
   * processes). The gateway's requests reach the front door mounted on its server, and the
   * orders calls reach the instances in process: neither takes an HTTP hop.
   */
  readonly frontDoorUrl: string | undefined;
  readonly adminToken: string;
  readonly mode: 'memory' | 'redis';
  readonly redis: string | undefined;
  /** This replica's id (`replicas.id`, default `hostname:pid`), also sent as `X-Replica`. */
  readonly replica: string;
  /** Drains (stops intake, lets requests finish, stops routes, clients and instances) and closes. */
  stop(): Promise<{ readonly durationMs: number }>;
}

/**
 * Starts everything `gateway.config.yaml` describes, in order: the dispatcher and its instances
 * (child processes), its front door and admin API, the search / orders / reports clients, the
 * `@x/routes` routes behind the gateway's HTTP server, the dashboard. A failure at any step
 * closes what was started (no child process is left behind) and rejects.
 */
export async function startGateway(config: GatewayConfig, options: StartOptions): Promise<Gateway> {
  const log = createLogger(options.logLevel ?? config.logging.level);
  const metrics = createMetrics();
  const events = new EventLog(200);
  const telemetry = new Telemetry(['search', 'orders', 'reports', 'jobs', 'dispatcher']);
  const mode = options.redisUrl ? 'redis' : 'memory';
  const replica = config.replicas.id ?? defaultReplicaId();
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  const startedAt = Date.now();
  let draining = false;

  const closeAll = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (error) {
        log.warn({ err: error }, 'error while closing');
      }
    }
  };

  try {
    if (options.redisUrl) await checkRedis(options.redisUrl);
    const redisProbe = options.redisUrl ? new RedisProbe(options.redisUrl) : undefined;
    if (redisProbe) cleanups.push(() => redisProbe.close());
    // with Redis the replicas share their breakers and edge rate limits (docs/SCALING.md);
    // an embedder may hand its own stores in `options.shared`
    const ownShared = options.redisUrl
      ? redisSharedStores(options.redisUrl, config.redis.prefix, error =>
          log.debug({ err: error }, 'shared stores: redis error'),
        )
      : undefined;
    if (ownShared) cleanups.push(() => ownShared.close());
    const shared: SharedStores | undefined = options.shared ?? ownShared;
    const rateLimit = new EdgeRateLimit(config.rateLimit, ownShared?.redis, config.redis.prefix);
    // with Redis, shared by the replicas: any of them reads a scheduled job, and a live one runs
    // the events of a dead one (`replicas.eventTakeoverMs`)
    const eventStore = options.redisUrl
      ? redisEventStore({
          url: options.redisUrl,
          prefix: `${config.redis.prefix}:events`,
          commandTimeoutMs: REDIS_DEADLINE_MS,
        })
      : undefined;
    // the instances report their spans to a loopback receiver that exists before they start
    const ingest = options.traceStore
      ? new TraceIngest(options.traceStore, options.adminToken)
      : undefined;
    const ingestListener = ingest ? await ingest.listen() : undefined;
    if (ingestListener) cleanups.push(() => ingestListener.close());
    const d = createGatewayDispatcher(config, {
      logger: log.child({ component: 'dispatcher' }),
      metrics: metrics.sink,
      eventStore,
      eventHandlers: {},
      adminToken: options.adminToken,
      childEnv: ingestListener ? { X_TRACES_URL: ingestListener.url } : {},
    });
    cleanups.push(() => d.close({ drainTimeoutMs: config.server.drainTimeoutMs }));

    const deps = { metrics: metrics.sink, events };
    const catalog = new CatalogShards(d, config.shards, config.resilience.search, {
      ...deps,
      logger: log.child({ component: 'search' }),
      ...(shared?.retryBudget ? { retryBudget: shared.retryBudget } : {}),
    });
    cleanups.push(() => catalog.close());
    const reports = new ReportsClient(d, config.workers.reports, {
      ...deps,
      logger: log.child({ component: 'reports' }),
    });
    cleanups.push(() => reports.close(Math.min(2_000, config.server.drainTimeoutMs)));
    const jobs = createReportJobs({
      dispatcher: d,
      reports,
      config: config.resilience.reports,
      events,
      redisUrl: options.redisUrl,
      prefix: config.redis.prefix,
      ...(eventStore ? { eventStore } : {}),
    });

    await d.start();
    const admin = {
      token: options.adminToken,
      maxFailures: config.admin.maxFailures,
      failureWindowMs: config.admin.failureWindowMs,
    };
    // the front door on the gateway's own server: the gateway is the edge (no trusted proxy), and
    // the request id it gave the request is used as is
    const mounted: MountedFrontDoor = d.mount({
      admin,
      maxBodyBytes: config.server.maxBodyBytes,
      drainTimeoutMs: config.server.drainTimeoutMs,
      requestId: req => req.headers['x-request-id'] as string | undefined,
    });
    cleanups.push(() => mounted.close());
    // with `dispatcher.listen`, also on its own loopback port for local tools and processes (the
    // gateway itself reaches the instances in process: the orders calls use `addRequest`)
    const frontDoor: HttpFrontDoor | undefined = config.dispatcher.listen
      ? await d.listen({
          port: config.dispatcher.port,
          host: '127.0.0.1',
          admin,
          trustedProxies: ['loopback'],
          drainTimeoutMs: config.server.drainTimeoutMs,
          headersTimeoutMs: config.server.headersTimeoutMs,
          requestTimeoutMs: config.server.requestTimeoutMs,
          maxPipelinedRequests: config.server.maxPipelinedRequests,
        })
      : undefined;
    catalog.refresh();
    const orders: OrdersClient = createOrdersClient(config.resilience.orders, {
      metrics: metrics.sink,
      logger: log.child({ component: 'orders' }),
      dispatcher: d,
      ...(shared?.breakerStore ? { breakerStore: shared.breakerStore } : {}),
      ...(shared?.retryBudget ? { retryBudget: shared.retryBudget('orders', {}) } : {}),
    });
    cleanups.push(() => orders.close());
    orders.onEvent(event => {
      if (event.type === 'stateChange')
        events.add(
          'orders',
          event.to === 'closed' ? 'good' : 'error',
          `circuit ${event.key ?? ''} ${event.from} → ${event.to}`,
        );
    });

    const maxDeadlineMs = config.server.maxRequestBudgetMs;
    const search = searchRoute(catalog, {
      maxDeadlineMs,
      totalMs: config.resilience.search.timeoutMs,
      perTryMs: config.resilience.search.perTryTimeoutMs,
    });
    const order = ordersRoute(orders, { maxDeadlineMs });
    const report = reportsRoute(reports, config.resilience.reports.deadlineMs, events, {
      maxDeadlineMs,
    });
    const runner = new Runner({
      routes: [search.route, order.route, report.route, ...jobs.routes],
      maxWorkers: 256,
      metrics: metrics.sink,
      logger: log.child({ component: 'routes' }),
    });
    cleanups.push(async () => {
      const drained = await runner.stop({
        timeoutMs: Math.min(5_000, config.server.drainTimeoutMs),
      });
      log.info({ drained }, 'routes stopped');
    });
    await runner.start();

    const host = options.host ?? config.server.host;
    const port = options.port ?? config.server.port;
    const isDraining = () => draining;
    const urls: Record<string, string> = {};
    const fleet = new ReplicaFleet({
      id: replica,
      redisUrl: options.redisUrl,
      prefix: config.redis.prefix,
      publishIntervalMs: config.replicas.publishIntervalMs,
      staleAfterMs: config.replicas.staleAfterMs,
      log: log.child({ component: 'replicas' }),
      summary: () => {
        const versions = d.stats().versions;
        const endpoints = telemetry.snapshot();
        return {
          url: urls.gateway ?? '',
          startedAt,
          mode,
          ready: readiness({
            config,
            dispatcher: d,
            catalog,
            reports,
            isDraining,
            redis: redisProbe,
          }).ready,
          draining,
          instances: {
            ready: versions.reduce((n, v) => n + v.ready, 0),
            total: versions.reduce((n, v) => n + v.instances, 0),
          },
          requests: {
            total: endpoints.reduce((n, e) => n + e.requests, 0),
            errors: endpoints.reduce((n, e) => n + e.errors, 0),
            inFlight: endpoints.reduce((n, e) => n + e.inFlight, 0),
          },
          jobs: jobs.snapshot().counts,
          pendingEvents: d.stats().events.pending,
          openCircuits: orders.stats().circuits.filter(c => c.state !== 'closed').length,
          recentEvents: events.recent(5),
        };
      },
    });
    cleanups.push(() => fleet.close());
    const state = new DashboardState({
      config,
      dispatcher: d,
      telemetry,
      catalog,
      orders,
      reports,
      jobs,
      events,
      urls,
      mode,
      isReady: () =>
        readiness({ config, dispatcher: d, catalog, reports, isDraining, redis: redisProbe }).ready,
      isDraining,
      fleet,
    });
    const dashboard = new Dashboard(state, events, {
      ...config.dashboard,
      token: config.dashboard.requireToken ? options.adminToken : undefined,
      traces: new TracesApi(options.traceStore, ingest),
      ...(ingest ? { ingest } : {}),
    });
    cleanups.push(() => dashboard.close());
    d.on(event => {
      if (event.type.startsWith('instance-')) dashboard.pushSoon();
    });

    const http = createGatewayServer({
      replicaId: replica,
      log,
      metrics: metrics.sink,
      renderMetrics: async () => ({
        body: await metrics.render(),
        contentType: metrics.contentType,
      }),
      telemetry,
      dashboard,
      entrypoints: {
        search: search.entrypoint,
        orders: order.entrypoint,
        reports: report.entrypoint,
        jobs: jobs.submitEntrypoint,
      },
      jobs,
      reports,
      frontDoor: mounted,
      rateLimit: rateLimit.active ? rateLimit : undefined,
      readiness: () =>
        readiness({ config, dispatcher: d, catalog, reports, isDraining, redis: redisProbe }),
      isDraining,
      timeouts: config.server,
    });
    await new Promise<void>((resolve, reject) => {
      http.server.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          error.code === 'EADDRINUSE'
            ? new GatewayError(
                'PORT_IN_USE',
                500,
                `port ${port} on ${host} is in use: set server.port in ${config.file} or pass --port`,
              )
            : error,
        ),
      );
      http.server.listen(port, host, () => resolve());
    });
    const serverClosed = new Promise<void>(resolve => http.server.once('close', () => resolve()));
    cleanups.push(async () => {
      http.server.close();
      http.server.closeAllConnections();
      await serverClosed;
    });

    const address = http.server.address() as AddressInfo;
    const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const base = `http://${shown}:${address.port}`;
    Object.assign(urls, {
      gateway: `${base}/`,
      dashboard: `${base}/_x/`,
      metrics: `${base}/metrics`,
      ...(frontDoor ? { frontDoor: frontDoor.url } : {}),
    });

    let tick = 0;
    const ticker = setInterval(() => {
      telemetry.sample();
      // Worker counters cost a call per worker: only while someone watches the dashboard.
      if (tick++ % 2 === 0 && dashboard.clients > 0)
        void Promise.all([reports.refreshStats(), jobs.refresh()]).then(() =>
          dashboard.broadcast(),
        );
      else dashboard.broadcast();
      for (const v of d.stats().versions)
        metrics.sink.gauge('gateway.instances.ready', v.ready, {
          module: v.module,
          version: v.version,
        });
    }, 1_000);
    ticker.unref();
    cleanups.push(() => clearInterval(ticker));
    events.add('gateway', 'good', `gateway ${replica} listening on ${base} (${mode} mode)`);
    log.info({ url: base, frontDoor: frontDoor?.url, mode, replica }, 'gateway started');
    void fleet.tick(); // on the fleet view at once, not after the first interval

    let stopping: Promise<{ durationMs: number }> | undefined;
    return {
      url: `${base}/`,
      dashboardUrl: `${base}/_x/`,
      metricsUrl: `${base}/metrics`,
      frontDoorUrl: frontDoor?.url,
      adminToken: options.adminToken,
      mode,
      redis: options.redisUrl ? redactUrl(options.redisUrl) : undefined,
      replica,
      stop: () =>
        (stopping ??= (async () => {
          const started = Date.now();
          draining = true;
          events.add('gateway', 'warn', 'draining');
          log.info('draining');
          http.server.close();
          http.server.closeIdleConnections();
          dashboard.close();
          const deadline = started + config.server.drainTimeoutMs;
          while (http.inFlight() > 0 && Date.now() < deadline)
            await new Promise(r => setTimeout(r, 25));
          await closeAll();
          const durationMs = Date.now() - started;
          log.info({ durationMs }, 'stopped');
          return { durationMs };
        })()),
    };
  } catch (error) {
    log.error({ err: error }, 'start failed');
    await closeAll();
    throw error;
  }
}
