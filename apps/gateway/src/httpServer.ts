import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Metrics } from '@x/resilience';
import { ADMIN_BODY_LIMIT } from '@x/dispatcher';
import { httpStatusForError, type HttpEntrypoint } from '@x/routes';
import { GatewayError } from './gatewayError.js';
import type { Dashboard } from './dashboard.js';
import type { FrontDoorProxy } from './frontDoorProxy.js';
import type { Check } from './health.js';
import type { Pino } from './logger.js';
import { rewriteOrderUrl } from './ordersRoute.js';
import type { ReportJobs } from './reportJobs.js';
import type { ReportsClient } from './reportsClient.js';
import { RequestGuard } from './requestGuard.js';
import { acceptBudget } from './edgeBudget.js';
import { sendJson } from './sendJson.js';
import { serverSpan } from './tracing.js';
import type { Telemetry } from './telemetry.js';

/** What the gateway's HTTP server dispatches to. */
export interface ServerParts {
  /** This replica's id (`replicas.id`, default `hostname:pid`): the `X-Replica` of every answer. */
  readonly replicaId: string;
  readonly log: Pino;
  readonly metrics: Metrics;
  readonly renderMetrics: () => Promise<{ body: string; contentType: string }>;
  readonly telemetry: Telemetry;
  readonly dashboard: Dashboard;
  readonly entrypoints: {
    readonly search: HttpEntrypoint<unknown>;
    readonly orders: HttpEntrypoint<unknown>;
    readonly reports: HttpEntrypoint<unknown>;
    readonly jobs: HttpEntrypoint<unknown>;
  };
  readonly jobs: ReportJobs;
  readonly reports: ReportsClient;
  readonly proxy: FrontDoorProxy;
  readonly readiness: () => { ready: boolean; checks: Record<string, Check> };
  readonly isDraining: () => boolean;
  /** Slow clients: head and whole-request deadlines (408, connection closed). */
  readonly timeouts: {
    readonly headersTimeoutMs: number;
    readonly requestTimeoutMs: number;
    /** Largest client budget (`x-request-timeout-ms`) accepted; none: no cap. */
    readonly maxRequestBudgetMs?: number;
  };
}

/** The gateway's server with its in-flight request count (for the drain). */
export interface GatewayServer {
  readonly server: Server;
  /** Requests being answered, event streams excluded. */
  inFlight(): number;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Which latency series a path belongs to (the dashboard's endpoint cards). */
/** The route template of each traced endpoint (`http.route` of its server span). */
const ROUTE_OF: Record<string, string> = {
  search: '/api/search',
  orders: '/api/orders/:id',
  reports: '/api/reports',
  jobs: '/api/report-jobs',
  dispatcher: '/*',
};

function endpointOf(path: string): string | undefined {
  if (path === '/api/reports/stats') return undefined;
  if (path === '/api/search') return 'search';
  if (path.startsWith('/api/orders/')) return 'orders';
  if (path === '/api/reports') return 'reports';
  if (path.startsWith('/api/report-jobs')) return 'jobs';
  if (
    path.startsWith('/_x/') ||
    path === '/metrics' ||
    path === '/healthz' ||
    path === '/readyz' ||
    path === '/_x'
  )
    return undefined;
  return 'dispatcher';
}

/**
 * The gateway's one `node:http` server. Every request gets a request id (`X-Request-Id`, taken
 * from the client when well-formed) that is logged (pino child logger), returned, and forwarded.
 *
 * | path | handled by |
 * |---|---|
 * | `/api/search`, `/api/orders/:id`, `/api/reports`, `POST /api/report-jobs` | `@x/routes` HTTP entrypoints (`searchRoute.ts`, `ordersRoute.ts`, `reportsRoute.ts`, `reportJobs.ts`) |
 * | `GET /api/report-jobs/:id`, `GET /api/reports/stats` | job state, worker counters |
 * | `/_x/`, `/_x/state`, `/_x/events` | the dashboard (`dashboard.ts`) |
 * | `/_x/admin/…` | the dispatcher's admin API (token), through the front door |
 * | `/metrics`, `/healthz`, `/readyz` | Prometheus, liveness, readiness |
 * | anything else | the dispatcher's front door (`frontDoorProxy.ts`) |
 */
export function createGatewayServer(parts: ServerParts): GatewayServer {
  let inFlight = 0;
  const { headersTimeoutMs, requestTimeoutMs } = parts.timeouts;
  const maxBudgetMs = parts.timeouts.maxRequestBudgetMs ?? Infinity;
  const options = {
    headersTimeout: headersTimeoutMs,
    requestTimeout: requestTimeoutMs,
    // how often Node looks for expired requests: a fraction of the head deadline, within 0.1–1 s
    connectionsCheckingInterval: Math.min(1_000, Math.max(100, Math.floor(headersTimeoutMs / 4))),
  };
  const guard = new RequestGuard();
  const server = createServer(options, (req, res) => {
    if (guard.ignore(req)) {
      req.resume();
      return;
    }
    const given = req.headers['x-request-id'];
    const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    req.headers['x-request-id'] = id;
    res.setHeader('x-request-id', id);
    res.setHeader('x-replica', parts.replicaId);
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const endpoint = endpointOf(path);
    const started = performance.now();
    const log = parts.log.child({ reqId: id });
    const done = endpoint ? parts.telemetry.start(endpoint) : undefined;
    const streaming = path === '/_x/events';
    if (!streaming) inFlight++;
    res.on('close', () => {
      if (!streaming) inFlight--;
      const status = res.writableFinished ? res.statusCode : 499;
      const ms = Math.round((performance.now() - started) * 100) / 100;
      done?.(status === 499 ? 0 : status);
      if (endpoint) {
        parts.metrics.increment('gateway.requests', 1, { endpoint, status: String(status) });
        parts.metrics.histogram('gateway.request.duration', ms, { endpoint });
      }
      const line = { method: req.method, url, status, ms };
      // access lines are debug (LOG_LEVEL=debug shows them); a 5xx stays a warning
      if (status >= 500) log.warn(line, 'request failed');
      else log.debug(line, 'request');
    });
    const refusal = guard.refuse(req);
    if (refusal !== undefined) {
      req.resume();
      sendJson(
        res,
        refusal.status,
        { error: { code: refusal.code, message: refusal.message }, requestId: id },
        { connection: 'close' },
      );
      return;
    }
    if (parts.isDraining() && !path.startsWith('/healthz') && !path.startsWith('/readyz')) {
      req.resume();
      sendJson(
        res,
        503,
        { error: { code: 'DRAINING', message: 'the gateway is shutting down' }, requestId: id },
        { connection: 'close' },
      );
      return;
    }
    // one server span per API request when tracing is on (dashboard, metrics and probes are not traced)
    const span = endpoint ? serverSpan(req, res, ROUTE_OF[endpoint]!, path) : undefined;
    try {
      acceptBudget(req, maxBudgetMs);
      if (span === undefined) route(parts, req, res, path, id);
      else span.run(() => route(parts, req, res, path, id));
    } catch (error) {
      // the shared status table of @x/routes: a typed client mistake is a 4xx, not a 500
      const status = httpStatusForError(error);
      if (status >= 500) log.error({ err: error }, 'handler threw');
      if (!res.headersSent) {
        const known = status < 500 && error instanceof GatewayError;
        sendJson(res, status, {
          error: known
            ? { code: error.code, message: error.message }
            : { code: 'INTERNAL', message: 'internal error' },
          requestId: id,
        });
      }
    }
  });
  server.keepAliveTimeout = 5_000;
  return { server, inFlight: () => inFlight };
}

function route(
  parts: ServerParts,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  id: string,
): void {
  const { entrypoints } = parts;
  if (path === '/healthz') return sendJson(res, 200, { status: 'ok' });
  if (path === '/readyz') {
    const { ready, checks } = parts.readiness();
    return sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', checks });
  }
  if (path === '/metrics') {
    parts.renderMetrics().then(
      ({ body, contentType }) => {
        res.writeHead(200, { 'content-type': contentType });
        res.end(body);
      },
      error => sendJson(res, 500, { error: { code: 'METRICS', message: String(error) } }),
    );
    return;
  }
  // the dispatcher's admin API reads at most ADMIN_BODY_LIMIT: more is refused here (413), or its
  // early answer would race the upload and surface as a write error (502 EPIPE)
  if (path === '/_x/admin' || path.startsWith('/_x/admin/'))
    return parts.proxy(req, res, id, { maxBodyBytes: ADMIN_BODY_LIMIT });
  if (path === '/_x' || path.startsWith('/_x/')) {
    if (parts.dashboard.handle(req, res, path)) return;
    return sendJson(res, 404, { error: { code: 'NOT_FOUND', message: `nothing at ${path}` } });
  }
  if (path === '/api/search') return void entrypoints.search.handle(req, res);
  if (path.startsWith('/api/orders/') && rewriteOrderUrl(req))
    return void entrypoints.orders.handle(req, res);
  if (path === '/api/reports') return void entrypoints.reports.handle(req, res);
  if (path === '/api/reports/stats' && req.method === 'GET') {
    parts.reports
      .refreshStats()
      .then(() =>
        sendJson(res, 200, { totals: parts.reports.totals(), endpoints: parts.reports.snapshot() }),
      );
    return;
  }
  if (path === '/api/report-jobs') return void entrypoints.jobs.handle(req, res);
  const job = /^\/api\/report-jobs\/([^/]+)$/.exec(path);
  if (job && req.method === 'GET') {
    parts.jobs.get(decodePathSegment(job[1]!, 'report job id')).then(
      state =>
        state
          ? sendJson(res, 200, state)
          : sendJson(res, 404, {
              error: { code: 'NOT_FOUND', message: `no report job ${job[1]}` },
            }),
      (error: unknown) => {
        const known = error instanceof GatewayError;
        const retryAfterMs = known ? error.retryAfterMs : undefined;
        sendJson(
          res,
          known ? error.status : 500,
          {
            error: known
              ? { code: error.code, message: error.message }
              : { code: 'INTERNAL', message: 'internal error' },
            requestId: id,
          },
          retryAfterMs ? { 'retry-after': String(Math.ceil(retryAfterMs / 1_000)) } : {},
        );
      },
    );
    return;
  }
  parts.proxy(req, res, id);
}

/** A percent-decoded path segment; a malformed escape (`%`, `%E0%A4%A`) is 400 `INVALID_REQUEST`. */
function decodePathSegment(segment: string, field: string): string {
  try {
    return decodeURIComponent(segment);
  } catch (error) {
    throw new GatewayError(
      'INVALID_REQUEST',
      400,
      `${field}: expected a path segment with valid percent-encoding, got ${JSON.stringify(segment)}`,
      { cause: error },
    );
  }
}
