import type { Dispatcher, ResponseTuple } from '@x/dispatcher';
import {
  ConsecutiveBreaker,
  type BreakerStore,
  HttpError,
  RETRYABLE_STATUSES,
  RetryBudget,
  Tracer,
  errorCode,
  faultTolerant,
  parseRetryAfter,
  type Call,
  type FaultTolerantFunction,
  type FaultTolerantStats,
  type Logger,
  type Metrics,
  type PolicyEvent,
} from '@x/resilience';
import type { ResilienceConfig } from './config.js';

/** An order as the orders service answers it. */
export interface Order {
  readonly id: string;
  readonly status: string;
  readonly version?: string;
  readonly instance?: string;
  readonly [field: string]: unknown;
}

/** The answer of {@link OrdersClient}: live, from the fallback, or not found. */
export type OrderLookup =
  | {
      readonly found: true;
      readonly source: 'live' | 'fallback';
      readonly order: Order;
      readonly reason?: string;
    }
  | { readonly found: false };

/** The fault-tolerant call to one version of the orders module. */
export type VersionCall = FaultTolerantFunction<
  [id: string, headers: Record<string, string>],
  OrderLookup
>;

/** A circuit event of one version's breaker (`key` is `orders/<version>`). */
export type OrdersEvent = PolicyEvent;

/**
 * `run(options, id, headers)`: looks an order up on the version the dispatcher's traffic split
 * picks for this request, through that version's own deadline, retries, circuit breaker and
 * fallback. Each version has its own breaker: a hung v1 opens v1's circuit only, and v2's share
 * of the traffic keeps answering live.
 */
export interface OrdersClient {
  run(
    options: { readonly signal?: AbortSignal; readonly timeoutMs?: number },
    id: string,
    headers: Record<string, string>,
  ): Promise<OrderLookup>;
  /** One fault-tolerant call per version of the module. */
  readonly versions: ReadonlyMap<string, VersionCall>;
  /** The versions' stats summed (latency: the slowest version's); circuits keyed `orders/<version>`. */
  stats(): FaultTolerantStats;
  onEvent(listener: (event: OrdersEvent) => void): () => void;
  close(): Promise<void>;
}

/** What the orders client needs besides its configuration. */
export interface OrdersClientDeps {
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Decides the version (its traffic split) and names the host that pins a request to it. */
  readonly dispatcher: Pick<Dispatcher, 'explain' | 'getVersions' | 'addRequest'>;
  /** Default `'orders'`. */
  readonly module?: string;
  /**
   * Where the breakers keep their state (`@x/resilience`'s `BreakerStore`, key `orders/<version>`).
   * Default: each breaker in this process only. A shared store (Redis) makes the replicas of a
   * fleet adopt each other's open circuits: the seam for `redisBreakerStore`.
   */
  readonly breakerStore?: BreakerStore;
  /** The retry budget the versions share (a fleet-wide one with Redis). Default: this process's own. */
  readonly retryBudget?: RetryBudget;
}

/**
 * The order lookup, per upstream version. The dispatcher decides the version first
 * (`explain()`: dispatch rules and the sticky split, by the client's cookie), then the call goes
 * to the front door pinned to that version (`Host: <version>.orders.<host>`) through that
 * version's `faultTolerant` from `@x/resilience`: a deadline for the whole call, budgeted retries
 * (one retry budget shared by the versions), a circuit breaker and a concurrency limit, and a
 * fallback that answers `{ status: 'unknown', source: 'fallback' }` when everything failed.
 * A 404 is an answer, not a failure: it never trips the breaker nor triggers the fallback.
 */
export function createOrdersClient(
  config: ResilienceConfig['orders'],
  deps: OrdersClientDeps,
): OrdersClient {
  const module = deps.module ?? 'orders';
  const { dispatcher } = deps;
  const retryBudget = deps.retryBudget ?? new RetryBudget();
  const versions = new Map<string, VersionCall>();
  const keys = new Map<VersionCall, string>();
  let names: readonly string[];
  try {
    names = dispatcher.getVersions(module);
  } catch {
    names = []; // no such module: one call, routed by the front door like any request
  }
  for (const version of names.length > 0 ? names : ['']) {
    const key = version === '' ? module : `${module}/${version}`;
    const target = version === '' ? {} : { module, version };
    const call: VersionCall = faultTolerant(
      async (c: Call, id: string, headers: Record<string, string>): Promise<OrderLookup> => {
        const url = `/orders/${encodeURIComponent(id)}`;
        const res = await sendToInstance(dispatcher, c, url, target, headers);
        if (res.status === 404) return { found: false };
        return {
          found: true,
          source: 'live',
          order: JSON.parse(decoder.decode(res.body)) as Order,
        };
      },
      {
        // the breaker is keyed by the version (`orders/v1`), a name every replica shares (with a
        // shared store)
        dependencyId: key,
        timeout: config.timeoutMs,
        retryAttempts: config.retries,
        retryBudget,
        circuitResetTimeout: config.circuitResetMs,
        circuitBreaker: {
          strategy: () => new ConsecutiveBreaker(config.circuitOpenAfter),
          ...(deps.breakerStore ? { store: deps.breakerStore } : {}),
        },
        maxOpenPerNetloc: config.maxOpenPerHost,
        httpPoolSize: Math.min(config.maxOpenPerHost, 64),
        expectedIn: config.expectedMs,
        fallback: (error, id) => ({
          found: true,
          source: 'fallback',
          order: version === '' ? { id, status: 'unknown' } : { id, status: 'unknown', version },
          reason: errorCode(error) ?? 'ERROR',
        }),
        metrics: deps.metrics,
        logger: deps.logger,
      },
    );
    versions.set(version, call);
    keys.set(call, key);
  }
  const fallbackVersion = [...versions.keys()][0];

  /** The version the dispatcher's split picks for a request with these headers. */
  const versionFor = (id: string, headers: Record<string, string>): string => {
    try {
      return dispatcher.explain({
        url: `/orders/${encodeURIComponent(id)}`,
        headers: headers.cookie === undefined ? {} : { cookie: headers.cookie },
      }).version;
    } catch {
      return fallbackVersion!;
    }
  };

  return {
    versions,
    run(options, id, headers) {
      const call = versions.get(versionFor(id, headers)) ?? versions.get(fallbackVersion!)!;
      return call.run(options, id, headers);
    },
    stats() {
      const all = [...versions.values()].map(call => ({ key: keys.get(call)!, s: call.stats() }));
      const sum = (pick: (s: FaultTolerantStats) => number) =>
        all.reduce((total, { s }) => total + pick(s), 0);
      const max = (pick: (s: FaultTolerantStats) => number) =>
        all.reduce((most, { s }) => Math.max(most, pick(s)), 0);
      return {
        dependencyId: module,
        calls: sum(s => s.calls),
        successes: sum(s => s.successes),
        failures: sum(s => s.failures),
        fallbacks: sum(s => s.fallbacks),
        retries: sum(s => s.retries),
        hedges: sum(s => s.hedges),
        timeouts: sum(s => s.timeouts),
        degraded: sum(s => s.degraded),
        rejections: {
          circuit: sum(s => s.rejections.circuit),
          bulkhead: sum(s => s.rejections.bulkhead),
          budget: sum(s => s.rejections.budget),
        },
        inFlight: sum(s => s.inFlight),
        latencyMs: {
          p50: max(s => s.latencyMs.p50),
          p99: max(s => s.latencyMs.p99),
          mean: max(s => s.latencyMs.mean),
          max: max(s => s.latencyMs.max),
        },
        retryBudget: retryBudget.balance,
        circuits: all.flatMap(({ key, s }) => s.circuits.map(c => ({ ...c, key }))),
        limits: all.flatMap(({ key, s }) => s.limits.map(l => ({ ...l, key }))),
      };
    },
    onEvent(listener) {
      const offs = [...versions.values()].map(call =>
        call.onEvent(event =>
          listener(event.type === 'stateChange' ? { ...event, key: keys.get(call)! } : event),
        ),
      );
      return () => offs.forEach(off => off());
    },
    async close() {
      await Promise.all([...versions.values()].map(call => call.close()));
    },
  };
}

const decoder = new TextDecoder();
/** The orders calls' client spans (the instance continues the trace from their `traceparent`). */
const ordersTracer = new Tracer('@x/gateway', 'x:gateway:orders');

/**
 * One attempt: the request goes to an instance of the version in process, through the
 * dispatcher's `addRequest` (its instance slots, queue and deadline; the remaining budget goes to
 * the instance in `x-request-timeout-ms`), with no HTTP hop to the front door. A 408, 429 or 5xx
 * answer rejects with the `HttpError` `Call.http` would raise (the breaker and retries read it).
 */
async function sendToInstance(
  dispatcher: Pick<Dispatcher, 'addRequest'>,
  c: Call,
  url: string,
  target: { readonly module?: string; readonly version?: string },
  headers: Record<string, string>,
): Promise<ResponseTuple> {
  const span = ordersTracer.start('GET', {
    kind: 'client',
    attributes: {
      'http.request.method': 'GET',
      'url.path': url,
      ...(target.version === undefined ? {} : { 'x.version': target.version }),
    },
  });
  let sent = headers;
  if (span !== undefined) span.inject((sent = { ...headers }));
  const remaining = c.remainingMs;
  try {
    const res = await dispatcher.addRequest({
      url,
      ...target,
      headers: sent,
      signal: c.signal,
      ...(Number.isFinite(remaining) ? { timeoutMs: Math.max(1, Math.ceil(remaining)) } : {}),
    });
    span?.setAttributes({ 'http.response.status_code': res.status });
    if (res.status >= 500 || RETRYABLE_STATUSES.has(res.status)) throw statusError(res, url);
    span?.end();
    return res;
  } catch (error) {
    span?.end(error);
    throw error;
  }
}

/** The `HttpError` `Call.http` would raise for this answer. */
function statusError(res: ResponseTuple, url: string): HttpError {
  const headers: Record<string, string> = {};
  for (const [name, value] of res.headers) headers[name.toLowerCase()] = value;
  return new HttpError(
    res.status,
    'GET',
    url,
    headers,
    decoder.decode(res.body.subarray(0, 4096)),
    parseRetryAfter(headers['retry-after']),
    true,
  );
}
