import { describeValue } from './describeValue.js';
import { InvalidArgumentError } from './errors.js';

/**
 * The longest delay Node's timers honour: 2^31−1 ms (about 24.8 days). `setTimeout` clamps a
 * longer one to 1 ms and prints a `TimeoutOverflowWarning`.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Options of {@link duration}. */
export interface DurationOptions {
  /** Smallest accepted value. Default 0. */
  readonly min?: number;
  /** Whether `min` itself is refused (`> min` instead of `>= min`). Default false. */
  readonly exclusiveMin?: boolean;
  /**
   * Whether the field accepts "no limit": `Infinity`, or any value above {@link MAX_TIMER_MS},
   * which is read as `Infinity`. When false those are refused. Default true.
   */
  readonly allowInfinity?: boolean;
  /** Builds the error to throw (default: `InvalidArgumentError`); lets a package throw its own class. */
  readonly error?: (message: string) => Error;
}

/**
 * Validates a duration option in milliseconds, the same way in every `@x` package. It refuses
 * non-numbers (a string such as `"300"` too), `NaN` and values below `min` with an error whose
 * message names the field, what was expected and what was received. A value above
 * {@link MAX_TIMER_MS} means "no limit" and is returned as `Infinity` (refused when
 * `allowInfinity` is false), so no timer is ever armed for it.
 *
 * @example
 * const timeoutMs = duration(options.timeout ?? 5_000, 'timeout', { exclusiveMin: true }); // 1e12 → Infinity
 */
export function duration(value: unknown, field: string, options: DurationOptions = {}): number {
  const { min = 0, exclusiveMin = false, allowInfinity = true } = options;
  if (
    typeof value === 'number' &&
    (exclusiveMin ? value > min : value >= min) &&
    (allowInfinity || value <= MAX_TIMER_MS)
  )
    return value > MAX_TIMER_MS ? Infinity : value;
  const expected = `a number of ms ${exclusiveMin ? '>' : '>='} ${min} and ${
    allowInfinity ? `<= ${MAX_TIMER_MS}, or Infinity (above: no limit)` : `<= ${MAX_TIMER_MS}`
  }`;
  const message = `${field}: expected ${expected}, received ${describeValue(value)}`;
  throw options.error ? options.error(message) : new InvalidArgumentError(field, message);
}
