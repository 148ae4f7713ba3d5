import type { ServerResponse } from 'node:http';
import { endSpanOnClose, Tracer } from '@x/resilience';
import type { RouteDecision } from '../routeDecision.js';

/** Spans of the front door (`@x/dispatcher`, channel `x:dispatcher:frontDoor`). */
export const frontDoorTracer = new Tracer('@x/dispatcher', 'x:dispatcher:frontDoor');

const isTraceHeader = (name: string): boolean => {
  const lower = name.toLowerCase();
  return lower === 'traceparent' || lower === 'tracestate';
};

/**
 * One span per proxied request (kind `server`, named `<METHOD> <module>`), continuing the
 * caller's `traceparent`, with the module, version and instance that served it and the status;
 * the instance receives this span's `traceparent` instead of the caller's, so its spans nest under
 * the front door's. Does nothing (allocates nothing) when nobody traces.
 */
export function traceForward(
  method: string,
  url: string,
  headers: string[],
  decision: RouteDecision,
  instanceId: string,
  res: ServerResponse,
): void {
  if (!frontDoorTracer.enabled) return;
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const carrier: Record<string, string> = {};
  for (let i = 0; i < headers.length; i += 2)
    if (isTraceHeader(headers[i]!)) carrier[headers[i]!.toLowerCase()] = headers[i + 1]!;
  const span = frontDoorTracer.start(`${method} ${decision.module}`, {
    kind: 'server',
    parent: carrier,
    attributes: {
      'http.request.method': method,
      'url.path': path,
      'x.module': decision.module,
      'x.version': decision.version,
      'x.instance': instanceId,
    },
  });
  if (span === undefined) return;
  for (let i = headers.length - 2; i >= 0; i -= 2)
    if (isTraceHeader(headers[i]!)) headers.splice(i, 2);
  const out: Record<string, string> = {};
  span.inject(out);
  for (const name in out) headers.push(name, out[name]!);
  endSpanOnClose(span, res);
}
