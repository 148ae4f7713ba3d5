import { Tracer, redactUrl, type TraceSpan } from '@x/resilience';
import type { CallSpec } from './callSpec.js';
import type { Exchange } from './exchange.js';

/**
 * The tracer of every HTTP request attempt: a client span per try (OpenTelemetry HTTP semantic
 * conventions), also published on the `x:rest-client:request` tracing channel.
 */
export const requestTracer = new Tracer('@x/rest-client', 'x:rest-client:request');

/**
 * The tracer of logical calls that may take several tries (retries, hedges), broadcasts and
 * multicasts: an internal span, parent of their try spans (`x:rest-client:call`).
 */
export const callTracer = new Tracer('@x/rest-client', 'x:rest-client:call');

/** How many shard keys a span lists (the count is always given). */
export const MAX_TRACED_KEYS = 32;

/** `x.shard_keys` (the first {@link MAX_TRACED_KEYS}, comma-separated) and `x.shard_keys.count`. */
export function shardKeyAttributes(keys: readonly unknown[]): Record<string, string | number> {
  const shown = keys.length > MAX_TRACED_KEYS ? keys.slice(0, MAX_TRACED_KEYS) : keys;
  return { 'x.shard_keys': shown.join(','), 'x.shard_keys.count': keys.length };
}

/** Starts the client span of one try (call only when `requestTracer.enabled`). */
export function startTrySpan(spec: CallSpec, ex: Exchange): TraceSpan | undefined {
  let address: string | undefined;
  let port: number | undefined;
  try {
    const url = new URL(ex.host);
    address = url.hostname;
    port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  } catch {
    address = ex.host;
  }
  return requestTracer.start(spec.method, {
    kind: 'client',
    parent: spec.trace,
    attributes: {
      'http.request.method': spec.method,
      'server.address': address,
      'server.port': port,
      'url.full': redactUrl(ex.host + spec.path),
      'http.request.resend_count': ex.attempt > 1 ? ex.attempt - 1 : undefined,
      'x.attempt': ex.attempt,
      ...(spec.shardKeys !== undefined ? shardKeyAttributes(spec.shardKeys) : undefined),
    },
  });
}

/** Ends a try's span with its status code, or its error (`error.type` = the error's code). */
export function endTrySpan(span: TraceSpan, status: number, failure: unknown): void {
  if (status > 0) {
    span.setAttributes({
      'http.response.status_code': status,
      'error.type': status >= 400 && failure === undefined ? String(status) : undefined,
    });
  }
  span.end(failure);
}
