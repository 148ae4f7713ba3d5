import { errorCode, isNotSentError } from '@x/resilience';
import {
  RequestAbortedError,
  ClosedError,
  ConnectError,
  InvalidCallError,
  ResponseTooLargeError,
  SocketError,
  RequestTimeoutError,
  isRestClientError,
  type RestClientError,
  type RestClientErrorOptions,
} from '../errors.js';

/** Connection failures before anything was sent, beyond `@x/resilience`'s `isNotSentError`. */
const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT',
]);

/** Codes meaning "the server closed or reset the connection". */
const CLOSED_CONNECTION_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

/** Limits needed to describe a failure. */
export interface FailureContext {
  readonly connectTimeoutMs: number;
  readonly maxResponseSize: number;
}

/**
 * Maps whatever undici or Node threw into a typed error. `afterHeaders` is true when the response
 * headers had arrived (the failure happened while reading the body), which rules out a stale
 * keep-alive connection.
 */
export function toRestClientError(
  error: unknown,
  info: RestClientErrorOptions,
  afterHeaders: boolean,
  context: FailureContext,
): RestClientError {
  if (isRestClientError(error)) return error;
  const code = errorCode(error);
  const options: RestClientErrorOptions = { ...info, cause: error };
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new RequestTimeoutError('connect', context.connectTimeoutMs, options);
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return new RequestTimeoutError('try', Number.NaN, options);
    case 'UND_ERR_RES_EXCEEDED_MAX_SIZE':
      return new ResponseTooLargeError(context.maxResponseSize, options);
    case 'UND_ERR_ABORTED':
    case 'ABORT_ERR':
      return new RequestAbortedError((error as { reason?: unknown }).reason ?? error, options);
    case 'UND_ERR_DESTROYED':
    case 'UND_ERR_CLOSED':
      return new ClosedError(options);
    case 'UND_ERR_INVALID_ARG':
    case 'UND_ERR_NOT_SUPPORTED':
    case 'ERR_INVALID_ARG_TYPE':
    case 'ERR_INVALID_ARG_VALUE':
    case 'ERR_INVALID_CHAR':
    case 'ERR_INVALID_HTTP_TOKEN':
      return new InvalidCallError(`invalid request: ${(error as Error).message}`, options);
  }
  if (
    (code !== undefined && CONNECT_CODES.has(code)) ||
    isNotSentError(error) ||
    /^(ERR_TLS_|CERT_|ERR_SSL_|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO_)/.test(code ?? '')
  ) {
    return new ConnectError(options);
  }
  const name =
    typeof error === 'object' && error !== null ? (error as { name?: unknown }).name : undefined;
  if (name === 'TimeoutError') return new RequestTimeoutError('total', Number.NaN, options);
  if (name === 'AbortError')
    return new RequestAbortedError((error as { cause?: unknown }).cause ?? error, options);
  return new SocketError(!afterHeaders && isStale(error, code), options);
}

/**
 * A failure that looks like the server closing an idle keep-alive connection just as the request
 * went out: a reset, a broken pipe or a close before any response byte, on a connection that had
 * already carried a response (when undici says how many bytes the socket read; a reset without
 * that information counts as stale).
 */
function isStale(error: unknown, code: string | undefined): boolean {
  if (code === undefined || !CLOSED_CONNECTION_CODES.has(code)) return false;
  const socket =
    typeof error === 'object' && error !== null
      ? (error as { socket?: { bytesRead?: unknown } }).socket
      : undefined;
  if (socket && typeof socket.bytesRead === 'number') return socket.bytesRead > 0;
  return code !== 'UND_ERR_SOCKET';
}
