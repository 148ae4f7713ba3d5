import type { IncomingMessage } from 'node:http';
import { DEADLINE_HEADER, readDeadlineHeader } from '@x/resilience';

/**
 * The edge's rule for a client's budget (`x-request-timeout-ms`, docs/CONTEXT.md): accepted up to
 * `maxMs` (`server.maxRequestBudgetMs`), a larger one is cut to it, a malformed one is dropped.
 * The header is rewritten to the accepted value, so every route's HTTP entrypoint and the mounted
 * front door (which sends the instance what is left of it) read the capped budget.
 */
export function acceptBudget(req: IncomingMessage, maxMs: number): void {
  if (req.headers[DEADLINE_HEADER] === undefined) return;
  const budgetMs = readDeadlineHeader(req.headers, { maxMs });
  if (budgetMs === undefined) {
    delete req.headers[DEADLINE_HEADER];
    return;
  }
  req.headers[DEADLINE_HEADER] = String(budgetMs);
}

/** `total` capped by what is left for the route (`ctx.remainingMs`, `Infinity` without a budget). */
export function withinBudget(totalMs: number, remainingMs: number): number {
  return remainingMs < totalMs ? Math.max(1, Math.floor(remainingMs)) : totalMs;
}
