/**
 * The one header every `@x` package uses to carry a request's remaining budget over HTTP: a
 * non-negative integer number of milliseconds, relative (no clock agreement between hosts needed).
 * A receiver reads it with {@link readDeadlineHeader}, caps it, subtracts the time it spends, and
 * sends what is left on with {@link deadlineHeaderValue}. See `docs/CONTEXT.md`.
 */
export const DEADLINE_HEADER = 'x-request-timeout-ms';

/**
 * The header worker-rpc's HTTP transport used before {@link DEADLINE_HEADER}; still read (and
 * sent by worker-rpc) for compatibility.
 */
export const LEGACY_RPC_DEADLINE_HEADER = 'x-rpc-timeout-ms';

/** Options of {@link readDeadlineHeader}. */
export interface ReadDeadlineHeaderOptions {
  /** Largest budget accepted (a larger one is cut to this). Default: no cap. */
  readonly maxMs?: number;
  /** Also read these header names when {@link DEADLINE_HEADER} is absent (e.g. the legacy one). */
  readonly fallbackNames?: readonly string[];
}

/** Header bags accepted by {@link readDeadlineHeader}: Node's, a plain record, or a fetch `Headers`. */
export type DeadlineHeaderSource =
  | { get(name: string): string | null | undefined }
  | Readonly<Record<string, string | readonly string[] | undefined>>;

const DIGITS = /^\s*\d{1,15}\s*$/;

/**
 * The remaining budget an incoming request carries, in ms, or `undefined` when it carries none.
 * A malformed value (not a plain non-negative integer, repeated with different values) is
 * ignored and treated as absent: a server keeps serving with its own deadline rather than
 * refusing the request. `0` is a valid budget (already expired). `maxMs` caps the result, so a
 * client cannot buy more time than the server allows.
 *
 * @example
 * const budgetMs = readDeadlineHeader(req.headers, { maxMs: 10_000 }) ?? 10_000;
 */
export function readDeadlineHeader(
  headers: DeadlineHeaderSource | undefined | null,
  options: ReadDeadlineHeaderOptions = {},
): number | undefined {
  if (headers === undefined || headers === null) return undefined;
  let ms = parse(lookup(headers, DEADLINE_HEADER));
  if (ms === undefined && options.fallbackNames)
    for (const name of options.fallbackNames) {
      ms = parse(lookup(headers, name));
      if (ms !== undefined) break;
    }
  if (ms === undefined) return undefined;
  const max = options.maxMs;
  return max !== undefined && max >= 0 && ms > max ? max : ms;
}

/** The header value for `remainingMs` left: whole ms, rounded down, never negative. */
export function deadlineHeaderValue(remainingMs: number): string {
  if (!(remainingMs > 0)) return '0';
  if (remainingMs === Infinity)
    throw new RangeError('an infinite budget is not sent: omit the header');
  return String(Math.floor(remainingMs));
}

function lookup(headers: DeadlineHeaderSource, name: string): unknown {
  if (typeof (headers as { get?: unknown }).get === 'function')
    return (headers as { get(name: string): string | null | undefined }).get(name) ?? undefined;
  const record = headers as Record<string, unknown>;
  const direct = record[name];
  if (direct !== undefined) return direct;
  for (const key of Object.keys(record)) if (key.toLowerCase() === name) return record[key];
  return undefined;
}

function parse(value: unknown): number | undefined {
  if (Array.isArray(value)) {
    // the same value repeated is fine; different values are ambiguous: ignored
    const parsed = value.map(parse);
    const first = parsed[0];
    return first !== undefined && parsed.every(v => v === first) ? first : undefined;
  }
  if (typeof value !== 'string') return undefined;
  // Node joins repeated unknown headers with ", "
  if (value.includes(',')) return parse(value.split(','));
  if (!DIGITS.test(value)) return undefined;
  const ms = Number(value);
  return Number.isSafeInteger(ms) ? ms : undefined;
}
