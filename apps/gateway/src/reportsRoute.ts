import { isXError } from '@x/resilience';
import {
  httpEntrypoint,
  json,
  route,
  schema,
  type HttpEntrypoint,
  type HttpMeta,
  type Route,
} from '@x/routes';
import type { EventLog } from './eventLog.js';
import { reportRequest, type Report, type ReportRequest } from './reportsApi.js';
import type { ReportsClient } from './reportsClient.js';
import { withinBudget } from './edgeBudget.js';

/**
 * `POST /api/reports` (`{"kind":"sales","rows":12}`) as an `@x/routes` route calling the reports
 * workers through `@x/worker-rpc` with a deadline of `deadlineMs`. The route's `ctx.signal` is
 * the call's signal: when the HTTP client disconnects, the entrypoint aborts it, worker-rpc sends
 * CANCEL and the worker stops. A report slower than the deadline answers
 * `504 {"error":{"code":"TIMEOUT",…}}`; a bad body answers 400.
 */
export function reportsRoute(
  reports: ReportsClient,
  deadlineMs: number,
  events: EventLog,
  options: { readonly maxDeadlineMs?: number } = {},
): { route: Route<any, any, any, any>; entrypoint: HttpEntrypoint<unknown> } {
  const entrypoint = httpEntrypoint({
    path: '/api/reports',
    method: 'POST',
    maxBodyBytes: 16_384,
    exposeErrors: true,
    ...(options.maxDeadlineMs === undefined ? {} : { maxDeadlineMs: options.maxDeadlineMs }),
  }) as HttpEntrypoint<unknown>;
  const generate = route({
    entrypoint,
    translators: [json(), schema(reportRequest, 'reportRequest')],
    metricLabel: 'reports',
    target: async (request: ReportRequest, ctx): Promise<Report> => {
      const requestId = (ctx.meta.http as HttpMeta | undefined)?.headers['x-request-id'];
      try {
        return await reports.generate(request, {
          // the client's budget (if smaller) travels in wrpc/1 to the worker
          timeoutMs: withinBudget(deadlineMs, ctx.remainingMs),
          signal: ctx.signal,
          meta: typeof requestId === 'string' ? { requestId } : {},
        });
      } catch (error) {
        if (isXError(error, 'CANCELLED'))
          events.add(
            'reports',
            'warn',
            `report ${request.kind} cancelled: the client disconnected`,
          );
        else if (isXError(error, 'TIMEOUT'))
          events.add(
            'reports',
            'warn',
            `report ${request.kind} missed its ${deadlineMs} ms deadline`,
          );
        throw error;
      }
    },
  });
  return { route: generate, entrypoint };
}
