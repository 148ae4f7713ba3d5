import { XError, isXError, type XErrorOptions } from '@x/resilience';
import type { RestResponse } from './restResponse.js';

/** Every code thrown by `@x/rest-client` (see the README for when each one is raised). */
export type RestClientErrorCode =
  | 'HTTP_ERROR'
  | 'TIMEOUT'
  | 'ABORTED'
  | 'CONNECT'
  | 'SOCKET'
  | 'NO_HOST'
  | 'BROADCAST'
  | 'DECODE'
  | 'RESPONSE_TOO_LARGE'
  | 'RETRY_BUDGET_EXHAUSTED'
  | 'INVALID_REQUEST'
  | 'QUEUE_FULL'
  | 'CLOSED';

/** Where a failed request was going, when the error belongs to one request. */
export interface RequestInfo {
  /** Origin of the host, e.g. `http://10.0.0.1:8080`. */
  readonly host?: string;
  readonly method?: string;
  /** Path and query as sent. */
  readonly path?: string;
  /** Safe to repeat: an idempotent method, or an idempotency key was sent. */
  readonly idempotent?: boolean;
  /** Tries made (1 for the first try) when the error was raised. */
  readonly attempts?: number;
}

const BRAND = Symbol.for('@x/rest-client/error');

/** Options of every {@link RestClientError}. */
export interface RestClientErrorOptions extends XErrorOptions, RequestInfo {}

/**
 * Base class of the errors of `@x/rest-client`. Discriminate by `code` (stable strings) or with
 * {@link isRestClientError}; it extends the shared `XError`, so `isXError(e)` works too.
 */
export class RestClientError extends XError {
  declare readonly code: RestClientErrorCode;
  /** Origin of the host the request went to, when known. */
  readonly host: string | undefined;
  readonly method: string | undefined;
  readonly path: string | undefined;
  /** Repeating the request cannot repeat a side effect. Default false. */
  readonly idempotent: boolean;
  /** Tries made when the error was raised (0 when none was sent). */
  attempts: number;

  constructor(code: RestClientErrorCode, message: string, options: RestClientErrorOptions = {}) {
    super(code, message, options);
    this.host = options.host;
    this.method = options.method;
    this.path = options.path;
    this.idempotent = options.idempotent ?? false;
    this.attempts = options.attempts ?? 0;
  }
}
Object.defineProperty(RestClientError.prototype, BRAND, { value: true });

/** True for any `@x/rest-client` error (any installed copy); with `code`, only that code. */
export function isRestClientError(
  value: unknown,
  code?: RestClientErrorCode,
): value is RestClientError {
  return isXError(value, code) && (value as { [BRAND]?: unknown })[BRAND] === true;
}

function where(options: RequestInfo): string {
  return options.method && options.path
    ? `${options.method} ${options.host ?? ''}${options.path}`
    : (options.host ?? 'request');
}

/**
 * A response with a failing status, thrown by `value()` and the verb methods (`get`, `post`...),
 * never by `call`/`unicast`/`broadcast`, which return the {@link Response}. `body` is decoded.
 */
export class HttpStatusError<T = unknown> extends RestClientError {
  declare readonly code: 'HTTP_ERROR';
  readonly status: number;
  /** Status text (lupyne's `reason`). */
  readonly reason: string;
  /** The decoded body (JSON when the content type says so, else text). */
  readonly body: T;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Milliseconds from a `Retry-After` header, when the server sent one. */
  readonly retryAfterMs: number | undefined;

  constructor(
    /** The whole response (a `Response`). */
    readonly response: RestResponse<T>,
    options: RestClientErrorOptions = {},
  ) {
    super(
      'HTTP_ERROR',
      `${where(options)} answered ${response.status}${response.reason ? ` ${response.reason}` : ''}`,
      options,
    );
    this.status = response.status;
    this.reason = response.reason;
    this.body = response.body;
    this.headers = response.headers;
    this.retryAfterMs = response.retryAfterMs;
  }
}

/**
 * A deadline passed. `phase` says which: `total` (the call, retries included), `try` (one
 * attempt), `connect` (opening the connection). `scope` is the `@x/resilience` view of the same:
 * `operation` for `total`, `attempt` otherwise.
 */
export class RequestTimeoutError extends RestClientError {
  declare readonly code: 'TIMEOUT';
  readonly scope: 'operation' | 'attempt';

  constructor(
    readonly phase: 'total' | 'try' | 'connect',
    readonly timeoutMs: number,
    options: RestClientErrorOptions = {},
  ) {
    super('TIMEOUT', `${where(options)} timed out (${phase} timeout ${timeoutMs} ms)`, options);
    this.scope = phase === 'total' ? 'operation' : 'attempt';
  }
}

/** The caller's `signal` aborted the call; `reason` is the signal's reason. */
export class RequestAbortedError extends RestClientError {
  declare readonly code: 'ABORTED';
  constructor(
    readonly reason: unknown,
    options: RestClientErrorOptions = {},
  ) {
    super(
      'ABORTED',
      `${where(options)} aborted${reason instanceof Error ? `: ${reason.message}` : typeof reason === 'string' ? `: ${reason}` : ''}`,
      {
        cause: reason,
        ...options,
      },
    );
  }
}

/** The connection could not be opened (refused, DNS, unreachable, TLS). Nothing was sent. */
export class ConnectError extends RestClientError {
  declare readonly code: 'CONNECT';
  constructor(options: RestClientErrorOptions = {}) {
    super('CONNECT', `${where(options)}: cannot connect${describeCause(options.cause)}`, options);
  }
}

/**
 * The connection failed after the request may have been sent (reset, closed by the server, bad
 * HTTP). `stale` is true when it looks like a keep-alive connection the server had closed.
 */
export class SocketError extends RestClientError {
  declare readonly code: 'SOCKET';
  constructor(
    readonly stale: boolean,
    options: RestClientErrorOptions = {},
  ) {
    super('SOCKET', `${where(options)}: connection failed${describeCause(options.cause)}`, options);
  }
}

/** No host is eligible: none configured, all eliminated by `priority`, ejected or excluded. */
export class NoHostError extends RestClientError {
  declare readonly code: 'NO_HOST';
  constructor(message = 'no eligible host', options: RestClientErrorOptions = {}) {
    super('NO_HOST', message, options);
  }
}

/** A body could not be decoded (malformed JSON, bad compression); `snippet` shows its start. */
export class ResponseDecodeError extends RestClientError {
  declare readonly code: 'DECODE';
  constructor(
    readonly status: number,
    readonly contentType: string | undefined,
    /** The first 200 characters of the body. */
    readonly snippet: string,
    options: RestClientErrorOptions = {},
  ) {
    super(
      'DECODE',
      `${where(options)}: cannot decode ${contentType ?? 'body'} (status ${status}): ${JSON.stringify(snippet)}${describeCause(options.cause)}`,
      options,
    );
  }
}

/** The response body was larger than `maxResponseSize`; it was cut off and the connection closed. */
export class ResponseTooLargeError extends RestClientError {
  declare readonly code: 'RESPONSE_TOO_LARGE';
  constructor(
    readonly limit: number,
    options: RestClientErrorOptions = {},
  ) {
    super('RESPONSE_TOO_LARGE', `${where(options)}: response larger than ${limit} bytes`, options);
  }
}

/** A retry was due but the retry budget was spent; `cause` is the last failure. */
export class RetryBudgetDeniedError extends RestClientError {
  declare readonly code: 'RETRY_BUDGET_EXHAUSTED';
  constructor(options: RestClientErrorOptions = {}) {
    super(
      'RETRY_BUDGET_EXHAUSTED',
      `${where(options)}: retry budget exhausted${describeCause(options.cause)}`,
      options,
    );
  }
}

/** Bad input: a path that is an absolute URL or escapes the host, a bad method, query, body or option. */
export class InvalidCallError extends RestClientError {
  declare readonly code: 'INVALID_REQUEST';
  constructor(message: string, options: RestClientErrorOptions = {}) {
    super('INVALID_REQUEST', message, options);
  }
}

/** `maxPending` requests already wait for a connection. */
export class PoolQueueFullError extends RestClientError {
  declare readonly code: 'QUEUE_FULL';
  constructor(
    readonly maxPending: number,
    options: RestClientErrorOptions = {},
  ) {
    super(
      'QUEUE_FULL',
      `${where(options)}: ${maxPending} requests already wait for a connection`,
      options,
    );
  }
}

/** The client was closed (or the host removed) before or while the request ran. */
export class ClosedError extends RestClientError {
  declare readonly code: 'CLOSED';
  constructor(options: RestClientErrorOptions = {}) {
    super('CLOSED', `${where(options)}: client closed`, options);
  }
}

function describeCause(cause: unknown): string {
  if (cause === undefined || cause === null) return '';
  const code = (cause as { code?: unknown }).code;
  const message = (cause as { message?: unknown }).message;
  return ` (${typeof code === 'string' ? `${code}: ` : ''}${typeof message === 'string' ? message : String(cause)})`;
}
