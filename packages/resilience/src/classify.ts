import { isXError } from './xError.js';
import { ConnectionError, HttpError, TimeoutError } from './errors.js';

/** Statuses that say "try again later" rather than "your request is wrong". */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);

/** Connection errors raised before any byte of the request was sent: always safe to retry. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

const LOCAL_REJECTIONS = new Set([
  'CIRCUIT_OPEN',
  'BULKHEAD_FULL',
  'RATE_LIMITED',
  'RETRY_BUDGET_EXHAUSTED',
  'ABORTED',
  'NO_ENDPOINT',
]);

/** The string `code`s along an error's `cause` chain, outermost first (at most 4 deep). */
function* codesOf(error: unknown): Generator<string> {
  for (
    let e = error, depth = 0;
    e && typeof e === 'object' && depth < 4;
    e = (e as { cause?: unknown }).cause, depth++
  ) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') yield code;
  }
}

/** The `code` of an error or of its `cause` chain (undici and Node put it on the cause). */
export function errorCode(error: unknown): string | undefined {
  for (const code of codesOf(error)) return code;
  return undefined;
}

/** True when the request certainly never reached the server (connection refused, DNS, connect timeout), at any depth of the `cause` chain. */
export function isNotSentError(error: unknown): boolean {
  for (const code of codesOf(error)) if (NOT_SENT_CODES.has(code)) return true;
  return false;
}

/** True for rejections made locally by a policy (open circuit, full bulkhead, rate limit, budget, abort). */
export function isLocalRejection(error: unknown): boolean {
  return isXError(error) && LOCAL_REJECTIONS.has(error.code);
}

/**
 * Default failure rule of circuit breakers: everything counts except local rejections and HTTP
 * answers that blame the request (4xx other than 408 and 429).
 */
export function isServiceFailure(error: unknown): boolean {
  if (isLocalRejection(error)) return false;
  if (error instanceof HttpError || isXError(error, 'HTTP_ERROR'))
    return (
      (error as HttpError).status >= 500 || RETRYABLE_STATUSES.has((error as HttpError).status)
    );
  return true;
}

/** Options of {@link isRetryable}. */
export interface RetryableOptions {
  /** Retry an attempt that timed out (an `attempt`-scoped `TIMEOUT`). Default false, as dace. */
  readonly retryOnTimeout?: boolean;
  /** The operation is idempotent. When false, only never-sent failures are retried. Default true. */
  readonly idempotent?: boolean;
}

/**
 * Default retry rule: never a local rejection or the operation's own deadline; an attempt timeout
 * only with `retryOnTimeout`; HTTP errors on 408/429/5xx and `CONNECTION_ERROR`s when the request
 * was idempotent; a connection that was never made, always; anything else when the operation is
 * idempotent.
 */
export function isRetryable(error: unknown, options: RetryableOptions = {}): boolean {
  if (isLocalRejection(error)) return false;
  if (error instanceof TimeoutError || isXError(error, 'TIMEOUT')) {
    return (error as TimeoutError).scope === 'attempt' && options.retryOnTimeout === true;
  }
  if (isNotSentError(error)) return true;
  if (options.idempotent === false) return false;
  if (error instanceof HttpError || isXError(error, 'HTTP_ERROR')) {
    return (error as HttpError).idempotent && RETRYABLE_STATUSES.has((error as HttpError).status);
  }
  // A request that may have reached the server is repeated only when that is safe.
  if (error instanceof ConnectionError || isXError(error, 'CONNECTION_ERROR'))
    return (error as ConnectionError).idempotent;
  return true;
}
