import { XError, isXError } from '@x/resilience';

/**
 * Every code `@x/worker-rpc` produces itself. Remote application errors keep the code their
 * handler threw (any string), and toto's numeric codes 1000–1010 map to {@link TOTO_ERROR_NAMES}.
 */
export type WorkerRpcErrorCode =
  /** The call's deadline (`timeoutMs`) passed on the client, or one attempt's `attemptTimeoutMs`. */
  | 'TIMEOUT'
  /** The worker refused to start (or stopped) work whose budget was spent. */
  | 'DEADLINE_EXCEEDED'
  /** The caller aborted, or the worker received CANCEL. */
  | 'CANCELLED'
  /** The endpoint is gone, unreachable or draining. */
  | 'UNAVAILABLE'
  /** A bounded queue is full (local queue, send queue, worker queue, broker queue). */
  | 'OVERLOADED'
  /** The connection has no endpoint to send to (toto's "No active connections"). */
  | 'NO_ENDPOINTS'
  /** No handler for the method (unknown path, prototype names, `__proto__`, ...). */
  | 'NOT_FOUND'
  /** The parameters could not be encoded or decoded, or a handler rejected them. */
  | 'INVALID_ARGUMENT'
  /** The handler threw something that is not a typed error. */
  | 'INTERNAL'
  /** The HTTP worker requires a bearer token and none (or a wrong one) was sent. */
  | 'UNAUTHENTICATED'
  /** A frame, header or body exceeded a configured limit. */
  | 'FRAME_TOO_LARGE'
  /** A frame could not be parsed (truncated, random bytes, bad lengths, bad UTF-8). */
  | 'BAD_FRAME'
  /** Unknown protocol version, message kind, codec or compression. */
  | 'UNSUPPORTED'
  /** The connection or worker was closed while the call was pending. */
  | 'CLOSED'
  /** The optional peer `zeromq` is not installed. */
  | 'ZMQ_MISSING';

/** Options of {@link WorkerRpcError}. */
export interface WorkerRpcErrorOptions {
  readonly cause?: unknown;
  /** A transient failure that another attempt may not hit. Default: derived from the code. */
  readonly retryable?: boolean;
  /** True when the error came from a worker (ERR frame or HTTP error body). */
  readonly remote?: boolean;
  readonly method?: string;
  /** Address of the endpoint that failed. */
  readonly endpoint?: string;
  /** Attempt number (0 = first) that produced the error. */
  readonly attempt?: number;
  /** Extra data a handler attached; must be encodable by the codec. */
  readonly details?: unknown;
  /** Numeric application code (toto's 1000–1010 or your own). */
  readonly appCode?: number;
  /** For `TIMEOUT`: whether the whole call or one attempt ran out. Default `'call'`. */
  readonly scope?: 'call' | 'attempt';
  /** Wait this long before retrying (from `Retry-After` or the worker). */
  readonly retryAfterMs?: number;
}

/** Codes that a retry may cure. */
const RETRYABLE = new Set<string>(['UNAVAILABLE', 'OVERLOADED']);

/**
 * toto's error codes (`toto/exceptions.py`) and the names they map to. A worker reply
 * `{'error': {'code': 1002, 'value': '...'}}` becomes `WorkerRpcError` with code `MISSING_METHOD`
 * and `appCode` 1002; an unknown number n becomes `APP_<n>`.
 */
export const TOTO_ERROR_NAMES: Readonly<Record<number, string>> = Object.freeze({
  1000: 'SERVER_ERROR',
  1001: 'INVALID_METHOD',
  1002: 'MISSING_METHOD',
  1003: 'MISSING_PARAMS',
  1004: 'NOT_AUTHORIZED',
  1005: 'USER_NOT_FOUND',
  1006: 'USER_ID_EXISTS',
  1007: 'INVALID_SESSION_ID',
  1008: 'INVALID_HMAC',
  1009: 'INVALID_RESPONSE_HMAC',
  1010: 'INVALID_USER_ID',
});

/** The name of a numeric application code: toto's names for 1000–1010, `APP_<n>` otherwise. */
export function appCodeName(code: number): string {
  return TOTO_ERROR_NAMES[code] ?? `APP_${code}`;
}

/**
 * The one error class of `@x/worker-rpc` (extends the shared `XError`, so `isXError(e, 'TIMEOUT')`
 * works across copies). `code` is a {@link WorkerRpcErrorCode} or an application code sent by a
 * handler. `retryable` says whether another attempt may succeed; whether a retry actually happens
 * also depends on the method being idempotent.
 */
export class WorkerRpcError extends XError {
  declare readonly code: WorkerRpcErrorCode | (string & {});
  readonly retryable: boolean;
  readonly remote: boolean;
  readonly method: string | undefined;
  readonly endpoint: string | undefined;
  readonly attempt: number | undefined;
  readonly details: unknown;
  readonly appCode: number | undefined;
  readonly scope: 'call' | 'attempt' | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(
    code: WorkerRpcErrorCode | (string & {}),
    message: string,
    options: WorkerRpcErrorOptions = {},
  ) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    this.retryable =
      options.retryable ??
      (RETRYABLE.has(code) || (code === 'TIMEOUT' && options.scope === 'attempt'));
    this.remote = options.remote ?? false;
    this.method = options.method;
    this.endpoint = options.endpoint;
    this.attempt = options.attempt;
    this.details = options.details;
    this.appCode = options.appCode;
    this.scope = code === 'TIMEOUT' ? (options.scope ?? 'call') : options.scope;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** True when `value` is a {@link WorkerRpcError} (any copy), optionally with `code`. */
export function isWorkerRpcError(value: unknown, code?: string): value is WorkerRpcError {
  return isXError(value, code) && typeof (value as { retryable?: unknown }).retryable === 'boolean';
}

/** The body of an ERR frame (wrpc/1) or of an HTTP error response (`{ error: WireError }`). */
export interface WireError {
  readonly code: string;
  readonly message: string;
  readonly retryable?: boolean;
  readonly details?: unknown;
  readonly appCode?: number;
  readonly retryAfterMs?: number;
}

const CODE_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
const MAX_MESSAGE = 4096;

/** Turns anything a handler threw into the wire shape. Untyped errors become `INTERNAL`. */
export function toWireError(error: unknown, debug = false): WireError {
  if (isXError(error)) {
    const e = error as Partial<WorkerRpcError> & XError;
    const out: { -readonly [K in keyof WireError]: WireError[K] } = {
      code: CODE_PATTERN.test(e.code) ? e.code : 'INTERNAL',
      message: String(e.message).slice(0, MAX_MESSAGE),
    };
    if (typeof e.retryable === 'boolean') out.retryable = e.retryable;
    if (e.details !== undefined) out.details = e.details;
    if (typeof e.appCode === 'number') out.appCode = e.appCode;
    if (typeof e.retryAfterMs === 'number') out.retryAfterMs = e.retryAfterMs;
    return out;
  }
  // toto style: throw { code: 1004, value: 'not authorized' } (a TotoException's __dict__)
  if (typeof error === 'object' && error !== null) {
    const { code, value } = error as { code?: unknown; value?: unknown };
    if (typeof code === 'number' && Number.isInteger(code)) {
      return {
        code: appCodeName(code),
        message: String(value ?? (error as Error).message ?? ''),
        appCode: code,
      };
    }
  }
  const message =
    error instanceof Error ? (debug && error.stack ? error.stack : error.message) : String(error);
  return { code: 'INTERNAL', message: message.slice(0, MAX_MESSAGE) };
}

/** Builds the client-side error from a decoded ERR body; malformed bodies give `BAD_FRAME`. */
export function fromWireError(
  body: unknown,
  context: { method?: string; endpoint?: string; attempt?: number } = {},
): WorkerRpcError {
  if (typeof body !== 'object' || body === null || typeof (body as WireError).code !== 'string') {
    return new WorkerRpcError('BAD_FRAME', 'malformed error reply from worker', {
      ...context,
      remote: true,
    });
  }
  const w = body as WireError;
  const code = CODE_PATTERN.test(w.code) ? w.code : 'INTERNAL';
  const options: { -readonly [K in keyof WorkerRpcErrorOptions]: WorkerRpcErrorOptions[K] } = {
    ...context,
    remote: true,
  };
  if (typeof w.retryable === 'boolean') options.retryable = w.retryable;
  if (w.details !== undefined) options.details = w.details;
  if (typeof w.appCode === 'number') options.appCode = w.appCode;
  if (typeof w.retryAfterMs === 'number' && w.retryAfterMs >= 0)
    options.retryAfterMs = w.retryAfterMs;
  return new WorkerRpcError(
    code,
    typeof w.message === 'string' ? w.message.slice(0, MAX_MESSAGE) : code,
    options,
  );
}

/** toto's error reply value `{ code, value }` for an error (used by the toto-compatible worker). */
export function toTotoError(error: unknown): { code: number; value: string } {
  const wire = toWireError(error);
  if (typeof wire.appCode === 'number') return { code: wire.appCode, value: wire.message };
  switch (wire.code) {
    case 'NOT_FOUND':
      return { code: 1002, value: wire.message };
    case 'INVALID_ARGUMENT':
      return { code: 1003, value: wire.message };
    case 'UNAUTHENTICATED':
      return { code: 1004, value: wire.message };
    default:
      return {
        code: 1000,
        value: wire.code === 'INTERNAL' ? wire.message : `${wire.code}: ${wire.message}`,
      };
  }
}

/** Client side of toto's `{'error': ...}` replies: a code/value object or the string `'timeout'`. */
export function fromTotoError(
  value: unknown,
  context: { method?: string; endpoint?: string } = {},
): WorkerRpcError {
  if (value === 'timeout')
    return new WorkerRpcError('TIMEOUT', 'worker reported a timeout', { ...context, remote: true });
  if (typeof value === 'object' && value !== null) {
    const { code, value: text } = value as { code?: unknown; value?: unknown };
    if (typeof code === 'number' && Number.isInteger(code)) {
      return new WorkerRpcError(appCodeName(code), String(text ?? ''), {
        ...context,
        remote: true,
        appCode: code,
      });
    }
  }
  return new WorkerRpcError('INTERNAL', typeof value === 'string' ? value : 'worker error', {
    ...context,
    remote: true,
    details: value,
  });
}
