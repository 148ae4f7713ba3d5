import type { TraceSpan } from './tracing.js';

/** What {@link endSpanOnClose} reads of a response: `node:http`'s `ServerResponse` fits. */
export interface ClosingResponse {
  readonly statusCode: number;
  /** True once the whole answer was handed to the connection. */
  readonly writableFinished: boolean;
  once(event: 'close', listener: () => void): unknown;
}

/**
 * Ends an HTTP server span when its response closes: sets `http.response.status_code`, and fails
 * the span with `unfinished` when the answer was not sent whole (the client went away, the
 * connection was reset), or with `HTTP <status>` (`code` = the status) for a 5xx.
 */
export function endSpanOnClose(
  span: TraceSpan,
  res: ClosingResponse,
  unfinished = 'the answer was not sent whole',
): void {
  res.once('close', () => {
    const status = res.statusCode;
    span.setAttributes({ 'http.response.status_code': status });
    if (!res.writableFinished) span.end(new Error(unfinished));
    else if (status >= 500)
      span.end(Object.assign(new Error(`HTTP ${status}`), { code: String(status) }));
    else span.end();
  });
}
