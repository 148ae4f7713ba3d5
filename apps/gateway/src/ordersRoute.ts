import {
  httpEntrypoint,
  route,
  schema,
  type HttpEntrypoint,
  type HttpMeta,
  type Route,
} from '@x/routes';
import { GatewayError } from './gatewayError.js';
import type { Order, OrdersClient } from './ordersClient.js';

/** The `:id` path parameter, checked. */
const orderParams = {
  parse(value: unknown): { id: string } {
    const id = (value as Record<string, string | undefined>).id ?? '';
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id))
      throw new Error('order id must be 1 to 64 letters, digits, _ or -');
    return { id };
  },
};

/**
 * `GET /api/orders/:id` as an `@x/routes` route (the HTTP entrypoint matches the pattern; `id`
 * reaches the translators as a path parameter): the target calls the fault-tolerant orders
 * client (see `ordersClient.ts`) with the route's signal (a client that disconnects cancels the
 * call), forwarding the request id and the split cookie. Answers the order with `source: 'live'`
 * or `'fallback'`, or 404.
 */
export function ordersRoute(
  orders: OrdersClient,
  options: { readonly maxDeadlineMs?: number } = {},
): {
  route: Route<any, any, any, any>;
  entrypoint: HttpEntrypoint<unknown>;
} {
  const entrypoint = httpEntrypoint({
    path: '/api/orders/:id',
    method: 'GET',
    message: 'params',
    exposeErrors: true,
    ...(options.maxDeadlineMs === undefined ? {} : { maxDeadlineMs: options.maxDeadlineMs }),
  }) as HttpEntrypoint<unknown>;
  const lookup = route({
    entrypoint,
    translators: [schema(orderParams, 'orderId')],
    metricLabel: 'orders',
    target: async (
      { id }: { id: string },
      ctx,
    ): Promise<Order & { source: string; reason?: string }> => {
      const http = ctx.meta.http as HttpMeta | undefined;
      const headers: Record<string, string> = {};
      const requestId = http?.headers['x-request-id'];
      if (typeof requestId === 'string') headers['x-request-id'] = requestId;
      if (typeof http?.headers.cookie === 'string') headers.cookie = http.headers.cookie;
      // the client's budget caps the call's deadline; addRequest sends what is left to the instance
      const budget = ctx.remainingMs === Infinity ? {} : { timeoutMs: ctx.remainingMs };
      const result = await orders.run({ signal: ctx.signal, ...budget }, id, headers);
      if (!result.found) throw new GatewayError('NOT_FOUND', 404, `no order ${id}`);
      return {
        ...result.order,
        source: result.source,
        ...(result.reason ? { reason: result.reason } : {}),
      };
    },
  });
  return { route: lookup, entrypoint };
}
