/**
 * Demo `orders` instance. Both versions run this file; `X_VERSION` (set by the dispatcher) is in
 * every answer so the traffic split is visible, and `ORDERS_FEATURES=eta` adds a field (what a
 * new version would do).
 *
 * - `GET /orders/:id` (digits) → the order, 404 otherwise
 * - `GET /orders` → a few recent orders
 *
 * Fault knobs for demos: `ORDERS_FAIL_RATE` (0…1, answers 503) and `ORDERS_LATENCY_MS`.
 *
 * Deadlines: every answer says which budget the request arrived with (`x-budget-seen`, from
 * `x-request-timeout-ms`), and `GET /orders/_budget` (answered at once, no latency) returns the
 * budget of the last order request, for tests of the deadline's travel (docs/CONTEXT.md).
 */
import { DEADLINE_HEADER } from '@x/resilience';
import { instanceEnv, serveHttp, sleep } from '../backendRuntime.js';
import { sendJson } from '../sendJson.js';

const env = instanceEnv(8201);
const features = (process.env.ORDERS_FEATURES ?? '').split(',');
const failRate = Number(process.env.ORDERS_FAIL_RATE ?? 0);
const latencyMs = Number(process.env.ORDERS_LATENCY_MS ?? 3);
const STATUSES = ['placed', 'packed', 'shipped', 'delivered'];
/** The budget header of the last order request (`null`: it carried none). */
let lastBudget: string | null = null;

function order(id: number) {
  return {
    id: String(id),
    status: STATUSES[id % STATUSES.length],
    items: (id % 5) + 1,
    total: Math.round(((id * 13) % 500) * 100 + 99) / 100,
    version: env.version,
    instance: env.instance,
    ...(features.includes('eta')
      ? { eta: new Date(Date.UTC(2030, 0, 1 + (id % 28))).toISOString().slice(0, 10) }
      : {}),
  };
}

serveHttp(env, async (req, res, url) => {
  if (url.pathname === '/orders/_budget')
    return sendJson(res, 200, {
      budgetMs: lastBudget,
      instance: env.instance,
      version: env.version,
    });
  const budget = req.headers[DEADLINE_HEADER];
  lastBudget = typeof budget === 'string' ? budget : null;
  if (lastBudget !== null) res.setHeader('x-budget-seen', lastBudget);
  if (latencyMs > 0) await sleep(latencyMs * (0.5 + Math.random()));
  if (failRate > 0 && Math.random() < failRate)
    return sendJson(res, 503, { error: { code: 'UNAVAILABLE', message: 'injected failure' } });
  const match = /^\/orders\/([^/]+)$/.exec(url.pathname);
  if (req.method === 'GET' && match) {
    const id = match[1]!;
    if (!/^\d{1,9}$/.test(id))
      return sendJson(res, 404, { error: { code: 'NOT_FOUND', message: `no order ${id}` } });
    return sendJson(res, 200, order(Number(id)));
  }
  if (req.method === 'GET' && (url.pathname === '/orders' || url.pathname === '/orders/'))
    return sendJson(res, 200, {
      version: env.version,
      orders: [1001, 1002, 1003, 1004, 1005].map(order),
    });
  sendJson(res, 404, {
    error: { code: 'NOT_FOUND', message: `no ${req.method} ${url.pathname} on orders` },
  });
});
