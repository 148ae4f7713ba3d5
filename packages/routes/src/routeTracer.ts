import { Tracer, type TraceAttributes } from '@x/resilience';
import type { Outcome } from './outcome.js';

/**
 * The tracer of route executions: one span per message a route runs (`route <name>`), also
 * published on the `x:routes:execute` tracing channel.
 */
export const routeTracer = new Tracer('@x/routes', 'x:routes:execute');

/**
 * `x.outcome` of a settled execution: `ok`, `failed` (terminal: dead-lettered or answered with an
 * error by the entrypoint), `redeliver` (not terminal), `retried` (an asynchronous retry was
 * published) or `cancelled`; with `x.attempts` and, for failures, `x.failure_reason`.
 */
export function outcomeAttributes(outcome: Outcome): TraceAttributes {
  switch (outcome.kind) {
    case 'success':
      return { 'x.outcome': 'ok', 'x.attempts': outcome.attempts };
    case 'failure':
      return {
        'x.outcome': outcome.terminal ? 'failed' : 'redeliver',
        'x.attempts': outcome.attempts,
        'x.failure_reason': outcome.reason,
      };
    case 'deferred':
      return { 'x.outcome': 'retried', 'x.retry_via': outcome.via, 'x.delay_ms': outcome.delayMs };
    case 'cancelled':
      return { 'x.outcome': 'cancelled', 'x.attempts': outcome.attempts };
  }
}
