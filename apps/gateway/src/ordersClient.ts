import {
  ConsecutiveBreaker,
  errorCode,
  faultTolerant,
  type Call,
  type FaultTolerantFunction,
  type Logger,
  type Metrics,
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

/** `getOrder(id, headers)` with its circuit, retry and stats controls. */
export type OrdersClient = FaultTolerantFunction<
  [id: string, headers: Record<string, string>],
  OrderLookup
>;

/**
 * The order lookup wrapped in `faultTolerant` from `@x/resilience`: a deadline for the whole
 * call, budgeted retries with backoff, a circuit breaker and a concurrency limit per host, and a
 * fallback that answers `{ status: 'unknown', source: 'fallback' }` when everything failed.
 *
 * It calls the dispatcher's front door (`GET /orders/:id`): the dispatch rules pick the `orders`
 * module and its traffic split picks v1 or v2 (sticky by the client's cookie, which is forwarded).
 * A 404 is an answer, not a failure: it never trips the breaker nor triggers the fallback.
 */
export function createOrdersClient(
  frontDoorUrl: string,
  config: ResilienceConfig['orders'],
  deps: { readonly metrics: Metrics; readonly logger: Logger },
): OrdersClient {
  return faultTolerant(
    async (call: Call, id: string, headers: Record<string, string>): Promise<OrderLookup> => {
      const res = await call.http.request('GET', `/orders/${encodeURIComponent(id)}`, { headers });
      if (res.status === 404) {
        await res.text();
        return { found: false };
      }
      return { found: true, source: 'live', order: await res.json<Order>() };
    },
    {
      dependencyId: 'orders',
      loadBalancer: [frontDoorUrl],
      timeout: config.timeoutMs,
      retryAttempts: config.retries,
      circuitResetTimeout: config.circuitResetMs,
      circuitBreaker: { strategy: () => new ConsecutiveBreaker(config.circuitOpenAfter) },
      maxOpenPerNetloc: config.maxOpenPerHost,
      httpPoolSize: Math.min(config.maxOpenPerHost, 64),
      expectedIn: config.expectedMs,
      fallback: (error, id) => ({
        found: true,
        source: 'fallback',
        order: { id, status: 'unknown' },
        reason: errorCode(error) ?? 'ERROR',
      }),
      metrics: deps.metrics,
      logger: deps.logger,
    },
  );
}
