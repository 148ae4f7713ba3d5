import { parseRetryAfter } from '@x/resilience';
import { HttpStatusError } from './errors.js';
import type { RestResponse, ResponseHeaders } from './restResponse.js';
import { parseResponseTime } from './internal/responseTime.js';

export type { ResponseHeaders };

/**
 * A completed response whose body was read eagerly and decoded (lupyne's `Response`): JSON when the
 * content type says so (`application/json`, `*+json`, `text/x-json`), text otherwise, or as asked
 * by the `decode` option. `ok` is lupyne's truthiness (2xx); `value()` is its `__call__`.
 */
export class Response<T = unknown> implements RestResponse<T> {
  constructor(
    /** Origin of the host that answered. */
    readonly host: string,
    /** Method of the request. */
    readonly method: string,
    /** Path and query of the request, as sent. */
    readonly path: string,
    /** HTTP status code. */
    readonly status: number,
    /** HTTP status text (may be empty, e.g. over HTTP/2). */
    readonly reason: string,
    /** Response headers, as parsed by undici (not copied). */
    readonly headers: ResponseHeaders,
    /** The decoded body. */
    readonly body: T,
    /** Tries made, counting replays and retries (1 when the first try answered). */
    readonly attempts: number,
    /** Milliseconds from the start of the call to the end of the body. */
    readonly durationMs: number,
    /** The request was safe to repeat (idempotent method or idempotency key). */
    readonly idempotent: boolean,
  ) {}

  /** True for a 2xx status (lupyne's `__nonzero__`). */
  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  /**
   * Server time from the `x-response-time` header, in milliseconds; NaN when absent or malformed.
   * A bare number is read as seconds (lupyne's servers), `12.5ms`, `1.2s` and `350us` by unit.
   */
  get time(): number {
    return parseResponseTime(this.headers['x-response-time']);
  }

  /** Milliseconds from a `Retry-After` header, or undefined. */
  get retryAfterMs(): number | undefined {
    return parseRetryAfter(this.headers['retry-after']);
  }

  /** The decoded body when `ok`; otherwise throws {@link HttpStatusError} with status, reason and decoded body. */
  value(): T {
    if (this.status >= 200 && this.status < 300) return this.body;
    throw new HttpStatusError<T>(this, {
      host: this.host,
      method: this.method,
      path: this.path,
      idempotent: this.idempotent,
      attempts: this.attempts,
    });
  }
}
