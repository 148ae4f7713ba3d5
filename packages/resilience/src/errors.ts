import { XError, type XErrorOptions } from './xError.js';

/** Every code thrown by `@x/resilience`. */
export type ResilienceErrorCode =
  | 'TIMEOUT'
  | 'CIRCUIT_OPEN'
  | 'BULKHEAD_FULL'
  | 'RATE_LIMITED'
  | 'RETRY_BUDGET_EXHAUSTED'
  | 'NO_ENDPOINT'
  | 'HTTP_ERROR'
  | 'CONNECTION_ERROR'
  | 'DECODE'
  | 'ABORTED'
  | 'INVALID_ARGUMENT';

/** Base class of the errors of `@x/resilience`. */
export class ResilienceError extends XError {
  declare readonly code: ResilienceErrorCode;
  constructor(code: ResilienceErrorCode, message: string, options?: XErrorOptions) {
    super(code, message, options);
  }
}

/** The deadline passed. `scope` tells whether the whole operation or one attempt ran out. */
export class TimeoutError extends ResilienceError {
  constructor(
    readonly timeoutMs: number,
    readonly scope: 'operation' | 'attempt' = 'operation',
    options?: XErrorOptions,
  ) {
    super(
      'TIMEOUT',
      `${scope === 'attempt' ? 'attempt' : 'operation'} timed out after ${timeoutMs} ms`,
      options,
    );
  }
}

/**
 * The circuit for `key` is open (or isolated, or out of half-open probes). A breaker hands the same
 * instance to every call it rejects in one open period (fast-fail stays cheap): do not mutate it.
 */
export class CircuitOpenError extends ResilienceError {
  constructor(
    readonly key: string,
    /** Epoch ms when the breaker lets a probe through; 0 when unknown or isolated. */
    readonly retryAt: number,
    readonly isolated = false,
  ) {
    super('CIRCUIT_OPEN', `circuit ${key} is ${isolated ? 'isolated' : 'open'}`);
  }

  /** Milliseconds until the breaker lets a probe through; 0 when unknown, due or isolated. */
  get retryAfterMs(): number {
    return this.retryAt === 0 ? 0 : Math.max(0, this.retryAt - Date.now());
  }
}

/** The bulkhead (concurrency limit) and its queue are full, or the wait in its queue timed out. */
export class BulkheadFullError extends ResilienceError {
  constructor(
    readonly limit: number,
    readonly queue: number,
    readonly key?: string,
  ) {
    super('BULKHEAD_FULL', `bulkhead${key ? ` ${key}` : ''} full (limit ${limit}, queue ${queue})`);
  }
}

/** The rate limiter has no token; `retryAfterMs` says when the next one comes. */
export class RateLimitedError extends ResilienceError {
  constructor(readonly retryAfterMs: number) {
    super('RATE_LIMITED', `rate limited, next token in ${Math.ceil(retryAfterMs)} ms`);
  }
}

/** A retry was due but the retry budget had no tokens left; `cause` is the last failure. */
export class RetryBudgetExhaustedError extends ResilienceError {
  constructor(options?: XErrorOptions) {
    super('RETRY_BUDGET_EXHAUSTED', 'retry budget exhausted', options);
  }
}

/** The load balancer had no eligible endpoint. */
export class NoEndpointError extends ResilienceError {
  constructor(message = 'no eligible endpoint') {
    super('NO_ENDPOINT', message);
  }
}

/** The operation was aborted by the caller's signal. */
export class AbortedError extends ResilienceError {
  constructor(options?: XErrorOptions) {
    super('ABORTED', 'operation aborted', options);
  }
}

/** An HTTP response with a failing status. */
export class HttpError extends ResilienceError {
  constructor(
    readonly status: number,
    readonly method: string,
    readonly url: string,
    readonly headers: Record<string, string | string[] | undefined>,
    /** Up to the first 4 KiB of the body, decoded as text. */
    readonly body: string,
    /** Milliseconds from a `Retry-After` header, if the server sent one. */
    readonly retryAfterMs: number | undefined,
    /** False when repeating the request could repeat a side effect (non-idempotent, no key). */
    readonly idempotent: boolean,
  ) {
    super('HTTP_ERROR', `${method} ${url} answered ${status}`);
  }
}

/**
 * `Call.http` failed below HTTP: the connection could not be made or broke, the response was not
 * HTTP, or its body was cut. `cause` is undici's or Node's error (its `code`, e.g. `ECONNRESET`).
 */
export class ConnectionError extends ResilienceError {
  constructor(
    readonly method: string,
    readonly url: string,
    /** False when repeating the request could repeat a side effect (non-idempotent, no key). */
    readonly idempotent: boolean,
    options: XErrorOptions,
  ) {
    const cause = options.cause as { code?: unknown; message?: unknown } | undefined;
    const detail = typeof cause?.code === 'string' ? `${cause.code}: ` : '';
    super(
      'CONNECTION_ERROR',
      `${method} ${url} failed (${detail}${String(cause?.message)})`,
      options,
    );
  }
}

/** `Call.http`'s `json()` got a body that is not JSON; `cause` is the `SyntaxError`. */
export class DecodeError extends ResilienceError {
  constructor(
    readonly method: string,
    readonly url: string,
    options: XErrorOptions,
  ) {
    super('DECODE', `${method} ${url} answered a body that is not JSON`, options);
  }
}

/**
 * An option or argument is not valid (e.g. a duration that is a string, `NaN` or negative). The
 * message names the `field`, what was expected and what was received.
 */
export class InvalidArgumentError extends ResilienceError {
  constructor(
    readonly field: string,
    message: string,
    options?: XErrorOptions,
  ) {
    super('INVALID_ARGUMENT', message, options);
  }
}
