import { errorCode } from '@x/resilience';

/**
 * The HTTP status of the toolkit's stable error codes, whichever package threw them: the
 * client's mistakes are 4xx, trouble upstream is 502 / 503 / 504. One table, so an error keeps
 * its meaning however deep it surfaces (a worker-rpc `UNAVAILABLE` behind a route is a 503).
 */
export const HTTP_STATUS_BY_CODE: Readonly<Record<string, number>> = {
  // the client's mistakes
  TRANSLATION_FAILED: 400,
  INVALID_REQUEST: 400,
  INVALID_ARGUMENT: 400,
  PAYLOAD_TOO_LARGE: 413,
  FRAME_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  TOO_MANY_ATTEMPTS: 429,
  TOO_MANY_HEADERS: 431,
  // the upstream answered badly or not at all
  CONNECTION_ERROR: 502,
  HTTP_ERROR: 502,
  DECODE: 502,
  BAD_FRAME: 502,
  BACKEND_ERROR: 502,
  // no capacity upstream, or not yet / no longer there: retry later
  UNAVAILABLE: 503,
  OVERLOADED: 503,
  NO_ENDPOINT: 503,
  NO_ENDPOINTS: 503,
  CIRCUIT_OPEN: 503,
  BULKHEAD_FULL: 503,
  RETRY_BUDGET_EXHAUSTED: 503,
  NO_CAPACITY: 503,
  CANCELLED: 503,
  // the deadline passed
  TIMEOUT: 504,
  DEADLINE_EXCEEDED: 504,
};

/**
 * The status an error answers with: its own `status` / `statusCode` when it declares one in
 * 400–599, else {@link HTTP_STATUS_BY_CODE} for its `code` (an `XError`'s, or a Node error's),
 * else 500.
 */
export function httpStatusForError(error: unknown): number {
  const declared =
    (error as { status?: unknown } | null)?.status ??
    (error as { statusCode?: unknown } | null)?.statusCode;
  if (
    typeof declared === 'number' &&
    Number.isInteger(declared) &&
    declared >= 400 &&
    declared <= 599
  )
    return declared;
  const code = errorCode(error);
  return (code !== undefined && HTTP_STATUS_BY_CODE[code]) || 500;
}
