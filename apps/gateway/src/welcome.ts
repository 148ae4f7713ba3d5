import type { InProcessHandler } from '@x/dispatcher';

/**
 * The `builtin: welcome` backend: an in-process handler (`@x/dispatcher`'s `inProcess`) that
 * answers whatever no dispatch rule claims, with a map of the gateway.
 */
export const welcome: InProcessHandler = request => ({
  status: request.path === '/' ? 200 : 404,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({
    service: 'x-gateway',
    servedBy: `web/${request.instance.version}/${request.instance.instance} (in-process)`,
    ...(request.path === '/'
      ? {}
      : { error: { code: 'NOT_FOUND', message: `nothing at ${request.path}` } }),
    try: {
      dashboard: '/_x/',
      search: '/api/search?q=lamp',
      order: '/api/orders/42',
      report: 'POST /api/reports {"kind":"sales"}',
      reportJob: 'POST /api/report-jobs {"kind":"inventory","delayMs":0}',
      catalogViaDispatcher: '/catalog/info',
      ordersViaDispatcher: '/orders/42',
      metrics: '/metrics',
    },
  }),
});
