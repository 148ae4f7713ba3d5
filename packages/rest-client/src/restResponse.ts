/** Response headers as undici parses them: lower-case names, repeated headers as arrays. */
export type ResponseHeaders = Readonly<Record<string, string | string[] | undefined>>;

/**
 * A completed response as errors carry it (`HttpStatusError.response`); the `Response` class
 * implements it. A separate file, so that errors and responses do not import each other.
 */
export interface RestResponse<T = unknown> {
  /** Origin of the host that answered. */
  readonly host: string;
  readonly method: string;
  /** Path and query of the request, as sent. */
  readonly path: string;
  readonly status: number;
  /** HTTP status text (may be empty, e.g. over HTTP/2). */
  readonly reason: string;
  readonly headers: ResponseHeaders;
  /** The decoded body. */
  readonly body: T;
  /** Tries made, counting replays and retries. */
  readonly attempts: number;
  /** Milliseconds from the start of the call to the end of the body. */
  readonly durationMs: number;
  /** The request was safe to repeat. */
  readonly idempotent: boolean;
  /** True for a 2xx status. */
  readonly ok: boolean;
  /** Server time from `x-response-time` in ms; NaN when absent. */
  readonly time: number;
  /** Milliseconds from a `Retry-After` header, or undefined. */
  readonly retryAfterMs: number | undefined;
  /** The decoded body when `ok`; otherwise throws `HttpStatusError`. */
  value(): T;
}
