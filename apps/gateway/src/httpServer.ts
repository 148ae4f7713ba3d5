import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { MountedFrontDoor } from '@x/dispatcher';
import {
  httpRouter,
  httpStatusForError,
  type HttpEntrypoint,
  type HttpMatch,
  type HttpMount,
} from '@x/routes';
import { dropClientAddressHeaders } from './clientAddressHeaders.js';
import { GatewayError } from './gatewayError.js';
import type { Dashboard } from './dashboard.js';
import type { Check } from './health.js';
import type { Pino } from './logger.js';
import type { ReportJobs } from './reportJobs.js';
import type { ReportsClient } from './reportsClient.js';
import { PipelineGate, type Metrics } from '@x/resilience';
import { RequestGuard } from './requestGuard.js';
import { acceptBudget } from './edgeBudget.js';
import { sendJson } from './sendJson.js';
import { serverSpan } from './tracing.js';
import type { EdgeRateLimit } from './edgeRateLimit.js';
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
  /** The dispatcher's front door mounted on this server (`dispatcher.mount()`): what no route takes. */
  readonly frontDoor: Pick<MountedFrontDoor, 'handler' | 'upgrade'>;
  /** Edge rate limits (`rateLimit:`); undefined when none is configured. */
  readonly rateLimit?: EdgeRateLimit;
  readonly readiness: () => { ready: boolean; checks: Record<string, Check> };
  readonly isDraining: () => boolean;
  /** Slow clients: head and whole-request deadlines (408, connection closed). */
  readonly timeouts: {
    readonly headersTimeoutMs: number;
    readonly requestTimeoutMs: number;
    /** Largest client budget (`x-request-timeout-ms`) accepted; none: no cap. */
    readonly maxRequestBudgetMs?: number;
    /**
     * Requests of one connection served at a time (HTTP/1.1 pipelining; {@link PipelineGate}).
     * Default 8.
     */
    readonly maxPipelinedRequests?: number;
  };
}

/** The gateway's server with its in-flight request count (for the drain). */
export interface GatewayServer {
  readonly server: Server;
  /** Requests being answered, event streams excluded. */
  inFlight(): number;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** One request while the gateway answers it: what the access log, metrics and telemetry need. */
interface Exchange {
  readonly id: string;
  readonly path: string;
  /** The telemetry endpoint (dashboard card, `endpoint` label), once the router matched one. */
  endpoint: string | undefined;
  done: ((status: number) => void) | undefined;
  /** Marks an event stream: not counted in flight (the drain does not wait for it). */
  stream(): void;
}

/** How a matched path is served: its telemetry endpoint (traced when set), and whether it answers while draining. */
interface Endpoint {
  readonly path: string;
  readonly methods: readonly string[];
  /** The dashboard card and metrics label; these requests are also traced (`http.route` = `path`). */
  readonly endpoint?: string;
  /** Liveness and readiness answer while the gateway drains. */
  readonly duringDrain?: boolean;
  serve(req: IncomingMessage, res: ServerResponse, match: HttpMatch, exchange: Exchange): void;
}

/**
 * The gateway's one `node:http` server. Every request gets a request id (`X-Request-Id`, taken
 * from the client when well-formed) that is logged (pino child logger), returned, and forwarded.
 * Its path is matched once, by one `@x/routes` `httpRouter()` (find-my-way); the match names the
 * endpoint of the access log, metrics, dashboard card and server span.
 *
 * | path | handled by |
 * |---|---|
 * | `GET /api/search`, `GET /api/orders/:id`, `POST /api/reports`, `POST /api/report-jobs` | `@x/routes` HTTP entrypoints (`searchRoute.ts`, `ordersRoute.ts`, `reportsRoute.ts`, `reportJobs.ts`) |
 * | `GET /api/report-jobs/:id`, `GET /api/reports/stats` | job state, worker counters |
 * | `/_x`, `/_x/*` | the dashboard (`dashboard.ts`) |
 * | `/_x/admin`, `/_x/admin/*` | the dispatcher's admin API (token), in its mounted front door |
 * | `/metrics`, `/healthz`, `/readyz` | Prometheus, liveness, readiness |
 * | anything else | the dispatcher's front door, mounted here (`dispatcher.mount()`) |
 *
 * A connection pipelining requests has at most `maxPipelinedRequests` of them served at a time
 * (`PipelineGate` of `@x/resilience`): one socket cannot take every route worker and queue place.
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
  // one connection pipelining many requests gets maxPipelinedRequests served at a time; a full
  // connection whose answers make no progress for requestTimeoutMs is closed
  const gate = new PipelineGate({
    maxInFlight: parts.timeouts.maxPipelinedRequests ?? 8,
    stallTimeoutMs: requestTimeoutMs,
  });
  const exchanges = new WeakMap<IncomingMessage, Exchange>();

  /** Starts an endpoint's telemetry and span (when it has one) and serves the request in it. */
  const enter = (
    req: IncomingMessage,
    res: ServerResponse,
    exchange: Exchange,
    spec: Pick<Endpoint, 'path' | 'endpoint' | 'duringDrain'>,
    serve: () => void,
  ): void => {
    if (spec.endpoint !== undefined) {
      exchange.endpoint = spec.endpoint;
      exchange.done = parts.telemetry.start(spec.endpoint);
    }
    if (parts.isDraining() && !spec.duringDrain) {
      req.resume();
      sendJson(
        res,
        503,
        {
          error: { code: 'DRAINING', message: 'the gateway is shutting down' },
          requestId: exchange.id,
        },
        { connection: 'close' },
      );
      return;
    }
    if (spec.endpoint === undefined) return serve();
    // one server span per API request when tracing is on (dashboard, metrics and probes are not traced)
    const traced = (): void => {
      const span = serverSpan(req, res, spec.path, exchange.path);
      if (span === undefined) serve();
      else span.run(serve);
    };
    const limit = parts.rateLimit;
    if (limit === undefined) return traced();
    // edge rate limits (per client, global; shared by the replicas with Redis): 429 beyond them
    limit
      .check(req)
      .then(
        refusal => {
          if (refusal === undefined) return traced();
          req.resume();
          const seconds = Math.max(1, Math.ceil(refusal.retryAfterMs / 1_000));
          sendJson(
            res,
            429,
            {
              error: {
                code: 'RATE_LIMITED',
                message: `over the ${refusal.scope === 'client' ? 'per-client' : 'global'} rate limit; retry after ${seconds} s`,
              },
              requestId: exchange.id,
            },
            { 'retry-after': String(seconds) },
          );
        },
        () => traced(), // a limiter that fails never fails the request
      )
      .catch((error: unknown) => {
        parts.log.error({ err: error, reqId: exchange.id }, 'handler threw');
        if (!res.headersSent)
          sendJson(res, 500, {
            error: { code: 'INTERNAL', message: 'internal error' },
            requestId: exchange.id,
          });
      });
  };

  const router = httpRouter();
  for (const [name, spec] of Object.entries(endpoints(parts))) {
    const mount: HttpMount = {
      name,
      path: spec.path,
      methods: spec.methods,
      serve: (req, res, match) => {
        const exchange = exchanges.get(req)!;
        enter(req, res, exchange, spec, () => spec.serve(req, res, match, exchange));
      },
    };
    router.mount(mount);
  }
  /** What no route takes: the dispatcher's front door (dispatch rules, module hosts, default module). */
  const fallback = { path: '/*', endpoint: 'dispatcher' };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
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
    let streaming = false;
    const exchange: Exchange = {
      id,
      path: q === -1 ? url : url.slice(0, q),
      endpoint: undefined,
      done: undefined,
      stream: () => {
        if (streaming) return;
        streaming = true;
        inFlight--;
      },
    };
    exchanges.set(req, exchange);
    const started = performance.now();
    const log = parts.log.child({ reqId: id });
    inFlight++;
    res.on('close', () => {
      if (!streaming) inFlight--;
      const status = res.writableFinished ? res.statusCode : 499;
      const ms = Math.round((performance.now() - started) * 100) / 100;
      exchange.done?.(status === 499 ? 0 : status);
      const endpoint = exchange.endpoint;
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
    try {
      acceptBudget(req, maxBudgetMs);
      dropClientAddressHeaders(req);
      if (router.handle(req, res)) return;
      // find-my-way matches no path with a malformed escape: under /api/ that is the client's mistake
      if (exchange.path.startsWith('/api/')) refuseMalformedPath(exchange.path);
      enter(req, res, exchange, fallback, () => parts.frontDoor.handler(req, res));
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
  };
  const server = createServer(options, (req, res) => gate.admit(req, res, handle));
  // protocol upgrades (WebSocket) go to the dispatcher's instances; none while draining
  server.on('upgrade', (req: IncomingMessage, socket, head: Buffer) => {
    if (parts.isDraining()) socket.destroy();
    else {
      dropClientAddressHeaders(req);
      parts.frontDoor.upgrade(req, socket, head);
    }
  });
  server.keepAliveTimeout = 5_000;
  return { server, inFlight: () => inFlight };
}

/** The gateway's own paths (find-my-way patterns), each with its endpoint and handler. */
function endpoints(parts: ServerParts): Record<string, Endpoint> {
  const { entrypoints, frontDoor } = parts;
  /** An `@x/routes` HTTP entrypoint, mounted on the gateway's router under its own pattern. */
  const route = (entrypoint: HttpEntrypoint<unknown>, endpoint: string): Endpoint => ({
    path: entrypoint.path,
    methods: entrypoint.methods,
    endpoint,
    serve: (req, res, match) => entrypoint.serve(req, res, match),
  });
  const admin: Endpoint = {
    path: '/_x/admin',
    methods: ['*'],
    serve: (req, res) => frontDoor.handler(req, res),
  };
  const dashboard: Endpoint = {
    path: '/_x',
    methods: ['*'],
    serve: (req, res, match, exchange) => {
      // an event stream lasts as long as its client: the drain does not wait for it
      if (match.path === '/_x/events') exchange.stream();
      if (parts.dashboard.handle(req, res, match.path)) return;
      sendJson(res, 404, { error: { code: 'NOT_FOUND', message: `nothing at ${match.path}` } });
    },
  };
  return {
    search: route(entrypoints.search, 'search'),
    orders: route(entrypoints.orders, 'orders'),
    reports: route(entrypoints.reports, 'reports'),
    jobs: route(entrypoints.jobs, 'jobs'),
    jobState: {
      path: '/api/report-jobs/:id',
      methods: ['GET'],
      endpoint: 'jobs',
      serve: (_req, res, match, exchange) => {
        // decoded by find-my-way (a malformed escape never matches: see refuseMalformedPath)
        const id = match.params.id!;
        // with Redis the state comes from the shared queue: the same answer on every replica
        parts.jobs.get(id).then(
          state =>
            state
              ? sendJson(res, 200, state)
              : sendJson(res, 404, {
                  error: { code: 'NOT_FOUND', message: `no report job ${id}` },
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
                requestId: exchange.id,
              },
              retryAfterMs ? { 'retry-after': String(Math.ceil(retryAfterMs / 1_000)) } : {},
            );
          },
        );
      },
    },
    reportStats: {
      path: '/api/reports/stats',
      methods: ['GET'],
      serve: (_req, res) => {
        parts.reports.refreshStats().then(() =>
          sendJson(res, 200, {
            totals: parts.reports.totals(),
            endpoints: parts.reports.snapshot(),
          }),
        );
      },
    },
    healthz: {
      path: '/healthz',
      methods: ['*'],
      duringDrain: true,
      serve: (_req, res) => sendJson(res, 200, { status: 'ok' }),
    },
    readyz: {
      path: '/readyz',
      methods: ['*'],
      duringDrain: true,
      serve: (_req, res) => {
        const { ready, checks } = parts.readiness();
        sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', checks });
      },
    },
    metrics: {
      path: '/metrics',
      methods: ['*'],
      serve: (_req, res) => {
        parts.renderMetrics().then(
          ({ body, contentType }) => {
            res.writeHead(200, { 'content-type': contentType });
            res.end(body);
          },
          error => sendJson(res, 500, { error: { code: 'METRICS', message: String(error) } }),
        );
      },
    },
    admin,
    adminPaths: { ...admin, path: '/_x/admin/*' },
    dashboard,
    dashboardPaths: { ...dashboard, path: '/_x/*' },
  };
}

/** The gateway's parameterised paths, named for a 400 about their parameter. */
const PARAMETER_OF: ReadonlyArray<readonly [prefix: string, field: string]> = [
  ['/api/report-jobs/', 'report job id'],
  ['/api/orders/', 'order id'],
];

/** Throws 400 `INVALID_REQUEST` when the path has a malformed percent-escape (`%`, `%E0%A4%A`). */
function refuseMalformedPath(path: string): void {
  try {
    decodeURIComponent(path);
  } catch (error) {
    const [prefix, field] = PARAMETER_OF.find(([p]) => path.startsWith(p)) ?? ['', 'path'];
    throw new GatewayError(
      'INVALID_REQUEST',
      400,
      `${field}: expected a path segment with valid percent-encoding, got ${JSON.stringify(path.slice(prefix.length))}`,
      { cause: error },
    );
  }
}
