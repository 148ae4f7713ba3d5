import type { IncomingMessage } from 'node:http';
import { DEADLINE_HEADER, deadlineHeaderValue, readDeadlineHeader } from '@x/resilience';

/** Absolute deadlines (`performance.now()` ms) of the requests that came with a budget. */
const deadlines = new WeakMap<IncomingMessage, number>();

/**
 * The edge's rule for a client's budget (`x-request-timeout-ms`, docs/CONTEXT.md): accepted up to
 * `maxMs` (`server.maxRequestBudgetMs`), a larger one is cut to it, a malformed one is dropped.
 * The header is rewritten to the accepted value, so every route's HTTP entrypoint reads the
 * capped budget; the deadline is remembered for the front-door proxy, which forwards what is left.
 */
export function acceptBudget(req: IncomingMessage, maxMs: number): void {
  if (req.headers[DEADLINE_HEADER] === undefined) return;
  const budgetMs = readDeadlineHeader(req.headers, { maxMs });
  if (budgetMs === undefined) {
    delete req.headers[DEADLINE_HEADER];
    return;
  }
  req.headers[DEADLINE_HEADER] = String(budgetMs);
  deadlines.set(req, performance.now() + budgetMs);
}

/** The header value of what is left of the request's accepted budget, or undefined without one. */
export function remainingBudgetHeader(req: IncomingMessage): string | undefined {
  const at = deadlines.get(req);
  return at === undefined ? undefined : deadlineHeaderValue(at - performance.now());
}

/** `total` capped by what is left for the route (`ctx.remainingMs`, `Infinity` without a budget). */
export function withinBudget(totalMs: number, remainingMs: number): number {
  return remainingMs < totalMs ? Math.max(1, Math.floor(remainingMs)) : totalMs;
}
